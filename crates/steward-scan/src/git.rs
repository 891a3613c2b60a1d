//! Git history: every blob of every commit reachable from any ref, scanned once per
//! distinct content, each finding located at the commit, author, date and path where the
//! blob first appeared at that path.
//!
//! Three steps:
//! 1. One pass over every pack (within the memory budget) decodes each object once, in pack order and on all threads
//!    (gix-pack's delta-tree traversal: a delta is applied to its base while the base is
//!    still in memory). Blobs are scanned as they come, at no path; trees are kept, and
//!    commits parsed.
//! 2. The walk: commits oldest first, each commit's tree from the kept data; a tree
//!    already seen is not walked again, so the work is proportional to the number of
//!    distinct trees and blobs, not commits × files.
//! 3. Reachable blobs the pass did not scan (loose objects, archives, the objects of packs
//!    too large for [`ScanOptions::history_memory`]), and JSON whose first path is a
//!    notebook's or a Slack day file's (read by path), are read and scanned at their first
//!    path. Trees and commits that were not kept (over the same budget, or not packed) are
//!    read by id during the walk.
//!
//! Blobs in a pack that no ref reaches are scanned in step 1 but never reported: they
//! have no commit or path.

use crate::finding::{FindingLocation, GitOrigin, Occurrence};
use crate::matcher::Matcher;
use crate::source::{ContentScan, ScanOptions, expands_as_archive, scan_content};
use gix::ObjectId;
use gix::bstr::ByteSlice;
use rayon::prelude::*;
use std::borrow::Cow;
// Maps keyed by object id hash with the id's first bytes (it is already a hash).
use gix::hashtable::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError};
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
    /// Blobs skipped as binary.
    pub skipped: u64,
    /// Blobs skipped for being over [`ScanOptions::max_file_size`] (each also a warning).
    pub skipped_large: u64,
    /// Packs too large for [`ScanOptions::history_memory`], read object by object.
    pub packs_over_budget: u64,
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
    path.join(".git").exists() || is_bare_repository(path)
}

/// Whether the directory at `path` is a bare repository (`git clone --mirror`, a server's
/// storage): a `HEAD` file and `objects` and `refs` directories, as git requires.
pub fn is_bare_repository(path: &Path) -> bool {
    path.join("HEAD").is_file() && path.join("objects").is_dir() && path.join("refs").is_dir()
}

/// Memory for the trees and parsed commits kept from the pass over the packs, their index
/// included, at most; beyond it the walk reads the rest from the object database again.
const KEPT_OBJECTS_MAX: usize = 256 << 20;
/// Memory that gix's delta tree takes per object of the pack being traversed (its entry,
/// children lists and pending decoded bases), estimated from peak RSS on a 900k-object
/// pack.
const DELTA_TREE_BYTES_PER_OBJECT: u64 = 160;
/// Kept objects are copied back to back into buffers of this size.
const KEPT_CHUNK: usize = 8 << 20;
/// Kept trees' entries are copied back to back into vectors of this many.
const KEPT_ENTRY_CHUNK: usize = 1 << 16;

/// Where a kept tree's data and entries are.
#[derive(Clone, Copy)]
struct KeptObject {
    chunk: u32,
    start: u32,
    length: u32,
    entry_chunk: u32,
    first_entry: u32,
    entry_count: u32,
}

/// A tree entry the walk follows (a tree or a blob), located in its tree's data.
#[derive(Clone, Copy)]
struct TreeEntry {
    /// Where its name starts, and its length.
    name: u32,
    name_length: u32,
    /// Where its id starts.
    id: u32,
    is_tree: bool,
}

impl TreeEntry {
    fn name<'d>(&self, data: &'d [u8]) -> &'d gix::bstr::BStr {
        data[self.name as usize..][..self.name_length as usize].as_bstr()
    }

    fn id<'d>(&self, data: &'d [u8], hash: gix::hash::Kind) -> &'d gix::oid {
        gix::oid::from_bytes_unchecked(&data[self.id as usize..][..hash.len_in_bytes()])
    }
}

