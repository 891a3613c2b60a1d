//! Bad input: one clear line, the right exit code, and the store unchanged.

use crate::harness::*;

fn events(steward: &Steward) -> i64 {
    steward.count("audit_events")
}

#[test]
fn an_unknown_identity_is_named() {
    let steward = Steward::new();
    let output = steward.run(&["nhi", "show", "nope"]).fails_with(1);
    assert_eq!(output.stderr.trim(), "error: unknown identity 'nope'");
    steward
        .run(&["nhi", "transition", "nope", "--to", "suspended", "--reason", "x"])
        .fails_with(1);
}

#[test]
fn an_illegal_transition_changes_nothing() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    let before = events(&steward);
    let output = steward.transition_example("archived", "skip").fails_with(1);
    assert_eq!(
        output.stderr.trim(),
        "error: illegal transition active -> archived (allowed from active: suspended, offboarding)"
    );
    assert_eq!(events(&steward), before);
    let shown = steward
        .run(&["nhi", "show", "billing-export", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["state"], "active");
}

#[test]
fn a_duplicate_name_in_a_system_is_refused() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    let before = (events(&steward), steward.count("identities"));
    let output = steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "billing-export",
            "--kind",
            "api_key",
            "--system",
            "aws",
            "--tier",
            "low",
        ])
        .fails_with(1);
    assert_eq!(
        output.stderr.trim(),
        "error: identity 'aws/billing-export' already exists"
    );
    assert_eq!((events(&steward), steward.count("identities")), before);
}

#[test]
fn malformed_flag_values_are_usage_errors() {
    let steward = Steward::new();
    let output = steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "x",
            "--kind",
            "service_account",
            "--system",
            "aws",
            "--tier",
            "hgih",
        ])
        .fails_with_usage();
    assert!(
        output
            .stderr
            .contains("invalid tier 'hgih' (expected one of: critical, high, medium, low)"),
        "{}",
        output.stderr
    );
    let output = steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "a b",
            "--kind",
            "service_account",
            "--system",
            "aws",
            "--tier",
            "low",
        ])
        .fails_with(2);
    assert!(output.stderr.contains("invalid name: 'a b'"), "{}", output.stderr);
    steward
        .run(&[
            "nhi", "add", "--name", "x", "--kind", "robot", "--system", "aws", "--tier", "low",
        ])
        .fails_with_usage();
    steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "x",
            "--kind",
            "bot",
            "--system",
            "aws",
            "--tier",
            "low",
            "--expires",
            "soon",
        ])
        .fails_with_usage();
    steward
        .run(&[
            "nhi", "add", "--name", "x", "--kind", "bot", "--system", "aws", "--tier", "low", "--owner", "ghost",
        ])
        .fails_with(1);
    // A backup approver named twice is a field error, not a database constraint.
    let output = steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "x",
            "--kind",
            "bot",
            "--system",
            "aws",
            "--tier",
            "low",
            "--backup",
            "bob@example.com,bob@example.com",
        ])
        .fails_with(2);
    assert!(
        output
            .stderr
            .contains("invalid backup_approvers: 'bob@example.com' is listed twice"),
        "{}",
        output.stderr
    );
    assert_eq!(steward.count("identities"), 0);
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let steward = Steward::new();
    rusqlite::Connection::open(steward.db_path())
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
            [],
        )
        .unwrap();
    let output = steward.run(&["nhi", "list"]).fails_with(1);
    assert!(
        output
            .stderr
            .contains("database schema version 999 is newer than this steward supports"),
        "{}",
        output.stderr
    );
}

