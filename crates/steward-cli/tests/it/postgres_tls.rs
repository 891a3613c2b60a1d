//! PostgreSQL over TLS: `sslmode` and `sslrootcert` as libpq means them, against the test
//! server with TLS on (`enable_postgres_tls` in scripts/services.sh), whose role
//! `steward_tls` may only connect over TLS and whose certificate names `localhost` only.

use crate::harness::{Steward, postgres_database};
use std::path::PathBuf;

/// The TLS-only URL of a fresh database, the test CA and an unrelated CA; `None` outside
/// CI without a server (under CI=true a missing TLS server fails).
fn tls_database() -> Option<(String, PathBuf, PathBuf, impl Drop)> {
    let (url, guard) = postgres_database()?;
    let (Ok(tls_url), Ok(tls_dir)) = (
        std::env::var("STEWARD_TEST_PG_TLS_URL"),
        std::env::var("STEWARD_TEST_PG_TLS_DIR"),
    ) else {
        assert!(
            std::env::var("CI").map_or(true, |value| value != "true"),
            "CI=true needs STEWARD_TEST_PG_TLS_URL and STEWARD_TEST_PG_TLS_DIR (scripts/test)"
        );
        eprintln!("skipping PostgreSQL TLS test: the server has no TLS (scripts/test turns it on)");
        return None;
    };
    let name = url.rsplit_once('/').unwrap().1;
    let url = format!("{}/{name}", tls_url.rsplit_once('/').unwrap().0);
    let dir = PathBuf::from(tls_dir);
    Some((url, dir.join("ca.pem"), dir.join("other-ca.pem"), guard))
}

/// Runs `args` with the database at `url` + `query`, and `HOME` at `home` (where no
/// `~/.postgresql/root.crt` is unless a test puts one there).
fn run_at(steward: &mut Steward, url: &str, query: &str, home: &str, args: &[&str]) -> crate::harness::Output {
    steward.database_url = Some(format!("{url}{query}"));
    let home = steward.dir.path().join(home);
    std::fs::create_dir_all(&home).unwrap();
    steward.home = Some(home);
    steward.run(args)
}

#[test]
fn postgres_connections_use_tls_as_sslmode_says() {
    let Some((url, ca, other_ca, _guard)) = tls_database() else {
        return;
    };
    let ca = ca.display().to_string();
    let other_ca = other_ca.display().to_string();
    let steward = &mut Steward::uninitialised();

    // The role may not connect without TLS: the server says so, in one line.
    let refused = run_at(steward, &url, "?sslmode=disable", "home", &["init"]).fails_with(1);
    assert!(refused.stderr.contains("no encryption"), "{}", refused.stderr);

    // The default (prefer) uses TLS when the server offers it, without checking the
    // certificate (no root certificate given): libpq's behaviour.
    run_at(steward, &url, "", "home", &["init"]).ok();
    steward.add_example_parties();
    steward.add_example_identity();
    run_at(
        steward,
        &url,
        "?sslmode=require",
        "home",
        &["nhi", "show", "billing-export"],
    )
    .ok();

    // verify-full: chain and name checked; `audit verify` also opens a second connection.
    let full = format!("?sslmode=verify-full&sslrootcert={ca}");
    let verified = run_at(steward, &url, &full, "home", &["audit", "verify"]).ok();
    assert!(verified.stdout.contains("audit trail verified"), "{}", verified.stdout);

    // A certificate from another CA is refused by every mode that checks.
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let query = format!("?sslmode={mode}&sslrootcert={other_ca}");
        let refused = run_at(steward, &url, &query, "home", &["nhi", "list"]).fails_with(1);
        assert!(refused.stderr.contains("UnknownIssuer"), "{mode}: {}", refused.stderr);
    }

    // allow is taken as prefer: TLS when offered.
    run_at(steward, &url, "?sslmode=allow", "home", &["nhi", "list"]).ok();
    // PGSSLMODE and PGSSLROOTCERT apply when the URL says nothing.
    steward.database_url = Some(url.clone());
    let refused = output_of(steward.command(&["nhi", "list"]).env("PGSSLMODE", "disable"));
    assert!(
        refused.code == 1 && refused.stderr.contains("no encryption"),
        "{}",
        refused.stderr
    );
    let refused = output_of(
        steward
            .command(&["nhi", "list"])
            .env("PGSSLMODE", "require")
            .env("PGSSLROOTCERT", &other_ca),
    );
    assert!(
        refused.code == 1 && refused.stderr.contains("UnknownIssuer"),
        "{}",
        refused.stderr
    );
    // Roles that may connect without TLS still can, with sslmode=disable.
    let (plain_url, _plain) = postgres_database().expect("checked above");
    let plain = &mut Steward::uninitialised();
    run_at(plain, &plain_url, "?sslmode=disable", "home", &["init"]).ok();

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca
    // (no name check) accepts.
    let by_address = url.replace("@localhost:", "@127.0.0.1:");
    let refused = run_at(steward, &by_address, &full, "home", &["nhi", "list"]).fails_with(1);
    assert!(refused.stderr.contains("not valid for name"), "{}", refused.stderr);
    let ca_only = format!("?sslmode=verify-ca&sslrootcert={ca}");
    run_at(steward, &by_address, &ca_only, "home", &["nhi", "list"]).ok();
    // ... but not from another CA.
    let other_only = format!("?sslmode=verify-ca&sslrootcert={other_ca}");
    let refused = run_at(steward, &by_address, &other_only, "home", &["nhi", "list"]).fails_with(1);
    assert!(refused.stderr.contains("UnknownIssuer"), "{}", refused.stderr);

    // Checking modes need a root certificate: none given and none in ~/.postgresql.
    let missing = run_at(steward, &url, "?sslmode=verify-full", "home", &["nhi", "list"]).fails_with(1);
    assert!(
        missing.stderr.contains("sslmode=verify-full needs a root certificate"),
        "{}",
        missing.stderr
    );
    // libpq's default place for it is used, and then require checks the chain too.
    for (home, root, works) in [("home-ca", &ca, true), ("home-other", &other_ca, false)] {
        let postgresql = steward.dir.path().join(home).join(".postgresql");
        std::fs::create_dir_all(&postgresql).unwrap();
        std::fs::copy(root, postgresql.join("root.crt")).unwrap();
        for mode in ["verify-full", "require"] {
            let output = run_at(steward, &url, &format!("?sslmode={mode}"), home, &["nhi", "list"]);
            if works {
                output.ok();
            } else {
                let refused = output.fails_with(1);
                assert!(refused.stderr.contains("UnknownIssuer"), "{mode}: {}", refused.stderr);
            }
        }
    }

    // Bad parameters are named.
    for (query, expected) in [
        ("?sslmode=verify", "invalid sslmode 'verify'"),
        (
            "?sslmode=require&sslrootcert=/nonexistent/ca.pem",
            "sslrootcert /nonexistent/ca.pem: ",
        ),
        (
            "?sslcert=/tmp/client.pem",
            "sslcert: client certificates are not supported",
        ),
    ] {
        let refused = run_at(steward, &url, query, "home", &["nhi", "list"]).fails_with(1);
        assert!(refused.stderr.contains(expected), "{query}: {}", refused.stderr);
    }
}