/// Appends the entries of tree `data` that the walk follows (trees and blobs, not
/// submodules or symbolic links) to `entries`; an `Err` says what ended the reading, after
/// the entries before it.
fn tree_entries(data: &[u8], hash: gix::hash::Kind, entries: &mut Vec<TreeEntry>) -> Result<(), String> {
    let offset = |part: &[u8]| u32::try_from(part.as_ptr() as usize - data.as_ptr() as usize);
    for entry in gix::objs::TreeRefIter::from_bytes(data, hash) {
        let entry = entry.map_err(|error| error.to_string())?;
        if !(entry.mode.is_tree() || entry.mode.is_blob()) {
            continue;
        }
        let too_large = |_| "over 4 GiB".to_string();
        entries.push(TreeEntry {
            name: offset(entry.filename).map_err(too_large)?,
            name_length: u32::try_from(entry.filename.len()).map_err(too_large)?,
            id: offset(entry.oid.as_bytes()).map_err(too_large)?,
            is_tree: entry.mode.is_tree(),
        });
    }
    Ok(())
}

/// Copies `items` to the end of the last of `chunks`, or of a new one of `chunk_size`
/// items (or as many as `items`) when they do not fit: chunks never grow, so they are
/// never copied. Returns the chunk and the position in it.
fn append_chunked<T: Copy>(chunks: &mut Vec<Vec<T>>, items: &[T], chunk_size: usize) -> (u32, u32) {
    let fits = chunks
        .last()
        .is_some_and(|chunk| chunk.capacity() - chunk.len() >= items.len());
    if !fits {
        chunks.push(Vec::with_capacity(chunk_size.max(items.len())));
    }
    let chunk = chunks.len() - 1;
    let start = chunks[chunk].len();
    chunks[chunk].extend_from_slice(items);
    (chunk as u32, start as u32)
}

/// Trees kept from the pass over the packs, with the entries the walk follows (parsed on
/// the pass's threads): their data back to back in large buffers (no allocation per
/// object), found by id.
#[derive(Default)]
struct Kept {
    chunks: Vec<Vec<u8>>,
    /// Tree entries, back to back in chunks of [`KEPT_ENTRY_CHUNK`] or more (a single
    /// growing vector would double, and copy itself, at every step).
    entries: Vec<Vec<TreeEntry>>,
    index: HashMap<ObjectId, KeptObject>,
    /// Memory taken: data, and about twice each index entry (the table is never full).
    taken: usize,
    /// Memory it may take.
    limit: usize,
}

impl Kept {
    /// Takes `cost` bytes of the budget, if it has them.
    fn charge(&mut self, cost: usize) -> bool {
        let fits = self.taken + cost <= self.limit;
        if fits {
            self.taken += cost;
        }
        fits
    }

    /// Keeps a copy of tree `id`'s `data` and `entries` unless it is kept already or the
    /// budget is spent.
    fn insert(&mut self, id: ObjectId, data: &[u8], entries: &[TreeEntry]) {
        let cost = data.len() + std::mem::size_of_val(entries) + 2 * std::mem::size_of::<(ObjectId, KeptObject)>();
        if self.index.contains_key(&id) || !self.charge(cost) {
            return;
        }
        let (chunk, start) = append_chunked(&mut self.chunks, data, KEPT_CHUNK);
        let (entry_chunk, first_entry) = append_chunked(&mut self.entries, entries, KEPT_ENTRY_CHUNK);
        let place = KeptObject {
            chunk,
            start,
            length: data.len() as u32,
            entry_chunk,
            first_entry,
            entry_count: entries.len() as u32,
        };
        self.index.insert(id, place);
    }

    /// The data and entries of a kept tree.
    fn get(&self, id: &ObjectId) -> Option<(&[u8], &[TreeEntry])> {
        let place = self.index.get(id)?;
        let start = place.start as usize;
        let data = &self.chunks[place.chunk as usize][start..start + place.length as usize];
        let first = place.first_entry as usize;
        let entries = &self.entries[place.entry_chunk as usize][first..first + place.entry_count as usize];
        Some((data, entries))
    }
}

/// A blob scanned during the pass over the packs; compact when nothing was found (most).
enum PackedBlob {
    Text {
        bytes: u64,
    },
    Binary,
    Found(Box<ContentScan>),
    /// Not scanned: over the size limit.
    TooLarge {
        bytes: u64,
    },
}

