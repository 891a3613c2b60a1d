//! The PostgreSQL backend, for teams and for several `steward serve` replicas sharing one
//! database. Bulk imports use binary `COPY`; audit appends take a transaction-scoped
//! advisory lock so concurrent writers extend the chain one at a time.

use crate::backend::{
    Backend, BatchContents, RawEvent, RawEvents, event_query, export_batch, identity_list_query, pending_migrations,
    read_ahead,
};
use crate::error::{StoreError, redact_url};
use crate::ops::{IdSequence, IdentityRef, IdentityRow, Tx};
use crate::pg_tls::Tls;
use crate::{EventFilter, ExportPart, IdentityFilter};
use bytes::BufMut;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Row};
use std::error::Error as StdError;
use steward_core::ScannedSecret;
use steward_core::audit::{AuditEvent, Checkpoint, EventDraft, EventFields, Hash, SigningKey};
use steward_core::{
    Credential, CredentialId, Fingerprint, Identity, IdentityId, Location, NewParty, Party, PartyId, PartyStatus,
    Provenance, Roles, Scope,
};

/// Locations of identity $1's secrets: attached to one of its credentials, or holding
/// the fingerprint of one (a secret two credentials share is attached to one of them).
const OF_IDENTITY: &str = "(credential_id IN (SELECT id FROM credentials WHERE identity_id = $1)
    OR fingerprint IN (SELECT fingerprint FROM credentials WHERE identity_id = $1 AND fingerprint IS NOT NULL))";

const MIGRATIONS: &[(&str, &str)] = &[
    ("initial schema", include_str!("sql/postgres/0001_initial.sql")),
    ("scanned secrets", include_str!("sql/postgres/0002_scanned_secrets.sql")),
    (
        "identity name index",
        include_str!("sql/postgres/0003_identity_name_index.sql"),
    ),
    (
        "dismissed copies",
        include_str!("sql/postgres/0004_dismissed_copies.sql"),
    ),
];

/// Advisory lock keys (arbitrary constants, "stwd" + purpose).
const MIGRATION_LOCK: i64 = 0x7374_7764_0001;
const AUDIT_LOCK: i64 = 0x7374_7764_0002;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// A `timestamptz` in its binary form, converted from and to `jiff::Timestamp`.
#[derive(Debug, Clone, Copy)]
struct PgTimestamp(jiff::Timestamp);

impl ToSql for PgTimestamp {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i64(self.0.as_microsecond() - PG_EPOCH_OFFSET_MICROS);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgTimestamp {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let micros = i64::from_be_bytes(raw.try_into()?);
        Ok(PgTimestamp(jiff::Timestamp::from_microsecond(
            micros + PG_EPOCH_OFFSET_MICROS,
        )?))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

/// A `date` in its binary form (days since 2000-01-01).
#[derive(Debug, Clone, Copy)]
struct PgDate(jiff::civil::Date);

fn unix_days(date: jiff::civil::Date) -> i32 {
    date.since(jiff::civil::date(1970, 1, 1))
        .map(|span| span.get_days())
        .unwrap_or(0)
}

impl ToSql for PgDate {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i32(unix_days(self.0) - PG_EPOCH_OFFSET_DAYS);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgDate {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let days = i32::from_be_bytes(raw.try_into()?) + PG_EPOCH_OFFSET_DAYS;
        let date = jiff::civil::date(1970, 1, 1).checked_add(jiff::Span::new().days(i64::from(days)))?;
        Ok(PgDate(date))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }
}

/// JSON text sent as `jsonb` (binary format version 1).
#[derive(Debug)]
struct PgJsonb(String);

impl ToSql for PgJsonb {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }
    to_sql_checked!();
}

fn timestamp(at: Option<jiff::Timestamp>) -> Option<PgTimestamp> {
    at.map(PgTimestamp)
}

fn jsonb<T: serde::Serialize>(value: &T) -> PgJsonb {
    PgJsonb(serde_json::to_string(value).expect("maps of strings serialize"))
}

/// A store in a PostgreSQL database.
pub struct PostgresStore {
    client: Client,
    signing_key: Option<SigningKey>,
    /// How to open another connection to the same database (parallel audit reads).
    config: postgres::Config,
    /// Its TLS (`sslmode`, `sslrootcert`; see [`crate::pg_tls`]).
    tls: Tls,
}

impl PostgresStore {
    /// Connects to `url` (5 s timeout unless the URL sets one) and applies migrations.
    pub fn connect(url: &str, signing_key: Option<SigningKey>) -> Result<Self, StoreError> {
        let connect_error = |error: &dyn std::fmt::Display| StoreError::Connect {
            target: redact_url(url),
            reason: error.to_string(),
        };
        let (mut config, tls) = crate::pg_tls::from_url(url).map_err(|reason| connect_error(&reason))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        let client = Self::client(&config, &tls).map_err(|reason| connect_error(&reason))?;
        let mut store = PostgresStore {
            client,
            signing_key,
            config,
            tls,
        };
        store.migrate()?;
        Ok(store)
    }

    /// A session as steward uses it, or why not (with every cause).
    fn client(config: &postgres::Config, tls: &Tls) -> Result<Client, String> {
        Self::session(config, tls).map_err(|error| {
            let mut reason = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            reason
        })
    }

    /// A session as steward uses it.
    fn session(config: &postgres::Config, tls: &Tls) -> Result<Client, postgres::Error> {
        let mut client = config.connect(tls.clone())?;
        // steward's queries are short index lookups; JIT compilation only adds latency.
        client.batch_execute("SET jit = off")?;
        Ok(client)
    }

    /// Runs a binary `COPY` of the audit events matching `filter` (in sequence order, in a
    /// read-only transaction) and hands the stream, past its header, to `read`. Binary
    /// COPY streams rows without per-row protocol round trips and decodes faster than a
    /// query (measured: verify of 1M events). COPY takes no parameters; the filter's
    /// values are integers, inlined.
    fn copy_events(
        &mut self,
        filter: &EventFilter,
        read: &mut dyn FnMut(&mut dyn std::io::BufRead) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (mut sql, values) = event_query(filter, '$');
        for (index, value) in values.iter().enumerate().rev() {
            sql = sql.replace(&format!("${}", index + 1), &value.to_string());
        }
        let mut transaction = self.client.build_transaction().read_only(true).start()?;
        // The reader buffers one protocol message (a row) at a time already.
        let mut reader = transaction.copy_out(&format!("COPY ({sql}) TO STDOUT (FORMAT binary)"))?;
        read_copy_header(&mut reader).map_err(copy_error)?;
        read(&mut reader)?;
        drop(reader);
        transaction.commit()?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let mut transaction = self.client.transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        transaction.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )?;
        let current: i64 = transaction
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?
            .get(0);
        for (version, name, sql) in pending_migrations(current, MIGRATIONS)? {
            transaction.batch_execute(sql)?;
            transaction.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn query_list<T>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.client.query(sql, params)?.iter().map(decode).collect()
    }
}

struct PgTx<'c> {
    transaction: postgres::Transaction<'c>,
}

