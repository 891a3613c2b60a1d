//! steward's storage: one [`Store`] trait with two backends, SQLite (the embedded
//! default) and PostgreSQL (for teams and several replicas).
//!
//! Both backends keep the same schema (versioned migrations applied at open, refused
//! when the database is newer than the binary) and pass one conformance suite. Every
//! mutation writes its audit events and a signed checkpoint in the same transaction, so
//! the record and its evidence commit or fail together. The audit tables reject UPDATE
//! and DELETE through triggers; [`Store::verify_audit`] detects tampering even when the
//! triggers were dropped.
//!
//! The business logic of mutations lives once, in `ops`, over a small transaction trait
//! that each backend implements. This crate does no printing and reads no configuration:
//! callers pass URLs, keys and the actor in.

mod backend;
mod error;
mod json_text;
mod ops;
mod pg_tls;
mod postgres_backend;
mod sqlite_backend;
mod sqlite_insert;

use jiff::Timestamp;
use steward_core::audit::{AuditEvent, ChainProblem, ChainSummary, Checkpoint, SigningKey, VerifyingKey};
use steward_core::{
    Credential, Fingerprint, Identity, IdentityKind, IdentityPatch, LifecycleState, Location, LocationKind,
    NewCredential, NewIdentity, NewParty, Party, PartyStatus, ScannedSecret, Tier,
};

pub use backend::{EXPORT_BATCH, LIST_BATCH};
pub use error::{StoreError, redact_url};
pub use ops::{IMPORT_CHUNK, ImportDigest};

/// Identities with their credentials, as [`Store::export_inventory`] hands them out.
pub type IdentityBatch = Vec<(steward_core::Identity, Vec<steward_core::Credential>)>;

/// What [`Store::export_inventory`] hands out: the parties once, first, then the known
/// secrets once, then identities a batch at a time.
#[derive(Debug)]
pub enum ExportPart {
    /// Every party, by handle.
    Parties(Vec<steward_core::Party>),
    /// Every secret a scan recorded or a copy was recorded of (see [`KnownSecret`]).
    Secrets(Vec<KnownSecret>),
    /// Identities, by system and name, with their credentials (oldest first).
    Identities(IdentityBatch),
}
pub use postgres_backend::PostgresStore;
pub use sqlite_backend::SqliteStore;

/// The number of schema migrations this binary knows; a database at a higher version is
/// refused.
pub const SCHEMA_VERSION: i64 = 4;

/// Who performs a mutation, and when. `now` is passed in so that callers (and tests) own
/// the clock.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Name recorded in the audit trail.
    pub name: String,
    /// Time recorded for the mutation.
    pub now: Timestamp,
}

/// Filter for [`Store::identities`]; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct IdentityFilter {
    /// Issuing system.
    pub system: Option<String>,
    /// Tier.
    pub tier: Option<Tier>,
    /// Environment.
    pub environment: Option<String>,
    /// Lifecycle state.
    pub state: Option<LifecycleState>,
    /// Kind.
    pub kind: Option<IdentityKind>,
    /// Party handle holding any role.
    pub party: Option<String>,
    /// At most this many rows.
    pub limit: Option<u64>,
}

/// Filter for [`Store::for_each_event`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events about this subject kind (`identity`, `party`).
    pub subject_kind: Option<String>,
    /// Only events about this subject id.
    pub subject_id: Option<i64>,
    /// Only events from this sequence number on.
    pub since_seq: Option<i64>,
    /// Only events up to this sequence number.
    pub until_seq: Option<i64>,
    /// At most this many events (the newest, when set).
    pub limit: Option<u64>,
}

/// One identity of an import, with its credentials.
#[derive(Debug, Clone)]
pub struct ImportIdentity {
    /// The identity.
    pub identity: NewIdentity,
    /// Its credentials.
    pub credentials: Vec<NewCredential>,
}

