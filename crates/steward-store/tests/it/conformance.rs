//! Behaviour every backend must share.

use crate::harness::*;
use steward_core::{CredentialStatus, IdentityPatch, LifecycleState, NewParty, PartyKind, PartyStatus, Tier};
use steward_store::{
    EXPORT_BATCH, EventFilter, ExportPart, IMPORT_CHUNK, IdentityFilter, ImportAudit, ImportDigest, ImportIdentity,
    LIST_BATCH, StoreError,
};

conformance_tests!(
    parties_are_created_with_their_team_and_reject_duplicates,
    identities_round_trip_every_field,
    duplicate_name_in_a_system_is_rejected_and_nothing_changes,
    references_resolve_by_id_name_and_system_name,
    listing_filters_by_system_tier_state_and_party,
    updates_change_fields_and_record_before_and_after,
    legal_transitions_are_recorded_and_illegal_ones_change_nothing,
    revocation_waits_for_credentials,
    credentials_keep_fingerprints_only,
    imports_are_all_or_nothing,
    imports_write_one_event_per_identity_and_one_checkpoint,
    summary_imports_write_one_event_per_chunk_that_names_its_records,
    summary_events_follow_chunk_order_past_the_chunks_in_flight,
    bulk_imports_leave_every_index_as_it_was,
    a_source_failing_part_way_rolls_the_import_back,
    bulk_imports_name_the_first_repeated_identity,
    small_imports_name_the_repeated_identity_wherever_it_is,
    audit_log_filters_by_subject_and_limit,
    every_mutation_keeps_the_chain_verifiable,
    a_newer_schema_is_refused,
    locations_attach_to_credentials_and_block_archival,
    exports_come_in_batches_with_their_credentials,
    listings_and_exports_read_one_snapshot_to_the_end,
    scans_record_secrets_and_their_copies,
    exported_secrets_import_into_another_store_as_they_were,
    dismissed_copies_stay_dismissed_until_recorded_by_hand,
    a_copy_linked_to_a_credential_added_since_is_recorded_again,
);

fn parties_are_created_with_their_team_and_reject_duplicates(db: &TestDb) {
    let mut store = db.open();
    let alice = NewParty {
        display_name: Some("Alice Ng".into()),
        team: Some("payments".into()),
        ..person("alice@example.com")
    };
    let created = store.add_party(&actor(), alice.clone()).unwrap();
    assert_eq!(created.team.as_deref(), Some("team-payments"));
    assert_eq!(store.party("team-payments").unwrap().kind, PartyKind::Team);
    let error = store.add_party(&actor(), alice).unwrap_err();
    assert_eq!(error.to_string(), "party 'alice@example.com' already exists");
    let departed = store
        .set_party_status(&actor(), "alice@example.com", PartyStatus::Departed, Some("left"))
        .unwrap();
    assert_eq!(departed.status, PartyStatus::Departed);
    let handles: Vec<String> = store.parties().unwrap().into_iter().map(|party| party.handle).collect();
    assert_eq!(handles, vec!["alice@example.com", "team-payments"]);
    assert!(matches!(store.party("nobody"), Err(StoreError::UnknownParty(_))));
    // One person, one party: a handle that differs only in letter case is refused, for a
    // person and for a team a person's `team` would create.
    let error = store.add_party(&actor(), person("ALICE@Example.com")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "party 'ALICE@Example.com' differs from the existing 'alice@example.com' only in letter case; use 'alice@example.com'"
    );
    let error = store
        .add_party(
            &actor(),
            NewParty {
                team: Some("Payments".into()),
                ..person("carol@example.com")
            },
        )
        .unwrap_err();
    assert!(matches!(error, StoreError::HandleCaseClash { .. }), "{error}");
    let handles: Vec<String> = store.parties().unwrap().into_iter().map(|party| party.handle).collect();
    assert_eq!(handles, vec!["alice@example.com", "team-payments"]);
}

fn identities_round_trip_every_field(db: &TestDb) {
    let mut store = db.open();
    for handle in ["alice@example.com", "bob@example.com", "team-payments", "team-iam"] {
        store.add_party(&actor(), person(handle)).unwrap();
    }
    let mut new = new_identity("billing-export", "aws", Some("alice@example.com"));
    new.roles.technical_steward = Some("team-payments".into());
    new.roles.backup_approvers = vec!["bob@example.com".into()];
    new.roles.control_owner = Some("team-iam".into());
    new.labels.insert("cost-centre".into(), "42".into());
    new.expires_at = Some(at("2027-06-01T12:30:00.123456Z"));
    let created = store.add_identity(&actor(), new.clone()).unwrap();
    let read = store.identity("billing-export").unwrap();
    assert_eq!(read, created);
    assert_eq!(read, new.into_identity(created.id));
}

fn duplicate_name_in_a_system_is_rejected_and_nothing_changes(db: &TestDb) {
    let mut store = db.open();
    store
        .add_identity(&actor(), new_identity("deployer", "github", None))
        .unwrap();
    let events_before = db.count("audit_events");
    let error = store
        .add_identity(&actor(), new_identity("deployer", "github", None))
        .unwrap_err();
    assert_eq!(error.to_string(), "identity 'github/deployer' already exists");
    assert_eq!(db.count("identities"), 1);
    assert_eq!(db.count("audit_events"), events_before);
    // The same name in another system is a different identity.
    store
        .add_identity(&actor(), new_identity("deployer", "gitlab", None))
        .unwrap();
}

fn references_resolve_by_id_name_and_system_name(db: &TestDb) {
    let mut store = db.open();
    let a = store
        .add_identity(&actor(), new_identity("shared-name", "aws", None))
        .unwrap();
    store
        .add_identity(&actor(), new_identity("shared-name", "gcp", None))
        .unwrap();
    store
        .add_identity(&actor(), new_identity("unique", "gcp", None))
        .unwrap();
    assert_eq!(store.identity(&a.id.0.to_string()).unwrap().system, "aws");
    assert_eq!(store.identity("gcp/shared-name").unwrap().system, "gcp");
    assert_eq!(store.identity("unique").unwrap().system, "gcp");
    let error = store.identity("shared-name").unwrap_err();
    assert_eq!(
        error.to_string(),
        "ambiguous identity 'shared-name': it exists in systems aws, gcp; use system/name or the id"
    );
    assert_eq!(
        store.identity("missing").unwrap_err().to_string(),
        "unknown identity 'missing'"
    );

    // Names and systems may hold a `/`, and names may be all digits: a reference that
    // reads as several identities is refused, naming them, and `#id` is always one.
    let first = store.add_identity(&actor(), new_identity("b/c", "a", None)).unwrap();
    let second = store.add_identity(&actor(), new_identity("c", "a/b", None)).unwrap();
    assert_eq!(
        store.identity("a/b/c").unwrap_err().to_string(),
        format!(
            "ambiguous identity 'a/b/c': it could be #{} (a/b/c), #{} (a/b/c); use #id",
            first.id.0, second.id.0
        )
    );
    assert_eq!(store.identity(&format!("#{}", second.id.0)).unwrap().system, "a/b");
    let digits = a.id.0.to_string();
    let named = store.add_identity(&actor(), new_identity(&digits, "gh", None)).unwrap();
    assert_eq!(
        store.identity(&digits).unwrap_err().to_string(),
        format!(
            "ambiguous identity '{digits}': it could be #{} (aws/shared-name), #{} (gh/{digits}); use #id",
            a.id.0, named.id.0
        )
    );
    assert_eq!(store.identity(&format!("gh/{digits}")).unwrap().id, named.id);
}