impl PgTx<'_> {
    /// Inserts `location` (its `id` aside); when (fingerprint, kind, locator) is there,
    /// keeps it as it is (`keep_existing`: then `None`) or sees it again now: last seen
    /// moved on, live, not dismissed, linked to a credential if it was not.
    fn write_location(&mut self, location: &Location, keep_existing: bool) -> Result<Option<Location>, StoreError> {
        let on_conflict = if keep_existing {
            "DO NOTHING"
        } else {
            "DO UPDATE SET last_seen = GREATEST(l.last_seen, excluded.last_seen),
                 credential_id = COALESCE(l.credential_id, excluded.credential_id),
                 removed_at = NULL, dismissed = false"
        };
        let sql = format!(
            "INSERT INTO locations AS l
                (credential_id, fingerprint, kind, locator, first_seen, last_seen, removed_at, dismissed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (fingerprint, kind, locator) {on_conflict}
             RETURNING {LOCATION_COLUMNS}"
        );
        let row = self.transaction.query_opt(
            &sql,
            &[
                &location.credential_id.map(|id| id.0),
                &location.fingerprint.as_str(),
                &location.kind.as_str(),
                &location.locator,
                &PgTimestamp(location.first_seen),
                &PgTimestamp(location.last_seen),
                &location.removed_at.map(PgTimestamp),
                &location.dismissed,
            ],
        )?;
        row.as_ref().map(location_from_row).transpose()
    }
}

/// The backup approvers of identity `i`, comma-separated in order.
const BACKUPS_SQL: &str = "(SELECT string_agg(p.handle, ',' ORDER BY b.position) FROM identity_backup_approvers b
       JOIN parties p ON p.id = b.party_id WHERE b.identity_id = i.id)";

/// `SELECT` list and `FROM` clause of identity queries; `backups` is [`BACKUPS_SQL`] or
/// `NULL` (listings look up a batch's backup approvers in one separate query).
fn identity_columns(backups: &str) -> String {
    format!(
        "i.id, i.name, i.kind, i.system, i.external_id, i.environment, i.tier,
    i.state, i.purpose, i.scope::text, i.labels::text, bo.handle, ts.handle, co.handle, {backups},
    i.created_at, i.expires_at, i.review_due, i.last_attested_at, i.last_used_at,
    i.last_rotated_at, i.source, i.observed_at
    FROM identities i
    LEFT JOIN parties bo ON bo.id = i.business_owner_id
    LEFT JOIN parties ts ON ts.id = i.technical_steward_id
    LEFT JOIN parties co ON co.id = i.control_owner_id"
    )
}

/// A part of [`Backend::identity_batches`] as read, its rows not yet decoded (decoding
/// is left to the thread that visits, so the reading one goes back to the server sooner).
enum Fetched {
    Parties(Vec<Party>),
    Secrets(Vec<crate::KnownSecret>),
    Identities {
        identities: Vec<postgres::Row>,
        approvers: Vec<postgres::Row>,
        credentials: Vec<postgres::Row>,
    },
}

impl Fetched {
    fn decode(self) -> Result<ExportPart, StoreError> {
        match self {
            Fetched::Parties(parties) => Ok(ExportPart::Parties(parties)),
            Fetched::Secrets(secrets) => Ok(ExportPart::Secrets(secrets)),
            Fetched::Identities {
                identities,
                approvers,
                credentials,
            } => Ok(export_batch(
                identities.iter().map(identity_from_row).collect::<Result<_, _>>()?,
                approvers
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?,
                credentials.iter().map(credential_from_row).collect::<Result<_, _>>()?,
            )),
        }
    }
}

/// Every scanned secret, first seen first.
fn read_scanned_secrets(client: &mut impl postgres::GenericClient) -> Result<Vec<ScannedSecret>, StoreError> {
    let rows = client.query(
        "SELECT fingerprint, rule_id, rule_name, preview, first_seen, last_seen FROM scanned_secrets
         ORDER BY first_seen, id",
        &[],
    )?;
    rows.iter()
        .map(|row| {
            Ok(ScannedSecret {
                fingerprint: Fingerprint::parse(row.try_get(0)?).map_err(|error| corrupt("scanned_secrets", error))?,
                rule_id: row.try_get(1)?,
                rule_name: row.try_get(2)?,
                preview: row.try_get(3)?,
                first_seen: row.try_get::<_, PgTimestamp>(4)?.0,
                last_seen: row.try_get::<_, PgTimestamp>(5)?.0,
            })
        })
        .collect()
}

/// A batch's lookups by id: its backup approvers, and an inventory's credentials.
struct Lookups {
    backups: postgres::Statement,
    credentials: Option<postgres::Statement>,
}

impl Lookups {
    fn prepare(client: &mut impl postgres::GenericClient, contents: BatchContents) -> Result<Self, StoreError> {
        let backups = client.prepare(
            "SELECT b.identity_id, p.handle FROM identity_backup_approvers b
             JOIN parties p ON p.id = b.party_id
             WHERE b.identity_id = ANY($1) ORDER BY b.identity_id, b.position",
        )?;
        let credentials = if contents == BatchContents::Inventory {
            Some(client.prepare(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE identity_id = ANY($1)
                 ORDER BY identity_id, created_at, id"
            ))?)
        } else {
            None
        };
        Ok(Lookups { backups, credentials })
    }

    /// The batch `identities` with what it looks up.
    fn fetch(&self, client: &mut impl postgres::GenericClient, identities: Vec<Row>) -> Result<Fetched, StoreError> {
        let ids = identities
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<i64>, _>>()?;
        let approvers = client.query(&self.backups, &[&ids])?;
        let credentials = match &self.credentials {
            Some(statement) => client.query(statement, &[&ids])?,
            None => Vec::new(),
        };
        Ok(Fetched::Identities {
            identities,
            approvers,
            credentials,
        })
    }
}

/// The planner's default cost of a random page (4, a disk's) makes it read a filtered
/// listing with a bitmap scan and a sort, which sends no row before it has found them all,
/// and look up a batch's backup approvers by scanning the whole table: on the benchmark's
/// store, 86 ms and 120 ms of a 370 ms listing. Index scans are what these lookups are
/// (steward's tables are meant to stay cached), so the transactions of a listing (both
/// connections') price a random page as a cached one (1.1, the usual SSD setting); the
/// server's own setting is untouched.
const CACHED_PAGE_COST: &str = "SET LOCAL random_page_cost = 1.1";

/// Starts the read-only repeatable-read transaction of a listing or an export.
fn begin_snapshot_read(client: &mut Client) -> Result<postgres::Transaction<'_>, StoreError> {
    let mut transaction = client
        .build_transaction()
        .read_only(true)
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()?;
    transaction.batch_execute(CACHED_PAGE_COST)?;
    Ok(transaction)
}

/// The snapshot of `transaction`, exported for another connection
/// (`pg_export_snapshot`), if the server gives one in a form it could be asked back.
fn export_snapshot(transaction: &mut postgres::Transaction<'_>) -> Result<Option<String>, StoreError> {
    let id: String = transaction.query_one("SELECT pg_export_snapshot()", &[])?.try_get(0)?;
    let plain = !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    Ok(plain.then_some(id))
}