/// A secret the store knows copies of, or that a scan recorded: what an export writes and
/// an import reads back, so that a move to another store keeps where each secret was
/// found. Its copies' `id` and `credential_id` are the store's own: an import ignores
/// them, and links each copy to the credentials with its fingerprint, as a scan does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSecret {
    /// Fingerprint (HMAC under the installation key).
    pub fingerprint: Fingerprint,
    /// What a scan recorded of it (rule and preview); `None` when its copies were only
    /// recorded by `credential locate`.
    pub scanned: Option<ScannedSecret>,
    /// Its copies, removed ones too, first seen first.
    pub copies: Vec<Location>,
}

/// [`KnownSecret`]s from the scanned secrets and the copies of a store, ordered by when
/// each was first seen.
pub(crate) fn known_secrets(scanned: Vec<ScannedSecret>, copies: Vec<Location>) -> Vec<KnownSecret> {
    fn secret_of(
        map: &mut std::collections::BTreeMap<Fingerprint, KnownSecret>,
        fingerprint: Fingerprint,
    ) -> &mut KnownSecret {
        map.entry(fingerprint.clone()).or_insert_with(|| KnownSecret {
            fingerprint,
            scanned: None,
            copies: Vec::new(),
        })
    }
    let mut by_fingerprint = std::collections::BTreeMap::new();
    for secret in scanned {
        let fingerprint = secret.fingerprint.clone();
        secret_of(&mut by_fingerprint, fingerprint).scanned = Some(secret);
    }
    for copy in copies {
        let fingerprint = copy.fingerprint.clone();
        secret_of(&mut by_fingerprint, fingerprint).copies.push(copy);
    }
    // First seen first, to the second (as files write instants), then in the order the
    // store recorded them: an export imported elsewhere exports again the same.
    // The second as files write it (rounded).
    let second = |at: Timestamp| at.round(jiff::Unit::Second).unwrap_or(at).as_second();
    let mut secrets: Vec<KnownSecret> = by_fingerprint.into_values().collect();
    for secret in &mut secrets {
        secret.copies.sort_by_key(|copy| (second(copy.first_seen), copy.id));
    }
    let order = |secret: &KnownSecret| {
        let first_seen = secret
            .scanned
            .iter()
            .map(|scanned| scanned.first_seen)
            .chain(secret.copies.iter().map(|copy| copy.first_seen))
            .min()
            .map(second);
        let first_copy = secret.copies.iter().map(|copy| copy.id).min();
        (first_seen, first_copy)
    };
    secrets.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.fingerprint.cmp(&b.fingerprint)));
    secrets
}

/// A secret a scan found, with its copies (`steward scan --record`).
#[derive(Debug, Clone)]
pub struct ScanRecord {
    /// Fingerprint of the secret (HMAC under the installation key).
    pub fingerprint: Fingerprint,
    /// Id of the scanner rule that found it.
    pub rule_id: String,
    /// Name of that rule.
    pub rule_name: String,
    /// Redacted preview.
    pub preview: String,
    /// Its copies: kind of place and exact place.
    pub copies: Vec<(LocationKind, String)>,
}

/// Places a scan read completely, with the rules it read them with. A live copy counts as
/// gone when this scan did not see it again and it is one a scan recorded: its locator is
/// inside the scope (see [`ScanScope::covers`]) and in the scanner's format, and its
/// secret was found by a scan with one of `rule_ids` (copies recorded by hand with
/// `credential locate`, and copies found by rules this scan did not run, are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanScope {
    /// Kind of the copies.
    pub kind: LocationKind,
    /// Locator prefix: the absolute path the scan was given.
    pub prefix: String,
    /// Ids of the rules the scan ran.
    pub rule_ids: Vec<String>,
}