fn listing_filters_by_system_tier_state_and_party(db: &TestDb) {
    let mut store = db.open();
    store.add_party(&actor(), person("alice@example.com")).unwrap();
    store.add_party(&actor(), person("bob@example.com")).unwrap();
    for (name, system, tier) in [
        ("a", "aws", Tier::Critical),
        ("b", "aws", Tier::High),
        ("c", "gcp", Tier::Critical),
    ] {
        let mut new = new_identity(name, system, Some("alice@example.com"));
        new.tier = tier;
        if name == "c" {
            new.roles.business_owner = None;
            new.roles.backup_approvers = vec!["bob@example.com".into()];
        }
        store.add_identity(&actor(), new).unwrap();
    }
    let names = |filter: IdentityFilter| -> Vec<String> {
        let mut store = db.open();
        store
            .identities(&filter)
            .unwrap()
            .into_iter()
            .map(|identity| identity.name)
            .collect()
    };
    assert_eq!(names(IdentityFilter::default()), vec!["a", "b", "c"]);
    assert_eq!(
        names(IdentityFilter {
            system: Some("aws".into()),
            tier: Some(Tier::Critical),
            ..Default::default()
        }),
        vec!["a"]
    );
    assert_eq!(
        names(IdentityFilter {
            party: Some("bob@example.com".into()),
            ..Default::default()
        }),
        vec!["c"]
    );
    assert_eq!(
        names(IdentityFilter {
            party: Some("alice@example.com".into()),
            ..Default::default()
        }),
        vec!["a", "b"]
    );
    assert_eq!(
        names(IdentityFilter {
            state: Some(LifecycleState::Suspended),
            ..Default::default()
        }),
        Vec::<String>::new()
    );
    assert_eq!(
        names(IdentityFilter {
            limit: Some(2),
            ..Default::default()
        }),
        vec!["a", "b"]
    );
}

fn updates_change_fields_and_record_before_and_after(db: &TestDb) {
    let mut store = db.open();
    store.add_party(&actor(), person("alice@example.com")).unwrap();
    let created = store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    let patch = IdentityPatch {
        purpose: Some(Some("new purpose".into())),
        business_owner: Some(Some("alice@example.com".into())),
        expires_at: Some(Some(at("2027-06-01T00:00:00Z"))),
        ..Default::default()
    };
    let updated = store
        .update_identity(&actor(), "svc", &patch, Some("owner found"))
        .unwrap();
    assert_eq!(updated.purpose.as_deref(), Some("new purpose"));
    assert_eq!(updated.roles.business_owner.as_deref(), Some("alice@example.com"));
    assert_eq!(store.identity("svc").unwrap(), updated);
    let mut events = Vec::new();
    let filter = EventFilter {
        subject_kind: Some("identity".into()),
        subject_id: Some(created.id.0),
        ..Default::default()
    };
    store
        .for_each_event(&filter, &mut |event| {
            events.push(event);
            Ok(())
        })
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|event| event.draft.action.as_str()).collect();
    assert_eq!(actions, vec!["identity.create", "identity.update"]);
    let update = &events[1].draft;
    assert_eq!(update.reason.as_deref(), Some("owner found"));
    assert!(update.before.as_ref().unwrap().contains("nightly export"));
    assert!(update.after.as_ref().unwrap().contains("new purpose"));
    // An unknown party in a patch is refused and changes nothing.
    let bad = IdentityPatch {
        business_owner: Some(Some("nobody".into())),
        ..Default::default()
    };
    assert!(matches!(
        store.update_identity(&actor(), "svc", &bad, None),
        Err(StoreError::UnknownParty(_))
    ));
    assert_eq!(store.identity("svc").unwrap(), updated);
}

fn legal_transitions_are_recorded_and_illegal_ones_change_nothing(db: &TestDb) {
    let mut store = db.open();
    store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    let events_before = db.count("audit_events");
    let error = store
        .transition_identity(&actor(), "svc", LifecycleState::Archived, "skip")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "illegal transition active -> archived (allowed from active: suspended, offboarding)"
    );
    assert_eq!(db.count("audit_events"), events_before);
    assert_eq!(store.identity("svc").unwrap().state, LifecycleState::Active);
    let suspended = store
        .transition_identity(&actor(), "svc", LifecycleState::Suspended, "incident 42")
        .unwrap();
    assert_eq!(suspended.state, LifecycleState::Suspended);
    assert_eq!(store.identity("svc").unwrap().state, LifecycleState::Suspended);
    assert_eq!(db.count("audit_events"), events_before + 1);
}

fn revocation_waits_for_credentials(db: &TestDb) {
    let mut store = db.open();
    store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    store
        .add_credential(&actor(), "svc", new_credential("AKIAEXAMPLE000000001"))
        .unwrap();
    store
        .transition_identity(&actor(), "svc", LifecycleState::Offboarding, "retired")
        .unwrap();
    let error = store
        .transition_identity(&actor(), "svc", LifecycleState::Revoked, "done")
        .unwrap_err();
    assert!(error.to_string().contains("1 credential(s) not revoked"), "{error}");
    let revoked = store
        .revoke_credential(&actor(), "svc", "AKIAEXAMPLE000000001", "retired")
        .unwrap();
    assert_eq!(revoked.status, CredentialStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(actor().now));
    store
        .transition_identity(&actor(), "svc", LifecycleState::Revoked, "done")
        .unwrap();
    store
        .transition_identity(&actor(), "svc", LifecycleState::Archived, "verified")
        .unwrap();
    let error = store
        .transition_identity(&actor(), "svc", LifecycleState::Active, "again")
        .unwrap_err();
    assert!(error.to_string().contains("none, it is final"));
}

fn credentials_keep_fingerprints_only(db: &TestDb) {
    let mut store = db.open();
    store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    let first = store
        .add_credential(&actor(), "svc", new_credential("AKIAFIRST"))
        .unwrap();
    let mut second = new_credential("AKIASECOND");
    second.created_at = at("2026-01-01T00:00:00Z");
    store.add_credential(&actor(), "svc", second).unwrap();
    let detail = store.credentials("svc").unwrap();
    let ids: Vec<_> = detail
        .credentials
        .iter()
        .map(|credential| credential.public_id.clone().unwrap())
        .collect();
    assert_eq!(ids, vec!["AKIAFIRST", "AKIASECOND"]);
    assert_eq!(detail.credentials[0], first);
    assert_eq!(detail.credentials[0].fingerprint.as_ref().unwrap().as_str().len(), 64);
    let error = store.revoke_credential(&actor(), "svc", "AKIANONE", "x").unwrap_err();
    assert_eq!(error.to_string(), "identity 'svc' has no credential 'AKIANONE'");
}

/// Every table a failed import could have written to is empty.
#[track_caller]
fn assert_nothing_stored(db: &TestDb) {
    for table in [
        "parties",
        "identities",
        "credentials",
        "audit_events",
        "audit_checkpoints",
    ] {
        assert_eq!(db.count(table), 0, "{table} must be empty after a failed import");
    }
}

fn imports_are_all_or_nothing(db: &TestDb) {
    let mut store = db.open();
    let parties = vec![person("alice@example.com")];
    let good = ImportIdentity {
        identity: new_identity("one", "aws", Some("alice@example.com")),
        credentials: vec![new_credential("AKIA1")],
    };
    let bad = ImportIdentity {
        identity: new_identity("two", "aws", Some("ghost@example.com")),
        credentials: vec![],
    };
    let mut import_failing = |records: Vec<ImportIdentity>| {
        store
            .import(
                &actor(),
                "file.yaml",
                ImportAudit::PerRecord,
                &parties,
                &mut records.into_iter().map(Ok),
            )
            .unwrap_err()
    };
    let error = import_failing(vec![good.clone(), bad]);
    assert_eq!(
        error.to_string(),
        "import record 2 ('aws/two'): unknown party 'ghost@example.com' (add it first with `steward party add`)"
    );
    assert_nothing_stored(db);
    // A duplicate inside the same file is refused too.
    let error = import_failing(vec![good.clone(), good.clone()]);
    assert_eq!(error.to_string(), "identity 'aws/one' already exists");
    assert_eq!(db.count("identities"), 0);
}

