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

/// Each finding as (its one location's line, channel, field), checking it has one.
fn only_places(report: &ScanReport) -> Vec<(usize, Option<String>, Option<String>)> {
    let mut places: Vec<_> = report
        .findings
        .iter()
        .map(|finding| {
            assert_eq!(finding.locations.len(), 1, "{finding:#?}");
            let location = &finding.locations[0];
            (location.line, location.channel.clone(), location.field.clone())
        })
        .collect();
    places.sort();
    places
}

#[test]
fn secrets_outside_the_fields_an_export_reads_are_found_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    // A Slack day file: a token in a message's text (read as the export), one in a bot
    // attachment's field (no export reader knows it) and a database URI that the export
    // writes JSON-escaped (`\/`): each is one finding with one location.
    let (in_text, in_attachment) = (
        token("o1U2t3S4i5D6e7T8e9X0t1F2i3E4l5"),
        token("a1T2t3A4c5H6m7E8n9T0f1I2e3L4d5"),
    );
    let uri = "postgres://deploy:Pz7kQw9xLr2mNv4T@db.internal:5432/app";
    let day = [
        "[".to_string(),
        serde_json::json!({"type": "message", "ts": "1709460000.000100", "text": format!("use {in_text}")}).to_string()
            + ",",
        serde_json::json!({"type": "message", "ts": "1709460100.000200", "text": "deployed",
            "attachments": [{"fields": [{"title": "env", "value": format!("GH_TOKEN={in_attachment}")}]}]})
        .to_string()
            + ",",
        format!(
            r#"{{"type": "message", "ts": "1709460200.000300", "text": "{}"}}"#,
            uri.replace('/', "\\/")
        ),
        "]".to_string(),
    ]
    .join("\n");
    let slack = dir.path().join("slack/deploys");
    std::fs::create_dir_all(&slack).unwrap();
    std::fs::write(slack.join("2024-03-03.json"), day).unwrap();
    assert_eq!(
        only_places(&scan(&dir.path().join("slack"))),
        vec![
            (1, Some("deploys".into()), Some("text".into())),
            (1, Some("deploys".into()), Some("text".into())),
            (3, None, None),
        ]
    );

    // A dated JSON log is not a Slack day file, whatever its path says.
    let log = dir.path().join("logs/app");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(
        log.join("2024-01-01.json"),
        serde_json::json!([{"level": "info", "env": {"GITHUB_TOKEN": in_attachment}}]).to_string(),
    )
    .unwrap();
    assert_eq!(only_places(&scan(&dir.path().join("logs"))), vec![(1, None, None)]);

    // Jira: a custom field is read as text, the summary as the issue's.
    let document = serde_json::json!({"issues": [{"key": "OPS-7", "fields": {
        "summary": format!("rotate {in_text}"),
        "customfield_10050": format!("old token {in_attachment}")
    }}]});
    let jira = dir.path().join("jira");
    std::fs::create_dir_all(&jira).unwrap();
    std::fs::write(jira.join("export.log"), document.to_string()).unwrap();
    let report = scan(&jira);
    assert_eq!(
        only_places(&report),
        vec![(1, None, None), (1, None, Some("summary".into()))]
    );
    assert!(
        report
            .findings
            .iter()
            .any(|finding| finding.locations[0].issue_key.as_deref() == Some("OPS-7"))
    );
}