impl PackedBlob {
    fn new(scanned: ContentScan) -> PackedBlob {
        if !scanned.occurrences.is_empty() || !scanned.warnings.is_empty() || scanned.archives > 0 {
            PackedBlob::Found(Box::new(scanned))
        } else if scanned.skipped > 0 {
            PackedBlob::Binary
        } else {
            PackedBlob::Text { bytes: scanned.bytes }
        }
    }

    /// What the blob's scan adds to the counts, and its size when it was not scanned for
    /// being over the size limit.
    fn into_content(self) -> (ContentScan, Option<u64>) {
        let content = match self {
            PackedBlob::Text { bytes } => ContentScan {
                files: 1,
                bytes,
                ..ContentScan::default()
            },
            PackedBlob::Binary => ContentScan {
                skipped: 1,
                ..ContentScan::default()
            },
            PackedBlob::Found(scanned) => *scanned,
            PackedBlob::TooLarge { bytes } => return (ContentScan::default(), Some(bytes)),
        };
        (content, None)
    }
}

/// A blob scanned during the pass, at no path.
struct PassScan {
    blob: PackedBlob,
    /// It might be an export (JSON), which reads differently at a notebook or Slack
    /// day-file path: its scan only stands if its first path is neither.
    may_be_export: bool,
    /// The walk met it and it needs no path (see [`PassScan::needs_paths`]).
    reached: bool,
}

impl PassScan {
    /// Whether the walk must record the blob's paths: when it found something (reported at
    /// every path), was skipped (named at its first path), or may read differently at its
    /// first path. Most blobs need none, and only count.
    fn needs_paths(&self) -> bool {
        self.may_be_export || !matches!(self.blob, PackedBlob::Text { .. } | PackedBlob::Binary)
    }
}

/// What one pass over every pack of the repository decoded.
#[derive(Default)]
struct Packed {
    /// Packs not traversed for being too large for [`ScanOptions::history_memory`].
    packs_over_budget: u64,
    /// Trees (within [`Kept::limit`], which parsed commits count against too).
    kept: Kept,
    /// Commits, parsed on the pass's threads.
    commits: HashMap<ObjectId, Result<ParsedCommit, String>>,
    /// Blobs already scanned: all but archives.
    blobs: HashMap<ObjectId, PassScan>,
}