fn output_of(command: &mut std::process::Command) -> crate::harness::Output {
    let output = command.output().unwrap();
    crate::harness::Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A server that answers PostgreSQL's TLS request with "no" and reports, per connection,
/// whether the client then went on without TLS (sent its startup message in plaintext).
fn server_without_tls() -> (u16, std::sync::mpsc::Receiver<bool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 8];
            if stream.read_exact(&mut request).is_err() || request != [0, 0, 0, 8, 4, 210, 22, 47] {
                let _ = sender.send(true); // not even a TLS request: plaintext
                continue;
            }
            stream.write_all(b"N").unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut next = [0u8; 1];
            let plaintext = matches!(stream.read(&mut next), Ok(1));
            if sender.send(plaintext).is_err() {
                return;
            }
        }
    });
    (port, receiver)
}

#[test]
fn modes_that_require_tls_never_fall_back_to_plaintext() {
    let (port, plaintext) = server_without_tls();
    let steward = &mut Steward::uninitialised();
    let url = format!("postgres://steward@localhost:{port}/steward");
    let mut queries = vec!["?sslmode=require".to_string()];
    // The checking modes need a root certificate that reads (it is never used here).
    if let Ok(dir) = std::env::var("STEWARD_TEST_PG_TLS_DIR") {
        for mode in ["verify-ca", "verify-full"] {
            queries.push(format!("?sslmode={mode}&sslrootcert={dir}/ca.pem"));
        }
    }
    for query in &queries {
        let refused = run_at(steward, &url, query, "home", &["nhi", "list"]).fails_with(1);
        assert!(
            refused.stderr.contains("server does not support TLS"),
            "{query}: {}",
            refused.stderr
        );
        assert!(!plaintext.recv().unwrap(), "{query}: the client went on in plaintext");
    }
    // prefer (the default) does go on in plaintext when the server declines: the README
    // says so (an active attacker can force it; use verify-full).
    let _ = run_at(steward, &url, "", "home", &["nhi", "list"]);
    assert!(plaintext.recv().unwrap(), "prefer should fall back to plaintext");
}

/// SCRAM with channel binding: the server checks the binding (`tls-server-end-point`, a
/// hash of its certificate), so a connection with `channel_binding=require` succeeds only
/// when steward computes it as PostgreSQL does; without binding data it is refused.
#[test]
fn scram_binds_the_password_exchange_to_the_tls_session() {
    let Some((url, _, _, _guard)) = tls_database() else {
        return;
    };
    let scram = std::env::var("STEWARD_TEST_PG_SCRAM_URL").expect("set with STEWARD_TEST_PG_TLS_URL");
    let database = url.rsplit_once('/').unwrap().1;
    let scram_url = format!("{}/{database}", scram.rsplit_once('/').unwrap().0);
    let steward = &mut Steward::uninitialised();
    run_at(
        steward,
        &scram_url,
        "?sslmode=require&channel_binding=require",
        "home",
        &["init"],
    )
    .ok();
    run_at(
        steward,
        &scram_url,
        "?sslmode=require&channel_binding=require",
        "home",
        &["nhi", "list"],
    )
    .ok();
    // PGCHANNELBINDING applies when the URL says nothing.
    steward.database_url = Some(format!("{scram_url}?sslmode=require"));
    let bound = output_of(steward.command(&["nhi", "list"]).env("PGCHANNELBINDING", "require"));
    assert_eq!(bound.code, 0, "{}", bound.stderr);
    // A wrong password is still refused (the exchange is checked, not skipped).
    let wrong = scram_url.replace("steward-scram-test", "wrong");
    let refused = run_at(
        steward,
        &wrong,
        "?sslmode=require&channel_binding=require",
        "home",
        &["nhi", "list"],
    )
    .fails_with(1);
    assert!(
        refused.stderr.contains("password authentication failed"),
        "{}",
        refused.stderr
    );
}
