//! Upgrades of databases made by earlier versions of steward.

use crate::harness::*;
use steward_store::StoreError;

/// A SQLite database at schema version 2, as steward 0.x made it before the identities
/// table was rebuilt (v3), with a party, an identity with a backup approver, and a
/// credential; and its path.
fn sqlite_store_at_version_2() -> (TestDb, std::path::PathBuf) {
    let db = TestDb::sqlite();
    let TestDb::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let path = path.clone();
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch(&format!(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
             {}
             {}
             INSERT INTO schema_migrations VALUES (1, 'initial schema', 0), (2, 'scanned secrets', 0);
             INSERT INTO parties (id, handle, kind, status) VALUES (1, 'alice@example.com', 'person', 'active'),
                 (2, 'bob@example.com', 'person', 'active');
             INSERT INTO identities (id, name, kind, system, environment, tier, state, scope, labels,
                 business_owner_id, created_at, source, observed_at)
             VALUES (7, 'billing-export', 'service_account', 'aws', 'prod', 'high', 'active', '{{}}',
                 '{{\"team\":\"payments\"}}', 1, 1700000000000000, 'manual', 1700000000000000);
             INSERT INTO identity_backup_approvers VALUES (7, 2, 0);
             INSERT INTO credentials (id, identity_id, kind, status, created_at) VALUES (3, 7, 'access_key', 'active', 1700000000000000);",
            include_str!("../../src/sql/sqlite/0001_initial.sql"),
            include_str!("../../src/sql/sqlite/0002_scanned_secrets.sql"),
        ))
        .unwrap();
    (db, path)
}

#[test]
fn a_version_2_sqlite_store_is_upgraded_with_its_rows_and_references() {
    let (db, path) = sqlite_store_at_version_2();
    let mut store = db.open();
    let identity = store.identity("billing-export").unwrap();
    assert_eq!(identity.id.0, 7);
    assert_eq!(identity.roles.business_owner.as_deref(), Some("alice@example.com"));
    assert_eq!(identity.roles.backup_approvers, vec!["bob@example.com".to_string()]);
    assert_eq!(identity.labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(store.credentials("billing-export").unwrap().credentials.len(), 1);
    // The name's uniqueness is now a named index, and it holds.
    let indexes = db.index_definitions();
    assert!(
        indexes
            .iter()
            .any(|index| index.starts_with("identities_name_system: CREATE UNIQUE INDEX")),
        "{indexes:?}"
    );
    assert!(
        !indexes
            .iter()
            .any(|index| index.starts_with("sqlite_autoindex_identities")),
        "{indexes:?}"
    );
    let error = store
        .add_identity(&actor(), new_identity("billing-export", "aws", None))
        .unwrap_err();
    assert!(matches!(error, StoreError::DuplicateIdentity { .. }), "{error}");
    drop(store);
    assert_eq!(db.count("schema_migrations"), steward_store::SCHEMA_VERSION);
    assert_eq!(dangling_references(&path), 0);
}

fn dangling_references(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_reference_broken_before_migrating_does_not_stop_the_upgrade() {
    // Only writing with enforcement off can leave a credential of a missing identity;
    // the migration did not break it, so it neither refuses nor repairs it.
    let (db, path) = sqlite_store_at_version_2();
    db.execute(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO credentials (id, identity_id, kind, status, created_at) VALUES (4, 99, 'token', 'active', 0);",
    )
    .unwrap();
    let mut store = db.open();
    assert_eq!(store.identity("billing-export").unwrap().id.0, 7);
    drop(store);
    assert_eq!(db.count("schema_migrations"), steward_store::SCHEMA_VERSION);
    assert_eq!(dangling_references(&path), 1);
}