impl ScanScope {
    /// Whether `locator` lies inside this scope and has the form the scanner gives copies
    /// of this kind: `path:line:column` under a directory or file (`!` into an archive) for
    /// files, `repository@commit:path:line` for git history of exactly this repository,
    /// `export#channel@ts…:line` / `export#KEY…:line` for chat and ticket exports, and
    /// `notebook#cellN/field:line:column` for notebook cells (documents: a document
    /// recorded by hand in another form is never the scanner's).
    pub fn covers(&self, kind: LocationKind, locator: &str) -> bool {
        let Some(rest) = (kind == self.kind)
            .then(|| locator.strip_prefix(self.prefix.as_str()))
            .flatten()
        else {
            return false;
        };
        let numbers = |text: &str, count: usize| {
            let mut parts = text.rsplit(':');
            (0..count).all(|_| {
                parts
                    .next()
                    .is_some_and(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            })
        };
        let inside = |separators: &[char]| self.prefix.ends_with('/') || rest.starts_with(separators);
        match kind {
            LocationKind::ConfigFile => inside(&['/', ':', '!']) && numbers(rest, 2),
            LocationKind::RepositoryFile => rest.starts_with('@') && numbers(rest, 1),
            LocationKind::ChatMessage | LocationKind::Ticket => inside(&['/', '#', '!']) && numbers(rest, 1),
            LocationKind::Document => {
                let in_cell = rest.rsplit_once('#').is_some_and(|(_, place)| {
                    place
                        .strip_prefix("cell")
                        .and_then(|place| place.split_once('/'))
                        .is_some_and(|(index, _)| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
                });
                inside(&['/', '#', '!']) && in_cell && numbers(rest, 2)
            }
            _ => false,
        }
    }
}

/// What [`Store::record_scan`] wrote.
#[derive(Debug, Clone, Default)]
pub struct ScanRecorded {
    /// The copies seen, as stored.
    pub seen: Vec<Location>,
    /// Copies inside the scan's scope that it no longer saw, now marked removed.
    pub removed: Vec<Location>,
}

/// A secret with live copies, with what the inventory knows of it.
#[derive(Debug, Clone)]
pub struct ScanFinding {
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// What a scan recorded of it (rule, preview); `None` for copies only recorded by
    /// `credential locate`.
    pub secret: Option<ScannedSecret>,
    /// The credentials (and their identities) whose fingerprint it is; empty when it is
    /// unmanaged.
    pub holders: Vec<(Identity, Credential)>,
    /// Its copies not known to be removed.
    pub copies: Vec<Location>,
}

/// How an import is written to the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportAudit {
    /// One `identity.create` event per identity holding the whole record with its
    /// credentials, as `nhi add` writes.
    #[default]
    PerRecord,
    /// One `identity.import` event per chunk of at most [`IMPORT_CHUNK`] identities: the
    /// counts, the id ranges of the identities and credentials created, and the SHA-256
    /// of the chunk's records (see [`ImportDigest`]). For bulk loads: the audit trail
    /// grows by a few hundred bytes per chunk instead of a snapshot per identity, and
    /// `audit log --subject` still finds the import event of each identity.
    Summary,
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Parties created.
    pub parties: u64,
    /// Identities created.
    pub identities: u64,
    /// Credentials created.
    pub credentials: u64,
    /// Scanned secrets created (see [`KnownSecret`]).
    pub secrets: u64,
    /// Copies of secrets created.
    pub copies: u64,
    /// Audit events written.
    pub events: u64,
}

/// A credential together with the identity that holds it.
#[derive(Debug, Clone)]
pub struct IdentityDetail {
    /// The identity.
    pub identity: Identity,
    /// Its credentials, oldest first.
    pub credentials: Vec<Credential>,
}

/// The storage interface every backend implements.
///
/// Identity references (`reference`) are a numeric id, a name unique across systems, or
/// `system/name`.
pub trait Store: Send {
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;

    /// Creates a party. A person with a team also gets the team party if it is missing.
    fn add_party(&mut self, actor: &Actor, party: NewParty) -> Result<Party, StoreError>;
    /// A party by handle.
    fn party(&mut self, handle: &str) -> Result<Party, StoreError>;
    /// Every party, by handle.
    fn parties(&mut self) -> Result<Vec<Party>, StoreError>;
    /// Marks a party active or departed.
    fn set_party_status(
        &mut self,
        actor: &Actor,
        handle: &str,
        status: PartyStatus,
        reason: Option<&str>,
    ) -> Result<Party, StoreError>;

