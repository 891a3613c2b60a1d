//! Archives (zip, tar, tar.gz/tgz, gz), nested up to a depth limit, expanded in memory —
//! entries are never written to disk, so path-traversal names are harmless — under a
//! budget of total expanded bytes and entries per top-level file, which stops zip bombs.
//! Damaged archives become warnings; whatever was read before the damage is scanned.

use std::io::Read;

/// Limits for one top-level archive.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Archives inside archives, at most this deep (1: no nesting).
    pub max_depth: u32,
    /// Expanded bytes, at most, over all entries.
    pub max_total_bytes: u64,
    /// One entry's size, at most (the scan's `max_file_size`): a larger entry is read
    /// through, counted against `max_total_bytes`, and skipped, never held in memory.
    pub max_entry_bytes: u64,
    /// Entries, at most.
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_depth: 4,
            max_total_bytes: 1 << 30,
            max_entry_bytes: 256 << 20,
            max_entries: 100_000,
        }
    }
}

/// What an archive holds, as far as the budget allowed.
pub struct Expansion {
    /// Warnings (damage, limits reached), one line each.
    pub warnings: Vec<String>,
    /// Whether the archive could be opened at all. One that could not (bytes that begin
    /// like a zip but are none, a zip without its central directory, a gzip header over
    /// no deflate data) is no archive to the scan: its bytes are scanned as a file.
    pub opened: bool,
}

/// Kinds of archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// PKZIP.
    Zip,
    /// POSIX tar.
    Tar,
    /// gzip (possibly of a tar).
    Gzip,
}

/// Recognises an archive by its magic bytes.
pub fn archive_kind(bytes: &[u8]) -> Option<ArchiveKind> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(ArchiveKind::Zip)
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveKind::Gzip)
    } else if is_tar(bytes) {
        Some(ArchiveKind::Tar)
    } else {
        None
    }
}

struct Budget {
    limits: ArchiveLimits,
    bytes: u64,
    entries: u64,
    exhausted: bool,
}

/// Expands `bytes` (an archive found at `path`) and calls `visit(entry_path, entry_bytes)`
/// for every regular entry that is not itself an archive within the depth limit.
/// Entry paths are `outer!inner`.
pub fn expand(
    kind: ArchiveKind,
    path: &str,
    bytes: &[u8],
    limits: ArchiveLimits,
    visit: &mut dyn FnMut(&str, &[u8]),
) -> Expansion {
    let mut budget = Budget {
        limits,
        bytes: 0,
        entries: 0,
        exhausted: false,
    };
    let mut warnings = Vec::new();
    let opened = expand_at(kind, path, bytes, 1, &mut budget, &mut warnings, visit);
    Expansion { warnings, opened }
}

/// Reads an entry whole when it is at most `max_entry_bytes` and within the budget. A
/// larger entry is read through without being kept (its bytes still count against the
/// budget, so a bomb stops at the limit with at most one entry's worth in memory).
/// `None` when the entry is skipped, unreadable, or the budget runs out. `declared` is the
/// size the archive gives (untrusted): the buffer starts at that, up to the cap, so an
/// honest entry is read without the copies of a growing buffer.
fn read_capped(
    reader: &mut dyn Read,
    declared: u64,
    budget: &mut Budget,
    path: &str,
    warnings: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let remaining = budget.limits.max_total_bytes.saturating_sub(budget.bytes);
    let cap = remaining.min(budget.limits.max_entry_bytes);
    let mut content = Vec::with_capacity(declared.min(cap) as usize);
    if let Err(error) = (&mut *reader).take(cap).read_to_end(&mut content) {
        warnings.push(format!("warning: {path}: damaged entry: {error}"));
        if content.is_empty() {
            return None;
        }
        budget.bytes += content.len() as u64;
        return Some(content);
    }
    let read = content.len() as u64;
    // What follows past the cap, read through up to one byte past the budget.
    let past = std::io::copy(&mut (&mut *reader).take(remaining - read + 1), &mut std::io::sink()).unwrap_or(0);
    if past == 0 {
        budget.bytes += read;
        return Some(content);
    }
    drop(content);
    if read + past > remaining {
        budget.exhausted = true;
        warnings.push(format!(
            "warning: {path}: archive expansion stopped at the {} byte limit (possible archive bomb)",
            budget.limits.max_total_bytes
        ));
        return None;
    }
    budget.bytes += read + past;
    warnings.push(format!(
        "warning: {path}: skipped archive entry of {} bytes, over the {} byte file size limit",
        read + past,
        budget.limits.max_entry_bytes
    ));
    None
}

fn count_entry(budget: &mut Budget, path: &str, warnings: &mut Vec<String>) -> bool {
    if budget.exhausted {
        return false;
    }
    budget.entries += 1;
    if budget.entries > budget.limits.max_entries {
        budget.exhausted = true;
        warnings.push(format!(
            "warning: {path}: archive expansion stopped at the {} entry limit",
            budget.limits.max_entries
        ));
        return false;
    }
    true
}

fn deliver(
    entry_path: &str,
    content: &[u8],
    depth: u32,
    budget: &mut Budget,
    warnings: &mut Vec<String>,
    visit: &mut dyn FnMut(&str, &[u8]),
) {
    match archive_kind(content) {
        Some(kind) if depth < budget.limits.max_depth => {
            // An entry that only looks like an archive is an entry like any other.
            if !expand_at(kind, entry_path, content, depth + 1, budget, warnings, visit) {
                visit(entry_path, content);
            }
        }
        Some(_) => warnings.push(format!(
            "warning: {entry_path}: archive nested deeper than {} levels, not expanded",
            budget.limits.max_depth
        )),
        None => visit(entry_path, content),
    }
}