/// [`Backend::identity_batches`]' reading: hands each part to `send` as it is read.
///
/// One repeatable-read transaction (one snapshot) reads the parties (of an inventory),
/// then identities through a portal a batch at a time, and each batch's backup approvers
/// (and an inventory's credentials) by id. When a listing fills its first batch, a second
/// connection is opened on a thread of its own, in a transaction that imports the same
/// snapshot (`pg_export_snapshot`, `SET TRANSACTION SNAPSHOT`, as `pg_dump --jobs`
/// does). Batches are looked up on this connection until the second is ready; from then on
/// this connection reads the portal on a thread of its own and the second looks the
/// batches up: the server works on both at once, on two cores (the lookups were 40% of its
/// time for the benchmark's listing, one index descent per identity). The listing never
/// waits for the second connection (a pooler may queue it for long). When the server
/// refuses the export (no privilege, a server that cannot), or the second connection
/// cannot be had for any reason (too many connections, a host that does not know the
/// snapshot, a network failure), every batch is looked up here.
fn read_identity_batches(
    store: &mut PostgresStore,
    filter: &IdentityFilter,
    batch: usize,
    contents: BatchContents,
    send: &mut dyn FnMut(Fetched) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let query = identity_list_query(&identity_columns("NULL"), filter, '$');
    let params: Vec<&(dyn ToSql + Sync)> = query.values.iter().map(|value| value as &(dyn ToSql + Sync)).collect();
    let mut transaction = begin_snapshot_read(&mut store.client)?;
    let snapshot = match export_snapshot(&mut transaction) {
        Ok(snapshot) => snapshot,
        // The failed statement ended the transaction: begin again, without an export.
        // (If it cannot begin again, the export's error says why.)
        Err(error) if refused_by_server(&error) => {
            drop(transaction);
            transaction = begin_snapshot_read(&mut store.client).map_err(|_| error)?;
            None
        }
        Err(error) => return Err(error),
    };
    if contents == BatchContents::Inventory {
        let parties = transaction
            .query(format!("SELECT {PARTY_COLUMNS} ORDER BY p.handle").as_str(), &[])?
            .iter()
            .map(party_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        send(Fetched::Parties(parties))?;
        let scanned = read_scanned_secrets(&mut transaction)?;
        let copies = transaction
            .query(format!("SELECT {LOCATION_COLUMNS} FROM locations").as_str(), &[])?
            .iter()
            .map(location_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        send(Fetched::Secrets(crate::known_secrets(scanned, copies)))?;
    }
    let portal = transaction.bind(query.identities.as_str(), &params)?;
    let lookups = Lookups::prepare(&mut transaction, contents)?;
    let mut rows = transaction.query_portal(&portal, batch as i32)?;
    let mut helper = snapshot
        .filter(|_| rows.len() == batch)
        .map(|snapshot| PendingHelper::start(&store.config, &store.tls, snapshot, contents));
    loop {
        let full = rows.len() == batch;
        if !rows.is_empty() {
            send(lookups.fetch(&mut transaction, rows)?)?;
        }
        if !full {
            return Ok(transaction.commit()?);
        }
        if let Some(ready) = helper.as_mut().map(PendingHelper::ready).transpose()?.flatten() {
            return read_with_helper(transaction, &portal, batch, ready, send);
        }
        rows = transaction.query_portal(&portal, batch as i32)?;
    }
}

/// The rest of [`read_identity_batches`] once the second connection is ready: `portal`
/// is read on a thread of its own, and `helper` looks each batch up and hands it to `send`.
fn read_with_helper(
    mut transaction: postgres::Transaction<'_>,
    portal: &postgres::Portal,
    batch: usize,
    helper: SnapshotHelper,
    send: &mut dyn FnMut(Fetched) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let reader = scope.spawn(move || {
            loop {
                let rows = transaction.query_portal(portal, batch as i32)?;
                let full = rows.len() == batch;
                // A failed send: the lookups stopped, and say why.
                if rows.is_empty() || sender.send(rows).is_err() || !full {
                    break;
                }
            }
            Ok::<_, StoreError>(transaction.commit()?)
        });
        let looked_up = helper.visit(receiver, send);
        let read = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        looked_up.and(read)
    })
}

/// Whether `error` is the server's refusal (an error response) rather than a failure of
/// the connection or of steward.
fn refused_by_server(error: &StoreError) -> bool {
    matches!(error, StoreError::Postgres(error) if error.as_db_error().is_some())
}

/// The second connection of [`read_identity_batches`] while it is being opened, on a
/// thread of its own that nothing waits for: when the listing ends first, the thread
/// closes the connection once it has it.
struct PendingHelper {
    /// Where its outcome comes, and its thread, until the outcome is taken.
    opening: Option<(HelperOutcome, std::thread::JoinHandle<()>)>,
}

/// What opening a [`SnapshotHelper`] came to, when it comes.
type HelperOutcome = std::sync::mpsc::Receiver<Result<SnapshotHelper, StoreError>>;

impl PendingHelper {
    fn start(config: &postgres::Config, tls: &Tls, snapshot: String, contents: BatchContents) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let (config, tls) = (config.clone(), tls.clone());
        let thread = std::thread::spawn(move || {
            // Nobody may be waiting any more: then the connection just closes.
            let _ = sender.send(SnapshotHelper::open(&config, &tls, &snapshot, contents));
        });
        PendingHelper {
            opening: Some((receiver, thread)),
        }
    }

    /// The helper, if it is ready; `None` while it is being opened, and for good once it
    /// could not be opened (the listing's own connection is what matters; a test checks
    /// that the helper is used when it can be). A panic in its thread goes on here.
    fn ready(&mut self) -> Result<Option<SnapshotHelper>, StoreError> {
        let Some((receiver, _)) = &self.opening else {
            return Ok(None);
        };
        let outcome = match receiver.try_recv() {
            Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(None),
            Ok(outcome) => Some(outcome),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
        };
        let (_, thread) = self.opening.take().expect("matched above");
        match outcome {
            Some(Ok(helper)) => Ok(Some(helper)),
            Some(Err(_)) => Ok(None),
            // It ended without a word: it panicked.
            None => match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => Ok(None),
            },
        }
    }
}

/// The second connection of [`read_identity_batches`], in a transaction that imported
/// the listing's snapshot, with its lookups prepared.
struct SnapshotHelper {
    client: Client,
    lookups: Lookups,
}

impl SnapshotHelper {
    fn open(config: &postgres::Config, tls: &Tls, snapshot: &str, contents: BatchContents) -> Result<Self, StoreError> {
        let mut client = PostgresStore::session(config, tls)?;
        // The transaction is begun and ended by hand, so that it can outlive this call;
        // the snapshot is imported before any other statement, as PostgreSQL requires.
        client.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
             SET TRANSACTION SNAPSHOT '{snapshot}';
             {CACHED_PAGE_COST}"
        ))?;
        let lookups = Lookups::prepare(&mut client, contents)?;
        Ok(SnapshotHelper { client, lookups })
    }

    /// Looks up each batch `batches` brings and hands it to `send`.
    fn visit(
        mut self,
        batches: std::sync::mpsc::Receiver<Vec<Row>>,
        send: &mut dyn FnMut(Fetched) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for rows in batches {
            #[cfg(test)]
            tests::LOOKED_UP_BY_HELPER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            send(self.lookups.fetch(&mut self.client, rows)?)?;
        }
        Ok(self.client.batch_execute("COMMIT")?)
    }
}

const CREDENTIAL_COLUMNS: &str = "id, identity_id, kind, public_id, fingerprint, preview, status,
    created_at, expires_at, last_used_at, revoked_at";

const PARTY_COLUMNS: &str = "p.id, p.handle, p.display_name, p.kind, t.handle, p.status
    FROM parties p LEFT JOIN parties t ON t.id = p.team_id";

