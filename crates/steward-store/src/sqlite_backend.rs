//! The SQLite backend: the embedded default. One file in WAL mode; writes take the
//! database lock at `BEGIN IMMEDIATE`, which also serialises audit appends.

use crate::backend::{
    Backend, BatchContents, event_query, export_batch, identity_list_query, pending_migrations, read_ahead,
};
use crate::error::StoreError;
use crate::json_text;
use crate::ops::{IdSequence, IdentityRef, IdentityRow, Tx};
use crate::sqlite_insert::{Param, insert_grouped};
use crate::{EventFilter, ExportPart, IdentityFilter};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use steward_core::ScannedSecret;
use steward_core::audit::{AuditEvent, Checkpoint, EventDraft, Hash, SigningKey};
use steward_core::time::{from_micros, to_micros};
use steward_core::{
    Credential, CredentialId, Fingerprint, Identity, IdentityId, Location, NewParty, Party, PartyId, PartyStatus,
    Provenance, Roles, Scope,
};

/// Migrations, in order; the position (1-based) is the schema version.
/// Locations of identity ?1's secrets: attached to one of its credentials, or holding
/// the fingerprint of one (a secret two credentials share is attached to one of them).
const OF_IDENTITY: &str = "(credential_id IN (SELECT id FROM credentials WHERE identity_id = ?1)
    OR fingerprint IN (SELECT fingerprint FROM credentials WHERE identity_id = ?1 AND fingerprint IS NOT NULL))";

const MIGRATIONS: &[(&str, &str)] = &[
    ("initial schema", include_str!("sql/sqlite/0001_initial.sql")),
    ("scanned secrets", include_str!("sql/sqlite/0002_scanned_secrets.sql")),
    (
        "identity name index",
        include_str!("sql/sqlite/0003_identity_name_index.sql"),
    ),
    ("dismissed copies", include_str!("sql/sqlite/0004_dismissed_copies.sql")),
];

/// Page cache of ordinary connections, KiB. Small on purpose: a listing reads scattered
/// table pages once, and a large cache only adds allocation and teardown (measured:
/// 155 ms with 8 MiB against 216 ms with 64 MiB for 11,904 rows of a 1M-identity store).
const DEFAULT_CACHE_KIB: u32 = 8_192;
/// Bytes of the database that reads map instead of copying each page into the page cache
/// with a system call (listings look rows up by rowid all over the table); writes still
/// go through SQLite's own I/O.
const MMAP_BYTES: u64 = 1 << 30;

/// Settings of every connection, the second reader's too.
fn connection_settings() -> String {
    format!("PRAGMA busy_timeout = 10000; PRAGMA cache_size = -{DEFAULT_CACHE_KIB}; PRAGMA mmap_size = {MMAP_BYTES};")
}
/// Page cache during imports, KiB.
const BULK_CACHE_KIB: u32 = 1_048_576;
/// Page cache while a bulk load (indexes set aside) writes its rows, KiB. Rows are only
/// appended then, so a large cache holds nothing that is touched again; a small one spills
/// finished pages to the WAL as it goes and saves faulting in a gigabyte (1M import, 10
/// interleaved pairs against 1 GiB: faster in 8, medians 10.98 / 11.16 s against
/// 11.32 / 11.34 s; peak RSS 696 MiB -> 132 MiB).
const BULK_LOAD_CACHE_KIB: u32 = 65_536;

/// Page cache while a bulk load rebuilds its indexes, KiB: also the size of each sorted
/// run, small so that helper threads sort runs while the next one fills (measured on a 1M
/// import: 2.0 s for all index builds against 4.5 s with the bulk cache).
const INDEX_BUILD_CACHE_KIB: u32 = 4_096;

/// Imports of at least this many identities, and at least as many as are already stored,
/// build their indexes (the unique name index too) after loading instead of maintaining
/// them row by row.
const BULK_MIN_IDENTITIES: usize = 20_000;

/// A store in one SQLite file.
pub struct SqliteStore {
    connection: Connection,
    signing_key: Option<SigningKey>,
    /// The database file (parallel audit reads open it again).
    path: std::path::PathBuf,
}

impl SqliteStore {
    /// Each row of the event query for `filter`, in sequence order, in one transaction.
    fn for_each_event_row(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(&Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (sql, values) = event_query(filter, '?');
        let transaction = self.connection.transaction()?;
        let mut statement = transaction.prepare(&sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
        while let Some(row) = rows.next()? {
            visit(row)?;
        }
        Ok(())
    }

    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path, signing_key: Option<SigningKey>) -> Result<Self, StoreError> {
        let connect_error = |error: rusqlite::Error| StoreError::Connect {
            target: path.display().to_string(),
            reason: error.to_string(),
        };
        let connection = Connection::open(path).map_err(connect_error)?;
        connection
            .execute_batch(&format!(
                "PRAGMA page_size = 16384; -- only takes effect when the database is created
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA temp_store = MEMORY;
                 PRAGMA threads = 2; -- sorts (index builds after bulk loads) use a helper thread
                 {}",
                connection_settings()
            ))
            .map_err(connect_error)?;
        let mut store = SqliteStore {
            connection,
            signing_key,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        // A migration that rebuilds a table drops the old one while other tables still
        // refer to it, which enforced foreign keys would refuse (and PRAGMA foreign_keys
        // cannot change inside a transaction): enforcement is off while migrating, and
        // apply_migrations refuses to commit a reference the migrations broke.
        self.connection.execute_batch("PRAGMA foreign_keys = OFF")?;
        let migrated = self.apply_migrations();
        self.connection.execute_batch("PRAGMA foreign_keys = ON")?;
        migrated
    }

    fn apply_migrations(&mut self) -> Result<(), StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )?;
        let current: i64 =
            transaction.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |row| {
                row.get(0)
            })?;
        let pending = pending_migrations(current, MIGRATIONS)?;
        let Some(&(target, _, _)) = pending.last() else {
            return Ok(());
        };
        // References already broken before (only possible if someone wrote with
        // enforcement off) are not the migration's doing, and do not stop it.
        let broken_before = broken_references(&transaction)?;
        for (version, name, sql) in pending {
            transaction.execute_batch(sql)?;
            transaction.execute(
                "INSERT INTO schema_migrations (version, name, applied_at)
                 VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000000 AS INTEGER))",
                params![version, name],
            )?;
        }
        if let Some((table, rowid, parent)) = broken_references(&transaction)?
            .into_iter()
            .find(|broken| !broken_before.contains(broken))
        {
            return Err(StoreError::MigrationBreaksReference {
                version: target,
                table,
                rowid,
                parent,
            });
        }
        transaction.commit()?;
        Ok(())
    }
}