fn imports_write_one_event_per_identity_and_one_checkpoint(db: &TestDb) {
    let mut store = db.open();
    let parties = vec![NewParty {
        team: Some("payments".into()),
        ..person("alice@example.com")
    }];
    let count = 10_000;
    let mut records = (0..count).map(|index| ImportIdentity {
        identity: new_identity(&format!("svc-{index:05}"), "aws", Some("alice@example.com")),
        credentials: vec![
            new_credential(&format!("AKIA{index:016}")),
            new_credential(&format!("AKIB{index:016}")),
        ],
    });
    let summary = store
        .import(
            &actor(),
            "bulk",
            ImportAudit::PerRecord,
            &parties,
            &mut (&mut records).map(Ok),
        )
        .unwrap();
    assert_eq!(
        (summary.parties, summary.identities, summary.credentials),
        (2, count, 2 * count)
    );
    assert_eq!(summary.events, count + 2);
    assert_eq!(db.count("audit_checkpoints"), 1);
    assert_eq!(
        store.identity("svc-09999").unwrap().roles.business_owner.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(store.credentials("svc-00042").unwrap().credentials.len(), 2);
    let summary = store.verify_audit(&signing_key().verifying_key()).unwrap().unwrap();
    assert_eq!(summary.events, count + 2);
}

fn summary_imports_write_one_event_per_chunk_that_names_its_records(db: &TestDb) {
    let mut store = db.open();
    let parties = vec![person("alice@example.com")];
    // A first, per-record import right before, so the chunks' neighbours exist.
    let mut first = (0..3).map(|index| ImportIdentity {
        identity: new_identity(&format!("early-{index}"), "gcp", None),
        credentials: vec![],
    });
    store
        .import(
            &actor(),
            "early.yaml",
            ImportAudit::PerRecord,
            &parties,
            &mut (&mut first).map(Ok),
        )
        .unwrap();
    let count = 2 * IMPORT_CHUNK as u64 + 100;
    let mut records = (0..count).map(|index| ImportIdentity {
        identity: new_identity(&format!("svc-{index:05}"), "aws", Some("alice@example.com")),
        credentials: if index % 2 == 0 {
            vec![new_credential(&format!("AKIA{index:016}"))]
        } else {
            vec![]
        },
    });
    let summary = store
        .import(
            &actor(),
            "bulk.csv",
            ImportAudit::Summary,
            &[],
            &mut (&mut records).map(Ok),
        )
        .unwrap();
    assert_eq!((summary.identities, summary.credentials), (count, count / 2));
    assert_eq!(summary.events, 3, "one event per chunk of {IMPORT_CHUNK}");
    assert!(store.verify_audit(&signing_key().verifying_key()).unwrap().is_ok());

    // Every identity's log names the import event of its own chunk, and only that one.
    let log_of = |store: &mut Box<dyn steward_store::Store>, name: &str| {
        let id = store.identity(name).unwrap().id.0;
        let filter = EventFilter {
            subject_kind: Some("identity".into()),
            subject_id: Some(id),
            ..Default::default()
        };
        let mut events = Vec::new();
        store
            .for_each_event(&filter, &mut |event| {
                events.push(event);
                Ok(())
            })
            .unwrap();
        events
    };
    for (name, chunk) in [("svc-00000", 0), ("svc-04095", 0), ("svc-04096", 1), ("svc-08291", 2)] {
        let events = log_of(&mut store, name);
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        let event = &events[0].draft;
        assert_eq!(
            (event.action.as_str(), event.subject_kind.as_str()),
            ("identity.import", "import")
        );
        assert_eq!(event.subject_name, "bulk.csv");
        let after: serde_json::Value = serde_json::from_str(event.after.as_deref().unwrap()).unwrap();
        let first = 4 + chunk * IMPORT_CHUNK as i64;
        assert_eq!(after["identity_ids"][0], first, "{name}");
        // The digest is that of the records as stored.
        let last = after["identity_ids"][1].as_i64().unwrap();
        let mut digest = ImportDigest::default();
        for id in first..=last {
            let detail = store.credentials(&format!("#{id}")).unwrap();
            digest.add(&detail.identity, &detail.credentials);
        }
        assert_eq!(after["records_sha256"], digest.finish(), "{name}");
    }
    // Earlier identities keep their own creation event and are not covered by the chunks.
    let events = log_of(&mut store, "early-2");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].draft.action, "identity.create");
    // Later changes appear after the import event.
    store
        .transition_identity(&actor(), "svc-04096", LifecycleState::Suspended, "incident")
        .unwrap();
    let actions: Vec<String> = log_of(&mut store, "svc-04096")
        .into_iter()
        .map(|event| event.draft.action)
        .collect();
    assert_eq!(actions, vec!["identity.import", "identity.transition"]);
}

fn a_source_failing_part_way_rolls_the_import_back(db: &TestDb) {
    // A file read as it is imported can turn out bad after whole chunks were written (and,
    // past the bulk threshold, after SQLite dropped its secondary indexes): the error is
    // returned as the source gave it and nothing stays.
    let mut store = db.open();
    let indexes = db.index_definitions();
    let count = 5 * IMPORT_CHUNK + 10; // above SQLite's bulk threshold (20,000)
    let mut records = (0..count).map(|index| {
        if index == count - 5 {
            return Err(StoreError::Callback(
                "inventory.yaml:99: identities[x].tier: bad".into(),
            ));
        }
        Ok(ImportIdentity {
            identity: new_identity(&format!("svc-{index:05}"), "aws", None),
            credentials: vec![new_credential(&format!("AKIA{index:016}"))],
        })
    });
    let parties = vec![person("alice@example.com")];
    let error = store
        .import(&actor(), "inventory.yaml", ImportAudit::Summary, &parties, &mut records)
        .unwrap_err();
    assert!(matches!(error, StoreError::Callback(_)), "{error:?}");
    assert_eq!(error.to_string(), "inventory.yaml:99: identities[x].tier: bad");
    assert_nothing_stored(db);
    assert_eq!(db.index_definitions(), indexes);
    // The store still takes an import afterwards.
    let mut records = (0..10).map(|index| {
        Ok(ImportIdentity {
            identity: new_identity(&format!("svc-{index:05}"), "aws", None),
            credentials: Vec::new(),
        })
    });
    store
        .import(&actor(), "inventory.yaml", ImportAudit::Summary, &parties, &mut records)
        .unwrap();
    assert_eq!(db.count("identities"), 10);
}