/// Decodes every object of every pack once, in pack order with each delta applied to its
/// already decoded base, on all threads: blobs are scanned as they come, at no path
/// (archives, whose scan depends on their path, wait for the walk; blobs over the size
/// limit are only noted), trees are kept for the walk and commits parsed for it. Reading objects one by
/// one instead re-inflates the bases of every delta chain and walks trees on one thread.
/// Objects the pass misses (loose objects, other object stores, a pack that fails to
/// decode) are read one by one later, where a damaged object becomes a warning.
fn decode_packs(repo: &gix::Repository, matcher: &Matcher, key: &FingerprintKey, options: &ScanOptions) -> Packed {
    let pack_dir = repo.common_dir().join("objects").join("pack");
    let mut indexes: Vec<std::path::PathBuf> = match std::fs::read_dir(&pack_dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|extension| extension == "idx"))
            .collect(),
        Err(_) => Vec::new(),
    };
    indexes.sort();
    // Packs are traversed one after the other, each with a delta tree of its own, while
    // kept objects add up: a pack whose tree would take more than three quarters of the
    // budget is left to be read object by object (slower), and kept objects get what the
    // largest traversed tree leaves. Only the indexes are opened to count objects; a pack
    // is mapped when its turn comes.
    let mut over_budget = 0;
    let passed: Vec<(std::path::PathBuf, u64)> = indexes
        .into_iter()
        .filter_map(|index| {
            let objects = gix::odb::pack::index::File::at(&index, repo.object_hash())
                .ok()?
                .num_objects();
            let delta_tree = u64::from(objects) * DELTA_TREE_BYTES_PER_OBJECT;
            if delta_tree > options.history_memory / 4 * 3 {
                over_budget += 1;
                return None;
            }
            Some((index, delta_tree))
        })
        .collect();
    let largest_tree = passed.iter().map(|(_, delta_tree)| *delta_tree).max().unwrap_or(0);
    let kept_limit = options
        .history_memory
        .saturating_sub(largest_tree)
        .min(KEPT_OBJECTS_MAX as u64);
    let packed = Mutex::new(Packed {
        kept: Kept {
            limit: usize::try_from(kept_limit).unwrap_or(usize::MAX),
            ..Kept::default()
        },
        packs_over_budget: over_budget,
        ..Packed::default()
    });
    let threads = rayon::current_num_threads();
    let object_hash = repo.object_hash();
    for (index, _) in passed {
        let Ok(bundle) = gix::odb::pack::Bundle::at(&index, repo.object_hash()) else {
            continue;
        };
        let processor = |kind: gix::object::Kind,
                         data: &[u8],
                         entry: &gix::odb::pack::index::Entry,
                         _: &dyn gix::Progress|
         -> gix::Result<()> {
            match kind {
                gix::object::Kind::Blob => {
                    let too_large = data.len() as u64 > options.max_file_size;
                    // A blob in two packs is scanned once (packs are traversed in turn).
                    if (too_large || !expands_as_archive(data, options))
                        && !lock(&packed).blobs.contains_key(&entry.oid)
                    {
                        let scanned = if too_large {
                            PassScan {
                                blob: PackedBlob::TooLarge {
                                    bytes: data.len() as u64,
                                },
                                may_be_export: false,
                                reached: false,
                            }
                        } else {
                            PassScan {
                                blob: PackedBlob::new(scan_content(matcher, key, "", data, options)),
                                may_be_export: crate::exports::may_be_export(data),
                                reached: false,
                            }
                        };
                        lock(&packed).blobs.insert(entry.oid, scanned);
                    }
                }
                gix::object::Kind::Tree => {
                    // A tree that does not parse is read again by the walk, which warns.
                    let mut entries = Vec::new();
                    if tree_entries(data, object_hash, &mut entries).is_ok() {
                        lock(&packed).kept.insert(entry.oid, data, &entries);
                    }
                }
                gix::object::Kind::Commit => {
                    let parsed = parse_commit(entry.oid, data, object_hash);
                    // Over the budget, the walk reads the commit again.
                    let cost = 2 * std::mem::size_of::<(ObjectId, Result<ParsedCommit, String>)>()
                        + parsed.as_ref().map_or(0, ParsedCommit::heap_bytes);
                    let mut packed = lock(&packed);
                    if packed.kept.charge(cost) {
                        packed.commits.insert(entry.oid, parsed);
                    }
                }
                _ => {}
            }
            Ok(())
        };
        // An object that does not decode is left out (with its deltas) and the pass goes
        // on; what it left out is read one by one later, where the damage is a warning.
        let _ = bundle.index.traverse_with_index(
            &bundle.pack,
            processor,
            &mut gix::progress::Discard,
            &AtomicBool::new(false),
            gix::odb::pack::index::traverse::with_index::Options {
                check: gix::odb::pack::index::traverse::SafetyCheck::SkipFileAndObjectChecksumVerificationAndNoAbortOnDecodeError,
                thread_limit: Some(threads),
                alloc_limit_bytes: None,
            },
        );
    }
    packed.into_inner().unwrap_or_else(PoisonError::into_inner)
}

fn lock(packed: &Mutex<Packed>) -> std::sync::MutexGuard<'_, Packed> {
    packed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the history walk needs of a commit.
struct ParsedCommit {
    info: CommitInfo,
    parents: Vec<ObjectId>,
    /// What could not be read of it (it is walked all the same).
    warnings: Vec<String>,
}

impl ParsedCommit {
    /// Memory it holds beyond its own size.
    fn heap_bytes(&self) -> usize {
        self.info.author.len()
            + self.parents.len() * std::mem::size_of::<ObjectId>()
            + self.warnings.iter().map(String::len).sum::<usize>()
    }
}

/// Parses commit `id`; an `Err` is the warning that it cannot be decoded.
fn parse_commit(id: ObjectId, data: &[u8], hash: gix::hash::Kind) -> Result<ParsedCommit, String> {
    let Ok(commit) = gix::objs::CommitRef::from_bytes(data, hash) else {
        return Err(format!("warning: commit {id}: cannot be decoded"));
    };
    let mut warnings = Vec::new();
    // A commit with an unreadable signature is still walked (its tree may hold secrets),
    // and the warning says what its locations then show.
    let seconds = match commit.committer().map(|committer| committer.time()) {
        Ok(Ok(time)) => time.seconds,
        _ => {
            warnings.push(format!(
                "warning: commit {id}: unreadable committer time, taken as 1970-01-01"
            ));
            0
        }
    };
    let author = match commit.author() {
        Ok(author) => format!("{} <{}>", author.name, author.email),
        Err(_) => {
            warnings.push(format!("warning: commit {id}: unreadable author"));
            String::new()
        }
    };
    Ok(ParsedCommit {
        info: CommitInfo {
            id,
            seconds,
            author,
            tree: commit.tree(),
        },
        parents: commit.parents().collect(),
        warnings,
    })
}

