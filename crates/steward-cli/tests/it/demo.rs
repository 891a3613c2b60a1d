//! `steward demo`: the README's first command.

use crate::harness::*;

#[test]
fn the_demo_builds_a_realistic_deterministic_estate() {
    let steward = Steward::uninitialised();
    let summary = steward.run(&["demo", "-o", "json"]).ok().json();
    assert!(summary["identities"].as_u64().unwrap() >= 200);
    assert!(summary["by_system"].as_object().unwrap().len() >= 6);
    assert!(summary["departed_parties"].as_u64().unwrap() >= 1);
    let planted = summary["planted_problems"].as_object().unwrap();
    for rule in [
        "no-owner",
        "owner-departed",
        "no-backup-approver",
        "undocumented",
        "rotation-overdue",
        "long-lived",
        "review-overdue",
        "dormant",
        "never-used",
        "shared",
        "cross-environment",
        "leaked",
        "revoked-but-referenced",
        "over-privileged",
        "human-use",
        "customer-key-orphaned",
        "third-party-unreviewed",
        "anomalous-use",
    ] {
        assert!(
            planted.get(rule).and_then(|count| count.as_u64()).unwrap_or(0) > 0,
            "no example of {rule}"
        );
    }
    let states = summary["by_state"].as_object().unwrap();
    for state in ["proposed", "active", "suspended", "offboarding", "revoked", "archived"] {
        assert!(states.contains_key(state), "no identity in state {state}");
    }
    steward.run(&["audit", "verify"]).ok();
    insta::assert_json_snapshot!("demo_summary", summary);
    let listing = steward
        .run(&["nhi", "list", "--system", "aws", "--tier", "critical"])
        .ok()
        .stdout;
    insta::assert_snapshot!("demo_aws_critical", listing);

    // Same seed, same estate: a second run replaces the first and prints the same.
    let again = steward.run(&["demo", "-o", "json"]).ok().json();
    assert_eq!(again, summary);
    assert_eq!(
        steward
            .run(&["nhi", "list", "--system", "aws", "--tier", "critical"])
            .ok()
            .stdout,
        listing
    );
}

#[test]
fn the_demo_never_overwrites_a_real_installation() {
    let steward = Steward::new();
    steward.add_example_parties();
    let output = steward.run(&["demo"]).fails_with(1);
    assert!(output.stderr.contains("the demo did not create"), "{}", output.stderr);
    assert_eq!(steward.count("parties"), 3);
}

#[test]
fn the_demo_shows_planted_problems_in_the_data() {
    let steward = Steward::uninitialised();
    steward.run(&["demo"]).ok();
    let shared = steward.run(&["nhi", "list", "-o", "json"]).ok().json();
    let departed: Vec<String> = steward
        .run(&["party", "list", "-o", "json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|party| party["status"] == "departed")
        .map(|party| party["handle"].as_str().unwrap().to_string())
        .collect();
    let owner_departed: Vec<&serde_json::Value> = shared
        .as_array()
        .unwrap()
        .iter()
        .filter(|identity| identity["labels"]["demo.problem"] == "owner-departed")
        .collect();
    assert!(!owner_departed.is_empty());
    for identity in owner_departed {
        assert!(
            departed.contains(&identity["business_owner"].as_str().unwrap().to_string()),
            "{identity}"
        );
    }
}

#[test]
fn the_demo_runs_on_postgres_too() {
    let Some((url, _guard)) = postgres_database() else {
        return;
    };
    let mut steward = Steward::uninitialised();
    steward.database_url = Some(url.clone());
    let summary = steward.run(&["demo", "-o", "json"]).ok().json();
    let sqlite = Steward::uninitialised().run(&["demo", "-o", "json"]).ok().json();
    assert_eq!(summary, sqlite, "both backends build the same estate");
    steward.run(&["audit", "verify"]).ok();

    // The commands it prints to explore the estate name the database.
    let Some((url, _guard)) = postgres_database() else {
        return;
    };
    let mut steward = Steward::uninitialised();
    steward.database_url = Some(url.clone());
    let printed = steward.run(&["demo"]).ok().stdout;
    let data_dir = steward.data_dir().display().to_string();
    let findings = format!("  steward --data-dir {data_dir} --database-url '{url}' findings");
    assert!(printed.lines().any(|line| line == findings), "{printed}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["--data-dir", &data_dir, "--database-url", &url, "findings"])
        .env_remove("STEWARD_DATABASE_URL")
        .env_remove("STEWARD_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}
