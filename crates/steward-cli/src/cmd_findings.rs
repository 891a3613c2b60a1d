//! `steward findings`: posture findings with severity, evidence (where), remediation and
//! their OWASP NHI Top 10 / NIST CSF 2.0 mapping. Source so far: the copies of secrets that
//! `steward scan --record` stored (leaked, revoked-but-referenced, unmanaged-secret).

use crate::cli::{FindingSource, FindingsArgs, Globals, OutputFormat, SeverityArg};
use crate::output::print_listing;
use crate::settings::Settings;
use serde::Serialize;
use std::process::ExitCode;
use steward_core::finding::{Holder, judge_copies};
use steward_core::time::format_instant;
use steward_core::{Location, Severity};
use steward_store::ScanFinding;

/// A finding as printed.
#[derive(Serialize)]
struct FindingRecord {
    rule: &'static str,
    severity: Severity,
    /// `scan` (recorded by `scan --record`) or `locate` (by `credential locate` only).
    source: &'static str,
    /// `system/name` of the identity concerned, when the inventory knows it.
    identity: Option<String>,
    identity_id: Option<i64>,
    credential_id: Option<i64>,
    /// The credential's public id (`AKIA…`, key id), when it has one.
    public_id: Option<String>,
    credential_status: Option<String>,
    /// The scanner rule that found the secret (none for copies recorded by hand).
    scanner_rule: Option<String>,
    /// Redacted preview (from the scan, else from the credential).
    preview: Option<String>,
    fingerprint: String,
    first_seen: String,
    last_seen: String,
    /// Live copies.
    copies: usize,
    locations: Vec<LocationRecord>,
    remediation: &'static str,
    owasp_nhi: &'static str,
    nist_csf: &'static [&'static str],
}

#[derive(Serialize)]
struct LocationRecord {
    kind: String,
    locator: String,
    first_seen: String,
    last_seen: String,
}

impl From<&Location> for LocationRecord {
    fn from(location: &Location) -> Self {
        LocationRecord {
            kind: location.kind.to_string(),
            locator: location.locator.clone(),
            first_seen: format_instant(location.first_seen),
            last_seen: format_instant(location.last_seen),
        }
    }
}

/// The columns of the table: a finding to a row, its first copy in `where`.
const HEADERS: &[&str] = &["severity", "rule", "identity", "secret", "copies", "where"];

/// The columns of `-o csv`: one row per live copy, with the JSON's fields (the finding's
/// repeated on each of its rows; `nist_csf` as `;`-separated ids).
const CSV_COLUMNS: &[&str] = &[
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
];

/// One copy of a finding, a row of [`CSV_COLUMNS`].
#[derive(Serialize)]
struct CopyRow<'a> {
    finding: &'a FindingRecord,
    location: Option<&'a LocationRecord>,
}

fn csv_row(copy: &CopyRow<'_>) -> Vec<String> {
    use crate::output::cell;
    let (finding, location) = (copy.finding, copy.location);
    vec![
        finding.severity.to_string(),
        finding.rule.to_string(),
        finding.source.to_string(),
        cell(&finding.identity),
        cell(&finding.identity_id),
        cell(&finding.credential_id),
        cell(&finding.public_id),
        cell(&finding.credential_status),
        cell(&finding.scanner_rule),
        cell(&finding.preview),
        finding.fingerprint.clone(),
        finding.first_seen.clone(),
        finding.last_seen.clone(),
        finding.copies.to_string(),
        cell(&location.map(|location| &location.kind)),
        cell(&location.map(|location| &location.locator)),
        cell(&location.map(|location| &location.first_seen)),
        cell(&location.map(|location| &location.last_seen)),
        finding.remediation.to_string(),
        finding.owasp_nhi.to_string(),
        finding.nist_csf.join(";"),
    ]
}