/// Every commit reachable from a ref or HEAD, oldest first. Commits the pass over the
/// packs parsed are taken from `parsed`; others are read now.
fn commits_of(
    repo: &gix::Repository,
    mut parsed: HashMap<ObjectId, Result<ParsedCommit, String>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<CommitInfo>, String> {
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
    let mut seen = HashSet::default();
    let mut stack = tips;
    let mut commits = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let commit = match parsed.remove(&id) {
            Some(commit) => commit,
            None => match repo.find_object(id) {
                Ok(object) if object.kind == gix::object::Kind::Commit => {
                    parse_commit(id, &object.data, repo.object_hash())
                }
                Ok(_) => continue, // a ref to a tree or blob: nothing to walk
                Err(error) => Err(format!("warning: object {id}: {error}")),
            },
        };
        match commit {
            Ok(commit) => {
                warnings.extend(commit.warnings);
                stack.extend(commit.parents);
                commits.push(commit.info);
            }
            Err(warning) => warnings.push(warning),
        }
    }
    commits.sort_by_key(|commit| (commit.seconds, commit.id));
    Ok(commits)
}

/// The walk over every commit's tree: where each blob was first seen at each of its paths.
struct Walk<'a> {
    repo: &'a gix::Repository,
    kept: &'a Kept,
    /// Blobs the pass scanned; those that need no path are only marked reached.
    packed: &'a mut HashMap<ObjectId, PassScan>,
    seen_trees: HashSet<ObjectId>,
    /// Every other blob, with each of its paths and the commit that first had it there.
    places: HashMap<ObjectId, Vec<(String, usize)>>,
    warnings: Vec<String>,
}

impl<'a> Walk<'a> {
    /// The data of `tree` and the entries the walk follows, with what ended their reading
    /// early: kept from the pass over the packs, or read now.
    #[allow(clippy::type_complexity)]
    fn read_tree(&self, tree: ObjectId) -> Result<(Cow<'a, [u8]>, Cow<'a, [TreeEntry]>, Option<String>), String> {
        let kept: &'a Kept = self.kept;
        if let Some((data, entries)) = kept.get(&tree) {
            return Ok((Cow::Borrowed(data), Cow::Borrowed(entries), None));
        }
        let object = self.repo.find_object(tree).map_err(|error| error.to_string())?;
        if object.kind != gix::object::Kind::Tree {
            return Err("not a tree".into());
        }
        let data = object.detach().data;
        let mut entries = Vec::new();
        let error = tree_entries(&data, self.repo.object_hash(), &mut entries).err();
        Ok((Cow::Owned(data), Cow::Owned(entries), error))
    }

    /// Walks `tree` at `path` (a prefix that the walk extends and restores), recording new
    /// (blob, path) pairs with commit index `origin`.
    fn tree(&mut self, tree: ObjectId, path: &mut String, origin: usize) {
        if !self.seen_trees.insert(tree) {
            return;
        }
        let (data, entries, error) = match self.read_tree(tree) {
            Ok(read) => read,
            Err(error) => return self.warnings.push(format!("warning: tree {tree}: {error}")),
        };
        let hash = self.repo.object_hash();
        let prefix_length = path.len();
        for entry in entries.iter() {
            let id = entry.id(&data, hash);
            if entry.is_tree {
                if self.seen_trees.contains(id) {
                    continue;
                }
            } else if let Some(pass) = self.packed.get_mut(id)
                && !pass.needs_paths()
            {
                // Most blobs: counted, no path needed (so none is built).
                pass.reached = true;
                continue;
            }
            if prefix_length > 0 {
                path.push('/');
            }
            path.push_str(&entry.name(&data).to_str_lossy());
            if entry.is_tree {
                self.tree(id.to_owned(), path, origin);
            } else {
                let paths = self.places.entry(id.to_owned()).or_default();
                if !paths.iter().any(|(known, _)| known == path) {
                    paths.push((path.clone(), origin));
                }
            }
            path.truncate(prefix_length);
        }
        if let Some(error) = error {
            self.warnings.push(format!("warning: tree {tree}: {error}"));
        }
    }
}

