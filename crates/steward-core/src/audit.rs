//! The audit chain: append-only events linked by SHA-256 and checkpoints signed with
//! Ed25519.
//!
//! `hash(n) = SHA-256(hash(n-1) ‖ canonical(n))`, with `hash(0)` all zeroes. The
//! canonical form is a length-prefixed encoding of every stored field of the event
//! (sequence number, time, actor, action, subject, reason, before, after), so any edit,
//! deletion, insertion or reordering changes some hash. Because an attacker with write
//! access can recompute the whole chain, each writing transaction also stores a
//! checkpoint: the head's sequence number and hash, signed with the installation's
//! audit key. [`ChainVerifier`] checks both and names the first bad sequence number.

use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: Hash = [0; 32];

/// An event before it is sequenced and chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDraft {
    /// When it happened.
    pub at: Timestamp,
    /// Who did it (a person, a team, a token name, `system`).
    pub actor: String,
    /// What was done, `noun.verb` (e.g. `identity.create`, `identity.transition`).
    pub action: String,
    /// Kind of subject (`identity`, `party`, `credential`, `import`).
    pub subject_kind: String,
    /// Store id of the subject, if it has one.
    pub subject_id: Option<i64>,
    /// Human name of the subject (`aws/billing-export`).
    pub subject_name: String,
    /// Why, as given by the actor.
    pub reason: Option<String>,
    /// The subject before, as canonical JSON text.
    pub before: Option<String>,
    /// The subject after, as canonical JSON text.
    pub after: Option<String>,
}

/// A stored, chained event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The event's content.
    #[serde(flatten)]
    pub draft: EventDraft,
    /// Hash of the previous event.
    #[serde(serialize_with = "serialize_hash")]
    pub prev_hash: Hash,
    /// This event's hash.
    #[serde(serialize_with = "serialize_hash")]
    pub hash: Hash,
}

fn serialize_hash<S: serde::Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(hash))
}

const EVENT_DOMAIN: &[u8] = b"steward-audit-v1\0";
const CHECKPOINT_DOMAIN: &[u8] = b"steward-checkpoint-v1\0";

fn update_optional_text(hasher: &mut Sha256, text: Option<&str>) {
    match text {
        // u64::MAX cannot be a length, so absent and empty stay distinct.
        None => hasher.update(u64::MAX.to_be_bytes()),
        Some(text) => {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
    }
}

/// An event's fields borrowed from wherever they are stored (e.g. a database row), so a
/// verifier can hash them without building an [`EventDraft`].
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    /// When, in microseconds since the Unix epoch.
    pub at_micros: i64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// Subject kind.
    pub subject_kind: &'a str,
    /// Subject id.
    pub subject_id: Option<i64>,
    /// Subject name.
    pub subject_name: &'a str,
    /// Why.
    pub reason: Option<&'a str>,
    /// Snapshot before.
    pub before: Option<&'a str>,
    /// Snapshot after.
    pub after: Option<&'a str>,
}

impl<'a> EventFields<'a> {
    /// The fields of `draft`.
    pub fn of(draft: &'a EventDraft) -> Self {
        EventFields {
            at_micros: draft.at.as_microsecond(),
            actor: &draft.actor,
            action: &draft.action,
            subject_kind: &draft.subject_kind,
            subject_id: draft.subject_id,
            subject_name: &draft.subject_name,
            reason: draft.reason.as_deref(),
            before: draft.before.as_deref(),
            after: draft.after.as_deref(),
        }
    }
}

/// Computes the chained hash of an event at `seq` following `prev_hash`.
pub fn event_hash(prev_hash: &Hash, seq: i64, draft: &EventDraft) -> Hash {
    fields_hash(prev_hash, seq, &EventFields::of(draft))
}