fn row(finding: &FindingRecord) -> Vec<String> {
    let place = match finding.locations.as_slice() {
        [] => String::new(),
        [only] => only.locator.clone(),
        [first, rest @ ..] => format!("{} (+{} more)", first.locator, rest.len()),
    };
    vec![
        finding.severity.to_string(),
        finding.rule.to_string(),
        finding.identity.clone().unwrap_or_else(|| "-".into()),
        [finding.scanner_rule.as_deref(), finding.preview.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        finding.copies.to_string(),
        place,
    ]
}

/// The findings the recorded copies of one secret raise: one per holding credential, or
/// one `unmanaged-secret` when no credential holds it; none once no copy is live.
fn judge(finding: &ScanFinding) -> Vec<FindingRecord> {
    let secret = finding.secret.as_ref();
    let first_seen = finding.copies.iter().map(|copy| copy.first_seen).min();
    let last_seen = finding.copies.iter().map(|copy| copy.last_seen).max();
    let record = |holder: Option<(&steward_core::Identity, &steward_core::Credential)>| {
        let judged = judge_copies(
            holder.map(|(identity, credential)| Holder {
                tier: identity.tier,
                status: credential.status,
                archived: identity.state == steward_core::LifecycleState::Archived,
            }),
            finding.copies.len(),
        )?;
        let (rule, severity, remediation) = judged;
        Some(FindingRecord {
            rule: rule.as_str(),
            severity,
            source: if secret.is_some() { "scan" } else { "locate" },
            identity: holder.map(|(identity, _)| format!("{}/{}", identity.system, identity.name)),
            identity_id: holder.map(|(identity, _)| identity.id.0),
            credential_id: holder.map(|(_, credential)| credential.id.0),
            public_id: holder.and_then(|(_, credential)| credential.public_id.clone()),
            credential_status: holder.map(|(_, credential)| credential.status.to_string()),
            scanner_rule: secret.map(|secret| secret.rule_id.clone()),
            preview: secret
                .map(|secret| secret.preview.clone())
                .or_else(|| holder.and_then(|(_, credential)| credential.preview.clone())),
            fingerprint: finding.fingerprint.as_str().to_string(),
            first_seen: first_seen.map(format_instant).unwrap_or_default(),
            last_seen: last_seen.map(format_instant).unwrap_or_default(),
            copies: finding.copies.len(),
            locations: finding.copies.iter().map(LocationRecord::from).collect(),
            remediation,
            owasp_nhi: rule.owasp_nhi(),
            nist_csf: rule.nist_csf(),
        })
    };
    if finding.holders.is_empty() {
        record(None).into_iter().collect()
    } else {
        finding
            .holders
            .iter()
            .filter_map(|(identity, credential)| record(Some((identity, credential))))
            .collect()
    }
}

pub fn run(globals: &Globals, args: &FindingsArgs) -> anyhow::Result<ExitCode> {
    let outcome = list(globals, args);
    if args.fail_on_findings {
        // As a CI gate: 1 means findings, so an error must not look like one (2, as scan).
        return outcome.map_err(|error| crate::usage(crate::describe_error(&error)));
    }
    outcome
}

fn list(globals: &Globals, args: &FindingsArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    let mut store = settings.open_store_read_only()?;
    let mut findings = Vec::new();
    match args.source {
        None | Some(FindingSource::Scan) => {
            for finding in store.scan_findings()? {
                findings.extend(judge(&finding));
            }
        }
    }
    if let Some(minimum) = args.min_severity {
        let minimum = match minimum {
            SeverityArg::Critical => Severity::Critical,
            SeverityArg::High => Severity::High,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::Low => Severity::Low,
        };
        findings.retain(|finding| finding.severity <= minimum);
    }
    // Most severe first; stable within a severity (rule, then identity, then first seen).
    findings.sort_by(|a, b| {
        (a.severity, a.rule, &a.identity, &a.first_seen).cmp(&(b.severity, b.rule, &b.identity, &b.first_seen))
    });
    if settings.output == OutputFormat::Csv {
        let copies: Vec<CopyRow<'_>> = findings
            .iter()
            .flat_map(|finding| {
                let locations: Vec<Option<&LocationRecord>> = if finding.locations.is_empty() {
                    vec![None]
                } else {
                    finding.locations.iter().map(Some).collect()
                };
                locations.into_iter().map(move |location| CopyRow { finding, location })
            })
            .collect();
        print_listing(settings.output, &copies, CSV_COLUMNS, csv_row)?;
    } else {
        print_listing(settings.output, &findings, HEADERS, row)?;
    }
    if args.fail_on_findings && !findings.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