/// A reachable blob's scan, with every path it had (and the commit where it first had it).
struct ScannedBlob {
    paths: Vec<(String, usize)>,
    /// The path it was scanned at (empty when its scan does not depend on one), which
    /// prefixes the paths of its occurrences.
    scanned_at: String,
    content: ContentScan,
    /// Its size, when it was not scanned for being over the size limit.
    too_large: Option<u64>,
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
    let Packed {
        kept,
        commits,
        blobs: mut packed_blobs,
        packs_over_budget,
    } = decode_packs(&repo, matcher, key, options);
    scan.packs_over_budget = packs_over_budget;
    let commits = match commits_of(&repo, commits, &mut scan.warnings) {
        Ok(commits) => commits,
        Err(error) => {
            scan.warnings.push(format!("warning: {}: {error}", path.display()));
            return scan;
        }
    };
    scan.commits = commits.len() as u64;
    let mut walk = Walk {
        repo: &repo,
        kept: &kept,
        packed: &mut packed_blobs,
        seen_trees: HashSet::default(),
        places: HashMap::default(),
        warnings: Vec::new(),
    };
    let mut path_buffer = String::new();
    for (index, commit) in commits.iter().enumerate() {
        walk.tree(commit.tree, &mut path_buffer, index);
    }
    let Walk { places, warnings, .. } = walk;
    scan.warnings.extend(warnings);
    drop(kept);
    // Blobs the pass over the packs scanned are done (unreachable ones are dropped with
    // `packed_blobs`); the others are read and scanned now, at their first path.
    for (_, pass) in packed_blobs.extract_if(|_, pass| pass.reached) {
        let (content, _) = pass.blob.into_content();
        scan.blobs += content.files;
        scan.bytes += content.bytes;
        scan.skipped += content.skipped;
    }
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for (id, paths) in places {
        match packed_blobs.remove(&id) {
            Some(pass) if !(pass.may_be_export && crate::exports::export_depends_on_path(&paths[0].0)) => {
                let (content, too_large) = pass.blob.into_content();
                done.push(ScannedBlob {
                    paths,
                    scanned_at: String::new(),
                    content,
                    too_large,
                })
            }
            _ => pending.push((id, paths)),
        }
    }
    drop(packed_blobs);
    let shared = repo.into_sync();
    let scanned: Vec<ScannedBlob> = pending
        .into_par_iter()
        .map_init(
            || shared.to_thread_local(),
            |repo, (id, paths)| {
                let scanned_at = paths[0].0.clone();
                let mut too_large = None;
                let content = match repo.find_object(id) {
                    Ok(object) if object.data.len() as u64 > options.max_file_size => {
                        too_large = Some(object.data.len() as u64);
                        ContentScan::default()
                    }
                    Ok(object) => scan_content(matcher, key, &scanned_at, &object.data, options),
                    Err(error) => ContentScan {
                        warnings: vec![format!("warning: blob {id}: {error}")],
                        ..ContentScan::default()
                    },
                };
                ScannedBlob {
                    paths,
                    scanned_at,
                    content,
                    too_large,
                }
            },
        )
        .collect();
    let repository = path.display().to_string();
    for ScannedBlob {
        paths,
        scanned_at,
        content,
        too_large,
    } in done.into_iter().chain(scanned)
    {
        if let Some(bytes) = too_large {
            let (first_path, origin) = &paths[0];
            scan.skipped_large += 1;
            scan.warnings.push(format!(
                "warning: {first_path} (history of {repository}, commit {}): skipped, {bytes} bytes is over the {} byte limit",
                commits[*origin].id,
                options.max_file_size
            ));
        }
        scan.warnings.extend(content.warnings);
        scan.blobs += content.files;
        scan.bytes += content.bytes;
        scan.skipped += content.skipped;
        for occurrence in content.occurrences {
            // The blob was scanned once; report the secret at every path it had.
            let inner = occurrence.location.path.strip_prefix(&scanned_at).unwrap_or("");
            for (blob_path, origin) in &paths {
                let commit = &commits[*origin];
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