/// The chained hash of an event given by its fields: the one canonical form.
pub fn fields_hash(prev_hash: &Hash, seq: i64, fields: &EventFields<'_>) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(EVENT_DOMAIN);
    hasher.update(seq.to_be_bytes());
    hasher.update(fields.at_micros.to_be_bytes());
    update_optional_text(&mut hasher, Some(fields.actor));
    update_optional_text(&mut hasher, Some(fields.action));
    update_optional_text(&mut hasher, Some(fields.subject_kind));
    match fields.subject_id {
        None => hasher.update([0u8]),
        Some(id) => {
            hasher.update([1u8]);
            hasher.update(id.to_be_bytes());
        }
    }
    update_optional_text(&mut hasher, Some(fields.subject_name));
    update_optional_text(&mut hasher, fields.reason);
    update_optional_text(&mut hasher, fields.before);
    update_optional_text(&mut hasher, fields.after);
    hasher.finalize().into()
}

/// What the sequential part of verification needs of an event: its place in the chain
/// and whether its content matches its hash (checked in parallel, see [`content_is_intact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLink {
    /// Sequence number.
    pub seq: i64,
    /// Stored hash of the event before.
    pub prev_hash: Hash,
    /// Stored hash.
    pub hash: Hash,
    /// Whether the stored hash is that of the content and `prev_hash`.
    pub intact: bool,
    /// Whether the stored row could be read at all (`false`: altered into something that
    /// is not an event; the other fields but `seq` mean nothing).
    pub decodable: bool,
}

impl EventLink {
    /// The link of a stored row at `seq` that could not be read as an event.
    pub fn undecodable(seq: i64) -> Self {
        EventLink {
            seq,
            prev_hash: [0; 32],
            hash: [0; 32],
            intact: false,
            decodable: false,
        }
    }

    /// The link of a decoded event whose content check gave `intact`.
    pub fn of(event: &AuditEvent, intact: bool) -> Self {
        EventLink {
            seq: event.seq,
            prev_hash: event.prev_hash,
            hash: event.hash,
            intact,
            decodable: true,
        }
    }
}

/// Sequences and chains `draft` after the event (`seq - 1`, `prev_hash`).
pub fn seal(draft: EventDraft, seq: i64, prev_hash: Hash) -> AuditEvent {
    let hash = event_hash(&prev_hash, seq, &draft);
    AuditEvent {
        seq,
        draft,
        prev_hash,
        hash,
    }
}

/// A signed statement that the chain's event `seq` has hash `head_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the head event.
    pub seq: i64,
    /// Its hash.
    pub head_hash: Hash,
    /// When the checkpoint was made.
    pub created_at: Timestamp,
    /// Ed25519 signature over the three fields above.
    pub signature: [u8; 64],
}

fn checkpoint_message(seq: i64, head_hash: &Hash, created_at: Timestamp) -> Vec<u8> {
    let mut message = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 48);
    message.extend_from_slice(CHECKPOINT_DOMAIN);
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(head_hash);
    message.extend_from_slice(&created_at.as_microsecond().to_be_bytes());
    message
}

impl Checkpoint {
    /// Signs the head `(seq, head_hash)` at `created_at`.
    pub fn sign(key: &SigningKey, seq: i64, head_hash: Hash, created_at: Timestamp) -> Self {
        let signature = key.sign(&checkpoint_message(seq, &head_hash, created_at));
        Checkpoint {
            seq,
            head_hash,
            created_at,
            signature: signature.to_bytes(),
        }
    }

    /// Whether the signature is valid under `key`.
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        let message = checkpoint_message(self.seq, &self.head_hash, self.created_at);
        key.verify(&message, &Signature::from_bytes(&self.signature)).is_ok()
    }
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct ChainProblem {
    /// The first sequence number that cannot be trusted.
    pub seq: i64,
    /// What was found there.
    pub reason: String,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    /// Events checked.
    pub events: u64,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: u64,
    /// Sequence number of the last event (0 for an empty chain).
    pub head_seq: i64,
    /// Hash of the last event, hex.
    pub head_hash: String,
}

/// Whether an event's stored hash is the hash of its content and stored `prev_hash`.
pub fn content_is_intact(event: &AuditEvent) -> bool {
    event_hash(&event.prev_hash, event.seq, &event.draft) == event.hash
}

