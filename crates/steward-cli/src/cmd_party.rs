//! `steward party …`: people and teams.

use crate::cli::{Globals, PartyAddArgs, PartyCommand};
use crate::output::{cell, print_listing, print_record};
use crate::records::PartyRecord;
use crate::settings::Settings;
use std::process::ExitCode;
use steward_core::NewParty;

const HEADERS: &[&str] = &["handle", "display_name", "kind", "team", "status"];

fn row(party: &PartyRecord) -> Vec<String> {
    vec![
        party.handle.clone(),
        cell(&party.display_name),
        cell(&party.kind),
        cell(&party.team),
        party.status.to_string(),
    ]
}

fn print_one(settings: &Settings, party: &steward_core::Party) -> anyhow::Result<()> {
    let record = PartyRecord::from_party(party);
    let fields: Vec<(&str, String)> = HEADERS.iter().copied().zip(row(&record)).collect();
    print_record(settings.output, &record, &fields)
}

pub fn run(globals: &Globals, command: &PartyCommand) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    match command {
        PartyCommand::Add(args) => add(&settings, args)?,
        PartyCommand::List => {
            let mut store = settings.open_store_read_only()?;
            let parties: Vec<PartyRecord> = store.parties()?.iter().map(PartyRecord::from_party).collect();
            print_listing(settings.output, &parties, HEADERS, row)?;
        }
        PartyCommand::Show { handle } => {
            let mut store = settings.open_store_read_only()?;
            print_one(&settings, &store.party(handle)?)?;
        }
        PartyCommand::Set(args) => {
            let (mut store, _) = settings.open_store()?;
            let party = store.set_party_status(&settings.actor, &args.handle, args.status, args.reason.as_deref())?;
            print_one(&settings, &party)?;
            if party.status == steward_core::PartyStatus::Departed {
                // What the departure leaves without an owner, steward or approver: the
                // `owner-departed` work, named now rather than found later.
                let held = store.identities(&steward_store::IdentityFilter {
                    party: Some(party.handle.clone()),
                    ..Default::default()
                })?;
                let live = held.iter().filter(|identity| identity.state.is_live()).count();
                if live > 0 {
                    eprintln!(
                        "note: {} still holds roles on {live} live identities; give them other owners (steward nhi \
                         list --party {})",
                        crate::output::terminal_text(&party.handle),
                        crate::output::terminal_text(&party.handle)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn add(settings: &Settings, args: &PartyAddArgs) -> anyhow::Result<()> {
    let inferred = NewParty::from_handle(&args.handle);
    let party = NewParty {
        display_name: args.name.clone(),
        kind: args.kind.unwrap_or(inferred.kind),
        team: args.team.clone(),
        status: args.status,
        ..inferred
    };
    let (mut store, _) = settings.open_store()?;
    let party = store.add_party(&settings.actor, party)?;
    print_one(settings, &party)
}
