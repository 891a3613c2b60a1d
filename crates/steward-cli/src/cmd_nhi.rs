//! `steward nhi …`: register, list, show, change and transition identities.

use crate::cli::{Globals, NhiAddArgs, NhiCommand, NhiListArgs, NhiSetArgs, OutputFormat, Update};
use crate::output::{ListingWriter, instant_cell, print_listing, print_record, write_stdout, write_walk};
use crate::records::{CredentialRecord, IDENTITY_COLUMNS, IdentityRecord, LocationRecord};
use crate::settings::Settings;
use serde::Serialize;
use std::process::ExitCode;
use steward_core::time::default_created;
use steward_core::{Identity, IdentityPatch, NewIdentity, Policy, Provenance, Roles};
use steward_store::IdentityFilter;

/// Columns shown in table output (CSV and JSON carry everything).
const TABLE_COLUMNS: &[&str] = &[
    "id",
    "name",
    "kind",
    "system",
    "environment",
    "tier",
    "state",
    "business_owner",
    "technical_steward",
    "review_due",
];

fn table_row(record: &IdentityRecord) -> Vec<String> {
    let full = record.text_values();
    TABLE_COLUMNS
        .iter()
        .map(|column| {
            full[IDENTITY_COLUMNS
                .iter()
                .position(|known| known == column)
                .expect("known column")]
            .clone()
        })
        .collect()
}

fn fields(record: &IdentityRecord) -> Vec<(&'static str, String)> {
    IDENTITY_COLUMNS.iter().copied().zip(record.text_values()).collect()
}