/// Checks a chain event by event, in sequence order, against its signed checkpoints.
///
/// Feed events with [`ChainVerifier::push`], then call [`ChainVerifier::finish`]. The
/// verifier keeps O(checkpoints) memory, so chains of any length stream through it.
pub struct ChainVerifier {
    verifying_key: VerifyingKey,
    /// Checkpoints not yet reached, sorted by descending seq so the next is at the end.
    pending_checkpoints: Vec<Checkpoint>,
    last_good_checkpoint_seq: i64,
    checkpoints_checked: u64,
    next_seq: i64,
    prev_hash: Hash,
    prev_event_intact: bool,
    /// For a segment that does not start at the genesis: its first event is not checked
    /// against a predecessor here but recorded, for [`ChainVerifier::join`].
    segment_first: Option<Option<FirstEvent>>,
    events: u64,
}

/// The first event of a segment: what [`ChainVerifier::join`] checks against the end of
/// the segment before it.
#[derive(Debug, Clone, Copy)]
struct FirstEvent {
    seq: i64,
    prev_hash: Hash,
    intact: bool,
    decodable: bool,
}

fn undecodable(seq: i64) -> ChainProblem {
    ChainProblem {
        seq,
        reason: "the stored row cannot be read as an event (altered)".into(),
    }
}

/// A verified stretch of the chain, to be joined with the next.
pub struct SegmentOutcome {
    verifier: ChainVerifier,
    problem: Option<ChainProblem>,
}

impl ChainVerifier {
    /// Starts a verification; every checkpoint's signature is checked here.
    pub fn new(verifying_key: VerifyingKey, mut checkpoints: Vec<Checkpoint>) -> Result<Self, ChainProblem> {
        for checkpoint in &checkpoints {
            if !checkpoint.signature_is_valid(&verifying_key) {
                return Err(ChainProblem {
                    seq: checkpoint.seq,
                    reason: "checkpoint signature does not verify under this public key (a forged or altered checkpoint, or the key of another installation)".into(),
                });
            }
        }
        checkpoints.sort_by_key(|checkpoint| std::cmp::Reverse(checkpoint.seq));
        Ok(ChainVerifier {
            verifying_key,
            pending_checkpoints: checkpoints,
            last_good_checkpoint_seq: 0,
            checkpoints_checked: 0,
            next_seq: 1,
            prev_hash: GENESIS_HASH,
            prev_event_intact: true,
            segment_first: None,
            events: 0,
        })
    }

    /// Splits the verification at `after`: this verifier keeps the events up to `after`
    /// (feed them to it, then call [`ChainVerifier::end_segment`]); the returned one takes
    /// the events after it, in parallel, and is joined back with [`ChainVerifier::join`].
    /// The outcome is the same as verifying the whole chain in one pass.
    pub fn split_at(&mut self, after: i64) -> ChainVerifier {
        let mut later = Vec::new();
        self.pending_checkpoints.retain(|checkpoint| {
            let keep = checkpoint.seq <= after;
            if !keep {
                later.push(checkpoint.clone());
            }
            keep
        });
        // What the later segment's "last good checkpoint" will be once this one passes.
        let last_good = self
            .pending_checkpoints
            .first()
            .map_or(self.last_good_checkpoint_seq, |c| c.seq);
        ChainVerifier {
            verifying_key: self.verifying_key,
            pending_checkpoints: later,
            last_good_checkpoint_seq: last_good,
            checkpoints_checked: 0,
            next_seq: after + 1,
            prev_hash: GENESIS_HASH,
            prev_event_intact: true,
            segment_first: Some(None),
            events: 0,
        }
    }

    /// Ends a segment that is not the last one (no check for a deleted tail here: the
    /// next segment's first event shows what follows).
    pub fn end_segment(self, problem: Option<ChainProblem>) -> SegmentOutcome {
        SegmentOutcome {
            verifier: self,
            problem,
        }
    }

