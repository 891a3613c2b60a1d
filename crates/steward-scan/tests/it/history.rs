//! Git history: secrets that were committed and later removed, on any branch.

use std::path::Path;
use std::process::Command;
use steward_core::FingerprintKey;
use steward_scan::checks::base62_checksum;
use steward_scan::{Matcher, RuleSet, ScanOptions, scan_paths};

fn token(body: &str) -> String {
    format!("ghp_{body}{}", base62_checksum(body.as_bytes()))
}

fn git(dir: &Path, args: &[&str], date: &str) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dana Okafor")
        .env("GIT_AUTHOR_EMAIL", "dana@example.com")
        .env("GIT_COMMITTER_NAME", "Dana Okafor")
        .env("GIT_COMMITTER_EMAIL", "dana@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn removed_secrets_are_found_in_history_with_commit_author_and_date() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let leaked = token("H2kL9mQ4pX7vB1nC5tR8wY3zJ6dF0g");
    let on_branch = token("T6yU1iO9pA3sD5fG7hJ2kL4zX8cV0b");
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("config.py"), format!("TOKEN = '{leaked}'\n")).unwrap();
    std::fs::write(repo.join("copy.env"), format!("TOKEN = '{leaked}'\n")).unwrap();
    git(repo, &["add", "."], "2025-01-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "add config"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("config.py"), "TOKEN = os.environ['TOKEN']\n").unwrap();
    std::fs::remove_file(repo.join("copy.env")).unwrap();
    git(repo, &["commit", "-q", "-am", "remove token"], "2025-02-01T10:00:00Z");
    git(repo, &["checkout", "-q", "-b", "feature"], "2025-02-02T10:00:00Z");
    std::fs::write(repo.join("deploy.sh"), format!("export GH={on_branch}\n")).unwrap();
    git(repo, &["add", "."], "2025-03-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "deploy script"], "2025-03-01T10:00:00Z");
    git(repo, &["checkout", "-q", "main"], "2025-03-02T10:00:00Z");

    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([8; 32]);
    let report = scan_paths(&matcher, &key, &[repo.to_path_buf()], &ScanOptions::default());
    assert_eq!(report.stats.commits, 3, "{:?}", report.stats);
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
    let removed = report
        .findings
        .iter()
        .find(|finding| finding.locations.len() == 2)
        .expect("the removed secret");
    let paths: Vec<&str> = removed
        .locations
        .iter()
        .map(|location| location.path.as_str())
        .collect();
    assert_eq!(paths, vec!["config.py", "copy.env"]);
    let origin = removed.locations[0].git.as_ref().expect("a history location");
    assert_eq!(origin.author, "Dana Okafor <dana@example.com>");
    assert_eq!(origin.date, "2025-01-01T10:00:00Z");
    assert_eq!(origin.commit.len(), 40);
    assert_eq!((removed.locations[0].line, removed.locations[0].column), (1, 10));
    let branch = report
        .findings
        .iter()
        .find(|finding| finding.locations[0].path == "deploy.sh")
        .expect("branch secret");
    assert_eq!(branch.locations[0].git.as_ref().unwrap().date, "2025-03-01T10:00:00Z");

    // Without history only the working tree counts, and it is clean.
    let options = ScanOptions {
        history: false,
        ..Default::default()
    };
    assert!(
        scan_paths(&matcher, &key, &[repo.to_path_buf()], &options)
            .findings
            .is_empty()
    );
}

#[test]
fn a_blob_in_many_commits_is_scanned_once() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("big.txt"), "x\n".repeat(1000)).unwrap();
    for index in 0..20 {
        std::fs::write(repo.join("counter.txt"), format!("{index}\n")).unwrap();
        git(repo, &["add", "."], "2025-01-01T10:00:00Z");
        git(
            repo,
            &["commit", "-q", "-m", "tick"],
            &format!("2025-01-{:02}T10:00:00Z", index + 1),
        );
    }
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let report = scan_paths(
        &matcher,
        &FingerprintKey::from_bytes([8; 32]),
        &[repo.to_path_buf()],
        &ScanOptions::default(),
    );
    assert_eq!(report.stats.commits, 20);
    // 20 versions of counter.txt and one big.txt.
    assert_eq!(report.stats.blobs, 21);
}