/// Every row whose foreign key refers to a missing row, as (table, rowid, parent table).
fn broken_references(
    transaction: &rusqlite::Transaction<'_>,
) -> Result<std::collections::HashSet<(String, i64, String)>, StoreError> {
    let mut statement = transaction.prepare("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get(0)?, row.get::<_, Option<i64>>(1)?.unwrap_or(0), row.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

struct SqliteTx<'c> {
    transaction: &'c rusqlite::Transaction<'c>,
    /// `CREATE INDEX` statements of indexes dropped for a bulk load, to run at its end.
    deferred_indexes: Vec<String>,
}

impl SqliteTx<'_> {
    /// Inserts `location` (its `id` aside); when (fingerprint, kind, locator) is there,
    /// keeps it as it is (`keep_existing`: then `None`) or sees it again now: last seen
    /// moved on, live, not dismissed, linked to a credential if it was not.
    fn write_location(&mut self, location: &Location, keep_existing: bool) -> Result<Option<Location>, StoreError> {
        let on_conflict = if keep_existing {
            "DO NOTHING"
        } else {
            "DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),
                 credential_id = COALESCE(credential_id, excluded.credential_id),
                 removed_at = NULL, dismissed = 0"
        };
        let mut statement = self.transaction.prepare_cached(&format!(
            "INSERT INTO locations
                (credential_id, fingerprint, kind, locator, first_seen, last_seen, removed_at, dismissed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (fingerprint, kind, locator) {on_conflict}
             RETURNING {LOCATION_COLUMNS}"
        ))?;
        let mut rows = statement.query(params![
            location.credential_id.map(|id| id.0),
            location.fingerprint.as_str(),
            location.kind.as_str(),
            location.locator,
            to_micros(location.first_seen),
            to_micros(location.last_seen),
            location.removed_at.map(to_micros),
            location.dismissed,
        ])?;
        rows.next()?.map(location_from_row).transpose()
    }
}

/// [`Backend::identity_batches`]' reading: hands each part to `send` as it is read.
fn read_identity_batches(
    connection: &mut Connection,
    filter: &IdentityFilter,
    batch: usize,
    contents: BatchContents,
    send: &mut dyn FnMut(ExportPart) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // One read transaction (one snapshot): the parties (of an inventory), then
    // identities streamed from one statement while each batch's backup approvers (and
    // an inventory's credentials) are looked up by id (ids passed as a JSON array).
    let inventory = contents == BatchContents::Inventory;
    let query = identity_list_query(&identity_columns("NULL"), filter, '?');
    let transaction = connection.transaction()?;
    if inventory {
        let parties = decode_rows(
            &mut transaction.prepare(&format!("SELECT {PARTY_COLUMNS} ORDER BY p.handle"))?,
            [],
            party_from_row,
        )?;
        send(ExportPart::Parties(parties))?;
        let scanned = SqliteTx {
            transaction: &transaction,
            deferred_indexes: Vec::new(),
        }
        .scanned_secrets()?;
        let copies = decode_rows(
            &mut transaction.prepare(&format!("SELECT {LOCATION_COLUMNS} FROM locations"))?,
            [],
            location_from_row,
        )?;
        send(ExportPart::Secrets(crate::known_secrets(scanned, copies)))?;
    }
    let mut backups = transaction.prepare(
        "SELECT b.identity_id, p.handle FROM identity_backup_approvers b JOIN parties p ON p.id = b.party_id
         WHERE b.identity_id IN (SELECT value FROM json_each(?1)) ORDER BY b.identity_id, b.position",
    )?;
    let mut credentials = if inventory {
        Some(transaction.prepare(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials
             WHERE identity_id IN (SELECT value FROM json_each(?1)) ORDER BY identity_id, created_at, id"
        ))?)
    } else {
        None
    };
    let mut flush = |identities: Vec<Identity>| -> Result<(), StoreError> {
        let ids = serde_json::to_string(&identities.iter().map(|identity| identity.id.0).collect::<Vec<_>>())
            .expect("ids serialize");
        let approvers = backups
            .query_map([&ids], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<(i64, String)>, _>>()?;
        let held = match credentials.as_mut() {
            Some(statement) => decode_rows(statement, [&ids], credential_from_row)?,
            None => Vec::new(),
        };
        send(export_batch(identities, approvers, held))
    };
    let mut statement = transaction.prepare(&query.identities)?;
    let mut rows = statement.query(rusqlite::params_from_iter(query.values.iter()))?;
    let mut pending = Vec::new();
    while let Some(row) = rows.next()? {
        pending.push(identity_from_row(row)?);
        if pending.len() == batch {
            flush(std::mem::take(&mut pending))?;
        }
    }
    if !pending.is_empty() {
        flush(pending)?;
    }
    Ok(())
}

/// The backup approvers of identity `i`, comma-separated in order.
const BACKUPS_SQL: &str = "(SELECT group_concat(p.handle, ',' ORDER BY b.position) FROM identity_backup_approvers b
       JOIN parties p ON p.id = b.party_id WHERE b.identity_id = i.id)";

