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

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca
    // (no name check) accepts.
    let by_address = url.replace("@localhost:", "@127.0.0.1:");
    let refused = run_at(steward, &by_address, &full, "home", &["nhi", "list"]).fails_with(1);
    assert!(refused.stderr.contains("not valid for name"), "{}", refused.stderr);
    let ca_only = format!("?sslmode=verify-ca&sslrootcert={ca}");
    run_at(steward, &by_address, &ca_only, "home", &["nhi", "list"]).ok();

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
