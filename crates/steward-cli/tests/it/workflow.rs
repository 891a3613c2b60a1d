//! The README's walk-through, command by command.

use crate::harness::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzS3cr3tV4lu3";

#[test]
fn init_creates_private_keys_and_is_idempotent() {
    let steward = Steward::new();
    let keys = steward.data_dir().join("keys");
    assert_eq!(file_mode(&keys.join("fingerprint.key")), 0o600);
    assert_eq!(file_mode(&keys.join("audit-signing.key")), 0o600);
    assert_eq!(file_mode(&steward.data_dir()), 0o700);
    assert!(steward.db_path().exists());
    let key_before = std::fs::read(keys.join("audit-signing.key")).unwrap();
    let again = steward.run(&["init"]).ok();
    assert!(again.stdout.contains("already initialised"), "{}", again.stdout);
    assert_eq!(std::fs::read(keys.join("audit-signing.key")).unwrap(), key_before);
}

/// Keys given in the environment are the keys in use: `init` writes no other for them,
/// only the audit key's public half, which verifies what the environment's key signed.
#[test]
fn init_with_keys_in_the_environment_writes_their_public_key_only() {
    let steward = Steward::uninitialised();
    let (audit, fingerprint) = ("b".repeat(64), "c".repeat(64));
    let with_keys = |args: &[&str]| {
        let output = steward
            .command(args)
            .env("STEWARD_AUDIT_KEY", &audit)
            .env("STEWARD_FINGERPRINT_KEY", &fingerprint)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    with_keys(&["init"]);
    with_keys(&["party", "add", "a@example.com"]);
    let keys = steward.data_dir().join("keys");
    let mut files: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec!["audit-verify.pub"]);
    let public = keys.join("audit-verify.pub");
    steward
        .run(&["audit", "verify", "--public-key", public.to_str().unwrap()])
        .ok();
    // A key file that disagrees with the environment is refused.
    std::fs::write(keys.join("audit-signing.key"), format!("{}\n", "d".repeat(64))).unwrap();
    let output = steward
        .command(&["init"])
        .env("STEWARD_AUDIT_KEY", &audit)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("audit-signing.key holds another key than STEWARD_AUDIT_KEY"),
        "{stderr}"
    );
}

#[test]
fn commands_before_init_say_how_to_start() {
    let steward = Steward::uninitialised();
    let output = steward.run(&["nhi", "list"]).fails_with(1);
    assert!(
        output.stderr.contains("run `steward init --data-dir"),
        "{}",
        output.stderr
    );
}

