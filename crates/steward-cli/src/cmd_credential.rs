//! `steward credential …`: credentials of identities. Secrets come only from stdin and
//! are reduced at once to a keyed fingerprint and a redacted preview.

use crate::cli::{CredentialAddArgs, CredentialCommand, Globals, OutputFormat};
use crate::output::{cell, instant_cell, print_listing, print_record};
use crate::records::{CredentialRecord, LocationRecord};
use crate::settings::Settings;
use anyhow::Context;
use std::io::Read;
use std::process::ExitCode;
use steward_core::time::default_created;
use steward_core::{Fingerprint, FingerprintKey, NewCredential, canonical_secret, redact_secret};

pub(crate) const HEADERS: &[&str] = &[
    "id",
    "kind",
    "public_id",
    "status",
    "preview",
    "fingerprint",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
];

/// A credential's cells; tables show the fingerprint's first 16 hex digits, CSV all 64.
pub(crate) fn row(credential: &CredentialRecord, format: OutputFormat) -> Vec<String> {
    let shown = if format == OutputFormat::Table { 16 } else { 64 };
    vec![
        cell(&credential.id),
        credential.kind.to_string(),
        cell(&credential.public_id),
        credential.status.to_string(),
        cell(&credential.preview),
        credential
            .fingerprint
            .as_deref()
            .map(|text| text[..shown.min(text.len())].to_string())
            .unwrap_or_default(),
        instant_cell(credential.created_at),
        instant_cell(credential.expires_at),
        instant_cell(credential.last_used_at),
        instant_cell(credential.revoked_at),
    ]
}

/// Reads a secret from stdin, trimming one trailing newline (as `echo` adds).
fn read_secret_from_stdin() -> anyhow::Result<String> {
    let mut secret = String::new();
    std::io::stdin()
        .read_to_string(&mut secret)
        .context("cannot read the secret from standard input")?;
    if secret.ends_with('\n') {
        secret.pop();
        if secret.ends_with('\r') {
            secret.pop();
        }
    }
    if secret.trim().is_empty() {
        return Err(crate::usage(
            "--secret-stdin: standard input is empty or only white space",
        ));
    }
    Ok(secret)
}

fn fingerprint_stdin(key: &FingerprintKey) -> anyhow::Result<(Fingerprint, String)> {
    let secret = read_secret_from_stdin()?;
    // A PEM private key is fingerprinted in its canonical layout, as the scanner
    // fingerprints its copies (a `.pem` file with CRLF line ends or indentation matches them).
    let canonical = canonical_secret(secret.as_bytes());
    let fingerprint = Fingerprint::compute(key, &canonical);
    let preview = redact_secret(&String::from_utf8_lossy(&canonical));
    drop(canonical);
    drop(secret);
    Ok((fingerprint, preview))
}

pub fn run(globals: &Globals, command: &CredentialCommand) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    match command {
        CredentialCommand::Add(args) => add(&settings, args)?,
        CredentialCommand::List { identity } => {
            let mut store = settings.open_store_read_only()?;
            let detail = store.credentials(identity)?;
            let records: Vec<CredentialRecord> = detail
                .credentials
                .iter()
                .map(CredentialRecord::from_credential)
                .collect();
            print_listing(settings.output, &records, HEADERS, |record| {
                row(record, settings.output)
            })?;
        }
        CredentialCommand::Revoke(args) => {
            let (mut store, _) = settings.open_store()?;
            let credential =
                store.revoke_credential(&settings.actor, &args.identity, &args.credential, &args.reason)?;
            let record = CredentialRecord::from_credential(&credential);
            let fields: Vec<(&str, String)> = HEADERS.iter().copied().zip(row(&record, settings.output)).collect();
            print_record(settings.output, &record, &fields)?;
        }
        CredentialCommand::Locate(args) => {
            let (mut store, keys) = settings.open_store()?;
            let (fingerprint, _) = fingerprint_stdin(&keys.fingerprint)?;
            let location = match &args.reason {
                Some(reason) if args.removed || args.dismiss => {
                    store.remove_location(&settings.actor, &fingerprint, args.kind, &args.at, reason, args.dismiss)?
                }
                _ => store.record_location(&settings.actor, &fingerprint, args.kind, &args.at)?,
            };
            let record = LocationRecord::from_location(&location);
            let fields = vec![
                ("id", record.id.to_string()),
                ("credential_id", cell(&record.credential_id)),
                ("kind", record.kind.to_string()),
                ("locator", record.locator.clone()),
                ("first_seen", instant_cell(record.first_seen)),
                ("last_seen", instant_cell(record.last_seen)),
                ("removed_at", instant_cell(record.removed_at)),
                ("dismissed", record.dismissed.to_string()),
            ];
            print_record(settings.output, &record, &fields)?;
            if location.credential_id.is_none() && !args.removed && !args.dismiss {
                eprintln!("note: no credential in the inventory has this secret; recorded as an unmanaged copy");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn add(settings: &Settings, args: &CredentialAddArgs) -> anyhow::Result<()> {
    let (mut store, keys) = settings.open_store()?;
    let (fingerprint, preview) = if args.secret_stdin {
        let (fingerprint, preview) = fingerprint_stdin(&keys.fingerprint)?;
        (Some(fingerprint), Some(preview))
    } else {
        (None, None)
    };
    if fingerprint.is_none() && args.public_id.is_none() {
        return Err(crate::usage("credential add needs --public-id, --secret-stdin or both"));
    }
    let credential = NewCredential {
        kind: args.kind,
        public_id: args.public_id.clone(),
        fingerprint,
        preview,
        // A credential whose expiry is past is expired, unless told otherwise.
        status: args.status.unwrap_or(match args.expires {
            Some(expires) if expires <= settings.actor.now => steward_core::CredentialStatus::Expired,
            _ => steward_core::CredentialStatus::Active,
        }),
        created_at: args
            .created
            .unwrap_or_else(|| default_created(settings.actor.now, [args.expires])),
        expires_at: args.expires,
        last_used_at: None,
        revoked_at: None,
    };
    let credential = store.add_credential(&settings.actor, &args.identity, credential)?;
    // One secret held by several credentials is a shared secret: allowed (the inventory
    // describes the estate as it is), but said, since revoking it breaks them all.
    if let Some(fingerprint) = &credential.fingerprint {
        for (identity, other) in store.credentials_with_fingerprint(fingerprint)? {
            if other.id != credential.id && other.identity_id != credential.identity_id {
                eprintln!(
                    "note: this secret is also credential #{} of {}/{}: a shared secret (revoking it breaks both; \
                     `steward findings` lists it)",
                    other.id.0,
                    crate::output::terminal_text(&identity.system),
                    crate::output::terminal_text(&identity.name)
                );
            }
        }
    }
    let record = CredentialRecord::from_credential(&credential);
    let fields: Vec<(&str, String)> = HEADERS.iter().copied().zip(row(&record, settings.output)).collect();
    print_record(settings.output, &record, &fields)
}
