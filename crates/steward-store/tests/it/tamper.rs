//! Tampering with the audit tables directly, as an attacker with database access would.

use crate::harness::*;
use steward_core::LifecycleState;

conformance_tests!(
    triggers_reject_update_and_delete,
    an_edit_after_dropping_triggers_is_named,
    a_deleted_event_is_named,
    a_deleted_tail_is_found_through_its_checkpoint,
    reordered_events_are_named,
    an_inserted_event_is_named,
    a_rewritten_chain_fails_its_signed_checkpoint,
    a_row_that_no_longer_decodes_is_named,
    an_edit_several_batches_into_a_long_chain_is_named,
    an_event_appended_without_the_key_is_named_and_never_signed_over,
);

fn build(db: &TestDb) {
    let mut store = db.open();
    for name in ["a", "b", "c", "d", "e"] {
        store.add_identity(&actor(), new_identity(name, "aws", None)).unwrap();
    }
    store
        .transition_identity(&actor(), "c", LifecycleState::Suspended, "r")
        .unwrap();
}

fn drop_triggers(db: &TestDb) {
    if db.is_postgres() {
        db.execute(
            "DROP TRIGGER audit_events_append_only ON audit_events;
             DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints;",
        )
        .unwrap();
    } else {
        db.execute(
            "DROP TRIGGER audit_events_append_only_update; DROP TRIGGER audit_events_append_only_delete;
             DROP TRIGGER audit_checkpoints_append_only_update; DROP TRIGGER audit_checkpoints_append_only_delete;",
        )
        .unwrap();
    }
}

/// The first bad sequence number, checking that verifying the chain in two halves over
/// two connections (as long chains are) names the same problem for every split point.
fn first_bad_seq(db: &TestDb) -> i64 {
    let mut store = db.open();
    let key = signing_key().verifying_key();
    let problem = store.verify_audit(&key).unwrap().unwrap_err();
    let highest = db.count("audit_events") + 3;
    for after in 1..=highest {
        assert_eq!(
            store.verify_audit_split(&key, Some(after)).unwrap(),
            Err(problem.clone()),
            "split after {after}"
        );
    }
    problem.seq
}

fn triggers_reject_update_and_delete(db: &TestDb) {
    build(db);
    let error = db
        .execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        .unwrap_err();
    assert!(error.contains("append-only"), "{error}");
    let error = db.execute("DELETE FROM audit_events WHERE seq = 2").unwrap_err();
    assert!(error.contains("append-only"), "{error}");
    let error = db.execute("DELETE FROM audit_checkpoints").unwrap_err();
    assert!(error.contains("append-only"), "{error}");
    if db.is_postgres() {
        assert!(db.execute("TRUNCATE audit_events").unwrap_err().contains("append-only"));
    }
    let mut store = db.open();
    let key = signing_key().verifying_key();
    let whole = store.verify_audit(&key).unwrap();
    assert!(whole.is_ok());
    for after in 1..=db.count("audit_events") + 1 {
        assert_eq!(
            store.verify_audit_split(&key, Some(after)).unwrap(),
            whole,
            "split after {after}"
        );
    }
}

fn an_edit_after_dropping_triggers_is_named(db: &TestDb) {
    build(db);
    drop_triggers(db);
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
        .unwrap();
    assert_eq!(first_bad_seq(db), 3);
}

fn a_row_that_no_longer_decodes_is_named(db: &TestDb) {
    build(db);
    drop_triggers(db);
    // A hash of three bytes: not a row of the chain any more.
    let short_hash = if db.is_postgres() { "'\\x010203'" } else { "X'010203'" };
    db.execute(&format!("UPDATE audit_events SET hash = {short_hash} WHERE seq = 4"))
        .unwrap();
    assert_eq!(first_bad_seq(db), 4);
}

fn an_edit_several_batches_into_a_long_chain_is_named(db: &TestDb) {
    // Longer than the 128-row batches a half is read in, so buffers are reused and the
    // problem is met in a later batch, with the rest of the stream left unread.
    let mut store = db.open();
    for index in 0..400 {
        store
            .add_identity(&actor(), new_identity(&format!("n{index}"), "aws", None))
            .unwrap();
    }
    drop(store);
    drop_triggers(db);
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 290")
        .unwrap();
    let mut store = db.open();
    let key = signing_key().verifying_key();
    let problem = store.verify_audit(&key).unwrap().unwrap_err();
    assert_eq!(problem.seq, 290);
    for after in [1, 100, 161, 162, 200, 289, 290, 291, 399] {
        assert_eq!(
            store.verify_audit_split(&key, Some(after)).unwrap(),
            Err(problem.clone()),
            "split after {after}"
        );
    }
}

fn a_deleted_event_is_named(db: &TestDb) {
    build(db);
    drop_triggers(db);
    db.execute("DELETE FROM audit_events WHERE seq = 2").unwrap();
    assert_eq!(first_bad_seq(db), 2);
}

fn a_deleted_tail_is_found_through_its_checkpoint(db: &TestDb) {
    build(db);
    drop_triggers(db);
    db.execute("DELETE FROM audit_events WHERE seq >= 5").unwrap();
    assert_eq!(first_bad_seq(db), 5);
}