    /// Joins the outcome of the segment before with this, the last segment, and finishes:
    /// the first problem of the whole chain, as one pass would name it.
    pub fn join(self, earlier: SegmentOutcome, problem: Option<ChainProblem>) -> Result<ChainSummary, ChainProblem> {
        if let Some(problem) = earlier.problem {
            return Err(problem);
        }
        let before = earlier.verifier;
        let first = self.segment_first.flatten();
        if let Some(first) = first {
            let expected = before.next_seq;
            if first.seq != expected {
                return Err(ChainProblem {
                    seq: expected,
                    reason: format!(
                        "event {expected} is missing (next stored event is {}): deleted",
                        first.seq
                    ),
                });
            }
            if !first.decodable {
                return Err(undecodable(first.seq));
            }
            if first.prev_hash != before.prev_hash {
                return Err(if first.intact && first.seq > 1 && before.prev_event_intact {
                    ChainProblem {
                        seq: first.seq - 1,
                        reason: format!(
                            "event {} was altered: event {} chains to a different hash",
                            first.seq - 1,
                            first.seq
                        ),
                    }
                } else {
                    ChainProblem {
                        seq: first.seq,
                        reason: "prev_hash does not link to the previous event (inserted, reordered or altered)".into(),
                    }
                });
            }
            if !first.intact {
                return Err(ChainProblem {
                    seq: first.seq,
                    reason: "content does not match its hash (edited)".into(),
                });
            }
        }
        if let Some(problem) = problem {
            return Err(problem);
        }
        // Checkpoints of the earlier segment beyond its last event (tail of that range
        // deleted, nothing after): the same finish as one pass.
        let mut whole = self;
        if first.is_none() {
            whole.next_seq = before.next_seq;
            whole.prev_hash = before.prev_hash;
        }
        whole.pending_checkpoints.extend(before.pending_checkpoints);
        whole
            .pending_checkpoints
            .sort_by_key(|checkpoint| std::cmp::Reverse(checkpoint.seq));
        whole.checkpoints_checked += before.checkpoints_checked;
        whole.events += before.events;
        whole.finish()
    }

    /// The key checkpoints are verified with.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    /// Checks the next event.
    pub fn push(&mut self, event: &AuditEvent) -> Result<(), ChainProblem> {
        self.push_hashed(event, content_is_intact(event))
    }

    /// Checks the next event, whose content check ([`content_is_intact`]) was done
    /// elsewhere: that check depends on the event alone (its stored `prev_hash` is part
    /// of what is hashed), so it can run in parallel; the links between events, their
    /// order and the checkpoints are checked here, in sequence.
    pub fn push_hashed(&mut self, event: &AuditEvent, intact: bool) -> Result<(), ChainProblem> {
        self.push_link(&EventLink::of(event, intact))
    }

    /// [`ChainVerifier::push_hashed`] for an event known only by its [`EventLink`].
    pub fn push_link(&mut self, event: &EventLink) -> Result<(), ChainProblem> {
        let (seq, intact) = (event.seq, event.intact);
        if let Some(None) = self.segment_first {
            // The first event of a later segment: its position and link to the event
            // before are checked by `join`; its content problem, if any, too (a broken
            // link would be named first).
            self.segment_first = Some(Some(FirstEvent {
                seq,
                prev_hash: event.prev_hash,
                intact,
                decodable: event.decodable,
            }));
            return self.accept(event);
        }
        if seq != self.next_seq {
            let reason = if seq > self.next_seq {
                format!(
                    "event {} is missing (next stored event is {seq}): deleted",
                    self.next_seq
                )
            } else {
                format!("event {seq} appears out of order or twice")
            };
            return Err(ChainProblem {
                seq: self.next_seq.min(seq),
                reason,
            });
        }
        if !event.decodable {
            return Err(undecodable(seq));
        }
        if event.prev_hash != self.prev_hash {
            // If this event is intact, it still links to what its predecessor used to be:
            // the predecessor was altered (and its own hash recomputed to hide it).
            return Err(if intact && seq > 1 && self.prev_event_intact {
                ChainProblem {
                    seq: seq - 1,
                    reason: format!("event {} was altered: event {seq} chains to a different hash", seq - 1),
                }
            } else {
                ChainProblem {
                    seq,
                    reason: "prev_hash does not link to the previous event (inserted, reordered or altered)".into(),
                }
            });
        }
        if !intact {
            return Err(ChainProblem {
                seq,
                reason: "content does not match its hash (edited)".into(),
            });
        }
        self.accept(event)
    }

