//! Git history: every blob of every commit reachable from any ref, scanned once per
//! distinct content, each finding located at the commit, author, date and path where the
//! blob first appeared at that path.
//!
//! Commits are visited oldest first; a tree already seen is not walked again, so the work
//! is proportional to the number of distinct trees and blobs, not commits × files.

use crate::finding::{FindingLocation, GitOrigin, Occurrence};
use crate::matcher::Matcher;
use crate::source::{ContentScan, ScanOptions, scan_content};
use gix::ObjectId;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use steward_core::FingerprintKey;

/// What a history scan found and met.
#[derive(Default)]
pub struct HistoryScan {
    /// Secret occurrences, located in commits.
    pub occurrences: Vec<Occurrence>,
    /// Commits walked.
    pub commits: u64,
    /// Distinct blobs scanned.
    pub blobs: u64,
    /// Bytes of blobs scanned.
    pub bytes: u64,
    /// Blobs skipped as binary or too large.
    pub skipped: u64,
    /// Problems met; the scan went on.
    pub warnings: Vec<String>,
}

struct CommitInfo {
    id: ObjectId,
    seconds: i64,
    author: String,
    tree: ObjectId,
}

/// Whether `path` is the top of a git repository (has `.git`, or is a bare repository).
pub fn is_repository(path: &Path) -> bool {
    path.join(".git").exists() || (path.join("HEAD").is_file() && path.join("objects").is_dir())
}

fn commits_of(repo: &gix::Repository, warnings: &mut Vec<String>) -> Result<Vec<CommitInfo>, String> {
    let mut tips = Vec::new();
    let platform = repo.references().map_err(|error| error.to_string())?;
    for reference in platform.all().map_err(|error| error.to_string())? {
        match reference {
            Ok(mut reference) => match reference.peel_to_id() {
                Ok(id) => tips.push(id.detach()),
                Err(error) => warnings.push(format!("warning: ref {}: {error}", reference.name().as_bstr())),
            },
            Err(error) => warnings.push(format!("warning: unreadable ref: {error}")),
        }
    }
    if let Ok(head) = repo.head_id() {
        tips.push(head.detach());
    }
    let mut seen = HashSet::new();
    let mut stack = tips;
    let mut commits = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let object = match repo.find_object(id) {
            Ok(object) => object,
            Err(error) => {
                warnings.push(format!("warning: object {id}: {error}"));
                continue;
            }
        };
        if object.kind != gix::object::Kind::Commit {
            continue; // a ref to a tree or blob: nothing to walk
        }
        let commit = object.into_commit();
        let (tree, seconds, author) = match (commit.tree_id(), commit.time(), commit.author()) {
            (Ok(tree), Ok(time), Ok(author)) => (
                tree.detach(),
                time.seconds,
                format!("{} <{}>", author.name, author.email),
            ),
            _ => {
                warnings.push(format!("warning: commit {id}: cannot be decoded"));
                continue;
            }
        };
        stack.extend(commit.parent_ids().map(|parent| parent.detach()));
        commits.push(CommitInfo {
            id,
            seconds,
            author,
            tree,
        });
    }
    commits.sort_by_key(|commit| (commit.seconds, commit.id));
    Ok(commits)
}

/// Walks `tree` at `prefix`, recording new (blob, path) pairs with `origin`.
fn walk_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    prefix: &str,
    origin: usize,
    seen_trees: &mut HashSet<ObjectId>,
    places: &mut HashMap<ObjectId, Vec<(String, usize)>>,
    warnings: &mut Vec<String>,
) {
    if !seen_trees.insert(tree) {
        return;
    }
    let object = match repo.find_object(tree) {
        Ok(object) => object.into_tree(),
        Err(error) => return warnings.push(format!("warning: tree {tree}: {error}")),
    };
    let decoded = match object.decode() {
        Ok(decoded) => decoded,
        Err(error) => return warnings.push(format!("warning: tree {tree}: {error}")),
    };
    let entries: Vec<(bool, bool, ObjectId, String)> = decoded
        .entries
        .iter()
        .map(|entry| {
            let name = if prefix.is_empty() {
                entry.filename.to_string()
            } else {
                format!("{prefix}/{}", entry.filename)
            };
            (entry.mode.is_tree(), entry.mode.is_blob(), entry.oid.to_owned(), name)
        })
        .collect();
    for (is_tree, is_blob, id, path) in entries {
        if is_tree {
            walk_tree(repo, id, &path, origin, seen_trees, places, warnings);
        } else if is_blob {
            let paths = places.entry(id).or_default();
            if !paths.iter().any(|(known, _)| *known == path) {
                paths.push((path, origin));
            }
        }
    }
}

fn format_date(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(steward_core::time::format_instant)
        .unwrap_or_default()
}

/// Scans the whole history of the repository at `path`.
pub fn scan_history(matcher: &Matcher, key: &FingerprintKey, path: &Path, options: &ScanOptions) -> HistoryScan {
    let mut scan = HistoryScan::default();
    let repo = match gix::open(path) {
        Ok(repo) => repo,
        Err(error) => {
            scan.warnings.push(format!(
                "warning: {}: not a readable git repository: {error}",
                path.display()
            ));
            return scan;
        }
    };
    let commits = match commits_of(&repo, &mut scan.warnings) {
        Ok(commits) => commits,
        Err(error) => {
            scan.warnings.push(format!("warning: {}: {error}", path.display()));
            return scan;
        }
    };
    scan.commits = commits.len() as u64;
    let mut seen_trees = HashSet::new();
    let mut places: HashMap<ObjectId, Vec<(String, usize)>> = HashMap::new();
    for (index, commit) in commits.iter().enumerate() {
        walk_tree(
            &repo,
            commit.tree,
            "",
            index,
            &mut seen_trees,
            &mut places,
            &mut scan.warnings,
        );
    }
    let repository = path.display().to_string();
    let blobs: Vec<(ObjectId, Vec<(String, usize)>)> = places.into_iter().collect();
    let shared = repo.into_sync();
    let results: Vec<(ContentScan, Vec<String>)> = blobs
        .par_iter()
        .map_init(
            || shared.to_thread_local(),
            |repo, (id, paths)| match repo.find_object(*id) {
                Ok(object) => {
                    let first_path = &paths[0].0;
                    let content = scan_content(matcher, key, first_path, &object.data, options);
                    (content, Vec::new())
                }
                Err(error) => (ContentScan::default(), vec![format!("warning: blob {id}: {error}")]),
            },
        )
        .collect();
    for ((_, paths), (content, warnings)) in blobs.iter().zip(results) {
        scan.warnings.extend(warnings);
        scan.warnings.extend(content.warnings);
        scan.blobs += content.files;
        scan.bytes += content.bytes;
        scan.skipped += content.skipped;
        for occurrence in content.occurrences {
            // The blob was scanned once; report the secret at every path it had.
            for (blob_path, origin) in paths {
                let commit = &commits[*origin];
                let inner = occurrence.location.path.strip_prefix(&paths[0].0).unwrap_or("");
                let mut copy = occurrence.clone();
                copy.location = FindingLocation {
                    path: format!("{blob_path}{inner}"),
                    git: Some(GitOrigin {
                        repository: repository.clone(),
                        commit: commit.id.to_string(),
                        author: commit.author.clone(),
                        date: format_date(commit.seconds),
                    }),
                    ..occurrence.location.clone()
                };
                scan.occurrences.push(copy);
            }
        }
    }
    scan
}
