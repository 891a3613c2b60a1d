//! `steward audit …`: read and verify the tamper-evident audit trail.

use crate::cli::{AuditCommand, AuditLogArgs, Globals, OutputFormat};
use crate::output::{cell, print_listing, print_record};
use crate::settings::Settings;
use serde::Serialize;
use std::process::ExitCode;
use steward_core::audit::AuditEvent;
use steward_store::EventFilter;

/// An audit event as printed: `before`/`after` as nested JSON, exactly as stored (so the
/// event's hash and an import's `records_sha256` can be checked from this output), hashes
/// in hex.
#[derive(Serialize)]
struct EventRecord {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject_kind: String,
    subject_id: Option<i64>,
    subject: String,
    reason: Option<String>,
    before: Option<Box<serde_json::value::RawValue>>,
    after: Option<Box<serde_json::value::RawValue>>,
    prev_hash: String,
    hash: String,
}

/// A stored snapshot as it is (not re-serialised, which would reorder its keys), or as a
/// JSON string if it is not JSON.
fn parse_snapshot(text: Option<String>) -> Option<Box<serde_json::value::RawValue>> {
    text.map(|text| {
        if serde_json::from_str::<&serde_json::value::RawValue>(&text).is_ok() {
            serde_json::value::RawValue::from_string(text).expect("checked to be JSON")
        } else {
            serde_json::value::to_raw_value(&text).expect("a string serialises")
        }
    })
}

impl EventRecord {
    fn from_event(event: AuditEvent) -> Self {
        let draft = event.draft;
        EventRecord {
            seq: event.seq,
            at: steward_core::time::format_instant(draft.at),
            actor: draft.actor,
            action: draft.action,
            subject_kind: draft.subject_kind,
            subject_id: draft.subject_id,
            subject: draft.subject_name,
            reason: draft.reason,
            before: parse_snapshot(draft.before),
            after: parse_snapshot(draft.after),
            prev_hash: hex::encode(event.prev_hash),
            hash: hex::encode(event.hash),
        }
    }
}

const HEADERS: &[&str] = &["seq", "at", "actor", "action", "subject", "reason"];

fn row(event: &EventRecord) -> Vec<String> {
    vec![
        event.seq.to_string(),
        event.at.clone(),
        event.actor.clone(),
        event.action.clone(),
        event.subject.clone(),
        cell(&event.reason),
    ]
}

pub fn run(globals: &Globals, command: &AuditCommand) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    match command {
        AuditCommand::Log(args) => log(&settings, args),
        AuditCommand::Verify(args) => {
            let key = crate::keys::load_verifying_key(&settings.data_dir, args.public_key.as_deref())?;
            let mut store = settings.open_store_read_only()?;
            let started = std::time::Instant::now();
            let outcome = store.verify_audit(&key)?;
            let seconds = started.elapsed().as_secs_f64();
            match outcome {
                Ok(summary) => {
                    if settings.output == OutputFormat::Table {
                        println!(
                            "audit trail verified: {} events, {} signed checkpoints, head seq {} hash {} ({:.2} s)",
                            summary.events, summary.checkpoints, summary.head_seq, summary.head_hash, seconds
                        );
                    } else {
                        print_record(settings.output, &summary, &[])?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(problem) => {
                    if settings.output != OutputFormat::Table {
                        #[derive(Serialize)]
                        struct Broken<'a> {
                            verified: bool,
                            first_bad_seq: i64,
                            reason: &'a str,
                        }
                        let broken = Broken {
                            verified: false,
                            first_bad_seq: problem.seq,
                            reason: &problem.reason,
                        };
                        print_record(settings.output, &broken, &[])?;
                    }
                    Err(anyhow::Error::new(problem))
                }
            }
        }
    }
}

fn log(settings: &Settings, args: &AuditLogArgs) -> anyhow::Result<ExitCode> {
    let mut store = settings.open_store_read_only()?;
    let mut filter = EventFilter {
        since_seq: args.since,
        limit: args.limit,
        ..Default::default()
    };
    if let Some(reference) = &args.subject {
        filter.subject_kind = Some("identity".into());
        filter.subject_id = Some(store.identity(reference)?.id.0);
    }
    if let Some(handle) = &args.party {
        filter.subject_kind = Some("party".into());
        filter.subject_id = Some(store.party(handle)?.id.0);
    }
    let mut events = Vec::new();
    store.for_each_event(&filter, &mut |event| {
        events.push(EventRecord::from_event(event));
        Ok(())
    })?;
    print_listing(settings.output, &events, HEADERS, row)?;
    Ok(ExitCode::SUCCESS)
}
