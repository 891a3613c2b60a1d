//! Reading steward's inventory files (YAML, JSON, CSV) into import records. Every error
//! names the file, the line and the field, so a user can fix the file.
//!
//! A file is read in two steps so that memory does not grow with it. [`Inventory::open`]
//! maps the file, reads everything but the identities (`version`, `parties`) and finds
//! where each identity is: the byte range of each element of the JSON `identities` array
//! (borrowed, not parsed), the start of each item of the YAML `identities` block sequence
//! (found from the layout of lines, see `yaml_items`), or, for CSV, the number of
//! records. [`Inventory::identities`] then parses one identity at a time while the store
//! imports them; a bad record part-way ends the import, which rolls back, so nothing is
//! written either way. YAML that the line layout cannot split safely (anchors and aliases,
//! flow style, directives, several documents, tabs) is parsed as one document instead, as
//! before, with memory in proportion to the file.

use crate::cli::FileFormat;
use crate::records::{
    FILE_FORMAT_VERSION, IDENTITY_COLUMNS, IdentityRecord, InventoryFile, PartyRecord, ScopeValues, SecretRecord,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use steward_core::NewParty;
use steward_store::ImportIdentity;

/// Files at least this large are mapped rather than read into memory.
const MAP_FROM_BYTES: u64 = 1 << 20;

/// The content of an inventory file.
enum Text {
    Owned(String),
    Mapped(memmap2::Mmap),
}

impl Text {
    /// The file's bytes, without a leading byte order mark (spreadsheets write one in
    /// "CSV UTF-8"; JSON and YAML readers refuse it). Offsets into the file are offsets
    /// into these.
    ///
    /// A mapped file is only ever looked at as bytes, and text is taken from copies
    /// checked as they are made ([`text_of`]): a private mapping still shows other
    /// processes' writes, so a file edited in place while it is imported changes under
    /// the reader. Bytes have no invariant that such a change could break; text (`str`)
    /// does, so none is ever made over the mapping. The worst such an edit can do is give
    /// wrong records or an error (and a file cut short ends the process with SIGBUS
    /// before the import commits).
    fn bytes(&self) -> &[u8] {
        let bytes: &[u8] = match self {
            Text::Owned(text) => text.as_bytes(),
            Text::Mapped(map) => map,
        };
        bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes)
    }
}

/// A copy of `bytes[start..end]` (of `file`) as text. A mapped file is checked here, a
/// part at a time as it is read, not when it is opened: that would be a pass over the
/// whole file for nothing, and would not hold if the file changed afterwards.
fn text_of(file: &str, bytes: &[u8], start: usize, end: usize) -> anyhow::Result<String> {
    String::from_utf8(bytes[start..end].to_vec())
        .map_err(|error| not_utf8(file, bytes, start + error.utf8_error().valid_up_to()))
}

/// The error for `file` (whose bytes are `bytes`) not being UTF-8 at byte `offset`.
fn not_utf8(file: &str, bytes: &[u8], offset: usize) -> anyhow::Error {
    not_utf8_on_line(file, line_of_offset(bytes, offset))
}

/// The error for `file` not being UTF-8 on `line`.
fn not_utf8_on_line(file: &str, line: usize) -> anyhow::Error {
    crate::usage(format!("{file}:{line}: not valid UTF-8"))
}

/// `bytes` copied into `buffer` as text, or None if they are not UTF-8.
fn copy_line<'b>(buffer: &'b mut String, bytes: &[u8]) -> Option<&'b str> {
    let mut owned = std::mem::take(buffer).into_bytes();
    owned.clear();
    owned.extend_from_slice(bytes);
    *buffer = String::from_utf8(owned).ok()?;
    Some(buffer.as_str())
}

/// Where the identities of an inventory file are.
enum Items {
    /// CSV: the header row and the number of records.
    Csv { headers: Vec<String>, count: usize },
    /// JSON: the byte range of each element of `identities`.
    Json(Vec<(usize, usize)>),
    /// YAML in block layout: the byte offset where each item of `identities` starts, and
    /// where the last one ends.
    Yaml { starts: Vec<usize>, end: usize },
    /// YAML parsed as one document: the records (until [`Inventory::identities`] takes
    /// them) and each one's (system, name), to find its line when an error names it.
    Document {
        records: Vec<IdentityRecord>,
        names: Vec<(String, String)>,
    },
}

/// An inventory file, opened: its header read and checked, its identities located.
pub struct Inventory {
    file: String,
    text: Text,
    /// Parties to create when missing.
    pub parties: Vec<NewParty>,
    /// Secrets and their copies, as written (see [`Inventory::secrets`]).
    secrets: Vec<SecretRecord>,
    /// The id of the key the file's fingerprints were made under, if it says.
    fingerprint_key: Option<String>,
    items: Items,
}

/// What a file's header holds besides the identities.
struct Header {
    parties: Vec<NewParty>,
    secrets: Vec<SecretRecord>,
    fingerprint_key: Option<String>,
}

/// Just the keys of an identity, to find the records that share them.
#[derive(Deserialize)]
struct IdentityKey {
    name: String,
    system: String,
}

/// A JSON inventory with its identities left unparsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonHeader<'a> {
    version: u32,
    #[serde(default)]
    fingerprint_key: Option<String>,
    #[serde(default)]
    parties: Vec<PartyRecord>,
    #[serde(default, borrow)]
    identities: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    secrets: Vec<SecretRecord>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of_offset(text: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &text[..offset]).count() + 1
}

/// The format of `path`, from `explicit` or its extension.
pub fn detect_format(path: &Path, explicit: Option<FileFormat>) -> anyhow::Result<FileFormat> {
    if let Some(format) = explicit {
        return Ok(format);
    }
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "yaml" | "yml" => Ok(FileFormat::Yaml),
        "json" => Ok(FileFormat::Json),
        "csv" => Ok(FileFormat::Csv),
        _ => Err(crate::usage(format!(
            "{}: cannot tell the format from the extension; use .yaml, .json or .csv, or pass --format",
            path.display()
        ))),
    }
}

/// Strips serde's own " at line L column C" suffix (we print the location first).
fn bare_message(message: String) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message,
    }
}

fn document_error(file: &str, line: Option<usize>, path: String, message: String) -> anyhow::Error {
    let location = line.map(|line| format!(":{line}")).unwrap_or_default();
    let mut message = bare_message(message);
    // serde_norway prefixes its own (shorter) path; ours is printed already.
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && path.starts_with(prefix)
    {
        message = rest.to_string();
    }
    let field = if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    };
    crate::usage(format!("{file}{location}: {field}{message}"))
}

/// YAML parsers report a bad value at the start of its enclosing mapping; move the line
/// forward to the key named by the last segment of `path`, when it is there.
fn refine_yaml_line(text: &[u8], line: usize, path: &str) -> usize {
    let Some(key) = path
        .rsplit('.')
        .next()
        .filter(|key| !key.contains('[') && !key.is_empty())
    else {
        return line;
    };
    let key_prefix = format!("{key}:");
    // Lines as `str::lines` gives them, each copied as text (a bad byte cannot be a key).
    let mut lines = text
        .split(|byte| *byte == b'\n')
        .enumerate()
        .skip(line.saturating_sub(1))
        .map(|(number, line)| {
            // Copied before it is decoded: `text` may be a mapped file (see `Text::bytes`).
            let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
            (number, String::from_utf8_lossy(&line).into_owned())
        });
    let Some((_, first)) = lines.next() else { return line };
    let first_content = first.trim_start_matches([' ', '-']);
    if first_content.starts_with(&key_prefix) {
        return line;
    }
    let indent = first.len() - first_content.len();
    for (number, candidate) in lines {
        let content = candidate.trim_start_matches([' ', '-']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let candidate_indent = candidate.len() - content.len();
        if candidate_indent < indent || (candidate_indent == indent && candidate.trim_start().starts_with('-')) {
            break;
        }
        if candidate_indent == indent && content.starts_with(&key_prefix) {
            return number + 1;
        }
    }
    line
}

/// Finds the line where the `index`-th identity (named `name`) is declared in a YAML or
/// JSON document: the matching `name:` key after the `identities` key.
pub fn locate_identity_line(text: &str, records: &[(String, String)], index: usize) -> Option<usize> {
    let name = &records.get(index)?.1;
    let occurrence = records[..index].iter().filter(|(_, other)| other == name).count();
    let mut in_identities = false;
    let mut seen = 0;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        if trimmed.starts_with("identities") || trimmed.starts_with("\"identities\"") {
            in_identities = true;
            continue;
        }
        if !in_identities {
            continue;
        }
        let key_rest = trimmed
            .strip_prefix("name:")
            .or_else(|| trimmed.strip_prefix("\"name\":"))
            .map(|rest| {
                rest.trim()
                    .trim_end_matches(',')
                    .trim_matches(|c| c == '"' || c == '\'')
            });
        if key_rest == Some(name.as_str()) {
            if seen == occurrence {
                return Some(number + 1);
            }
            seen += 1;
        }
    }
    None
}

