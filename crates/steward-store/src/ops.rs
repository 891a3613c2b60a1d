//! The logic of every mutation, written once over [`Tx`], the handful of primitives each
//! backend implements inside one database transaction. Validation, party resolution,
//! lifecycle checks, audit events and checkpoints all happen here, so both backends
//! behave the same by construction.

use crate::{
    Actor, IdentityDetail, ImportAudit, ImportIdentity, ImportSummary, KnownSecret, ScanFinding, ScanRecord,
    ScanRecorded, ScanScope, StoreError,
};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use steward_core::ScannedSecret;
use steward_core::audit::{AuditEvent, Checkpoint, EventDraft, Hash, SigningKey, seal};
use steward_core::lifecycle::{TransitionContext, check_credential_allowed, check_editable, check_transition};
use steward_core::party::{team_handle, validate_handle};
use steward_core::{
    Credential, CredentialId, CredentialStatus, Fingerprint, Identity, IdentityId, IdentityPatch, LifecycleState,
    Location, LocationKind, NewCredential, NewIdentity, NewParty, Party, PartyId, PartyKind, PartyStatus,
};

/// Rows are written in chunks of this many identities during imports; with
/// [`ImportAudit::Summary`], each chunk is one audit event.
pub const IMPORT_CHUNK: usize = 4096;

/// Which id sequence to draw from.
#[derive(Debug, Clone, Copy)]
pub enum IdSequence {
    Identities,
    Credentials,
}

/// An identity with its role holders resolved to party ids, ready to be written.
pub struct IdentityRow<'a> {
    pub identity: &'a Identity,
    pub business_owner: Option<PartyId>,
    pub technical_steward: Option<PartyId>,
    pub control_owner: Option<PartyId>,
    pub backup_approvers: Vec<PartyId>,
}

/// How a reference names an identity.
#[derive(Debug, Clone)]
pub enum IdentityRef<'a> {
    Id(i64),
    Name(&'a str),
    SystemName(&'a str, &'a str),
}