    /// Registers an identity.
    fn add_identity(&mut self, actor: &Actor, identity: NewIdentity) -> Result<Identity, StoreError>;
    /// An identity by reference.
    fn identity(&mut self, reference: &str) -> Result<Identity, StoreError>;
    /// Identities matching `filter`, by system and name.
    fn identities(&mut self, filter: &IdentityFilter) -> Result<Vec<Identity>, StoreError>;
    /// Changes descriptive fields and roles of an identity.
    fn update_identity(
        &mut self,
        actor: &Actor,
        reference: &str,
        patch: &IdentityPatch,
        reason: Option<&str>,
    ) -> Result<Identity, StoreError>;
    /// Moves an identity through its lifecycle.
    fn transition_identity(
        &mut self,
        actor: &Actor,
        reference: &str,
        to: LifecycleState,
        reason: &str,
    ) -> Result<Identity, StoreError>;

    /// Adds a credential to an identity.
    fn add_credential(
        &mut self,
        actor: &Actor,
        reference: &str,
        credential: NewCredential,
    ) -> Result<Credential, StoreError>;
    /// The credentials of an identity, oldest first.
    fn credentials(&mut self, reference: &str) -> Result<IdentityDetail, StoreError>;
    /// The whole inventory from one snapshot of the store, handed to `visit` in parts:
    /// every party, then every identity by system and name with its credentials (oldest
    /// first), a batch at a time, so an export's memory stays that of a batch whatever the
    /// store's size. An error from `visit` ends the walk and is returned.
    fn export_inventory(
        &mut self,
        visit: &mut dyn FnMut(ExportPart) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Identities matching `filter`, by system and name, handed to `visit` in batches (of
    /// [`LIST_BATCH`]) from one snapshot: a listing's memory stays that of a batch. An
    /// error from `visit` ends the walk and is returned.
    fn for_each_identity_batch(
        &mut self,
        filter: &IdentityFilter,
        visit: &mut dyn FnMut(Vec<Identity>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Marks a credential (by id or public id) revoked.
    fn revoke_credential(
        &mut self,
        actor: &Actor,
        reference: &str,
        credential: &str,
        reason: &str,
    ) -> Result<Credential, StoreError>;

    /// Records a copy of a secret (by fingerprint) at a place; it is attached to the
    /// credential with the same fingerprint when the inventory has one.
    fn record_location(
        &mut self,
        actor: &Actor,
        fingerprint: &Fingerprint,
        kind: LocationKind,
        locator: &str,
    ) -> Result<Location, StoreError>;
    /// Marks the live copy of a secret (by fingerprint) at a place removed, for `reason`
    /// (a copy recorded by hand, which no scan removes: the file was cleaned, the message
    /// deleted). With `dismiss`, marks the copy (live or removed) dismissed instead: it is
    /// still there (a revoked secret in git history), the risk is accepted, it no longer
    /// counts, and scans that find it again leave it so. An error when there is no such
    /// copy (live, or not yet dismissed).
    fn remove_location(
        &mut self,
        actor: &Actor,
        fingerprint: &Fingerprint,
        kind: LocationKind,
        locator: &str,
        reason: &str,
        dismiss: bool,
    ) -> Result<Location, StoreError>;
    /// Records what a scan found in one transaction: each secret with the rule that found
    /// it and its redacted preview, and its copies (as [`Store::record_location`]).
    /// Live copies of the kinds and under the prefixes of `covered` that this scan did not
    /// see are marked removed (the scan read those places completely).
    fn record_scan(
        &mut self,
        actor: &Actor,
        records: &[ScanRecord],
        covered: &[ScanScope],
    ) -> Result<ScanRecorded, StoreError>;
    /// Every secret with live copies, with what scans recorded of it, the credentials that
    /// hold it and its live copies.
    fn scan_findings(&mut self) -> Result<Vec<ScanFinding>, StoreError>;
    /// The credentials, with their identities, whose secret has `fingerprint`.
    fn credentials_with_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
    ) -> Result<Vec<(Identity, Credential)>, StoreError>;
    /// Known locations of an identity's credentials.
    fn locations(&mut self, reference: &str) -> Result<Vec<Location>, StoreError>;

    /// Imports parties and identities in one transaction: either everything is written
    /// or nothing is. Identities stream through in chunks, so memory stays bounded; an
    /// `Err` from `identities` (a file that turns out bad part-way) ends the import and
    /// rolls it back, and is returned as it is.
    fn import(
        &mut self,
        actor: &Actor,
        source: &str,
        audit: ImportAudit,
        parties: &[NewParty],
        identities: &mut dyn Iterator<Item = Result<ImportIdentity, StoreError>>,
    ) -> Result<ImportSummary, StoreError> {
        self.import_with_secrets(actor, source, audit, parties, identities, &[])
    }

    /// [`Store::import`], then `secrets` in the same transaction, after the identities
    /// (so that their copies link to the credentials just imported): scanned secrets and
    /// copies already in the store are kept as they are, new ones are created as given,
    /// with a `secret.record` or `location.record` event each.
    fn import_with_secrets(
        &mut self,
        actor: &Actor,
        source: &str,
        audit: ImportAudit,
        parties: &[NewParty],
        identities: &mut dyn Iterator<Item = Result<ImportIdentity, StoreError>>,
        secrets: &[KnownSecret],
    ) -> Result<ImportSummary, StoreError>;

    /// Visits audit events matching `filter` in sequence order.
    fn for_each_event(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(AuditEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Every signed checkpoint.
    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError>;

    /// Verifies the whole audit chain and its checkpoints under `key`. The outer error is
    /// a storage failure; the inner one names the first bad sequence number.
    fn verify_audit(&mut self, key: &VerifyingKey) -> Result<Result<ChainSummary, ChainProblem>, StoreError> {
        // Long chains are read over two connections, one half each: on PostgreSQL the
        // server producing the rows is the limit, and two sessions use two cores.
        let mut head = 0;
        self.for_each_event(
            &EventFilter {
                limit: Some(1),
                ..Default::default()
            },
            &mut |event| {
                head = event.seq;
                Ok(())
            },
        )?;
        let split = (head >= PARALLEL_VERIFY_MIN_EVENTS).then_some(head / 2);
        self.verify_audit_split(key, split)
    }

    /// [`Store::verify_audit`], reading the events after `split_after` on a second
    /// connection in parallel when given (and the backend can open one). The outcome is
    /// the same either way; tests check that for every split point.
    fn verify_audit_split(
        &mut self,
        key: &VerifyingKey,
        split_after: Option<i64>,
    ) -> Result<Result<ChainSummary, ChainProblem>, StoreError>;
}

/// Chains at least this long are verified over two connections in parallel.
pub const PARALLEL_VERIFY_MIN_EVENTS: i64 = 100_000;

/// Refuses a URL of a database steward does not speak (`mysql://…`): PostgreSQL URLs and
/// SQLite paths (or `sqlite://` URLs) are accepted. Cheap: callers check before they
/// create anything.
pub fn check_database_url(url: &str) -> Result<(), StoreError> {
    match url.split_once("://") {
        Some((scheme, _)) if !matches!(scheme, "postgres" | "postgresql" | "sqlite") => {
            Err(StoreError::UnsupportedDatabase(scheme.to_string()))
        }
        _ => Ok(()),
    }
}

/// Opens a store from a URL: `postgres://…`/`postgresql://…` selects PostgreSQL,
/// `sqlite://PATH` or a plain path selects SQLite. Migrations run at open.
/// `signing_key` signs audit checkpoints; without it the store is read-only for audit
/// purposes and mutations fail.
pub fn open(url: &str, signing_key: Option<SigningKey>) -> Result<Box<dyn Store>, StoreError> {
    check_database_url(url)?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::connect(url, signing_key)?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Box::new(SqliteStore::open(std::path::Path::new(path), signing_key)?))
    }
}