/// `SELECT` list and `FROM` clause of identity queries; `backups` is [`BACKUPS_SQL`] or
/// `NULL` (listings look up a batch's backup approvers in one separate query).
fn identity_columns(backups: &str) -> String {
    format!(
        "i.id, i.name, i.kind, i.system, i.external_id, i.environment, i.tier,
    i.state, i.purpose, i.scope, i.labels, bo.handle, ts.handle, co.handle, {backups},
    i.created_at, i.expires_at, i.review_due, i.last_attested_at, i.last_used_at,
    i.last_rotated_at, i.source, i.observed_at
    FROM identities i
    LEFT JOIN parties bo ON bo.id = i.business_owner_id
    LEFT JOIN parties ts ON ts.id = i.technical_steward_id
    LEFT JOIN parties co ON co.id = i.control_owner_id"
    )
}

/// Every row `statement` yields for `params`, decoded.
fn decode_rows<T>(
    statement: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = statement.query(params)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next()? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

fn corrupt(table: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

fn parse_column<T: std::str::FromStr>(table: &'static str, text: String) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error: T::Err| corrupt(table, error))
}

fn identity_from_row(row: &Row<'_>) -> Result<Identity, StoreError> {
    let micros = |index: usize| -> rusqlite::Result<Option<jiff::Timestamp>> {
        Ok(row.get::<_, Option<i64>>(index)?.map(from_micros))
    };
    let scope: String = row.get(9)?;
    let labels: String = row.get(10)?;
    let backups: Option<String> = row.get(14)?;
    let review_due: Option<String> = row.get(17)?;
    Ok(Identity {
        id: IdentityId(row.get(0)?),
        name: row.get(1)?,
        kind: parse_column("identities", row.get::<_, String>(2)?)?,
        system: row.get(3)?,
        external_id: row.get(4)?,
        environment: row.get(5)?,
        tier: parse_column("identities", row.get::<_, String>(6)?)?,
        state: parse_column("identities", row.get::<_, String>(7)?)?,
        purpose: row.get(8)?,
        scope: Scope(serde_json::from_str(&scope).map_err(|error| corrupt("identities", error))?),
        labels: serde_json::from_str(&labels).map_err(|error| corrupt("identities", error))?,
        roles: Roles {
            business_owner: row.get(11)?,
            technical_steward: row.get(12)?,
            control_owner: row.get(13)?,
            backup_approvers: backups
                .map(|text| text.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        },
        created_at: from_micros(row.get(15)?),
        expires_at: micros(16)?,
        review_due: review_due.map(|text| parse_column("identities", text)).transpose()?,
        last_attested_at: micros(18)?,
        last_used_at: micros(19)?,
        last_rotated_at: micros(20)?,
        provenance: Provenance {
            source: row.get(21)?,
            observed_at: from_micros(row.get(22)?),
        },
    })
}

const CREDENTIAL_COLUMNS: &str = "id, identity_id, kind, public_id, fingerprint, preview, status,
    created_at, expires_at, last_used_at, revoked_at";

fn credential_from_row(row: &Row<'_>) -> Result<Credential, StoreError> {
    let micros = |index: usize| -> rusqlite::Result<Option<jiff::Timestamp>> {
        Ok(row.get::<_, Option<i64>>(index)?.map(from_micros))
    };
    Ok(Credential {
        id: CredentialId(row.get(0)?),
        identity_id: IdentityId(row.get(1)?),
        kind: parse_column("credentials", row.get::<_, String>(2)?)?,
        public_id: row.get(3)?,
        fingerprint: row
            .get::<_, Option<String>>(4)?
            .map(|text| Fingerprint::parse(&text))
            .transpose()
            .map_err(|error| corrupt("credentials", error))?,
        preview: row.get(5)?,
        status: parse_column("credentials", row.get::<_, String>(6)?)?,
        created_at: from_micros(row.get(7)?),
        expires_at: micros(8)?,
        last_used_at: micros(9)?,
        revoked_at: micros(10)?,
    })
}

const LOCATION_COLUMNS: &str =
    "id, credential_id, fingerprint, kind, locator, first_seen, last_seen, removed_at, dismissed";

fn location_from_row(row: &Row<'_>) -> Result<Location, StoreError> {
    Ok(Location {
        id: row.get(0)?,
        credential_id: row.get::<_, Option<i64>>(1)?.map(CredentialId),
        fingerprint: Fingerprint::parse(&row.get::<_, String>(2)?).map_err(|error| corrupt("locations", error))?,
        kind: parse_column("locations", row.get::<_, String>(3)?)?,
        locator: row.get(4)?,
        first_seen: from_micros(row.get(5)?),
        last_seen: from_micros(row.get(6)?),
        removed_at: row.get::<_, Option<i64>>(7)?.map(from_micros),
        dismissed: row.get(8)?,
    })
}

fn party_from_row(row: &Row<'_>) -> Result<Party, StoreError> {
    Ok(Party {
        id: PartyId(row.get(0)?),
        handle: row.get(1)?,
        display_name: row.get(2)?,
        kind: parse_column("parties", row.get::<_, String>(3)?)?,
        team: row.get(4)?,
        status: parse_column("parties", row.get::<_, String>(5)?)?,
    })
}

const PARTY_COLUMNS: &str = "p.id, p.handle, p.display_name, p.kind, t.handle, p.status
    FROM parties p LEFT JOIN parties t ON t.id = p.team_id";

fn event_from_row(row: &Row<'_>) -> Result<AuditEvent, StoreError> {
    let hash = |index: usize| -> Result<Hash, StoreError> {
        let bytes: Vec<u8> = row.get(index)?;
        bytes
            .try_into()
            .map_err(|_| corrupt("audit_events", "hash is not 32 bytes"))
    };
    Ok(AuditEvent {
        seq: row.get(0)?,
        draft: EventDraft {
            at: from_micros(row.get(1)?),
            actor: row.get(2)?,
            action: row.get(3)?,
            subject_kind: row.get(4)?,
            subject_id: row.get(5)?,
            subject_name: row.get(6)?,
            reason: row.get(7)?,
            before: row.get(8)?,
            after: row.get(9)?,
        },
        prev_hash: hash(10)?,
        hash: hash(11)?,
    })
}

/// The texts of identity rows that are not fields of the identity (the JSON of scope and
/// labels, the review date), written back to back for rows bound in place.
struct IdentityTexts {
    text: String,
    /// Per row, where its scope, labels and review date end in `text`.
    ends: Vec<[usize; 3]>,
}

impl IdentityTexts {
    fn of(rows: &[IdentityRow<'_>]) -> IdentityTexts {
        use std::fmt::Write;
        let mut texts = IdentityTexts {
            text: String::with_capacity(rows.len() * 128),
            ends: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            json_text::push_scope(&mut texts.text, &row.identity.scope);
            let scope = texts.text.len();
            json_text::push_labels(&mut texts.text, &row.identity.labels);
            let labels = texts.text.len();
            if let Some(date) = row.identity.review_due {
                write!(texts.text, "{date}").expect("writing to a String succeeds");
            }
            texts.ends.push([scope, labels, texts.text.len()]);
        }
        texts
    }

    /// The scope JSON, labels JSON and review date (empty when none) of row `index`.
    fn row(&self, index: usize) -> [&str; 3] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before][2]);
        let [scope, labels, review_due] = self.ends[index];
        [
            &self.text[start..scope],
            &self.text[scope..labels],
            &self.text[labels..review_due],
        ]
    }
}

/// Appends the 22 identity columns of `row`, in table order; `texts` is its row of
/// [`IdentityTexts`].
fn identity_params<'a>(row: &'a IdentityRow<'_>, texts: [&'a str; 3], params: &mut Vec<Param<'a>>) {
    let identity = row.identity;
    let [scope, labels, review_due] = texts;
    params.extend([
        Param::from(identity.id.0),
        (&identity.name).into(),
        identity.kind.as_str().into(),
        (&identity.system).into(),
        (&identity.external_id).into(),
        (&identity.environment).into(),
        identity.tier.as_str().into(),
        identity.state.as_str().into(),
        (&identity.purpose).into(),
        scope.into(),
        labels.into(),
        row.business_owner.map(|id| id.0).into(),
        row.technical_steward.map(|id| id.0).into(),
        row.control_owner.map(|id| id.0).into(),
        to_micros(identity.created_at).into(),
        identity.expires_at.map(to_micros).into(),
        identity.review_due.map(|_| review_due).into(),
        identity.last_attested_at.map(to_micros).into(),
        identity.last_used_at.map(to_micros).into(),
        identity.last_rotated_at.map(to_micros).into(),
        (&identity.provenance.source).into(),
        to_micros(identity.provenance.observed_at).into(),
    ]);
}