/// The line, counted from 0 in an identity's item text, of the key that `path` names
/// (`field`, or `list[N].field`), in YAML block layout or in JSON with a key per line
/// (as `export` writes it); `None` when the layout does not show it.
fn key_line_in_item(item: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = item.lines().collect();
    // A line's indentation, the column of its key (past `- ` item markers and a `{`),
    // and the key's text.
    fn parts(line: &str) -> (usize, usize, &str) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = line.trim_start_matches([' ', '-', '{']);
        (indent, line.len() - content.len(), content)
    }
    let is_item = |line: &str| line.trim_start_matches(' ').starts_with(['-', '{']);
    let is_blank = |content: &str| content.is_empty() || content.starts_with('#');
    // The key `key` among the keys of the mapping that starts at line `from`.
    let find_key = |from: usize, key: &str| {
        let mut level = None;
        for (number, line) in lines.iter().enumerate().skip(from) {
            let (indent, column, content) = parts(line);
            if is_blank(content) {
                continue;
            }
            let level = *level.get_or_insert(column);
            if column < level || (number > from && is_item(line) && indent < level) {
                return None;
            }
            let bare = content.trim_start_matches(['"', '\'']);
            if column == level
                && bare
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'))
            {
                return Some(number);
            }
        }
        None
    };
    let mut from = 0;
    let mut found = None;
    for segment in path.split('.') {
        let (key, position) = match segment.split_once('[') {
            Some((key, rest)) => (key, Some(rest.strip_suffix(']')?.parse::<usize>().ok()?)),
            None => (segment, None),
        };
        let at = find_key(from, key)?;
        found = Some(at);
        from = at;
        if let Some(position) = position {
            // The list's items: lines that start with `-` or `{` at one indentation.
            let key_indent = parts(lines[at]).1;
            let mut items = lines
                .iter()
                .enumerate()
                .skip(at + 1)
                .filter(|(_, line)| !is_blank(parts(line).2) || is_item(line));
            let (first, first_line) = items.next()?;
            if !is_item(first_line) {
                return None;
            }
            let item_indent = parts(first_line).0;
            let mut seen = 0;
            from = first;
            for (number, line) in std::iter::once((first, first_line)).chain(items) {
                let (indent, column, _) = parts(line);
                if is_item(line) && indent == item_indent {
                    if seen == position {
                        from = number;
                        break;
                    }
                    seen += 1;
                } else if column <= key_indent {
                    return None;
                }
            }
            if seen != position {
                return None;
            }
            found = Some(from);
        }
    }
    found
}

/// The items of a list cell, split at each `;` or `,` not escaped by a backslash (see
/// `records::list_item`), still escaped, trimmed, empty ones dropped.
fn split_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                item.push(c);
                item.extend(chars.next());
            }
            ';' | ',' => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// An escaped list item split at its first `=` not escaped, both sides unescaped.
fn split_pair(item: &str) -> Option<(String, String)> {
    let mut escaped = false;
    let at = item.char_indices().find_map(|(at, c)| {
        let found = c == '=' && !escaped;
        escaped = c == '\\' && !escaped;
        found.then_some(at)
    })?;
    Some((unescape(item[..at].trim()), unescape(item[at + 1..].trim())))
}

/// `text` without the backslashes that escape the character after them.
fn unescape(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            plain.extend(chars.next());
        } else {
            plain.push(c);
        }
    }
    plain
}

fn csv_record(headers: &[String], values: &csv::StringRecord) -> Result<IdentityRecord, (String, String)> {
    // Build the same record as YAML/JSON would, through serde, so the rules are identical.
    let mut object = serde_json::Map::new();
    for (header, value) in headers.iter().zip(values.iter()) {
        // A leading `'` guards a cell against spreadsheet formulas (`export -o csv` writes
        // one before `=`, `+`, `-`, `@` and `'`); it is not part of the value.
        let value = value.strip_prefix('\'').unwrap_or(value);
        // An empty review date is none (as an export writes it), not the tier's default.
        if value.is_empty() && header == "review_due" {
            object.insert(header.clone(), serde_json::Value::Null);
        }
        if value.is_empty() {
            continue;
        }
        let json = match header.as_str() {
            "id" => continue,
            "backup_approvers" => {
                serde_json::json!(split_list(value).iter().map(|item| unescape(item)).collect::<Vec<_>>())
            }
            "scope" | "labels" => {
                let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for pair in split_list(value) {
                    let (key, item) =
                        split_pair(&pair).ok_or_else(|| (header.clone(), format!("'{pair}' is not key=value")))?;
                    map.entry(key).or_default().push(item);
                }
                if header == "labels" {
                    let labels: BTreeMap<String, String> =
                        map.into_iter().map(|(key, values)| (key, values.join(";"))).collect();
                    serde_json::json!(labels)
                } else {
                    let scope: BTreeMap<String, ScopeValues> = map
                        .into_iter()
                        .map(|(key, values)| (key, ScopeValues(values)))
                        .collect();
                    serde_json::to_value(scope).expect("scope serializes")
                }
            }
            _ => serde_json::Value::String(value.to_string()),
        };
        object.insert(header.clone(), json);
    }
    let value = serde_json::Value::Object(object);
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        (
            if path == "." { "record".to_string() } else { path },
            bare_message(error.into_inner().to_string()),
        )
    })
}

/// Reads `path`: mapped when large (and then checked to be UTF-8 as it is read, see
/// [`text_of`]), else read whole and checked to be UTF-8.
fn read_text(path: &Path, file: &str) -> anyhow::Result<Text> {
    let cannot_read = |error: std::io::Error| anyhow::anyhow!("cannot read {file}: {error}");
    let handle = std::fs::File::open(path).map_err(cannot_read)?;
    let size = handle.metadata().map_err(cannot_read)?.len();
    let read_whole = || {
        // From the handle already open: the file read is the file whose size was taken.
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut &handle, &mut bytes).map_err(cannot_read)?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Text::Owned(text)),
            Err(error) => Err(not_utf8(file, error.as_bytes(), error.utf8_error().valid_up_to())),
        }
    };
    if size < MAP_FROM_BYTES {
        return read_whole();
    }
    // SAFETY: a private read-only mapping, only ever read as bytes; see `Text::bytes`.
    let Ok(map) = (unsafe { memmap2::Mmap::map(&handle) }) else {
        // Not every file can be mapped (some FUSE and network file systems): read it.
        return read_whole();
    };
    Ok(Text::Mapped(map))
}

/// Checks the version and the parties' handles of a file.
fn check_header(file: &str, version: u32, parties: &[PartyRecord]) -> anyhow::Result<Vec<NewParty>> {
    if version != FILE_FORMAT_VERSION {
        return Err(crate::usage(format!(
            "{file}: version: {version} is not supported (this steward reads version {FILE_FORMAT_VERSION})"
        )));
    }
    let mut seen = std::collections::HashMap::with_capacity(parties.len());
    parties
        .iter()
        .enumerate()
        .map(|(index, party)| {
            steward_core::party::validate_handle(&party.handle)
                .map_err(|error| crate::usage(format!("{file}: parties[{index}].handle: {error}")))?;
            if let Some(first) = seen.insert(party.handle.as_str(), index) {
                return Err(crate::usage(format!(
                    "{file}: parties[{index}].handle: '{}' is listed twice (also parties[{first}]); nothing was imported",
                    party.handle
                )));
            }
            Ok(party.to_new_party())
        })
        .collect()
}