/// The primitives of one backend transaction.
pub trait Tx {
    fn party_by_handle(&mut self, handle: &str) -> Result<Option<Party>, StoreError>;
    /// The handle of a party whose handle differs from `handle` only in the case of ASCII
    /// letters, if there is one.
    fn handle_differing_in_case(&mut self, handle: &str) -> Result<Option<String>, StoreError>;
    fn insert_party(&mut self, party: &NewParty, team: Option<PartyId>) -> Result<PartyId, StoreError>;
    fn update_party_status(&mut self, id: PartyId, status: PartyStatus) -> Result<(), StoreError>;
    fn identities_by_ref(&mut self, reference: &IdentityRef<'_>) -> Result<Vec<Identity>, StoreError>;
    fn reserve_ids(&mut self, sequence: IdSequence, count: usize) -> Result<Vec<i64>, StoreError>;
    /// An import of about `identities` identities is about to write: a backend may set
    /// aside indexes that are cheaper to rebuild afterwards than to maintain row by row,
    /// including the (system, name) uniqueness of identities. [`Tx::bulk_load_end`]
    /// restores them.
    fn bulk_load_begin(&mut self, _identities: usize) -> Result<(), StoreError> {
        Ok(())
    }
    /// The import has written everything: rebuild what [`Tx::bulk_load_begin`] set aside.
    /// When two identities share a (system, name), this fails with
    /// [`StoreError::DuplicateIdentity`] naming the later one, as inserting it would have
    /// (but only now, after every record was checked: another invalid record anywhere in
    /// the import is reported first).
    fn bulk_load_end(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Inserts identities and their backup-approver rows. A (system, name) clash is
    /// reported as [`StoreError::DuplicateIdentity`], here or, during a bulk load, by
    /// [`Tx::bulk_load_end`].
    fn insert_identities(&mut self, rows: &[IdentityRow<'_>]) -> Result<(), StoreError>;
    fn update_identity(&mut self, row: &IdentityRow<'_>) -> Result<(), StoreError>;
    fn insert_credentials(&mut self, credentials: &[Credential]) -> Result<(), StoreError>;
    fn update_credential(&mut self, credential: &Credential) -> Result<(), StoreError>;
    fn credentials_of(&mut self, identity: IdentityId) -> Result<Vec<Credential>, StoreError>;
    fn live_location_count(&mut self, identity: IdentityId) -> Result<usize, StoreError>;
    fn credentials_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Vec<Credential>, StoreError>;
    /// Inserts a location or, when (fingerprint, kind, locator) exists, moves its
    /// `last_seen` forward.
    fn upsert_location(&mut self, location: &Location) -> Result<Location, StoreError>;
    /// Inserts a scanned secret, or moves its `last_seen` forward: its id, and whether it
    /// is new.
    fn upsert_scanned_secret(&mut self, secret: &ScannedSecret) -> Result<(i64, bool), StoreError>;
    /// Every scanned secret, first seen first.
    fn scanned_secrets(&mut self) -> Result<Vec<ScannedSecret>, StoreError>;
    /// Inserts a scanned secret as given unless its fingerprint is there: its id if new.
    fn insert_scanned_secret_if_new(&mut self, secret: &ScannedSecret) -> Result<Option<i64>, StoreError>;
    /// Inserts a location as given (its `id` aside) unless (fingerprint, kind, locator)
    /// is there: the location as stored, if new.
    fn insert_location_if_new(&mut self, location: &Location) -> Result<Option<Location>, StoreError>;
    /// Live locations of `kind` whose locator starts with `prefix` (a superset of a scope).
    fn live_locations_under(&mut self, kind: LocationKind, prefix: &str) -> Result<Vec<Location>, StoreError>;
    /// Marks a location removed at `at`.
    fn mark_location_removed(&mut self, id: i64, at: jiff::Timestamp, dismissed: bool) -> Result<(), StoreError>;
    /// Points location `id` at `locator` (the same copy, moved within its place), seen at `at`.
    fn relocate_location(&mut self, id: i64, locator: &str, at: jiff::Timestamp) -> Result<(), StoreError>;
    /// The fingerprints with live locations, by their earliest first sighting.
    fn located_fingerprints(&mut self) -> Result<Vec<Fingerprint>, StoreError>;
    /// Every location of a secret, oldest first.
    fn locations_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Vec<Location>, StoreError>;
    fn locations_of(&mut self, identity: IdentityId) -> Result<Vec<Location>, StoreError>;
    /// The last event's (seq, hash), or (0, zeroes). Serialises concurrent writers.
    fn audit_head(&mut self) -> Result<(i64, Hash), StoreError>;
    /// The checkpoint with the highest seq, if any.
    fn last_checkpoint(&mut self) -> Result<Option<Checkpoint>, StoreError>;
    fn insert_events(&mut self, events: &[AuditEvent]) -> Result<(), StoreError>;
    fn insert_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
}

/// Finds exactly one identity for `reference`: `#12` is an id; anything else may be an id
/// (all digits), a name, or `system/name` split at any `/` (names and systems may hold
/// one), and more than one identity among those readings is an error that names them.
pub(crate) fn resolve_identity(tx: &mut dyn Tx, reference: &str) -> Result<Identity, StoreError> {
    let mut found: Vec<Identity> = Vec::new();
    let mut add = |identities: Vec<Identity>| {
        for identity in identities {
            if !found.iter().any(|known| known.id == identity.id) {
                found.push(identity);
            }
        }
    };
    let mut by_name = 0;
    if let Some(id) = reference.strip_prefix('#') {
        if let Ok(id) = id.parse::<i64>() {
            add(tx.identities_by_ref(&IdentityRef::Id(id))?);
        }
    } else {
        if let Ok(id) = reference.parse::<i64>() {
            add(tx.identities_by_ref(&IdentityRef::Id(id))?);
        }
        let named = tx.identities_by_ref(&IdentityRef::Name(reference))?;
        by_name = named.len();
        add(named);
        for (slash, _) in reference.match_indices('/') {
            let (system, name) = (&reference[..slash], &reference[slash + 1..]);
            add(tx.identities_by_ref(&IdentityRef::SystemName(system, name))?);
        }
    }
    match found.len() {
        0 => Err(StoreError::UnknownIdentity(reference.to_string())),
        1 => Ok(found.pop().expect("one element")),
        count if count == by_name => {
            let mut systems: Vec<&str> = found.iter().map(|identity| identity.system.as_str()).collect();
            systems.sort();
            Err(StoreError::AmbiguousIdentity {
                name: reference.to_string(),
                systems: systems.join(", "),
            })
        }
        _ => {
            found.sort_by_key(|identity| identity.id.0);
            Err(StoreError::AmbiguousReference {
                reference: reference.to_string(),
                candidates: found
                    .iter()
                    .map(|identity| format!("#{} ({})", identity.id.0, identity_subject(identity)))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

/// Collects a transaction's audit events and seals them with one checkpoint.
pub(crate) struct EventLog<'k> {
    signing_key: &'k SigningKey,
    next_seq: i64,
    prev_hash: Hash,
    pending: Vec<AuditEvent>,
    written: u64,
}

impl<'k> EventLog<'k> {
    pub fn begin(tx: &mut dyn Tx, signing_key: Option<&'k SigningKey>) -> Result<Self, StoreError> {
        let signing_key = signing_key.ok_or(StoreError::NoSigningKey)?;
        let (seq, prev_hash) = tx.audit_head()?;
        // Every write signs a checkpoint of its last event, so the head is covered by the
        // last checkpoint, under this key. Events appended without the key (an INSERT
        // past the head) would otherwise be signed into the chain by this write.
        let last = tx.last_checkpoint()?;
        let covered = match &last {
            None => seq == 0,
            Some(checkpoint) => {
                checkpoint.seq == seq
                    && checkpoint.head_hash == prev_hash
                    && checkpoint.signature_is_valid(&signing_key.verifying_key())
            }
        };
        if !covered {
            return Err(StoreError::AuditHeadUnsigned {
                head: seq,
                checkpoint: last.map_or(0, |checkpoint| checkpoint.seq),
            });
        }
        Ok(EventLog {
            signing_key,
            next_seq: seq + 1,
            prev_hash,
            pending: Vec::new(),
            written: 0,
        })
    }

    pub fn record(&mut self, draft: EventDraft) {
        let event = seal(draft, self.next_seq, self.prev_hash);
        self.prev_hash = event.hash;
        self.next_seq += 1;
        self.pending.push(event);
    }

    pub fn flush(&mut self, tx: &mut dyn Tx) -> Result<(), StoreError> {
        if !self.pending.is_empty() {
            tx.insert_events(&self.pending)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes the remaining events and a checkpoint of the new head.
    pub fn finish(mut self, tx: &mut dyn Tx, now: jiff::Timestamp) -> Result<u64, StoreError> {
        self.flush(tx)?;
        if self.written > 0 {
            let checkpoint = Checkpoint::sign(self.signing_key, self.next_seq - 1, self.prev_hash, now);
            tx.insert_checkpoint(&checkpoint)?;
        }
        Ok(self.written)
    }
}

fn snapshot<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types serialize to JSON")
}

fn identity_subject(identity: &Identity) -> String {
    format!("{}/{}", identity.system, identity.name)
}

/// Refuses `credential` when its public id is one of `held`, the credentials of identity
/// `system/name`: a public id names one credential of its identity.
fn check_public_id_free(
    held: &[Credential],
    credential: &NewCredential,
    system: &str,
    name: &str,
) -> Result<(), StoreError> {
    match &credential.public_id {
        Some(public_id) if held.iter().any(|known| known.public_id.as_ref() == Some(public_id)) => {
            Err(StoreError::DuplicateCredential {
                identity: format!("{system}/{name}"),
                public_id: public_id.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// What an event is about: kind, store id, human name.
type Subject<'a> = (&'a str, i64, String);

fn draft(
    actor: &Actor,
    action: &str,
    (subject_kind, subject_id, subject_name): Subject<'_>,
    reason: Option<&str>,
    before: Option<String>,
    after: Option<String>,
) -> EventDraft {
    EventDraft {
        at: actor.now,
        actor: actor.name.clone(),
        action: action.to_string(),
        subject_kind: subject_kind.to_string(),
        subject_id: Some(subject_id),
        subject_name,
        reason: reason.map(str::to_string),
        before,
        after,
    }
}

/// Resolves party handles to ids, caching what it has seen.
#[derive(Default)]
pub(crate) struct PartyResolver {
    /// Handles already resolved. foldhash rather than SipHash: a million-identity import
    /// looks up four million handles (DoS-resistant hashing buys nothing for our own
    /// parties table).
    known: HashMap<String, PartyId, foldhash::fast::RandomState>,
}

impl PartyResolver {
    pub fn id(&mut self, tx: &mut dyn Tx, handle: &str) -> Result<PartyId, StoreError> {
        if let Some(id) = self.known.get(handle) {
            return Ok(*id);
        }
        let party = tx
            .party_by_handle(handle)?
            .ok_or_else(|| StoreError::UnknownParty(handle.to_string()))?;
        self.known.insert(handle.to_string(), party.id);
        Ok(party.id)
    }

    fn optional(&mut self, tx: &mut dyn Tx, handle: &Option<String>) -> Result<Option<PartyId>, StoreError> {
        handle.as_deref().map(|handle| self.id(tx, handle)).transpose()
    }

    pub fn row<'a>(&mut self, tx: &mut dyn Tx, identity: &'a Identity) -> Result<IdentityRow<'a>, StoreError> {
        let roles = &identity.roles;
        Ok(IdentityRow {
            identity,
            business_owner: self.optional(tx, &roles.business_owner)?,
            technical_steward: self.optional(tx, &roles.technical_steward)?,
            control_owner: self.optional(tx, &roles.control_owner)?,
            backup_approvers: roles
                .backup_approvers
                .iter()
                .map(|handle| self.id(tx, handle))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Creates a party (and its team party when missing), returning the party and the number
/// of parties created.
fn create_party(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    party: &NewParty,
) -> Result<(Party, u64), StoreError> {
    validate_handle(&party.handle)?;
    if tx.party_by_handle(&party.handle)?.is_some() {
        return Err(StoreError::DuplicateParty(party.handle.clone()));
    }
    // `ALICE@example.com` next to `alice@example.com` would be two parties for one person.
    if let Some(existing) = tx.handle_differing_in_case(&party.handle)? {
        return Err(StoreError::HandleCaseClash {
            handle: party.handle.clone(),
            existing,
        });
    }
    let mut created = 0;
    let team_handle = party.team.as_deref().map(team_handle);
    let team_id = match &team_handle {
        None => None,
        Some(handle) => Some(match tx.party_by_handle(handle)? {
            Some(team) => team.id,
            None => {
                let (team, _) = create_party(tx, log, actor, &NewParty::from_handle(handle))?;
                created += 1;
                team.id
            }
        }),
    };
    let party = NewParty {
        team: team_handle,
        kind: if party.handle.starts_with("team-") {
            PartyKind::Team
        } else {
            party.kind
        },
        ..party.clone()
    };
    let id = tx.insert_party(&party, team_id)?;
    let stored = Party {
        id,
        handle: party.handle.clone(),
        display_name: party.display_name.clone(),
        kind: party.kind,
        team: party.team.clone(),
        status: party.status,
    };
    log.record(draft(
        actor,
        "party.create",
        ("party", id.0, stored.handle.clone()),
        None,
        None,
        Some(snapshot(&stored)),
    ));
    Ok((stored, created + 1))
}

pub(crate) fn add_party(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    party: &NewParty,
) -> Result<Party, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let (party, _) = create_party(tx, &mut log, actor, party)?;
    log.finish(tx, actor.now)?;
    Ok(party)
}

pub(crate) fn set_party_status(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    handle: &str,
    status: PartyStatus,
    reason: Option<&str>,
) -> Result<Party, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let before = tx
        .party_by_handle(handle)?
        .ok_or_else(|| StoreError::UnknownParty(handle.to_string()))?;
    if before.status == status {
        return Ok(before);
    }
    tx.update_party_status(before.id, status)?;
    let after = Party {
        status,
        ..before.clone()
    };
    log.record(draft(
        actor,
        "party.status",
        ("party", after.id.0, after.handle.clone()),
        reason,
        Some(snapshot(&before)),
        Some(snapshot(&after)),
    ));
    log.finish(tx, actor.now)?;
    Ok(after)
}

/// Who creates identities, and how: by `nhi add` (no index, per-record events) or as
/// the chunk of an import starting at record `first_index`.
#[derive(Clone, Copy)]
struct Creation<'a> {
    actor: &'a Actor,
    audit: ImportAudit,
    first_index: Option<usize>,
}

/// Writes identities (with credentials) as one chunk and returns what it wrote. With
/// [`ImportAudit::PerRecord`] it records one `identity.create` event each; a summary's
/// event is the caller's (see [`ChunkDigests`]).
fn create_identities(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    resolver: &mut PartyResolver,
    how: &Creation<'_>,
    batch: Vec<ImportIdentity>,
) -> Result<Created, StoreError> {
    let Creation {
        actor,
        audit,
        first_index,
    } = *how;
    // In an import, errors name the record; a single add reports the error as it is.
    let locate = |index: usize, system: &str, name: &str, error: StoreError| match first_index {
        None => error,
        Some(first) => StoreError::ImportRecord {
            index: first + index + 1,
            name: format!("{system}/{name}"),
            message: error.to_string(),
        },
    };
    let identity_ids = tx.reserve_ids(IdSequence::Identities, batch.len())?;
    let credential_count = batch.iter().map(|record| record.credentials.len()).sum();
    let mut credential_ids = tx.reserve_ids(IdSequence::Credentials, credential_count)?.into_iter();
    let mut identities = Vec::with_capacity(batch.len());
    let mut credentials = Vec::with_capacity(credential_count);
    let mut first_credential_of = Vec::with_capacity(batch.len() + 1);
    for (index, (record, id)) in batch.into_iter().zip(identity_ids).enumerate() {
        let ImportIdentity {
            identity,
            credentials: new_credentials,
        } = record;
        let wrap = |error: StoreError| locate(index, &identity.system, &identity.name, error);
        identity.validate().map_err(|error| wrap(error.into()))?;
        first_credential_of.push(credentials.len());
        let identity_id = IdentityId(id);
        let held_from = credentials.len();
        for credential in new_credentials {
            credential.validate().map_err(|error| wrap(error.into()))?;
            check_credential_allowed(identity.state, credential.status).map_err(|error| wrap(error.into()))?;
            check_public_id_free(&credentials[held_from..], &credential, &identity.system, &identity.name)
                .map_err(wrap)?;
            credentials.push(stored_credential(
                CredentialId(credential_ids.next().expect("reserved enough ids")),
                identity_id,
                credential,
                actor.now,
            ));
        }
        identities.push(identity.into_identity(identity_id));
    }
    first_credential_of.push(credentials.len());
    let mut rows = Vec::with_capacity(identities.len());
    for (index, identity) in identities.iter().enumerate() {
        let row = resolver
            .row(tx, identity)
            .map_err(|error| locate(index, &identity.system, &identity.name, error))?;
        rows.push(row);
    }
    tx.insert_identities(&rows)?;
    tx.insert_credentials(&credentials)?;
    drop(rows);
    let created = Created {
        identities,
        credentials,
        first_credential_of,
    };
    if audit == ImportAudit::PerRecord {
        for (index, identity) in created.identities.iter().enumerate() {
            let held = created.held_by(index);
            let after = if held.is_empty() {
                snapshot(identity)
            } else {
                snapshot(&IdentityWithCredentials {
                    identity,
                    credentials: held,
                })
            };
            log.record(draft(
                actor,
                "identity.create",
                ("identity", identity.id.0, identity_subject(identity)),
                None,
                None,
                Some(after),
            ));
        }
    }
    // With ImportAudit::Summary, the caller records the chunk's event (see ChunkDigests).
    Ok(created)
}

/// Identities just written, with their credentials.
struct Created {
    identities: Vec<Identity>,
    /// Every identity's credentials, in identity order.
    credentials: Vec<Credential>,
    /// Where each identity's credentials start in `credentials`, and their end.
    first_credential_of: Vec<usize>,
}

impl Created {
    fn held_by(&self, index: usize) -> &[Credential] {
        &self.credentials[self.first_credential_of[index]..self.first_credential_of[index + 1]]
    }

    /// The `after` of the chunk's summary event, but for its digest.
    fn chunk(&self) -> Option<ImportChunk> {
        let (first, last) = (self.identities.first()?, self.identities.last()?);
        Some(ImportChunk {
            identities: self.identities.len(),
            identity_ids: [first.id.0, last.id.0],
            credentials: self.credentials.len(),
            credential_ids: self
                .credentials
                .first()
                .zip(self.credentials.last())
                .map(|(first, last)| [first.id.0, last.id.0]),
            records_sha256: String::new(),
        })
    }
}

/// How many chunks may wait for their digest while the importing thread goes on: with
/// one more sent, it blocks until the oldest digest is back. (The worker's queue is as
/// long, so a send does not block first.) Each chunk's records take about 12 MiB here:
/// a 1M import peaked at 186 MiB against 138 MiB with a digest thread joined per chunk.
const DIGESTS_IN_FLIGHT: usize = 3;

/// The digests of an import's chunks ([`ImportAudit::Summary`]), computed in order on a
/// thread of their own, which also frees the chunk's records. The importing thread goes on
/// writing the next chunks and records a chunk's summary event once its digest is back;
/// chunks and digests go through first-in-first-out queues, so events are recorded in
/// chunk order all the same. (Joining a digest thread at the end of each chunk kept the
/// importing thread waiting about 2 s of a 12 s 1M import.)
struct ChunkDigests<'scope> {
    records: Option<std::sync::mpsc::SyncSender<Created>>,
    digests: std::sync::mpsc::Receiver<String>,
    /// Chunks sent, oldest first, with their digest not yet back.
    waiting: std::collections::VecDeque<ImportChunk>,
    worker: Option<std::thread::ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> ChunkDigests<'scope> {
    fn start<'env>(scope: &'scope std::thread::Scope<'scope, 'env>) -> Self {
        let (records, chunks) = std::sync::mpsc::sync_channel::<Created>(DIGESTS_IN_FLIGHT);
        let (done, digests) = std::sync::mpsc::channel();
        let worker = scope.spawn(move || {
            for created in chunks {
                let mut digest = ImportDigest::default();
                for (index, identity) in created.identities.iter().enumerate() {
                    digest.add(identity, created.held_by(index));
                }
                if done.send(digest.finish()).is_err() {
                    return; // the import failed and went away
                }
            }
        });
        ChunkDigests {
            records: Some(records),
            digests,
            waiting: std::collections::VecDeque::new(),
            worker: Some(worker),
        }
    }

    /// Hands `created` over for its digest, and records the events of chunks whose digest
    /// is back, waiting for the oldest while more than [`DIGESTS_IN_FLIGHT`] wait.
    fn send(&mut self, created: Created, log: &mut EventLog<'_>, actor: &Actor, source: &str) {
        let Some(chunk) = created.chunk() else {
            return;
        };
        self.waiting.push_back(chunk);
        let sent = self
            .records
            .as_ref()
            .is_some_and(|records| records.send(created).is_ok());
        if !sent {
            self.worker_failed();
        }
        while let Some(digest) = if self.waiting.len() > DIGESTS_IN_FLIGHT {
            Some(self.next_digest())
        } else {
            self.digests.try_recv().ok()
        } {
            self.record(digest, log, actor, source);
        }
    }

    /// Records the events of every chunk sent.
    fn finish(mut self, log: &mut EventLog<'_>, actor: &Actor, source: &str) {
        self.records = None;
        while !self.waiting.is_empty() {
            let digest = self.next_digest();
            self.record(digest, log, actor, source);
        }
    }

    fn next_digest(&mut self) -> String {
        self.digests.recv().unwrap_or_else(|_| self.worker_failed())
    }

    /// The worker ends early only by panicking: its panic goes on here.
    fn worker_failed(&mut self) -> ! {
        self.records = None;
        let worker = self.worker.take().expect("the worker fails once");
        match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the digest worker ended before its chunks did"),
        }
    }

    fn record(&mut self, digest: String, log: &mut EventLog<'_>, actor: &Actor, source: &str) {
        let mut chunk = self
            .waiting
            .pop_front()
            .expect("a digest comes back for each chunk sent");
        chunk.records_sha256 = digest;
        log.record(draft(
            actor,
            IMPORT_ACTION,
            (IMPORT_SUBJECT, chunk.identity_ids[0], source.to_string()),
            None,
            None,
            Some(snapshot(&chunk)),
        ));
    }
}

/// The action of an import summary event ([`ImportAudit::Summary`]).
pub(crate) const IMPORT_ACTION: &str = "identity.import";
/// Its subject kind; the subject id is the first identity id of the chunk.
pub(crate) const IMPORT_SUBJECT: &str = "import";

/// The `after` of an import summary event.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ImportChunk {
    /// Identities created.
    pub identities: usize,
    /// First and last id of the identities created (consecutive).
    pub identity_ids: [i64; 2],
    /// Credentials created.
    pub credentials: usize,
    /// First and last id of the credentials created (consecutive), if any.
    pub credential_ids: Option<[i64; 2]>,
    /// [`ImportDigest`] of the records, hex.
    pub records_sha256: String,
}

/// Whether the import summary `event` created identity `id`.
pub(crate) fn covers(event: &AuditEvent, id: i64) -> bool {
    event
        .draft
        .after
        .as_deref()
        .and_then(|after| serde_json::from_str::<ImportChunk>(after).ok())
        .is_some_and(|chunk| (chunk.identity_ids[0]..=chunk.identity_ids[1]).contains(&id))
}

/// The digest an import summary event holds for its records: SHA-256 over the SHA-256 of
/// each record, in id order, where a record is the compact JSON that a per-record
/// `identity.create` event would hold (the identity, or `{"identity":…,"credentials":[…]}`
/// when it has credentials). Anyone holding the records as imported can recompute it.
#[derive(Default)]
pub struct ImportDigest {
    outer: Sha256,
    record: Vec<u8>,
}

impl ImportDigest {
    /// Adds one record.
    pub fn add(&mut self, identity: &Identity, credentials: &[Credential]) {
        self.record.clear();
        let written = if credentials.is_empty() {
            serde_json::to_writer(&mut self.record, identity)
        } else {
            serde_json::to_writer(&mut self.record, &IdentityWithCredentials { identity, credentials })
        };
        written.expect("domain types serialize to JSON");
        self.outer.update(Sha256::digest(&self.record));
    }

    /// The digest, hex.
    pub fn finish(self) -> String {
        hex::encode(self.outer.finalize())
    }
}

/// The `after` snapshot of an identity created together with its credentials.
#[derive(serde::Serialize)]
struct IdentityWithCredentials<'a> {
    identity: &'a Identity,
    credentials: &'a [Credential],
}

/// A new credential as stored; one added or imported as revoked without a revocation time
/// is revoked as of `now` (the time it is first known to be).
fn stored_credential(
    id: CredentialId,
    identity_id: IdentityId,
    credential: NewCredential,
    now: jiff::Timestamp,
) -> Credential {
    Credential {
        id,
        identity_id,
        kind: credential.kind,
        public_id: credential.public_id,
        fingerprint: credential.fingerprint,
        preview: credential.preview,
        status: credential.status,
        created_at: credential.created_at,
        expires_at: credential.expires_at,
        last_used_at: credential.last_used_at,
        revoked_at: (credential.status == CredentialStatus::Revoked).then(|| credential.revoked_at.unwrap_or(now)),
    }
}

pub(crate) fn add_identity(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    identity: NewIdentity,
) -> Result<Identity, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let mut resolver = PartyResolver::default();
    let record = ImportIdentity {
        identity,
        credentials: Vec::new(),
    };
    let how = Creation {
        actor,
        audit: ImportAudit::PerRecord,
        first_index: None,
    };
    let mut created = create_identities(tx, &mut log, &mut resolver, &how, vec![record])?;
    log.finish(tx, actor.now)?;
    Ok(created.identities.pop().expect("one identity created"))
}

/// What an import writes besides its identities: the parties first, the secrets last.
pub(crate) struct ImportRecords<'a> {
    pub parties: &'a [NewParty],
    pub secrets: &'a [KnownSecret],
}

pub(crate) fn import(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    source: &str,
    audit: ImportAudit,
    records: ImportRecords<'_>,
    identities: &mut dyn Iterator<Item = Result<ImportIdentity, StoreError>>,
) -> Result<ImportSummary, StoreError> {
    let ImportRecords { parties, secrets } = records;
    let mut log = EventLog::begin(tx, key)?;
    let mut summary = ImportSummary::default();
    // Parties without a team first: a team the file lists is then created as listed (with
    // its display name) before a person's `team:` could create it bare (an export lists
    // people before teams).
    let (teamless, in_teams): (Vec<&NewParty>, Vec<&NewParty>) = parties.iter().partition(|party| party.team.is_none());
    for party in teamless.into_iter().chain(in_teams) {
        // Parties already present are kept as they are, so one file can be re-used to
        // add identities for known people.
        if tx.party_by_handle(&party.handle)?.is_none() {
            let (_, created) = create_party(tx, &mut log, actor, party)?;
            summary.parties += created;
        }
    }
    let mut resolver = PartyResolver::default();
    let mut index = 0;
    tx.bulk_load_begin(identities.size_hint().0)?;
    std::thread::scope(|scope| {
        let mut digests = (audit == ImportAudit::Summary).then(|| ChunkDigests::start(scope));
        loop {
            let chunk = (&mut *identities)
                .take(IMPORT_CHUNK)
                .collect::<Result<Vec<ImportIdentity>, StoreError>>()?;
            if chunk.is_empty() {
                break;
            }
            let count = chunk.len();
            let how = Creation {
                actor,
                audit,
                first_index: Some(index),
            };
            let created = create_identities(tx, &mut log, &mut resolver, &how, chunk)?;
            summary.identities += count as u64;
            summary.credentials += created.credentials.len() as u64;
            index += count;
            if let Some(digests) = &mut digests {
                digests.send(created, &mut log, actor, source);
            }
            log.flush(tx)?;
        }
        if let Some(digests) = digests {
            digests.finish(&mut log, actor, source);
        }
        Ok::<_, StoreError>(())
    })?;
    tx.bulk_load_end()?;
    // After the identities, with the indexes back: copies link to the credentials just
    // imported.
    for secret in secrets {
        import_secret(tx, &mut log, actor, secret, &mut summary)?;
    }
    summary.events = log.finish(tx, actor.now)?;
    Ok(summary)
}

/// Imports one [`KnownSecret`] (see [`crate::Store::import_with_secrets`]).
fn import_secret(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    secret: &KnownSecret,
    summary: &mut ImportSummary,
) -> Result<(), StoreError> {
    if let Some(scanned) = &secret.scanned {
        let scanned = ScannedSecret {
            fingerprint: secret.fingerprint.clone(),
            ..scanned.clone()
        };
        scanned.validate()?;
        if let Some(id) = tx.insert_scanned_secret_if_new(&scanned)? {
            summary.secrets += 1;
            log.record(draft(
                actor,
                "secret.record",
                ("scanned_secret", id, format!("{} {}", scanned.rule_id, scanned.preview)),
                None,
                None,
                Some(snapshot(&scanned)),
            ));
        }
    }
    let holder = tx.credentials_by_fingerprint(&secret.fingerprint)?.into_iter().next();
    for copy in &secret.copies {
        let copy = Location {
            id: 0,
            credential_id: holder.as_ref().map(|credential| credential.id),
            fingerprint: secret.fingerprint.clone(),
            ..copy.clone()
        };
        copy.validate()?;
        if let Some(location) = tx.insert_location_if_new(&copy)? {
            summary.copies += 1;
            log_copy(tx, log, actor, holder.as_ref(), &location)?;
        }
    }
    Ok(())
}

pub(crate) fn update_identity(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    reference: &str,
    patch: &IdentityPatch,
    reason: Option<&str>,
) -> Result<Identity, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let before = resolve_identity(tx, reference)?;
    check_editable(before.state)?;
    let after = patch.apply(&before)?;
    if after == before {
        return Ok(before);
    }
    after.validate()?;
    let row = PartyResolver::default().row(tx, &after)?;
    tx.update_identity(&row)?;
    let action = if patch.attested_at.is_some() {
        "identity.attest"
    } else {
        "identity.update"
    };
    log.record(draft(
        actor,
        action,
        ("identity", after.id.0, identity_subject(&after)),
        reason,
        Some(snapshot(&before)),
        Some(snapshot(&after)),
    ));
    log.finish(tx, actor.now)?;
    Ok(after)
}

pub(crate) fn transition_identity(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    reference: &str,
    to: LifecycleState,
    reason: &str,
) -> Result<Identity, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let before = resolve_identity(tx, reference)?;
    let credentials = tx.credentials_of(before.id)?;
    let context = TransitionContext {
        unrevoked_credentials: credentials
            .iter()
            .filter(|credential| credential.status != CredentialStatus::Revoked)
            .count(),
        live_locations: if to == LifecycleState::Archived {
            tx.live_location_count(before.id)?
        } else {
            0
        },
    };
    check_transition(before.state, to, context)?;
    let after = Identity {
        state: to,
        ..before.clone()
    };
    let row = PartyResolver::default().row(tx, &after)?;
    tx.update_identity(&row)?;
    log.record(draft(
        actor,
        "identity.transition",
        ("identity", after.id.0, identity_subject(&after)),
        Some(reason),
        Some(snapshot(&serde_json::json!({ "state": before.state }))),
        Some(snapshot(&serde_json::json!({ "state": after.state }))),
    ));
    log.finish(tx, actor.now)?;
    Ok(after)
}

pub(crate) fn add_credential(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    reference: &str,
    credential: &NewCredential,
) -> Result<Credential, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    credential.validate()?;
    let identity = resolve_identity(tx, reference)?;
    check_editable(identity.state)?;
    check_credential_allowed(identity.state, credential.status)?;
    check_public_id_free(
        &tx.credentials_of(identity.id)?,
        credential,
        &identity.system,
        &identity.name,
    )?;
    // The same secret, revoked before, cannot be in use again: its system no longer
    // takes it, or the "rotation" that revoked it handed out the old secret again.
    if credential.status == CredentialStatus::Active
        && let Some(fingerprint) = &credential.fingerprint
        && let Some(revoked) = tx
            .credentials_by_fingerprint(fingerprint)?
            .into_iter()
            .find(|held| held.status == CredentialStatus::Revoked)
    {
        let holder = resolve_identity(tx, &format!("#{}", revoked.identity_id.0))?;
        return Err(StoreError::RevokedSecretReused {
            credential: revoked.id.0,
            identity: identity_subject(&holder),
            revoked: revoked.revoked_at.map_or_else(
                || "revoked".to_string(),
                |at| format!("revoked {}", steward_core::time::format_instant(at)),
            ),
        });
    }
    let id = tx.reserve_ids(IdSequence::Credentials, 1)?[0];
    let stored = stored_credential(CredentialId(id), identity.id, credential.clone(), actor.now);
    tx.insert_credentials(std::slice::from_ref(&stored))?;
    log.record(draft(
        actor,
        "credential.add",
        ("identity", identity.id.0, identity_subject(&identity)),
        None,
        None,
        Some(snapshot(&stored)),
    ));
    log.finish(tx, actor.now)?;
    Ok(stored)
}

pub(crate) fn credentials(tx: &mut dyn Tx, reference: &str) -> Result<IdentityDetail, StoreError> {
    let identity = resolve_identity(tx, reference)?;
    let credentials = tx.credentials_of(identity.id)?;
    Ok(IdentityDetail { identity, credentials })
}

pub(crate) fn revoke_credential(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    reference: &str,
    credential_reference: &str,
    reason: &str,
) -> Result<Credential, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let identity = resolve_identity(tx, reference)?;
    // `#12` is an id; anything else a public id, or an id when no public id matches.
    let credentials = tx.credentials_of(identity.id)?;
    let by_id = |credential: &&Credential| credential_reference.trim_start_matches('#').parse() == Ok(credential.id.0);
    let mut matching: Vec<&Credential> = if credential_reference.starts_with('#') {
        credentials.iter().filter(by_id).collect()
    } else {
        credentials
            .iter()
            .filter(|credential| credential.public_id.as_deref() == Some(credential_reference))
            .collect()
    };
    if matching.is_empty() {
        matching = credentials.iter().filter(by_id).collect();
    }
    let before = match matching.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(StoreError::UnknownCredential {
                identity: reference.to_string(),
                credential: credential_reference.to_string(),
            });
        }
        several => {
            return Err(StoreError::AmbiguousCredential {
                identity: reference.to_string(),
                credential: credential_reference.to_string(),
                ids: several
                    .iter()
                    .map(|credential| format!("#{}", credential.id.0))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    if before.status == CredentialStatus::Revoked {
        return Ok(before);
    }
    let after = Credential {
        status: CredentialStatus::Revoked,
        revoked_at: Some(actor.now),
        ..before.clone()
    };
    tx.update_credential(&after)?;
    log.record(draft(
        actor,
        "credential.revoke",
        ("identity", identity.id.0, identity_subject(&identity)),
        Some(reason),
        Some(snapshot(&before)),
        Some(snapshot(&after)),
    ));
    log.finish(tx, actor.now)?;
    Ok(after)
}

/// Records a copy of a secret seen at `actor.now`, attached to the inventory credential
/// with the same fingerprint when there is one.
fn record_copy(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    fingerprint: &Fingerprint,
    kind: LocationKind,
    locator: &str,
) -> Result<Location, StoreError> {
    let (location, credential) = upsert_copy(tx, actor, fingerprint, kind, locator)?;
    log_copy(tx, log, actor, credential.as_ref(), &location)?;
    Ok(location)
}

/// A `location.record` event of `location` as stored, about its holder's identity.
fn log_copy(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    holder: Option<&Credential>,
    location: &Location,
) -> Result<(), StoreError> {
    let subject = location_subject(tx, holder, location)?;
    log.record(draft(
        actor,
        "location.record",
        subject,
        None,
        None,
        Some(snapshot(location)),
    ));
    Ok(())
}

/// Stores a copy seen now (new, seen again, or live again after it was removed), linked
/// to the first credential with its fingerprint: the copy as stored, and that credential.
fn upsert_copy(
    tx: &mut dyn Tx,
    actor: &Actor,
    fingerprint: &Fingerprint,
    kind: LocationKind,
    locator: &str,
) -> Result<(Location, Option<Credential>), StoreError> {
    let credential = tx.credentials_by_fingerprint(fingerprint)?.into_iter().next();
    let seen = Location {
        id: 0,
        credential_id: credential.as_ref().map(|credential| credential.id),
        fingerprint: fingerprint.clone(),
        kind,
        locator: locator.to_string(),
        first_seen: actor.now,
        last_seen: actor.now,
        removed_at: None,
        dismissed: false,
    };
    seen.validate()?;
    let location = tx.upsert_location(&seen)?;
    Ok((location, credential))
}

/// The position of a copy in its place (see [`place_of`]): line and column of a file,
/// line of a message or ticket; `(0, 0)` when the locator has none.
fn position_in_place(kind: LocationKind, locator: &str) -> (u64, u64) {
    let mut numbers = locator[place_of(kind, locator).len()..]
        .split(':')
        .filter_map(|number| number.parse::<u64>().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// Which copies that a scan no longer saw at their positions (`from`, sorted) moved to
/// which new positions (`to`, sorted) of the same place, as pairs of indexes: as many as
/// the shorter list has, in order (lines move together: an edit above shifts all below
/// it), at the least cost, where a move costs twice its distance in lines plus one when it
/// goes down or along the line. So the nearest pairing wins, and between equally near ones
/// copies that moved up (a line deleted above: cleaning up an earlier copy is how one copy
/// of two goes away), so the copy that was deleted is the one left over, not the one still
/// there.
fn pair_moves(from: &[(u64, u64)], to: &[(u64, u64)]) -> Vec<(usize, usize)> {
    let (short, long, swapped) = if from.len() <= to.len() {
        (from, to, false)
    } else {
        (to, from, true)
    };
    let (n, m) = (short.len(), long.len());
    let pair = |short_index: usize, long_index: usize| {
        if swapped {
            (long_index, short_index)
        } else {
            (short_index, long_index)
        }
    };
    // Equal counts, or too many to weigh (a file with thousands of copies of a secret):
    // in order.
    if n == m || n * m > 4_000_000 {
        return (0..n).map(|index| pair(index, index)).collect();
    }
    let cost = |i: usize, j: usize| {
        let (old, new) = if swapped {
            (long[j], short[i])
        } else {
            (short[i], long[j])
        };
        // Twice the distance in lines, plus one for a move down or along the line.
        2 * old.0.abs_diff(new.0) + u64::from(new >= old)
    };
    // best[i][j]: the least cost of pairing the first i of `short` with i of the first j
    // of `long`, all of `short` paired.
    const NONE: u64 = u64::MAX;
    let mut best = vec![vec![NONE; m + 1]; n + 1];
    best[0].fill(0);
    for i in 1..=n {
        for j in i..=m {
            let skip = best[i][j - 1];
            let take = best[i - 1][j - 1].saturating_add(cost(i - 1, j - 1));
            best[i][j] = skip.min(take);
        }
    }
    let mut pairs = Vec::with_capacity(n);
    let (mut i, mut j) = (n, m);
    while i > 0 {
        if best[i][j] == best[i][j - 1] && j > i {
            j -= 1;
        } else {
            pairs.push(pair(i - 1, j - 1));
            i -= 1;
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// What an event about a copy is about: the identity holding its credential, if the
/// inventory has one, else the copy itself.
fn location_subject(
    tx: &mut dyn Tx,
    holder: Option<&Credential>,
    location: &Location,
) -> Result<Subject<'static>, StoreError> {
    Ok(match holder {
        Some(credential) => {
            let identity = resolve_identity(tx, &format!("#{}", credential.identity_id.0))?;
            ("identity", identity.id.0, identity_subject(&identity))
        }
        None => (
            "location",
            location.id,
            format!("{}:{}", location.kind, location.locator),
        ),
    })
}

/// Records one copy (see [`record_copy`]).
pub(crate) fn record_location(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    fingerprint: &Fingerprint,
    kind: LocationKind,
    locator: &str,
) -> Result<Location, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let location = record_copy(tx, &mut log, actor, fingerprint, kind, locator)?;
    log.finish(tx, actor.now)?;
    Ok(location)
}

/// Marks a live copy removed, or dismisses a copy not yet dismissed, with an event (see
/// [`crate::Store::remove_location`]).
pub(crate) fn remove_location(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    fingerprint: &Fingerprint,
    (kind, locator): (LocationKind, &str),
    reason: &str,
    dismiss: bool,
) -> Result<Location, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let before = tx
        .locations_by_fingerprint(fingerprint)?
        .into_iter()
        .find(|location| {
            location.kind == kind
                && location.locator == locator
                && if dismiss {
                    !location.dismissed
                } else {
                    location.removed_at.is_none()
                }
        })
        .ok_or_else(|| StoreError::UnknownLocation {
            kind: kind.to_string(),
            locator: locator.to_string(),
        })?;
    let after = mark_removed(tx, &mut log, actor, before, reason, dismiss)?;
    log.finish(tx, actor.now)?;
    Ok(after)
}

/// Marks copy `before` removed now (keeping an earlier removal time), with a
/// `location.remove` event for `reason`, or dismissed (`location.dismiss`).
fn mark_removed(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    before: Location,
    reason: &str,
    dismiss: bool,
) -> Result<Location, StoreError> {
    let removed_at = before.removed_at.unwrap_or(actor.now);
    tx.mark_location_removed(before.id, removed_at, dismiss)?;
    let after = Location {
        removed_at: Some(removed_at),
        dismissed: dismiss,
        ..before.clone()
    };
    let action = if dismiss { "location.dismiss" } else { "location.remove" };
    log_location_change(tx, log, actor, action, reason, &before, &after)?;
    Ok(after)
}

/// A locator without its position in the place (`path:line:column` and a notebook cell's
/// `…#cellN/field:line:column` → `path`, `…#cellN/field`; a message's or ticket's
/// `…:line` → `…`): the copies of one secret at one place, wherever in it.
fn place_of(kind: LocationKind, locator: &str) -> &str {
    let numbers = if matches!(kind, LocationKind::ConfigFile | LocationKind::Document) {
        2
    } else {
        1
    };
    let mut place = locator;
    for _ in 0..numbers {
        match place.rsplit_once(':') {
            Some((rest, number)) if !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()) => {
                place = rest
            }
            _ => return locator,
        }
    }
    place
}

/// Moves a recorded copy to `locator` in the same place, with a `location.move` event.
fn relocate(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    before: Location,
    locator: &str,
) -> Result<Location, StoreError> {
    tx.relocate_location(before.id, locator, actor.now)?;
    let after = Location {
        locator: locator.to_string(),
        last_seen: before.last_seen.max(actor.now),
        ..before.clone()
    };
    log_location_change(
        tx,
        log,
        actor,
        "location.move",
        "found again at another position of its place by a scan",
        &before,
        &after,
    )?;
    Ok(after)
}

/// Records `action` on a copy, from `before` to `after`, about the identity holding the
/// credential it is attached to (else the copy itself).
fn log_location_change(
    tx: &mut dyn Tx,
    log: &mut EventLog<'_>,
    actor: &Actor,
    action: &str,
    reason: &str,
    before: &Location,
    after: &Location,
) -> Result<(), StoreError> {
    let holder = tx
        .credentials_by_fingerprint(&after.fingerprint)?
        .into_iter()
        .find(|credential| Some(credential.id) == after.credential_id);
    let subject = location_subject(tx, holder.as_ref(), after)?;
    log.record(draft(
        actor,
        action,
        subject,
        Some(reason),
        Some(snapshot(before)),
        Some(snapshot(after)),
    ));
    Ok(())
}

/// Records what a scan found, in one transaction: each secret (rule and redacted preview;
/// an event when it is new), each of its copies (see [`record_copy`]), and, inside the
/// places the scan read completely, the live copies it did not see again as removed.
pub(crate) fn record_scan(
    tx: &mut dyn Tx,
    key: Option<&SigningKey>,
    actor: &Actor,
    records: &[ScanRecord],
    covered: &[ScanScope],
) -> Result<ScanRecorded, StoreError> {
    let mut log = EventLog::begin(tx, key)?;
    let mut recorded = Vec::new();
    let mut all_seen_again = Vec::new();
    for record in records {
        let secret = ScannedSecret {
            fingerprint: record.fingerprint.clone(),
            rule_id: record.rule_id.clone(),
            rule_name: record.rule_name.clone(),
            preview: record.preview.clone(),
            first_seen: actor.now,
            last_seen: actor.now,
        };
        secret.validate()?;
        let (id, new) = tx.upsert_scanned_secret(&secret)?;
        if new {
            log.record(draft(
                actor,
                "secret.record",
                ("scanned_secret", id, format!("{} {}", secret.rule_id, secret.preview)),
                None,
                None,
                Some(snapshot(&secret)),
            ));
        }
        // A copy whose line moved (lines added or deleted above it) is the copy recorded
        // before at another line of the same file or message: it is moved, keeping its
        // first sighting, not removed and found anew (see `pair_moves`).
        let known = tx.locations_by_fingerprint(&record.fingerprint)?;
        // Maps, not scans of lists: a blob in 10,000 commits is 10,000 copies.
        let known_at: HashMap<(LocationKind, &str), &Location> = known
            .iter()
            .map(|location| ((location.kind, location.locator.as_str()), location))
            .collect();
        // A secret twice at one locator (places without columns: a message, a ticket
        // field, a line of history) is one copy.
        let mut seen_now: HashSet<(LocationKind, &str)> = HashSet::new();
        let copies: Vec<(LocationKind, &str)> = record
            .copies
            .iter()
            .map(|(kind, locator)| (*kind, locator.as_str()))
            .filter(|copy| seen_now.insert(*copy))
            .collect();
        // By place: live copies not seen again, and copies seen at no known position.
        type ByPlace<'a, T> = HashMap<(LocationKind, &'a str), Vec<T>>;
        // Live copies, and dismissed ones (a line added above a dismissed copy moves it,
        // still dismissed).
        let mut gone: ByPlace<'_, &Location> = HashMap::new();
        for location in &known {
            if (location.removed_at.is_none() || location.dismissed)
                && !seen_now.contains(&(location.kind, location.locator.as_str()))
            {
                gone.entry((location.kind, place_of(location.kind, &location.locator)))
                    .or_default()
                    .push(location);
            }
        }
        let mut appeared: ByPlace<'_, &str> = HashMap::new();
        for &(kind, locator) in &copies {
            if !known_at.contains_key(&(kind, locator)) {
                appeared
                    .entry((kind, place_of(kind, locator)))
                    .or_default()
                    .push(locator);
            }
        }
        let mut moved_from: HashMap<&str, &Location> = HashMap::new();
        for (place, mut before) in gone {
            let Some(mut after) = appeared.remove(&place) else {
                continue;
            };
            before.sort_by_key(|location| position_in_place(place.0, &location.locator));
            after.sort_by_key(|locator| position_in_place(place.0, locator));
            let from: Vec<_> = before
                .iter()
                .map(|location| position_in_place(place.0, &location.locator))
                .collect();
            let to: Vec<_> = after
                .iter()
                .map(|locator| position_in_place(place.0, locator))
                .collect();
            for (old, new) in pair_moves(&from, &to) {
                moved_from.insert(after[new], before[old]);
            }
        }
        let mut seen_again = Vec::new();
        for (kind, locator) in copies {
            let here = known_at.get(&(kind, locator));
            if here.is_some_and(|location| location.dismissed) {
                // Dismissed by hand (still there, the risk accepted): it stays so.
                continue;
            }
            if let Some(here) = here.filter(|location| location.removed_at.is_none()) {
                // Seen again where it was: only its last sighting moves (one event for
                // all of them, below, rather than one per copy per scan), unless it now
                // belongs to a credential added since, which is an event of its own.
                let (location, holder) = upsert_copy(tx, actor, &record.fingerprint, kind, locator)?;
                if holder.is_some() && here.credential_id.is_none() {
                    log_copy(tx, &mut log, actor, holder.as_ref(), &location)?;
                } else {
                    seen_again.push(location.id);
                }
                recorded.push(location);
                continue;
            }
            recorded.push(match moved_from.get(locator) {
                Some(&before) => relocate(tx, &mut log, actor, before.clone(), locator)?,
                None => record_copy(tx, &mut log, actor, &record.fingerprint, kind, locator)?,
            });
        }
        all_seen_again.extend(seen_again);
    }
    if !all_seen_again.is_empty() {
        all_seen_again.sort_unstable();
        log.record(draft(
            actor,
            "location.seen",
            (
                "scan",
                all_seen_again[0],
                format!("{} known copies seen again", all_seen_again.len()),
            ),
            None,
            None,
            Some(
                serde_json::json!({"last_seen": steward_core::time::format_instant(actor.now), "location_ids": all_seen_again})
                    .to_string(),
            ),
        ));
    }
    let seen: HashSet<i64> = recorded.iter().map(|location| location.id).collect();
    let mut removed = Vec::new();
    let found_by: HashMap<Fingerprint, String> = if covered.is_empty() {
        HashMap::new()
    } else {
        tx.scanned_secrets()?
            .into_iter()
            .map(|secret| (secret.fingerprint, secret.rule_id))
            .collect()
    };
    for scope in covered {
        for location in tx.live_locations_under(scope.kind, &scope.prefix)? {
            let by_a_rule_run_now = found_by
                .get(&location.fingerprint)
                .is_some_and(|rule| scope.rule_ids.contains(rule));
            if seen.contains(&location.id) || !by_a_rule_run_now || !scope.covers(location.kind, &location.locator) {
                continue;
            }
            let location = mark_removed(
                tx,
                &mut log,
                actor,
                location,
                "not found again by a scan of its place",
                false,
            )?;
            removed.push(location);
        }
    }
    log.finish(tx, actor.now)?;
    Ok(ScanRecorded {
        seen: recorded,
        removed,
    })
}

/// Every secret with live copies (recorded by scans or by `credential locate`), first
/// seen first, with what the scan recorded of it, the credentials that hold it and its
/// live copies.
pub(crate) fn scan_findings(tx: &mut dyn Tx) -> Result<Vec<ScanFinding>, StoreError> {
    let mut scanned: HashMap<Fingerprint, ScannedSecret> = tx
        .scanned_secrets()?
        .into_iter()
        .map(|secret| (secret.fingerprint.clone(), secret))
        .collect();
    let mut findings = Vec::new();
    for fingerprint in tx.located_fingerprints()? {
        let holders = credentials_with_fingerprint(tx, &fingerprint)?;
        let copies = tx
            .locations_by_fingerprint(&fingerprint)?
            .into_iter()
            .filter(|location| location.removed_at.is_none())
            .collect();
        findings.push(ScanFinding {
            secret: scanned.remove(&fingerprint),
            fingerprint,
            holders,
            copies,
        });
    }
    Ok(findings)
}

/// The credentials (with their identities) that hold a secret with `fingerprint`.
pub(crate) fn credentials_with_fingerprint(
    tx: &mut dyn Tx,
    fingerprint: &Fingerprint,
) -> Result<Vec<(Identity, Credential)>, StoreError> {
    let mut holders = Vec::new();
    for credential in tx.credentials_by_fingerprint(fingerprint)? {
        let identity = resolve_identity(tx, &format!("#{}", credential.identity_id.0))?;
        holders.push((identity, credential));
    }
    Ok(holders)
}

pub(crate) fn locations(tx: &mut dyn Tx, reference: &str) -> Result<Vec<Location>, StoreError> {
    let identity = resolve_identity(tx, reference)?;
    tx.locations_of(identity.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_pair_in_order_with_the_least_movement_and_moves_up_on_a_tie() {
        // One copy of two deleted: the one below it moved up into its place.
        assert_eq!(pair_moves(&[(2, 11), (4, 11)], &[(3, 11)]), vec![(1, 0)]);
        // One copy, two new positions: the nearest.
        assert_eq!(pair_moves(&[(2, 1)], &[(3, 1), (10, 1)]), vec![(0, 0)]);
        assert_eq!(pair_moves(&[(9, 1)], &[(3, 1), (10, 1)]), vec![(0, 1)]);
        // As far up as down: up.
        assert_eq!(pair_moves(&[(10, 1)], &[(9, 1), (11, 1)]), vec![(0, 0)]);
        // As many as there were: in order, whatever the distances.
        assert_eq!(pair_moves(&[(1, 1), (5, 1)], &[(3, 1), (70, 1)]), vec![(0, 0), (1, 1)]);
        // Lines added above two copies, and a third copy below them: the two moved.
        assert_eq!(
            pair_moves(&[(10, 1), (12, 1)], &[(20, 1), (22, 1), (30, 1)]),
            vec![(0, 0), (1, 1)]
        );
        assert!(pair_moves(&[], &[(1, 1)]).is_empty());
    }

    #[test]
    fn positions_are_the_numbers_after_the_place() {
        assert_eq!(position_in_place(LocationKind::ConfigFile, "/a/b.env:12:7"), (12, 7));
        assert_eq!(position_in_place(LocationKind::RepositoryFile, "/r@abc:x.py:3"), (3, 0));
        assert_eq!(position_in_place(LocationKind::Ticket, "OPS-1#c2"), (0, 0));
    }
}
