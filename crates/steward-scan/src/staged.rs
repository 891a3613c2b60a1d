//! What `git commit` would record: the staged (index) version of every added, copied,
//! modified, renamed or type-changed file, for pre-commit use. Reads through the `git`
//! command, which a pre-commit hook has by definition.

use crate::finding::{ScanReport, ScanStats, group};
use crate::matcher::Matcher;
use crate::source::{ScanOptions, scan_content};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use steward_core::FingerprintKey;

fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo);
    command
}

/// The top level of the working tree holding `repo`, from which git names staged files.
pub fn top_level(repo: &Path) -> Result<std::path::PathBuf, String> {
    let output = git(repo)
        .args(["rev-parse", "--show-toplevel"])
        .stderr(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{}: not a git working tree (--staged needs one)",
            repo.display()
        ));
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| format!("{}: the working tree's path is not UTF-8", repo.display()))?;
    Ok(std::path::PathBuf::from(text.trim_end_matches(['\n', '\r'])))
}

/// The staged files of the repository at `repo`, with their staged content.
pub fn staged_files(repo: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let listing = git(repo)
        .args(["diff", "--cached", "--name-only", "-z", "--diff-filter=ACMRT"])
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    if !listing.status.success() {
        // Outside a working tree, `git diff --cached` fails with the whole usage of `git
        // diff --no-index`: say what is wrong instead (asked only then, so that a commit's
        // hook runs one git less).
        let inside = git(repo)
            .args(["rev-parse", "--is-inside-work-tree"])
            .stderr(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run git: {error}"))?;
        if !inside.status.success() || inside.stdout.trim_ascii() != b"true" {
            return Err(format!(
                "{}: not a git working tree (--staged needs one)",
                repo.display()
            ));
        }
        return Err(format!(
            "{}: git diff --cached failed: {}",
            repo.display(),
            String::from_utf8_lossy(&listing.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
        ));
    }
    let paths: Vec<String> = listing
        .stdout
        .split(|byte| *byte == 0)
        .filter(|path| !path.is_empty())
        .map(|path| String::from_utf8_lossy(path).into_owned())
        .collect();
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut batch = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run git cat-file: {error}"))?;
    let mut input = batch.stdin.take().expect("piped stdin");
    let requests: Vec<u8> = paths
        .iter()
        .flat_map(|path| format!(":{path}\n").into_bytes())
        .collect();
    let writer = std::thread::spawn(move || input.write_all(&requests));
    let mut output = BufReader::new(batch.stdout.take().expect("piped stdout"));
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let mut header = String::new();
        output.read_line(&mut header).map_err(|error| error.to_string())?;
        let size: usize = match header.trim_end().rsplit(' ').next().and_then(|size| size.parse().ok()) {
            Some(size) if !header.ends_with("missing\n") => size,
            _ => continue,
        };
        let mut content = vec![0; size + 1];
        output.read_exact(&mut content).map_err(|error| error.to_string())?;
        content.pop(); // the newline git adds after each object
        files.push((path, content));
    }
    writer
        .join()
        .map_err(|_| "git cat-file writer panicked".to_string())?
        .map_err(|error| error.to_string())?;
    batch.wait().map_err(|error| error.to_string())?;
    Ok(files)
}

/// Scans the staged files of the repository at `repo`.
pub fn scan_staged(
    matcher: &Matcher,
    key: &FingerprintKey,
    repo: &Path,
    options: &ScanOptions,
) -> Result<ScanReport, String> {
    let started = std::time::Instant::now();
    let mut stats = ScanStats::default();
    let mut occurrences = Vec::new();
    for (path, content) in staged_files(repo)? {
        if content.len() as u64 > options.max_file_size {
            // As in directory scans: counted, and named, since the commit would record it.
            stats.skipped_large += 1;
            stats.warnings.push(format!(
                "warning: {path} (staged): skipped, {} bytes is over the {} byte limit",
                content.len(),
                options.max_file_size
            ));
            continue;
        }
        let scanned = scan_content(matcher, key, &path, &content, options);
        occurrences.extend(stats.absorb(scanned));
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(ScanReport {
        findings: group(occurrences, matcher.rules()),
        stats,
    })
}