/// The root `identities:` block sequence of a YAML document, found from the layout of
/// its lines: where the key's line starts, where each item starts, and where the section
/// ends.
struct YamlLayout {
    key: usize,
    starts: Vec<usize>,
    end: usize,
}

/// Whether a YAML node may start at byte `at`: at the start of a line, or after `:`, `-`,
/// `?`, `[`, `{`, `,` or a tag (`!!str &a`), with spaces between or not. This takes in
/// more than node starts (such text inside a quoted or block scalar too), which only costs
/// a whole-document read; `R&D` or `see &x` in the middle of a scalar are not node starts.
fn at_node_start(bytes: &[u8], at: usize) -> bool {
    let mut start = at;
    while start > 0 && matches!(bytes[start - 1], b' ' | b'\t') {
        start -= 1;
    }
    if start == 0 {
        return true;
    }
    match bytes[start - 1] {
        b'\n' | b'\r' | b':' | b'-' | b'?' | b'[' | b'{' | b',' => true,
        _ if start == at => false,
        _ => {
            let token = bytes[..start]
                .iter()
                .rposition(|byte| byte.is_ascii_whitespace())
                .map_or(0, |space| space + 1);
            bytes[token] == b'!'
        }
    }
}

/// Whether `text` has a YAML anchor (`&a`) or alias (`*a`) (where a node may start, see
/// [`at_node_start`]): an item that uses an anchor set elsewhere cannot be read alone.
fn may_have_anchors(bytes: &[u8]) -> bool {
    memchr::memchr2_iter(b'&', b'*', bytes)
        .any(|at| bytes.get(at + 1).is_some_and(|after| !after.is_ascii_whitespace()) && at_node_start(bytes, at))
}

/// Whether `text` has a quoted scalar that does not end on the line where it starts.
/// libyaml takes the next lines as its continuation at any indentation, column 0 too, so
/// such a scalar may hold lines that look like keys or items. Quotes that do not open a
/// node (`it's`) are not counted.
fn may_have_multiline_quotes(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(found) = memchr::memchr2(b'"', b'\'', &bytes[from..]) {
        let at = from + found;
        if !at_node_start(bytes, at) {
            from = at + 1;
            continue;
        }
        let quote = bytes[at];
        let mut index = at + 1;
        let close = loop {
            match bytes.get(index) {
                None | Some(b'\n' | b'\r') => break None,
                Some(b'\\') if quote == b'"' => index += 2,
                Some(&byte) if byte == quote => {
                    if quote == b'\'' && bytes.get(index + 1) == Some(&b'\'') {
                        index += 2;
                    } else {
                        break Some(index);
                    }
                }
                Some(_) => index += 1,
            }
        };
        match close {
            Some(close) => from = close + 1,
            None => return true,
        }
    }
    false
}

/// Whether `text` breaks lines other than with `\n` or `\r\n`: libyaml also breaks at a
/// lone `\r` and at U+0085, U+2028 and U+2029, which a split at `\n` would not see.
fn has_other_line_breaks(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', bytes).any(|at| bytes.get(at + 1) != Some(&b'\n'))
        || memchr::memmem::find(bytes, "\u{85}".as_bytes()).is_some()
        || memchr::memmem::find(bytes, "\u{2028}".as_bytes()).is_some()
        || memchr::memmem::find(bytes, "\u{2029}".as_bytes()).is_some()
}

/// A root mapping key at the start of `line` (`name:` followed by a space or nothing).
fn is_root_key(line: &str) -> bool {
    let key_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let rest = line[key_end..].trim_start_matches(' ');
    key_end > 0
        && line.as_bytes()[0].is_ascii_alphabetic()
        && rest.starts_with(':')
        && rest[1..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == '\r' || c == '#')
}

/// Finds the items of the root `identities:` block sequence, when the document has the
/// plain block layout that `steward export` writes (and most hand-written files have):
/// root keys at column 0, `identities:` once with nothing after it, then items that each
/// start with `- ` at one indentation, every other line of an item indented further, and
/// after the last item the next root key or the end. Then each item is a YAML document
/// of its own (a one-item sequence) that means what it means in the whole file. None for
/// anything else (directives, a second document, tabs in indentation, anchors or aliases,
/// quoted scalars over several lines, line breaks other than LF and CRLF, flow style, a
/// line that ends the section but is not a root key), which is then parsed as one
/// document.
fn yaml_items(bytes: &[u8]) -> Option<YamlLayout> {
    if may_have_anchors(bytes) || may_have_multiline_quotes(bytes) || has_other_line_breaks(bytes) {
        return None;
    }
    // Each line is looked at as a copy (see `Text::bytes`); a line that is not text any
    // more sends the file to whole-document reading, which reports it.
    let mut line = String::new();
    let mut key = None;
    let mut seen_content = false;
    for (start, next, bare) in lines_from(bytes, 0) {
        let bare = copy_line(&mut line, bare)?;
        let content = bare.trim_start_matches(' ');
        if content.starts_with('\t') || bare.starts_with('%') {
            return None;
        }
        let marker = |mark: &str| {
            bare.strip_prefix(mark)
                .is_some_and(|rest| rest.chars().next().is_none_or(|c| c.is_whitespace()))
        };
        if marker("...") || (marker("---") && seen_content) {
            return None;
        }
        if content.is_empty() || content.starts_with('#') || marker("---") {
            continue;
        }
        seen_content = true;
        if bare.starts_with("\"identities\"") || bare.starts_with("'identities'") {
            return None;
        }
        if let Some(rest) = bare.strip_prefix("identities:") {
            let rest = rest.trim_start();
            if key.is_some() || !(rest.is_empty() || rest.starts_with('#')) {
                return None;
            }
            key = Some((start, next));
        }
    }
    let (key, body) = key?;
    let mut indent = None;
    let mut starts = Vec::new();
    let mut end = bytes.len();
    for (start, _, bare) in lines_from(bytes, body) {
        let bare = copy_line(&mut line, bare)?;
        let content = bare.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let depth = bare.len() - content.len();
        let entry = content.starts_with('-') && content[1..].chars().next().is_none_or(|c| c == ' ');
        match indent {
            None if entry => {
                indent = Some(depth);
                starts.push(start);
            }
            None => return None,
            Some(items) if depth == items && entry => starts.push(start),
            Some(items) if depth > items => {}
            Some(_) if depth == 0 && is_root_key(content) => {
                end = start;
                break;
            }
            Some(_) => return None,
        }
    }
    Some(YamlLayout { key, starts, end })
}

/// The lines of `bytes` from `from` on: where each starts, where the next starts, and
/// the line without its line break.
fn lines_from(bytes: &[u8], from: usize) -> impl Iterator<Item = (usize, usize, &[u8])> {
    bytes[from..]
        .split_inclusive(|byte| *byte == b'\n')
        .scan(from, |offset, line| {
            let start = *offset;
            *offset += line.len();
            let mut bare = line;
            while let [rest @ .., b'\n' | b'\r'] = bare {
                bare = rest;
            }
            Some((start, *offset, bare))
        })
}

/// serde's path of an error inside one item, as a path in the whole file.
fn item_path(index: usize, inner: &str) -> String {
    let inner = inner.strip_prefix("[0]").unwrap_or(inner);
    match inner {
        "" | "." => format!("identities[{index}]"),
        _ if inner.starts_with('[') || inner.starts_with('.') => format!("identities[{index}]{inner}"),
        _ => format!("identities[{index}].{inner}"),
    }
}

impl Inventory {
    /// Reads `path` as `format`: checks its header and finds its identities.
    pub fn open(path: &Path, format: FileFormat) -> anyhow::Result<Inventory> {
        let file = path.display().to_string();
        let text = read_text(path, &file)?;
        Self::from_text(file, text, format)
    }