#[test]
fn the_readme_walk_through_works() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward
        .run_with_stdin(
            &[
                "credential",
                "add",
                "billing-export",
                "--public-id",
                "AKIAEXAMPLE000000001",
                "--secret-stdin",
                "--expires",
                "2027-01-01",
            ],
            Some(SECRET),
        )
        .ok();

    let listed = steward
        .run(&["nhi", "list", "--system", "aws", "--tier", "high", "-o", "json"])
        .ok()
        .json();
    let identity = &listed.as_array().unwrap()[0];
    for field in [
        "id",
        "name",
        "kind",
        "system",
        "external_id",
        "environment",
        "tier",
        "state",
        "business_owner",
        "technical_steward",
        "backup_approvers",
        "purpose",
        "expires_at",
        "review_due",
    ] {
        assert!(
            identity.get(field).is_some(),
            "nhi list -o json lacks {field}: {identity}"
        );
    }
    assert_eq!(identity["business_owner"], "alice@example.com");
    assert_eq!(identity["technical_steward"], "team-payments");
    assert_eq!(identity["backup_approvers"], serde_json::json!(["bob@example.com"]));
    assert_eq!(identity["review_due"], "2027-03-01");
    assert_eq!(
        identity["scope"],
        serde_json::json!({"data": ["invoices"], "system": ["billing"]})
    );

    let csv = steward.run(&["nhi", "list", "-o", "csv"]).ok().stdout;
    assert!(
        csv.starts_with("id,name,kind,system,external_id,environment,tier,state,business_owner"),
        "{csv}"
    );
    assert!(csv.contains("billing-export,service_account,aws"), "{csv}");
    let table = steward.run(&["nhi", "list"]).ok().stdout;
    assert!(table.lines().next().unwrap().starts_with("ID  NAME"), "{table}");

    let shown = steward
        .run(&["nhi", "show", "billing-export", "-o", "json"])
        .ok()
        .json();
    let credential = &shown["credentials"][0];
    assert_eq!(credential["public_id"], "AKIAEXAMPLE000000001");
    assert_eq!(credential["preview"], "wJal…(42 chars)");
    assert_eq!(credential["fingerprint"].as_str().unwrap().len(), 64);

    let updated = steward
        .run(&[
            "nhi",
            "set",
            "billing-export",
            "--purpose",
            "weekly export",
            "--expires",
            "2027-06-01",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(updated["purpose"], "weekly export");
    assert_eq!(updated["expires_at"], "2027-06-01T00:00:00Z");
    let cleared = steward
        .run(&["nhi", "set", "billing-export", "--expires", "none", "-o", "json"])
        .ok()
        .json();
    assert_eq!(cleared["expires_at"], serde_json::Value::Null);

    let moved = steward
        .run(&[
            "nhi",
            "transition",
            "billing-export",
            "--to",
            "suspended",
            "--reason",
            "incident 42",
        ])
        .ok();
    assert_eq!(moved.stdout.trim(), "aws/billing-export: active -> suspended");

    let log = steward
        .run(&["audit", "log", "--subject", "billing-export", "-o", "json"])
        .ok()
        .json();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "identity.create",
            "credential.add",
            "identity.update",
            "identity.update",
            "identity.transition"
        ]
    );
    let transition = log.as_array().unwrap().last().unwrap();
    assert_eq!(transition["actor"], "tester");
    assert_eq!(transition["reason"], "incident 42");
    assert_eq!(transition["before"], serde_json::json!({"state": "active"}));

    let verified = steward.run(&["audit", "verify"]).ok();
    assert!(
        verified
            .stdout
            .starts_with("audit trail verified: 8 events, 7 signed checkpoints"),
        "{}",
        verified.stdout
    );

    // The secret is nowhere: not in any output, not in the database or its WAL, not in
    // the audit trail.
    let export = steward.run(&["export", "-o", "json"]).ok().stdout;
    assert!(!export.contains(SECRET) && !export.contains("bPxRfiCY"));
    assert!(!log.to_string().contains("bPxRfiCY"));
    for entry in std::fs::read_dir(steward.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(SECRET.len()).any(|window| window == SECRET.as_bytes()),
                "{} contains the secret",
                path.display()
            );
        }
    }
}

