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
    let csv = steward.run(&["scan", tree.to_str().unwrap(), "-o", "csv"]).stdout;
    assert!(
        csv.starts_with("rule_id,rule_name,fingerprint,preview,path,line,column"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
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
         pattern = '''\\b(?P<secret>acme_[a-z0-9]{24})\\b'''\nexamples = [\"acme_0123456789abcdefghijklmn\"]\n",
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
}
