//! What a storage backend provides, and the one implementation of [`Store`] on top of it.
//!
//! A backend supplies transactions (as [`Tx`] primitives) and a few read queries whose
//! SQL differs; every [`Store`] method is then the same for all backends, so behaviour
//! cannot drift between SQLite and PostgreSQL.

use crate::ops::{self, Tx};
use crate::{
    Actor, EventFilter, ExportPart, IdentityDetail, IdentityFilter, ImportAudit, ImportIdentity, ImportSummary,
    KnownSecret, ScanFinding, ScanRecord, ScanRecorded, ScanScope, Store, StoreError,
};
use steward_core::audit::{
    AuditEvent, ChainProblem, ChainSummary, ChainVerifier, Checkpoint, EventFields, EventLink, Hash, SigningKey,
    VerifyingKey, content_is_intact, fields_hash,
};
use steward_core::{
    Credential, Fingerprint, Identity, IdentityPatch, LifecycleState, Location, LocationKind, NewCredential,
    NewIdentity, NewParty, Party, PartyStatus,
};

/// The backend side of a store. Public only inside this crate's private module, so it is
/// not part of the crate's API.
pub trait Backend: Send {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// Another connection to the same database, for reading in parallel (`None`: not
    /// available).
    fn second_reader(&self) -> Result<Option<Self>, StoreError>
    where
        Self: Sized,
    {
        Ok(None)
    }
    /// Runs `work` in a write transaction (serialised with other writers), committing on success.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Tx, Option<&SigningKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Like [`Backend::write`], for transactions that write very many rows (imports);
    /// backends may tune themselves for the duration.
    fn write_bulk<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Tx, Option<&SigningKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write(work)
    }
    /// Runs `work` in a read-only transaction (one consistent snapshot).
    fn read<T>(&mut self, work: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>) -> Result<T, StoreError>;
    /// Every party, by handle.
    fn list_parties(&mut self) -> Result<Vec<Party>, StoreError>;
    /// Streams events matching `filter` in sequence order as raw rows, in batches of
    /// `batch`, for verification without decoding each into an [`AuditEvent`]; `visit`
    /// returns whether to go on. `Ok(false)`: the backend has no such path (use
    /// [`Backend::stream_events`]).
    /// `spare` hands back the buffers of batches already checked, for reuse (fresh
    /// megabyte buffers would each be zeroed by the kernel first).
    fn stream_raw_events(
        &mut self,
        _filter: &EventFilter,
        _batch: usize,
        _spare: &mut dyn FnMut() -> Option<RawEvents>,
        _visit: &mut dyn FnMut(RawEvents) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Streams events matching `filter` in sequence order.
    fn stream_events(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(AuditEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// [`Backend::stream_events`] for verification: a row that no longer decodes is
    /// passed as `Err(seq)` (an altered event, named at its place in the chain) instead of
    /// ending the stream with an error. By default every row is expected to decode.
    fn stream_events_to_verify(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(Result<AuditEvent, i64>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.stream_events(filter, &mut |event| visit(Ok(event)))
    }
    /// The identities matching `filter` by system and name, in batches of at most `batch`,
    /// all read from one snapshot; for [`BatchContents::Inventory`] every party first and
    /// each identity's credentials (by creation and id).
    fn identity_batches(
        &mut self,
        filter: &IdentityFilter,
        batch: usize,
        contents: BatchContents,
        visit: &mut dyn FnMut(ExportPart) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Every checkpoint, by sequence number.
    fn list_checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError>;
}

/// The migrations still to apply to a database at schema version `current`, as
/// `(version, name, sql)`; versions are positions in `migrations`, from 1. A database newer
/// than this binary is refused.
pub fn pending_migrations<'m>(
    current: i64,
    migrations: &'m [(&'m str, &'m str)],
) -> Result<Vec<(i64, &'m str, &'m str)>, StoreError> {
    if current > crate::SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: crate::SCHEMA_VERSION,
        });
    }
    Ok(migrations
        .iter()
        .enumerate()
        .map(|(index, (name, sql))| (index as i64 + 1, *name, *sql))
        .filter(|(version, _, _)| *version > current)
        .collect())
}

/// The query listing identities that match a filter (with backup approvers left `NULL`:
/// the backends look up a batch's at once, much cheaper than a subquery per row), and its
/// parameter values.
pub struct IdentityListQuery {
    /// The identities, ordered by system and name.
    pub identities: String,
    /// Its parameter values.
    pub values: Vec<String>,
}