#[test]
fn a_copy_of_a_known_secret_is_attached_to_its_credential() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward.add_example_credential("AKIA1", SECRET);
    // `credential locate` of a repository file at `at`, with `extra` arguments and `stdin`.
    let locate = |at: &str, extra: &[&str], stdin: Option<&str>| {
        let mut args = vec![
            "credential",
            "locate",
            "--kind",
            "repository_file",
            "--at",
            at,
            "--secret-stdin",
        ];
        args.extend_from_slice(extra);
        steward.run_with_stdin(&args, stdin)
    };
    let here = "acme/app@1a2b3c:config.py:7";
    let location = locate(here, &["-o", "json"], Some(&format!("{SECRET}\n"))).ok().json();
    assert!(location["credential_id"].is_number(), "{location}");
    let shown = steward.run(&["nhi", "show", "billing-export"]).ok().stdout;
    assert!(shown.contains("repository_file acme/app@1a2b3c:config.py:7"), "{shown}");
    let orphan = steward
        .run_with_stdin(
            &[
                "credential",
                "locate",
                "--kind",
                "chat_message",
                "--at",
                "slack:#ops/1.2",
                "--secret-stdin",
            ],
            Some("other-secret-value"),
        )
        .ok();
    assert!(orphan.stderr.contains("unmanaged copy"), "{}", orphan.stderr);

    // Offboarded, the identity cannot be archived while the copy is known; once the copy
    // is gone (a copy recorded by hand, which no scan removes), it can.
    steward.revoke_example("AKIA1");
    let blocked = steward.transition_example("archived", "done").fails_with(1);
    assert!(blocked.stderr.contains("1 known location(s)"), "{}", blocked.stderr);
    // --removed needs a reason, and a place where a live copy is.
    // (Refused before stdin is read: no secret is written to it.)
    let no_reason = locate(here, &["--removed"], None);
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    let wrong = locate(
        "acme/app@1a2b3c:config.py:8",
        &["--removed", "--reason", "x"],
        Some(SECRET),
    )
    .fails_with(1);
    assert_eq!(
        wrong.stderr.trim(),
        "error: no live copy of this secret is recorded at repository_file 'acme/app@1a2b3c:config.py:8'"
    );
    let removed = locate(
        here,
        &["--removed", "--reason", "history rewritten", "-o", "json"],
        Some(SECRET),
    )
    .ok()
    .json();
    assert!(removed["removed_at"].is_string(), "{removed}");
    steward.transition_example("archived", "done").ok();
    let log = steward.run(&["audit", "log", "-o", "json"]).ok().json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|event| event["action"] == "location.remove" && event["reason"] == "history rewritten"),
        "{log}"
    );
}