    fn from_text(file: String, text: Text, format: FileFormat) -> anyhow::Result<Inventory> {
        let (header, items) = match format {
            FileFormat::Csv => (
                Header {
                    parties: Vec::new(),
                    secrets: Vec::new(),
                    fingerprint_key: None,
                },
                csv_header(&file, text.bytes())?,
            ),
            FileFormat::Json => json_header(&file, text.bytes())?,
            FileFormat::Yaml => yaml_header(&file, text.bytes())?,
        };
        Ok(Inventory {
            file,
            text,
            parties: header.parties,
            secrets: header.secrets,
            fingerprint_key: header.fingerprint_key,
            items,
        })
    }

    /// Why the file's fingerprints cannot be imported here, if they cannot: the file
    /// names the key they were made under (`fingerprint_key`), and it is not `key` (the id
    /// of this installation's fingerprint key, if it has one), so they would never match.
    /// The message names the file, the line and the field.
    pub fn fingerprint_key_problem(&self, key: Option<&str>) -> Option<String> {
        let named = self.fingerprint_key.as_deref()?;
        let problem = if named == crate::records::UNKNOWN_KEY {
            "the file does not say which key its fingerprints were made under (it was exported where the \
             fingerprint key was not at hand): export it again where it is, or pass --drop-fingerprints"
                .to_string()
        } else if named.len() != 16 || !named.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            "must be 16 hexadecimal digits (the id `steward export` writes)".to_string()
        } else {
            match key {
                Some(key) if key.eq_ignore_ascii_case(named) => return None,
                Some(key) => format!(
                    "the file's fingerprints were made under another installation's key ({named}; this one's is \
                     {key}) and would never match: import with that installation's key (its keys/fingerprint.key or \
                     STEWARD_FINGERPRINT_KEY), or pass --drop-fingerprints"
                ),
                None => "this installation has no fingerprint key to check the file's fingerprints against (run \
                         `steward init`, or set STEWARD_FINGERPRINT_KEY), or pass --drop-fingerprints"
                    .to_string(),
            }
        };
        Some(format!(
            "{}{}: fingerprint_key: {problem}",
            self.file,
            self.line_of_path("fingerprint_key")
        ))
    }

    /// Whether the file has secrets.
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Drops the file's secrets (`import --drop-fingerprints`): how many there were.
    pub fn drop_secrets(&mut self) -> usize {
        std::mem::take(&mut self.secrets).len()
    }

    /// `:line` of the key that `path` names from the top of the file (`secrets[1].locator`),
    /// where the layout shows it, else nothing. Runs only for an error.
    fn line_of_path(&self, path: &str) -> String {
        // Copied before it is decoded (see `Text::bytes`).
        let text = String::from_utf8_lossy(self.text.bytes()).into_owned();
        key_line_in_item(&text, path)
            .map(|line| format!(":{}", line + 1))
            .unwrap_or_default()
    }

    /// The file's secrets, checked: an error names the file, the line (where the layout
    /// shows it) and the field.
    pub fn secrets(&self, now: jiff::Timestamp) -> anyhow::Result<Vec<steward_store::KnownSecret>> {
        let mut fingerprints = std::collections::HashSet::new();
        let mut secrets = Vec::with_capacity(self.secrets.len());
        for (index, record) in self.secrets.iter().enumerate() {
            let checked = record.to_known(now).and_then(|secret| {
                if fingerprints.insert(secret.fingerprint.clone()) {
                    Ok(secret)
                } else {
                    Err(("fingerprint".to_string(), "is listed twice".to_string()))
                }
            });
            match checked {
                Ok(secret) => secrets.push(secret),
                Err((field, message)) => {
                    let path = format!("secrets[{index}].{field}");
                    let mut line = self.line_of_path(&path);
                    if line.is_empty() {
                        line = self.line_of_path(&format!("secrets[{index}]"));
                    }
                    return Err(crate::usage(format!("{}{line}: {path}: {message}", self.file)));
                }
            }
        }
        Ok(secrets)
    }

    /// The number of identities.
    pub fn count(&self) -> usize {
        match &self.items {
            Items::Csv { count, .. } => *count,
            Items::Json(ranges) => ranges.len(),
            Items::Yaml { starts, .. } => starts.len(),
            Items::Document { names, .. } => names.len(),
        }
    }

    /// The identities, each parsed and checked as it is taken. An error names the file,
    /// the line and the field.
    pub fn identities(&mut self, now: jiff::Timestamp) -> Identities<'_> {
        let records = match &mut self.items {
            Items::Document { records, .. } => std::mem::take(records).into_iter(),
            _ => Vec::new().into_iter(),
        };
        let csv = match &self.items {
            Items::Csv { .. } => Some(csv_reader(self.text.bytes())),
            _ => None,
        };
        Identities {
            inventory: self,
            source: format!("import:{}", self.file),
            now,
            next: 0,
            records,
            csv,
            parsed: Vec::new().into_iter(),
        }
    }

    /// Runs `consume` over the identities while a thread parses them ahead (a batch at a
    /// time, on all cores), so that parsing overlaps what `consume` does with them.
    pub fn with_identities<R>(
        &mut self,
        now: jiff::Timestamp,
        consume: impl FnOnce(&mut dyn Iterator<Item = anyhow::Result<ImportIdentity>>) -> R,
    ) -> R {
        let remaining = self.count();
        let inventory = &mut *self;
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel(PREFETCH_BATCHES);
            scope.spawn(move || {
                let mut records = inventory.identities(now);
                loop {
                    let batch: Vec<_> = records.by_ref().take(PARSE_BATCH).collect();
                    // A closed channel: the consumer stopped (at an error).
                    if batch.is_empty() || sender.send(batch).is_err() {
                        break;
                    }
                }
            });
            let mut feed = Prefetched {
                receiver,
                current: Vec::new().into_iter(),
                remaining,
            };
            consume(&mut feed)
        })
    }

    /// The line where identity `index` starts, when it can be told.
    pub fn line(&self, index: usize) -> Option<usize> {
        let text = self.text.bytes();
        match &self.items {
            Items::Csv { .. } => csv_reader(text)
                .nth(index)
                .and_then(|record| record.ok()?.position().map(|position| csv_line(text, position))),
            Items::Json(ranges) => ranges.get(index).map(|(start, _)| line_of_offset(text, *start)),
            Items::Yaml { starts, .. } => starts.get(index).map(|start| line_of_offset(text, *start)),
            // Copied before it is decoded (see `Text::bytes`); this runs only for an error.
            Items::Document { names, .. } => {
                let copy = text.to_vec();
                locate_identity_line(&String::from_utf8_lossy(&copy), names, index)
            }
        }
    }

    /// The line of `field` (`expires_at`, `credentials[1].fingerprint`) in identity
    /// `index`, where the layout shows it; else the identity's line. Runs only for an error.
    fn field_line(&self, index: usize, field: &str) -> Option<usize> {
        let found = match &self.items {
            Items::Json(_) | Items::Yaml { .. } => self.item_text(index).ok().and_then(|(start, item)| {
                // The item may start after its line's indentation: put that back, as spaces.
                let text = self.text.bytes();
                let column = start
                    - text[..start]
                        .iter()
                        .rposition(|byte| *byte == b'\n')
                        .map_or(0, |at| at + 1);
                let offset = key_line_in_item(&format!("{:column$}{item}", ""), field)?;
                Some(line_of_offset(text, start) + offset)
            }),
            Items::Csv { .. } | Items::Document { .. } => None,
        };
        found.or_else(|| self.line(index))
    }

    /// The positions of the identities named `name` in `system`, in file order.
    pub fn indexes_of(&self, system: &str, name: &str) -> Vec<usize> {
        use rayon::prelude::*;
        let text = self.text.bytes();
        let matches = |key: IdentityKey| key.system == system && key.name == name;
        match &self.items {
            Items::Csv { headers, .. } => {
                let column = |wanted: &str| headers.iter().position(|header| header == wanted);
                let (Some(name_at), Some(system_at)) = (column("name"), column("system")) else {
                    return Vec::new();
                };
                csv_reader(text)
                    .enumerate()
                    .filter(|(_, record)| {
                        record.as_ref().is_ok_and(|record| {
                            record.get(name_at).map(str::trim) == Some(name)
                                && record.get(system_at).map(str::trim) == Some(system)
                        })
                    })
                    .map(|(index, _)| index)
                    .collect()
            }
            // Every item is parsed again (on all cores): this runs only for an error message.
            Items::Json(_) => (0..self.count())
                .into_par_iter()
                .filter(|index| {
                    self.item_text(*index)
                        .is_ok_and(|(_, item)| serde_json::from_str::<IdentityKey>(&item).is_ok_and(matches))
                })
                .collect(),
            Items::Yaml { .. } => (0..self.count())
                .into_par_iter()
                .filter(|index| {
                    self.item_text(*index).is_ok_and(|(_, item)| {
                        serde_norway::from_str::<Vec<IdentityKey>>(&item)
                            .is_ok_and(|mut keys| keys.pop().is_some_and(matches))
                    })
                })
                .collect(),
            Items::Document { names, .. } => names
                .iter()
                .enumerate()
                .filter(|(_, key)| key.0 == system && key.1 == name)
                .map(|(index, _)| index)
                .collect(),
        }
    }

    /// Where identity `index` of a JSON or YAML file starts, and a copy of its text.
    fn item_text(&self, index: usize) -> anyhow::Result<(usize, String)> {
        let text = self.text.bytes();
        let (start, end) = match &self.items {
            Items::Json(ranges) => ranges[index],
            Items::Yaml { starts, end } => (starts[index], starts.get(index + 1).copied().unwrap_or(*end)),
            Items::Csv { .. } | Items::Document { .. } => unreachable!("CSV and whole documents have no item texts"),
        };
        Ok((start, text_of(&self.file, text, start, end)?))
    }

    /// Identity `index` of a JSON or YAML file, parsed.
    fn parse_item(&self, index: usize) -> anyhow::Result<IdentityRecord> {
        let text = self.text.bytes();
        let file = &self.file;
        let (start, item) = self.item_text(index)?;
        let item = item.as_str();
        // The item's first line, counted only when an error needs it (counting for every
        // item would be a pass over the file per item).
        let first = || line_of_offset(text, start);
        match &self.items {
            Items::Json(_) => {
                let mut deserializer = serde_json::Deserializer::from_str(item);
                serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                    let path = item_path(index, &error.path().to_string());
                    let inner = error.into_inner();
                    let line = first() + inner.line().max(1) - 1;
                    document_error(file, Some(line), path, inner.to_string())
                })
            }
            Items::Yaml { .. } => {
                let deserializer = serde_norway::Deserializer::from_str(item);
                let parsed: Result<Vec<IdentityRecord>, _> = serde_path_to_error::deserialize(deserializer);
                match parsed {
                    Ok(mut records) if records.len() == 1 => Ok(records.pop().expect("one record")),
                    Ok(records) => Err(crate::usage(format!(
                        "{file}:{}: identities[{index}]: {} records where one item was expected",
                        first(),
                        records.len()
                    ))),
                    Err(error) => {
                        let path = item_path(index, &error.path().to_string());
                        let inner = error.into_inner();
                        let line = inner
                            .location()
                            .map(|location| refine_yaml_line(text, first() + location.line() - 1, &path));
                        let message = inner.to_string();
                        // serde_norway starts its message with its own path in the item
                        // (`.[0]...: `); ours is printed already.
                        let message = match message.split_once(": ") {
                            Some((prefix, rest)) if prefix.starts_with(".[0]") || prefix.starts_with("[0]") => {
                                rest.to_string()
                            }
                            _ => message,
                        };
                        Err(document_error(file, line, path, message))
                    }
                }
            }
            Items::Csv { .. } | Items::Document { .. } => unreachable!("CSV and whole documents are read in order"),
        }
    }

    /// `record` (identity `index`) as an identity to import.
    fn to_import(
        &self,
        index: usize,
        record: IdentityRecord,
        source: &str,
        now: jiff::Timestamp,
    ) -> anyhow::Result<ImportIdentity> {
        let fail = |field: String, message: String| {
            document_error(
                &self.file,
                self.field_line(index, &field),
                format!("identities[{index}].{field}"),
                message,
            )
        };
        let identity = record
            .to_new_identity(source, now)
            .map_err(|(field, message)| fail(field, message))?;
        let mut credentials = Vec::with_capacity(record.credentials.len());
        for (position, credential) in record.credentials.iter().enumerate() {
            credentials.push(
                credential
                    .to_new_credential(now)
                    .map_err(|(field, message)| fail(format!("credentials[{position}].{field}"), message))?,
            );
        }
        Ok(ImportIdentity { identity, credentials })
    }
}