#[test]
fn a_packed_history_scans_the_same_within_any_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    varied_history(repo);
    git(repo, &["gc", "-q", "--prune=now"], "2025-01-05T10:00:00Z");
    let objects = git_output(repo, &["count-objects", "-v"]);
    let in_pack: u64 = objects
        .lines()
        .find_map(|line| line.strip_prefix("in-pack: "))
        .unwrap()
        .parse()
        .unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let scan = |history_memory: u64| {
        let options = ScanOptions {
            history_memory,
            ..ScanOptions::default()
        };
        let report = scan_paths(
            &matcher,
            &FingerprintKey::from_bytes([8; 32]),
            &[repo.to_path_buf()],
            &options,
        );
        // The findings and counts, but for the count of packs read object by object.
        let mut found = outcome(&report);
        found["stats"].as_object_mut().unwrap().remove("packs_over_budget");
        (report.stats.packs_over_budget, found)
    };
    let (over, ample) = scan(ScanOptions::default().history_memory);
    assert_eq!(over, 0);
    // No memory: the pack is read object by object. Just enough for the pack's delta tree
    // (160 bytes an object, three quarters of the budget): it is traversed, and what is
    // left for kept trees and commits (a third of the tree's 160 bytes an object, plus 400:
    // about 1.6 KB here) holds some of them; the walk reads the others again.
    for (budget, over_budget) in [(0, 1), (in_pack * 160 * 4 / 3 + 400, 0)] {
        let (over, found) = scan(budget);
        assert_eq!(over, over_budget, "budget {budget}");
        assert_eq!(found, ample, "budget {budget}");
    }
    assert_eq!(scan(in_pack * 160 * 4 / 3 - 200).0, 1, "just too small for the pack");
}

fn scan_repo(repo: &Path) -> steward_scan::ScanReport {
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    scan_paths(
        &matcher,
        &FingerprintKey::from_bytes([8; 32]),
        &[repo.to_path_buf()],
        &ScanOptions::default(),
    )
}

/// Findings and counts of a report, without the timing.
fn outcome(report: &steward_scan::ScanReport) -> serde_json::Value {
    let mut stats = serde_json::to_value(&report.stats).unwrap();
    stats.as_object_mut().unwrap().remove("seconds");
    serde_json::json!({ "findings": report.findings, "stats": stats })
}

/// The pack files of the repository.
fn packs(repo: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(repo.join(".git/objects/pack"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "pack"))
        .collect()
}