#[test]
fn an_unreachable_postgres_fails_fast_with_one_line() {
    let steward = Steward::new();
    // A port nothing listens on: bind, read, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://steward:hunter2@127.0.0.1:{port}/steward");
    let started = std::time::Instant::now();
    let output = steward.run(&["--database-url", &url, "nhi", "list"]).fails_with(1);
    assert!(started.elapsed().as_secs() < 10);
    assert!(
        output
            .stderr
            .contains("cannot open database postgres://steward:***@127.0.0.1"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("hunter2"), "the password must not be printed");
}

#[test]
fn audit_verify_names_the_first_tampered_event_even_without_triggers() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward
        .run(&[
            "nhi",
            "transition",
            "billing-export",
            "--to",
            "suspended",
            "--reason",
            "incident",
        ])
        .ok();
    let connection = rusqlite::Connection::open(steward.db_path()).unwrap();
    let refused = connection.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    connection
        .execute_batch(
            "DROP TRIGGER audit_events_append_only_update;
             UPDATE audit_events SET actor = 'mallory' WHERE seq = 4;",
        )
        .unwrap();
    drop(connection);
    let output = steward.run(&["audit", "verify"]).fails_with(1);
    assert_eq!(
        output.stderr.trim(),
        "error: audit chain broken at seq 4: content does not match its hash (edited)"
    );
    let json = steward.run(&["audit", "verify", "-o", "json"]);
    assert_eq!(json.code, 1);
    assert_eq!(json.json()["first_bad_seq"], 4);
}

impl Output {
    /// Clap's own usage errors span several lines (with a hint); only the code is fixed.
    #[track_caller]
    fn fails_with_usage(self) -> Output {
        assert_eq!(self.code, 2, "expected usage error, stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        self
    }
}

#[test]
fn revoked_and_archived_identities_take_only_revoked_credentials_and_archived_no_edit() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    let add_key = |public_id: &str, extra: &[&str]| {
        steward.try_add_example_credential(public_id, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1", extra)
    };
    add_key("AKIAEXAMPLE000000001", &[]).ok();
    steward.revoke_example("AKIAEXAMPLE000000001");
    let before = (events(&steward), steward.count("credentials"));
    let refused = add_key("AKIAEXAMPLE000000002", &[]).fails_with(1);
    assert_eq!(
        refused.stderr.trim(),
        "error: the identity is revoked: every credential it holds is revoked, so none can be active"
    );
    // Nor an expired one: it may still exist at its system.
    add_key("AKIAEXAMPLE000000006", &["--status", "expired"]).fails_with(1);
    assert_eq!((events(&steward), steward.count("credentials")), before);
    // A revoked one may be recorded, and is revoked as of now.
    let recorded = add_key("AKIAEXAMPLE000000005", &["--status", "revoked", "-o", "json"])
        .ok()
        .json();
    assert!(recorded["revoked_at"].is_string(), "{recorded}");

    steward.transition_example("archived", "done").ok();
    let before = events(&steward);
    let refused = steward
        .run(&["nhi", "set", "billing-export", "--purpose", "edited after the fact"])
        .fails_with(1);
    assert_eq!(
        refused.stderr.trim(),
        "error: the identity is archived: archived is final; its record is kept as it was"
    );
    add_key("AKIAEXAMPLE000000003", &[]).fails_with(1);
    // Not even a revoked one: the archived record is kept as it was.
    let refused = add_key("AKIAEXAMPLE000000004", &["--status", "revoked"]).fails_with(1);
    assert_eq!(
        refused.stderr.trim(),
        "error: the identity is archived: archived is final; its record is kept as it was"
    );
    assert_eq!(events(&steward), before);

    // An import may not make such a record either: nothing of the file is imported.
    let file = steward.dir.path().join("closed.yaml");
    std::fs::write(
        &file,
        "version: 1\nidentities:\n  - name: old-deployer\n    kind: service_account\n    system: aws\n    tier: low\n    \
         state: archived\n    credentials:\n      - kind: access_key\n        public_id: AKIAEXAMPLE000000009\n        \
         status: active\n",
    )
    .unwrap();
    let before = (events(&steward), steward.count("identities"));
    let refused = steward.run(&["import", file.to_str().unwrap()]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("aws/old-deployer")
            && refused
                .stderr
                .contains("the identity is archived: every credential it holds is revoked, so none can be active"),
        "{}",
        refused.stderr
    );
    assert_eq!((events(&steward), steward.count("identities")), before);
}

#[test]
fn a_public_id_is_one_credential_of_its_identity() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward.add_example_credential("AKIAEXAMPLE000000001", "first-secret-value-0001");
    let before = (events(&steward), steward.count("credentials"));
    let refused = steward
        .try_add_example_credential("AKIAEXAMPLE000000001", "second-secret-value-0002", &[])
        .fails_with(1);
    assert_eq!(
        refused.stderr.trim(),
        "error: identity 'aws/billing-export' already has a credential 'AKIAEXAMPLE000000001'"
    );
    assert_eq!((events(&steward), steward.count("credentials")), before);