fn reordered_events_are_named(db: &TestDb) {
    build(db);
    drop_triggers(db);
    db.execute(
        "UPDATE audit_events SET seq = -1 WHERE seq = 2;
         UPDATE audit_events SET seq = 2 WHERE seq = 4;
         UPDATE audit_events SET seq = 4 WHERE seq = -1;",
    )
    .unwrap();
    assert_eq!(first_bad_seq(db), 2);
}

fn an_inserted_event_is_named(db: &TestDb) {
    build(db);
    drop_triggers(db);
    // Shift events 4.. up by one and insert a forged event 4 that claims to follow 3.
    db.execute(
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 4;
         UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000;
         INSERT INTO audit_events (seq, at, actor, action, subject_kind, subject_id, subject_name, prev_hash, hash)
             SELECT 4, at, 'mallory', 'identity.delete', subject_kind, subject_id, subject_name, hash, hash
             FROM audit_events WHERE seq = 3;",
    )
    .unwrap();
    assert_eq!(first_bad_seq(db), 4);
}

fn a_rewritten_chain_fails_its_signed_checkpoint(db: &TestDb) {
    build(db);
    drop_triggers(db);
    // Recompute every hash after an edit (as an attacker with the algorithm but not the
    // signing key would), by rebuilding the chain through the library and writing it back.
    let mut events = stored_events(db);
    events[2].draft.actor = "mallory".into();
    let mut prev = events[1].hash;
    let mut statements = String::new();
    for event in &mut events[2..] {
        event.prev_hash = prev;
        event.hash = steward_core::audit::event_hash(&prev, event.seq, &event.draft);
        prev = event.hash;
        let (prev_hex, hash_hex) = (hex(&event.prev_hash), hex(&event.hash));
        let literal = |text: String| {
            if db.is_postgres() {
                format!("'\\x{text}'::bytea")
            } else {
                format!("X'{text}'")
            }
        };
        statements.push_str(&format!(
            "UPDATE audit_events SET actor = '{}', prev_hash = {}, hash = {} WHERE seq = {};",
            event.draft.actor,
            literal(prev_hex),
            literal(hash_hex),
            event.seq
        ));
    }
    db.execute(&statements).unwrap();
    assert_eq!(first_bad_seq(db), 3);
}

/// A forged event after the head needs no dropped trigger (INSERT is allowed), only the
/// public hash algorithm. No checkpoint covers it: verify names it, and the next write
/// refuses to sign a checkpoint over it. Deleting the last checkpoint is found the same way.
fn an_event_appended_without_the_key_is_named_and_never_signed_over(db: &TestDb) {
    build(db);
    let events = stored_events(db);
    let head = events.last().unwrap().clone();
    let mut forged = head.draft.clone();
    forged.actor = "mallory".into();
    let hash = steward_core::audit::event_hash(&head.hash, head.seq + 1, &forged);
    let literal = |bytes: &[u8]| {
        if db.is_postgres() {
            format!("'\\x{}'::bytea", hex(bytes))
        } else {
            format!("X'{}'", hex(bytes))
        }
    };
    db.execute(&format!(
        "INSERT INTO audit_events (seq, at, actor, action, subject_kind, subject_id, subject_name, reason,
             before, after, prev_hash, hash)
         SELECT seq + 1, at, 'mallory', action, subject_kind, subject_id, subject_name, reason, before, after, {}, {}
         FROM audit_events WHERE seq = {}",
        literal(&head.hash),
        literal(&hash),
        head.seq
    ))
    .unwrap();
    assert_eq!(first_bad_seq(db), head.seq + 1);
    let events_before = db.count("audit_events");
    let error = db
        .open()
        .add_identity(&actor(), new_identity("f", "aws", None))
        .unwrap_err();
    assert!(
        matches!(error, steward_store::StoreError::AuditHeadUnsigned { head, checkpoint } if head == events.len() as i64 + 1 && checkpoint == events.len() as i64),
        "{error}"
    );
    assert_eq!(db.count("audit_events"), events_before);
    assert_eq!(db.count("identities"), 5);

    // Without the forged event, but without the last checkpoint either.
    drop_triggers(db);
    db.execute(&format!("DELETE FROM audit_events WHERE seq = {}", head.seq + 1))
        .unwrap();
    db.execute(&format!("DELETE FROM audit_checkpoints WHERE seq = {}", head.seq))
        .unwrap();
    assert_eq!(first_bad_seq(db), head.seq);
    assert!(matches!(
        db.open().add_identity(&actor(), new_identity("f", "aws", None)),
        Err(steward_store::StoreError::AuditHeadUnsigned { .. })
    ));
}

/// Every stored event, in order.
fn stored_events(db: &TestDb) -> Vec<steward_core::audit::AuditEvent> {
    let mut events = Vec::new();
    db.open()
        .for_each_event(&Default::default(), &mut |event| {
            events.push(event);
            Ok(())
        })
        .unwrap();
    events
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