fn bulk_imports_leave_every_index_as_it_was(db: &TestDb) {
    let mut store = db.open();
    let indexes = db.index_definitions();
    assert!(indexes.len() >= 8, "{indexes:?}");
    // Large enough for SQLite to build its secondary indexes after the load; the last
    // record is a duplicate, so the import fails and everything rolls back.
    let count = 20_000;
    let records = |duplicate_at_end: bool| {
        (0..count).map(move |index| {
            let name = if duplicate_at_end && index == count - 1 {
                "svc-00001".to_string()
            } else {
                format!("svc-{index:05}")
            };
            ImportIdentity {
                identity: new_identity(&name, if index % 3 == 0 { "gcp" } else { "aws" }, None),
                credentials: vec![new_credential(&format!("AKIA{index:016}"))],
            }
        })
    };
    let error = store
        .import(&actor(), "bulk", ImportAudit::Summary, &[], &mut records(true).map(Ok))
        .unwrap_err();
    assert_eq!(error.to_string(), "identity 'aws/svc-00001' already exists");
    assert_eq!(db.count("identities"), 0);
    assert_eq!(db.index_definitions(), indexes);
    store
        .import(&actor(), "bulk", ImportAudit::Summary, &[], &mut records(false).map(Ok))
        .unwrap();
    assert_eq!(db.index_definitions(), indexes);
    // The rebuilt indexes answer queries.
    let listed = store
        .identities(&IdentityFilter {
            system: Some("gcp".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), (count as usize).div_ceil(3));
    let fingerprint = store.credentials("svc-01234").unwrap().credentials[0]
        .fingerprint
        .clone()
        .unwrap();
    assert_eq!(store.credentials_with_fingerprint(&fingerprint).unwrap().len(), 1);
    assert!(store.verify_audit(&signing_key().verifying_key()).unwrap().is_ok());
}

fn bulk_imports_name_the_first_repeated_identity(db: &TestDb) {
    let mut store = db.open();
    store
        .add_identity(&actor(), new_identity("old-1", "aws", None))
        .unwrap();
    // Every import here is large enough (and sized exactly) for SQLite to drop the name
    // index and check names only at the end: the error must still be the one a
    // row-by-row insert gives, for the first record (in import order) that repeats a
    // (system, name). Record 30 has record 10's name in another system (no clash);
    // record 60 repeats record 10, record 100 the identity already stored, record 15,000
    // record 14,000.
    let records = |system: &str, repeats: bool| -> Vec<ImportIdentity> {
        (0..20_100)
            .map(|index| {
                let (name, system) = match index {
                    30 => ("svc-00010".to_string(), "other"),
                    60 if repeats => ("svc-00010".to_string(), system),
                    100 if repeats => ("old-1".to_string(), system),
                    15_000 if repeats => ("svc-14000".to_string(), system),
                    _ => (format!("svc-{index:05}"), system),
                };
                ImportIdentity {
                    identity: new_identity(&name, system, None),
                    credentials: Vec::new(),
                }
            })
            .collect()
    };
    let mut import = |records: Vec<ImportIdentity>| {
        store.import(
            &actor(),
            "bulk",
            ImportAudit::Summary,
            &[],
            &mut records.into_iter().map(Ok),
        )
    };
    let error = import(records("aws", true)).unwrap_err();
    assert_eq!(error.to_string(), "identity 'aws/svc-00010' already exists");
    assert_eq!(db.count("identities"), 1);
    // In another system, old-1 is no clash: record 60 is again the first.
    let error = import(records("gcp", true)).unwrap_err();
    assert_eq!(error.to_string(), "identity 'gcp/svc-00010' already exists");
    assert_eq!(db.count("identities"), 1);
    let summary = import(records("gcp", false)).unwrap();
    assert_eq!(summary.identities, 20_100);
    assert_eq!(db.count("identities"), 20_101);
    assert_eq!(store.identity("other/svc-00010").unwrap().system, "other");
}

fn small_imports_name_the_repeated_identity_wherever_it_is(db: &TestDb) {
    let mut store = db.open();
    store
        .add_identity(&actor(), new_identity("old-1", "aws", None))
        .unwrap();
    // Small imports insert rows with their indexes in place, several rows a statement on
    // SQLite (32 a statement, the last 4 of 100 rows one by one): whichever row repeats a
    // name, in the same statement as the first or in a later one, or among the last rows,
    // the error names it and nothing is imported.
    for (at, repeats) in [
        (5, "svc-001"),
        (40, "svc-033"),
        (70, "svc-040"),
        (98, "svc-096"),
        (99, "svc-050"),
        (20, "old-1"),
    ] {
        let records: Vec<ImportIdentity> = (0..100)
            .map(|index| {
                let name = if index == at {
                    repeats.to_string()
                } else {
                    format!("svc-{index:03}")
                };
                ImportIdentity {
                    identity: new_identity(&name, "aws", None),
                    credentials: Vec::new(),
                }
            })
            .collect();
        let error = store
            .import(
                &actor(),
                "small",
                ImportAudit::Summary,
                &[],
                &mut records.into_iter().map(Ok),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("identity 'aws/{repeats}' already exists"),
            "record {at}"
        );
        assert_eq!(db.count("identities"), 1);
    }
}

fn audit_log_filters_by_subject_and_limit(db: &TestDb) {
    let mut store = db.open();
    let a = store.add_identity(&actor(), new_identity("a", "aws", None)).unwrap();
    store.add_identity(&actor(), new_identity("b", "aws", None)).unwrap();
    store
        .transition_identity(&actor(), "a", LifecycleState::Suspended, "r1")
        .unwrap();
    store
        .transition_identity(&actor(), "a", LifecycleState::Active, "r2")
        .unwrap();
    let mut seqs = Vec::new();
    let filter = EventFilter {
        subject_kind: Some("identity".into()),
        subject_id: Some(a.id.0),
        limit: Some(2),
        ..Default::default()
    };
    store
        .for_each_event(&filter, &mut |event| {
            seqs.push((event.seq, event.draft.reason));
            Ok(())
        })
        .unwrap();
    assert_eq!(seqs, vec![(3, Some("r1".to_string())), (4, Some("r2".to_string()))]);
}

fn every_mutation_keeps_the_chain_verifiable(db: &TestDb) {
    let mut store = db.open();
    store
        .add_party(
            &actor(),
            NewParty {
                team: Some("ops".into()),
                ..person("ops@example.com")
            },
        )
        .unwrap();
    store
        .add_identity(&actor(), new_identity("svc", "aws", Some("ops@example.com")))
        .unwrap();
    store.add_credential(&actor(), "svc", new_credential("AKIAX")).unwrap();
    store
        .update_identity(
            &actor(),
            "svc",
            &IdentityPatch {
                tier: Some(Tier::Low),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    store
        .transition_identity(&actor(), "svc", LifecycleState::Suspended, "why")
        .unwrap();
    store
        .set_party_status(&actor(), "ops@example.com", PartyStatus::Departed, None)
        .unwrap();
    let summary = store.verify_audit(&signing_key().verifying_key()).unwrap().unwrap();
    assert_eq!(summary.events, 7);
    assert_eq!(summary.checkpoints, 6);
    // A different key does not verify the checkpoints.
    let other = steward_core::audit::SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert!(store.verify_audit(&other).unwrap().is_err());
    // A store without the signing key cannot write.
    let mut read_only = steward_store::open(&db.url(), None).unwrap();
    assert!(matches!(
        read_only.add_identity(&actor(), new_identity("x", "aws", None)),
        Err(StoreError::NoSigningKey)
    ));
}

fn a_newer_schema_is_refused(db: &TestDb) {
    drop(db.open());
    db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', CURRENT_TIMESTAMP)")
        .or_else(|_| db.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')"))
        .unwrap();
    let error = steward_store::open(&db.url(), Some(signing_key())).err().unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "database schema version 99 is newer than this steward supports ({})",
            steward_store::SCHEMA_VERSION
        ) + "; upgrade steward"
    );
}

fn locations_attach_to_credentials_and_block_archival(db: &TestDb) {
    let mut store = db.open();
    store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    let credential = store
        .add_credential(&actor(), "svc", new_credential("AKIALEAK"))
        .unwrap();
    let fingerprint = credential.fingerprint.clone().unwrap();
    let kind = steward_core::LocationKind::RepositoryFile;
    let first = store
        .record_location(&actor(), &fingerprint, kind, "repo@abc:config.py:3")
        .unwrap();
    let later = steward_store::Actor {
        now: at("2026-12-01T00:00:00Z"),
        ..actor()
    };
    let again = store
        .record_location(&later, &fingerprint, kind, "repo@abc:config.py:3")
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!((again.first_seen, again.last_seen), (actor().now, later.now));
    assert_eq!(again.credential_id, Some(credential.id));
    assert_eq!(store.locations("svc").unwrap().len(), 1);
    store
        .transition_identity(&actor(), "svc", LifecycleState::Offboarding, "retire")
        .unwrap();
    store.revoke_credential(&actor(), "svc", "AKIALEAK", "retire").unwrap();
    store
        .transition_identity(&actor(), "svc", LifecycleState::Revoked, "retire")
        .unwrap();
    let error = store
        .transition_identity(&actor(), "svc", LifecycleState::Archived, "done")
        .unwrap_err();
    assert!(error.to_string().contains("1 known location(s)"), "{error}");
    // A second identity holding the same secret: the copy is attached to the first
    // credential, yet it is a copy of this one's secret too, shown and blocking alike.
    // (The secret is revoked already, so it can only be added as revoked.)
    store.add_identity(&actor(), new_identity("twin", "aws", None)).unwrap();
    let twin = steward_core::NewCredential {
        public_id: Some("AKIATWIN".into()),
        ..new_credential("AKIALEAK")
    };
    assert!(matches!(
        store.add_credential(&actor(), "twin", twin.clone()),
        Err(StoreError::RevokedSecretReused { .. })
    ));
    store
        .add_credential(
            &actor(),
            "twin",
            steward_core::NewCredential {
                status: CredentialStatus::Revoked,
                ..twin
            },
        )
        .unwrap();
    assert_eq!(store.locations("twin").unwrap().len(), 1);
    store
        .transition_identity(&actor(), "twin", LifecycleState::Offboarding, "retire")
        .unwrap();
    store
        .transition_identity(&actor(), "twin", LifecycleState::Revoked, "retire")
        .unwrap();
    let error = store
        .transition_identity(&actor(), "twin", LifecycleState::Archived, "done")
        .unwrap_err();
    assert!(error.to_string().contains("1 known location(s)"), "{error}");
    // A secret nobody owns is still recorded, without a credential.
    let unknown = steward_core::Fingerprint::parse(&"ab".repeat(32)).unwrap();
    let orphan = store
        .record_location(&actor(), &unknown, kind, "repo@def:.env:1")
        .unwrap();
    assert_eq!(orphan.credential_id, None);
    assert!(store.verify_audit(&signing_key().verifying_key()).unwrap().is_ok());
}

fn scans_record_secrets_and_their_copies(db: &TestDb) {
    let mut store = db.open();
    let kind = steward_core::LocationKind::RepositoryFile;
    store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    let active = store
        .add_credential(&actor(), "svc", new_credential("AKIAONE"))
        .unwrap();
    store.add_identity(&actor(), new_identity("old", "aws", None)).unwrap();
    let revoked = store
        .add_credential(&actor(), "old", new_credential("AKIATWO"))
        .unwrap();
    store.revoke_credential(&actor(), "old", "AKIATWO", "rotated").unwrap();
    let unknown = steward_core::Fingerprint::parse(&"cd".repeat(32)).unwrap();
    let record = |fingerprint: &steward_core::Fingerprint, copies: &[&str]| steward_store::ScanRecord {
        fingerprint: fingerprint.clone(),
        rule_id: "aws-access-key".into(),
        rule_name: "AWS access key".into(),
        preview: "AKIA…(20 chars)".into(),
        copies: copies.iter().map(|locator| (kind, locator.to_string())).collect(),
    };
    let records = vec![
        record(
            active.fingerprint.as_ref().unwrap(),
            &["repo@a:app.py:1", "repo@b:app.py:9"],
        ),
        record(revoked.fingerprint.as_ref().unwrap(), &["repo@a:old.env:2"]),
        record(&unknown, &["repo@c:.env:1"]),
    ];
    let events_before = db.count("audit_events");
    assert_eq!(store.record_scan(&actor(), &records, &[]).unwrap().seen.len(), 4);
    assert_eq!(
        db.count("audit_events"),
        events_before + 3 + 4,
        "3 new secrets, 4 copies"
    );
    // A later scan sees the first secret again: no new secret, its copies' last_seen
    // moves, with one `location.seen` event for both.
    let later = steward_store::Actor {
        now: at("2026-12-01T00:00:00Z"),
        ..actor()
    };
    let seen = store.record_scan(&later, &records[..1], &[]).unwrap().seen;
    assert!(
        seen.iter()
            .all(|copy| copy.last_seen == later.now && copy.first_seen == actor().now)
    );
    assert_eq!(db.count("scanned_secrets"), 3);
    assert_eq!(db.count("audit_events"), events_before + 7 + 1);

    let findings = store.scan_findings().unwrap();
    let summary: Vec<(Option<String>, usize)> = findings
        .iter()
        .map(|finding| {
            let holder = finding
                .holders
                .first()
                .map(|(identity, credential)| format!("{}/{} {}", identity.system, identity.name, credential.status));
            (holder, finding.copies.len())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("aws/svc active".to_string()), 2),
            (Some("aws/old revoked".to_string()), 1),
            (None, 1),
        ]
    );
    let first = findings[0].secret.as_ref().unwrap();
    assert_eq!((first.first_seen, first.last_seen), (actor().now, later.now));
    assert_eq!(findings[2].secret.as_ref().unwrap().preview, "AKIA…(20 chars)");
    assert_eq!(&findings[2].fingerprint, &unknown);
    // Copies recorded by hand (`credential locate`) count too, without scan details.
    let located = store
        .add_credential(&actor(), "svc", new_credential("AKIATHREE"))
        .unwrap();
    let by_hand = located.fingerprint.clone().unwrap();
    store
        .record_location(&later, &by_hand, steward_core::LocationKind::Ticket, "OPS-12")
        .unwrap();
    let findings = store.scan_findings().unwrap();
    assert_eq!(findings.len(), 4);
    assert_eq!(findings[3].fingerprint, by_hand);
    assert!(findings[3].secret.is_none());
    assert_eq!(findings[3].holders[0].1.id, located.id);

    // Bad input writes nothing.
    let mut bad = record(&unknown, &["repo@d:x:1"]);
    bad.rule_id.clear();
    let error = store.record_scan(&actor(), &[bad], &[]).unwrap_err();
    assert!(error.to_string().contains("rule_id"), "{error}");
    assert_eq!(db.count("locations"), 5);

    // A scan that read `repo` completely and saw only one copy: the others under `repo`
    // are removed; a copy elsewhere (`repo2`, a ticket) is not.
    store
        .record_location(&actor(), &unknown, kind, "repo2@e:.env:1")
        .unwrap();
    let scope = [steward_store::ScanScope {
        kind,
        prefix: "repo".into(),
        rule_ids: vec!["aws-access-key".into()],
    }];
    // A scope only covers its own repository's history, in the scanner's locator format.
    let covers = |locator: &str| scope[0].covers(kind, locator);
    assert!(covers("repo@a:app.py:1") && !covers("repo2@e:.env:1") && !covers("repo/sub@a:x:1"));
    assert!(!covers("repo@a:app.py") && !scope[0].covers(steward_core::LocationKind::Ticket, "repo@a:x:1"));
    let files = steward_store::ScanScope {
        kind: steward_core::LocationKind::ConfigFile,
        prefix: "/srv/app".into(),
        rule_ids: vec![],
    };
    let file = |locator: &str| files.covers(steward_core::LocationKind::ConfigFile, locator);
    assert!(file("/srv/app/.env:1:7") && file("/srv/app/dump.zip!a/b.env:3:1"));
    // Siblings, and copies recorded by hand (`path:line`), are not the scan's.
    assert!(!file("/srv/app2/.env:1:7") && !file("/srv/app@x/.env:1:7") && !file("/srv/app/.env:12"));
    // Notebook cells are documents in the scanner's `#cellN/field:line:column` form; a
    // document recorded by hand in another form is kept.
    let documents = steward_store::ScanScope {
        kind: steward_core::LocationKind::Document,
        ..files.clone()
    };
    let document = |locator: &str| documents.covers(steward_core::LocationKind::Document, locator);
    assert!(
        document("/srv/app/b.ipynb#cell2/source:1:6") && document("/srv/app/x.zip!n.ipynb#cell0/outputs[1].text:3:1")
    );
    assert!(!document("/srv/app/b.ipynb:1:6") && !document("/srv/app/wiki#page/source:1:6"));
    assert!(!document("/srv/app/b.ipynb#cell2/source:1") && !document("/srv/app2/b.ipynb#cell2/source:1:6"));
    let tickets = steward_store::ScanScope {
        kind: steward_core::LocationKind::Ticket,
        ..files.clone()
    };
    assert!(tickets.covers(
        steward_core::LocationKind::Ticket,
        "/srv/app/jira.json#OPS-1/description:1"
    ));
    let latest = steward_store::Actor {
        now: at("2026-12-02T00:00:00Z"),
        ..actor()
    };
    let only = record(active.fingerprint.as_ref().unwrap(), &["repo@a:app.py:1"]);
    let outcome = store.record_scan(&latest, std::slice::from_ref(&only), &scope).unwrap();
    let mut removed: Vec<&str> = outcome.removed.iter().map(|l| l.locator.as_str()).collect();
    removed.sort();
    assert_eq!(removed, vec!["repo@a:old.env:2", "repo@b:app.py:9", "repo@c:.env:1"]);
    assert!(outcome.removed.iter().all(|l| l.removed_at == Some(latest.now)));
    let findings = store.scan_findings().unwrap();
    let live: Vec<(Option<String>, usize)> = findings
        .iter()
        .map(|f| (f.holders.first().map(|(i, _)| i.name.clone()), f.copies.len()))
        .collect();
    // The revoked credential has no live copy left, so it drops out; the unknown secret
    // keeps its copy in repo2.
    assert_eq!(live, vec![(Some("svc".into()), 1), (None, 1), (Some("svc".into()), 1)]);
    // A copy that comes back is live again.
    let back = record(revoked.fingerprint.as_ref().unwrap(), &["repo@a:old.env:2"]);
    let outcome = store.record_scan(&latest, &[only, back], &scope).unwrap();
    assert!(outcome.removed.is_empty());
    assert_eq!(store.scan_findings().unwrap().len(), 4);
    assert!(store.verify_audit(&signing_key().verifying_key()).unwrap().is_ok());
}

/// Import records `svc-NNNNN` for `indexes` in `system(index)`, each with bob and alice as
/// backup approvers and one credential `AKIA` + the index.
fn with_approvers(
    indexes: impl Iterator<Item = usize>,
    system: impl Fn(usize) -> &'static str,
) -> impl Iterator<Item = Result<ImportIdentity, StoreError>> {
    indexes.map(move |index| {
        let mut identity = new_identity(&format!("svc-{index:05}"), system(index), None);
        identity.roles.backup_approvers = vec!["bob@example.com".into(), "alice@example.com".into()];
        Ok(ImportIdentity {
            identity,
            credentials: vec![new_credential(&format!("AKIA{index:016}"))],
        })
    })
}

fn exports_come_in_batches_with_their_credentials(db: &TestDb) {
    let mut store = db.open();
    let first = store
        .add_identity(&actor(), new_identity("first", "aws", None))
        .unwrap();
    let second = store
        .add_identity(&actor(), new_identity("second", "aws", None))
        .unwrap();
    let mut newer = new_credential("AKIANEWER");
    newer.created_at = at("2026-02-01T00:00:00Z");
    store.add_credential(&actor(), "second", newer).unwrap();
    store
        .add_credential(&actor(), "first", new_credential("AKIAFIRST"))
        .unwrap();
    store
        .add_credential(&actor(), "second", new_credential("AKIAOLDER"))
        .unwrap();
    // More than two batches, imported in an order that is not (system, name) order, with
    // backup approvers.
    let parties = vec![person("alice@example.com"), person("bob@example.com")];
    let count = 2 * EXPORT_BATCH + 7;
    let mut records = with_approvers((0..count).rev(), |index| if index % 2 == 0 { "gcp" } else { "aws" });
    store
        .import(&actor(), "bulk", ImportAudit::Summary, &parties, &mut records)
        .unwrap();
    let mut parts = Vec::new();
    let mut exported = Vec::new();
    store
        .export_inventory(&mut |part| {
            match part {
                ExportPart::Parties(parties) => parts.push(format!("{} parties", parties.len())),
                ExportPart::Secrets(secrets) => parts.push(format!("{} secrets", secrets.len())),
                ExportPart::Identities(batch) => {
                    parts.push(batch.len().to_string());
                    exported.extend(batch);
                }
            }
            Ok(())
        })
        .unwrap();
    // The parties first (in the same snapshot as the identities that name them).
    let batch = EXPORT_BATCH.to_string();
    assert_eq!(parts, vec!["2 parties", "0 secrets", &batch, &batch, "9"]);
    let keys: Vec<(String, String)> = exported
        .iter()
        .map(|(identity, _)| (identity.system.clone(), identity.name.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), count + 2);
    let listed: Vec<(i64, String)> = exported[..2]
        .iter()
        .flat_map(|(identity, credentials)| {
            credentials.iter().map(|credential| {
                assert_eq!(credential.identity_id, identity.id);
                (identity.id.0, credential.public_id.clone().unwrap())
            })
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (first.id.0, "AKIAFIRST".to_string()),
            (second.id.0, "AKIAOLDER".to_string()),
            (second.id.0, "AKIANEWER".to_string()),
        ]
    );
    for (identity, credentials) in &exported[2..] {
        let index: usize = identity.name["svc-".len()..].parse().unwrap();
        assert_eq!(credentials.len(), 1, "{}", identity.name);
        assert_eq!(
            credentials[0].public_id.as_deref(),
            Some(format!("AKIA{index:016}").as_str())
        );
        assert_eq!(
            identity.roles.backup_approvers,
            vec!["bob@example.com", "alice@example.com"]
        );
    }
    // A listing in batches: the filter applies, in (system, name) order, with approvers.
    let mut listed = Vec::new();
    store
        .for_each_identity_batch(
            &IdentityFilter {
                system: Some("gcp".into()),
                party: Some("alice@example.com".into()),
                ..Default::default()
            },
            &mut |batch| {
                listed.extend(batch);
                Ok(())
            },
        )
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|identity| identity.name.as_str()).collect();
    let expected: Vec<&str> = exported
        .iter()
        .filter(|(identity, _)| identity.system == "gcp")
        .map(|(identity, _)| identity.name.as_str())
        .collect();
    assert_eq!(names, expected);
    assert_eq!(listed.len(), EXPORT_BATCH + 4);
    assert_eq!(
        listed[0].roles.backup_approvers,
        vec!["bob@example.com", "alice@example.com"]
    );
    let mut none = 0;
    store
        .for_each_identity_batch(
            &IdentityFilter {
                system: Some("azure".into()),
                ..Default::default()
            },
            &mut |batch| {
                none += batch.len();
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(none, 0);
    // The walk stops at the visitor's error.
    let mut seen = 0;
    let error = store
        .export_inventory(&mut |_| {
            seen += 1;
            Err(StoreError::Callback("stop".into()))
        })
        .unwrap_err();
    assert_eq!((seen, error.to_string()), (1, "stop".to_string()));
    // So does a listing's, and the store is usable after either (on PostgreSQL the
    // batches are read on a thread of their own, which must give the connection back).
    let mut batches = Vec::new();
    let error = store
        .for_each_identity_batch(&IdentityFilter::default(), &mut |batch| {
            batches.push(batch.len());
            Err(StoreError::Callback("enough".into()))
        })
        .unwrap_err();
    assert_eq!((batches, error.to_string()), (vec![LIST_BATCH], "enough".to_string()));
    assert_eq!(store.identities(&IdentityFilter::default()).unwrap().len(), count + 2);
}

/// A listing or an export of several batches reads one snapshot to its end, though on
/// PostgreSQL the later batches' backup approvers and credentials come from a second
/// connection: what another connection writes meanwhile is not seen. (When the second
/// connection takes its snapshot cannot be pinned from here; the backend's unit test
/// `the_second_connection_reads_the_exported_snapshot` orders export, write and import.)
/// A visitor's error in a later batch ends the walk, and the store is usable after it.
/// On PostgreSQL, a role that may hold only one connection still gets every row (looked
/// up on its one).
fn listings_and_exports_read_one_snapshot_to_the_end(db: &TestDb) {
    let mut store = db.open();
    let parties = vec![person("alice@example.com"), person("bob@example.com")];
    let count = 2 * LIST_BATCH + 7;
    let mut records = with_approvers(0..count, |_| "aws");
    store
        .import(&actor(), "bulk", ImportAudit::Summary, &parties, &mut records)
        .unwrap();
    let last = format!("svc-{:05}", count - 1);
    // Written by another connection while the first batch is visited.
    let write_meanwhile = |round: usize| {
        let mut other = db.open();
        let patch = IdentityPatch {
            backup_approvers: Some(vec!["alice@example.com".to_string()]),
            purpose: Some(Some(format!("changed in round {round}"))),
            ..Default::default()
        };
        other.update_identity(&actor(), &last, &patch, None).unwrap();
        other
            .add_credential(&actor(), &last, new_credential(&format!("AKIAROUND{round:012}")))
            .unwrap();
        other
            .add_identity(&actor(), new_identity(&format!("zz-added-{round}"), "aws", None))
            .unwrap();
    };
    let check = |identity: &steward_core::Identity, credentials: Option<&[steward_core::Credential]>| {
        assert_eq!(identity.name, last);
        assert_eq!(identity.purpose.as_deref(), Some("nightly export of invoices"));
        assert_eq!(
            identity.roles.backup_approvers,
            vec!["bob@example.com", "alice@example.com"]
        );
        if let Some(credentials) = credentials {
            assert_eq!(credentials.len(), 1);
        }
    };

    let mut listed = Vec::new();
    store
        .for_each_identity_batch(&IdentityFilter::default(), &mut |batch| {
            if listed.is_empty() {
                write_meanwhile(1);
            }
            listed.extend(batch);
            Ok(())
        })
        .unwrap();
    assert_eq!(listed.len(), count);
    check(listed.last().unwrap(), None);
    assert!(listed.iter().all(|identity| identity.roles.backup_approvers.len() == 2));

    let mut exported = Vec::new();
    store
        .export_inventory(&mut |part| {
            if let ExportPart::Identities(batch) = part {
                if exported.is_empty() {
                    write_meanwhile(2);
                }
                exported.extend(batch);
            }
            Ok(())
        })
        .unwrap();
    // The identity added in round 1 is there; round 2's is not.
    assert_eq!(exported.len(), count + 1);
    assert_eq!(exported.last().unwrap().0.name, "zz-added-1");
    let (identity, credentials) = &exported[count - 1];
    assert_eq!(identity.purpose.as_deref(), Some("changed in round 1"));
    assert_eq!(identity.roles.backup_approvers, vec!["alice@example.com"]);
    assert_eq!(credentials.len(), 2);

    // A visitor failing at the second batch ends the walk with its error.
    let mut batches = 0;
    let error = store
        .for_each_identity_batch(&IdentityFilter::default(), &mut |_| {
            batches += 1;
            if batches == 2 {
                Err(StoreError::Callback("second".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert_eq!((batches, error.to_string()), (2, "second".to_string()));
    assert_eq!(store.identities(&IdentityFilter::default()).unwrap().len(), count + 2);
    drop(store);

    if let TestDb::Postgres { name, .. } = db {
        let role = format!("{name}_one");
        db.execute(&format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;
             GRANT ALL ON SCHEMA public TO {role};
             GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};"
        ))
        .unwrap();
        // The test URL with the role for its user: scheme://role@host…
        let url = db.url();
        let (scheme, rest) = url.split_once("://").unwrap();
        let url = format!("{scheme}://{role}@{}", rest.split_once('@').unwrap().1);
        let mut store = steward_store::open(&url, Some(signing_key())).unwrap();
        assert!(
            ::postgres::Client::connect(&url, ::postgres::NoTls).is_err(),
            "the role may hold one connection only"
        );
        let list = |store: &mut Box<dyn steward_store::Store>| {
            let mut listed = 0;
            store
                .for_each_identity_batch(&IdentityFilter::default(), &mut |batch| {
                    listed += batch.len();
                    Ok(())
                })
                .unwrap();
            listed
        };
        // The second connection is refused: every batch over the one.
        assert_eq!(list(&mut store), count + 2);
        // The snapshot cannot be exported either (this database only): the same.
        drop(store);
        db.execute("REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")
            .unwrap();
        let mut store = steward_store::open(&url, Some(signing_key())).unwrap();
        assert_eq!(list(&mut store), count + 2);
        drop(store);
        db.execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};")).unwrap();
    }
}

fn summary_events_follow_chunk_order_past_the_chunks_in_flight(db: &TestDb) {
    // More chunks than can wait for their digest at once (and a short last one): the
    // import events come in sequence order, one per chunk, chunk after chunk, each with
    // its own records' digest.
    let mut store = db.open();
    let chunks = 7;
    let count = chunks * IMPORT_CHUNK + 5;
    let mut records = (0..count).map(|index| {
        Ok(ImportIdentity {
            identity: new_identity(&format!("svc-{index:06}"), "aws", None),
            credentials: if index % 3 == 0 {
                vec![new_credential(&format!("AKIA{index:016}"))]
            } else {
                vec![]
            },
        })
    });
    let summary = store
        .import(&actor(), "bulk.csv", ImportAudit::Summary, &[], &mut records)
        .unwrap();
    assert_eq!(summary.events, chunks as u64 + 1);
    let mut events = Vec::new();
    store
        .for_each_event(&EventFilter::default(), &mut |event| {
            events.push(event);
            Ok(())
        })
        .unwrap();
    assert_eq!(events.len(), chunks + 1);
    let mut next_identity = 1;
    let mut next_credential = 1;
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as i64 + 1);
        assert_eq!(event.draft.action, "identity.import");
        let after: serde_json::Value = serde_json::from_str(event.draft.after.as_deref().unwrap()).unwrap();
        let size = if index < chunks { IMPORT_CHUNK as i64 } else { 5 };
        assert_eq!(event.draft.subject_id, Some(next_identity), "event {index}");
        assert_eq!(
            after["identity_ids"],
            serde_json::json!([next_identity, next_identity + size - 1])
        );
        assert_eq!(after["identities"], size);
        let credentials = after["credentials"].as_i64().unwrap();
        assert_eq!(
            after["credential_ids"],
            serde_json::json!([next_credential, next_credential + credentials - 1])
        );
        // Digests of neighbouring chunks (and the last, short one): one given to the wrong
        // chunk would differ (every chunk's records do).
        if [0, 3, 4, chunks].contains(&index) {
            let mut digest = ImportDigest::default();
            for id in next_identity..next_identity + size {
                let detail = store.credentials(&format!("#{id}")).unwrap();
                digest.add(&detail.identity, &detail.credentials);
            }
            assert_eq!(after["records_sha256"], digest.finish(), "event {index}");
        }
        next_identity += size;
        next_credential += credentials;
    }
    assert!(store.verify_audit(&signing_key().verifying_key()).unwrap().is_ok());
}

/// What an export hands out of the known secrets.
fn exported_secrets(store: &mut dyn steward_store::Store) -> Vec<steward_store::KnownSecret> {
    let mut secrets = Vec::new();
    store
        .export_inventory(&mut |part| {
            if let ExportPart::Secrets(found) = part {
                secrets = found;
            }
            Ok(())
        })
        .unwrap();
    secrets
}

/// A secret without the store's own ids, to compare stores.
fn without_ids(secret: &steward_store::KnownSecret) -> (String, Option<String>, Vec<String>) {
    let copies = secret
        .copies
        .iter()
        .map(|copy| {
            format!(
                "{} {} {} {} {:?}",
                copy.kind, copy.locator, copy.first_seen, copy.last_seen, copy.removed_at
            )
        })
        .collect();
    let scanned = secret.scanned.as_ref().map(|scanned| {
        format!(
            "{} {} {} {} {}",
            scanned.rule_id, scanned.rule_name, scanned.preview, scanned.first_seen, scanned.last_seen
        )
    });
    (secret.fingerprint.as_str().to_string(), scanned, copies)
}

fn exported_secrets_import_into_another_store_as_they_were(db: &TestDb) {
    let mut store = db.open();
    let kind = steward_core::LocationKind::RepositoryFile;
    store.add_identity(&actor(), new_identity("svc", "aws", None)).unwrap();
    let active = store
        .add_credential(&actor(), "svc", new_credential("AKIAONE"))
        .unwrap();
    let unknown = steward_core::Fingerprint::parse(&"cd".repeat(32)).unwrap();
    let by_hand = steward_core::Fingerprint::parse(&"ef".repeat(32)).unwrap();
    let record = |fingerprint: &steward_core::Fingerprint, copies: &[&str]| steward_store::ScanRecord {
        fingerprint: fingerprint.clone(),
        rule_id: "aws-access-key".into(),
        rule_name: "AWS access key".into(),
        preview: "AKIA…(20 chars)".into(),
        copies: copies.iter().map(|locator| (kind, locator.to_string())).collect(),
    };
    let fingerprint = active.fingerprint.clone().unwrap();
    store
        .record_scan(
            &actor(),
            &[
                record(&fingerprint, &["repo@a:app.py:1", "repo@b:app.py:9"]),
                record(&unknown, &["repo@c:.env:1"]),
            ],
            &[],
        )
        .unwrap();
    let later = steward_store::Actor {
        now: at("2026-12-01T00:00:00Z"),
        ..actor()
    };
    store
        .record_location(&later, &by_hand, steward_core::LocationKind::Ticket, "OPS-1#c2")
        .unwrap();
    store
        .remove_location(&later, &fingerprint, kind, "repo@b:app.py:9", "cleaned", false)
        .unwrap();
    let secrets = exported_secrets(&mut *store);
    let summary: Vec<(String, bool, usize)> = secrets
        .iter()
        .map(|secret| {
            (
                secret.fingerprint.as_str()[..4].to_string(),
                secret.scanned.is_some(),
                secret.copies.len(),
            )
        })
        .collect();
    // First seen first (then in recording order); removed copies too.
    assert_eq!(
        summary,
        vec![
            (fingerprint.as_str()[..4].to_string(), true, 2),
            ("cdcd".to_string(), true, 1),
            ("efef".to_string(), false, 1),
        ]
    );

    // Into another store: the identity and credential first, the secrets after them.
    let other_db = db.another();
    let mut other = other_db.open();
    let mut records = vec![Ok(steward_store::ImportIdentity {
        identity: new_identity("svc", "aws", None),
        credentials: vec![new_credential("AKIAONE")],
    })]
    .into_iter();
    let events_before = other_db.count("audit_events");
    let summary = other
        .import_with_secrets(
            &later,
            "inventory.yaml",
            ImportAudit::PerRecord,
            &[],
            &mut records,
            &secrets,
        )
        .unwrap();
    assert_eq!((summary.secrets, summary.copies), (2, 4));
    assert_eq!(
        other_db.count("audit_events"),
        events_before + 1 + 2 + 4,
        "an identity, 2 secrets, 4 copies"
    );
    let imported = exported_secrets(&mut *other);
    assert_eq!(
        imported.iter().map(without_ids).collect::<Vec<_>>(),
        secrets.iter().map(without_ids).collect::<Vec<_>>()
    );
    // The copies of the credential's secret belong to it: the live one shows and counts.
    let locations = other.locations("svc").unwrap();
    assert_eq!(locations.len(), 2);
    assert!(locations.iter().all(|location| location.credential_id.is_some()));
    let findings = other.scan_findings().unwrap();
    assert_eq!(findings.len(), 3);
    assert_eq!(findings[0].holders.len(), 1);
    assert_eq!(findings[0].copies.len(), 1, "the removed copy stays removed");

    // Importing the same secrets again adds nothing; what is there is kept as it is.
    let summary = other
        .import_with_secrets(
            &later,
            "again.yaml",
            ImportAudit::PerRecord,
            &[],
            &mut std::iter::empty(),
            &secrets,
        )
        .unwrap();
    assert_eq!((summary.secrets, summary.copies, summary.events), (0, 0, 0));

    // A bad copy rolls the whole import back, identities too.
    let mut bad = secrets.clone();
    bad[1].copies[0].last_seen = at("2000-01-01T00:00:00Z");
    let third_db = db.another();
    let mut third = third_db.open();
    let mut records = vec![Ok(steward_store::ImportIdentity {
        identity: new_identity("svc", "aws", None),
        credentials: vec![new_credential("AKIAONE")],
    })]
    .into_iter();
    let error = third
        .import_with_secrets(&later, "bad.yaml", ImportAudit::PerRecord, &[], &mut records, &bad)
        .unwrap_err();
    assert!(error.to_string().contains("last_seen"), "{error}");
    assert_eq!(third_db.count("identities"), 0);
    assert_eq!(third_db.count("locations"), 0);
    assert_eq!(third_db.count("scanned_secrets"), 0);
    other.verify_audit(&signing_key().verifying_key()).unwrap().unwrap();
}

fn dismissed_copies_stay_dismissed_until_recorded_by_hand(db: &TestDb) {
    let mut store = db.open();
    let kind = steward_core::LocationKind::RepositoryFile;
    store.add_identity(&actor(), new_identity("old", "aws", None)).unwrap();
    let credential = store
        .add_credential(&actor(), "old", new_credential("AKIAOLD"))
        .unwrap();
    store.revoke_credential(&actor(), "old", "AKIAOLD", "rotated").unwrap();
    let fingerprint = credential.fingerprint.clone().unwrap();
    let scan = |store: &mut Box<dyn steward_store::Store>, now: &str| {
        let scanner = steward_store::Actor {
            now: at(now),
            ..actor()
        };
        store
            .record_scan(
                &scanner,
                &[steward_store::ScanRecord {
                    fingerprint: fingerprint.clone(),
                    rule_id: "aws-secret".into(),
                    rule_name: "AWS secret".into(),
                    preview: "wJal…(40 chars)".into(),
                    copies: vec![(kind, "/r@c1:config.py:3".to_string())],
                }],
                &[],
            )
            .unwrap()
    };
    scan(&mut store, "2026-11-28T00:00:00Z");
    assert_eq!(store.scan_findings().unwrap().len(), 1, "revoked-but-referenced");
    // Dismissed once; again is an error (nothing left to dismiss).
    let dismissed = store
        .remove_location(&actor(), &fingerprint, kind, "/r@c1:config.py:3", "history kept", true)
        .unwrap();
    assert!(dismissed.dismissed && dismissed.removed_at.is_some());
    assert!(matches!(
        store.remove_location(&actor(), &fingerprint, kind, "/r@c1:config.py:3", "again", true),
        Err(StoreError::UnknownLocation { .. })
    ));
    assert!(store.scan_findings().unwrap().is_empty());
    // Scans that find it again leave it dismissed, and write nothing for it.
    let events = db.count("audit_events");
    let seen = scan(&mut store, "2026-11-29T00:00:00Z");
    assert!(seen.seen.is_empty() && seen.removed.is_empty());
    assert_eq!(db.count("audit_events"), events);
    assert!(store.scan_findings().unwrap().is_empty());
    let locations = store.locations("old").unwrap();
    assert!(locations[0].dismissed, "{locations:?}");
    // A line added above it moves it, still dismissed; the same copy twice is one.
    let scanner = steward_store::Actor {
        now: at("2026-11-29T12:00:00Z"),
        ..actor()
    };
    let moved = store
        .record_scan(
            &scanner,
            &[steward_store::ScanRecord {
                fingerprint: fingerprint.clone(),
                rule_id: "aws-secret".into(),
                rule_name: "AWS secret".into(),
                preview: "wJal…(40 chars)".into(),
                copies: vec![
                    (kind, "/r@c1:config.py:4".to_string()),
                    (kind, "/r@c1:config.py:4".to_string()),
                ],
            }],
            &[],
        )
        .unwrap();
    assert_eq!(moved.seen.len(), 1, "{:?}", moved.seen);
    let locations = store.locations("old").unwrap();
    assert_eq!(locations.len(), 1, "{locations:?}");
    assert!(locations[0].dismissed && locations[0].locator == "/r@c1:config.py:4");
    assert!(store.scan_findings().unwrap().is_empty());
    // The identity can be archived.
    for (to, reason) in [("offboarding", "retired"), ("revoked", "retired"), ("archived", "done")] {
        store
            .transition_identity(&actor(), "old", to.parse().unwrap(), reason)
            .unwrap_or_else(|error| panic!("{to}: {error}"));
    }
    // Recorded by hand at its place, it is live again.
    let live = store
        .record_location(&actor(), &fingerprint, kind, "/r@c1:config.py:3")
        .unwrap();
    assert!(!live.dismissed && live.removed_at.is_none());
    assert_eq!(store.scan_findings().unwrap().len(), 1);
    store.verify_audit(&signing_key().verifying_key()).unwrap().unwrap();
}

fn a_copy_linked_to_a_credential_added_since_is_recorded_again(db: &TestDb) {
    let mut store = db.open();
    let kind = steward_core::LocationKind::ConfigFile;
    let credential = new_credential("AKIALATER");
    let fingerprint = credential.fingerprint.clone().unwrap();
    let record = steward_store::ScanRecord {
        fingerprint: fingerprint.clone(),
        rule_id: "aws-secret".into(),
        rule_name: "AWS secret".into(),
        preview: "wJal…(40 chars)".into(),
        copies: vec![(kind, "/srv/app.env:1:1".to_string())],
    };
    store.record_scan(&actor(), std::slice::from_ref(&record), &[]).unwrap();
    store
        .add_identity(&actor(), new_identity("later", "aws", None))
        .unwrap();
    store.add_credential(&actor(), "later", credential).unwrap();
    let events = db.count("audit_events");
    store.record_scan(&actor(), std::slice::from_ref(&record), &[]).unwrap();
    assert_eq!(
        db.count("audit_events"),
        events + 1,
        "a location.record, not a location.seen"
    );
    let mut log = Vec::new();
    store
        .for_each_event(&EventFilter::default(), &mut |event| {
            log.push(event.draft.action.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(log.last().map(String::as_str), Some("location.record"));
    let locations = store.locations("later").unwrap();
    assert!(locations[0].credential_id.is_some(), "{locations:?}");
}
