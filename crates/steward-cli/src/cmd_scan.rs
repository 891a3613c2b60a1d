//! `steward scan`: finds leaked secrets in files and directories and reports them by
//! fingerprint, never in plain text unless `--show-secrets` is given.

use crate::cli::{Globals, OutputFormat, ScanArgs};
use crate::output::{terminal_text, write_stdout};
use crate::settings::Settings;
use serde::Serialize;
use std::borrow::Cow;
use std::process::ExitCode;
use steward_core::{FingerprintKey, LocationKind};
use steward_scan::archive::ArchiveLimits;
use steward_scan::{Finding, Matcher, RuleSet, ScanOptions, scan_paths};
use steward_store::{ScanRecord, ScanScope};

/// Fingerprints of the findings in an earlier `scan -o json` output.
fn read_baseline(path: &std::path::Path) -> anyhow::Result<std::collections::HashSet<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{}:{}: not a `steward scan -o json` output: {error}",
            path.display(),
            error.line()
        )
    })?;
    findings
        .iter()
        .enumerate()
        .map(|(index, finding)| {
            finding["fingerprint"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("{}: finding {index} has no fingerprint", path.display()))
        })
        .collect()
}

/// Where a location is, for the inventory: kind of place and exact locator.
/// How a copy is recorded in the inventory; paths on disk are made absolute (see
/// [`absolute`]) so a later scan from another directory names the same places, and their
/// symbolic links resolved (see [`ResolvedPaths`]), so a file scanned through a linked
/// directory is the same copy.
/// Paths not in history are taken against `base` (a staged scan's repository top level,
/// since git names staged files from there), else the working directory.
///
/// A copy in an export names its place in it after `#` (see [`export_place`]), so two
/// copies in different cells, fields or messages are two copies, and its line (and, in a
/// notebook cell, column) count within that field: `file#channel@ts/text:line`,
/// `file#KEY/description:line`, `file#KEY/comment/ID:line`, `file#cellN/source:line:column`
/// (kind `document`); in history, `repository@commit:path#…:line`.
fn sighting_of(
    location: &steward_scan::FindingLocation,
    base: Option<&std::path::Path>,
    resolved: &mut ResolvedPaths,
) -> (LocationKind, String) {
    let in_export = export_place(location);
    if let Some(origin) = &location.git {
        return (
            LocationKind::RepositoryFile,
            format!(
                "{}@{}:{}{}:{}",
                resolved.resolve(absolute(&origin.repository)),
                origin.commit,
                location.path,
                in_export.as_deref().unwrap_or_default(),
                location.line
            ),
        );
    }
    let path = resolved.resolve(match base {
        Some(base) => absolute_in(Some(base), &location.path),
        None => absolute(&location.path),
    });
    match in_export {
        Some(place) if location.channel.is_some() => {
            (LocationKind::ChatMessage, format!("{path}{place}:{}", location.line))
        }
        Some(place) if location.issue_key.is_some() => {
            (LocationKind::Ticket, format!("{path}{place}:{}", location.line))
        }
        Some(place) => (
            LocationKind::Document,
            format!("{path}{place}:{}:{}", location.line, location.column),
        ),
        None => (
            LocationKind::ConfigFile,
            format!("{path}:{}:{}", location.line, location.column),
        ),
    }
}

/// Where in an export a copy is, as a locator part: `#channel@ts/field` for a Slack
/// message, `#KEY/comment/ID` for a Jira comment (which has one text), `#KEY/field` for
/// an issue's field, `#cellN/field` for a notebook cell; `None` outside exports.
fn export_place(location: &steward_scan::FindingLocation) -> Option<String> {
    let field = location
        .field
        .as_deref()
        .map(|field| format!("/{field}"))
        .unwrap_or_default();
    if let Some(channel) = &location.channel {
        let ts = location
            .message_ts
            .as_deref()
            .map(|ts| format!("@{ts}"))
            .unwrap_or_default();
        return Some(format!("#{channel}{ts}{field}"));
    }
    if let Some(issue) = &location.issue_key {
        return Some(match &location.comment_id {
            Some(comment) => format!("#{issue}/comment/{comment}"),
            None => format!("#{issue}{field}"),
        });
    }
    location.cell.map(|cell| format!("#cell{cell}{field}"))
}