    // A store that holds two anyway (written before this rule, or by hand): revoking by
    // that public id is refused as ambiguous, by #id it works.
    let connection = rusqlite::Connection::open(steward.db_path()).unwrap();
    connection
        .execute_batch(
            "INSERT INTO credentials (identity_id, kind, public_id, status, created_at)
             SELECT identity_id, kind, public_id, status, created_at FROM credentials",
        )
        .unwrap();
    let ids: Vec<i64> = connection
        .prepare("SELECT id FROM credentials ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let refused = steward
        .run(&[
            "credential",
            "revoke",
            "billing-export",
            "AKIAEXAMPLE000000001",
            "--reason",
            "x",
        ])
        .fails_with(1);
    assert_eq!(
        refused.stderr.trim(),
        format!(
            "error: credential 'AKIAEXAMPLE000000001' of identity 'billing-export' is ambiguous: it matches #{}, #{}; use #id",
            ids[0], ids[1]
        )
    );
    let second = format!("#{}", ids[1]);
    steward
        .run(&["credential", "revoke", "billing-export", &second, "--reason", "x"])
        .ok();

    // Twice in one import record: nothing is imported.
    let file = steward.dir.path().join("twice.yaml");
    std::fs::write(
        &file,
        "version: 1\nidentities:\n  - name: deployer\n    kind: service_account\n    system: aws\n    tier: low\n    \
         credentials:\n      - {kind: access_key, public_id: AKIAEXAMPLE000000007}\n      \
         - {kind: access_key, public_id: AKIAEXAMPLE000000007}\n",
    )
    .unwrap();
    let before = steward.count("identities");
    let refused = steward.run(&["import", file.to_str().unwrap()]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("identity 'aws/deployer' already has a credential 'AKIAEXAMPLE000000007'"),
        "{}",
        refused.stderr
    );
    assert_eq!(steward.count("identities"), before);
}

#[test]
fn export_refuses_formats_that_are_no_inventory_file() {
    let steward = Steward::new();
    for format in ["table", "jsonl", "sarif"] {
        let output = steward.run(&["export", "-o", format]).fails_with(2);
        assert_eq!(
            output.stderr.trim(),
            format!("error: export writes json, yaml or csv (an inventory file), not {format}")
        );
        assert!(output.stdout.is_empty());
    }
    // Without -o, JSON.
    let exported = steward.run(&["export"]).ok().json();
    assert_eq!(exported["version"], 1);
}

/// `#12` names a credential by its store id, so no public id may start with `#`.
#[test]
fn a_public_id_cannot_look_like_a_store_id() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    let output = steward
        .run(&["credential", "add", "aws/billing-export", "--public-id", "#1"])
        .fails_with(2);
    assert!(
        output.stderr.contains("public_id: must not start with '#'"),
        "{}",
        output.stderr
    );
    assert_eq!(steward.count("credentials"), 0);
}

/// `revoked` means every credential is revoked at its system: an expired or superseded one
/// that was never revoked keeps the identity from it.
#[test]
fn an_identity_is_revoked_only_when_every_credential_is() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward
        .try_add_example_credential(
            "AKIAEXAMPLE000000001",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1",
            &["--status", "expired"],
        )
        .ok();
    steward.transition_example("offboarding", "retire").ok();
    let refused = steward.transition_example("revoked", "retire").fails_with(1);
    assert!(
        refused
            .stderr
            .contains("1 credential(s) not revoked (active, inactive, expired or superseded)"),
        "{}",
        refused.stderr
    );
    steward
        .run(&[
            "credential",
            "revoke",
            "aws/billing-export",
            "AKIAEXAMPLE000000001",
            "--reason",
            "retire",
        ])
        .ok();
    steward.transition_example("revoked", "retire").ok();
}