fn loose_objects(repo: &Path) -> usize {
    std::fs::read_dir(repo.join(".git/objects"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().len() == 2)
        .map(|entry| std::fs::read_dir(entry.path()).unwrap().count())
        .sum()
}

/// A history whose blobs include every kind a scan treats differently: plain text, the
/// same text at two paths, a Slack day file and a notebook (recognised by path), a gzip
/// (expanded, its content named after the path) and a binary file.
fn varied_history(repo: &Path) -> Vec<String> {
    let secrets: Vec<String> = [
        "P1a2C3k4E5d6H7i8S9t0O1r2Y3a4B5",
        "S6l7A8c9K0d1A2y3F4i5L6e7I8n9G0",
        "N1o2T3e4B5o6O7k8C9e0L1l2S3x4Y5",
        "G6z7I8p9P0e1D2c3O4n5T6e7N8t9Q0",
        "J1s2O3n4C5o6N7f8I9g0X1y2Z3a4B5",
    ]
    .iter()
    .map(|body| token(body))
    .collect();
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("app.env"), format!("GH_TOKEN={}\n", secrets[0])).unwrap();
    std::fs::write(repo.join("same.env"), format!("GH_TOKEN={}\n", secrets[0])).unwrap();
    std::fs::create_dir_all(repo.join("export/deploys")).unwrap();
    let day =
        serde_json::json!([{"type": "message", "text": format!("token {}", secrets[1]), "ts": "1714550100.000200"}]);
    std::fs::write(repo.join("export/deploys/2024-05-01.json"), day.to_string()).unwrap();
    let notebook = serde_json::json!({"cells": [{"cell_type": "code", "source": [format!("t = '{}'\n", secrets[2])]}]});
    std::fs::write(repo.join("analysis.ipynb"), notebook.to_string()).unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, format!("GH_TOKEN={}\n", secrets[3]).as_bytes()).unwrap();
    std::fs::write(repo.join("dump.env.gz"), gzip.finish().unwrap()).unwrap();
    std::fs::write(repo.join("logo.bin"), [0u8, 1, 2, 3, 0, 255]).unwrap();
    // Plain JSON (not a notebook or Slack day file): scanned during the pass over packs.
    let settings = format!("{{\n  \"name\": \"app\",\n  \"token\": \"{}\"\n}}\n", secrets[4]);
    std::fs::write(repo.join("settings.json"), settings).unwrap();
    git(repo, &["add", "."], "2025-01-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "everything"], "2025-01-01T10:00:00Z");
    // Later versions that delta against the first ones in a pack.
    for (index, day) in ["02", "03", "04"].iter().enumerate() {
        let date = format!("2025-01-{day}T10:00:00Z");
        let config = format!("GH_TOKEN=from-vault\n{}", "setting = 1\n".repeat(50 + index));
        std::fs::write(repo.join("app.env"), config).unwrap();
        std::fs::write(repo.join("same.env"), format!("revision {index}\n")).unwrap();
        git(repo, &["commit", "-q", "-am", "rotate"], &date);
    }
    secrets
}

#[test]
fn a_packed_history_scans_like_a_loose_one() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let secrets = varied_history(repo);
    assert!(loose_objects(repo) > 0);
    let loose = scan_repo(repo);
    git(repo, &["gc", "-q", "--prune=now"], "2025-01-05T10:00:00Z");
    assert_eq!(loose_objects(repo), 0, "everything is packed");
    let packed = scan_repo(repo);
    assert_eq!(outcome(&packed), outcome(&loose));

    // What the packed scan found, checked on its own.
    assert!(packed.stats.warnings.is_empty(), "{:?}", packed.stats.warnings);
    assert_eq!(packed.stats.commits, 4);
    assert_eq!(
        packed.stats.skipped_binary, 2,
        "logo.bin in the working tree and in history"
    );
    let fingerprints: Vec<_> = secrets
        .iter()
        .map(|secret| steward_core::Fingerprint::compute(&FingerprintKey::from_bytes([8; 32]), secret.as_bytes()))
        .collect();
    let finding = |secret: usize| {
        packed
            .findings
            .iter()
            .find(|finding| finding.fingerprint == fingerprints[secret])
            .unwrap_or_else(|| panic!("secret {secret} found: {:#?}", packed.findings))
    };
    let paths = |secret: usize| -> Vec<String> {
        let mut paths: Vec<String> = finding(secret)
            .locations
            .iter()
            .filter(|location| location.git.is_some())
            .map(|location| location.path.clone())
            .collect();
        paths.sort();
        paths
    };
    assert_eq!(paths(0), ["app.env", "same.env"]);
    assert_eq!(finding(1).locations[0].channel.as_deref(), Some("deploys"));
    assert_eq!(finding(2).locations[0].cell, Some(0));
    assert_eq!(paths(3), ["dump.env.gz!dump.env"]);
    assert_eq!(paths(4), ["settings.json"]);
    let json_location = finding(4)
        .locations
        .iter()
        .find(|location| location.git.is_some())
        .expect("a history location");
    assert_eq!((json_location.line, json_location.column), (3, 13));
    for secret in 0..5 {
        let origin = finding(secret)
            .locations
            .iter()
            .find_map(|location| location.git.clone())
            .expect("a commit");
        assert_eq!(origin.date, "2025-01-01T10:00:00Z");
    }

    // A commit on top of the pack: its objects are loose, the rest packed.
    let late = token("L1a2T3e4C5o6M7m8I9t0O1n2T3o4P5");
    std::fs::write(repo.join("late.env"), format!("GH_TOKEN={late}\n")).unwrap();
    git(repo, &["add", "late.env"], "2025-02-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "late"], "2025-02-01T10:00:00Z");
    assert!(loose_objects(repo) > 0);
    let mixed = scan_repo(repo);
    assert_eq!(mixed.stats.commits, 5);
    assert_eq!(mixed.findings.len(), packed.findings.len() + 1);
    let late_finding = mixed
        .findings
        .iter()
        .find(|finding| finding.locations.iter().any(|location| location.path == "late.env"))
        .expect("the late secret");
    let late_origin = late_finding.locations.iter().find_map(|location| location.git.as_ref());
    assert_eq!(late_origin.expect("a commit").date, "2025-02-01T10:00:00Z");
}