#[test]
fn a_secret_an_export_found_is_not_found_again_in_its_json_escaped_form() {
    // In the document a message's line break is `\n` and `&` may be `\u0026`: an
    // open-ended match there runs on, or reads the escape, but it is the same secret.
    let dir = tempfile::tempdir().unwrap();
    let slack = dir.path().join("slack/general");
    std::fs::create_dir_all(&slack).unwrap();
    std::fs::write(
        slack.join("2024-05-01.json"),
        r#"[{"type": "message", "ts": "1714550400.000100", "text": "new creds: db_password=Zq8rT2vLmN4pXw7K\nplease rotate soon"}]"#,
    )
    .unwrap();
    let jira = dir.path().join("jira");
    std::fs::create_dir_all(&jira).unwrap();
    std::fs::write(
        jira.join("export.json"),
        r#"{"issues": [{"key": "OPS-1", "fields": {"summary": "db", "description": "use postgres://app:p\u0026ssw0rd9x@db.example.com/app"}}]}"#,
    )
    .unwrap();
    for (folder, channel, issue) in [("slack", Some("general"), None), ("jira", None, Some("OPS-1"))] {
        let report = scan(&dir.path().join(folder));
        assert_eq!(report.findings.len(), 1, "{folder}: {:#?}", report.findings);
        let locations = &report.findings[0].locations;
        assert_eq!(locations.len(), 1, "{folder}: {locations:#?}");
        assert_eq!(locations[0].channel.as_deref(), channel);
        assert_eq!(locations[0].issue_key.as_deref(), issue);
    }
}

#[test]
fn jira_comment_ids_may_be_numbers_and_an_issue_without_a_key_costs_only_its_own_place() {
    let dir = tempfile::tempdir().unwrap();
    let (in_comment, in_summary, in_keyless) = (
        token("n1U2m3E4r5I6c7C8o9M0m1E2n3T4i5"),
        token("k1E2y3E4d5I6s7S8u9E0s1U2m3M4a5"),
        token("n1O2k3E4y5A6t7A8l9L0s1U2m3M4a5"),
    );
    // Some exporters write a comment's id as a number; an issue may come without its key
    // (a partial export). Before, the number was dropped, and one keyless issue made the
    // whole document lose every issue's place.
    let document = serde_json::json!({"issues": [
        {"key": "OPS-2", "fields": {"summary": "s", "comment": {"comments": [
            {"id": 20003, "body": format!("tok {in_comment}")}
        ]}}},
        {"key": "OPS-3", "fields": {"summary": format!("tok {in_summary}")}},
        {"id": "9", "fields": {"summary": format!("no key {in_keyless}")}}
    ]});
    std::fs::write(dir.path().join("issues.json"), document.to_string()).unwrap();
    let report = scan(dir.path());
    let mut places: Vec<(Option<String>, Option<String>, Option<String>)> = report
        .findings
        .iter()
        .map(|finding| {
            assert_eq!(finding.locations.len(), 1, "{finding:#?}");
            let location = &finding.locations[0];
            (
                location.issue_key.clone(),
                location.comment_id.clone(),
                location.field.clone(),
            )
        })
        .collect();
    places.sort();
    assert_eq!(
        places,
        vec![
            // The keyless issue's secret: found by the whole-file pass, at its line.
            (None, None, None),
            (Some("OPS-2".into()), Some("20003".into()), Some("comment".into())),
            (Some("OPS-3".into()), None, Some("summary".into())),
        ]
    );
}

