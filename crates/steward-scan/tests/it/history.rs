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
