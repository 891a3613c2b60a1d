//! The keyword pass: every occurrence of every rule keyword (ASCII case-insensitive,
//! overlapping occurrences included) in a blob, as an overlapping Aho-Corasick search
//! reports them. It only finds keywords; which rules they wake is the matcher's business.
//!
//! `aho_corasick` builds the automaton (a full DFA); its states are then copied into a
//! flat table of our own whose lookups need no bounds check, and the blob is walked as
//! [`LANES`] interleaved lanes (see [`KeywordAutomaton::hits`]).

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use std::collections::HashMap;

/// Independent DFA walks interleaved over one blob.
const LANES: usize = 4;

/// One occurrence of a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeywordHit {
    /// Index of the keyword in the list the automaton was built from.
    pub keyword: usize,
    /// Byte offset where the keyword starts.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

/// The keyword DFA as a flat table: `transitions[state + classes[byte]]` is the next state,
/// where a state is the index of the first entry of its row (row length `stride`).
pub(crate) struct KeywordAutomaton {
    /// Byte to column: bytes found in no keyword share column 0, the two cases of a letter
    /// share one column.
    classes: [u8; 256],
    transitions: Vec<u32>,
    start: u32,
    /// Match states come first: a state below this one ends at least one keyword.
    match_limit: u32,
    stride: u32,
    /// For match state `state`: the (keyword, length) pairs at
    /// `ends[ends_by_state[state / stride]..ends_by_state[state / stride + 1]]`.
    ends: Vec<(u32, u32)>,
    ends_by_state: Vec<u32>,
    longest: usize,
}

/// A full DFA: larger to build (milliseconds), several times faster to run than an NFA
/// over ~200 case-insensitive keywords. No prefilter: none applies to so many.
fn aho_corasick_dfa(keywords: &[String]) -> Result<DFA, aho_corasick::BuildError> {
    DFA::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .start_kind(StartKind::Unanchored)
        .prefilter(false)
        .build(keywords)
}

impl KeywordAutomaton {
    /// Builds the automaton over `keywords` (each matched ASCII case-insensitively).
    pub fn new(keywords: &[String]) -> Result<KeywordAutomaton, aho_corasick::BuildError> {
        let dfa = aho_corasick_dfa(keywords)?;
        let start = dfa
            .start_state(Anchored::No)
            .expect("the keyword DFA is built for unanchored searches");

        // From any state, a byte that is in no keyword leads back to the start, and both
        // cases of a letter lead to the same state: one column for each.
        let mut classes = [0u8; 256];
        let mut representatives: Vec<Option<u8>> = vec![None];
        for byte in keywords.iter().flat_map(|keyword| keyword.bytes()) {
            let folded = byte.to_ascii_lowercase();
            if classes[usize::from(folded)] == 0 {
                let class = u8::try_from(representatives.len()).expect("fewer than 256 keyword bytes");
                classes[usize::from(folded)] = class;
                classes[usize::from(folded.to_ascii_uppercase())] = class;
                representatives.push(Some(folded));
            }
        }
        representatives[0] = (0..=255u8).find(|byte| classes[usize::from(*byte)] == 0);
        let stride = representatives.len();

        // Every state reachable from the start, breadth first, with its row of successors.
        let mut states = vec![start];
        let mut index_of: HashMap<usize, usize> = HashMap::from([(start.as_usize(), 0)]);
        let mut rows: Vec<usize> = Vec::new();
        let mut next_to_visit = 0;
        while next_to_visit < states.len() {
            let state = states[next_to_visit];
            next_to_visit += 1;
            for representative in &representatives {
                let next = match representative {
                    Some(byte) => dfa.next_state(Anchored::No, state, *byte),
                    None => start,
                };
                let index = *index_of.entry(next.as_usize()).or_insert_with(|| {
                    states.push(next);
                    states.len() - 1
                });
                rows.push(index);
            }
        }

        // Renumber: match states first, each state as the offset of its row.
        let mut order: Vec<usize> = (0..states.len()).collect();
        order.sort_by_key(|&index| !dfa.is_match(states[index]));
        let mut position = vec![0usize; states.len()];
        for (new, &old) in order.iter().enumerate() {
            position[old] = new;
        }
        let row_start = |index: usize| u32::try_from(position[index] * stride).expect("keyword table under 4 GiB");
        let mut transitions = vec![0u32; states.len() * stride];
        for (old, row) in rows.chunks(stride).enumerate() {
            let from = position[old] * stride;
            for (column, &next) in row.iter().enumerate() {
                transitions[from + column] = row_start(next);
            }
        }
        let match_count = states.iter().filter(|state| dfa.is_match(**state)).count();
        let mut ends = Vec::new();
        let mut ends_by_state = vec![0u32];
        for &old in &order[..match_count] {
            let state = states[old];
            for index in 0..dfa.match_len(state) {
                let keyword = dfa.match_pattern(state, index);
                let length = u32::try_from(dfa.pattern_len(keyword)).expect("keyword under 4 GiB");
                ends.push((keyword.as_u32(), length));
            }
            ends_by_state.push(u32::try_from(ends.len()).expect("under 4 Gi keyword ends"));
        }
        let automaton = KeywordAutomaton {
            classes,
            transitions,
            start: row_start(0),
            match_limit: u32::try_from(match_count * stride).expect("keyword table under 4 GiB"),
            stride: u32::try_from(stride).expect("stride under 257"),
            ends,
            ends_by_state,
            longest: dfa.max_pattern_len(),
        };
        // What makes the unchecked lookups in `next` sound: every state is the start of a
        // whole row, and every column is inside a row.
        assert!(
            automaton
                .transitions
                .iter()
                .chain([&automaton.start])
                .all(|&state| state % automaton.stride == 0 && (state as usize) + stride <= automaton.transitions.len())
        );
        assert!(automaton.classes.iter().all(|&class| usize::from(class) < stride));
        Ok(automaton)
    }

