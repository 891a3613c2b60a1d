//! Runs the binary against a temporary data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(
            self.code, 0,
            "expected success, stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32) -> Output {
        assert_eq!(
            self.code, code,
            "expected exit {code}, stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "errors are one line: {}",
            self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.stdout))
    }
}

/// A steward installation in a temporary directory.
pub struct Steward {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// `HOME` for the command, when set (libpq's `~/.postgresql/root.crt`).
    pub home: Option<PathBuf>,
}

impl Steward {
    /// A fresh, initialised SQLite installation.
    pub fn new() -> Steward {
        let steward = Steward::uninitialised();
        steward.run(&["init"]).ok();
        steward
    }

    pub fn uninitialised() -> Steward {
        Steward {
            dir: tempfile::tempdir().unwrap(),
            database_url: None,
            home: None,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("steward.db")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_steward"));
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("STEWARD_ACTOR", "tester")
            .env("STEWARD_NOW", "2026-11-27T10:00:00Z")
            .env_remove("STEWARD_DATABASE_URL")
            .env_remove("STEWARD_DATA_DIR")
            .env_remove("STEWARD_FINGERPRINT_KEY")
            .env_remove("STEWARD_AUDIT_KEY");
        if let Some(url) = &self.database_url {
            command.env("STEWARD_DATABASE_URL", url);
        }
        if let Some(home) = &self.home {
            command.env("HOME", home);
        }
        command.env_remove("PGSSLMODE").env_remove("PGSSLROOTCERT");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            // A command that refuses before reading its input may close it first.
            match child.stdin.take().unwrap().write_all(text.as_bytes()) {
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                written => written.unwrap(),
            }
        }
        let output = child.wait_with_output().unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Adds the parties of the README example.
    pub fn add_example_parties(&self) {
        self.run(&[
            "party",
            "add",
            "alice@example.com",
            "--name",
            "Alice Ng",
            "--team",
            "payments",
        ])
        .ok();
        self.run(&[
            "party",
            "add",
            "bob@example.com",
            "--name",
            "Bob Stone",
            "--team",
            "payments",
        ])
        .ok();
    }

    /// Registers the README's example identity.
    pub fn add_example_identity(&self) {
        self.run(&[
            "nhi",
            "add",
            "--name",
            "billing-export",
            "--kind",
            "service_account",
            "--system",
            "aws",
            "--external-id",
            "AIDAEXAMPLE0000000001",
            "--env",
            "prod",
            "--tier",
            "high",
            "--purpose",
            "nightly export of invoices to the finance bucket",
            "--scope",
            "system=billing,data=invoices",
            "--owner",
            "alice@example.com",
            "--steward",
            "team-payments",
            "--backup",
            "bob@example.com",
            "--review-due",
            "2027-03-01",
        ])
        .ok();
    }

    /// Adds a credential with `secret` (read from stdin) to the example identity.
    pub fn add_example_credential(&self, public_id: &str, secret: &str) {
        self.try_add_example_credential(public_id, secret, &[]).ok();
    }

    /// Runs `credential add` on the example identity with `secret` on stdin and `extra`
    /// arguments, whatever comes of it.
    pub fn try_add_example_credential(&self, public_id: &str, secret: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "credential",
            "add",
            "billing-export",
            "--public-id",
            public_id,
            "--secret-stdin",
        ];
        args.extend_from_slice(extra);
        self.run_with_stdin(&args, Some(secret))
    }

    /// Runs `nhi transition` of the example identity to `to` for `reason`.
    pub fn transition_example(&self, to: &str, reason: &str) -> Output {
        self.run(&["nhi", "transition", "billing-export", "--to", to, "--reason", reason])
    }

    /// Takes the example identity to `revoked`: offboarding, its credential `public_id`
    /// revoked, revoked.
    pub fn revoke_example(&self, public_id: &str) {
        self.transition_example("offboarding", "x").ok();
        self.run(&[
            "credential",
            "revoke",
            "billing-export",
            public_id,
            "--reason",
            "rotated",
        ])
        .ok();
        self.transition_example("revoked", "x").ok();
    }

    pub fn count(&self, table: &str) -> i64 {
        rusqlite::Connection::open(self.db_path())
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0))
            .unwrap()
    }
}

/// A fresh PostgreSQL database URL, or `None` outside CI without a server.
pub fn postgres_database() -> Option<(String, PostgresDrop)> {
    let Ok(admin) = std::env::var("STEWARD_TEST_PG_URL") else {
        assert!(
            std::env::var("CI").map_or(true, |value| value != "true"),
            "CI=true needs STEWARD_TEST_PG_URL"
        );
        eprintln!("skipping PostgreSQL CLI test: STEWARD_TEST_PG_URL is not set");
        return None;
    };
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "steward_cli_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    Some((url, PostgresDrop { admin, name }))
}

pub struct PostgresDrop {
    admin: String,
    name: String,
}

impl Drop for PostgresDrop {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A GitHub classic token with `body` (30 characters) and its valid checksum.
pub fn token_from(body: &str) -> String {
    format!("ghp_{body}{}", steward_scan::checks::base62_checksum(body.as_bytes()))
}