/// A gzip's own record of its (last member's) size, modulo 2^32: its last four bytes.
fn gzip_size(bytes: &[u8]) -> u64 {
    bytes
        .last_chunk::<4>()
        .map_or(0, |size| u64::from(u32::from_le_bytes(*size)))
}

/// The end of a tar header's `ustar` magic.
const TAR_MAGIC_END: usize = 262;

fn is_tar(bytes: &[u8]) -> bool {
    bytes.len() >= TAR_MAGIC_END && &bytes[257..TAR_MAGIC_END] == b"ustar"
}

/// The entries of a tar read from `reader`, one at a time; `false` when not even the
/// first entry's header could be read (the tar could not be opened).
fn expand_tar(
    reader: &mut dyn Read,
    path: &str,
    depth: u32,
    budget: &mut Budget,
    warnings: &mut Vec<String>,
    visit: &mut dyn FnMut(&str, &[u8]),
) -> bool {
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(error) => {
            warnings.push(format!("warning: {path}: damaged tar archive: {error}; {NOT_OPENED}"));
            return false;
        }
    };
    for (index, entry) in entries.enumerate() {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(error) if index == 0 => {
                warnings.push(format!("warning: {path}: damaged tar archive: {error}; {NOT_OPENED}"));
                return false;
            }
            Err(error) => {
                warnings.push(format!("warning: {path}: damaged tar archive: {error}"));
                return true;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|name| name.display().to_string())
            .unwrap_or_else(|_| "<unreadable name>".into());
        let entry_path = format!("{path}!{name}");
        if !count_entry(budget, path, warnings) {
            return true;
        }
        let declared = entry.size();
        match read_capped(&mut entry, declared, budget, &entry_path, warnings) {
            Some(content) => deliver(&entry_path, &content, depth, budget, warnings, visit),
            None if budget.exhausted => return true,
            None => {}
        }
    }
    true
}

/// What the warning about an archive that could not be opened adds.
const NOT_OPENED: &str = "scanned as a plain file";

/// Expands one archive; `false` when it could not be opened at all (see
/// [`Expansion::opened`]), with a warning saying so.
fn expand_at(
    kind: ArchiveKind,
    path: &str,
    bytes: &[u8],
    depth: u32,
    budget: &mut Budget,
    warnings: &mut Vec<String>,
    visit: &mut dyn FnMut(&str, &[u8]),
) -> bool {
    match kind {
        ArchiveKind::Gzip => {
            let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
            let inner_path = format!("{path}!{}", gunzipped_name(path));
            if !count_entry(budget, path, warnings) {
                return true;
            }
            // A .tar.gz is one archive, one level deep: its tar is not nested in it, and
            // is read as it is inflated, an entry at a time.
            let mut head = Vec::with_capacity(TAR_MAGIC_END);
            if let Err(error) = (&mut decoder).take(TAR_MAGIC_END as u64).read_to_end(&mut head) {
                if head.is_empty() {
                    warnings.push(format!("warning: {path}: damaged gzip data: {error}; {NOT_OPENED}"));
                    return false;
                }
                warnings.push(format!("warning: {path}: damaged gzip data: {error}"));
                return true;
            }
            let mut inflated = std::io::Cursor::new(head).chain(decoder);
            if is_tar(inflated.get_ref().0.get_ref()) {
                expand_tar(&mut inflated, &inner_path, depth, budget, warnings, visit);
            } else if let Some(content) = read_capped(&mut inflated, gzip_size(bytes), budget, &inner_path, warnings) {
                deliver(&inner_path, &content, depth, budget, warnings, visit);
            }
            true
        }
        ArchiveKind::Tar => expand_tar(&mut std::io::Cursor::new(bytes), path, depth, budget, warnings, visit),
        ArchiveKind::Zip => {
            let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
                Ok(archive) => archive,
                Err(error) => {
                    warnings.push(format!("warning: {path}: damaged zip archive: {error}; {NOT_OPENED}"));
                    return false;
                }
            };
            for index in 0..archive.len() {
                let mut file = match archive.by_index(index) {
                    Ok(file) => file,
                    Err(error) => {
                        warnings.push(format!("warning: {path}: zip entry {index}: {error}"));
                        continue;
                    }
                };
                if !file.is_file() {
                    continue;
                }
                let name = file
                    .name()
                    .map(|name| name.into_owned())
                    .unwrap_or_else(|_| format!("<entry {index}>"));
                let entry_path = format!("{path}!{name}");
                if !count_entry(budget, path, warnings) {
                    return true;
                }
                let declared = file.size();
                match read_capped(&mut file, declared, budget, &entry_path, warnings) {
                    Some(content) => deliver(&entry_path, &content, depth, budget, warnings, visit),
                    None if budget.exhausted => return true,
                    None => {}
                }
            }
            true
        }
    }
}

/// The name of a gzip's content: the path's file name without `.gz` (`.tgz` becomes `.tar`).
fn gunzipped_name(path: &str) -> String {
    let name = path.rsplit(['/', '!']).next().unwrap_or(path);
    if let Some(stem) = name.strip_suffix(".tgz") {
        format!("{stem}.tar")
    } else {
        name.strip_suffix(".gz").unwrap_or(name).to_string()
    }
}