    /// The state after `byte`.
    #[inline(always)]
    fn next(&self, state: u32, byte: u8) -> u32 {
        let index = state as usize + usize::from(self.classes[usize::from(byte)]);
        // SAFETY: `state` is the start of a row (`new` checks that every stored state is)
        // and the column is below the stride (`new` checks every class), so `index` is
        // inside the table. Unchecked because this load is the critical path of the scan.
        unsafe { *self.transitions.get_unchecked(index) }
    }

    #[inline(always)]
    fn is_match(&self, state: u32) -> bool {
        state < self.match_limit
    }

    /// Every occurrence of every keyword in `blob`, ordered by end (and, at one end, in
    /// the automaton's order), overlapping ones included.
    ///
    /// One DFA walk is bound by the latency of its table loads: each step waits for the
    /// previous state. So the blob is cut into [`LANES`] segments walked in lock-step,
    /// whose loads overlap in the CPU; each lane starts the longest keyword's length
    /// before its segment (to see keywords crossing into it) and reports only the keywords
    /// ending inside it.
    pub fn hits(&self, blob: &[u8]) -> Vec<KeywordHit> {
        let overlap = self.longest.saturating_sub(1);
        let mut lanes: [Vec<KeywordHit>; LANES] = Default::default();
        let segment = blob.len() / LANES;
        if segment <= overlap {
            self.walk(self.start, blob, 0, 0, &mut lanes[0]);
            let [hits, ..] = lanes;
            return hits;
        }
        // Lane k owns [k * segment, (k + 1) * segment) (the last lane up to the end) and
        // walks from `overlap` bytes before it; all lanes walk `segment` bytes together.
        let begins: [usize; LANES] = std::array::from_fn(|lane| (lane * segment).saturating_sub(overlap));
        let owned: [usize; LANES] = std::array::from_fn(|lane| lane * segment);
        let together: [&[u8]; LANES] = std::array::from_fn(|lane| &blob[begins[lane]..begins[lane] + segment]);
        // The states live in locals, not an array: kept in registers, the chain of
        // dependent loads has no store and reload in it.
        let start = self.start;
        let (mut state0, mut state1, mut state2, mut state3) = (start, start, start, start);
        for (step, (((&byte0, &byte1), &byte2), &byte3)) in together[0]
            .iter()
            .zip(together[1])
            .zip(together[2])
            .zip(together[3])
            .enumerate()
        {
            state0 = self.next(state0, byte0);
            state1 = self.next(state1, byte1);
            state2 = self.next(state2, byte2);
            state3 = self.next(state3, byte3);
            if self.is_match(state0) | self.is_match(state1) | self.is_match(state2) | self.is_match(state3) {
                self.record_lanes([state0, state1, state2, state3], step, &begins, &owned, &mut lanes);
            }
        }
        let states = [state0, state1, state2, state3];
        // Each lane goes on alone to the end of its own segment.
        for lane in 0..LANES {
            let from = begins[lane] + segment;
            let to = if lane + 1 == LANES { blob.len() } else { owned[lane + 1] };
            self.walk(states[lane], &blob[from..to], from, owned[lane], &mut lanes[lane]);
        }
        let [mut hits, rest @ ..] = lanes;
        for lane in rest {
            hits.extend(lane);
        }
        hits
    }

    /// Records the keywords of the lanes that are in a match state after `step` steps.
    #[cold]
    #[inline(never)]
    fn record_lanes(
        &self,
        states: [u32; LANES],
        step: usize,
        begins: &[usize; LANES],
        owned: &[usize; LANES],
        lanes: &mut [Vec<KeywordHit>; LANES],
    ) {
        for lane in 0..LANES {
            let end = begins[lane] + step + 1;
            if self.is_match(states[lane]) && end > owned[lane] {
                self.record(states[lane], end, &mut lanes[lane]);
            }
        }
    }

