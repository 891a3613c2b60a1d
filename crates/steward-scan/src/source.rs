//! Inputs: files and directories, walked in parallel (each walker thread scans the files
//! it finds), read into a reused per-thread buffer or memory-mapped when large, with
//! binary sniffing and a size cap. Unreadable inputs become warnings; the scan goes on.

use crate::archive::{ArchiveLimits, archive_kind, expand};
use crate::finding::{FindingLocation, Occurrence, ScanReport, ScanStats, group};
use crate::matcher::{ALLOW_MARKER, Match, Matcher};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use steward_core::{Fingerprint, FingerprintKey, canonical_secret, redact_secret};

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files larger than this are skipped (and counted).
    pub max_file_size: u64,
    /// Honour `.gitignore`/`.ignore` files while walking.
    pub respect_gitignore: bool,
    /// Keep the plain secrets in the report (local output only).
    pub show_secrets: bool,
    /// Expand archives (zip, tar, gz), within these limits; `None` scans them as bytes.
    pub archives: Option<ArchiveLimits>,
    /// Also scan the full history of directories that are git repositories.
    pub history: bool,
    /// Memory, in bytes, that a history scan may use for decoded git objects: the delta
    /// tree of the pack being traversed and the trees and commits kept for the walk. A
    /// pack whose delta tree would not fit is read object by object instead (slower).
    pub history_memory: u64,
    /// Live counters a caller may display while the scan runs.
    pub progress: Option<std::sync::Arc<Progress>>,
}

/// Counters updated while a scan runs (for a progress display; the report has the totals).
#[derive(Debug, Default)]
pub struct Progress {
    /// Files and blobs scanned so far.
    pub files: std::sync::atomic::AtomicU64,
    /// Bytes scanned so far.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Secret occurrences found so far.
    pub occurrences: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn add(&self, scanned: &ContentScan) {
        use std::sync::atomic::Ordering::Relaxed;
        self.files.fetch_add(scanned.files, Relaxed);
        self.bytes.fetch_add(scanned.bytes, Relaxed);
        self.occurrences.fetch_add(scanned.occurrences.len() as u64, Relaxed);
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_size: 256 * 1024 * 1024,
            respect_gitignore: false,
            show_secrets: false,
            archives: Some(ArchiveLimits::default()),
            history: true,
            history_memory: DEFAULT_HISTORY_MEMORY,
            progress: None,
        }
    }
}

/// Default of [`ScanOptions::history_memory`]: 320 MiB.
pub const DEFAULT_HISTORY_MEMORY: u64 = 320 << 20;

/// Files read into memory below this size; mapped above it.
const MAP_THRESHOLD: u64 = 1 << 20;
/// Bytes inspected for a NUL to call a file binary.
const SNIFF_LENGTH: usize = 8192;

/// What the walker threads have found so far.
struct Collected {
    stats: ScanStats,
    occurrences: Vec<Occurrence>,
}

impl Collected {
    /// Adds what scanning one file found.
    fn add(&mut self, scanned: ContentScan) {
        let occurrences = self.stats.absorb(scanned);
        self.occurrences.extend(occurrences);
    }
}

