//! One pass over a blob with every rule: an Aho-Corasick automaton over all rules'
//! keywords (case-insensitive) finds candidate places; each rule whose keyword occurs runs
//! its regular expression only in a window around the hits (merged when they overlap).
//! Candidates then pass the rule's checks (entropy, placeholders, checksum) and inline
//! `steward:allow` comments.

use crate::checks::{is_placeholder, looks_like_identifier, shannon_entropy};
use crate::rules::{RuleError, RuleSet};
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use rayon::prelude::*;

/// How far before a keyword a match may start, in bytes (e.g. `"aws_secret": "…"` where the
/// keyword is the key, or a quoted prefix).
const REACH_BEFORE_KEYWORD: usize = 64;

/// Blobs of at least twice this size are searched in parallel chunks of this size.
const PARALLEL_CHUNK: usize = 1 << 20;

/// Independent DFA walks interleaved over one blob (see [`Matcher::keyword_hits`]).
const LANES: usize = 4;

/// Marks a line whose secrets are intentionally allowed.
pub const ALLOW_MARKER: &[u8] = b"steward:allow";

/// A secret found in a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    /// Index of the rule in the matcher's rule set.
    pub rule: usize,
    /// Byte offset where the secret starts.
    pub start: usize,
    /// Byte offset just past the secret.
    pub end: usize,
}

/// One occurrence of a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeywordHit {
    /// Index of the keyword (automaton pattern).
    keyword: usize,
    start: usize,
    end: usize,
}

/// The compiled matcher.
pub struct Matcher {
    rules: RuleSet,
    /// Every keyword, case-insensitive, as a full DFA reporting overlapping matches.
    keywords: DFA,
    /// For each automaton pattern, the rules that use that keyword.
    rules_by_keyword: Vec<Vec<usize>>,
}