/// Builds the [`IdentityListQuery`] for `filter`. `select_from` is the backend's
/// `SELECT … FROM identities i LEFT JOIN parties bo/ts/co` with backups as `NULL`;
/// placeholders are written `{marker}1`, `{marker}2`… (`?` for SQLite, `$` for PostgreSQL).
pub fn identity_list_query(select_from: &str, filter: &IdentityFilter, marker: char) -> IdentityListQuery {
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut add = |condition: &str, value: String| {
        values.push(value);
        conditions.push(condition.replace('?', &format!("{marker}{}", values.len())));
    };
    if let Some(system) = &filter.system {
        add("i.system = ?", system.clone());
    }
    if let Some(tier) = filter.tier {
        add("i.tier = ?", tier.as_str().to_string());
    }
    if let Some(environment) = &filter.environment {
        add("i.environment = ?", environment.clone());
    }
    if let Some(state) = filter.state {
        add("i.state = ?", state.as_str().to_string());
    }
    if let Some(kind) = filter.kind {
        add("i.kind = ?", kind.as_str().to_string());
    }
    if let Some(party) = &filter.party {
        add(
            "(? IN (bo.handle, ts.handle, co.handle) OR EXISTS (SELECT 1 FROM identity_backup_approvers b
                 JOIN parties p ON p.id = b.party_id WHERE b.identity_id = i.id AND p.handle = ?))",
            party.clone(),
        );
    }
    let mut tail = String::new();
    if !conditions.is_empty() {
        tail.push_str(" WHERE ");
        tail.push_str(&conditions.join(" AND "));
    }
    tail.push_str(" ORDER BY i.system, i.name");
    if let Some(limit) = filter.limit {
        tail.push_str(&format!(" LIMIT {limit}"));
    }
    IdentityListQuery {
        identities: format!("SELECT {select_from}{tail}"),
        values,
    }
}

/// Fills in backup approvers from `(identity_id, handle)` rows in position order.
fn attach_backups(identities: &mut [Identity], rows: impl IntoIterator<Item = (i64, String)>) {
    let index: std::collections::HashMap<i64, usize> = identities
        .iter()
        .enumerate()
        .map(|(position, identity)| (identity.id.0, position))
        .collect();
    for (identity_id, handle) in rows {
        if let Some(position) = index.get(&identity_id) {
            identities[*position].roles.backup_approvers.push(handle);
        }
    }
}

/// Runs `read` on a thread of its own, one part ahead of `visit`, which takes on this
/// thread each part `read` sends: a listing or an export then reads (and on SQLite
/// decodes) the next batch while the caller writes the last one out. A failing `visit`
/// stops `read` at its next part (its send fails) and is the error returned.
pub fn read_ahead<T: Send>(
    read: impl FnOnce(&mut dyn FnMut(T) -> Result<(), StoreError>) -> Result<(), StoreError> + Send,
    visit: &mut dyn FnMut(T) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let reader = scope.spawn(move || {
            read(&mut |part| {
                sender
                    .send(part)
                    .map_err(|_| StoreError::Callback("the reader was stopped".into()))
            })
        });
        let visited = receiver.into_iter().try_for_each(visit);
        let read = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        visited.and(read)
    })
}

/// Identities per batch of [`Store::export_inventory`]: large enough that the two
/// queries a batch costs are few, small enough that a batch is a few megabytes.
pub const EXPORT_BATCH: usize = 2048;

/// Identities per batch of [`Store::for_each_identity_batch`].
pub const LIST_BATCH: usize = 2048;

/// What [`Backend::identity_batches`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchContents {
    /// Identities with their backup approvers (a listing).
    Identities,
    /// Every party first, then identities with their credentials too (an export).
    Inventory,
}

/// `identities` (in order) with their backup approvers from `(identity_id, handle)` rows
/// in position order, and `credentials` (ordered by identity) grouped under them.
pub fn export_batch(
    mut identities: Vec<Identity>,
    backups: impl IntoIterator<Item = (i64, String)>,
    credentials: Vec<Credential>,
) -> ExportPart {
    attach_backups(&mut identities, backups);
    let mut held: std::collections::HashMap<i64, Vec<Credential>> = std::collections::HashMap::new();
    for credential in credentials {
        held.entry(credential.identity_id.0).or_default().push(credential);
    }
    ExportPart::Identities(
        identities
            .into_iter()
            .map(|identity| {
                let credentials = held.remove(&identity.id.0).unwrap_or_default();
                (identity, credentials)
            })
            .collect(),
    )
}