/// Machine-readable output is whole, and mistakes are errors rather than empty answers.
#[test]
fn outputs_are_whole_and_mistakes_are_not_empty_answers() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward.add_example_credential("AKIAEXAMPLE000000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1");
    let csv = steward
        .run(&["credential", "list", "aws/billing-export", "-o", "csv"])
        .ok()
        .stdout;
    let fingerprint = csv.lines().nth(1).unwrap().split(',').nth(5).unwrap();
    assert_eq!(fingerprint.len(), 64, "{csv}");
    let table = steward.run(&["credential", "list", "aws/billing-export"]).ok().stdout;
    assert!(
        table.contains(&format!("{} ", &fingerprint[..16])) && !table.contains(fingerprint),
        "{table}"
    );
    let moved = steward
        .run(&[
            "nhi",
            "transition",
            "aws/billing-export",
            "--to",
            "suspended",
            "--reason",
            "r",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(moved["state"], "suspended");
    steward
        .run(&["nhi", "list", "--party", "nobody@example.com"])
        .fails_with(1);
    steward
        .run_with_stdin(
            &[
                "credential",
                "add",
                "aws/billing-export",
                "--public-id",
                "AKIA2",
                "--secret-stdin",
            ],
            Some("   \n"),
        )
        .fails_with(2);
}

/// Values that cannot mean what they say are refused, each in one line, before anything
/// is written.
#[test]
fn handles_labels_purposes_files_and_urls_that_mean_nothing_are_refused() {
    let steward = Steward::new();
    for handle in ["@", "x@", "@example.com", "a@b@c"] {
        let output = steward.run(&["party", "add", handle]).fails_with(2);
        assert!(
            output.stderr.contains("is not an e-mail address"),
            "{handle}: {}",
            output.stderr
        );
    }
    let output = steward
        .run(&["party", "add", "bob@example.com", "--team", ""])
        .fails_with(2);
    assert!(output.stderr.contains("'team-' names no team"), "{}", output.stderr);
    assert_eq!(steward.count("parties"), 0);

    steward.add_example_parties();
    steward.add_example_identity();
    let events = steward.count("audit_events");
    for args in [
        &["--label", "k=1", "--label", "k=2"][..],
        &["--unset-label", "k", "--label", "k=3"][..],
    ] {
        let mut command = vec!["nhi", "set", "aws/billing-export"];
        command.extend_from_slice(args);
        let output = steward.run(&command).fails_with(2);
        assert!(output.stderr.contains("the label is given twice"), "{}", output.stderr);
    }
    let long = "p".repeat(4001);
    let output = steward
        .run(&["nhi", "set", "aws/billing-export", "--purpose", &long])
        .fails_with(2);
    assert!(
        output.stderr.contains("purpose: is over 4000 characters"),
        "{}",
        output.stderr
    );
    assert_eq!(steward.count("audit_events"), events);

    let file = steward.write_file("list.json", "[]\n");
    let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
    assert!(
        output
            .stderr
            .contains("list.json:1: not an inventory: expected an object with version, parties and identities"),
        "{}",
        output.stderr
    );

    let fresh = steward.dir.path().join("mysql-data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .arg("--data-dir")
        .arg(&fresh)
        .args(["--database-url", "mysql://db/steward", "init"])
        .env_remove("STEWARD_DATABASE_URL")
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL scheme 'mysql://'"));
    assert!(!fresh.exists(), "init left {}", fresh.display());
}

/// By hand, a role goes to someone who can act on it: a departed party is refused as owner,
/// steward or approver by `nhi add` and `nhi set` (an import keeps one: it describes the
/// estate as it is).
#[test]
fn roles_are_not_given_to_departed_parties_by_hand() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward
        .run(&[
            "party",
            "set",
            "bob@example.com",
            "--status",
            "departed",
            "--reason",
            "left",
        ])
        .ok();
    let events = steward.count("audit_events");
    let refused = steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "x",
            "--kind",
            "bot",
            "--system",
            "gh",
            "--tier",
            "low",
            "--owner",
            "bob@example.com",
        ])
        .fails_with(1);
    assert!(
        refused.stderr.contains("bob@example.com has departed"),
        "{}",
        refused.stderr
    );
    steward
        .run(&["nhi", "set", "aws/billing-export", "--steward", "bob@example.com"])
        .fails_with(1);
    assert_eq!(steward.count("audit_events"), events);
    let file = steward.write_file(
        "estate.yaml",
        "version: 1\nidentities:\n  - name: old\n    kind: bot\n    system: gh\n    tier: low\n    business_owner: bob@example.com\n",
    );
    steward.run(&["import", file.to_str().unwrap()]).ok();
}