/// Walks `paths` (files or directories; `.git` directories are not entered) with as many
/// threads as rayon's pool has, each scanning the files it meets: the walk overlaps the
/// scan instead of preceding it. Returns the git repositories met below the roots: a
/// directory holding `.git`, and a bare repository in a directory named `*.git` (whose
/// files are git's storage, not entered either). Of a repository's storage only its
/// `config` is read: remote URLs there carry tokens (`https://user:token@host/…`, as CI
/// checkouts and `git clone` with credentials leave them), and no history holds it; the
/// objects are read by the history scan.
fn scan_files(
    matcher: &Matcher,
    key: &FingerprintKey,
    paths: &[PathBuf],
    options: &ScanOptions,
    collected: &Mutex<Collected>,
) -> Vec<PathBuf> {
    let Some((first, others)) = paths.split_first() else {
        return Vec::new();
    };
    let repositories = std::sync::Arc::new(Mutex::new(Vec::new()));
    let found = std::sync::Arc::clone(&repositories);
    let mut walker = ignore::WalkBuilder::new(first);
    for root in others {
        walker.add(root);
    }
    walker
        .standard_filters(false)
        .git_ignore(options.respect_gitignore)
        .git_exclude(options.respect_gitignore)
        .ignore(options.respect_gitignore)
        .parents(options.respect_gitignore)
        .require_git(false)
        .follow_links(false)
        .threads(rayon::current_num_threads())
        .filter_entry(move |entry| {
            // A repository met is recorded, and its git storage not entered.
            let name = entry.file_name();
            let repository = if name == ".git" {
                entry.path().parent()
            } else if entry.depth() > 0
                && name.as_encoded_bytes().ends_with(b".git")
                && entry.file_type().is_some_and(|kind| kind.is_dir())
                && crate::git::is_bare_repository(entry.path())
            {
                Some(entry.path())
            } else {
                return true;
            };
            if let Some(repository) = repository {
                found
                    .lock()
                    .expect("repositories lock")
                    .push((repository.to_path_buf(), entry.path().join("config")));
            }
            false
        });
    walker.build_parallel().run(|| {
        Box::new(|entry| {
            match entry {
                Ok(entry) => match entry.file_type() {
                    Some(kind) if kind.is_file() => scan_file(matcher, key, entry.path(), options, collected),
                    // A path given that is a pipe, FIFO or device (`/dev/stdin` fed by a
                    // pipe, `<(…)`) is read as a stream: it was asked for.
                    Some(kind) if entry.depth() == 0 && !kind.is_dir() => {
                        scan_file(matcher, key, entry.path(), options, collected)
                    }
                    // One met below a directory is not opened: a FIFO with no writer would
                    // block the scan forever.
                    Some(kind) if !kind.is_dir() && !kind.is_symlink() => collected
                        .lock()
                        .expect("scan results lock")
                        .stats
                        .warnings
                        .push(format!(
                            "warning: {}: {}, not read",
                            entry.path().display(),
                            special_file_kind(kind)
                        )),
                    // Links below a root are not followed (a loop, or a link out of the
                    // tree, costs nothing), only counted: a warning each would stop every
                    // `--record` scan of a tree holding links (`node_modules/.bin`) from
                    // marking vanished copies removed.
                    Some(kind) if kind.is_symlink() => {
                        collected.lock().expect("scan results lock").stats.skipped_symlinks += 1
                    }
                    _ => {}
                },
                Err(error) => collected
                    .lock()
                    .expect("scan results lock")
                    .stats
                    .warnings
                    .push(format!("warning: {error}")),
            }
            ignore::WalkState::Continue
        })
    });
    let met = std::mem::take(&mut *repositories.lock().expect("repositories lock"));
    met.into_iter()
        .map(|(repository, config)| {
            // A worktree's or submodule's `.git` is a file naming the git directory
            // elsewhere: no config here.
            if std::fs::symlink_metadata(&config).is_ok_and(|metadata| metadata.is_file()) {
                scan_file(matcher, key, &config, options, collected);
            }
            repository
        })
        .collect()
}

thread_local! {
    /// Each thread's buffer for files read whole: reused, so that reading a small file
    /// allocates nothing.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a file that is neither a regular file, a directory nor a symbolic link is.
fn special_file_kind(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    let _ = kind;
    "not a regular file"
}

/// Opens, reads and scans one file (opened once: its size comes from the open handle); a
/// pipe, FIFO or device is read as a stream (see [`scan_stream`]).
fn scan_file(
    matcher: &Matcher,
    key: &FingerprintKey,
    path: &Path,
    options: &ScanOptions,
    collected: &Mutex<Collected>,
) {
    let shown = path.to_string_lossy();
    let warn = |message: String| {
        collected
            .lock()
            .expect("scan results lock")
            .stats
            .warnings
            .push(message);
    };
    let opened = std::fs::File::open(path).and_then(|file| file.metadata().map(|metadata| (file, metadata)));
    let (mut file, size) = match opened {
        Ok((file, metadata)) if !metadata.is_file() => {
            return scan_stream(matcher, key, &shown, file, options, collected);
        }
        Ok((file, metadata)) => (file, metadata.len()),
        Err(error) => return warn(format!("warning: {shown}: {error}")),
    };
    if size > options.max_file_size {
        let mut collected = collected.lock().expect("scan results lock");
        collected.stats.skipped_large += 1;
        collected.stats.warnings.push(format!(
            "warning: {shown}: skipped, {size} bytes is over the {} byte limit",
            options.max_file_size
        ));
        return;
    }
    let scanned = if size >= MAP_THRESHOLD {
        // SAFETY: the map is read-only and dropped before this function returns; a file
        // truncated underneath us by another process is the documented risk of mapping,
        // accepted as for every mapping scanner (it can at worst end the process with
        // SIGBUS).
        match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => scan_content(matcher, key, &shown, &map, options),
            Err(error) => return warn(format!("warning: {shown}: {error}")),
        }
    } else {
        let read = READ_BUFFER.with_borrow_mut(|buffer| {
            let length = read_into(&mut file, size as usize, buffer)?;
            Ok::<_, std::io::Error>(scan_content(matcher, key, &shown, &buffer[..length], options))
        });
        match read {
            Ok(scanned) => scanned,
            Err(error) => return warn(format!("warning: {shown}: {error}")),
        }
    };
    collected.lock().expect("scan results lock").add(scanned);
}