impl SqliteTx<'_> {
    /// [`StoreError::DuplicateIdentity`] for the identity, in id order, that first repeats
    /// the (system, name) of an earlier one; called when the unique name index cannot be
    /// rebuilt after a bulk load.
    fn first_repeated_identity(&mut self) -> StoreError {
        // The second identity of each (name, system), by id; the first of those by id.
        let search = self
            .transaction
            .query_row(
                "SELECT system, name FROM (
                    SELECT id, system, name,
                        ROW_NUMBER() OVER (PARTITION BY name, system ORDER BY id) AS nth
                    FROM identities)
                 WHERE nth = 2 ORDER BY id LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(StoreError::from);
        match search {
            Ok(Some((system, name))) => StoreError::DuplicateIdentity { system, name },
            Ok(None) => StoreError::Corrupt {
                table: "identities",
                detail: "the (name, system) index could not be built, yet no two identities share a name".into(),
            },
            Err(error) => error,
        }
    }
}

/// Inserts the backup approvers of `rows`, in their order.
fn insert_backups(transaction: &rusqlite::Transaction<'_>, rows: &[IdentityRow<'_>]) -> Result<(), StoreError> {
    // (identity id, party id, position)
    let backups: Vec<(i64, i64, i64)> = rows
        .iter()
        .flat_map(|row| {
            (row.backup_approvers.iter().enumerate())
                .map(|(position, party)| (row.identity.id.0, party.0, position as i64))
        })
        .collect();
    insert_grouped(
        transaction,
        "identity_backup_approvers (identity_id, party_id, position)",
        3,
        &backups,
        |_, (identity, party, position), params| {
            params.extend([Param::from(*identity), (*party).into(), (*position).into()]);
        },
        |_, error| error.into(),
    )
}

fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// How often [`Writeback`] starts the writeback of a bulk write's files.
const WRITEBACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// While a bulk write runs, a thread that starts the kernel's writeback of the database and
/// its WAL every [`WRITEBACK_INTERVAL`] without waiting for it (Linux `sync_file_range`,
/// as PostgreSQL's `*_flush_after` settings do). A 1M-identity import leaves ~1.7 GB
/// dirty in the page cache, below the kernel's own writeback threshold, so without this
/// the commit's fsyncs wrote all of it while the import waited (commit 1.1-3.1 s, median
/// 1.27 s, against 0.57-1.63 s, median 0.67 s, in five interleaved pairs). It changes no
/// durability: SQLite still syncs at commit. Dropping the value tells the thread to stop;
/// the scope then waits for it, at most one `sync_file_range` call. Elsewhere than on
/// Linux it does nothing.
///
/// The database file is opened once per process and never closed ([`kept_open`]): closing
/// any descriptor of a file drops every POSIX lock this process holds on it, SQLite's
/// included, and another process could then checkpoint and delete the WAL under our
/// connections (SQLite's "How To Corrupt An SQLite Database File", 2.2). The WAL file
/// carries no SQLite locks (WAL mode locks the database and `-shm` files), so it is
/// opened and closed freely.
struct Writeback {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Writeback {
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        database: std::path::PathBuf,
        wal: std::path::PathBuf,
    ) -> Writeback {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        if cfg!(target_os = "linux") {
            scope.spawn(move || {
                let mut database_file = None;
                let mut wal_file = None;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(WRITEBACK_INTERVAL) {
                    if database_file.is_none() {
                        database_file = kept_open(&database);
                    }
                    if wal_file.is_none() {
                        // The WAL may only appear with the first write.
                        wal_file = std::fs::File::open(&wal).ok();
                    }
                    database_file
                        .into_iter()
                        .chain(wal_file.as_ref())
                        .for_each(start_writeback);
                }
            });
        }
        Writeback { _stop: stop }
    }
}

/// A read-only descriptor of the file at `path`, opened at most once per file (device and
/// inode) in this process and never closed: see [`Writeback`] for why.
#[cfg(target_os = "linux")]
fn kept_open(path: &Path) -> Option<&'static std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    type Kept = std::collections::HashMap<(u64, u64), &'static std::fs::File>;
    static KEPT: std::sync::Mutex<Option<Kept>> = std::sync::Mutex::new(None);
    let metadata = std::fs::metadata(path).ok()?;
    let key = (metadata.dev(), metadata.ino());
    let mut kept = KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let kept = kept.get_or_insert_with(Kept::new);
    if let Some(file) = kept.get(&key) {
        return Some(*file);
    }
    let file: &'static std::fs::File = Box::leak(Box::new(std::fs::File::open(path).ok()?));
    kept.insert(key, file);
    Some(file)
}

#[cfg(not(target_os = "linux"))]
fn kept_open(_path: &Path) -> Option<&'static std::fs::File> {
    None
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the call (the File is borrowed); offset 0 and
    // length 0 mean the whole file, SYNC_FILE_RANGE_WRITE only starts writeback. A failure
    // leaves the writeback to the commit's fsync, so the result is ignored.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File) {}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(failure, _)
        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

