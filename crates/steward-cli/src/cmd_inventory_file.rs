//! `steward import` and `steward export`: the inventory in steward's own file format.

use crate::cli::{AUTO_SUMMARY_ABOVE, AuditDetail, ExportArgs, FileFormat, Globals, ImportArgs, OutputFormat};
use crate::inventory_file::{Inventory, detect_format};
use crate::output::{write_json_element, write_stdout, write_walk};
use crate::records::{
    CredentialRecord, FILE_FORMAT_VERSION, IDENTITY_COLUMNS, IdentityRecord, InventoryFile, PartyRecord, SecretRecord,
};
use crate::settings::Settings;
use clap::ValueEnum;
use std::io::Write;
use std::process::ExitCode;
use steward_store::{ExportPart, IdentityBatch, ImportAudit, StoreError};

pub fn import(globals: &Globals, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    let format = detect_format(&args.file, args.format)?;
    let file = args.file.display().to_string();
    let mut inventory = Inventory::open(&args.file, format)?;
    // Fingerprints made under another key never match: a file that says so is refused
    // when it has any (its secrets at once, a credential's when it is read).
    let mut key_problem = None;
    let dropped_secrets = if args.drop_fingerprints {
        inventory.drop_secrets()
    } else {
        let key = crate::keys::load_fingerprint_key(&settings.data_dir)?;
        key_problem = inventory.fingerprint_key_problem(key.map(|key| key.id()).as_deref());
        if let Some(problem) = &key_problem
            && inventory.has_secrets()
        {
            return Err(crate::usage(problem.clone()));
        }
        0
    };
    // Checked before the store is opened: a bad secret touches nothing.
    let secrets = inventory.secrets(settings.actor.now)?;
    let (mut store, _) = settings.open_store()?;
    let audit = match args.audit_detail {
        AuditDetail::Record => ImportAudit::PerRecord,
        AuditDetail::Summary => ImportAudit::Summary,
        AuditDetail::Auto if inventory.count() > AUTO_SUMMARY_ABOVE => ImportAudit::Summary,
        AuditDetail::Auto => ImportAudit::PerRecord,
    };
    let started = std::time::Instant::now();
    let parties = std::mem::take(&mut inventory.parties);
    // Identities are parsed (ahead, on another thread) as the store takes them; a bad one
    // ends the import, which rolls back, with the file's own error.
    let outcome = inventory.with_identities(settings.actor.now, |records| {
        let drop_fingerprints = args.drop_fingerprints;
        let mut records = records.map(|record| {
            let mut record = record.map_err(|error| StoreError::Callback(error.to_string()))?;
            if let Some(problem) = &key_problem
                && record
                    .credentials
                    .iter()
                    .any(|credential| credential.fingerprint.is_some())
            {
                return Err(StoreError::Callback(problem.clone()));
            }
            if drop_fingerprints {
                for credential in &mut record.credentials {
                    credential.fingerprint = None;
                }
            }
            Ok(record)
        });
        store.import_with_secrets(&settings.actor, &file, audit, &parties, &mut records, &secrets)
    });
    let line_of = |index: usize| inventory.line(index).map(|line| format!(":{line}")).unwrap_or_default();
    let summary = outcome.map_err(|error| match error {
        StoreError::Callback(message) => crate::usage(message),
        StoreError::ImportRecord { index, name, message } => crate::usage(format!(
            "{file}{}: identities[{}] ({name}): {message}; nothing was imported",
            line_of(index - 1),
            index - 1
        )),
        StoreError::DuplicateIdentity { system, name } => {
            let matching = inventory.indexes_of(&system, &name);
            let index = if matching.len() > 1 {
                matching[1]
            } else {
                matching.first().copied().unwrap_or(0)
            };
            let why = if matching.len() > 1 {
                "appears twice in the file"
            } else {
                "already exists"
            };
            crate::usage(format!(
                "{file}{}: identities[{index}].name: identity '{system}/{name}' {why}; nothing was imported",
                line_of(index)
            ))
        }
        other => other.into(),
    })?;
    let copies = if secrets.is_empty() {
        String::new()
    } else {
        format!(
            ", {} new scanned secrets, {} new copies of secrets",
            summary.secrets, summary.copies
        )
    };
    if args.drop_fingerprints {
        eprintln!(
            "--drop-fingerprints: credentials imported without fingerprints, {dropped_secrets} secrets of the file left \
             out; scan again with --record to find their copies under this installation's key"
        );
    }
    eprintln!(
        "imported {} identities, {} credentials, {} new parties{copies} from {file} ({} audit events, {:.2} s)",
        summary.identities,
        summary.credentials,
        summary.parties,
        summary.events,
        started.elapsed().as_secs_f64()
    );
    if settings.output != OutputFormat::Table {
        crate::output::print_record(settings.output, &summary, &[])?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(globals: &Globals, _args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    let format = match globals.output {
        None | Some(OutputFormat::Json) => FileFormat::Json,
        Some(OutputFormat::Yaml) => FileFormat::Yaml,
        Some(OutputFormat::Csv) => FileFormat::Csv,
        Some(other @ (OutputFormat::Table | OutputFormat::Jsonl | OutputFormat::Sarif)) => {
            return Err(crate::usage(format!(
                "export writes json, yaml or csv (an inventory file), not {}",
                other
                    .to_possible_value()
                    .map_or_else(String::new, |value| value.get_name().to_string())
            )));
        }
    };
    // Without the key at hand (a copy of the database, a reader without keys/), the file
    // says so, and an import refuses its fingerprints rather than take them unchecked.
    let fingerprint_key = Some(
        crate::keys::load_fingerprint_key(&settings.data_dir)?
            .map_or_else(|| crate::records::UNKNOWN_KEY.to_string(), |key| key.id()),
    );
    let mut store = settings.open_store_read_only()?;
    write_stdout(|out| {
        // Parties, then identities a batch at a time, from one snapshot of the store,
        // written as they come (each batch's records serialized on all cores), so memory is
        // that of a batch.
        let mut writer = None;
        write_walk(
            |visit| store.export_inventory(visit),
            |part| match part {
                ExportPart::Parties(parties) => {
                    let parties = parties.iter().map(PartyRecord::from_party).collect();
                    ExportWriter::start(format, parties, fingerprint_key.clone(), &mut *out)
                        .map(|started| writer = Some(started))
                }
                ExportPart::Secrets(secrets) => match writer.as_mut() {
                    Some(writer) => {
                        writer.secrets = secrets.iter().map(SecretRecord::from_known).collect();
                        Ok(())
                    }
                    None => Err(std::io::Error::other("secrets came before the parties")),
                },
                ExportPart::Identities(batch) => match writer.as_mut() {
                    Some(writer) => writer.batch(&mut *out, batch),
                    None => Err(std::io::Error::other("identities came before the parties")),
                },
            },
        )?;
        match writer {
            Some(writer) => writer.finish(out),
            None => Err(std::io::Error::other("the store handed out no parties")),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes an inventory file in parts: the header, batches of identities, the end (with
/// the secrets, held until then). The bytes are those of serializing the whole
/// [`InventoryFile`] at once.
struct ExportWriter {
    format: FileFormat,
    /// The secrets, written after the identities (not in CSV, which has no place for them).
    secrets: Vec<SecretRecord>,
    /// Identities written so far.
    written: usize,
    /// The end of the header, written with the first identity or at the end.
    empty_end: &'static str,
}

impl ExportWriter {
    fn start(
        format: FileFormat,
        parties: Vec<PartyRecord>,
        fingerprint_key: Option<String>,
        out: &mut dyn Write,
    ) -> std::io::Result<Self> {
        let header = InventoryFile {
            version: FILE_FORMAT_VERSION,
            fingerprint_key,
            parties,
            identities: Vec::new(),
            secrets: Vec::new(),
        };
        // The header as a whole file with no identities, written up to where they go.
        let (text, empty_end) = match format {
            FileFormat::Json => (
                serde_json::to_string_pretty(&header).map_err(std::io::Error::other)?,
                "[]\n}",
            ),
            FileFormat::Yaml => (
                serde_norway::to_string(&header).map_err(std::io::Error::other)?,
                " []\n",
            ),
            FileFormat::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                writer.write_record(IDENTITY_COLUMNS)?;
                let text = String::from_utf8(writer.into_inner().map_err(std::io::Error::other)?)
                    .expect("CSV of UTF-8 is UTF-8");
                (text, "")
            }
        };
        let head = text
            .strip_suffix(empty_end)
            .ok_or_else(|| std::io::Error::other("unexpected serialization of an empty inventory"))?;
        out.write_all(head.as_bytes())?;
        Ok(ExportWriter {
            format,
            secrets: Vec::new(),
            written: 0,
            empty_end,
        })
    }

    fn batch(&mut self, out: &mut dyn Write, batch: IdentityBatch) -> std::io::Result<()> {
        use rayon::prelude::*;
        let records: Vec<IdentityRecord> = batch
            .into_par_iter()
            .map(|(identity, credentials)| IdentityRecord {
                credentials: credentials.iter().map(CredentialRecord::from_credential).collect(),
                ..IdentityRecord::from_owned_identity(identity)
            })
            .collect();
        self.records(out, &records)
    }

    fn records(&mut self, out: &mut dyn Write, records: &[IdentityRecord]) -> std::io::Result<()> {
        use rayon::prelude::*;
        let format = self.format;
        let first = self.written;
        let parts = records
            .par_iter()
            .enumerate()
            .map(|(position, record)| serialize_identity(format, record, first + position == 0))
            .collect::<std::io::Result<Vec<Vec<u8>>>>()?;
        if first == 0 && !parts.is_empty() {
            // The rest of the header, where it differs from that of an empty file.
            out.write_all(match format {
                FileFormat::Json => b"[",
                FileFormat::Yaml => b"\n",
                FileFormat::Csv => b"",
            })?;
        }
        for part in &parts {
            out.write_all(part)?;
        }
        self.written += parts.len();
        Ok(())
    }

    fn finish(self, out: &mut dyn Write) -> std::io::Result<()> {
        // The end of the identities, then the secrets as the whole file would have them:
        // a document of the secrets alone, from its first key on.
        let tail = match self.format {
            FileFormat::Csv => return Ok(()),
            _ if self.secrets.is_empty() => None,
            FileFormat::Json => {
                let text = serde_json::to_string_pretty(&SecretsOnly { secrets: &self.secrets })
                    .map_err(std::io::Error::other)?;
                Some(format!(",\n{}", text.strip_prefix("{\n").unwrap_or(&text)))
            }
            FileFormat::Yaml => {
                Some(serde_norway::to_string(&SecretsOnly { secrets: &self.secrets }).map_err(std::io::Error::other)?)
            }
        };
        match (self.format, self.written, tail) {
            (FileFormat::Json, 0, None) => writeln!(out, "{}", self.empty_end),
            (FileFormat::Json, 0, Some(tail)) => writeln!(out, "[]{tail}"),
            (FileFormat::Json, _, None) => writeln!(out, "\n  ]\n}}"),
            (FileFormat::Json, _, Some(tail)) => writeln!(out, "\n  ]{tail}"),
            (FileFormat::Yaml, 0, tail) => write!(out, "{}{}", self.empty_end, tail.unwrap_or_default()),
            (_, _, tail) => out.write_all(tail.unwrap_or_default().as_bytes()),
        }
    }
}

/// The secrets of an inventory file, as a document of their own (see
/// [`ExportWriter::finish`]).
#[derive(serde::Serialize)]
struct SecretsOnly<'a> {
    secrets: &'a [SecretRecord],
}

/// One identity as it appears in an inventory file of `format`: in JSON an element of
/// the `identities` array, 4 spaces in, after a comma unless `first`; in YAML an item of
/// the block sequence at column 0; in CSV a row.
fn serialize_identity(format: FileFormat, record: &IdentityRecord, first: bool) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1024);
    match format {
        FileFormat::Json => {
            let separator: &[u8] = if first { b"\n" } else { b",\n" };
            write_json_element(&mut out, record, separator, 2)?;
        }
        FileFormat::Yaml => {
            serde_norway::to_writer(&mut out, std::slice::from_ref(record)).map_err(std::io::Error::other)?;
        }
        FileFormat::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            // Guarded as every CSV steward writes; import takes the guard off again.
            let values = record.text_values();
            writer.write_record(
                values
                    .iter()
                    .map(|value| crate::output::spreadsheet_safe(value).into_owned()),
            )?;
            writer.flush()?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records with what serializes in more than one way: multi-line and quoted text,
    /// lists, maps, credentials, empty values.
    fn records(count: usize) -> Vec<IdentityRecord> {
        (0..count)
            .map(|index| {
                let json = serde_json::json!({
                    "id": index,
                    "name": format!("svc-{index}"),
                    "kind": "service_account",
                    "system": if index % 2 == 0 { "aws" } else { "gcp" },
                    "tier": "high",
                    "purpose": if index % 3 == 0 { "line one\nline two: \"quoted\" # not a comment\n  é\ttab" } else { "short" },
                    "backup_approvers": if index % 2 == 0 { vec!["bob@example.com"] } else { vec![] },
                    "scope": {"system": "billing", "data": ["a", "b"]},
                    "labels": if index % 4 == 0 { serde_json::json!({"k": "v: w"}) } else { serde_json::json!({}) },
                    "review_due": "2027-03-01",
                    "credentials": if index % 2 == 0 {
                        serde_json::json!([{"kind": "access_key", "public_id": "AKIA1", "created_at": "2026-01-01T00:00:00Z"},
                                           {"kind": "api_key", "preview": "sk-…1234"}])
                    } else {
                        serde_json::json!([])
                    },
                });
                serde_json::from_value(json).unwrap()
            })
            .collect()
    }

    /// What writing `records` in batches of `batch` gives.
    fn written(
        format: FileFormat,
        parties: &[PartyRecord],
        records: &[IdentityRecord],
        secrets: &[SecretRecord],
        batch: usize,
    ) -> String {
        let mut out = Vec::new();
        let mut writer =
            ExportWriter::start(format, parties.to_vec(), Some("0123456789abcdef".into()), &mut out).unwrap();
        writer.secrets = secrets.to_vec();
        for chunk in records.chunks(batch.max(1)) {
            writer.records(&mut out, chunk).unwrap();
        }
        writer.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_export_written_in_batches_is_the_file_serialized_whole() {
        let parties: Vec<PartyRecord> =
            serde_json::from_str(r#"[{"handle": "alice@example.com", "display_name": "Alice: \"A\""}]"#).unwrap();
        let some_secrets: Vec<SecretRecord> = serde_json::from_value(serde_json::json!([
            {"fingerprint": "ab".repeat(32), "rule_id": "aws-access-key", "rule_name": "AWS: \"key\"",
             "preview": "AKIA…(20 chars)", "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-02-01T00:00:00Z",
             "locations": [{"kind": "repository_file", "locator": "/src/app@0123:config/a b.env:3",
                            "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-02-01T00:00:00Z"},
                           {"kind": "chat_message", "locator": "x.zip#general@1.2:1",
                            "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z",
                            "removed_at": "2026-03-01T00:00:00Z"}]},
            {"fingerprint": "cd".repeat(32), "locations": [{"kind": "ticket", "locator": "OPS-1#c2",
                            "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z"}]}
        ]))
        .unwrap();
        for (party_count, count, batch) in [(0, 0, 1), (1, 0, 1), (0, 1, 1), (1, 7, 3), (1, 12, 12), (1, 12, 5)] {
            for secrets in [&[][..], &some_secrets[..]] {
                let parties = &parties[..party_count];
                let records = records(count);
                let whole = InventoryFile {
                    version: FILE_FORMAT_VERSION,
                    fingerprint_key: Some("0123456789abcdef".into()),
                    parties: parties.to_vec(),
                    identities: records.clone(),
                    secrets: secrets.to_vec(),
                };
                let json = format!("{}\n", serde_json::to_string_pretty(&whole).unwrap());
                assert_eq!(
                    written(FileFormat::Json, parties, &records, secrets, batch),
                    json,
                    "{count} in {batch}"
                );
                let yaml = serde_norway::to_string(&whole).unwrap();
                assert_eq!(
                    written(FileFormat::Yaml, parties, &records, secrets, batch),
                    yaml,
                    "{count} in {batch}"
                );
                let mut csv = csv::Writer::from_writer(Vec::new());
                csv.write_record(IDENTITY_COLUMNS).unwrap();
                for record in &records {
                    let values = record.text_values();
                    csv.write_record(
                        values
                            .iter()
                            .map(|value| crate::output::spreadsheet_safe(value).into_owned()),
                    )
                    .unwrap();
                }
                let csv = String::from_utf8(csv.into_inner().unwrap()).unwrap();
                assert_eq!(
                    written(FileFormat::Csv, parties, &records, secrets, batch),
                    csv,
                    "{count} in {batch}"
                );
            }
        }
    }
}