    /// Walks `bytes` (at `offset` in the blob) from `state`, recording keywords that end
    /// after `owned_from`; returns the final state.
    fn walk(&self, mut state: u32, bytes: &[u8], offset: usize, owned_from: usize, hits: &mut Vec<KeywordHit>) -> u32 {
        for (index, &byte) in bytes.iter().enumerate() {
            state = self.next(state, byte);
            if self.is_match(state) && offset + index + 1 > owned_from {
                self.record(state, offset + index + 1, hits);
            }
        }
        state
    }

    /// Records the keywords that the match state `state`, reached at `end`, ends.
    fn record(&self, state: u32, end: usize, hits: &mut Vec<KeywordHit>) {
        let row = (state / self.stride) as usize;
        let ends = &self.ends[self.ends_by_state[row] as usize..self.ends_by_state[row + 1] as usize];
        for &(keyword, length) in ends {
            hits.push(KeywordHit {
                keyword: keyword as usize,
                start: end - length as usize,
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;
    use proptest::prelude::*;

    /// The keyword occurrences an overlapping Aho-Corasick search reports, for comparison.
    fn reference_hits(keywords: &[String], blob: &[u8]) -> Vec<KeywordHit> {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(keywords)
            .expect("keywords compile")
            .find_overlapping_iter(blob)
            .map(|hit| KeywordHit {
                keyword: hit.pattern().as_usize(),
                start: hit.start(),
                end: hit.end(),
            })
            .collect()
    }

    /// The built-in rules' keywords and their automaton.
    fn builtin() -> &'static (KeywordAutomaton, Vec<String>) {
        static BUILTIN: std::sync::OnceLock<(KeywordAutomaton, Vec<String>)> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(|| {
            let rules = RuleSet::builtin().expect("built-in rules");
            let mut keywords: Vec<String> = Vec::new();
            for keyword in rules.rules.iter().flat_map(|rule| &rule.keywords) {
                if !keywords.contains(keyword) {
                    keywords.push(keyword.clone());
                }
            }
            (KeywordAutomaton::new(&keywords).expect("automaton"), keywords)
        })
    }

    #[test]
    fn the_table_behaves_as_the_aho_corasick_dfa_from_every_state_on_every_byte() {
        let (automaton, keywords) = builtin();
        let dfa = aho_corasick_dfa(keywords).expect("dfa");
        let start = dfa.start_state(Anchored::No).expect("start");
        let mut seen: HashMap<usize, u32> = HashMap::from([(start.as_usize(), automaton.start)]);
        let mut pending = vec![(start, automaton.start)];
        while let Some((theirs, ours)) = pending.pop() {
            let mut their_ends = Vec::new();
            if dfa.is_match(theirs) {
                for index in 0..dfa.match_len(theirs) {
                    let keyword = dfa.match_pattern(theirs, index);
                    their_ends.push((keyword.as_usize(), dfa.pattern_len(keyword)));
                }
            }
            let mut our_ends = Vec::new();
            if automaton.is_match(ours) {
                automaton.record(ours, 1000, &mut our_ends);
            }
            let our_ends: Vec<_> = our_ends.iter().map(|hit| (hit.keyword, hit.end - hit.start)).collect();
            assert_eq!(their_ends, our_ends);
            for byte in 0..=255u8 {
                let (their_next, our_next) = (dfa.next_state(Anchored::No, theirs, byte), automaton.next(ours, byte));
                match seen.get(&their_next.as_usize()) {
                    Some(&known) => assert_eq!(known, our_next, "byte {byte}"),
                    None => {
                        seen.insert(their_next.as_usize(), our_next);
                        pending.push((their_next, our_next));
                    }
                }
            }
        }
        assert_eq!(seen.len() * automaton.stride as usize, automaton.transitions.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The interleaved lanes report exactly what one overlapping walk reports, in the
        /// same order, wherever keywords fall relative to the lane boundaries.
        #[test]
        fn lanes_report_every_keyword_once_in_order(
            pieces in proptest::collection::vec(
                (0usize..400, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)),
                0..120,
            ),
        ) {
            let (automaton, keywords) = builtin();
            let mut blob = Vec::new();
            for (choice, upper, filler) in &pieces {
                blob.extend_from_slice(filler);
                let keyword = &keywords[choice % keywords.len()];
                if *upper {
                    blob.extend_from_slice(keyword.to_ascii_uppercase().as_bytes());
                } else {
                    blob.extend_from_slice(keyword.as_bytes());
                }
            }
            prop_assert_eq!(automaton.hits(&blob), reference_hits(keywords, &blob));
        }
    }
}