pub fn run(globals: &Globals, command: &NhiCommand) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    match command {
        NhiCommand::Add(args) => add(&settings, args)?,
        NhiCommand::List(args) => list(&settings, args)?,
        NhiCommand::Show { identity } => show(&settings, identity)?,
        NhiCommand::Set(args) => set(&settings, args)?,
        NhiCommand::Transition(args) => {
            let (mut store, _) = settings.open_store()?;
            let before = store.identity(&args.identity)?.state;
            let identity = store.transition_identity(&settings.actor, &args.identity, args.to, &args.reason)?;
            match settings.output {
                OutputFormat::Table => println!(
                    "{}/{}: {} -> {}",
                    identity.system, identity.name, before, identity.state
                ),
                _ => print_identity(&settings, &identity)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_identity(settings: &Settings, identity: &steward_core::Identity) -> anyhow::Result<()> {
    let record = IdentityRecord::from_identity(identity);
    print_record(settings.output, &record, &fields(&record))
}

fn add(settings: &Settings, args: &NhiAddArgs) -> anyhow::Result<()> {
    let now = settings.actor.now;
    let identity = NewIdentity {
        name: args.name.clone(),
        kind: args.kind,
        system: args.system.clone(),
        external_id: args.external_id.clone(),
        environment: args.environment.clone(),
        tier: args.tier,
        state: args.state,
        purpose: args.purpose.clone(),
        scope: args.scope.clone().unwrap_or_default(),
        labels: args.labels.iter().cloned().collect(),
        roles: Roles {
            business_owner: args.owner.clone(),
            technical_steward: args.steward.clone(),
            backup_approvers: args.backups.clone(),
            control_owner: args.control_owner.clone(),
        },
        created_at: args.created.unwrap_or_else(|| default_created(now, [args.expires])),
        expires_at: args.expires,
        review_due: Some(
            args.review_due
                .unwrap_or_else(|| Policy::default().default_review_due(args.tier, now)),
        ),
        last_attested_at: None,
        last_used_at: None,
        last_rotated_at: None,
        provenance: Provenance {
            source: "manual".into(),
            observed_at: now,
        },
    };
    let (mut store, _) = settings.open_store()?;
    refuse_departed(
        &mut *store,
        identity
            .roles
            .business_owner
            .iter()
            .chain(&identity.roles.technical_steward)
            .chain(&identity.roles.backup_approvers)
            .chain(&identity.roles.control_owner),
    )?;
    let identity = store.add_identity(&settings.actor, identity)?;
    print_identity(settings, &identity)
}

/// Refuses to give a role to a party who has departed: by hand, a role goes to someone
/// who can act on it. (Imports keep departed owners: they describe an estate as it is, and
/// a departed owner is what the `owner-departed` finding is for.)
fn refuse_departed<'h>(
    store: &mut dyn steward_store::Store,
    handles: impl Iterator<Item = &'h String>,
) -> anyhow::Result<()> {
    for handle in handles {
        let Ok(party) = store.party(handle) else {
            continue; // unknown: the store names it
        };
        if party.status == steward_core::PartyStatus::Departed {
            return Err(anyhow::anyhow!(
                "{handle} has departed: give the role to an active party (steward party list)"
            ));
        }
    }
    Ok(())
}

fn list(settings: &Settings, args: &NhiListArgs) -> anyhow::Result<()> {
    let mut store = settings.open_store_read_only()?;
    // A mistyped handle is an error, as in `audit log --party`, not an empty list.
    if let Some(handle) = &args.party {
        store.party(handle)?;
    }
    let filter = IdentityFilter {
        system: args.system.clone(),
        tier: args.tier,
        environment: args.environment.clone(),
        state: args.state,
        kind: args.kind,
        party: args.party.clone(),
        limit: args.limit,
    };
    match settings.output {
        // A table needs every row for its column widths.
        OutputFormat::Table => {
            let records: Vec<IdentityRecord> = store
                .identities(&filter)?
                .into_iter()
                .map(IdentityRecord::from_owned_identity)
                .collect();
            print_listing(settings.output, &records, TABLE_COLUMNS, table_row)
        }
        // Written as the store hands out batches, so memory does not grow with the listing.
        format @ (OutputFormat::Json | OutputFormat::Jsonl | OutputFormat::Csv) => write_stdout(|out| {
            let mut writer = ListingWriter::start(format, IDENTITY_COLUMNS, &mut *out)?;
            write_walk(
                |visit| store.for_each_identity_batch(&filter, visit),
                |batch: Vec<Identity>| {
                    let records: Vec<IdentityRecord> =
                        batch.into_iter().map(IdentityRecord::from_owned_identity).collect();
                    writer.items(&mut *out, &records, IdentityRecord::text_values)
                },
            )?;
            writer.finish(out)
        }),
        format => print_listing(
            format,
            &[] as &[IdentityRecord],
            IDENTITY_COLUMNS,
            IdentityRecord::text_values,
        ),
    }
}

/// `nhi show -o json`: the identity with its credentials and known copies.
#[derive(Serialize)]
struct IdentityDetailRecord {
    #[serde(flatten)]
    identity: IdentityRecord,
    locations: Vec<LocationRecord>,
}

fn show(settings: &Settings, reference: &str) -> anyhow::Result<()> {
    let mut store = settings.open_store_read_only()?;
    let detail = store.credentials(reference)?;
    let locations: Vec<LocationRecord> = store
        .locations(reference)?
        .iter()
        .map(LocationRecord::from_location)
        .collect();
    let mut record = IdentityRecord::from_identity(&detail.identity);
    record.credentials = detail
        .credentials
        .iter()
        .map(CredentialRecord::from_credential)
        .collect();
    match settings.output {
        crate::cli::OutputFormat::Table => {
            print_record(settings.output, &record, &fields(&record))?;
            write_stdout(|out| {
                writeln!(out, "\ncredentials ({}):", record.credentials.len())?;
                for credential in &record.credentials {
                    let values: Vec<String> = crate::cmd_credential::row(credential, OutputFormat::Table)
                        .iter()
                        .map(|value| crate::output::terminal_text(value).into_owned())
                        .collect();
                    writeln!(
                        out,
                        "  #{} {} {} [{}] preview {} created {} expires {}",
                        values[0], values[1], values[2], values[3], values[4], values[6], values[7]
                    )?;
                }
                let removed = locations
                    .iter()
                    .filter(|location| location.removed_at.is_some())
                    .count();
                writeln!(
                    out,
                    "\nknown copies ({} live, {removed} removed):",
                    locations.len() - removed
                )?;
                for location in &locations {
                    let how = if location.dismissed { "dismissed" } else { "removed" };
                    let gone = location
                        .removed_at
                        .map(|at| format!(", {how} {}", instant_cell(Some(at))))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "  {} {} (first seen {}, last seen {}{gone})",
                        location.kind,
                        crate::output::terminal_text(&location.locator),
                        instant_cell(location.first_seen),
                        instant_cell(location.last_seen)
                    )?;
                }
                Ok(())
            })
        }
        // CSV: the identity's own fields, one row (as `nhi add` and `nhi set` print it);
        // its credentials and copies are `credential list -o csv`'s.
        crate::cli::OutputFormat::Csv => print_record(settings.output, &record, &fields(&record)),
        format => print_record(
            format,
            &IdentityDetailRecord {
                identity: record,
                locations,
            },
            &[],
        ),
    }
}

fn set(settings: &Settings, args: &NhiSetArgs) -> anyhow::Result<()> {
    let backups = args.backups.clone().map(|update| match update {
        Update::Clear => Vec::new(),
        Update::Set(text) => text
            .split(',')
            .map(str::trim)
            .filter(|handle| !handle.is_empty())
            .map(str::to_string)
            .collect(),
    });
    let patch = IdentityPatch {
        purpose: args.purpose.clone().map(Update::into_option),
        scope: args
            .scope
            .clone()
            .map(|update| update.into_option().unwrap_or_default()),
        tier: args.tier,
        environment: args.environment.clone(),
        external_id: args.external_id.clone().map(Update::into_option),
        expires_at: args.expires.clone().map(Update::into_option),
        review_due: args.review_due.clone().map(Update::into_option),
        set_labels: {
            let mut labels = std::collections::BTreeMap::new();
            for (key, value) in &args.labels {
                if labels.insert(key.clone(), value.clone()).is_some() || args.unset_labels.contains(key) {
                    return Err(crate::usage(format!(
                        "--label {key}: the label is given twice (by --label or --unset-label); say it once"
                    )));
                }
            }
            labels
        },
        remove_labels: args.unset_labels.clone(),
        business_owner: args.owner.clone().map(Update::into_option),
        technical_steward: args.steward.clone().map(Update::into_option),
        backup_approvers: backups,
        control_owner: args.control_owner.clone().map(Update::into_option),
        attested_at: args.attest.then_some(settings.actor.now),
    };
    if patch.is_empty() {
        return Err(crate::usage(
            "nhi set: nothing to change (give at least one field flag; see --help)",
        ));
    }
    let (mut store, _) = settings.open_store()?;
    let newly_given = [&patch.business_owner, &patch.technical_steward, &patch.control_owner]
        .into_iter()
        .flatten()
        .flatten()
        .chain(patch.backup_approvers.iter().flatten());
    refuse_departed(&mut *store, newly_given)?;
    if args.attest {
        // An attestation is the business owner's: an orphaned identity (no owner, or a
        // departed one) gets an active owner first, in the same command if need be.
        let owner = match &patch.business_owner {
            Some(given) => given.clone(),
            None => store.identity(&args.identity)?.roles.business_owner,
        };
        let departed = match &owner {
            Some(handle) => store.party(handle)?.status == steward_core::PartyStatus::Departed,
            None => false,
        };
        if owner.is_none() || departed {
            let why = owner.map_or_else(
                || "it has no business owner".to_string(),
                |handle| format!("its business owner {handle} has departed"),
            );
            return Err(anyhow::anyhow!(
                "cannot attest {}: {why}; give it an active owner (--owner, in the same command is fine)",
                args.identity
            ));
        }
    }
    let identity = store.update_identity(&settings.actor, &args.identity, &patch, args.reason.as_deref())?;
    print_identity(settings, &identity)
}