/// JSON may write `/` as `\/`, and Slack exports and PHP's `json_encode` always do: a
/// URL-shaped secret in a field no export reader knows (a bot attachment's field) or in any
/// JSON file is found at its line and column in the file, and a secret holding a `/` is
/// the same secret (fingerprint) as where it is written plainly. A secret the export pass
/// finds is still reported once.
#[test]
fn secrets_in_json_that_escapes_slashes_are_found_where_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = "https://hooks.slack.com/services/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";
    let escaped = |text: &str| text.replace('/', "\\/");
    let in_text = "postgres://deploy:Pz7kQw9xLr2mNv4T@db.internal:5432/app";
    let slack = dir.path().join("exp/ops");
    std::fs::create_dir_all(&slack).unwrap();
    let day = format!(
        "[{{\"ts\":\"1700000000.000100\",\"text\":\"alert\",\"attachments\":[{{\"title\":\"cfg\",\"fields\":[{{\"title\":\"hook\",\n  \"value\":\"{}\"}}]}}]}},\n {{\"ts\":\"1700000000.000200\",\"text\":\"db {}\"}}]\n",
        escaped(webhook),
        escaped(in_text)
    );
    std::fs::write(slack.join("2024-02-02.json"), &day).unwrap();
    // An AWS secret key holds slashes: escaped in one file, plain in another.
    let aws_secret = "Kx9/mPq2Rt7vWz4yBn6cDf8hJk1Lm3Np5Qr7St9V";
    let config = format!(
        "{{\"db\": \"{}\",\n \"aws_access_key_id\": \"AKIA4HV7QZ2WXKJ3LMNP\", \"aws_secret_access_key\": \"{}\"}}\n",
        escaped("postgres://app:RMf7NQ1V1OGcOxCHYgRD@db.internal:5432/app"),
        escaped(aws_secret)
    );
    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    std::fs::write(
        dir.path().join("plain.env"),
        format!("AWS_ACCESS_KEY_ID=AKIA4HV7QZ2WXKJ3LMNP\nAWS_SECRET_ACCESS_KEY={aws_secret}\n"),
    )
    .unwrap();
    let report = scan(dir.path());
    let place = |needle: &str, text: &str| -> (usize, usize) {
        let offset = text.find(needle).unwrap_or_else(|| panic!("{needle} in {text}"));
        let line_start = text[..offset].rfind('\n').map_or(0, |newline| newline + 1);
        (
            text[..offset].matches('\n').count() + 1,
            text[line_start..offset].chars().count() + 1,
        )
    };
    let located = |rule: &str| -> Vec<(String, usize, usize, Option<String>)> {
        let mut places: Vec<_> = report
            .findings
            .iter()
            .filter(|finding| finding.rule_id == rule)
            .flat_map(|finding| &finding.locations)
            .map(|location| {
                let name = std::path::Path::new(&location.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (name, location.line, location.column, location.channel.clone())
            })
            .collect();
        places.sort();
        places
    };
    let (line, column) = place(&escaped(webhook), &day);
    assert_eq!(
        located("slack-webhook-url"),
        vec![("2024-02-02.json".to_string(), line, column, None)],
        "{:#?}",
        report.findings
    );
    // In a message's text the export reader decodes it: once, with the message's place.
    let in_message: Vec<_> = report
        .findings
        .iter()
        .flat_map(|finding| &finding.locations)
        .filter(|location| location.channel.is_some())
        .collect();
    assert_eq!(in_message.len(), 1, "{in_message:#?}");
    assert_eq!(in_message[0].message_ts.as_deref(), Some("1700000000.000200"));
    let uri = report
        .findings
        .iter()
        .find(|finding| {
            finding
                .locations
                .iter()
                .any(|location| location.path.ends_with("config.json") && location.line == 1)
        })
        .unwrap_or_else(|| panic!("the database URI: {:#?}", report.findings));
    assert!(uri.rule_id.starts_with("postgres"), "{}", uri.rule_id);
    let (line, column) = place("RMf7NQ1V1OGcOxCHYgRD", &config);
    assert_eq!((uri.locations[0].line, uri.locations[0].column), (line, column));
    // The escaped AWS secret is the same secret as the plain one: one finding, both files,
    // the JSON copy at the backslash-escaped text's place.
    let aws = report
        .findings
        .iter()
        .find(|finding| {
            finding
                .locations
                .iter()
                .any(|location| location.path.ends_with("plain.env") && location.line == 2)
        })
        .unwrap_or_else(|| panic!("the AWS secret: {:#?}", report.findings));
    let json_copies: Vec<(usize, usize)> = aws
        .locations
        .iter()
        .filter(|location| location.path.ends_with("config.json"))
        .map(|location| (location.line, location.column))
        .collect();
    assert_eq!(json_copies, vec![place(&escaped(aws_secret), &config)], "{aws:#?}");
}
