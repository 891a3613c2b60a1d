//! `steward import` and `steward export`: the inventory in steward's own file format.

use crate::cli::{AUTO_SUMMARY_ABOVE, AuditDetail, ExportArgs, Globals, ImportArgs, OutputFormat};
use crate::inventory_file::{Inventory, detect_format};
use crate::output::write_stdout;
use crate::records::{
    CredentialRecord, FILE_FORMAT_VERSION, IDENTITY_COLUMNS, IdentityRecord, InventoryFile, PartyRecord,
};
use crate::settings::Settings;
use std::process::ExitCode;
use steward_store::{IdentityFilter, ImportAudit, StoreError};

pub fn import(globals: &Globals, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    let format = detect_format(&args.file, args.format)?;
    let file = args.file.display().to_string();
    let mut inventory = Inventory::open(&args.file, format)?;
    let (mut store, _) = settings.open_store()?;
    let audit = match args.audit_detail {
        AuditDetail::Record => ImportAudit::PerRecord,
        AuditDetail::Summary => ImportAudit::Summary,
        AuditDetail::Auto if inventory.len() > AUTO_SUMMARY_ABOVE => ImportAudit::Summary,
        AuditDetail::Auto => ImportAudit::PerRecord,
    };
    let started = std::time::Instant::now();
    let parties = std::mem::take(&mut inventory.parties);
    let outcome = {
        // Identities are parsed as the store takes them; a bad one ends the import, which
        // rolls back, with the file's own error.
        let mut records = inventory
            .identities(settings.actor.now)
            .map(|record| record.map_err(|error| StoreError::ImportSource(error.to_string())));
        store.import(&settings.actor, &file, audit, &parties, &mut records)
    };
    let line_of = |index: usize| inventory.line(index).map(|line| format!(":{line}")).unwrap_or_default();
    let summary = outcome.map_err(|error| match error {
        StoreError::ImportSource(message) => crate::usage(message),
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
    eprintln!(
        "imported {} identities, {} credentials, {} new parties from {file} ({} audit events, {:.2} s)",
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
    let mut store = settings.open_store_read_only()?;
    let parties: Vec<PartyRecord> = store.parties()?.iter().map(PartyRecord::from_party).collect();
    // Two queries, whatever the size: identities, then every credential grouped by owner.
    let mut held: std::collections::HashMap<i64, Vec<CredentialRecord>> = std::collections::HashMap::new();
    for credential in store.all_credentials()? {
        held.entry(credential.identity_id.0)
            .or_default()
            .push(CredentialRecord::from_credential(&credential));
    }
    let identities: Vec<IdentityRecord> = store
        .identities(&IdentityFilter::default())?
        .iter()
        .map(|identity| IdentityRecord {
            credentials: held.remove(&identity.id.0).unwrap_or_default(),
            ..IdentityRecord::from_identity(identity)
        })
        .collect();
    let inventory = InventoryFile {
        version: FILE_FORMAT_VERSION,
        parties,
        identities,
    };
    match settings.output {
        OutputFormat::Table | OutputFormat::Json => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &inventory)?;
            writeln!(out)
        })?,
        OutputFormat::Yaml => {
            let text = serde_norway::to_string(&inventory)?;
            write_stdout(|out| out.write_all(text.as_bytes()))?;
        }
        OutputFormat::Csv => write_stdout(|out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(IDENTITY_COLUMNS)?;
            for record in &inventory.identities {
                writer.write_record(record.text_values())?;
            }
            writer.flush()
        })?,
        OutputFormat::Jsonl | OutputFormat::Sarif => {
            return Err(crate::usage(
                "export writes json, yaml or csv (an inventory file), not jsonl",
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