/// Reads a pipe, FIFO or device to its end, whose size is known only then, up to the file
/// size limit, and scans it as a file; past the limit it is skipped as a large file is.
fn scan_stream(
    matcher: &Matcher,
    key: &FingerprintKey,
    shown: &str,
    stream: std::fs::File,
    options: &ScanOptions,
    collected: &Mutex<Collected>,
) {
    use std::io::Read;
    let mut content = Vec::new();
    let read = stream
        .take(options.max_file_size.saturating_add(1))
        .read_to_end(&mut content);
    let scanned = match read {
        Ok(_) if content.len() as u64 <= options.max_file_size => {
            Some(scan_content(matcher, key, shown, &content, options))
        }
        _ => None,
    };
    let mut collected = collected.lock().expect("scan results lock");
    match (read, scanned) {
        (Err(error), _) => collected.stats.warnings.push(format!("warning: {shown}: {error}")),
        (Ok(_), None) => {
            collected.stats.skipped_large += 1;
            collected.stats.warnings.push(format!(
                "warning: {shown}: skipped, the stream is over the {} byte limit",
                options.max_file_size
            ));
        }
        (Ok(_), Some(scanned)) => collected.add(scanned),
    }
}

/// Reads up to `size` bytes (the size the open file reported) into the front of `buffer`,
/// which only ever grows, and returns how many were read (fewer when the file shrank).
fn read_into(file: &mut std::fs::File, size: usize, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    if buffer.len() < size {
        buffer.resize(size, 0);
    }
    let mut filled = 0;
    while filled < size {
        match file.read(&mut buffer[filled..size]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// What scanning one piece of content (a file or a git blob) found.
#[derive(Debug, Default)]
pub struct ContentScan {
    /// Secret occurrences.
    pub occurrences: Vec<Occurrence>,
    /// Text blobs scanned (1, or the entries of an archive).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Binary blobs skipped.
    pub skipped: u64,
    /// Archives expanded.
    pub archives: u64,
    /// Problems met.
    pub warnings: Vec<String>,
}

/// Whether `blob` is expanded as an archive, whose scan depends on the path it is found at
/// (entries are named after it, a gzip's content by its name, and warnings name it).
pub fn expands_as_archive(blob: &[u8], options: &ScanOptions) -> bool {
    options.archives.is_some() && archive_kind(blob).is_some()
}

/// Scans one piece of content found at `path`: expands it when it is an archive, skips it
/// when binary, and otherwise looks for secrets.
pub fn scan_content(
    matcher: &Matcher,
    key: &FingerprintKey,
    path: &str,
    blob: &[u8],
    options: &ScanOptions,
) -> ContentScan {
    let scanned = scan_content_inner(matcher, key, path, blob, options);
    if let Some(progress) = &options.progress {
        progress.add(&scanned);
    }
    scanned
}

fn scan_content_inner(
    matcher: &Matcher,
    key: &FingerprintKey,
    path: &str,
    blob: &[u8],
    options: &ScanOptions,
) -> ContentScan {
    let mut scanned = ContentScan::default();
    if let (Some(limits), Some(kind)) = (options.archives, archive_kind(blob)) {
        // An entry is a file: no larger than files may be.
        let limits = ArchiveLimits {
            max_entry_bytes: limits.max_entry_bytes.min(options.max_file_size),
            ..limits
        };
        let expansion = expand(
            kind,
            path,
            blob,
            limits,
            &mut |entry_path, entry| match text_of(entry) {
                None => scanned.skipped += 1,
                Some(text) => {
                    scanned.files += 1;
                    scanned.bytes += entry.len() as u64;
                    scanned
                        .occurrences
                        .extend(scan_text(matcher, key, entry_path, &text, options.show_secrets));
                }
            },
        );
        scanned.warnings.extend(expansion.warnings);
        if expansion.opened {
            scanned.archives += 1;
            return scanned;
        }
        // Not an archive after all (its warning says so): scanned as the file it is.
    }
    if let Some(text) = text_of(blob) {
        scanned.files += 1;
        scanned.bytes += blob.len() as u64;
        scanned.occurrences = scan_text(matcher, key, path, &text, options.show_secrets);
    } else {
        scanned.skipped += 1;
    }
    scanned
}

/// The text of a blob to scan: the blob itself (after a UTF-8 byte order mark), or UTF-8
/// for UTF-16 with a byte order mark (what Windows PowerShell writes, and `.reg` exports),
/// where lines and columns are then those of the text; `None` for a binary blob (a NUL
/// among its first bytes).
fn text_of(blob: &[u8]) -> Option<Cow<'_, [u8]>> {
    let big_endian = match blob {
        [0xFF, 0xFE, ..] if decodes_as_utf16(&blob[2..], false) => false,
        [0xFE, 0xFF, ..] if decodes_as_utf16(&blob[2..], true) => true,
        // A UTF-8 byte order mark is no text: without it, `^` rules see line 1 and
        // columns count from its first character.
        [0xEF, 0xBB, 0xBF, rest @ ..] => return (!is_binary(rest)).then_some(Cow::Borrowed(rest)),
        _ => return (!is_binary(blob)).then_some(Cow::Borrowed(blob)),
    };
    let units = blob[2..].chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let text: String = char::decode_utf16(units)
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    (!is_binary(text.as_bytes())).then(|| Cow::Owned(text.into_bytes()))
}

/// Whether bytes after a UTF-16 byte order mark are UTF-16 text: no unpaired surrogate,
/// and at least one ASCII character (a line break, a space, a digit; in bytes, a NUL).
/// Text files without NUL bytes that merely begin with `FF FE` (or `FE FF`) decode to
/// pairs of bytes read as CJK characters, never as ASCII: they are scanned as bytes. A
/// UTF-16 text without any ASCII character could hold no ASCII secret anyway.
fn decodes_as_utf16(bytes: &[u8], big_endian: bool) -> bool {
    let units = bytes.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let mut has_ascii = false;
    for unit in char::decode_utf16(units) {
        match unit {
            Err(_) => return false,
            Ok(character) => has_ascii |= character.is_ascii(),
        }
    }
    has_ascii
}

/// Scans a text blob whole; a Slack, Jira or notebook export also text by text, so that
/// a secret in a field the export reads names its channel and message, issue and comment,
/// or cell. The whole scan still stands for the rest: a secret in a field no export reader
/// knows (attachments, custom fields, error outputs…), or in a file merely taken for an
/// export (a dated JSON log), is found at its line and column. A secret found both ways is
/// reported once, in the export's terms.
///
/// JSON that writes `/` as `\/` (Slack exports, PHP's `json_encode`) is scanned whole with
/// `\/` read as `/` (see [`Unslashed`]), so that URL-shaped secrets (webhooks, database
/// URIs) match in any field, at their line and column in the file.
fn scan_text(matcher: &Matcher, key: &FingerprintKey, path: &str, blob: &[u8], show_secrets: bool) -> Vec<Occurrence> {
    let unslashed = Unslashed::of(blob);
    let scanned = unslashed.as_ref().map_or(blob, |unslashed| &unslashed.text);
    let whole = matcher.find(scanned);
    let Some(texts) = crate::exports::split_export(path, blob) else {
        return occurrences_at(whole, key, path, blob, unslashed.as_ref(), show_secrets);
    };
    let mut occurrences = Vec::new();
    // Every secret the export pass saw, allowed or not, and those it reports (one per
    // occurrence, in order).
    let mut in_export: Vec<&[u8]> = Vec::new();
    let mut reported: Vec<&[u8]> = Vec::new();
    for text in &texts {
        let bytes = text.text.as_bytes();
        // A `steward:allow` anywhere in a message's or cell's field allows its secrets
        // (not a physical line of the file, which in a compact export holds every message
        // of a day). An allowed secret is still the export's: the whole-document pass
        // does not report it either.
        let mut found = matcher.find_ignoring_allow_markers(bytes);
        in_export.extend(found.iter().map(|found| &bytes[found.start..found.end]));
        if memchr::memmem::find(bytes, ALLOW_MARKER).is_some() {
            found.clear();
        }
        reported.extend(found.iter().map(|found| &bytes[found.start..found.end]));
        for mut occurrence in occurrences_at(found, key, path, bytes, None, show_secrets) {
            let (place, location) = (&text.place, &mut occurrence.location);
            location.channel = place.channel.clone();
            location.message_ts = place.message_ts.clone();
            location.issue_key = place.issue_key.clone();
            location.comment_id = place.comment_id.clone();
            location.cell = place.cell;
            location.field = Some(place.field.clone());
            occurrences.push(occurrence);
        }
    }
    // In the document a secret is JSON-escaped (`\/`, `\u0026`…), and an open-ended
    // match runs on over an escaped line break (`…K\nplease`): a whole-file match is the
    // export's own when, read as JSON string text, it holds a secret the export pass found.
    // Its place in the file becomes the export copy's `file_line` and `file_column` (the
    // first whole-file match not yet given to a copy, in document order), which SARIF
    // needs: its regions count in the file.
    let whole_texts: Vec<Cow<'_, [u8]>> = whole
        .iter()
        .map(|found| json_string_text(&scanned[found.start..found.end]))
        .collect();
    let mut given = vec![false; whole.len()];
    let mut positions = Positions::new(blob);
    let file_places: Vec<(usize, usize)> = whole
        .iter()
        .map(|found| {
            positions.at(unslashed
                .as_ref()
                .map_or(found.start, |unslashed| unslashed.original_offset(found.start)))
        })
        .collect();
    for (occurrence, secret) in occurrences.iter_mut().zip(&reported) {
        let holding = (0..whole.len())
            .find(|index| !given[*index] && memchr::memmem::find(&whole_texts[*index], secret).is_some());
        if let Some(index) = holding {
            given[index] = true;
            let (line, column) = file_places[index];
            occurrence.location.file_line = Some(line);
            occurrence.location.file_column = Some(column);
        }
    }
    let elsewhere = whole
        .into_iter()
        .zip(&whole_texts)
        .filter(|(_, text)| {
            !in_export
                .iter()
                .any(|secret| memchr::memmem::find(text, secret).is_some())
        })
        .map(|(found, _)| found)
        .collect();
    occurrences.extend(occurrences_at(
        elsewhere,
        key,
        path,
        blob,
        unslashed.as_ref(),
        show_secrets,
    ));
    occurrences
}

/// A JSON document's text with every `\/` escape read as `/`, which JSON allows and some
/// writers always use (Slack exports, PHP's `json_encode`): a URL-shaped secret written
/// `https:\/\/hooks.slack.com\/services\/…` matches no rule, and a secret holding a `/`
/// would match cut short, under another fingerprint than the credential's. Only `\/`
/// changes (a `\\` stays as it is, so `\\/` is a backslash and a slash), so lines are
/// those of the document and an offset maps back by counting the backslashes dropped
/// before it.
struct Unslashed {
    /// The text with each `\/` read as `/`.
    text: Vec<u8>,
    /// Offsets in `text` of the slashes that were escaped, ascending.
    slashes: Vec<usize>,
}

impl Unslashed {
    /// The unslashed text of `blob` when it is JSON (a document, or JSON lines) holding a
    /// `\/`; `None` otherwise, which is what nearly every file costs: a look at its first
    /// byte, and for JSON a search for `\/`.
    fn of(blob: &[u8]) -> Option<Unslashed> {
        crate::exports::json_opening(blob)?;
        memchr::memmem::find(blob, b"\\/")?;
        // Outside JSON strings `\/` means something else (a regex in INI, say).
        if !crate::exports::is_json_document(blob) {
            return None;
        }
        let mut text = Vec::with_capacity(blob.len());
        let mut slashes = Vec::new();
        // From the start: the `\/` found may be the end of a `\\/`.
        let mut rest = 0;
        while let Some(found) = memchr::memchr(b'\\', &blob[rest..]) {
            let backslash = rest + found;
            text.extend_from_slice(&blob[rest..backslash]);
            match blob.get(backslash + 1) {
                Some(b'/') => {
                    slashes.push(text.len());
                    text.push(b'/');
                }
                // Any other escape is kept whole, so its second byte is not read as the
                // start of one.
                Some(&escaped) => text.extend_from_slice(&[b'\\', escaped]),
                None => text.push(b'\\'),
            }
            rest = (backslash + 2).min(blob.len());
        }
        text.extend_from_slice(&blob[rest..]);
        (!slashes.is_empty()).then_some(Unslashed { text, slashes })
    }

    /// The offset in the document of `offset` in the text: a secret starting with an
    /// escaped slash starts at its backslash.
    fn original_offset(&self, offset: usize) -> usize {
        offset + self.slashes.partition_point(|slash| *slash < offset)
    }
}

/// `raw` read as the inside of a JSON string (every escape decoded, `\u` ones and
/// surrogate pairs included); when it is not one (an escape cut at an end), with only its
/// two-character escapes read.
fn json_string_text(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    if let Ok(text) = serde_json::from_slice::<String>(&quoted) {
        return Cow::Owned(text.into_bytes());
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            unescaped.push(byte);
            continue;
        }
        match bytes.next() {
            Some(escaped @ (b'/' | b'"' | b'\\')) => unescaped.push(escaped),
            Some(b'n') => unescaped.push(b'\n'),
            Some(b't') => unescaped.push(b'\t'),
            Some(b'r') => unescaped.push(b'\r'),
            Some(b'b') => unescaped.push(0x08),
            Some(b'f') => unescaped.push(0x0C),
            Some(other) => unescaped.extend([b'\\', other]),
            None => unescaped.push(b'\\'),
        }
    }
    Cow::Owned(unescaped)
}

/// Whether a blob looks binary: a NUL byte among its first bytes.
fn is_binary(blob: &[u8]) -> bool {
    memchr::memchr(0, &blob[..blob.len().min(SNIFF_LENGTH)]).is_some()
}

/// Finds the secrets of one blob and turns them into occurrences at `path`.
pub fn scan_blob(
    matcher: &Matcher,
    key: &FingerprintKey,
    path: &str,
    blob: &[u8],
    show_secrets: bool,
) -> Vec<Occurrence> {
    occurrences_at(matcher.find(blob), key, path, blob, None, show_secrets)
}

/// The occurrences of `matches` (sorted by start) in `blob`, at `path`; with `unslashed`,
/// the matches are in its text, from which the secrets are taken, and placed at their
/// line and column in `blob`.
fn occurrences_at(
    matches: Vec<Match>,
    key: &FingerprintKey,
    path: &str,
    blob: &[u8],
    unslashed: Option<&Unslashed>,
    show_secrets: bool,
) -> Vec<Occurrence> {
    let mut occurrences = Vec::with_capacity(matches.len());
    let mut positions = Positions::new(blob);
    for found in matches {
        let (secret, start) = match unslashed {
            Some(unslashed) => (
                &unslashed.text[found.start..found.end],
                unslashed.original_offset(found.start),
            ),
            None => (&blob[found.start..found.end], found.start),
        };
        let (line, column) = positions.at(start);
        // A private key's copies differ in layout (indented, `\n`-escaped): each is
        // fingerprinted in the form `credential add` reads from a `.pem` file.
        let secret = canonical_secret(secret);
        let text = String::from_utf8_lossy(&secret);
        occurrences.push(Occurrence {
            rule: found.rule,
            fingerprint: Fingerprint::compute(key, &secret),
            preview: redact_secret(&text),
            secret: show_secrets.then(|| text.into_owned()),
            location: FindingLocation {
                path: path.to_string(),
                line,
                column,
                git: None,
                channel: None,
                message_ts: None,
                issue_key: None,
                comment_id: None,
                cell: None,
                field: None,
                file_line: None,
                file_column: None,
            },
        });
    }
    occurrences
}

/// Lines and columns (1-based; columns in characters) of offsets in one blob, each
/// counted on from the previous offset: matches come sorted by start, so a blob's bytes
/// are counted once however many secrets one line holds (counting each column from its
/// line's start made a minified line with thousands of secrets quadratic).
struct Positions<'blob> {
    blob: &'blob [u8],
    /// Line of `counted_to`.
    line: usize,
    /// Column of `counted_to`.
    column: usize,
    /// Offset up to which lines and columns are counted.
    counted_to: usize,
}