/// The identities of an [`Inventory`], parsed one at a time.
pub struct Identities<'a> {
    inventory: &'a Inventory,
    source: String,
    now: jiff::Timestamp,
    next: usize,
    records: std::vec::IntoIter<IdentityRecord>,
    csv: Option<csv::StringRecordsIntoIter<&'a [u8]>>,
    /// JSON and YAML items parsed ahead, in parallel.
    parsed: std::vec::IntoIter<anyhow::Result<ImportIdentity>>,
}

/// JSON and YAML items are parsed this many at a time, on all cores.
const PARSE_BATCH: usize = 1024;
/// Parsed batches waiting for the consumer of [`Inventory::with_identities`].
const PREFETCH_BATCHES: usize = 4;

/// Identities parsed ahead by another thread.
struct Prefetched {
    receiver: std::sync::mpsc::Receiver<Vec<anyhow::Result<ImportIdentity>>>,
    current: std::vec::IntoIter<anyhow::Result<ImportIdentity>>,
    remaining: usize,
}

impl Iterator for Prefetched {
    type Item = anyhow::Result<ImportIdentity>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.current.next() {
                self.remaining = self.remaining.saturating_sub(1);
                return Some(record);
            }
            match self.receiver.recv() {
                Ok(batch) => self.current = batch.into_iter(),
                Err(_) if self.remaining == 0 => return None,
                // The parsing thread ended early (it panicked): an error, so the import
                // rolls back instead of committing what came so far; the panic is raised
                // when the thread is joined.
                Err(_) => {
                    self.remaining = 0;
                    return Some(Err(anyhow::anyhow!("reading the file stopped before its end")));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl Iterator for Identities<'_> {
    type Item = anyhow::Result<ImportIdentity>;

    fn next(&mut self) -> Option<Self::Item> {
        let inventory = self.inventory;
        if self.next >= inventory.count() {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let file = &inventory.file;
        Some(match &inventory.items {
            Items::Csv { headers, .. } => {
                let values = self.csv.as_mut()?.next()?;
                let text = inventory.text.bytes();
                values
                    .map_err(|error| csv_error(file, text, &error))
                    .and_then(|values| {
                        let line = values.position().map(|position| csv_line(text, position));
                        let fail = |field: String, message: String| {
                            document_error(file, line, format!("column {field}"), message)
                        };
                        let record = csv_record(headers, &values).map_err(|(field, message)| fail(field, message))?;
                        let identity = record
                            .to_new_identity(&self.source, self.now)
                            .map_err(|(field, message)| fail(field, message))?;
                        Ok(ImportIdentity {
                            identity,
                            credentials: Vec::new(),
                        })
                    })
            }
            Items::Document { .. } => {
                let record = self.records.next()?;
                inventory.to_import(index, record, &self.source, self.now)
            }
            Items::Json(_) | Items::Yaml { .. } => {
                if self.parsed.len() == 0 {
                    use rayon::prelude::*;
                    let end = (index + PARSE_BATCH).min(inventory.count());
                    let (source, now) = (&self.source, self.now);
                    let batch: Vec<_> = (index..end)
                        .into_par_iter()
                        .map(|index| {
                            inventory
                                .parse_item(index)
                                .and_then(|record| inventory.to_import(index, record, source, now))
                        })
                        .collect();
                    self.parsed = batch.into_iter();
                }
                self.parsed.next()?
            }
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.inventory.count() - self.next;
        (remaining, Some(remaining))
    }
}

fn csv_reader(bytes: &[u8]) -> csv::StringRecordsIntoIter<&[u8]> {
    // The CSV reader checks each record's text as it copies it into a `StringRecord`.
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes)
        .into_records()
}

fn csv_error(file: &str, text: &[u8], error: &csv::Error) -> anyhow::Error {
    let line = error
        .position()
        .map(|position| format!(":{}", csv_line(text, position)))
        .unwrap_or_default();
    // The reader's own message repeats the place (with the line it miscounts after CRLF).
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => error.to_string(),
    };
    crate::usage(format!("{file}{line}: {message}"))
}

/// The line of a CSV record at `position`. After a CRLF the reader ends a record at the
/// `\r` and starts the next at the `\n`, not yet counted: the line is one more then.
fn csv_line(text: &[u8], position: &csv::Position) -> usize {
    let line = position.line() as usize;
    match text.get(position.byte() as usize) {
        Some(b'\n') => line + 1,
        _ => line,
    }
}

/// Checks a CSV file's header row and counts its records (a record the CSV reader
/// cannot read is reported now, before the import starts).
fn csv_header(file: &str, bytes: &[u8]) -> anyhow::Result<Items> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|error| crate::usage(format!("{file}:1: {error}")))?
        .iter()
        .map(|header| header.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(crate::usage(format!(
            "{file}:1: no header row (columns: {})",
            IDENTITY_COLUMNS.join(", ")
        )));
    }
    for (position, header) in headers.iter().enumerate() {
        if !IDENTITY_COLUMNS.contains(&header.as_str()) {
            return Err(crate::usage(format!(
                "{file}:1: unknown column '{header}' (known: {})",
                IDENTITY_COLUMNS.join(", ")
            )));
        }
        // Two columns of one name: which value would count is anybody's guess.
        if headers[..position].contains(header) {
            return Err(crate::usage(format!("{file}:1: column '{header}' appears twice")));
        }
    }
    let mut record = csv::ByteRecord::new();
    let mut count = 0;
    while reader
        .read_byte_record(&mut record)
        .map_err(|error| csv_error(file, bytes, &error))?
    {
        // Checked as text now too (a mapped file is not checked when opened): a bad byte
        // fails before the import starts, as in a small file.
        if std::str::from_utf8(record.as_slice()).is_err() {
            let line = record.position().map_or(0, |position| csv_line(bytes, position));
            return Err(not_utf8_on_line(file, line));
        }
        count += 1;
    }
    Ok(Items::Csv { headers, count })
}

/// Reads a JSON file's header and finds each identity's bytes, unparsed.
fn json_header(file: &str, bytes: &[u8]) -> anyhow::Result<(Header, Items)> {
    // From bytes: serde_json checks each string and raw value it borrows as it reads it;
    // of the raw values only their places are kept (items are copied when parsed).
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let header: JsonHeader = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        // serde names our private header type when the document is not an object.
        let message = if inner.to_string().contains("JsonHeader") {
            "not an inventory: expected an object with version, parties and identities".to_string()
        } else {
            inner.to_string()
        };
        document_error(file, Some(inner.line()), path, message)
    })?;
    deserializer
        .end()
        .map_err(|error| document_error(file, Some(error.line()), String::new(), error.to_string()))?;
    let parties = check_header(file, header.version, &header.parties)?;
    let base = bytes.as_ptr() as usize;
    let ranges = header
        .identities
        .iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            (start, start + raw.get().len())
        })
        .collect();
    let header = Header {
        parties,
        secrets: header.secrets,
        fingerprint_key: header.fingerprint_key,
    };
    Ok((header, Items::Json(ranges)))
}