/// The query streaming audit events that match `filter`, in sequence order, with its
/// parameter values; placeholders as in [`identity_list_query`].
pub fn event_query(filter: &EventFilter, marker: char) -> (String, Vec<i64>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    match (filter.subject_kind.as_deref(), filter.subject_id) {
        (Some("identity"), Some(id)) => {
            // An identity created by a summary import has no event of its own: the import
            // event of its chunk names the chunk's first identity, at most IMPORT_CHUNK - 1
            // before it (see `covers`, which drops chunks that end before it).
            values.push(id);
            values.push(id.saturating_sub(ops::IMPORT_CHUNK as i64 - 1));
            let (id, low) = (values.len() - 1, values.len());
            conditions.push(format!(
                "((subject_kind = 'identity' AND subject_id = {marker}{id}) OR (subject_kind = '{}' AND \
                 subject_id BETWEEN {marker}{low} AND {marker}{id}))",
                ops::IMPORT_SUBJECT
            ));
        }
        (kind, id) => {
            if let Some(kind) = kind {
                // Subject kinds are fixed words chosen by steward, inlined so the parameters
                // stay all numeric; anything else cannot be a stored kind and matches nothing.
                if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    conditions.push(format!("subject_kind = '{kind}'"));
                } else {
                    conditions.push("1 = 0".to_string());
                }
            }
            if let Some(id) = id {
                values.push(id);
                conditions.push(format!("subject_id = {marker}{}", values.len()));
            }
        }
    }
    if let Some(since) = filter.since_seq {
        values.push(since);
        conditions.push(format!("seq >= {marker}{}", values.len()));
    }
    if let Some(until) = filter.until_seq {
        values.push(until);
        conditions.push(format!("seq <= {marker}{}", values.len()));
    }
    let columns =
        "seq, at, actor, action, subject_kind, subject_id, subject_name, reason, before, after, prev_hash, hash";
    let mut inner = format!("SELECT {columns} FROM audit_events");
    if !conditions.is_empty() {
        inner.push_str(" WHERE ");
        inner.push_str(&conditions.join(" AND "));
    }
    let sql = match filter.limit {
        Some(limit) => format!("SELECT * FROM ({inner} ORDER BY seq DESC LIMIT {limit}) AS newest ORDER BY seq"),
        None => format!("{inner} ORDER BY seq"),
    };
    (sql, values)
}