/// The places a scan of `paths` reads completely, as absolute locator prefixes per kind
/// of copy, with the rules it ran: the files below each path, and the history of each
/// repository whose history was scanned (those given and those met below them).
/// Each prefix is the resolved path (as locators are), and also the path as written
/// when it goes through a symbolic link: copies an earlier version recorded through the
/// link are then gone too when this scan read the place.
fn scan_scopes(
    paths: &[std::path::PathBuf],
    repositories: &[String],
    rules: &RuleSet,
    resolved: &mut ResolvedPaths,
) -> Vec<ScanScope> {
    let rule_ids: Vec<String> = rules.rules.iter().map(|rule| rule.id.clone()).collect();
    let mut scopes = Vec::new();
    let mut prefixes = |path: String| {
        let real = resolved.resolve(path.clone());
        if real == path { vec![path] } else { vec![real, path] }
    };
    for path in paths {
        for prefix in prefixes(absolute(&path.display().to_string())) {
            for kind in [
                LocationKind::ConfigFile,
                LocationKind::ChatMessage,
                LocationKind::Ticket,
                LocationKind::Document,
            ] {
                scopes.push(ScanScope {
                    kind,
                    prefix: prefix.clone(),
                    rule_ids: rule_ids.clone(),
                });
            }
        }
    }
    for repository in repositories {
        for prefix in prefixes(absolute(repository)) {
            scopes.push(ScanScope {
                kind: LocationKind::RepositoryFile,
                prefix,
                rule_ids: rule_ids.clone(),
            });
        }
    }
    scopes
}

/// Absolute paths with their symbolic links resolved, remembered (a history scan names
/// one repository for thousands of copies). A path that does not exist as written (an
/// archive entry `dump.zip!a/.env`, a file deleted since) resolves its longest existing
/// ancestor and keeps the rest; a stream or device (`/dev/stdin`, `/dev/fd/63`) keeps
/// its name, not the `/proc/PID/…` place it leads to, which changes with every run.
#[derive(Default)]
struct ResolvedPaths {
    known: std::collections::HashMap<String, String>,
}

impl ResolvedPaths {
    /// `path` (absolute, lexically clean) with its symbolic links resolved.
    fn resolve(&mut self, path: String) -> String {
        if let Some(known) = self.known.get(&path) {
            return known.clone();
        }
        let as_path = std::path::Path::new(&path);
        let real = match std::fs::metadata(as_path) {
            Ok(metadata) if !metadata.is_file() && !metadata.is_dir() => path.clone(),
            Ok(_) => std::fs::canonicalize(as_path).map_or_else(|_| path.clone(), |real| real.display().to_string()),
            Err(_) => match (as_path.parent(), as_path.file_name()) {
                (Some(parent), Some(name)) => {
                    let parent = self.resolve(parent.display().to_string());
                    std::path::Path::new(&parent).join(name).display().to_string()
                }
                _ => path.clone(),
            },
        };
        self.known.insert(path, real.clone());
        real
    }
}

/// `path` made absolute against the working directory, lexically (`.` dropped, `..`
/// taking off the component before it), so that locators and scopes mean the same from
/// any directory: `../dir` scanned from a sibling is `dir` scanned from its parent.
fn absolute(path: &str) -> String {
    absolute_in(std::env::current_dir().ok().as_deref(), path)
}

/// [`absolute`] against `base` (the working directory, or a repository's top level).
fn absolute_in(base: Option<&std::path::Path>, path: &str) -> String {
    let path = std::path::Path::new(path);
    let joined = match base {
        Some(base) if !path.is_absolute() => base.join(path),
        _ => path.to_path_buf(),
    };
    let mut clean = std::path::PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !clean.pop() {
                    clean.push(component);
                }
            }
            other => clean.push(other),
        }
    }
    clean.display().to_string()
}