/// Reads a YAML file's header and finds its identities (see [`yaml_items`]); a document
/// the line layout cannot split, or whose header does not read, is parsed whole.
fn yaml_header(file: &str, bytes: &[u8]) -> anyhow::Result<(Header, Items)> {
    if let Some(layout) = yaml_items(bytes) {
        let rest = [&bytes[..layout.key], b"identities: []\n", &bytes[layout.end..]].concat();
        if let Ok(rest) = String::from_utf8(rest)
            && let Ok(header) = serde_norway::from_str::<InventoryFile>(&rest)
            && header.identities.is_empty()
        {
            let parties = check_header(file, header.version, &header.parties)?;
            let items = Items::Yaml {
                starts: layout.starts,
                end: layout.end,
            };
            let header = Header {
                parties,
                secrets: header.secrets,
                fingerprint_key: header.fingerprint_key,
            };
            return Ok((header, items));
        }
    }
    let text = text_of(file, bytes, 0, bytes.len())?;
    let deserializer = serde_norway::Deserializer::from_str(&text);
    let inventory: InventoryFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let line = inner
            .location()
            .map(|location| refine_yaml_line(text.as_bytes(), location.line(), &path));
        document_error(file, line, path, inner.to_string())
    })?;
    let parties = check_header(file, inventory.version, &inventory.parties)?;
    let names = inventory
        .identities
        .iter()
        .map(|record| (record.system.clone(), record.name.clone()))
        .collect();
    let items = Items::Document {
        records: inventory.identities,
        names,
    };
    let header = Header {
        parties,
        secrets: inventory.secrets,
        fingerprint_key: inventory.fingerprint_key,
    };
    Ok((header, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(text: &str, format: FileFormat) -> anyhow::Result<Inventory> {
        let file = match format {
            FileFormat::Json => "inventory.json",
            FileFormat::Yaml => "inventory.yaml",
            FileFormat::Csv => "inventory.csv",
        };
        Inventory::from_text(file.to_string(), Text::Owned(text.to_string()), format)
    }

    /// Every identity of `text`, or the first error, as text to compare.
    fn read_all(text: &str, format: FileFormat) -> Result<Vec<String>, String> {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let mut inventory = inventory(text, format).map_err(|error| error.to_string())?;
        let mut out = vec![format!("{:?}", inventory.parties)];
        for record in inventory.identities(now) {
            out.push(format!("{:?}", record.map_err(|error| error.to_string())?));
        }
        Ok(out)
    }

    /// The same YAML read item by item and as one document.
    #[track_caller]
    fn assert_items_read_as_document(text: &str) {
        let layout = yaml_items(text.as_bytes()).expect("the item reader takes this layout");
        assert!(!layout.starts.is_empty());
        let by_item = read_all(text, FileFormat::Yaml);
        // The whole-document reader, forced: an anchor nobody uses turns the item reader off.
        let whole = format!("{text}\n# - &anchor\n");
        assert!(yaml_items(whole.as_bytes()).is_none());
        let as_document = read_all(&whole, FileFormat::Yaml);
        assert_eq!(by_item, as_document);
        assert!(by_item.is_ok(), "{by_item:?}");
    }

    const ITEM: &str = "name: one\n    kind: bot\n    system: aws\n    tier: low\n";

    #[test]
    fn yaml_items_are_found_in_block_layout() {
        let text = format!(
            "version: 1\nidentities:\n  - {ITEM}  - {}parties: []\n",
            ITEM.replace("one", "two")
        );
        let layout = yaml_items(text.as_bytes()).unwrap();
        assert_eq!(layout.starts.len(), 2);
        assert!(text[layout.starts[0]..].starts_with("  - name: one"));
        assert!(text[layout.starts[1]..].starts_with("  - name: two"));
        assert!(text[layout.end..].starts_with("parties:"));
        assert!(text[layout.key..].starts_with("identities:"));
        assert_items_read_as_document(&text);
        // Items at column 0, as `steward export` writes them, after the parties.
        let export = "version: 1\nparties:\n- handle: a@example.com\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n  business_owner: a@example.com\n- name: y\n  kind: bot\n  system: gcp\n  tier: low\n";
        assert_eq!(yaml_items(export.as_bytes()).unwrap().starts.len(), 2);
        assert_items_read_as_document(export);
    }

    #[test]
    fn yaml_items_mean_what_they_mean_in_the_whole_document() {
        // Block scalars with blank lines (kept with |+ at an item's end), comments at column
        // 0 between items, a multi-line plain scalar, flow collections, CRLF line ends, a
        // leading document marker, quoted strings with colons and hashes.
        let text = "---\nversion: 1   # the format\nidentities:   # all of them\n- name: one\n  kind: bot\n  system: aws\n  tier: low\n  purpose: |\n    line one\n\n    line three\n# a comment at column 0\n\n- name: two\n  kind: bot\n  system: aws\n  tier: low\n  purpose: a plain scalar\n    that goes on\n  scope: {system: billing, data: [a, b]}\n  labels:\n    note: \"a: b # c\"\n- name: three\n  kind: bot\n  system: aws\n  tier: low\n  purpose: |+\n    kept\n\n\nparties: []\n";
        assert_items_read_as_document(text);
        assert_items_read_as_document(&text.replace('\n', "\r\n"));
    }

    #[test]
    fn anchors_and_aliases_are_told_from_ampersands_in_text() {
        for text in [
            "- &a x",
            "key: *a",
            "key:  !!str &a x",
            "[&a x, *a]",
            "{k: &a x}",
            "? &a key",
            "  &a\n",
            "&a x",
            "key:&a",
        ] {
            assert!(may_have_anchors(text.as_bytes()), "{text}");
        }
        for text in [
            "purpose: R&D tools",
            "purpose: see * and &x",
            "a: 'x *y'",
            "a: b&",
            "a: *",
            "a: &",
        ] {
            assert!(!may_have_anchors(text.as_bytes()), "{text}");
        }
        // Text with ampersands mid-scalar still takes the item reader.
        let text = "version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n  purpose: R&D, see *this* & &that\n";
        assert_items_read_as_document(text);
    }

    #[test]
    fn yaml_the_item_reader_cannot_split_is_read_whole() {
        let refused = [
            // An alias to an anchor set in the parties.
            "version: 1\nparties:\n- handle: &a a@example.com\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n  business_owner: *a\n",
            // Flow style.
            "version: 1\nidentities: [{name: x, kind: bot, system: aws, tier: low}]\n",
            "version: 1\nidentities:\n  [{name: x, kind: bot, system: aws, tier: low}]\n",
            // A quoted scalar whose next line is at column 0.
            "version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n  purpose: \"two\nlines\"\n",
            // Tabs, directives, a second document, the key twice.
            "version: 1\nidentities:\n- name: x\n  kind: bot\n\tsystem: aws\n",
            "%YAML 1.1\n---\nversion: 1\nidentities:\n- name: x\n",
            "version: 1\nidentities:\n- name: x\n---\nversion: 1\n",
            "version: 1\nidentities:\n- name: x\nidentities:\n- name: y\n",
            // Line breaks a split at LF does not see (found by review: items behind a
            // comment's lone CR or NEL were dropped).
            "version: 1\nidentities:\n# c\r- name: x\r  kind: bot\r  system: aws\r  tier: low\n- name: y\n  kind: bot\n  system: aws\n  tier: low\n",
            "version: 1\nidentities: # c\u{85}- name: x\u{85}  kind: bot\u{85}  system: aws\u{85}  tier: low\n",
            "version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\u{2029}- name: y\n  kind: bot\n  system: aws\n  tier: low\n",
            "version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\u{2028}- name: y\n  kind: bot\n  system: aws\n  tier: low\n",
            // A quoted scalar in the header holding what looks like the identities (review).
            "version: 1\nparties:\n- handle: a@example.com\n  display_name: \"A\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\nz: \"\n",
            "version: 1\nparties:\n- handle: a@example.com\n  display_name: 'A\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\nz: '\n",
            // A quoted value that goes on at column 0 in an item.
            "version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n  purpose: \"a\n- b\"\n",
        ];
        for text in refused {
            assert!(yaml_items(text.as_bytes()).is_none(), "{text}");
        }
        // Those that are valid still import, as one document.
        let expected = read_all(refused[0], FileFormat::Yaml).unwrap();
        assert!(
            expected[1].contains("business_owner: Some(\"a@example.com\")"),
            "{expected:?}"
        );
        let quoted = read_all(refused[3], FileFormat::Yaml).unwrap();
        assert!(quoted[1].contains("purpose: Some(\"two lines\")"), "{quoted:?}");
        assert_eq!(read_all(refused[1], FileFormat::Yaml).unwrap().len(), 2);
        // The review's documents read as the whole-document reader reads them.
        let names = |text: &str| -> Vec<String> {
            read_all(text, FileFormat::Yaml)
                .unwrap()
                .iter()
                .skip(1)
                .map(|record| {
                    record
                        .split("name: \"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(names(refused[8]), vec!["x", "y"]);
        assert_eq!(names(refused[9]), vec!["x"]);
        assert_eq!(names(refused[10]), vec!["x", "y"]);
        assert_eq!(names(refused[12]), Vec::<String>::new());
        assert_eq!(names(refused[14]), vec!["x"]);
    }

    #[test]
    fn quoted_scalars_over_several_lines_are_told_from_quotes_in_text() {
        for text in [
            "a: \"b\n  c\"",
            "a: 'b\n",
            "- \"x",
            "a: [\"x\", \"y\n\"]",
            "a: \"b \\\" c\n\"",
            "a: 'it''s\n'",
            "a: !!str \"x\n\"",
        ] {
            assert!(may_have_multiline_quotes(text.as_bytes()), "{text:?}");
        }
        for text in [
            "a: \"b\"\nc: 'd'\n",
            "purpose: it's fine\n",
            "a: \"b \\\" c\"\n",
            "a: 'it''s'\n",
            "a: x # it's \"quoted\n",
            "a: [\"x\", 'y']\n",
            "a: say \"hi\n",
        ] {
            assert!(!may_have_multiline_quotes(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn item_errors_name_the_line_in_the_file() {
        let mut text = String::from("version: 1\nidentities:\n");
        for index in 0..5 {
            text.push_str(&format!(
                "- name: svc-{index}\n  kind: bot\n  system: aws\n  tier: low\n"
            ));
        }
        let bad = text.replace(
            "name: svc-3\n  kind: bot\n  system: aws\n  tier: low",
            "name: svc-3\n  kind: bot\n  system: aws\n  tier: lo",
        );
        assert_eq!(
            read_all(&bad, FileFormat::Yaml).unwrap_err(),
            "inventory.yaml:18: identities[3].tier: invalid tier 'lo' (expected one of: critical, high, medium, low)"
        );
        let mut json = String::from("{\"version\": 1, \"identities\": [\n");
        for index in 0..5 {
            let tier = if index == 3 { "3" } else { "\"low\"" };
            json.push_str(&format!(
                "{}{{\n  \"name\": \"svc-{index}\",\n  \"kind\": \"bot\",\n  \"system\": \"aws\",\n  \"tier\": {tier}\n}}",
                if index > 0 { ",\n" } else { "" }
            ));
        }
        json.push_str("\n]}\n");
        let message = read_all(&json, FileFormat::Json).unwrap_err();
        assert_eq!(
            message,
            "inventory.json:24: identities[3].tier: invalid type: integer `3`, expected a string"
        );
        let opened = inventory(&json, FileFormat::Json).unwrap();
        assert_eq!(opened.count(), 5);
        assert_eq!(opened.line(3), Some(20));
        assert_eq!(opened.indexes_of("aws", "svc-4"), vec![4]);
        // Bytes after the document are an error before anything is read.
        let trailing = format!("{json}x");
        assert!(
            read_all(&trailing, FileFormat::Json)
                .unwrap_err()
                .starts_with("inventory.json:")
        );
        let yaml = inventory(&text, FileFormat::Yaml).unwrap();
        assert_eq!(yaml.line(2), Some(11));
        assert_eq!(yaml.indexes_of("aws", "svc-2"), vec![2]);
        let csv = inventory(
            "name,kind,system,tier\na,bot,aws,low\nb,bot,aws,low\na,bot,aws,low\n",
            FileFormat::Csv,
        )
        .unwrap();
        assert_eq!((csv.count(), csv.line(2)), (3, Some(4)));
        assert_eq!(csv.indexes_of("aws", "a"), vec![0, 2]);
    }

    #[test]
    fn a_reader_that_stops_early_is_an_error_not_the_end() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let record = || {
            let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
            let record: IdentityRecord =
                serde_json::from_str(r#"{"name": "x", "kind": "bot", "system": "aws", "tier": "low"}"#).unwrap();
            ImportIdentity {
                identity: record.to_new_identity("test", now).unwrap(),
                credentials: Vec::new(),
            }
        };
        sender.send(vec![Ok(record())]).unwrap();
        drop(sender);
        let mut feed = Prefetched {
            receiver,
            current: Vec::new().into_iter(),
            remaining: 3,
        };
        assert!(feed.next().unwrap().is_ok());
        assert_eq!(feed.size_hint(), (2, Some(2)));
        let error = feed.next().unwrap().unwrap_err();
        assert_eq!(error.to_string(), "reading the file stopped before its end");
        assert!(feed.next().is_none());
    }

    #[test]
    fn a_mapped_file_changed_while_read_gives_errors_not_bad_text() {
        use std::os::unix::fs::FileExt;
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let item = |index: usize| format!("- name: svc-{index:06}\n  kind: bot\n  system: aws\n  tier: low\n");
        let count = (MAP_FROM_BYTES as usize / item(0).len()) + 100;
        for format in [FileFormat::Yaml, FileFormat::Json] {
            let text = match format {
                FileFormat::Yaml => format!("version: 1\nidentities:\n{}", (0..count).map(item).collect::<String>()),
                _ => format!(
                    "{{\"version\": 1, \"identities\": [\n{}\n]}}\n",
                    (0..count)
                        .map(|index| format!(
                            "{{\"name\": \"svc-{index:06}\", \"kind\": \"bot\", \"system\": \"aws\", \"tier\": \"low\"}}"
                        ))
                        .collect::<Vec<_>>()
                        .join(",\n")
                ),
            };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("inventory");
            std::fs::write(&path, &text).unwrap();
            let mut inventory = Inventory::open(&path, format).unwrap();
            assert!(matches!(inventory.text, Text::Mapped(_)), "the file is mapped");
            assert_eq!(inventory.count(), count);
            // Another process turns a name of the last item into bytes that are not UTF-8
            // (a lead byte that announces more bytes than the item has, which text
            // functions would trust) after the file was opened and checked.
            let at = text.rfind("svc-").unwrap() as u64;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .write_all_at(&[0xf0, 0xff], at)
                .unwrap();
            let results: Vec<_> = inventory.identities(now).collect();
            assert_eq!(results.len(), count);
            assert!(results[..count - 1].iter().all(Result::is_ok));
            let error = results[count - 1].as_ref().unwrap_err().to_string();
            let line = text[..at as usize].matches('\n').count() + 1;
            assert_eq!(error, format!("{}:{line}: not valid UTF-8", path.display()));
        }
    }

    #[test]
    fn a_mapped_file_that_is_not_utf8_is_named_with_its_line() {
        // Mapped files are not checked as a whole when opened, but as they are read
        // (`text_of`, the YAML line copies, serde_json, the CSV record count): the file
        // still fails at open, before an import starts, naming the line, in each format.
        let dir = tempfile::tempdir().unwrap();
        let filler = "# filler\n".repeat(MAP_FROM_BYTES as usize / 9 + 1);
        let cases = [
            (
                FileFormat::Yaml,
                format!(
                    "{filler}version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n- name: y\u{7}\n"
                ),
                "not valid UTF-8",
            ),
            (
                FileFormat::Json,
                format!(
                    "{{\"version\": 1, \"identities\": [{}\n{{\"name\": \"y\u{7}\"}}]}}",
                    " ".repeat(MAP_FROM_BYTES as usize)
                ),
                "invalid unicode code point",
            ),
            (
                FileFormat::Csv,
                format!(
                    "name,kind,system,tier\n{}y\u{7},bot,aws,low\n",
                    "x,bot,aws,low\n".repeat(MAP_FROM_BYTES as usize / 14 + 1)
                ),
                "not valid UTF-8",
            ),
        ];
        for (format, text, message) in cases {
            // The BEL above becomes 0xFF, a byte that is never UTF-8.
            let at = text.find('\u{7}').unwrap();
            let mut bytes = text.clone().into_bytes();
            bytes[at] = 0xff;
            let line = text[..at].matches('\n').count() + 1;
            let path = dir.path().join(format!("bad.{format:?}"));
            std::fs::write(&path, &bytes).unwrap();
            let error = Inventory::open(&path, format).err().expect("fails at open").to_string();
            let expected = format!("{}:{line}: ", path.display());
            assert!(
                error.starts_with(&expected) && error.contains(message),
                "{format:?}: {error}"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_text() {
        let mark = "\u{feff}";
        let csv = read_all(
            &format!("{mark}name,kind,system,tier\nx,bot,aws,low\n"),
            FileFormat::Csv,
        )
        .unwrap();
        assert_eq!(csv.len(), 2);
        let yaml = read_all(
            &format!("{mark}version: 1\nidentities:\n- name: x\n  kind: bot\n  system: aws\n  tier: low\n"),
            FileFormat::Yaml,
        )
        .unwrap();
        assert_eq!(yaml.len(), 2);
        let json = format!(
            "{mark}{{\"version\": 1, \"identities\": [{{\"name\": \"x\", \"kind\": \"bot\",\n \"system\": \"aws\", \"tier\": 3}}]}}"
        );
        assert_eq!(
            read_all(&json, FileFormat::Json).unwrap_err(),
            "inventory.json:2: identities[0].tier: invalid type: integer `3`, expected a string"
        );
    }

    #[test]
    fn field_lines_are_found_in_yaml_and_json_items() {
        let yaml = "  - name: one\n    system: aws\n    credentials:\n      - kind: token\n        expires_at: 2026-01-01\n      - kind: access_key\n        # a comment\n        fingerprint: xyz\n        expires_at: 2026-01-01\n    expires_at: 2027-01-01\n";
        assert_eq!(key_line_in_item(yaml, "expires_at"), Some(9));
        assert_eq!(key_line_in_item(yaml, "system"), Some(1));
        assert_eq!(key_line_in_item(yaml, "credentials[0].expires_at"), Some(4));
        assert_eq!(key_line_in_item(yaml, "credentials[1].fingerprint"), Some(7));
        assert_eq!(key_line_in_item(yaml, "credentials[1].expires_at"), Some(8));
        assert_eq!(key_line_in_item(yaml, "credentials[0].fingerprint"), None);
        assert_eq!(key_line_in_item(yaml, "credentials[2].kind"), None);
        assert_eq!(key_line_in_item(yaml, "labels"), None);
        // Items at the key's own indentation, as YAML allows.
        let compact =
            "- name: one\n  credentials:\n  - kind: token\n  - kind: password\n    status: revoked\n  tier: low\n";
        assert_eq!(key_line_in_item(compact, "credentials[1].status"), Some(4));
        assert_eq!(key_line_in_item(compact, "credentials[0].status"), None);
        assert_eq!(key_line_in_item(compact, "tier"), Some(5));
        let json = "{\n  \"name\": \"one\",\n  \"credentials\": [\n    {\n      \"kind\": \"token\",\n      \"expires_at\": \"2026-01-01\"\n    },\n    {\n      \"kind\": \"token\",\n      \"fingerprint\": \"x\"\n    }\n  ],\n  \"expires_at\": \"2027-01-01\"\n}";
        assert_eq!(key_line_in_item(json, "expires_at"), Some(12));
        assert_eq!(key_line_in_item(json, "credentials[1].fingerprint"), Some(9));
        assert_eq!(key_line_in_item(json, "credentials[0].expires_at"), Some(5));
        assert_eq!(key_line_in_item(json, "credentials[0].fingerprint"), None);
    }

    #[test]
    fn identity_lines_are_found_in_yaml_and_json() {
        let yaml = "version: 1\nparties:\n  - handle: a\nidentities:\n  - name: one\n    system: aws\n  - name: two\n    system: aws\n  - name: one\n    system: gcp\n";
        let records = vec![
            ("aws".to_string(), "one".to_string()),
            ("aws".to_string(), "two".to_string()),
            ("gcp".to_string(), "one".to_string()),
        ];
        assert_eq!(locate_identity_line(yaml, &records, 0), Some(5));
        assert_eq!(locate_identity_line(yaml, &records, 1), Some(7));
        assert_eq!(locate_identity_line(yaml, &records, 2), Some(9));
        let json =
            "{\n \"version\": 1,\n \"identities\": [\n  {\n   \"name\": \"one\",\n   \"system\": \"aws\"\n  }\n ]\n}";
        assert_eq!(locate_identity_line(json, &records[..1], 0), Some(5));
    }
}