impl Matcher {
    /// Builds the automaton for `rules`.
    pub fn new(rules: RuleSet) -> Result<Matcher, RuleError> {
        let mut keywords: Vec<String> = Vec::new();
        let mut rules_by_keyword: Vec<Vec<usize>> = Vec::new();
        for (index, rule) in rules.rules.iter().enumerate() {
            for keyword in &rule.keywords {
                match keywords.iter().position(|known| known == keyword) {
                    Some(position) => rules_by_keyword[position].push(index),
                    None => {
                        keywords.push(keyword.clone());
                        rules_by_keyword.push(vec![index]);
                    }
                }
            }
        }
        // A full DFA: larger to build (milliseconds), several times faster to run than an
        // NFA over ~200 case-insensitive keywords. No prefilter (none applies to so many
        // keywords) so that only match states are special.
        let keywords_dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(&keywords)
            .map_err(|error| RuleError::Parse {
                file: "keywords".into(),
                message: error.to_string(),
            })?;
        Ok(Matcher {
            rules,
            keywords: keywords_dfa,
            rules_by_keyword,
        })
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Every secret in `blob`, ordered by position, each once. Large blobs are split into
    /// overlapping chunks searched in parallel, so one big file does not hold up a scan.
    pub fn find(&self, blob: &[u8]) -> Vec<Match> {
        if blob.len() < 2 * PARALLEL_CHUNK {
            return self.find_in(blob);
        }
        // Each chunk owns the matches that start inside it and sees `reach` bytes on both
        // sides, enough for any match and the keyword that opened its window.
        let reach = self.rules.rules.iter().map(|rule| rule.window).max().unwrap_or(0) + REACH_BEFORE_KEYWORD + 64;
        let starts: Vec<usize> = (0..blob.len()).step_by(PARALLEL_CHUNK).collect();
        let mut matches: Vec<Match> = starts
            .par_iter()
            .flat_map_iter(|&own_start| {
                let own_end = (own_start + PARALLEL_CHUNK).min(blob.len());
                let view_start = own_start.saturating_sub(reach);
                let view_end = (own_end + reach).min(blob.len());
                self.find_in(&blob[view_start..view_end])
                    .into_iter()
                    .map(move |found| Match {
                        start: found.start + view_start,
                        end: found.end + view_start,
                        ..found
                    })
                    .filter(move |found| found.start >= own_start && found.start < own_end)
            })
            .collect();
        matches.sort_by_key(|found| (found.start, found.end, found.rule));
        matches.dedup();
        matches
    }

    fn find_in(&self, blob: &[u8]) -> Vec<Match> {
        // Merged windows per rule: (rule, start, end).
        let mut windows: Vec<(usize, usize, usize)> = Vec::new();
        let mut last_window_of_rule: Vec<Option<usize>> = vec![None; self.rules.rules.len()];
        let hits = self.keyword_hits(blob);
        for hit in &hits {
            for &rule_index in &self.rules_by_keyword[hit.keyword] {
                let rule = &self.rules.rules[rule_index];
                let start = hit.start.saturating_sub(REACH_BEFORE_KEYWORD);
                let end = (hit.end + rule.window).min(blob.len());
                match last_window_of_rule[rule_index] {
                    Some(position) if windows[position].2 >= start => {
                        windows[position].2 = windows[position].2.max(end);
                    }
                    _ => {
                        last_window_of_rule[rule_index] = Some(windows.len());
                        windows.push((rule_index, start, end));
                    }
                }
            }
        }
        let mut matches = Vec::new();
        for (rule_index, start, end) in windows {
            let rule = &self.rules.rules[rule_index];
            let window = &blob[start..end];
            for captures in rule.regex.captures_iter(window) {
                let Some(secret) = captures.get(rule.secret_group) else {
                    continue;
                };
                let candidate = Match {
                    rule: rule_index,
                    start: start + secret.start(),
                    end: start + secret.end(),
                };
                if self.accepts(blob, &candidate) {
                    matches.push(candidate);
                }
            }
        }
        matches.sort_unstable();
        matches.dedup();
        matches.sort_by_key(|found| (found.start, found.end, found.rule));
        matches
    }

    /// Every occurrence of every keyword in `blob` (overlapping ones included), ordered by
    /// end, as an overlapping Aho-Corasick search reports them.
    ///
    /// One DFA walk is bound by the latency of its transition-table loads: each step waits
    /// for the previous state. So the blob is cut into [`LANES`] segments walked in
    /// lock-step, whose loads overlap in the CPU; each walk starts the longest keyword's
    /// length before its segment (to see keywords crossing into it) and reports only the
    /// keywords ending inside it.
    fn keyword_hits(&self, blob: &[u8]) -> Vec<KeywordHit> {
        let dfa = &self.keywords;
        let start = dfa
            .start_state(Anchored::No)
            .expect("the keyword DFA is built for unanchored searches");
        let overlap = dfa.max_pattern_len().saturating_sub(1);
        let mut lanes: [Vec<KeywordHit>; LANES] = Default::default();
        let segment = blob.len() / LANES;
        if segment <= overlap {
            self.walk(start, blob, 0, 0, &mut lanes[0]);
            return std::mem::take(&mut lanes[0]);
        }
        // Lane k owns [k * segment, (k + 1) * segment) (the last lane up to the end) and
        // walks from `overlap` bytes before it; all lanes walk `segment` bytes together.
        let begins: [usize; LANES] = std::array::from_fn(|lane| (lane * segment).saturating_sub(overlap));
        let owned: [usize; LANES] = std::array::from_fn(|lane| lane * segment);
        let together: [&[u8]; LANES] = std::array::from_fn(|lane| &blob[begins[lane]..begins[lane] + segment]);
        // The states live in locals, not an array: kept in registers, the chain of
        // dependent loads has no store and reload in it.
        let (mut state0, mut state1, mut state2, mut state3) = (start, start, start, start);
        for (step, (((&byte0, &byte1), &byte2), &byte3)) in together[0]
            .iter()
            .zip(together[1])
            .zip(together[2])
            .zip(together[3])
            .enumerate()
        {
            state0 = dfa.next_state(Anchored::No, state0, byte0);
            state1 = dfa.next_state(Anchored::No, state1, byte1);
            state2 = dfa.next_state(Anchored::No, state2, byte2);
            state3 = dfa.next_state(Anchored::No, state3, byte3);
            if dfa.is_special(state0) | dfa.is_special(state1) | dfa.is_special(state2) | dfa.is_special(state3) {
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
        states: [StateID; LANES],
        step: usize,
        begins: &[usize; LANES],
        owned: &[usize; LANES],
        lanes: &mut [Vec<KeywordHit>; LANES],
    ) {
        for lane in 0..LANES {
            let end = begins[lane] + step + 1;
            if self.keywords.is_match(states[lane]) && end > owned[lane] {
                self.record(states[lane], end, &mut lanes[lane]);
            }
        }
    }

    /// Walks `bytes` (at `offset` in the blob) from `state`, recording keywords that end
    /// after `owned_from`; returns the final state.
    fn walk(
        &self,
        mut state: StateID,
        bytes: &[u8],
        offset: usize,
        owned_from: usize,
        hits: &mut Vec<KeywordHit>,
    ) -> StateID {
        for (index, &byte) in bytes.iter().enumerate() {
            state = self.keywords.next_state(Anchored::No, state, byte);
            if self.keywords.is_match(state) && offset + index + 1 > owned_from {
                self.record(state, offset + index + 1, hits);
            }
        }
        state
    }

    /// Records the keywords that the match state `state` reached at `end` stands for.
    fn record(&self, state: StateID, end: usize, hits: &mut Vec<KeywordHit>) {
        for index in 0..self.keywords.match_len(state) {
            let keyword = self.keywords.match_pattern(state, index);
            hits.push(KeywordHit {
                keyword: keyword.as_usize(),
                start: end - self.keywords.pattern_len(keyword),
                end,
            });
        }
    }

    fn accepts(&self, blob: &[u8], found: &Match) -> bool {
        let rule = &self.rules.rules[found.rule];
        let secret = &blob[found.start..found.end];
        if secret.is_empty() || is_placeholder(secret) {
            return false;
        }
        if let Some(minimum) = rule.entropy {
            if shannon_entropy(secret) < minimum {
                return false;
            }
        }
        if rule.provider == "generic" && looks_like_identifier(secret) {
            return false;
        }
        if let Some(validator) = rule.validator {
            if !validator.accepts(secret) {
                return false;
            }
        }
        !line_of(blob, found.start)
            .windows(ALLOW_MARKER.len())
            .any(|window| window == ALLOW_MARKER)
    }
}

/// The line containing `offset`, without its newline.
pub fn line_of(blob: &[u8], offset: usize) -> &[u8] {
    let start = memchr::memrchr(b'\n', &blob[..offset]).map_or(0, |position| position + 1);
    let end = memchr::memchr(b'\n', &blob[offset..]).map_or(blob.len(), |position| offset + position);
    &blob[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The keyword occurrences an overlapping Aho-Corasick search reports, for comparison.
    fn reference_hits(matcher: &Matcher, keywords: &[String], blob: &[u8]) -> Vec<KeywordHit> {
        let automaton = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(keywords)
            .expect("keywords compile");
        assert_eq!(automaton.patterns_len(), matcher.keywords.patterns_len());
        automaton
            .find_overlapping_iter(blob)
            .map(|hit| KeywordHit {
                keyword: hit.pattern().as_usize(),
                start: hit.start(),
                end: hit.end(),
            })
            .collect()
    }

    /// The keywords in automaton order, as `Matcher::new` numbers them.
    fn keywords_of(rules: &RuleSet) -> Vec<String> {
        let mut keywords: Vec<String> = Vec::new();
        for keyword in rules.rules.iter().flat_map(|rule| &rule.keywords) {
            if !keywords.contains(keyword) {
                keywords.push(keyword.clone());
            }
        }
        keywords
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The interleaved lanes report exactly what one overlapping walk reports, in the
        /// same order, wherever keywords fall relative to the lane boundaries.
        #[test]
        fn lanes_report_every_keyword_once_in_order(
            pieces in proptest::collection::vec((0usize..400, any::<bool>(), "[a-zA-Z0-9_ .:=-]{0,40}"), 0..120),
        ) {
            static MATCHER: std::sync::OnceLock<(Matcher, Vec<String>)> = std::sync::OnceLock::new();
            let (matcher, keywords) = MATCHER.get_or_init(|| {
                let rules = RuleSet::builtin().expect("built-in rules");
                let keywords = keywords_of(&rules);
                (Matcher::new(rules).expect("matcher"), keywords)
            });
            let mut blob = Vec::new();
            for (choice, upper, filler) in &pieces {
                blob.extend_from_slice(filler.as_bytes());
                let keyword = &keywords[choice % keywords.len()];
                if *upper {
                    blob.extend_from_slice(keyword.to_ascii_uppercase().as_bytes());
                } else {
                    blob.extend_from_slice(keyword.as_bytes());
                }
            }
            prop_assert_eq!(matcher.keyword_hits(&blob), reference_hits(matcher, keywords, &blob));
        }
    }
}