#[test]
fn packed_objects_no_ref_reaches_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(repo, &["add", "."], "2025-01-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "start"], "2025-01-01T10:00:00Z");
    git(repo, &["checkout", "-q", "-b", "scratch"], "2025-01-02T10:00:00Z");
    let dropped = token("D1r2O3p4P5e6D7b8R9a0N1c2H3x4Y5");
    std::fs::write(repo.join("tmp.env"), format!("GH_TOKEN={dropped}\n")).unwrap();
    git(repo, &["add", "."], "2025-01-02T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "scratch"], "2025-01-02T10:00:00Z");
    git(repo, &["checkout", "-q", "main"], "2025-01-03T10:00:00Z");
    git(repo, &["branch", "-q", "-D", "scratch"], "2025-01-03T10:00:00Z");
    // HEAD's reflog still holds the dropped commit, so the repack keeps it in the pack.
    git(repo, &["repack", "-q", "-a", "-d"], "2025-01-04T10:00:00Z");
    git(repo, &["prune-packed"], "2025-01-04T10:00:00Z");
    assert_eq!(loose_objects(repo), 0);
    let report = scan_repo(repo);
    assert_eq!(report.stats.commits, 1);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn damaged_objects_are_warnings_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let kept = token("K1e2P3t4S5e6C7r8E9t0A1b2C3d4E5");
    let lost = token("L6o7S8t9B0l1O2b3S4e5C6r7E8t9X0");
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("kept.env"), format!("GH_TOKEN={kept}\n")).unwrap();
    std::fs::write(repo.join("lost.env"), format!("GH_TOKEN={lost}\n")).unwrap();
    git(repo, &["add", "."], "2025-01-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "two files"], "2025-01-01T10:00:00Z");
    // Overwrite the loose object of lost.env with bytes that do not inflate.
    let id = git_output(repo, &["rev-parse", "HEAD:lost.env"]);
    let object = repo.join(".git/objects").join(&id[..2]).join(&id[2..]);
    overwrite(&object, b"not a zlib stream");
    std::fs::remove_file(repo.join("lost.env")).unwrap();

    let report = scan_repo(repo);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert!(
        report.findings[0]
            .locations
            .iter()
            .any(|location| location.path == "kept.env" && location.git.is_some()),
        "{:#?}",
        report.findings
    );
    assert_eq!(report.stats.warnings.len(), 1, "{:?}", report.stats.warnings);
    assert!(report.stats.warnings[0].contains(&id), "{:?}", report.stats.warnings);

    // Two packs, the older one cut short: its objects are warnings, and the newer pack
    // (the second commit, its tree and late.env) is still read.
    std::fs::remove_file(&object).unwrap();
    std::fs::write(repo.join("lost.env"), format!("GH_TOKEN={lost}\n")).unwrap();
    git(repo, &["add", "."], "2025-01-02T10:00:00Z");
    git(repo, &["repack", "-q", "-a", "-d"], "2025-01-02T10:00:00Z");
    let older = packs(repo);
    let late = token("L1a2T3e4P5a6C7k8E9d0A1b2C3d4E5");
    std::fs::write(repo.join("late.env"), format!("GH_TOKEN={late}\n")).unwrap();
    git(repo, &["add", "."], "2025-01-02T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "late"], "2025-01-02T10:00:00Z");
    git(repo, &["repack", "-q", "-d"], "2025-01-03T10:00:00Z");
    assert_eq!(loose_objects(repo), 0);
    assert_eq!(packs(repo).len(), 2);
    let pack = &older[0];
    let bytes = std::fs::read(pack).unwrap();
    overwrite(pack, &bytes[..bytes.len() / 2]);
    let report = scan_repo(repo);
    assert!(!report.stats.warnings.is_empty(), "{:#?}", report.stats);
    let in_history: Vec<&str> = report
        .findings
        .iter()
        .flat_map(|finding| &finding.locations)
        .filter(|location| location.git.is_some())
        .map(|location| location.path.as_str())
        .collect();
    assert_eq!(in_history, ["late.env"], "{:#?}", report.findings);
}

/// Replaces the content of a file git made read-only.
fn overwrite(path: &Path, content: &[u8]) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(path, permissions).unwrap();
    std::fs::write(path, content).unwrap();
}

fn git_output(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn a_malformed_commit_is_a_warning_packed_or_loose() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(repo, &["add", "."], "2025-01-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "start"], "2025-01-01T10:00:00Z");
    // A commit without a tree, which git itself refuses to point a ref at: written
    // directly, as a damaged or hostile repository could have it.
    let body = repo.join("bogus");
    std::fs::write(
        &body,
        "author a <a@example.com> 1700000000 +0000\ncommitter a <a@example.com> 1700000000 +0000\n\nno tree\n",
    )
    .unwrap();
    let bogus = git_output(repo, &["hash-object", "-t", "commit", "--literally", "-w", "bogus"]);
    std::fs::write(repo.join(".git/refs/heads/broken"), format!("{bogus}\n")).unwrap();
    let expected = format!("warning: commit {bogus}: cannot be decoded");
    let loose = scan_repo(repo);
    assert_eq!(loose.stats.warnings, std::slice::from_ref(&expected));
    assert_eq!(loose.stats.commits, 1);

    // Every object into one pack (listed, so git does not parse the bogus commit).
    let objects = git_output(
        repo,
        &["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
    );
    let mut pack_objects = Command::new("git")
        .args(["pack-objects", "-q", ".git/objects/pack/pack"])
        .current_dir(repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut pack_objects.stdin.take().unwrap(),
        format!("{objects}\n").as_bytes(),
    )
    .unwrap();
    assert!(pack_objects.wait().unwrap().success());
    git(repo, &["prune-packed"], "2025-01-02T10:00:00Z");
    assert_eq!(loose_objects(repo), 0);
    let packed = scan_repo(repo);
    assert_eq!(packed.stats.warnings, [expected]);
    assert_eq!(packed.stats.commits, 1);
}

#[test]
fn history_blobs_over_the_size_limit_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let (small, big) = (
        token("S1m2A3l4L5b6L7o8B9x0Y1z2A3b4C5"),
        token("B1i2G3b4L5o6B7x8Y9z0A1b2C3d4E5"),
    );
    git(repo, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(repo.join("small.env"), format!("GH_TOKEN={small}\n")).unwrap();
    std::fs::write(
        repo.join("big.env"),
        format!("{}GH_TOKEN={big}\n", "# padding\n".repeat(200)),
    )
    .unwrap();
    git(repo, &["add", "."], "2025-01-01T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "both"], "2025-01-01T10:00:00Z");
    git(repo, &["rm", "-q", "big.env"], "2025-01-02T10:00:00Z");
    git(repo, &["commit", "-q", "-m", "drop big"], "2025-01-02T10:00:00Z");
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let options = ScanOptions {
        max_file_size: 1000,
        ..Default::default()
    };
    let check = |report: steward_scan::ScanReport| {
        assert_eq!(report.stats.skipped_large, 1, "{:?}", report.stats);
        assert_eq!(report.stats.warnings.len(), 1, "{:?}", report.stats.warnings);
        let warning = &report.stats.warnings[0];
        assert!(
            warning.starts_with("warning: big.env (history of ") && warning.ends_with("is over the 1000 byte limit"),
            "{warning}"
        );
        let paths: Vec<&str> = report
            .findings
            .iter()
            .flat_map(|finding| &finding.locations)
            .filter(|location| location.git.is_some())
            .map(|location| location.path.as_str())
            .collect();
        assert_eq!(paths, ["small.env"]);
    };
    let key = FingerprintKey::from_bytes([8; 32]);
    check(scan_paths(&matcher, &key, &[repo.to_path_buf()], &options));
    git(repo, &["gc", "-q", "--prune=now"], "2025-01-03T10:00:00Z");
    assert_eq!(loose_objects(repo), 0);
    check(scan_paths(&matcher, &key, &[repo.to_path_buf()], &options));
}

/// A clone's `.git/config` holds its remote URLs, where a token often sits
/// (`https://x-access-token:…@github.com/…`, as CI checkouts leave it): it is scanned as
/// a file of the working tree, in a clone and in a bare mirror met below a directory. The
/// rest of git's storage is not read as files (the history scan reads the objects).
#[test]
fn a_repository_config_is_scanned_and_the_rest_of_its_storage_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (in_remote, in_mirror, in_storage) = (
        token("r1E2m3O4t5E6u7R8l9T0o1K2e3N4x5"),
        token("m1I2r3R4o5R6r7E8m9O0t1E2t3O4k5"),
        token("s1T2o3R4a5G6e7N8o9T0r1E2a3D4x5"),
    );
    let clone = dir.path().join("clone");
    std::fs::create_dir_all(&clone).unwrap();
    git(&clone, &["init", "-q", "-b", "main"], "2025-01-01T10:00:00Z");
    std::fs::write(clone.join("README"), "hello\n").unwrap();
    git(&clone, &["add", "."], "2025-01-01T10:00:00Z");
    git(&clone, &["commit", "-q", "-m", "init"], "2025-01-01T10:00:00Z");
    let remote = format!("https://x-access-token:{in_remote}@github.com/acme/app.git");
    git(&clone, &["remote", "add", "origin", &remote], "2025-01-01T10:00:00Z");
    // Not config: a file of git's own storage is never read as a working-tree file.
    std::fs::write(clone.join(".git/description"), format!("{in_storage}\n")).unwrap();
    let mirror = dir.path().join("mirror.git");
    git(
        dir.path(),
        &["clone", "-q", "--mirror", clone.to_str().unwrap(), "mirror.git"],
        "2025-01-01T10:00:00Z",
    );
    let mirror_remote = format!("https://ci:{in_mirror}@github.com/acme/app.git");
    git(
        &mirror,
        &["remote", "set-url", "origin", &mirror_remote],
        "2025-01-01T10:00:00Z",
    );

    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([8; 32]);
    for options in [
        ScanOptions::default(),
        ScanOptions {
            history: false,
            ..Default::default()
        },
    ] {
        let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &options);
        let mut places: Vec<(String, usize)> = report
            .findings
            .iter()
            .flat_map(|finding| &finding.locations)
            .map(|location| {
                let relative = Path::new(&location.path).strip_prefix(dir.path()).unwrap();
                (relative.display().to_string(), location.line)
            })
            .collect();
        places.sort();
        let line_of = |config: &Path, url: &str| {
            std::fs::read_to_string(config)
                .unwrap()
                .lines()
                .position(|line| line.contains(url))
                .unwrap()
                + 1
        };
        assert_eq!(
            places,
            vec![
                (
                    "clone/.git/config".to_string(),
                    line_of(&clone.join(".git/config"), &remote)
                ),
                (
                    "mirror.git/config".to_string(),
                    line_of(&mirror.join("config"), &mirror_remote)
                ),
            ],
            "history: {}",
            options.history
        );
        assert!(report.stats.warnings.is_empty(), "{:?}", report.stats.warnings);
    }
}