impl<B: Backend + 'static> Store for B {
    fn backend_name(&self) -> &'static str {
        self.name()
    }

    fn add_party(&mut self, actor: &Actor, party: NewParty) -> Result<Party, StoreError> {
        self.write(|tx, key| ops::add_party(tx, key, actor, &party))
    }

    fn party(&mut self, handle: &str) -> Result<Party, StoreError> {
        self.read(|tx| {
            tx.party_by_handle(handle)?
                .ok_or_else(|| StoreError::UnknownParty(handle.to_string()))
        })
    }

    fn parties(&mut self) -> Result<Vec<Party>, StoreError> {
        self.list_parties()
    }

    fn set_party_status(
        &mut self,
        actor: &Actor,
        handle: &str,
        status: PartyStatus,
        reason: Option<&str>,
    ) -> Result<Party, StoreError> {
        self.write(|tx, key| ops::set_party_status(tx, key, actor, handle, status, reason))
    }

    fn add_identity(&mut self, actor: &Actor, identity: NewIdentity) -> Result<Identity, StoreError> {
        self.write(|tx, key| ops::add_identity(tx, key, actor, identity))
    }

    fn identity(&mut self, reference: &str) -> Result<Identity, StoreError> {
        self.read(|tx| ops::resolve_identity(tx, reference))
    }

    fn identities(&mut self, filter: &IdentityFilter) -> Result<Vec<Identity>, StoreError> {
        let mut identities = Vec::new();
        self.for_each_identity_batch(filter, &mut |batch| {
            identities.extend(batch);
            Ok(())
        })?;
        Ok(identities)
    }

    fn update_identity(
        &mut self,
        actor: &Actor,
        reference: &str,
        patch: &IdentityPatch,
        reason: Option<&str>,
    ) -> Result<Identity, StoreError> {
        self.write(|tx, key| ops::update_identity(tx, key, actor, reference, patch, reason))
    }

    fn transition_identity(
        &mut self,
        actor: &Actor,
        reference: &str,
        to: LifecycleState,
        reason: &str,
    ) -> Result<Identity, StoreError> {
        self.write(|tx, key| ops::transition_identity(tx, key, actor, reference, to, reason))
    }

    fn add_credential(
        &mut self,
        actor: &Actor,
        reference: &str,
        credential: NewCredential,
    ) -> Result<Credential, StoreError> {
        self.write(|tx, key| ops::add_credential(tx, key, actor, reference, &credential))
    }

    fn credentials(&mut self, reference: &str) -> Result<IdentityDetail, StoreError> {
        self.read(|tx| ops::credentials(tx, reference))
    }

    fn export_inventory(
        &mut self,
        visit: &mut dyn FnMut(ExportPart) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.identity_batches(
            &IdentityFilter::default(),
            EXPORT_BATCH,
            BatchContents::Inventory,
            visit,
        )
    }

    fn for_each_identity_batch(
        &mut self,
        filter: &IdentityFilter,
        visit: &mut dyn FnMut(Vec<Identity>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.identity_batches(filter, LIST_BATCH, BatchContents::Identities, &mut |part| match part {
            ExportPart::Identities(batch) => visit(batch.into_iter().map(|(identity, _)| identity).collect()),
            ExportPart::Parties(_) | ExportPart::Secrets(_) => Ok(()),
        })
    }

    fn revoke_credential(
        &mut self,
        actor: &Actor,
        reference: &str,
        credential: &str,
        reason: &str,
    ) -> Result<Credential, StoreError> {
        self.write(|tx, key| ops::revoke_credential(tx, key, actor, reference, credential, reason))
    }

    fn record_location(
        &mut self,
        actor: &Actor,
        fingerprint: &Fingerprint,
        kind: LocationKind,
        locator: &str,
    ) -> Result<Location, StoreError> {
        self.write(|tx, key| ops::record_location(tx, key, actor, fingerprint, kind, locator))
    }

    fn remove_location(
        &mut self,
        actor: &Actor,
        fingerprint: &Fingerprint,
        kind: LocationKind,
        locator: &str,
        reason: &str,
        dismiss: bool,
    ) -> Result<Location, StoreError> {
        self.write(|tx, key| ops::remove_location(tx, key, actor, fingerprint, (kind, locator), reason, dismiss))
    }

    fn record_scan(
        &mut self,
        actor: &Actor,
        records: &[ScanRecord],
        covered: &[ScanScope],
    ) -> Result<ScanRecorded, StoreError> {
        self.write(|tx, key| ops::record_scan(tx, key, actor, records, covered))
    }

    fn scan_findings(&mut self) -> Result<Vec<ScanFinding>, StoreError> {
        self.read(ops::scan_findings)
    }

    fn credentials_with_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
    ) -> Result<Vec<(Identity, Credential)>, StoreError> {
        self.read(|tx| ops::credentials_with_fingerprint(tx, fingerprint))
    }

    fn locations(&mut self, reference: &str) -> Result<Vec<Location>, StoreError> {
        self.read(|tx| ops::locations(tx, reference))
    }

    fn import_with_secrets(
        &mut self,
        actor: &Actor,
        source: &str,
        audit: ImportAudit,
        parties: &[NewParty],
        identities: &mut dyn Iterator<Item = Result<ImportIdentity, StoreError>>,
        secrets: &[KnownSecret],
    ) -> Result<ImportSummary, StoreError> {
        let records = ops::ImportRecords { parties, secrets };
        self.write_bulk(|tx, key| ops::import(tx, key, actor, source, audit, records, identities))
    }

    fn for_each_event(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(AuditEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match (filter.subject_kind.as_deref(), filter.subject_id) {
            (Some("identity"), Some(id)) => self.stream_events(filter, &mut |event| {
                if event.draft.subject_kind != ops::IMPORT_SUBJECT || ops::covers(&event, id) {
                    visit(event)?;
                }
                Ok(())
            }),
            _ => self.stream_events(filter, visit),
        }
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError> {
        self.list_checkpoints()
    }

    fn verify_audit_split(
        &mut self,
        key: &VerifyingKey,
        split_after: Option<i64>,
    ) -> Result<Result<ChainSummary, ChainProblem>, StoreError> {
        let mut verifier = match ChainVerifier::new(*key, self.list_checkpoints()?) {
            Ok(verifier) => verifier,
            Err(problem) => return Ok(Err(problem)),
        };
        let split = match split_after {
            // Without a second connection (connection limits), one pass does the same job.
            Some(after) if after >= 1 => self.second_reader().ok().flatten().map(|reader| (after, reader)),
            _ => None,
        };
        let Some((after, mut reader)) = split else {
            let (verifier, problem) = verify_segment(self, &EventFilter::default(), verifier, true)?;
            return Ok(problem.map_or_else(|| verifier.finish(), Err));
        };
        // Two connections, each streaming and hashing one half of the chain; the halves
        // are joined so the outcome is that of one pass (`ChainVerifier::split_at`).
        let later = verifier.split_at(after);
        std::thread::scope(|scope| {
            let second = scope.spawn(move || {
                let filter = EventFilter {
                    since_seq: Some(after + 1),
                    ..Default::default()
                };
                verify_segment(&mut reader, &filter, later, false)
            });
            let filter = EventFilter {
                until_seq: Some(after),
                ..Default::default()
            };
            let earlier = verify_segment(self, &filter, verifier, false);
            let later = second.join().expect("the audit reading thread does not panic");
            let (earlier, earlier_problem) = earlier?;
            let (later, later_problem) = later?;
            Ok(later.join(earlier.end_segment(earlier_problem), later_problem))
        })
    }
}

/// Audit events as stored, undecoded: one buffer and the byte range of each event in it.
pub struct RawEvents {
    /// The rows, back to back.
    pub bytes: Vec<u8>,
    /// Where each row is in `bytes`.
    pub rows: Vec<std::ops::Range<usize>>,
    /// Reads one row.
    pub decode: for<'a> fn(&'a [u8]) -> Result<RawEvent<'a>, StoreError>,
    /// Reads just the sequence number of a row that does not decode.
    pub seq_of: fn(&[u8]) -> Option<i64>,
}

