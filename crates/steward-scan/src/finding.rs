//! Findings: one per distinct secret (keyed fingerprint), with every place it was seen.

use serde::Serialize;
use std::collections::HashMap;
use steward_core::Fingerprint;

/// Where a copy of a secret was seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FindingLocation {
    /// File path as given or walked; inside a repository's history, the path in the tree;
    /// inside an archive, `archive!entry`.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (Unicode code points).
    pub column: usize,
    /// For copies in git history: where the blob first appeared at this path.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitOrigin>,
    /// Slack channel, for copies in a Slack export (line and column are within the message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Slack message timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_ts: Option<String>,
    /// Jira issue key, for copies in a Jira export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_key: Option<String>,
    /// Jira comment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<String>,
    /// Jupyter notebook cell index, from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<usize>,
    /// Field of the message, issue or cell (`text`, `files[0].preview`, `description`, `comment`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a copy in an export (whose `line` and `column` count within the message): its
    /// line in the file, where the whole-document pass found it; `None` when that pass did
    /// not (a secret split across an export's text nodes) and for every other copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_line: Option<usize>,
    /// Its column in the file, in characters, with `file_line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_column: Option<usize>,
}

/// The commit that introduced a blob at a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GitOrigin {
    /// Repository path as given, or as met below a directory given.
    pub repository: String,
    /// Commit id (hex).
    pub commit: String,
    /// Commit author, `Name <email>`.
    pub author: String,
    /// Commit author date, RFC 3339.
    pub date: String,
}

/// A distinct secret and its copies.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Rule that recognised it (the most specific one when several did).
    pub rule_id: String,
    /// Rule name.
    pub rule_name: String,
    /// Provider.
    pub provider: String,
    /// HMAC-SHA256 of the secret under the installation key.
    pub fingerprint: Fingerprint,
    /// Redacted preview.
    pub preview: String,
    /// The secret itself, only when asked for (`--show-secrets`, local output only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Every copy, sorted.
    pub locations: Vec<FindingLocation>,
}

/// Counters of a scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanStats {
    /// Files scanned.
    pub files: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Commits walked in git histories.
    pub commits: u64,
    /// Distinct git blobs scanned (also counted in `files`).
    pub blobs: u64,
    /// Archives expanded (their entries count as files).
    pub archives: u64,
    /// Files skipped as binary.
    pub skipped_binary: u64,
    /// Files skipped for size.
    pub skipped_large: u64,
    /// Symbolic links met below a path given, not followed.
    pub skipped_symlinks: u64,
    /// Problems met on the way (unreadable files…), one line each; the scan went on.
    pub warnings: Vec<String>,
    /// Git pack files too large for the history memory budget (`--history-memory`), read
    /// object by object instead (slower).
    pub packs_over_budget: u64,
    /// Git repositories whose history was scanned, as their paths were given or met.
    pub repositories: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl ScanStats {
    /// Adds the counters and warnings of one scanned piece of content and hands back its
    /// occurrences.
    pub fn absorb(&mut self, scanned: crate::source::ContentScan) -> Vec<Occurrence> {
        self.files += scanned.files;
        self.bytes += scanned.bytes;
        self.skipped_binary += scanned.skipped;
        self.archives += scanned.archives;
        self.warnings.extend(scanned.warnings);
        scanned.occurrences
    }
}

/// The outcome of a scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// Findings, by rule and first location.
    pub findings: Vec<Finding>,
    /// Counters.
    pub stats: ScanStats,
}

/// One secret occurrence before grouping.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// Rule index (lower is more specific).
    pub rule: usize,
    /// Fingerprint.
    pub fingerprint: Fingerprint,
    /// Preview.
    pub preview: String,
    /// Secret, when kept.
    pub secret: Option<String>,
    /// Place.
    pub location: FindingLocation,
}

/// Groups occurrences into findings, one per fingerprint.
pub fn group(occurrences: Vec<Occurrence>, rules: &crate::RuleSet) -> Vec<Finding> {
    let mut by_fingerprint: HashMap<Fingerprint, (usize, Finding)> = HashMap::new();
    for occurrence in occurrences {
        let rule = &rules.rules[occurrence.rule];
        let entry = by_fingerprint.entry(occurrence.fingerprint.clone()).or_insert_with(|| {
            (
                occurrence.rule,
                Finding {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    provider: rule.provider.clone(),
                    fingerprint: occurrence.fingerprint.clone(),
                    preview: occurrence.preview.clone(),
                    secret: occurrence.secret.clone(),
                    locations: Vec::new(),
                },
            )
        });
        if occurrence.rule < entry.0 {
            entry.0 = occurrence.rule;
            entry.1.rule_id = rule.id.clone();
            entry.1.rule_name = rule.name.clone();
            entry.1.provider = rule.provider.clone();
        }
        entry.1.locations.push(occurrence.location);
    }
    let mut findings: Vec<Finding> = by_fingerprint
        .into_values()
        .map(|(_, mut finding)| {
            finding.locations.sort();
            finding.locations.dedup();
            finding
        })
        .collect();
    findings.sort_by(|a, b| (&a.locations[0], &a.rule_id).cmp(&(&b.locations[0], &b.rule_id)));
    findings
}