impl<'blob> Positions<'blob> {
    fn new(blob: &'blob [u8]) -> Positions<'blob> {
        Positions {
            blob,
            line: 1,
            column: 1,
            counted_to: 0,
        }
    }

    /// The line and column of `offset`.
    fn at(&mut self, offset: usize) -> (usize, usize) {
        if offset < self.counted_to {
            // Not in order: count again from the start (never the case for sorted matches).
            *self = Positions::new(self.blob);
        }
        let (from, blob) = (self.counted_to, self.blob);
        let stretch = &blob[from..offset];
        // Columns count characters (UTF-8 continuation bytes do not start one).
        let characters = |bytes: &[u8]| bytes.iter().filter(|byte| (**byte & 0xC0) != 0x80).count();
        // A line ends at LF, CRLF or a lone CR (old Mac files): a CR followed by an LF is
        // not a break of its own (the LF is).
        let is_break = |position: usize| blob[position] == b'\n' || blob.get(position + 1) != Some(&b'\n');
        let breaks = memchr::memchr2_iter(b'\n', b'\r', stretch).filter(|position| is_break(from + position));
        let mut last_break = None;
        for position in breaks {
            self.line += 1;
            last_break = Some(position);
        }
        match last_break {
            Some(last_break) => self.column = 1 + characters(&stretch[last_break + 1..]),
            None => self.column += characters(stretch),
        }
        self.counted_to = offset;
        (self.line, self.column)
    }
}

/// Why a path given to scan cannot be scanned, when it cannot: it does not exist, it is a
/// symbolic link to nothing (or a loop of links), or it cannot be read (no permission, a
/// socket). The CLI refuses such a path (exit 2: a typo or a broken link in a CI job must
/// not pass as "no secrets found"); [`scan_paths`] warns and scans the others. A pipe,
/// FIFO or device is not opened here (a FIFO would wait for a writer): the scan reads it.
pub fn unscannable_root(path: &Path) -> Option<String> {
    let shown = path.display();
    if let Err(error) = std::fs::symlink_metadata(path) {
        return Some(match error.kind() {
            std::io::ErrorKind::NotFound => format!("{shown}: no such file or directory"),
            _ => format!("{shown}: {error}"),
        });
    }
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let target = std::fs::read_link(path).map_or_else(|_| "?".into(), |target| target.display().to_string());
            return Some(format!("{shown}: symbolic link to {target}, which does not exist"));
        }
        Err(error) => return Some(format!("{shown}: {error}")),
    };
    let readable = if metadata.is_dir() {
        std::fs::read_dir(path).map(drop)
    } else if metadata.is_file() {
        std::fs::File::open(path).map(drop)
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if metadata.file_type().is_socket() {
                return Some(format!("{shown}: a socket, not a file"));
            }
        }
        Ok(())
    };
    readable.err().map(|error| format!("{shown}: cannot read: {error}"))
}

