//! Fresh databases per test, raw SQL access for tampering, and sample data.

use std::sync::atomic::{AtomicUsize, Ordering};
use steward_core::audit::SigningKey;
use steward_core::{
    CredentialKind, CredentialStatus, IdentityKind, LifecycleState, NewCredential, NewIdentity, NewParty, Provenance,
    Roles, Scope, Tier,
};
use steward_store::{Actor, Store};

pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

pub fn actor() -> Actor {
    Actor {
        name: "tester".into(),
        now: at("2026-11-27T10:00:00Z"),
    }
}

/// A database under test and a way to reach it with raw SQL.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.db");
        TestDb::Sqlite { _dir: dir, path }
    }

    /// A fresh PostgreSQL database, or `None` (skip) when no server is configured outside CI.
    pub fn postgres() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var("STEWARD_TEST_PG_URL") else {
            if std::env::var("CI").is_ok_and(|value| value == "true") {
                panic!(
                    "CI=true but STEWARD_TEST_PG_URL is not set: PostgreSQL tests must run in CI (use scripts/test)"
                );
            }
            eprintln!("skipping PostgreSQL half: STEWARD_TEST_PG_URL is not set (scripts/test sets it)");
            return None;
        };
        let name = format!(
            "steward_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        Some(TestDb::Postgres { admin_url, name })
    }

    /// A fresh database of the same backend.
    pub fn another(&self) -> TestDb {
        match self {
            TestDb::Sqlite { .. } => TestDb::sqlite(),
            TestDb::Postgres { .. } => TestDb::postgres().expect("the server of this one"),
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => path.display().to_string(),
            TestDb::Postgres { admin_url, name } => {
                let base = admin_url.rsplit_once('/').unwrap().0;
                format!("{base}/{name}")
            }
        }
    }

    pub fn open(&self) -> Box<dyn Store> {
        steward_store::open(&self.url(), Some(signing_key())).unwrap()
    }

    /// Runs SQL directly, bypassing the store (to play the attacker).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        match self {
            TestDb::Sqlite { path, .. } => {
                let connection = rusqlite::Connection::open(path).unwrap();
                connection.execute_batch(sql).map_err(|error| error.to_string())
            }
            TestDb::Postgres { .. } => {
                let mut client = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
                client.batch_execute(sql).map_err(|error| {
                    error
                        .as_db_error()
                        .map(|db| db.message().to_string())
                        .unwrap_or(error.to_string())
                })
            }
        }
    }

    /// Counts rows of a table directly.
    /// Every index's definition, sorted.
    pub fn index_definitions(&self) -> Vec<String> {
        let mut definitions: Vec<String> = match self {
            TestDb::Sqlite { path, .. } => {
                let connection = rusqlite::Connection::open(path).unwrap();
                let mut statement = connection
                    .prepare("SELECT name || ': ' || COALESCE(sql, '') FROM sqlite_schema WHERE type = 'index'")
                    .unwrap();
                statement
                    .query_map([], |row| row.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            TestDb::Postgres { .. } => postgres::Client::connect(&self.url(), postgres::NoTls)
                .unwrap()
                .query(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect(),
        };
        definitions.sort();
        definitions
    }

    pub fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            TestDb::Sqlite { path, .. } => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(&sql, [], |row| row.get(0))
                .unwrap(),
            TestDb::Postgres { .. } => postgres::Client::connect(&self.url(), postgres::NoTls)
                .unwrap()
                .query_one(&sql, &[])
                .unwrap()
                .get(0),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self
            && let Ok(mut client) = postgres::Client::connect(admin_url, postgres::NoTls)
        {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Declares each test function once per backend: `sqlite::name` and `postgres::name`.
macro_rules! conformance_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&crate::harness::TestDb::sqlite()); })+
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(db) = crate::harness::TestDb::postgres() { super::$name(&db); }
            })+
        }
    };
}
pub(crate) use conformance_tests;

pub fn person(handle: &str) -> NewParty {
    NewParty::from_handle(handle)
}

pub fn new_identity(name: &str, system: &str, owner: Option<&str>) -> NewIdentity {
    NewIdentity {
        name: name.into(),
        kind: IdentityKind::ServiceAccount,
        system: system.into(),
        external_id: Some(format!("ext-{name}")),
        environment: "prod".into(),
        tier: Tier::High,
        state: LifecycleState::Active,
        purpose: Some("nightly export of invoices".into()),
        scope: Scope::parse("system=billing,data=invoices").unwrap(),
        labels: Default::default(),
        roles: Roles {
            business_owner: owner.map(str::to_string),
            technical_steward: None,
            backup_approvers: vec![],
            control_owner: None,
        },
        created_at: at("2025-01-01T00:00:00Z"),
        expires_at: None,
        review_due: Some("2027-03-01".parse().unwrap()),
        last_attested_at: None,
        last_used_at: Some(at("2026-11-01T08:00:00Z")),
        last_rotated_at: None,
        provenance: Provenance {
            source: "test".into(),
            observed_at: at("2026-11-27T10:00:00Z"),
        },
    }
}

pub fn new_credential(public_id: &str) -> NewCredential {
    NewCredential {
        kind: CredentialKind::AccessKey,
        public_id: Some(public_id.into()),
        fingerprint: Some(steward_core::Fingerprint::compute(
            &steward_core::FingerprintKey::from_bytes([9; 32]),
            public_id.as_bytes(),
        )),
        preview: Some("wJal…(40 chars)".into()),
        status: CredentialStatus::Active,
        created_at: at("2025-06-01T00:00:00Z"),
        expires_at: Some(at("2027-01-01T00:00:00Z")),
        last_used_at: None,
        revoked_at: None,
    }
}