fn corrupt(table: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

fn parse_column<T: std::str::FromStr>(table: &'static str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error: T::Err| corrupt(table, error))
}

fn get_timestamp(row: &Row, index: usize) -> Result<Option<jiff::Timestamp>, StoreError> {
    Ok(row.try_get::<_, Option<PgTimestamp>>(index)?.map(|at| at.0))
}

fn identity_from_row(row: &Row) -> Result<Identity, StoreError> {
    let backups: Option<String> = row.try_get(14)?;
    Ok(Identity {
        id: IdentityId(row.try_get(0)?),
        name: row.try_get(1)?,
        kind: parse_column("identities", row.try_get(2)?)?,
        system: row.try_get(3)?,
        external_id: row.try_get(4)?,
        environment: row.try_get(5)?,
        tier: parse_column("identities", row.try_get(6)?)?,
        state: parse_column("identities", row.try_get(7)?)?,
        purpose: row.try_get(8)?,
        scope: Scope(serde_json::from_str(row.try_get(9)?).map_err(|error| corrupt("identities", error))?),
        labels: serde_json::from_str(row.try_get(10)?).map_err(|error| corrupt("identities", error))?,
        roles: Roles {
            business_owner: row.try_get(11)?,
            technical_steward: row.try_get(12)?,
            control_owner: row.try_get(13)?,
            backup_approvers: backups
                .map(|text| text.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        },
        created_at: row.try_get::<_, PgTimestamp>(15)?.0,
        expires_at: get_timestamp(row, 16)?,
        review_due: row.try_get::<_, Option<PgDate>>(17)?.map(|date| date.0),
        last_attested_at: get_timestamp(row, 18)?,
        last_used_at: get_timestamp(row, 19)?,
        last_rotated_at: get_timestamp(row, 20)?,
        provenance: Provenance {
            source: row.try_get(21)?,
            observed_at: row.try_get::<_, PgTimestamp>(22)?.0,
        },
    })
}

fn credential_from_row(row: &Row) -> Result<Credential, StoreError> {
    Ok(Credential {
        id: CredentialId(row.try_get(0)?),
        identity_id: IdentityId(row.try_get(1)?),
        kind: parse_column("credentials", row.try_get(2)?)?,
        public_id: row.try_get(3)?,
        fingerprint: row
            .try_get::<_, Option<&str>>(4)?
            .map(Fingerprint::parse)
            .transpose()
            .map_err(|error| corrupt("credentials", error))?,
        preview: row.try_get(5)?,
        status: parse_column("credentials", row.try_get(6)?)?,
        created_at: row.try_get::<_, PgTimestamp>(7)?.0,
        expires_at: get_timestamp(row, 8)?,
        last_used_at: get_timestamp(row, 9)?,
        revoked_at: get_timestamp(row, 10)?,
    })
}

const LOCATION_COLUMNS: &str =
    "id, credential_id, fingerprint, kind, locator, first_seen, last_seen, removed_at, dismissed";

fn location_from_row(row: &Row) -> Result<Location, StoreError> {
    Ok(Location {
        id: row.try_get(0)?,
        credential_id: row.try_get::<_, Option<i64>>(1)?.map(CredentialId),
        fingerprint: Fingerprint::parse(row.try_get(2)?).map_err(|error| corrupt("locations", error))?,
        kind: parse_column("locations", row.try_get(3)?)?,
        locator: row.try_get(4)?,
        first_seen: row.try_get::<_, PgTimestamp>(5)?.0,
        last_seen: row.try_get::<_, PgTimestamp>(6)?.0,
        removed_at: get_timestamp(row, 7)?,
        dismissed: row.try_get(8)?,
    })
}

fn party_from_row(row: &Row) -> Result<Party, StoreError> {
    Ok(Party {
        id: PartyId(row.try_get(0)?),
        handle: row.try_get(1)?,
        display_name: row.try_get(2)?,
        kind: parse_column("parties", row.try_get(3)?)?,
        team: row.try_get(4)?,
        status: parse_column("parties", row.try_get(5)?)?,
    })
}

fn hash_from(bytes: &[u8], table: &'static str) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| corrupt(table, "hash is not 32 bytes"))
}

/// Reads and checks the header of a binary COPY stream.
fn read_copy_header(reader: &mut (impl std::io::Read + ?Sized)) -> std::io::Result<()> {
    let mut signature = [0u8; 11];
    reader.read_exact(&mut signature)?;
    if &signature != b"PGCOPY\n\xff\r\n\0" {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a binary COPY stream",
        ));
    }
    let mut word = [0u8; 4];
    reader.read_exact(&mut word)?; // flags
    reader.read_exact(&mut word)?;
    let extension = u32::from_be_bytes(word) as usize;
    std::io::copy(
        &mut std::io::Read::take(&mut *reader, extension as u64),
        &mut std::io::sink(),
    )?;
    Ok(())
}

/// Reads one field of a binary COPY tuple (`None` for NULL).
fn read_copy_field(reader: &mut (impl std::io::Read + ?Sized)) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 4];
    reader.read_exact(&mut length)?;
    let length = i32::from_be_bytes(length);
    if length < 0 {
        return Ok(None);
    }
    let mut bytes = vec![0u8; length as usize];
    reader.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

/// Reads the next audit event of a binary COPY of the event query's columns, or `None` at
/// the end. The inner result reports undecodable values.
fn read_copy_event(
    reader: &mut (impl std::io::Read + ?Sized),
) -> std::io::Result<Option<Result<AuditEvent, StoreError>>> {
    let mut count = [0u8; 2];
    reader.read_exact(&mut count)?;
    let count = i16::from_be_bytes(count);
    if count < 0 {
        return Ok(None);
    }
    if count != 12 {
        return Ok(Some(Err(corrupt(
            "audit_events",
            format!("copy row has {count} columns"),
        ))));
    }
    let mut fields = Vec::with_capacity(12);
    for _ in 0..12 {
        fields.push(read_copy_field(reader)?);
    }
    Ok(Some(decode_copy_event(fields)))
}

fn decode_copy_event(mut fields: Vec<Option<Vec<u8>>>) -> Result<AuditEvent, StoreError> {
    let bad = |what: &str| corrupt("audit_events", format!("undecodable {what}"));
    let mut take = |index: usize| fields[index].take();
    let int8 = |bytes: Option<Vec<u8>>, what: &str| -> Result<Option<i64>, StoreError> {
        bytes
            .map(|bytes| bytes.try_into().map(i64::from_be_bytes).map_err(|_| bad(what)))
            .transpose()
    };
    let text = |bytes: Option<Vec<u8>>, what: &str| -> Result<Option<String>, StoreError> {
        bytes
            .map(|bytes| String::from_utf8(bytes).map_err(|_| bad(what)))
            .transpose()
    };
    let seq = int8(take(0), "seq")?.ok_or_else(|| bad("seq"))?;
    let at = int8(take(1), "at")?.ok_or_else(|| bad("at"))?;
    let at = jiff::Timestamp::from_microsecond(at + PG_EPOCH_OFFSET_MICROS).map_err(|_| bad("at"))?;
    let required = |value: Option<String>, what: &str| value.ok_or_else(|| bad(what));
    let draft = EventDraft {
        at,
        actor: required(text(take(2), "actor")?, "actor")?,
        action: required(text(take(3), "action")?, "action")?,
        subject_kind: required(text(take(4), "subject_kind")?, "subject_kind")?,
        subject_id: int8(take(5), "subject_id")?,
        subject_name: required(text(take(6), "subject_name")?, "subject_name")?,
        reason: text(take(7), "reason")?,
        before: text(take(8), "before")?,
        after: text(take(9), "after")?,
    };
    let prev_hash = hash_from(&take(10).ok_or_else(|| bad("prev_hash"))?, "audit_events")?;
    let hash = hash_from(&take(11).ok_or_else(|| bad("hash"))?, "audit_events")?;
    Ok(AuditEvent {
        seq,
        draft,
        prev_hash,
        hash,
    })
}

fn copy_error(error: std::io::Error) -> StoreError {
    corrupt("audit_events", format!("binary copy: {error}"))
}

