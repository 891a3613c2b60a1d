//! Slack and Jira exports: findings name the channel and message, or the issue and comment.

use std::io::Write;
use steward_core::FingerprintKey;
use steward_scan::checks::base62_checksum;
use steward_scan::{Matcher, RuleSet, ScanOptions, ScanReport, scan_paths};

fn token(body: &str) -> String {
    format!("ghp_{body}{}", base62_checksum(body.as_bytes()))
}

fn scan(path: &std::path::Path) -> ScanReport {
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    scan_paths(
        &matcher,
        &FingerprintKey::from_bytes([4; 32]),
        &[path.to_path_buf()],
        &ScanOptions::default(),
    )
}

fn slack_day(in_text: &str, in_edit: &str, in_preview: &str) -> String {
    serde_json::json!([
        {"type": "message", "user": "U1", "text": "deploying now", "ts": "1714550000.000100"},
        {"type": "message", "user": "U2", "text": format!("use this one:\n{in_text}"), "ts": "1714550100.000200",
         "edited": {"user": "U2", "ts": "1714550160.000000", "text": format!("old: {in_edit}")}},
        {"type": "message", "user": "U3", "text": "see file", "ts": "1714550200.000300",
         "files": [{"name": "env.txt", "preview": format!("GH_TOKEN={in_preview}")}]}
    ])
    .to_string()
}

#[test]
fn slack_exports_locate_secrets_by_channel_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("slack-export");
    std::fs::create_dir_all(export.join("deploys")).unwrap();
    std::fs::write(export.join("channels.json"), r#"[{"id": "C1", "name": "deploys"}]"#).unwrap();
    let (a, b, c) = (
        token("s1L2a3C4k5E6x7P8o9R0t1A2b3C4d5"),
        token("e6D7i8T9e0D1m2E3s4S5a6G7e8X9y0"),
        token("f1I2l3E4p5R6e7V8i9E0w1T2o3K4e5"),
    );
    std::fs::write(export.join("deploys/2024-05-01.json"), slack_day(&a, &b, &c)).unwrap();
    let report = scan(&export);
    assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
    let mut places: Vec<(String, String, String, usize)> = report
        .findings
        .iter()
        .map(|finding| {
            let location = &finding.locations[0];
            (
                location.channel.clone().unwrap(),
                location.message_ts.clone().unwrap(),
                location.field.clone().unwrap(),
                location.line,
            )
        })
        .collect();
    places.sort();
    assert_eq!(
        places,
        vec![
            ("deploys".into(), "1714550100.000200".into(), "edited.text".into(), 1),
            ("deploys".into(), "1714550100.000200".into(), "text".into(), 2),
            (
                "deploys".into(),
                "1714550200.000300".into(),
                "files[0].preview".into(),
                1
            ),
        ]
    );

    // The same export as a zip.
    let zipped = dir.path().join("slack-export.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zipped).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("deploys/2024-05-01.json", options).unwrap();
    writer.write_all(slack_day(&a, &b, &c).as_bytes()).unwrap();
    writer.finish().unwrap();
    let report = scan(&zipped);
    assert_eq!(report.findings.len(), 3, "{:#?} {:?}", report.findings, report.stats);
    assert!(
        report
            .findings
            .iter()
            .all(|finding| finding.locations[0].channel.as_deref() == Some("deploys"))
    );
}

#[test]
fn jira_exports_locate_secrets_by_issue_and_comment() {
    let dir = tempfile::tempdir().unwrap();
    let (in_description, in_comment) = (
        token("j1I2r3A4d5E6s7C8r9I0p1T2i3O4n5"),
        token("c1O2m3M4e5N6t7B8o9D0y1V2a3L4u5"),
    );
    let document = serde_json::json!({
        "startAt": 0, "total": 1,
        "issues": [{
            "key": "OPS-1432",
            "fields": {
                "summary": "CI broken",
                "description": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": format!("token is {in_description}")}]}
                ]},
                "comment": {"comments": [
                    {"id": "99812", "body": "try again"},
                    {"id": "99813", "body": format!("works with\n{in_comment}")}
                ]}
            }
        }]
    });
    std::fs::write(dir.path().join("jira-issues.json"), document.to_string()).unwrap();
    let report = scan(dir.path());
    assert_eq!(report.findings.len(), 2);
    let mut places: Vec<(Option<String>, Option<String>, String)> = report
        .findings
        .iter()
        .map(|finding| {
            let location = &finding.locations[0];
            (
                location.issue_key.clone(),
                location.comment_id.clone(),
                location.field.clone().unwrap(),
            )
        })
        .collect();
    places.sort();
    assert_eq!(
        places,
        vec![
            (Some("OPS-1432".into()), None, "description".into()),
            (Some("OPS-1432".into()), Some("99813".into()), "comment".into()),
        ]
    );
}

#[test]
fn notebooks_locate_secrets_by_cell() {
    let dir = tempfile::tempdir().unwrap();
    let (in_source, in_output) = (
        token("n1O2t3E4b5O6o7K8s9C0e1L2l3S4x5"),
        token("o1U2t3P4u5T6t7E8x9T0s1H2o3W4n5"),
    );
    let notebook = serde_json::json!({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Setup\n"]},
            {"cell_type": "code", "metadata": {}, "execution_count": 1,
             "source": ["import requests\n", format!("TOKEN = \"{in_source}\"\n")],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": [format!("using {in_output}\n")]}]}
        ]
    });
    std::fs::write(
        dir.path().join("analysis.ipynb"),
        serde_json::to_string_pretty(&notebook).unwrap(),
    )
    .unwrap();
    let report = scan(dir.path());
    let mut places: Vec<(Option<usize>, Option<String>, usize, usize)> = report
        .findings
        .iter()
        .map(|finding| {
            let location = &finding.locations[0];
            (location.cell, location.field.clone(), location.line, location.column)
        })
        .collect();
    places.sort();
    assert_eq!(
        places,
        vec![
            (Some(1), Some("outputs[0].text".into()), 1, 7),
            (Some(1), Some("source".into()), 2, 10)
        ]
    );
}