/// Records every location and prints how the findings join the inventory.
fn record(
    settings: &Settings,
    findings: &[Finding],
    covered: &[ScanScope],
    base: Option<&std::path::Path>,
    resolved: &mut ResolvedPaths,
) -> anyhow::Result<()> {
    let (mut store, _) = settings.open_store()?;
    let records: Vec<ScanRecord> = findings
        .iter()
        .map(|finding| ScanRecord {
            fingerprint: finding.fingerprint.clone(),
            rule_id: finding.rule_id.clone(),
            rule_name: finding.rule_name.clone(),
            preview: finding.preview.clone(),
            copies: finding
                .locations
                .iter()
                .map(|location| sighting_of(location, base, resolved))
                .collect(),
        })
        .collect();
    let outcome = store.record_scan(&settings.actor, &records, covered)?;
    let recorded = outcome.seen.len();
    for location in &outcome.removed {
        eprintln!(
            "removed: {} {} is no longer there",
            location.kind,
            terminal_text(&location.locator)
        );
    }
    let (mut managed, mut revoked, mut unmanaged) = (0, 0, 0);
    for finding in findings {
        let holders = store.credentials_with_fingerprint(&finding.fingerprint)?;
        let copies = finding.locations.len();
        if holders.is_empty() {
            unmanaged += 1;
            eprintln!(
                "unmanaged: {} {} ({copies} copies): no identity owns it; adopt it (steward credential add) or revoke it",
                finding.rule_id, finding.preview
            );
        }
        for (identity, credential) in holders {
            if credential.status == steward_core::CredentialStatus::Revoked {
                revoked += 1;
                eprintln!(
                    "revoked-but-referenced: {}/{} credential #{} is revoked but {copies} copies remain",
                    identity.system, identity.name, credential.id.0
                );
            } else {
                managed += 1;
                eprintln!(
                    "leaked: {}/{} credential #{} ({}) has {copies} copies",
                    identity.system, identity.name, credential.id.0, credential.status
                );
            }
        }
    }
    eprintln!(
        "recorded {recorded} locations: {managed} inventory credentials leaked, {revoked} revoked but referenced, {unmanaged} unmanaged secrets (steward findings --source scan lists them)"
    );
    Ok(())
}

/// On a terminal, shows files, bytes, findings and MB/s on stderr while the scan runs.
/// Returns the stop flag and the display thread.
fn start_progress(
    options: &mut ScanOptions,
) -> Option<(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
)> {
    use std::io::IsTerminal;
    use std::sync::atomic::Ordering::Relaxed;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let progress = std::sync::Arc::new(steward_scan::Progress::default());
    options.progress = Some(progress.clone());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let display = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut shown = false;
        while !stop.load(Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(150));
            let megabytes = progress.bytes.load(Relaxed) as f64 / 1e6;
            eprint!(
                "\r\x1b[2Kscanning: {} files, {megabytes:.0} MB, {} secrets, {:.0} MB/s",
                progress.files.load(Relaxed),
                progress.occurrences.load(Relaxed),
                megabytes / started.elapsed().as_secs_f64().max(1e-9)
            );
            shown = true;
        }
        if shown {
            eprint!("\r\x1b[2K");
        }
    });
    Some((done, display))
}

/// Exit code when secrets were found.
const EXIT_FINDINGS: u8 = 1;

/// The installation's fingerprint key, or a one-off key when there is no installation
/// (fingerprints are then only comparable within this run).
fn fingerprint_key(settings: &Settings, args: &ScanArgs) -> anyhow::Result<FingerprintKey> {
    match crate::keys::load_fingerprint_key(&settings.data_dir)? {
        Some(key) => Ok(key),
        None if args.record || args.baseline.is_some() => Err(anyhow::anyhow!(
            "--record and --baseline need the installation's fingerprint key: none in {} (run `steward init \
             --data-dir {}` or set STEWARD_FINGERPRINT_KEY)",
            crate::keys::key_dir(&settings.data_dir).display(),
            settings.data_dir.display()
        )),
        None => {
            eprintln!(
                "note: no installation keys in {} (steward init); fingerprints use a one-off key and match nothing else",
                settings.data_dir.display()
            );
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("cannot read random bytes: {error}"))?;
            Ok(FingerprintKey::from_bytes(bytes))
        }
    }
}