/// Appends the next tuple of a binary COPY of the event query (its 12 length-prefixed
/// fields, as sent) to `bytes`; `false` at the end of the stream.
fn read_copy_row(reader: &mut dyn std::io::BufRead, bytes: &mut Vec<u8>) -> std::io::Result<bool> {
    // Usually the whole tuple is in the reader's buffer: one copy.
    let available = reader.fill_buf()?;
    if let Some(length) = whole_row_length(available) {
        bytes.extend_from_slice(&available[2..length]);
        reader.consume(length);
        return Ok(true);
    }
    let mut count = [0u8; 2];
    reader.read_exact(&mut count)?;
    let count = i16::from_be_bytes(count);
    if count < 0 {
        return Ok(false);
    }
    if count != 12 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("copy row has {count} columns"),
        ));
    }
    for _ in 0..12 {
        let mut length = [0u8; 4];
        reader.read_exact(&mut length)?;
        bytes.extend_from_slice(&length);
        let length = i32::from_be_bytes(length);
        if length > 0 {
            let start = bytes.len();
            bytes.resize(start + length as usize, 0);
            reader.read_exact(&mut bytes[start..])?;
        }
    }
    Ok(true)
}

/// The length of the 12-field tuple at the start of `buffer`, if all of it is there.
fn whole_row_length(buffer: &[u8]) -> Option<usize> {
    let count = i16::from_be_bytes(*buffer.first_chunk::<2>()?);
    if count != 12 {
        return None;
    }
    let mut position = 2;
    for _ in 0..12 {
        let length = i32::from_be_bytes(*buffer.get(position..)?.first_chunk::<4>()?);
        position += 4 + length.max(0) as usize;
    }
    (position <= buffer.len()).then_some(position)
}

/// The sequence number (first field) of a tuple appended by [`read_copy_row`].
fn copy_row_seq(row: &[u8]) -> Option<i64> {
    let (length, rest) = row.split_first_chunk::<4>()?;
    (i32::from_be_bytes(*length) == 8).then_some(())?;
    Some(i64::from_be_bytes(*rest.first_chunk::<8>()?))
}

/// The event in one tuple appended by [`read_copy_row`], borrowed.
fn view_copy_row(row: &[u8]) -> Result<RawEvent<'_>, StoreError> {
    let bad = |what: &str| corrupt("audit_events", format!("undecodable {what}"));
    let mut rest = row;
    let mut field = || -> Result<Option<&[u8]>, StoreError> {
        let (length, tail) = rest.split_first_chunk::<4>().ok_or_else(|| bad("row"))?;
        let length = i32::from_be_bytes(*length);
        if length < 0 {
            rest = tail;
            return Ok(None);
        }
        let (value, tail) = tail.split_at_checked(length as usize).ok_or_else(|| bad("row"))?;
        rest = tail;
        Ok(Some(value))
    };
    let mut fields: [Option<&[u8]>; 12] = [None; 12];
    for slot in &mut fields {
        *slot = field()?;
    }
    let int8 = |value: Option<&[u8]>, what: &str| -> Result<Option<i64>, StoreError> {
        value
            .map(|bytes| bytes.try_into().map(i64::from_be_bytes).map_err(|_| bad(what)))
            .transpose()
    };
    fn text<'a>(value: Option<&'a [u8]>, what: &str) -> Result<Option<&'a str>, StoreError> {
        value
            .map(|bytes| std::str::from_utf8(bytes).map_err(|_| corrupt("audit_events", format!("undecodable {what}"))))
            .transpose()
    }
    fn required<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str, StoreError> {
        value.ok_or_else(|| corrupt("audit_events", format!("undecodable {what}")))
    }
    let [
        seq,
        at,
        actor,
        action,
        subject_kind,
        subject_id,
        subject_name,
        reason,
        before,
        after,
        prev_hash,
        hash,
    ] = fields;
    let at = int8(at, "at")?.ok_or_else(|| bad("at"))? + PG_EPOCH_OFFSET_MICROS;
    // The same range check as decoding into an `AuditEvent`.
    jiff::Timestamp::from_microsecond(at).map_err(|_| bad("at"))?;
    Ok(RawEvent {
        seq: int8(seq, "seq")?.ok_or_else(|| bad("seq"))?,
        fields: EventFields {
            at_micros: at,
            actor: required(text(actor, "actor")?, "actor")?,
            action: required(text(action, "action")?, "action")?,
            subject_kind: required(text(subject_kind, "subject_kind")?, "subject_kind")?,
            subject_id: int8(subject_id, "subject_id")?,
            subject_name: required(text(subject_name, "subject_name")?, "subject_name")?,
            reason: text(reason, "reason")?,
            before: text(before, "before")?,
            after: text(after, "after")?,
        },
        prev_hash: hash_from(prev_hash.ok_or_else(|| bad("prev_hash"))?, "audit_events")?,
        hash: hash_from(hash.ok_or_else(|| bad("hash"))?, "audit_events")?,
    })
}

/// Maps a unique violation on (name, system) to [`StoreError::DuplicateIdentity`], reading
/// the key from the server's detail (`Key (name, system)=(x, aws) already exists.`).
fn duplicate_identity(error: postgres::Error) -> StoreError {
    let Some(db) = error.as_db_error() else {
        return error.into();
    };
    if db.code() != &postgres::error::SqlState::UNIQUE_VIOLATION
        || db.constraint() != Some("identities_name_system_key")
    {
        return error.into();
    }
    let key = db
        .detail()
        .and_then(|detail| detail.split_once(")=(").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_once(") already exists").map(|(key, _)| key))
        .and_then(|key| key.split_once(", "));
    match key {
        Some((name, system)) => StoreError::DuplicateIdentity {
            system: system.to_string(),
            name: name.to_string(),
        },
        None => error.into(),
    }
}

/// The 22 identity columns, in table order, as `COPY` values or `$1..$22` parameters.
macro_rules! identity_values {
    ($row:expr) => {
        [
            &$row.identity.id.0,
            &$row.identity.name,
            &$row.identity.kind.as_str(),
            &$row.identity.system,
            &$row.identity.external_id,
            &$row.identity.environment,
            &$row.identity.tier.as_str(),
            &$row.identity.state.as_str(),
            &$row.identity.purpose,
            &jsonb(&$row.identity.scope),
            &jsonb(&$row.identity.labels),
            &$row.business_owner.map(|id| id.0),
            &$row.technical_steward.map(|id| id.0),
            &$row.control_owner.map(|id| id.0),
            &PgTimestamp($row.identity.created_at),
            &timestamp($row.identity.expires_at),
            &$row.identity.review_due.map(PgDate),
            &timestamp($row.identity.last_attested_at),
            &timestamp($row.identity.last_used_at),
            &timestamp($row.identity.last_rotated_at),
            &$row.identity.provenance.source,
            &PgTimestamp($row.identity.provenance.observed_at),
        ] as [&(dyn ToSql + Sync); 22]
    };
}

impl PgTx<'_> {
    fn insert_backups(&mut self, rows: &[IdentityRow<'_>]) -> Result<(), StoreError> {
        if rows.iter().all(|row| row.backup_approvers.is_empty()) {
            return Ok(());
        }
        let sink = self
            .transaction
            .copy_in("COPY identity_backup_approvers (identity_id, party_id, position) FROM STDIN BINARY")?;
        let mut writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::INT4]);
        for row in rows {
            for (position, party) in row.backup_approvers.iter().enumerate() {
                writer.write(&[&row.identity.id.0, &party.0, &(position as i32)])?;
            }
        }
        writer.finish()?;
        Ok(())
    }
}