#[test]
fn parties_can_depart_and_be_listed() {
    let steward = Steward::new();
    steward.add_example_parties();
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
    let parties = steward.run(&["party", "list", "-o", "json"]).ok().json();
    let handles: Vec<&str> = parties
        .as_array()
        .unwrap()
        .iter()
        .map(|party| party["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, vec!["alice@example.com", "bob@example.com", "team-payments"]);
    assert_eq!(parties[1]["status"], "departed");
    let log = steward
        .run(&["audit", "log", "--party", "bob@example.com", "-o", "jsonl"])
        .ok()
        .stdout;
    assert_eq!(log.lines().count(), 2, "{log}");
}

#[test]
fn the_same_commands_work_on_postgres() {
    let Some((url, _guard)) = postgres_database() else {
        return;
    };
    let mut steward = Steward::uninitialised();
    steward.database_url = Some(url);
    steward.run(&["init"]).ok();
    assert!(
        !steward.db_path().exists(),
        "PostgreSQL mode must not create a SQLite file"
    );
    steward.add_example_parties();
    steward.add_example_identity();
    steward.add_example_credential("AKIA1", SECRET);
    steward
        .run(&[
            "nhi",
            "transition",
            "billing-export",
            "--to",
            "suspended",
            "--reason",
            "incident 42",
        ])
        .ok();
    let listed = steward
        .run(&["nhi", "list", "--system", "aws", "-o", "json"])
        .ok()
        .json();
    assert_eq!(listed[0]["state"], "suspended");
    steward.transition_example("archived", "x").fails_with(1);
    let verified = steward.run(&["audit", "verify"]).ok();
    assert!(
        verified
            .stdout
            .starts_with("audit trail verified: 6 events, 5 signed checkpoints"),
        "{}",
        verified.stdout
    );
}

/// Text from users reaches a terminal escaped: a line break in a reason adds no row to the
/// audit log, an escape sequence in a purpose does not reach the screen. A blank reason is
/// refused; a blank actor is no actor, so the OS user is recorded.
#[test]
fn user_text_is_escaped_in_tables_and_blank_reasons_and_actors_are_not_recorded() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward
        .run(&[
            "nhi",
            "transition",
            "aws/billing-export",
            "--to",
            "suspended",
            "--reason",
            "incident 42\n999  2026-11-29T13:05:00Z  security-lead  approved",
        ])
        .ok();
    steward
        .run(&[
            "nhi",
            "set",
            "aws/billing-export",
            "--purpose",
            "\u{1b}[31mred\u{1b}]0;title\u{7}\u{202e}",
        ])
        .ok();
    let log = steward.run(&["audit", "log"]).ok().stdout;
    let events = steward.run(&["audit", "log", "-o", "json"]).ok().json();
    assert_eq!(log.lines().count(), events.as_array().unwrap().len() + 1, "{log}");
    // Snapshots are printed as stored (keys in the stored order, not sorted).
    let raw = steward.run(&["audit", "log", "-o", "jsonl"]).ok().stdout;
    assert!(raw.contains(r#""after":{"id":"#), "{raw}");
    assert!(log.contains("incident 42\\n999"), "{log}");
    let shown = steward.run(&["nhi", "show", "aws/billing-export"]).ok().stdout;
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'), "{shown:?}");
    assert!(
        shown.contains("\\u{1b}[31mred\\u{1b}]0;title\\u{7}\\u{202e}"),
        "{shown}"
    );
    // JSON keeps the text as it is.
    let json = steward
        .run(&["nhi", "show", "aws/billing-export", "-o", "json"])
        .ok()
        .json();
    assert_eq!(json["purpose"], "\u{1b}[31mred\u{1b}]0;title\u{7}\u{202e}");

    for reason in ["", "   "] {
        let output = steward
            .run(&[
                "nhi",
                "transition",
                "aws/billing-export",
                "--to",
                "active",
                "--reason",
                reason,
            ])
            .fails_with(2);
        assert!(output.stderr.contains("a reason needs some text"), "{}", output.stderr);
    }
    // A missing argument is one line too, and says nothing of a --data-dir set from the
    // environment.
    let output = steward
        .command(&["nhi", "transition", "aws/billing-export", "--to", "active"])
        .env("STEWARD_DATA_DIR", steward.data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr,
        "error: the following required arguments were not provided: --reason <REASON> (see --help)\n"
    );
    let before = events.as_array().unwrap().len();
    steward
        .command(&[
            "nhi",
            "transition",
            "aws/billing-export",
            "--to",
            "active",
            "--reason",
            "  resolved  ",
        ])
        .env("STEWARD_ACTOR", "")
        .env("USER", "operator")
        .output()
        .map(|output| assert!(output.status.success(), "{output:?}"))
        .unwrap();
    let events = steward.run(&["audit", "log", "-o", "json"]).ok().json();
    let last = &events.as_array().unwrap()[before];
    assert_eq!(
        (last["actor"].as_str(), last["reason"].as_str()),
        (Some("operator"), Some("resolved"))
    );
}

/// An attestation is the owner's review: the next one is due a tier's interval later
/// (unless a date is given), and an identity whose owner departed gets an active owner
/// before anyone can attest it.
#[test]
fn an_attestation_moves_the_review_and_needs_an_active_owner() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity(); // high: reviewed every 180 days; due 2027-03-01
    steward
        .run(&[
            "nhi",
            "set",
            "billing-export",
            "--tier",
            "critical",
            "--review-due",
            "2026-11-01",
        ])
        .ok();
    let attested = steward
        .run(&["nhi", "set", "billing-export", "--attest", "-o", "json"])
        .ok()
        .json();
    // STEWARD_NOW is 2026-11-27T10:00:00Z; critical: 90 days.
    assert_eq!(attested["last_attested_at"], "2026-11-27T10:00:00Z");
    assert_eq!(attested["review_due"], "2027-02-25");
    let given = steward
        .run(&[
            "nhi",
            "set",
            "billing-export",
            "--attest",
            "--review-due",
            "2027-01-15",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(given["review_due"], "2027-01-15");

    steward
        .run(&["party", "set", "alice@example.com", "--status", "departed"])
        .ok();
    let refused = steward.run(&["nhi", "set", "billing-export", "--attest"]).fails_with(1);
    assert_eq!(
        refused.stderr.trim(),
        "error: cannot attest billing-export: its business owner alice@example.com has departed; give it an active \
         owner (--owner, in the same command is fine)"
    );
    steward.run(&["party", "add", "carol@example.com"]).ok();
    let moved = steward
        .run(&[
            "nhi",
            "set",
            "billing-export",
            "--attest",
            "--owner",
            "carol@example.com",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(moved["business_owner"], "carol@example.com");
    let orphan = steward
        .run(&["nhi", "set", "billing-export", "--owner", "none", "--attest"])
        .fails_with(1);
    assert!(orphan.stderr.contains("it has no business owner"), "{}", orphan.stderr);
}

/// A secret revoked before cannot be added as usable again (a rotation that handed out
/// the old secret); one secret on two identities is allowed, and said.
#[test]
fn a_revoked_secret_is_not_usable_again_and_a_shared_one_is_said() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9q8Lk2mTe";
    steward.add_example_credential("AKIAEXAMPLE000000001", secret);
    steward
        .run(&[
            "credential",
            "revoke",
            "billing-export",
            "AKIAEXAMPLE000000001",
            "--reason",
            "rotated",
        ])
        .ok();
    let reused = steward
        .try_add_example_credential("AKIAEXAMPLE000000002", secret, &[])
        .fails_with(1);
    assert_eq!(
        reused.stderr.trim(),
        "error: this secret was revoked as credential #1 of 'aws/billing-export' (revoked 2026-11-27T10:00:00Z): a \
         revoked secret cannot be in use again (a failed rotation?); add the new secret, or add this one with \
         --status revoked"
    );
    assert_eq!(steward.count("credentials"), 1);

    steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "reports",
            "--kind",
            "service_account",
            "--system",
            "gcp",
            "--tier",
            "low",
        ])
        .ok();
    let add = |identity: &str, public_id: &str, secret: &str| {
        steward.run_with_stdin(
            &[
                "credential",
                "add",
                identity,
                "--public-id",
                public_id,
                "--secret-stdin",
            ],
            Some(secret),
        )
    };
    let first = add("reports", "k1", "a-shared-secret-value-0123456789").ok();
    assert!(!first.stderr.contains("shared"), "{}", first.stderr);
    steward
        .run(&[
            "nhi", "add", "--name", "exports", "--kind", "bot", "--system", "gcp", "--tier", "low",
        ])
        .ok();
    let second = add("exports", "k2", "a-shared-secret-value-0123456789").ok();
    assert!(
        second
            .stderr
            .contains("note: this secret is also credential #2 of gcp/reports: a shared secret"),
        "{}",
        second.stderr
    );
}

/// A departure that leaves live identities without one of their parties is said on
/// stderr (the `owner-departed` work, named when it starts).
#[test]
fn a_departure_names_the_identities_it_leaves() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.run(&["party", "add", "carol@example.com"]).ok();
    steward.add_example_identity(); // alice owns it, bob is its backup approver
    let quiet = steward
        .run(&["party", "set", "carol@example.com", "--status", "departed"])
        .ok();
    assert!(!quiet.stderr.contains("note:"), "{}", quiet.stderr);
    let left = steward
        .run(&["party", "set", "bob@example.com", "--status", "departed"])
        .ok();
    assert_eq!(
        left.stderr.trim(),
        "note: bob@example.com still holds roles on 1 live identities; give them other owners (steward nhi list \
         --party bob@example.com)"
    );
}

/// A credential added with an expiry already past is expired unless a status is given.
#[test]
fn a_credential_expired_when_added_is_expired() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    let status = |output: Output| output.json()["status"].as_str().unwrap().to_string();
    let past = steward
        .try_add_example_credential(
            "AKIAPAST",
            "a-secret-value-that-expired-0001",
            &["--expires", "2026-01-01", "-o", "json"],
        )
        .ok();
    assert_eq!(status(past), "expired");
    let future = steward
        .try_add_example_credential(
            "AKIAFUTURE",
            "a-secret-value-still-valid-0002",
            &["--expires", "2027-01-01", "-o", "json"],
        )
        .ok();
    assert_eq!(status(future), "active");
    let told = steward
        .try_add_example_credential(
            "AKIATOLD",
            "a-secret-value-said-active-0003",
            &["--expires", "2026-01-01", "--status", "active", "-o", "json"],
        )
        .ok();
    assert_eq!(status(told), "active");
}
