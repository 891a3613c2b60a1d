//! Reading steward's inventory files (YAML, JSON, CSV) into import records. Every error
//! names the file, the line and the field, so a user can fix the file; parsing finishes
//! before anything is written, and the import itself is one transaction.

use crate::cli::FileFormat;
use crate::records::{FILE_FORMAT_VERSION, IDENTITY_COLUMNS, IdentityRecord, InventoryFile, ScopeValues};
use std::collections::BTreeMap;
use std::path::Path;
use steward_core::NewParty;
use steward_store::ImportIdentity;

/// A parsed, validated inventory file.
pub struct ParsedInventory {
    /// Parties to create when missing.
    pub parties: Vec<NewParty>,
    /// Identities with credentials.
    pub identities: Vec<ImportIdentity>,
    /// Where each identity is in the file, found when an error needs it.
    pub lines: IdentityLines,
}

/// Where the identities of an inventory file are. A CSV file gives each record's line as
/// it is read; in a YAML or JSON document an identity's line is searched for only when an
/// error names it (searching for every identity up front is a pass over the whole text
/// for each one: a 200,000-identity JSON file did not finish in 13 minutes).
pub enum IdentityLines {
    /// The line of each record (CSV).
    Known(Vec<Option<usize>>),
    /// The (system, name) of each identity, in file order, to search the document for.
    InDocument(Vec<(String, String)>),
}

impl IdentityLines {
    /// The line where identity `index` starts in `text`, when it can be told.
    pub fn line(&self, text: &str, index: usize) -> Option<usize> {
        match self {
            IdentityLines::Known(lines) => lines.get(index).copied().flatten(),
            IdentityLines::InDocument(names) => locate_identity_line(text, names, index),
        }
    }
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
fn refine_yaml_line(text: &str, line: usize, path: &str) -> usize {
    let Some(key) = path
        .rsplit('.')
        .next()
        .filter(|key| !key.contains('[') && !key.is_empty())
    else {
        return line;
    };
    let key_prefix = format!("{key}:");
    let mut lines = text.lines().enumerate().skip(line.saturating_sub(1));
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

fn convert(file: &str, text: &str, inventory: InventoryFile, now: jiff::Timestamp) -> anyhow::Result<ParsedInventory> {
    if inventory.version != FILE_FORMAT_VERSION {
        return Err(crate::usage(format!(
            "{file}: version: {} is not supported (this steward reads version {FILE_FORMAT_VERSION})",
            inventory.version
        )));
    }
    let names: Vec<(String, String)> = inventory
        .identities
        .iter()
        .map(|record| (record.system.clone(), record.name.clone()))
        .collect();
    let mut parties = Vec::with_capacity(inventory.parties.len());
    for (index, party) in inventory.parties.iter().enumerate() {
        steward_core::party::validate_handle(&party.handle)
            .map_err(|error| crate::usage(format!("{file}: parties[{index}].handle: {error}")))?;
        parties.push(party.to_new_party());
    }
    let source = format!("import:{file}");
    let mut identities = Vec::with_capacity(inventory.identities.len());
    for (index, record) in inventory.identities.into_iter().enumerate() {
        let fail = |field: String, message: String| {
            document_error(
                file,
                locate_identity_line(text, &names, index),
                format!("identities[{index}].{field}"),
                message,
            )
        };
        let identity = record
            .to_new_identity(&source, now)
            .map_err(|(field, message)| fail(field, message))?;
        let mut credentials = Vec::with_capacity(record.credentials.len());
        for (position, credential) in record.credentials.iter().enumerate() {
            credentials.push(
                credential
                    .to_new_credential(now)
                    .map_err(|(field, message)| fail(format!("credentials[{position}].{field}"), message))?,
            );
        }
        identities.push(ImportIdentity { identity, credentials });
    }
    Ok(ParsedInventory {
        parties,
        identities,
        lines: IdentityLines::InDocument(names),
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split([';', ','])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

fn csv_record(headers: &[String], values: &csv::StringRecord) -> Result<IdentityRecord, (String, String)> {
    // Build the same record as YAML/JSON would, through serde, so the rules are identical.
    let mut object = serde_json::Map::new();
    for (header, value) in headers.iter().zip(values.iter()) {
        if value.is_empty() {
            continue;
        }
        let json = match header.as_str() {
            "id" => continue,
            "backup_approvers" => serde_json::json!(split_list(value)),
            "scope" | "labels" => {
                let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for pair in split_list(value) {
                    let (key, item) = pair
                        .split_once('=')
                        .ok_or_else(|| (header.clone(), format!("'{pair}' is not key=value")))?;
                    map.entry(key.trim().to_string())
                        .or_default()
                        .push(item.trim().to_string());
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

fn read_csv(file: &str, text: &str, now: jiff::Timestamp) -> anyhow::Result<ParsedInventory> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|error| crate::usage(format!("{file}:1: {error}")))?
        .iter()
        .map(|header| header.trim().to_string())
        .collect();
    for header in &headers {
        if !IDENTITY_COLUMNS.contains(&header.as_str()) {
            return Err(crate::usage(format!(
                "{file}:1: unknown column '{header}' (known: {})",
                IDENTITY_COLUMNS.join(", ")
            )));
        }
    }
    let source = format!("import:{file}");
    let mut identities = Vec::new();
    let mut lines = Vec::new();
    for result in reader.records() {
        let values = result.map_err(|error| {
            let line = error
                .position()
                .map(|position| format!(":{}", position.line()))
                .unwrap_or_default();
            crate::usage(format!("{file}{line}: {error}"))
        })?;
        let line = values.position().map(|position| position.line() as usize);
        let fail = |field: String, message: String| document_error(file, line, format!("column {field}"), message);
        let record = csv_record(&headers, &values).map_err(|(field, message)| fail(field, message))?;
        let identity = record
            .to_new_identity(&source, now)
            .map_err(|(field, message)| fail(field, message))?;
        identities.push(ImportIdentity {
            identity,
            credentials: Vec::new(),
        });
        lines.push(line);
    }
    Ok(ParsedInventory {
        parties: Vec::new(),
        identities,
        lines: IdentityLines::Known(lines),
    })
}

/// Reads and validates an inventory file.
pub fn read_inventory(
    path: &Path,
    format: FileFormat,
    now: jiff::Timestamp,
) -> anyhow::Result<(ParsedInventory, String)> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| anyhow::anyhow!("cannot read {file}: {error}"))?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let line = error.as_bytes()[..offset].iter().filter(|byte| **byte == b'\n').count() + 1;
        crate::usage(format!("{file}:{line}: not valid UTF-8"))
    })?;
    let parsed = match format {
        FileFormat::Csv => read_csv(&file, &text, now)?,
        FileFormat::Json => {
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            let inventory: InventoryFile = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner();
                document_error(&file, Some(inner.line()), path, inner.to_string())
            })?;
            convert(&file, &text, inventory, now)?
        }
        FileFormat::Yaml => {
            let deserializer = serde_norway::Deserializer::from_str(&text);
            let inventory: InventoryFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner();
                let line = inner
                    .location()
                    .map(|location| refine_yaml_line(&text, location.line(), &path));
                document_error(&file, line, path, inner.to_string())
            })?;
            convert(&file, &text, inventory, now)?
        }
    };
    Ok((parsed, text))
}

#[cfg(test)]
mod tests {
    use super::*;

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