/// Scans files and directories.
pub fn scan_paths(matcher: &Matcher, key: &FingerprintKey, paths: &[PathBuf], options: &ScanOptions) -> ScanReport {
    let started = std::time::Instant::now();
    let mut stats = ScanStats::default();
    // A path that cannot be scanned is a warning, once; the walk takes the others.
    let mut present = Vec::with_capacity(paths.len());
    for path in paths {
        match unscannable_root(path) {
            None => present.push(path.clone()),
            Some(problem) => stats.warnings.push(format!("warning: {problem}")),
        }
    }
    let warned_before_walk = stats.warnings.len();
    let collected = Mutex::new(Collected {
        stats,
        occurrences: Vec::new(),
    });
    let met = scan_files(matcher, key, &present, options, &collected);
    let Collected {
        mut stats,
        mut occurrences,
    } = collected.into_inner().expect("scan results lock");
    // Walker threads finish files in no particular order.
    stats.warnings[warned_before_walk..].sort();
    if options.history {
        // The roots that are repositories, then those met below them, each once.
        let roots = paths
            .iter()
            .filter(|root| root.is_dir() && crate::git::is_repository(root))
            .cloned();
        let mut seen = std::collections::HashSet::new();
        let mut repositories: Vec<PathBuf> = roots
            .chain(met)
            .filter(|repository| seen.insert(std::fs::canonicalize(repository).unwrap_or_else(|_| repository.clone())))
            .collect();
        repositories.sort();
        for root in repositories {
            let history = crate::git::scan_history(matcher, key, &root, options);
            stats.commits += history.commits;
            stats.blobs += history.blobs;
            stats.files += history.blobs;
            stats.bytes += history.bytes;
            stats.skipped_binary += history.skipped;
            stats.skipped_large += history.skipped_large;
            stats.packs_over_budget += history.packs_over_budget;
            stats.warnings.extend(history.warnings);
            stats.repositories.push(root.display().to_string());
            occurrences.extend(history.occurrences);
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    ScanReport {
        findings: group(occurrences, matcher.rules()),
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_buffer_yields_only_the_file_just_read() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let long = dir.path().join("long.txt");
        let short = dir.path().join("short.txt");
        std::fs::write(&long, b"a much longer first file").expect("write");
        std::fs::write(&short, b"short").expect("write");
        let mut buffer = Vec::new();
        for (path, expected) in [(&long, &b"a much longer first file"[..]), (&short, b"short")] {
            let mut file = std::fs::File::open(path).expect("open");
            let length = read_into(&mut file, expected.len(), &mut buffer).expect("read");
            assert_eq!(&buffer[..length], expected);
        }
        // A file that shrank after its size was taken: what is there, no stale bytes.
        let mut file = std::fs::File::open(&short).expect("open");
        let length = read_into(&mut file, 100, &mut buffer).expect("read");
        assert_eq!(&buffer[..length], b"short");
    }

    #[test]
    fn json_slashes_are_unescaped_and_offsets_map_back() {
        let blob = br#"{"a":"x\/y","b":"c:\\/d","c":"\"\/"}"#;
        let unslashed = Unslashed::of(blob).expect("JSON with \\/");
        assert_eq!(unslashed.text, br#"{"a":"x/y","b":"c:\\/d","c":"\"/"}"#);
        for (offset, byte) in unslashed.text.iter().enumerate() {
            let original = unslashed.original_offset(offset);
            if *byte == b'/' && unslashed.slashes.contains(&offset) {
                assert_eq!(&blob[original..original + 2], br"\/", "{offset}");
            } else {
                assert_eq!(blob[original], *byte, "{offset}");
            }
        }
        assert_eq!(unslashed.original_offset(unslashed.text.len()), blob.len());
        // JSON lines too; not what is no JSON, holds no `\/` or only `\\/`.
        assert!(Unslashed::of(b"{\"a\":\"\\/\"}\n{\"b\":1}\n").is_some());
        assert!(Unslashed::of(b"[section]\npattern = a\\/b\n").is_none());
        assert!(Unslashed::of(b"{\"a\":\"x/y\"}").is_none());
        assert!(Unslashed::of(br#"{"a":"c:\\/d"}"#).is_none());
        assert!(Unslashed::of(b"a\\/b").is_none());
    }

    proptest::proptest! {
        /// Any JSON string written with every `/` as `\/` reads back, unslashed, as the same
        /// JSON with plain slashes, and each byte of the copy maps back to itself (or to
        /// the `\/` it came from) in the document.
        #[test]
        fn unslashing_any_json_string_keeps_its_value_and_its_places(value in "[a-z/\\\\\"\n é]{0,40}") {
            let plain = serde_json::to_string(&vec![value.clone()]).unwrap();
            let document = plain.replace('/', "\\/");
            match Unslashed::of(document.as_bytes()) {
                None => proptest::prop_assert!(!value.contains('/')),
                Some(unslashed) => {
                    proptest::prop_assert_eq!(&unslashed.text, plain.as_bytes());
                    for (offset, byte) in unslashed.text.iter().enumerate() {
                        let original = unslashed.original_offset(offset);
                        if unslashed.slashes.binary_search(&offset).is_ok() {
                            proptest::prop_assert_eq!(&document.as_bytes()[original..original + 2], b"\\/");
                        } else {
                            proptest::prop_assert_eq!(document.as_bytes()[original], *byte);
                        }
                    }
                }
            }
        }
    }
}