/// One event of [`RawEvents`], borrowed.
pub struct RawEvent<'a> {
    /// Sequence number.
    pub seq: i64,
    /// Its content.
    pub fields: EventFields<'a>,
    /// Stored hash of the event before.
    pub prev_hash: Hash,
    /// Stored hash.
    pub hash: Hash,
}

/// A batch on its way from the reading thread to the checking one.
enum Batch {
    /// Decoded events; `Err(seq)` for a row that no longer decodes.
    Decoded(Vec<Result<AuditEvent, i64>>),
    Raw(RawEvents),
}

impl Batch {
    /// What the sequential check needs of each event: its content hash is computed here
    /// (each depends on its event alone), on every core when `parallel`.
    fn links(&self, links: &mut Vec<EventLink>, parallel: bool) -> Result<(), StoreError> {
        match self {
            Batch::Decoded(events) => {
                fill_links(links, parallel, events, |event| match event {
                    Ok(event) => EventLink::of(event, content_is_intact(event)),
                    Err(seq) => EventLink::undecodable(*seq),
                });
                Ok(())
            }
            Batch::Raw(raw) => {
                // A row that is not even a row of events (no sequence number) is marked
                // and its error read again afterwards.
                fill_links(links, parallel, &raw.rows, |row| {
                    let bytes = &raw.bytes[row.clone()];
                    match (raw.decode)(bytes) {
                        Ok(event) => EventLink {
                            seq: event.seq,
                            prev_hash: event.prev_hash,
                            hash: event.hash,
                            intact: fields_hash(&event.prev_hash, event.seq, &event.fields) == event.hash,
                            decodable: true,
                        },
                        // A row that cannot be read was altered: a problem at its place in
                        // the chain (named in order, whichever half or batch it is in).
                        Err(_) => EventLink::undecodable((raw.seq_of)(bytes).unwrap_or(UNREADABLE_ROW)),
                    }
                });
                match links
                    .iter()
                    .position(|link| !link.decodable && link.seq == UNREADABLE_ROW)
                {
                    Some(index) => (raw.decode)(&raw.bytes[raw.rows[index].clone()]).map(|_| ()),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Batch {
    /// Checks the batch's events in order: `Ok(Some(problem))` at the first problem.
    fn check(
        &self,
        links: &mut Vec<EventLink>,
        parallel: bool,
        verifier: &mut ChainVerifier,
    ) -> Result<Option<ChainProblem>, StoreError> {
        self.links(links, parallel)?;
        Ok(links.iter().find_map(|link| verifier.push_link(link).err()))
    }
}

impl RawEvents {
    /// The same buffers, emptied, for the next batch.
    fn emptied(mut self) -> RawEvents {
        self.bytes.clear();
        self.rows.clear();
        self
    }
}

/// `links` becomes the link of each item, in order: on every core when `parallel`, else
/// on this thread.
fn fill_links<T: Sync>(
    links: &mut Vec<EventLink>,
    parallel: bool,
    items: &[T],
    link: impl Fn(&T) -> EventLink + Sync + Send,
) {
    use rayon::prelude::*;
    if parallel {
        items.par_iter().map(link).collect_into_vec(links);
    } else {
        links.clear();
        links.extend(items.iter().map(link));
    }
}

/// The sequence number that marks a row without one (a link that is not kept).
const UNREADABLE_ROW: i64 = i64::MIN;

/// Streams the events of `filter` into `verifier` and returns it with the first problem,
/// if any (reading stops there).
///
/// - One of two segments verified at once (`parallel` false), from a backend that has raw
///   rows: read and checked on this thread, in batches small enough to stay in the CPU's
///   cache between being copied and being hashed. Two segments already keep two threads
///   busy (and the server two more); hand-offs to other threads only add work.
///   PostgreSQL, 1M events, interleaved runs: 1.68-1.76 s and 20-22 MiB against
///   1.80-1.97 s and 69-120 MiB with a checking thread per segment, and 1.95-2.25 s and
///   137 MiB with rayon hashing as well.
/// - Otherwise one thread reads while another checks, handing events over in batches;
///   each batch's content hashes (which depend on each event alone) are computed first,
///   on every core when `parallel`, then links and checkpoints in sequence.
fn verify_segment<B: Backend>(
    store: &mut B,
    filter: &EventFilter,
    mut verifier: ChainVerifier,
    parallel: bool,
) -> Result<(ChainVerifier, Option<ChainProblem>), StoreError> {
    const BATCH: usize = 4096;
    /// About 200 KB of rows.
    const INLINE_BATCH: usize = 128;
    if !parallel {
        let mut links = Vec::with_capacity(INLINE_BATCH);
        let mut outcome = Ok(None);
        let spare = std::cell::Cell::new(None::<RawEvents>);
        let streamed = store.stream_raw_events(filter, INLINE_BATCH, &mut || spare.take(), &mut |raw| {
            let batch = Batch::Raw(raw);
            outcome = batch.check(&mut links, false, &mut verifier);
            if !matches!(outcome, Ok(None)) {
                return Ok(false);
            }
            if let Batch::Raw(raw) = batch {
                spare.set(Some(raw.emptied()));
            }
            Ok(true)
        })?;
        if streamed {
            return outcome.map(|problem| (verifier, problem));
        }
    }
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Batch>(4);
    let (give_back, spares) = std::sync::mpsc::channel::<RawEvents>();
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || -> Result<_, StoreError> {
            let mut links = Vec::with_capacity(BATCH);
            for batch in receiver {
                if let Some(problem) = batch.check(&mut links, parallel, &mut verifier)? {
                    return Ok((verifier, Some(problem)));
                }
                if let Batch::Raw(raw) = batch {
                    let _ = give_back.send(raw.emptied());
                }
            }
            Ok((verifier, None))
        });
        // The hasher stops at the first problem (or undecodable row); the rest need no
        // reading.
        let raw = store.stream_raw_events(filter, BATCH, &mut || spares.try_recv().ok(), &mut |raw| {
            Ok(sender.send(Batch::Raw(raw)).is_ok())
        });
        let read = match raw {
            Ok(true) => Ok(()),
            Ok(false) => {
                let mut batch = Vec::with_capacity(BATCH);
                let mut hasher_stopped = false;
                let read = store.stream_events_to_verify(filter, &mut |event| {
                    if !hasher_stopped {
                        batch.push(event);
                        if batch.len() == BATCH {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                            hasher_stopped = sender.send(Batch::Decoded(full)).is_err();
                        }
                    }
                    Ok(())
                });
                if !batch.is_empty() && !hasher_stopped {
                    let _ = sender.send(Batch::Decoded(batch));
                }
                read
            }
            Err(error) => Err(error),
        };
        drop(sender);
        let outcome = hasher.join().expect("the audit hashing thread does not panic");
        read.and(outcome)
    })
}