impl Tx for PgTx<'_> {
    fn party_by_handle(&mut self, handle: &str) -> Result<Option<Party>, StoreError> {
        let sql = format!("SELECT {PARTY_COLUMNS} WHERE p.handle = $1");
        self.transaction
            .query_opt(&sql, &[&handle])?
            .as_ref()
            .map(party_from_row)
            .transpose()
    }

    fn handle_differing_in_case(&mut self, handle: &str) -> Result<Option<String>, StoreError> {
        // Under the C collation lower() folds ASCII letters only, as SQLite's does.
        Ok(self
            .transaction
            .query_opt(
                "SELECT handle FROM parties
                 WHERE lower(handle COLLATE \"C\") = lower($1 COLLATE \"C\") AND handle <> $1 LIMIT 1",
                &[&handle],
            )?
            .map(|row| row.try_get(0))
            .transpose()?)
    }

    fn insert_party(&mut self, party: &NewParty, team: Option<PartyId>) -> Result<PartyId, StoreError> {
        let row = self.transaction.query_one(
            "INSERT INTO parties (handle, display_name, kind, team_id, status) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&party.handle, &party.display_name, &party.kind.as_str(), &team.map(|id| id.0), &party.status.as_str()],
        )?;
        Ok(PartyId(row.try_get(0)?))
    }

    fn update_party_status(&mut self, id: PartyId, status: PartyStatus) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE parties SET status = $1 WHERE id = $2",
            &[&status.as_str(), &id.0],
        )?;
        Ok(())
    }

    fn identities_by_ref(&mut self, reference: &IdentityRef<'_>) -> Result<Vec<Identity>, StoreError> {
        let columns = identity_columns(BACKUPS_SQL);
        let rows = match reference {
            IdentityRef::Id(id) => self
                .transaction
                .query(&format!("SELECT {columns} WHERE i.id = $1"), &[id])?,
            IdentityRef::Name(name) => self
                .transaction
                .query(&format!("SELECT {columns} WHERE i.name = $1"), &[name])?,
            IdentityRef::SystemName(system, name) => self.transaction.query(
                &format!("SELECT {columns} WHERE i.system = $1 AND i.name = $2"),
                &[system, name],
            )?,
        };
        rows.iter().map(identity_from_row).collect()
    }

    fn reserve_ids(&mut self, sequence: IdSequence, count: usize) -> Result<Vec<i64>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let sequence = match sequence {
            IdSequence::Identities => "identities_id_seq",
            IdSequence::Credentials => "credentials_id_seq",
        };
        let rows = self.transaction.query(
            &format!("SELECT nextval('{sequence}') FROM generate_series(1, $1::bigint)"),
            &[&(count as i64)],
        )?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    fn insert_identities(&mut self, rows: &[IdentityRow<'_>]) -> Result<(), StoreError> {
        let sink = self.transaction.copy_in(
            "COPY identities (id, name, kind, system, external_id, environment, tier, state, purpose,
                scope, labels, business_owner_id, technical_steward_id, control_owner_id, created_at,
                expires_at, review_due, last_attested_at, last_used_at, last_rotated_at, source,
                observed_at) FROM STDIN BINARY",
        )?;
        let types = [
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::JSONB,
            Type::JSONB,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::DATE,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TIMESTAMPTZ,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in rows {
            writer.write(&identity_values!(row))?;
        }
        writer.finish().map_err(duplicate_identity)?;
        self.insert_backups(rows)
    }

    fn update_identity(&mut self, row: &IdentityRow<'_>) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE identities SET name = $2, kind = $3, system = $4, external_id = $5,
                environment = $6, tier = $7, state = $8, purpose = $9, scope = $10, labels = $11,
                business_owner_id = $12, technical_steward_id = $13, control_owner_id = $14,
                created_at = $15, expires_at = $16, review_due = $17, last_attested_at = $18,
                last_used_at = $19, last_rotated_at = $20, source = $21, observed_at = $22
             WHERE id = $1",
            &identity_values!(row),
        )?;
        self.transaction.execute(
            "DELETE FROM identity_backup_approvers WHERE identity_id = $1",
            &[&row.identity.id.0],
        )?;
        self.insert_backups(std::slice::from_ref(row))
    }

    fn insert_credentials(&mut self, credentials: &[Credential]) -> Result<(), StoreError> {
        if credentials.is_empty() {
            return Ok(());
        }
        let sink = self.transaction.copy_in(
            "COPY credentials (id, identity_id, kind, public_id, fingerprint, preview, status,
                created_at, expires_at, last_used_at, revoked_at) FROM STDIN BINARY",
        )?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for credential in credentials {
            writer.write(&[
                &credential.id.0,
                &credential.identity_id.0,
                &credential.kind.as_str(),
                &credential.public_id,
                &credential.fingerprint.as_ref().map(Fingerprint::as_str),
                &credential.preview,
                &credential.status.as_str(),
                &PgTimestamp(credential.created_at),
                &timestamp(credential.expires_at),
                &timestamp(credential.last_used_at),
                &timestamp(credential.revoked_at),
            ])?;
        }
        writer.finish()?;
        Ok(())
    }

    fn update_credential(&mut self, credential: &Credential) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE credentials SET status = $2, expires_at = $3, last_used_at = $4, revoked_at = $5 WHERE id = $1",
            &[
                &credential.id.0,
                &credential.status.as_str(),
                &timestamp(credential.expires_at),
                &timestamp(credential.last_used_at),
                &timestamp(credential.revoked_at),
            ],
        )?;
        Ok(())
    }

    fn credentials_of(&mut self, identity: IdentityId) -> Result<Vec<Credential>, StoreError> {
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE identity_id = $1 ORDER BY created_at, id");
        self.transaction
            .query(&sql, &[&identity.0])?
            .iter()
            .map(credential_from_row)
            .collect()
    }

    fn live_location_count(&mut self, identity: IdentityId) -> Result<usize, StoreError> {
        let row = self.transaction.query_one(
            &format!("SELECT COUNT(*) FROM locations WHERE removed_at IS NULL AND {OF_IDENTITY}"),
            &[&identity.0],
        )?;
        Ok(row.try_get::<_, i64>(0)? as usize)
    }

    fn credentials_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Vec<Credential>, StoreError> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE fingerprint = $1 ORDER BY id");
        self.transaction
            .query(&sql, &[&fingerprint.as_str()])?
            .iter()
            .map(credential_from_row)
            .collect()
    }

    fn upsert_location(&mut self, location: &Location) -> Result<Location, StoreError> {
        self.write_location(location, false)?
            .ok_or_else(|| corrupt("locations", "upsert returned no row"))
    }

    fn upsert_scanned_secret(&mut self, secret: &ScannedSecret) -> Result<(i64, bool), StoreError> {
        // `xmax = 0` tells a freshly inserted row from an updated one.
        let row = self.transaction.query_one(
            "INSERT INTO scanned_secrets AS s (fingerprint, rule_id, rule_name, preview, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (fingerprint) DO UPDATE SET last_seen = GREATEST(s.last_seen, excluded.last_seen)
             RETURNING id, (xmax = 0)",
            &[
                &secret.fingerprint.as_str(),
                &secret.rule_id,
                &secret.rule_name,
                &secret.preview,
                &PgTimestamp(secret.first_seen),
                &PgTimestamp(secret.last_seen),
            ],
        )?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    fn scanned_secrets(&mut self) -> Result<Vec<ScannedSecret>, StoreError> {
        read_scanned_secrets(&mut self.transaction)
    }

    fn insert_scanned_secret_if_new(&mut self, secret: &ScannedSecret) -> Result<Option<i64>, StoreError> {
        let row = self.transaction.query_opt(
            "INSERT INTO scanned_secrets (fingerprint, rule_id, rule_name, preview, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
            &[
                &secret.fingerprint.as_str(),
                &secret.rule_id,
                &secret.rule_name,
                &secret.preview,
                &PgTimestamp(secret.first_seen),
                &PgTimestamp(secret.last_seen),
            ],
        )?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    fn insert_location_if_new(&mut self, location: &Location) -> Result<Option<Location>, StoreError> {
        self.write_location(location, true)
    }

    fn live_locations_under(
        &mut self,
        kind: steward_core::LocationKind,
        prefix: &str,
    ) -> Result<Vec<Location>, StoreError> {
        let sql = format!(
            "SELECT {LOCATION_COLUMNS} FROM locations
             WHERE kind = $1 AND removed_at IS NULL AND starts_with(locator, $2) ORDER BY id"
        );
        let rows = self.transaction.query(&sql, &[&kind.as_str(), &prefix])?;
        rows.iter().map(location_from_row).collect()
    }

    fn mark_location_removed(&mut self, id: i64, at: jiff::Timestamp, dismissed: bool) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE locations SET removed_at = $2, dismissed = $3 WHERE id = $1",
            &[&id, &PgTimestamp(at), &dismissed],
        )?;
        Ok(())
    }

    fn relocate_location(&mut self, id: i64, locator: &str, at: jiff::Timestamp) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE locations SET locator = $2, last_seen = GREATEST(last_seen, $3) WHERE id = $1",
            &[&id, &locator, &PgTimestamp(at)],
        )?;
        Ok(())
    }

    fn located_fingerprints(&mut self) -> Result<Vec<Fingerprint>, StoreError> {
        let rows = self.transaction.query(
            "SELECT fingerprint FROM locations WHERE removed_at IS NULL
             GROUP BY fingerprint ORDER BY MIN(first_seen), MIN(id)",
            &[],
        )?;
        rows.iter()
            .map(|row| Fingerprint::parse(row.try_get(0)?).map_err(|error| corrupt("locations", error)))
            .collect()
    }

    fn locations_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Vec<Location>, StoreError> {
        let sql = format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE fingerprint = $1 ORDER BY first_seen, id");
        let rows = self.transaction.query(&sql, &[&fingerprint.as_str()])?;
        rows.iter().map(location_from_row).collect()
    }

    fn locations_of(&mut self, identity: IdentityId) -> Result<Vec<Location>, StoreError> {
        let sql = format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE {OF_IDENTITY} ORDER BY id");
        self.transaction
            .query(&sql, &[&identity.0])?
            .iter()
            .map(location_from_row)
            .collect()
    }

    fn audit_head(&mut self) -> Result<(i64, Hash), StoreError> {
        self.transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
        let head = self
            .transaction
            .query_opt("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", &[])?;
        match head {
            None => Ok((0, steward_core::audit::GENESIS_HASH)),
            Some(row) => Ok((row.try_get(0)?, hash_from(row.try_get(1)?, "audit_events")?)),
        }
    }

    fn insert_events(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let sink = self.transaction.copy_in(
            "COPY audit_events (seq, at, actor, action, subject_kind, subject_id, subject_name, reason,
                before, after, prev_hash, hash) FROM STDIN BINARY",
        )?;
        let types = [
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::BYTEA,
            Type::BYTEA,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for event in events {
            let draft = &event.draft;
            writer.write(&[
                &event.seq,
                &PgTimestamp(draft.at),
                &draft.actor,
                &draft.action,
                &draft.subject_kind,
                &draft.subject_id,
                &draft.subject_name,
                &draft.reason,
                &draft.before,
                &draft.after,
                &&event.prev_hash[..],
                &&event.hash[..],
            ])?;
        }
        writer.finish()?;
        Ok(())
    }

    fn last_checkpoint(&mut self) -> Result<Option<Checkpoint>, StoreError> {
        self.transaction
            .query_opt(
                "SELECT seq, head_hash, created_at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
                &[],
            )?
            .map(|row| checkpoint_from_row(&row))
            .transpose()
    }

    fn insert_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.transaction.execute(
            "INSERT INTO audit_checkpoints (seq, head_hash, created_at, signature) VALUES ($1, $2, $3, $4)",
            &[
                &checkpoint.seq,
                &&checkpoint.head_hash[..],
                &PgTimestamp(checkpoint.created_at),
                &&checkpoint.signature[..],
            ],
        )?;
        Ok(())
    }
}

