//! Scanning files and directories.

use std::path::PathBuf;
use steward_core::FingerprintKey;
use steward_scan::checks::base62_checksum;
use steward_scan::{Matcher, RuleSet, ScanOptions, scan_paths};

fn github_token() -> String {
    let body = "k8Jd02LmQpZx7Vb3NcR5tYw1Ha9Ue4";
    format!("ghp_{body}{}", base62_checksum(body.as_bytes()))
}

#[test]
fn a_directory_scan_groups_copies_and_reports_positions() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token();
    std::fs::create_dir_all(dir.path().join("src/nested")).unwrap();
    std::fs::write(
        dir.path().join("src/config.py"),
        format!("import os\n\nTOKEN = \"{token}\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("src/nested/.env"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    std::fs::write(
        dir.path().join("allowed.txt"),
        format!("test fixture {token} # steward:allow\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("binary.bin"), [b'g', b'h', b'p', 0, 1, 2]).unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/config"), format!("{token}\n")).unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &ScanOptions::default());
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!(finding.rule_id, "github-classic-pat");
    assert_eq!(finding.preview, "ghp_…(40 chars)");
    assert!(finding.secret.is_none());
    let places: Vec<(String, usize, usize)> = finding
        .locations
        .iter()
        .map(|location| {
            let relative = PathBuf::from(&location.path)
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string();
            (relative, location.line, location.column)
        })
        .collect();
    assert_eq!(
        places,
        vec![
            ("src/config.py".to_string(), 3, 10),
            ("src/nested/.env".to_string(), 1, 14)
        ]
    );
    assert_eq!(report.stats.skipped_binary, 1);
    assert_eq!(report.stats.files, 3);
}

#[test]
fn missing_and_oversized_inputs_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.txt"), vec![b'a'; 2048]).unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let options = ScanOptions {
        max_file_size: 1024,
        ..Default::default()
    };
    let report = scan_paths(
        &matcher,
        &key,
        &[dir.path().to_path_buf(), dir.path().join("nope")],
        &options,
    );
    assert_eq!(report.stats.skipped_large, 1);
    assert!(
        report.stats.warnings.iter().any(|warning| warning.contains("nope")),
        "{:?}",
        report.stats.warnings
    );
}