/// A finding location as one CSV row: where in a repository's history, export or notebook
/// it is, when it is there (empty otherwise), and the secret only with --show-secrets.
#[derive(Serialize)]
struct FindingRow<'a> {
    rule_id: Cow<'a, str>,
    rule_name: Cow<'a, str>,
    fingerprint: Cow<'a, str>,
    preview: Cow<'a, str>,
    secret: Option<Cow<'a, str>>,
    path: Cow<'a, str>,
    line: usize,
    column: usize,
    repository: Option<Cow<'a, str>>,
    commit: Option<Cow<'a, str>>,
    author: Option<Cow<'a, str>>,
    date: Option<Cow<'a, str>>,
    channel: Option<Cow<'a, str>>,
    message_ts: Option<Cow<'a, str>>,
    issue_key: Option<Cow<'a, str>>,
    comment_id: Option<Cow<'a, str>>,
    cell: Option<usize>,
    field: Option<Cow<'a, str>>,
}

/// The CSV header, written even when nothing was found.
const FINDING_COLUMNS: [&str; 18] = [
    "rule_id",
    "rule_name",
    "fingerprint",
    "preview",
    "secret",
    "path",
    "line",
    "column",
    "repository",
    "commit",
    "author",
    "date",
    "channel",
    "message_ts",
    "issue_key",
    "comment_id",
    "cell",
    "field",
];

/// Where a location is, in one piece for the table: `path:line:column`, in a commit of a
/// repository's history as `repository@commit:path:line:column`, and with the channel and
/// message, issue and comment, or cell of an export.
fn place(location: &steward_scan::FindingLocation) -> String {
    let mut place = match &location.git {
        Some(git) => format!(
            "{}@{}:{}:{}:{}",
            git.repository,
            &git.commit[..git.commit.len().min(12)],
            location.path,
            location.line,
            location.column
        ),
        None => format!("{}:{}:{}", location.path, location.line, location.column),
    };
    if let Some(channel) = &location.channel {
        place.push_str(&format!(" (#{channel}"));
        if let Some(ts) = &location.message_ts {
            place.push_str(&format!(" message {ts}"));
        }
        place.push(')');
    }
    if let Some(issue) = &location.issue_key {
        place.push_str(&format!(" ({issue}"));
        if let Some(comment) = &location.comment_id {
            place.push_str(&format!(" comment {comment}"));
        }
        place.push(')');
    }
    if let Some(cell) = location.cell {
        place.push_str(&format!(" (cell {cell})"));
    }
    place
}