impl Backend for PostgresStore {
    fn second_reader(&self) -> Result<Option<Self>, StoreError> {
        let client = PostgresStore::client(&self.config, &self.tls).map_err(|reason| StoreError::Connect {
            target: "a second connection for reading".into(),
            reason,
        })?;
        Ok(Some(PostgresStore {
            client,
            signing_key: None,
            config: self.config.clone(),
            tls: self.tls.clone(),
        }))
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn write<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Tx, Option<&SigningKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let transaction = self.client.transaction()?;
        let mut tx = PgTx { transaction };
        let value = work(&mut tx, self.signing_key.as_ref())?;
        tx.transaction.commit()?;
        Ok(value)
    }

    fn read<T>(&mut self, work: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let transaction = self.client.build_transaction().read_only(true).start()?;
        let mut tx = PgTx { transaction };
        work(&mut tx)
    }

    fn list_parties(&mut self) -> Result<Vec<Party>, StoreError> {
        self.query_list(
            &format!("SELECT {PARTY_COLUMNS} ORDER BY p.handle"),
            &[],
            party_from_row,
        )
    }

    fn stream_events(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(AuditEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.copy_events(filter, &mut |reader| {
            while let Some(event) = read_copy_event(reader).map_err(copy_error)? {
                visit(event?)?;
            }
            Ok(())
        })
    }

    fn stream_raw_events(
        &mut self,
        filter: &EventFilter,
        batch: usize,
        spare: &mut dyn FnMut() -> Option<RawEvents>,
        visit: &mut dyn FnMut(RawEvents) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        // New buffers are made a quarter larger than the largest batch so far, so that they
        // do not grow (a copy and fresh pages) while they fill; spares keep their capacity.
        let mut capacity = batch * 2048;
        let mut fresh = |capacity: usize| {
            spare().unwrap_or_else(|| RawEvents {
                bytes: Vec::with_capacity(capacity),
                rows: Vec::with_capacity(batch),
                decode: view_copy_row,
                seq_of: copy_row_seq,
            })
        };
        self.copy_events(filter, &mut |reader| {
            let mut raw = fresh(capacity);
            while read_copy_row(reader, &mut raw.bytes).map_err(copy_error)? {
                let start = raw.rows.last().map_or(0, |row| row.end);
                raw.rows.push(start..raw.bytes.len());
                if raw.rows.len() == batch {
                    capacity = capacity.max(raw.bytes.len() + raw.bytes.len() / 4);
                    if !visit(std::mem::replace(&mut raw, fresh(capacity)))? {
                        return Ok(());
                    }
                }
            }
            if !raw.rows.is_empty() {
                visit(raw)?;
            }
            Ok(())
        })?;
        Ok(true)
    }

    fn identity_batches(
        &mut self,
        filter: &IdentityFilter,
        batch: usize,
        contents: BatchContents,
        visit: &mut dyn FnMut(ExportPart) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // The server finds the next batch while the caller writes the last one out (on the
        // benchmark's listing the two take about as long as each other); rows are decoded
        // on the caller's thread, so that the reader goes back to the server at once.
        read_ahead(
            |send| read_identity_batches(self, filter, batch, contents, send),
            &mut |part: Fetched| visit(part.decode()?),
        )
    }

    fn list_checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError> {
        self.query_list(
            "SELECT seq, head_hash, created_at, signature FROM audit_checkpoints ORDER BY seq",
            &[],
            checkpoint_from_row,
        )
    }
}

/// A checkpoint from a row of (seq, head_hash, created_at, signature).
fn checkpoint_from_row(row: &postgres::Row) -> Result<Checkpoint, StoreError> {
    let signature: &[u8] = row.try_get(3)?;
    Ok(Checkpoint {
        seq: row.try_get(0)?,
        head_hash: hash_from(row.try_get(1)?, "audit_checkpoints")?,
        created_at: row.try_get::<_, PgTimestamp>(2)?.0,
        signature: signature
            .try_into()
            .map_err(|_| corrupt("audit_checkpoints", "signature is not 64 bytes"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Batches [`SnapshotHelper::visit`] looked up.
    pub(super) static LOOKED_UP_BY_HELPER: AtomicUsize = AtomicUsize::new(0);
    static SCRATCH: AtomicUsize = AtomicUsize::new(0);

    /// A fresh database on the test server (`STEWARD_TEST_PG_URL`), dropped at the end;
    /// `None` (skip) when no server is configured outside CI.
    struct Scratch {
        admin: String,
        name: String,
    }

    impl Scratch {
        fn new() -> Option<Scratch> {
            let Ok(admin) = std::env::var("STEWARD_TEST_PG_URL") else {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but STEWARD_TEST_PG_URL is not set (use scripts/test)"
                );
                return None;
            };
            let name = format!(
                "steward_unit_{}_{}",
                std::process::id(),
                SCRATCH.fetch_add(1, Ordering::SeqCst)
            );
            Client::connect(&admin, postgres::NoTls)
                .unwrap()
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            Some(Scratch { admin, name })
        }

        fn url(&self) -> String {
            format!("{}/{}", self.admin.rsplit_once('/').unwrap().0, self.name)
        }

        /// A store of this database with the parties alice (1) and bob (2), and
        /// `identities`: SQL that inserts them (their backup approvers too).
        fn store(&self, identities: &str) -> PostgresStore {
            let mut store = PostgresStore::connect(&self.url(), None).unwrap();
            store
                .client
                .batch_execute(&format!(
                    "INSERT INTO parties (id, handle, kind, status) VALUES (1, 'alice', 'person', 'active'),
                         (2, 'bob', 'person', 'active');
                     INSERT INTO identities (id, name, kind, system, environment, tier, state, scope, labels,
                         created_at, source, observed_at) {identities}"
                ))
                .unwrap();
            store
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if let Ok(mut client) = Client::connect(&self.admin, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
            }
        }
    }

    /// The helper's lookups see the exported snapshot, not what was committed after it;
    /// a connection that did not import it sees the change (so the check can fail).
    #[test]
    fn the_second_connection_reads_the_exported_snapshot() {
        let Some(scratch) = Scratch::new() else { return };
        let mut store = scratch.store(
            "VALUES (7, 'svc', 'service_account', 'aws', 'prod', 'high', 'active', '{}', '{}', now(), 'test', now());
             INSERT INTO identity_backup_approvers (identity_id, party_id, position) VALUES (7, 1, 0);",
        );
        let (config, tls) = (store.config.clone(), store.tls.clone());
        let mut transaction = begin_snapshot_read(&mut store.client).unwrap();
        let snapshot = export_snapshot(&mut transaction).unwrap().expect("a snapshot id");
        let ids = transaction.query("SELECT id FROM identities", &[]).unwrap();
        Client::connect(&scratch.url(), postgres::NoTls)
            .unwrap()
            .batch_execute("INSERT INTO identity_backup_approvers (identity_id, party_id, position) VALUES (7, 2, 1)")
            .unwrap();
        let approvers = |fetched: Fetched| match fetched {
            Fetched::Identities { approvers, .. } => {
                approvers.iter().map(|row| row.get::<_, String>(1)).collect::<Vec<_>>()
            }
            Fetched::Parties(_) | Fetched::Secrets(_) => unreachable!(),
        };
        let mut helper = SnapshotHelper::open(&config, &tls, &snapshot, BatchContents::Inventory).unwrap();
        let seen = helper.lookups.fetch(&mut helper.client, ids.clone()).unwrap();
        assert_eq!(approvers(seen), vec!["alice"]);
        let mut fresh = PostgresStore::client(&config, &tls).unwrap();
        let lookups = Lookups::prepare(&mut fresh, BatchContents::Identities).unwrap();
        assert_eq!(approvers(lookups.fetch(&mut fresh, ids).unwrap()), vec!["alice", "bob"]);
        transaction.commit().unwrap();
    }

    /// A listing of ten batches: once the second connection is ready (the first batch's
    /// visit waits for it to show in `pg_stat_activity`), later batches are looked up on
    /// it, and every identity comes with its backup approvers, in order.
    #[test]
    fn a_listing_past_its_first_batch_looks_up_on_the_second_connection() {
        let Some(scratch) = Scratch::new() else { return };
        let mut store = scratch.store(
            "SELECT g, 'svc-' || lpad(g::text, 4, '0'), 'service_account', 'aws', 'prod', 'high', 'active',
                 '{}', '{}', now(), 'test', now() FROM generate_series(1, 1000) g;
             INSERT INTO identity_backup_approvers (identity_id, party_id, position)
                 SELECT g, 2 - g % 2, 0 FROM generate_series(1, 1000) g;",
        );
        let before = LOOKED_UP_BY_HELPER.load(Ordering::SeqCst);
        let mut watcher = Client::connect(&scratch.url(), postgres::NoTls).unwrap();
        let mut listed = Vec::new();
        let mut send = |part: Fetched| {
            let ExportPart::Identities(batch) = part.decode()? else {
                unreachable!("a listing has no parties part")
            };
            if listed.is_empty() {
                // Until the newest other session of this database has prepared its lookup.
                let ready = (0..400).any(|_| {
                    let newest = watcher
                        .query(
                            "SELECT state, query FROM pg_stat_activity
                             WHERE datname = current_database() AND pid <> pg_backend_pid()
                               AND backend_type = 'client backend'
                             ORDER BY backend_start DESC",
                            &[],
                        )
                        .unwrap();
                    let prepared = newest.len() == 2
                        && newest[0].get::<_, Option<&str>>(0) == Some("idle in transaction")
                        && newest[0]
                            .get::<_, Option<&str>>(1)
                            .is_some_and(|q| q.contains("identity_backup_approvers"));
                    if !prepared {
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    prepared
                });
                assert!(ready, "the second connection did not come up in 10 s");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            listed.extend(batch);
            Ok(())
        };
        read_identity_batches(
            &mut store,
            &IdentityFilter::default(),
            100,
            BatchContents::Identities,
            &mut send,
        )
        .unwrap();
        assert_eq!(listed.len(), 1000);
        for (index, (identity, _)) in listed.iter().enumerate() {
            let id = index as i64 + 1;
            assert_eq!(identity.name, format!("svc-{id:04}"));
            let approver = if id % 2 == 0 { "bob" } else { "alice" };
            assert_eq!(identity.roles.backup_approvers, vec![approver], "{}", identity.name);
        }
        assert!(LOOKED_UP_BY_HELPER.load(Ordering::SeqCst) > before);
    }
}