    /// Moves past `event` and checks the checkpoints it reaches.
    fn accept(&mut self, event: &EventLink) -> Result<(), ChainProblem> {
        let (seq, intact) = (event.seq, event.intact);
        self.events += 1;
        self.prev_hash = event.hash;
        self.prev_event_intact = intact;
        self.next_seq = seq + 1;
        while let Some(checkpoint) = self.pending_checkpoints.last() {
            if checkpoint.seq > seq {
                break;
            }
            if checkpoint.seq == seq && checkpoint.head_hash != event.hash {
                return Err(ChainProblem {
                    seq: self.last_good_checkpoint_seq + 1,
                    reason: format!(
                        "events {}..={seq} do not match the signed checkpoint at {seq} (chain rewritten)",
                        self.last_good_checkpoint_seq + 1
                    ),
                });
            }
            self.last_good_checkpoint_seq = checkpoint.seq;
            self.checkpoints_checked += 1;
            self.pending_checkpoints.pop();
        }
        Ok(())
    }

    /// Ends the verification: a checkpoint beyond the last event means the tail was
    /// deleted; events after the last checkpoint were added without the signing key
    /// (every writing transaction signs a checkpoint of its last event).
    pub fn finish(self) -> Result<ChainSummary, ChainProblem> {
        if let Some(highest) = self.pending_checkpoints.first() {
            return Err(ChainProblem {
                seq: self.next_seq,
                reason: format!(
                    "events from {} on are missing: a signed checkpoint covers up to {}",
                    self.next_seq, highest.seq
                ),
            });
        }
        let head = self.next_seq - 1;
        if head > self.last_good_checkpoint_seq {
            let first = self.last_good_checkpoint_seq + 1;
            return Err(ChainProblem {
                seq: first,
                reason: format!(
                    "events {first}..={head} are covered by no signed checkpoint (every write signs its \
                     events: these were added without the signing key)"
                ),
            });
        }
        Ok(ChainSummary {
            events: self.events,
            checkpoints: self.checkpoints_checked,
            head_seq: self.next_seq - 1,
            head_hash: hex::encode(self.prev_hash),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn draft(n: i64) -> EventDraft {
        EventDraft {
            at: Timestamp::from_second(1_700_000_000 + n).unwrap(),
            actor: "alice".into(),
            action: "identity.create".into(),
            subject_kind: "identity".into(),
            subject_id: Some(n),
            subject_name: format!("aws/id-{n}"),
            reason: None,
            before: None,
            after: Some(format!("{{\"n\":{n}}}")),
        }
    }

    fn chain(length: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH;
        (1..=length)
            .map(|seq| {
                let event = seal(draft(seq), seq, prev);
                prev = event.hash;
                event
            })
            .collect()
    }

    fn verify(events: &[AuditEvent], checkpoints: Vec<Checkpoint>) -> Result<ChainSummary, ChainProblem> {
        let mut verifier = ChainVerifier::new(key().verifying_key(), checkpoints)?;
        for event in events {
            verifier.push(event)?;
        }
        verifier.finish()
    }

    fn checkpoint_at(events: &[AuditEvent], seq: i64) -> Checkpoint {
        Checkpoint::sign(&key(), seq, events[(seq - 1) as usize].hash, Timestamp::UNIX_EPOCH)
    }

    /// Verifies in two segments split after `after`, the way a parallel reader does.
    fn verify_split(
        events: &[AuditEvent],
        checkpoints: Vec<Checkpoint>,
        after: i64,
    ) -> Result<ChainSummary, ChainProblem> {
        let links: Vec<EventLink> = events
            .iter()
            .map(|event| EventLink::of(event, content_is_intact(event)))
            .collect();
        verify_links_split(&links, checkpoints, after)
    }

    /// [`verify_split`] for events given by their links.
    fn verify_links_split(
        links: &[EventLink],
        checkpoints: Vec<Checkpoint>,
        after: i64,
    ) -> Result<ChainSummary, ChainProblem> {
        let mut earlier = ChainVerifier::new(key().verifying_key(), checkpoints)?;
        let mut later = earlier.split_at(after);
        let problem = links
            .iter()
            .filter(|link| link.seq <= after)
            .try_for_each(|link| earlier.push_link(link))
            .err();
        let earlier = earlier.end_segment(problem);
        let problem = links
            .iter()
            .filter(|link| link.seq > after)
            .try_for_each(|link| later.push_link(link))
            .err();
        later.join(earlier, problem)
    }

    /// Events after the last signed checkpoint were written without the key: every write
    /// signs its last event.
    #[test]
    fn events_past_the_last_checkpoint_are_named() {
        let events = chain(6);
        let problem = verify(&events, vec![checkpoint_at(&events, 2), checkpoint_at(&events, 4)]).unwrap_err();
        assert_eq!(problem.seq, 5);
        assert!(
            problem
                .reason
                .starts_with("events 5..=6 are covered by no signed checkpoint"),
            "{problem:?}"
        );
        for after in 1..=7 {
            assert_eq!(
                verify_split(
                    &events,
                    vec![checkpoint_at(&events, 2), checkpoint_at(&events, 4)],
                    after
                ),
                Err(problem.clone()),
                "split after {after}"
            );
        }
        assert_eq!(verify(&events, vec![checkpoint_at(&events, 6)]).unwrap().head_seq, 6);
        assert_eq!(verify(&events, Vec::new()).unwrap_err().seq, 1);
    }

    /// Every way of tampering, split at every point, names the same problem as one pass.
    #[test]
    fn split_verification_names_what_one_pass_names() {
        let rehash = |events: &mut Vec<AuditEvent>, from: usize| {
            let mut prev = if from == 0 { GENESIS_HASH } else { events[from - 1].hash };
            for event in &mut events[from..] {
                event.prev_hash = prev;
                event.hash = event_hash(&prev, event.seq, &event.draft);
                prev = event.hash;
            }
        };
        type Tamper = Box<dyn Fn(&mut Vec<AuditEvent>)>;
        let tampers: Vec<(&str, Tamper)> = vec![
            ("none", Box::new(|_| {})),
            ("edit", Box::new(|e| e[4].draft.actor = "mallory".into())),
            ("edit first", Box::new(|e| e[0].draft.actor = "mallory".into())),
            ("edit last", Box::new(|e| e[11].draft.actor = "mallory".into())),
            (
                "edit and rehash one",
                Box::new(|e| {
                    e[5].draft.actor = "mallory".into();
                    e[5].hash = event_hash(&e[5].prev_hash, 6, &e[5].draft);
                }),
            ),
            (
                "edit and rehash the rest",
                Box::new(move |e| {
                    e[6].draft.actor = "mallory".into();
                    rehash(e, 6);
                }),
            ),
            ("delete", Box::new(|e| drop(e.remove(3)))),
            ("delete two", Box::new(|e| drop(e.drain(5..7)))),
            ("delete tail", Box::new(|e| e.truncate(9))),
            ("delete all", Box::new(|e| e.clear())),
            (
                "reorder",
                Box::new(|e| {
                    // Two rows exchange everything but their sequence numbers.
                    let (third, fourth) = (e[3].seq, e[4].seq);
                    e.swap(3, 4);
                    e[3].seq = third;
                    e[4].seq = fourth;
                }),
            ),
            (
                "insert",
                Box::new(move |e| {
                    let forged = seal(draft(99), 5, e[3].hash);
                    e.insert(4, forged);
                    for (index, event) in e.iter_mut().enumerate() {
                        event.seq = index as i64 + 1;
                    }
                    rehash(e, 5);
                }),
            ),
            (
                "append",
                Box::new(|e| {
                    let forged = seal(draft(99), 13, e[11].hash);
                    e.push(forged);
                }),
            ),
            (
                "rewrite",
                Box::new(move |e| {
                    for event in e.iter_mut() {
                        event.draft.actor = "mallory".into();
                    }
                    rehash(e, 0);
                }),
            ),
        ];
        for (name, tamper) in &tampers {
            let mut events = chain(12);
            let checkpoints = vec![
                checkpoint_at(&events, 3),
                checkpoint_at(&events, 8),
                checkpoint_at(&events, 12),
            ];
            tamper(&mut events);
            // As the store delivers them: in sequence order.
            events.sort_by_key(|event| event.seq);
            let whole = verify(&events, checkpoints.clone());
            for after in 1..=13 {
                assert_eq!(
                    verify_split(&events, checkpoints.clone(), after),
                    whole,
                    "{name}, split after {after}"
                );
            }
        }
    }

    /// Rows that cannot be read are problems at their place, also when split.
    #[test]
    fn an_unreadable_row_is_named_in_order() {
        let links = |events: &[AuditEvent], garbled: i64| -> Vec<EventLink> {
            events
                .iter()
                .map(|event| EventLink {
                    seq: event.seq,
                    prev_hash: if event.seq == garbled { [0; 32] } else { event.prev_hash },
                    hash: if event.seq == garbled { [0; 32] } else { event.hash },
                    intact: event.seq != garbled && content_is_intact(event),
                    decodable: event.seq != garbled,
                })
                .collect()
        };
        let run = |links: &[EventLink], after: Option<i64>| -> Result<ChainSummary, ChainProblem> {
            if let Some(after) = after {
                return verify_links_split(links, vec![], after);
            }
            let mut verifier = ChainVerifier::new(key().verifying_key(), vec![])?;
            for link in links {
                verifier.push_link(link)?;
            }
            verifier.finish()
        };
        let mut events = chain(10);
        for (edited, garbled, expected) in [(None, 7, 7), (Some(3), 7, 3), (Some(9), 1, 1)] {
            if let Some(edited) = edited {
                events = chain(10);
                events[edited - 1].draft.actor = "mallory".into();
            }
            let links = links(&events, garbled);
            let whole = run(&links, None).unwrap_err();
            assert_eq!(whole.seq, expected);
            if edited.is_none() {
                assert!(whole.reason.contains("cannot be read"), "{whole}");
            }
            for after in 1..=11 {
                assert_eq!(run(&links, Some(after)).unwrap_err(), whole, "split after {after}");
            }
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(10);
        let summary = verify(&events, vec![checkpoint_at(&events, 5), checkpoint_at(&events, 10)]).unwrap();
        assert_eq!((summary.events, summary.checkpoints, summary.head_seq), (10, 2, 10));
    }

    #[test]
    fn an_edit_is_found_at_its_seq() {
        let mut events = chain(10);
        events[3].draft.actor = "mallory".into();
        assert_eq!(verify(&events, vec![]).unwrap_err().seq, 4);
    }

    #[test]
    fn an_edit_with_its_hash_recomputed_is_found_at_its_seq() {
        let mut events = chain(10);
        events[3].draft.actor = "mallory".into();
        events[3].hash = event_hash(&events[3].prev_hash, 4, &events[3].draft);
        assert_eq!(verify(&events, vec![]).unwrap_err().seq, 4);
    }

    #[test]
    fn a_deletion_is_found() {
        let mut events = chain(10);
        events.remove(6);
        assert_eq!(verify(&events, vec![]).unwrap_err().seq, 7);
    }

    #[test]
    fn a_truncated_tail_is_found_through_the_checkpoint() {
        let events = chain(10);
        let checkpoint = checkpoint_at(&events, 10);
        assert_eq!(verify(&events[..8], vec![checkpoint]).unwrap_err().seq, 9);
    }

    #[test]
    fn a_fully_rewritten_chain_fails_its_checkpoint() {
        let events = chain(10);
        let checkpoints = vec![checkpoint_at(&events, 3), checkpoint_at(&events, 6)];
        let mut forged = events.clone();
        forged[4].draft.action = "identity.delete".into();
        let mut prev = forged[3].hash;
        for event in &mut forged[4..] {
            event.prev_hash = prev;
            event.hash = event_hash(&prev, event.seq, &event.draft);
            prev = event.hash;
        }
        assert_eq!(verify(&forged, checkpoints).unwrap_err().seq, 4);
    }

    #[test]
    fn a_forged_checkpoint_is_rejected() {
        let events = chain(3);
        let mut checkpoint = checkpoint_at(&events, 3);
        checkpoint.seq = 2;
        assert!(
            verify(&events, vec![checkpoint])
                .unwrap_err()
                .reason
                .contains("signature")
        );
    }

    #[test]
    fn swapped_events_are_found() {
        let mut events = chain(10);
        events.swap(4, 5);
        let (a, b) = (events[4].seq, events[5].seq);
        events[4].seq = b;
        events[5].seq = a;
        assert_eq!(verify(&events, vec![]).unwrap_err().seq, 5);
    }
}