impl Tx for SqliteTx<'_> {
    fn party_by_handle(&mut self, handle: &str) -> Result<Option<Party>, StoreError> {
        let mut statement = self
            .transaction
            .prepare_cached(&format!("SELECT {PARTY_COLUMNS} WHERE p.handle = ?1"))?;
        let mut rows = statement.query([handle])?;
        match rows.next()? {
            Some(row) => Ok(Some(party_from_row(row)?)),
            None => Ok(None),
        }
    }

    fn handle_differing_in_case(&mut self, handle: &str) -> Result<Option<String>, StoreError> {
        // SQLite's lower() and NOCASE fold ASCII letters only.
        Ok(self
            .transaction
            .prepare_cached("SELECT handle FROM parties WHERE lower(handle) = lower(?1) AND handle <> ?1 LIMIT 1")?
            .query_row([handle], |row| row.get(0))
            .optional()?)
    }

    fn insert_party(&mut self, party: &NewParty, team: Option<PartyId>) -> Result<PartyId, StoreError> {
        self.transaction.execute(
            "INSERT INTO parties (handle, display_name, kind, team_id, status) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                party.handle,
                party.display_name,
                party.kind.as_str(),
                team.map(|id| id.0),
                party.status.as_str()
            ],
        )?;
        Ok(PartyId(self.transaction.last_insert_rowid()))
    }

    fn update_party_status(&mut self, id: PartyId, status: PartyStatus) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE parties SET status = ?1 WHERE id = ?2",
            params![status.as_str(), id.0],
        )?;
        Ok(())
    }

    fn identities_by_ref(&mut self, reference: &IdentityRef<'_>) -> Result<Vec<Identity>, StoreError> {
        let (condition, first, second) = match reference {
            IdentityRef::Id(id) => ("i.id = ?1", id.to_string(), None),
            IdentityRef::Name(name) => ("i.name = ?1", name.to_string(), None),
            IdentityRef::SystemName(system, name) => (
                "i.system = ?1 AND i.name = ?2",
                system.to_string(),
                Some(name.to_string()),
            ),
        };
        let mut statement = self
            .transaction
            .prepare_cached(&format!("SELECT {} WHERE {condition}", identity_columns(BACKUPS_SQL)))?;
        let mut rows = match (&reference, second) {
            (IdentityRef::Id(id), _) => statement.query(params![id])?,
            (_, Some(second)) => statement.query(params![first, second])?,
            (_, None) => statement.query(params![first])?,
        };
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(identity_from_row(row)?);
        }
        Ok(found)
    }

    fn reserve_ids(&mut self, sequence: IdSequence, count: usize) -> Result<Vec<i64>, StoreError> {
        // The write lock is held, so nobody else can take the same ids.
        let table = match sequence {
            IdSequence::Identities => "identities",
            IdSequence::Credentials => "credentials",
        };
        let highest: i64 =
            self.transaction
                .query_row(&format!("SELECT COALESCE(MAX(id), 0) FROM {table}"), [], |row| {
                    row.get(0)
                })?;
        Ok((highest + 1..=highest + count as i64).collect())
    }

    fn bulk_load_begin(&mut self, identities: usize) -> Result<(), StoreError> {
        // Building an index from sorted rows once is cheaper than inserting into it row by
        // row in random order, when the load is at least as large as what is there.
        let present: i64 = self
            .transaction
            .query_row("SELECT COALESCE(MAX(id), 0) FROM identities", [], |row| row.get(0))?;
        if identities < BULK_MIN_IDENTITIES || (identities as i64) < present {
            return Ok(());
        }
        // The indexes as the schema defines them, the unique identities_name_system too
        // (constraint indexes have no SQL and stay).
        let mut statement = self.transaction.prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
                AND tbl_name IN ('identities', 'credentials', 'audit_events') ORDER BY name",
        )?;
        let indexes = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        for (name, _) in &indexes {
            self.transaction.execute_batch(&format!("DROP INDEX \"{name}\";"))?;
        }
        self.transaction
            .execute_batch(&format!("PRAGMA cache_size = -{BULK_LOAD_CACHE_KIB};"))?;
        // Unique indexes first: a repeated name then fails before the costly rebuilds.
        let (unique, other): (Vec<String>, Vec<String>) = indexes
            .into_iter()
            .map(|(_, sql)| sql)
            .partition(|sql| sql.starts_with("CREATE UNIQUE INDEX"));
        self.deferred_indexes = unique.into_iter().chain(other).collect();
        Ok(())
    }

    fn bulk_load_end(&mut self) -> Result<(), StoreError> {
        let creates = std::mem::take(&mut self.deferred_indexes);
        if creates.is_empty() {
            return Ok(());
        }
        // SQLite sorts index entries on one thread while they fit in its sort memory (the
        // page cache size); with a small cache it hands each filled run to helper threads
        // (PRAGMA threads) that sort and write it to a temporary file while the next run
        // fills, then merges. (Helper threads need temporary files, not memory: see
        // write_bulk, which also resets the cache after the transaction.)
        self.transaction
            .execute_batch(&format!("PRAGMA cache_size = -{INDEX_BUILD_CACHE_KIB};"))?;
        for create in creates {
            match self.transaction.execute_batch(&create) {
                Ok(()) => {}
                Err(error) if is_unique_violation(&error) => return Err(self.first_repeated_identity()),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    fn insert_identities(&mut self, rows: &[IdentityRow<'_>]) -> Result<(), StoreError> {
        let texts = IdentityTexts::of(rows);
        insert_grouped(
            self.transaction,
            "identities (id, name, kind, system, external_id, environment, tier, state,
                purpose, scope, labels, business_owner_id, technical_steward_id, control_owner_id,
                created_at, expires_at, review_due, last_attested_at, last_used_at, last_rotated_at,
                source, observed_at)",
            22,
            rows,
            |index, row, params| identity_params(row, texts.row(index), params),
            |row, error| {
                if is_unique_violation(&error) {
                    StoreError::DuplicateIdentity {
                        system: row.identity.system.clone(),
                        name: row.identity.name.clone(),
                    }
                } else {
                    error.into()
                }
            },
        )?;
        insert_backups(self.transaction, rows)
    }

    fn update_identity(&mut self, row: &IdentityRow<'_>) -> Result<(), StoreError> {
        let rows = std::slice::from_ref(row);
        let texts = IdentityTexts::of(rows);
        let mut params = Vec::with_capacity(22);
        identity_params(row, texts.row(0), &mut params);
        self.transaction
            .prepare_cached(
                "UPDATE identities SET name = ?2, kind = ?3, system = ?4, external_id = ?5,
                    environment = ?6, tier = ?7, state = ?8, purpose = ?9, scope = ?10, labels = ?11,
                    business_owner_id = ?12, technical_steward_id = ?13, control_owner_id = ?14,
                    created_at = ?15, expires_at = ?16, review_due = ?17, last_attested_at = ?18,
                    last_used_at = ?19, last_rotated_at = ?20, source = ?21, observed_at = ?22
                 WHERE id = ?1",
            )?
            .execute(rusqlite::params_from_iter(params))?;
        self.transaction.execute(
            "DELETE FROM identity_backup_approvers WHERE identity_id = ?1",
            [row.identity.id.0],
        )?;
        insert_backups(self.transaction, std::slice::from_ref(row))
    }

    fn insert_credentials(&mut self, credentials: &[Credential]) -> Result<(), StoreError> {
        insert_grouped(
            self.transaction,
            "credentials (id, identity_id, kind, public_id, fingerprint, preview, status,
                created_at, expires_at, last_used_at, revoked_at)",
            11,
            credentials,
            |_, credential, params| {
                params.extend([
                    Param::from(credential.id.0),
                    credential.identity_id.0.into(),
                    credential.kind.as_str().into(),
                    (&credential.public_id).into(),
                    credential.fingerprint.as_ref().map(Fingerprint::as_str).into(),
                    (&credential.preview).into(),
                    credential.status.as_str().into(),
                    to_micros(credential.created_at).into(),
                    credential.expires_at.map(to_micros).into(),
                    credential.last_used_at.map(to_micros).into(),
                    credential.revoked_at.map(to_micros).into(),
                ]);
            },
            |_, error| error.into(),
        )
    }

    fn update_credential(&mut self, credential: &Credential) -> Result<(), StoreError> {
        self.transaction.execute(
            "UPDATE credentials SET status = ?2, expires_at = ?3, last_used_at = ?4, revoked_at = ?5 WHERE id = ?1",
            params![
                credential.id.0,
                credential.status.as_str(),
                credential.expires_at.map(to_micros),
                credential.last_used_at.map(to_micros),
                credential.revoked_at.map(to_micros),
            ],
        )?;
        Ok(())
    }

    fn credentials_of(&mut self, identity: IdentityId) -> Result<Vec<Credential>, StoreError> {
        let mut statement = self.transaction.prepare_cached(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE identity_id = ?1 ORDER BY created_at, id"
        ))?;
        decode_rows(&mut statement, [identity.0], credential_from_row)
    }

    fn live_location_count(&mut self, identity: IdentityId) -> Result<usize, StoreError> {
        let count: i64 = self.transaction.query_row(
            &format!("SELECT COUNT(*) FROM locations WHERE removed_at IS NULL AND {OF_IDENTITY}"),
            [identity.0],
            |row| row.get(0),
        )?;
        Ok(count as usize)
    }

    fn credentials_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Vec<Credential>, StoreError> {
        let mut statement = self.transaction.prepare_cached(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE fingerprint = ?1 ORDER BY id"
        ))?;
        decode_rows(&mut statement, [fingerprint.as_str()], credential_from_row)
    }

    fn upsert_location(&mut self, location: &Location) -> Result<Location, StoreError> {
        self.write_location(location, false)?
            .ok_or_else(|| corrupt("locations", "upsert returned no row"))
    }

    fn upsert_scanned_secret(&mut self, secret: &ScannedSecret) -> Result<(i64, bool), StoreError> {
        let known: Option<i64> = self
            .transaction
            .prepare_cached("SELECT id FROM scanned_secrets WHERE fingerprint = ?1")?
            .query_row([secret.fingerprint.as_str()], |row| row.get(0))
            .optional()?;
        if let Some(id) = known {
            self.transaction
                .prepare_cached("UPDATE scanned_secrets SET last_seen = max(last_seen, ?2) WHERE id = ?1")?
                .execute(params![id, to_micros(secret.last_seen)])?;
            return Ok((id, false));
        }
        let id = self
            .transaction
            .prepare_cached(
                "INSERT INTO scanned_secrets (fingerprint, rule_id, rule_name, preview, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )?
            .query_row(
                params![
                    secret.fingerprint.as_str(),
                    secret.rule_id,
                    secret.rule_name,
                    secret.preview,
                    to_micros(secret.first_seen),
                    to_micros(secret.last_seen)
                ],
                |row| row.get(0),
            )?;
        Ok((id, true))
    }

    fn scanned_secrets(&mut self) -> Result<Vec<ScannedSecret>, StoreError> {
        let mut statement = self.transaction.prepare_cached(
            "SELECT fingerprint, rule_id, rule_name, preview, first_seen, last_seen FROM scanned_secrets
             ORDER BY first_seen, id",
        )?;
        decode_rows(&mut statement, [], |row| {
            Ok(ScannedSecret {
                fingerprint: Fingerprint::parse(&row.get::<_, String>(0)?)
                    .map_err(|error| corrupt("scanned_secrets", error))?,
                rule_id: row.get(1)?,
                rule_name: row.get(2)?,
                preview: row.get(3)?,
                first_seen: from_micros(row.get(4)?),
                last_seen: from_micros(row.get(5)?),
            })
        })
    }

    fn insert_scanned_secret_if_new(&mut self, secret: &ScannedSecret) -> Result<Option<i64>, StoreError> {
        Ok(self
            .transaction
            .prepare_cached(
                "INSERT INTO scanned_secrets (fingerprint, rule_id, rule_name, preview, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
            )?
            .query_row(
                params![
                    secret.fingerprint.as_str(),
                    secret.rule_id,
                    secret.rule_name,
                    secret.preview,
                    to_micros(secret.first_seen),
                    to_micros(secret.last_seen),
                ],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn insert_location_if_new(&mut self, location: &Location) -> Result<Option<Location>, StoreError> {
        self.write_location(location, true)
    }

    fn live_locations_under(
        &mut self,
        kind: steward_core::LocationKind,
        prefix: &str,
    ) -> Result<Vec<Location>, StoreError> {
        let mut statement = self.transaction.prepare_cached(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations
             WHERE kind = ?1 AND removed_at IS NULL AND substr(locator, 1, length(?2)) = ?2 ORDER BY id"
        ))?;
        decode_rows(&mut statement, params![kind.as_str(), prefix], location_from_row)
    }

    fn mark_location_removed(&mut self, id: i64, at: jiff::Timestamp, dismissed: bool) -> Result<(), StoreError> {
        self.transaction
            .prepare_cached("UPDATE locations SET removed_at = ?2, dismissed = ?3 WHERE id = ?1")?
            .execute(params![id, to_micros(at), dismissed])?;
        Ok(())
    }

    fn relocate_location(&mut self, id: i64, locator: &str, at: jiff::Timestamp) -> Result<(), StoreError> {
        self.transaction
            .prepare_cached("UPDATE locations SET locator = ?2, last_seen = max(last_seen, ?3) WHERE id = ?1")?
            .execute(params![id, locator, to_micros(at)])?;
        Ok(())
    }

    fn located_fingerprints(&mut self) -> Result<Vec<Fingerprint>, StoreError> {
        let mut statement = self.transaction.prepare_cached(
            "SELECT fingerprint FROM locations WHERE removed_at IS NULL
             GROUP BY fingerprint ORDER BY MIN(first_seen), MIN(id)",
        )?;
        decode_rows(&mut statement, [], |row| {
            Fingerprint::parse(&row.get::<_, String>(0)?).map_err(|error| corrupt("locations", error))
        })
    }

    fn locations_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Vec<Location>, StoreError> {
        let mut statement = self.transaction.prepare_cached(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations WHERE fingerprint = ?1 ORDER BY first_seen, id"
        ))?;
        decode_rows(&mut statement, [fingerprint.as_str()], location_from_row)
    }

    fn locations_of(&mut self, identity: IdentityId) -> Result<Vec<Location>, StoreError> {
        let mut statement = self.transaction.prepare_cached(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations WHERE {OF_IDENTITY} ORDER BY id"
        ))?;
        decode_rows(&mut statement, [identity.0], location_from_row)
    }

    fn audit_head(&mut self) -> Result<(i64, Hash), StoreError> {
        let head: Option<(i64, Vec<u8>)> = self
            .transaction
            .query_row(
                "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match head {
            None => Ok((0, steward_core::audit::GENESIS_HASH)),
            Some((seq, hash)) => Ok((
                seq,
                hash.try_into()
                    .map_err(|_| corrupt("audit_events", "hash is not 32 bytes"))?,
            )),
        }
    }

    fn insert_events(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut statement = self.transaction.prepare_cached(
            "INSERT INTO audit_events (seq, at, actor, action, subject_kind, subject_id, subject_name,
                reason, before, after, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for event in events {
            let draft = &event.draft;
            statement.execute(params![
                event.seq,
                to_micros(draft.at),
                draft.actor,
                draft.action,
                draft.subject_kind,
                draft.subject_id,
                draft.subject_name,
                draft.reason,
                draft.before,
                draft.after,
                &event.prev_hash[..],
                &event.hash[..],
            ])?;
        }
        Ok(())
    }

    fn last_checkpoint(&mut self) -> Result<Option<Checkpoint>, StoreError> {
        let mut statement = self.transaction.prepare_cached(
            "SELECT seq, head_hash, created_at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )?;
        Ok(decode_rows(&mut statement, [], checkpoint_from_row)?.pop())
    }

    fn insert_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.transaction.execute(
            "INSERT INTO audit_checkpoints (seq, head_hash, created_at, signature) VALUES (?1, ?2, ?3, ?4)",
            params![
                checkpoint.seq,
                &checkpoint.head_hash[..],
                to_micros(checkpoint.created_at),
                &checkpoint.signature[..]
            ],
        )?;
        Ok(())
    }
}

impl Backend for SqliteStore {
    fn second_reader(&self) -> Result<Option<Self>, StoreError> {
        let connection =
            Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|error| {
                StoreError::Connect {
                    target: self.path.display().to_string(),
                    reason: error.to_string(),
                }
            })?;
        connection.execute_batch(&connection_settings())?;
        Ok(Some(SqliteStore {
            connection,
            signing_key: None,
            path: self.path.clone(),
        }))
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn write<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Tx, Option<&SigningKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut tx = SqliteTx {
            transaction: &transaction,
            deferred_indexes: Vec::new(),
        };
        let value = work(&mut tx, self.signing_key.as_ref())?;
        transaction.commit()?;
        Ok(value)
    }

    fn write_bulk<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Tx, Option<&SigningKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // An import that maintains its indexes row by row touches their pages in random
        // order; a page cache that holds them avoids spilling the same pages to the WAL
        // again and again (a bulk load sets its own, smaller cache). Memory is only taken
        // as pages are touched, and given back when the connection closes. Foreign keys are
        // checked by construction during imports: every party reference is resolved before
        // insert, and identity and credential ids are reserved by the import itself, so
        // SQLite's per-row checks would only double the index lookups. Temporary storage
        // is on disk so that index rebuilds can sort on helper threads (SQLite uses none
        // with temp_store = MEMORY); it cannot change inside the transaction.
        self.connection.execute_batch(&format!(
            "PRAGMA cache_size = -{BULK_CACHE_KIB}; PRAGMA foreign_keys = OFF; PRAGMA temp_store = FILE;"
        ))?;
        // The import stays in WAL mode: a rollback journal wrote appended pages once instead
        // of twice (5-10% faster), but a reader that starts during the import could then
        // block its commit past the busy timeout and roll back all of it.
        let result = std::thread::scope(|scope| {
            let _writeback = Writeback::start(scope, self.path.clone(), wal_path(&self.path));
            self.write(work)
        });
        self.connection.execute_batch(&format!(
            "PRAGMA cache_size = -{DEFAULT_CACHE_KIB}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
        ))?;
        result
    }

    fn read<T>(&mut self, work: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let transaction = self.connection.transaction()?;
        let mut tx = SqliteTx {
            transaction: &transaction,
            deferred_indexes: Vec::new(),
        };
        work(&mut tx)
    }

    fn list_parties(&mut self) -> Result<Vec<Party>, StoreError> {
        let mut statement = self
            .connection
            .prepare(&format!("SELECT {PARTY_COLUMNS} ORDER BY p.handle"))?;
        decode_rows(&mut statement, [], party_from_row)
    }

    fn stream_events(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(AuditEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.for_each_event_row(filter, &mut |row| visit(event_from_row(row)?))
    }

    fn stream_events_to_verify(
        &mut self,
        filter: &EventFilter,
        visit: &mut dyn FnMut(Result<AuditEvent, i64>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.for_each_event_row(filter, &mut |row| match event_from_row(row) {
            Ok(event) => visit(Ok(event)),
            // `seq` is the rowid: always an integer, whatever else was altered.
            Err(_) => visit(Err(row.get(0)?)),
        })
    }

    fn identity_batches(
        &mut self,
        filter: &IdentityFilter,
        batch: usize,
        contents: BatchContents,
        visit: &mut dyn FnMut(ExportPart) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // SQLite steps and decodes the next batch while the caller writes the last one out
        // (about half the work each on the benchmark's listing).
        let connection = &mut self.connection;
        read_ahead(
            |send| read_identity_batches(connection, filter, batch, contents, send),
            visit,
        )
    }

    fn list_checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT seq, head_hash, created_at, signature FROM audit_checkpoints ORDER BY seq")?;
        decode_rows(&mut statement, [], checkpoint_from_row)
    }
}

/// A checkpoint from a row of (seq, head_hash, created_at, signature).
fn checkpoint_from_row(row: &rusqlite::Row<'_>) -> Result<Checkpoint, StoreError> {
    let head_hash: Vec<u8> = row.get(1)?;
    let signature: Vec<u8> = row.get(3)?;
    Ok(Checkpoint {
        seq: row.get(0)?,
        head_hash: head_hash
            .try_into()
            .map_err(|_| corrupt("audit_checkpoints", "head_hash is not 32 bytes"))?,
        created_at: from_micros(row.get(2)?),
        signature: signature
            .try_into()
            .map_err(|_| corrupt("audit_checkpoints", "signature is not 64 bytes"))?,
    })
}