fn print_findings(format: OutputFormat, rules: &RuleSet, findings: &[Finding]) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => write_stdout(|out| {
            if findings.is_empty() {
                return writeln!(out, "no secrets found");
            }
            // Aligned columns under a header; the place, last, is never cut (a history
            // place is long), and a secret shown with --show-secrets keeps to one line.
            let rows: Vec<[String; 4]> = findings
                .iter()
                .map(|finding| {
                    let more = finding.locations.len() - 1;
                    [
                        finding.rule_id.clone(),
                        terminal_text(finding.secret.as_deref().unwrap_or(&finding.preview)).into_owned(),
                        finding.fingerprint.as_str()[..16].to_string(),
                        format!(
                            "{}{}",
                            terminal_text(&place(&finding.locations[0])),
                            if more > 0 {
                                format!(" (+{more} more)")
                            } else {
                                String::new()
                            }
                        ),
                    ]
                })
                .collect();
            let header = ["RULE", "SECRET", "FINGERPRINT", "WHERE"].map(String::from);
            let mut widths = [0; 3];
            for row in std::iter::once(&header).chain(&rows) {
                for (width, value) in widths.iter_mut().zip(row) {
                    *width = (*width).max(value.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                for (value, width) in row.iter().zip(widths) {
                    write!(out, "{value}{:pad$}  ", "", pad = width - value.chars().count())?;
                }
                writeln!(out, "{}", row[3])?;
            }
            Ok(())
        }),
        OutputFormat::Json => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, findings)?;
            writeln!(out)
        }),
        OutputFormat::Jsonl => write_stdout(|out| {
            for finding in findings {
                serde_json::to_writer(&mut *out, finding)?;
                writeln!(out)?;
            }
            Ok(())
        }),
        OutputFormat::Csv => write_stdout(|out| {
            let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(out);
            writer.write_record(FINDING_COLUMNS).map_err(crate::output::csv_io)?;
            // Paths, names and channels come from what was scanned: none may run as a
            // spreadsheet formula.
            let safe = crate::output::spreadsheet_safe;
            for finding in findings {
                for location in &finding.locations {
                    let git = location.git.as_ref();
                    writer
                        .serialize(FindingRow {
                            rule_id: safe(&finding.rule_id),
                            rule_name: safe(&finding.rule_name),
                            fingerprint: safe(finding.fingerprint.as_str()),
                            preview: safe(&finding.preview),
                            secret: finding.secret.as_deref().map(safe),
                            path: safe(&location.path),
                            line: location.line,
                            column: location.column,
                            repository: git.map(|git| safe(&git.repository)),
                            commit: git.map(|git| safe(&git.commit)),
                            author: git.map(|git| safe(&git.author)),
                            date: git.map(|git| safe(&git.date)),
                            channel: location.channel.as_deref().map(safe),
                            message_ts: location.message_ts.as_deref().map(safe),
                            issue_key: location.issue_key.as_deref().map(safe),
                            comment_id: location.comment_id.as_deref().map(safe),
                            cell: location.cell,
                            field: location.field.as_deref().map(safe),
                        })
                        .map_err(crate::output::csv_io)?;
                }
            }
            writer.flush()
        }),
        OutputFormat::Sarif => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &crate::sarif::sarif_log(rules, findings))?;
            writeln!(out)
        }),
        OutputFormat::Yaml => unreachable!("scan refuses -o yaml before it scans"),
    }
}

/// Runs the scan. Every error exits 2 (1 means "secrets found" for this command).
pub fn run(globals: &Globals, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    scan(globals, args).map_err(|error| crate::usage(crate::describe_error(&error)))
}

fn scan(globals: &Globals, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![".".into()]
    } else {
        args.paths.clone()
    };
    // A path that is not there, a link to nothing or a path that cannot be read is a
    // mistake (a typo in a CI job would otherwise pass as "no secrets found"), not a file
    // to warn about and skip.
    if let Some(problem) = paths
        .iter()
        .find_map(|path| steward_scan::source::unscannable_root(path))
    {
        return Err(crate::usage(problem));
    }
    let settings = Settings::resolve(globals)?;
    // Usage errors come before the scan: a scan with --record writes to the store, and
    // failing after it would leave the copies recorded under a command that "failed".
    if matches!(settings.output, OutputFormat::Yaml) {
        return Err(crate::usage("scan writes table, json, jsonl, csv or sarif"));
    }
    // A stream (a pipe, `/dev/stdin`, `<(…)`, a FIFO) has no place to name its copies by:
    // each would be recorded at the same `/dev/stdin:line:column`, and the next stream
    // recorded would mark the last one's copies removed.
    if args.record
        && let Some(stream) = paths
            .iter()
            .find(|path| std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_file() && !metadata.is_dir()))
    {
        return Err(crate::usage(format!(
            "--record needs files or directories, whose places name the copies: {} is a stream (scan it without \
             --record, or save it to a file first)",
            stream.display()
        )));
    }
    let mut rules = RuleSet::builtin()?;
    if let Some(dir) = &args.rules {
        rules.add_dir(dir).map_err(|error| crate::usage(error.to_string()))?;
    }
    let matcher = Matcher::new(rules)?;
    let key = fingerprint_key(&settings, args)?;
    let baseline = args.baseline.as_deref().map(read_baseline).transpose()?;
    let mut options = ScanOptions {
        max_file_size: args.max_file_size,
        respect_gitignore: args.respect_gitignore,
        show_secrets: args.show_secrets,
        history: !args.no_history,
        history_memory: args.history_memory << 20,
        progress: None,
        archives: (!args.no_archives).then_some(ArchiveLimits {
            max_depth: args.archive_depth,
            max_total_bytes: args.archive_max_bytes,
            ..ArchiveLimits::default()
        }),
    };
    let progress = start_progress(&mut options);
    let mut report = if args.staged {
        let [repo] = paths.as_slice() else {
            return Err(crate::usage("--staged takes at most one path: the repository"));
        };
        steward_scan::staged::scan_staged(&matcher, &key, repo, &options).map_err(anyhow::Error::msg)?
    } else {
        scan_paths(&matcher, &key, &paths, &options)
    };
    if let Some((done, display)) = progress {
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = display.join();
    }
    if args.record {
        // Everything found is recorded, baseline or not: a known secret is still a copy.
        // Where the scan read every place (no staged-only scan, no warnings), copies
        // recorded earlier by scans that it did not see again are marked removed.
        // Filters that skip files silently (ignore files, unexpanded archives) leave places
        // unread too.
        let partial = args.staged || args.respect_gitignore || args.no_archives;
        let mut resolved = ResolvedPaths::default();
        let covered = if partial || !report.stats.warnings.is_empty() {
            Vec::new()
        } else {
            scan_scopes(&paths, &report.stats.repositories, matcher.rules(), &mut resolved)
        };
        let base = match (args.staged, paths.as_slice()) {
            (true, [repo]) => Some(steward_scan::staged::top_level(repo).map_err(anyhow::Error::msg)?),
            _ => None,
        };
        record(&settings, &report.findings, &covered, base.as_deref(), &mut resolved)?;
        // Said once, on one line, so a nightly job that always skips places learns why its
        // cleaned-up leaks stay live. (A staged scan reads only the index, by design.)
        let skipping: Vec<&str> = [
            (args.respect_gitignore, "--respect-gitignore skips ignored files"),
            (args.no_archives, "--no-archives does not read inside archives"),
        ]
        .into_iter()
        .filter_map(|(given, why)| given.then_some(why))
        .collect();
        if !skipping.is_empty() {
            eprintln!(
                "earlier copies were not marked removed: {}, so the scan may not have read them (scan without it to mark gone copies removed)",
                skipping.join(" and ")
            );
        } else if !partial && !report.stats.warnings.is_empty() {
            eprintln!("earlier copies were not marked removed: the scan had warnings, so it may not have read them");
        }
    }
    if let (Some(path), Some(known)) = (&args.baseline, baseline) {
        let before = report.findings.len();
        report
            .findings
            .retain(|finding| !known.contains(finding.fingerprint.as_str()));
        let left_out = before - report.findings.len();
        eprintln!("baseline {}: {left_out} known secrets left out", path.display());
        // A baseline made under another installation's key matches nothing, silently
        // reporting every known secret as new: say what that looks like.
        if left_out == 0 && !known.is_empty() && before > 0 {
            eprintln!(
                "note: none of the baseline's {} secrets is among the {before} found: if it was made by another \
                 installation (another fingerprint key), it cannot leave anything out",
                known.len()
            );
        }
    }
    print_findings(settings.output, matcher.rules(), &report.findings)?;
    let stats = &report.stats;
    for warning in &stats.warnings {
        eprintln!("{}", terminal_text(warning));
    }
    if stats.packs_over_budget > 0 {
        eprintln!(
            "note: {} git pack file(s) too large for --history-memory were read object by object (slower); a larger budget speeds this up",
            stats.packs_over_budget
        );
    }
    let megabytes = stats.bytes as f64 / 1e6;
    eprintln!(
        "scanned {} files and blobs ({megabytes:.1} MB, {} commits in {} repositories, {} archives expanded) in {:.2} s ({:.0} MB/s) with {} rules: {} secrets in {} places; skipped {} binary and {} large files and {} symbolic links, {} warnings",
        stats.files,
        stats.commits,
        stats.repositories.len(),
        stats.archives,
        stats.seconds,
        megabytes / stats.seconds.max(1e-9),
        matcher.rules().len(),
        report.findings.len(),
        report
            .findings
            .iter()
            .map(|finding| finding.locations.len())
            .sum::<usize>(),
        stats.skipped_binary,
        stats.skipped_large,
        stats.skipped_symlinks,
        stats.warnings.len()
    );
    if report.findings.is_empty() || args.exit_zero {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(EXIT_FINDINGS))
    }
}
