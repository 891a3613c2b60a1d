//! One pass over a blob with every rule: an Aho-Corasick automaton over all rules'
//! keywords (case-insensitive) finds candidate places; each rule whose keyword occurs runs
//! its regular expression only in a window around the hits (merged when they overlap).
//! Candidates then pass the rule's checks (entropy, placeholders, checksum) and inline
//! `steward:allow` comments.

use crate::checks::{is_placeholder, looks_like_identifier, shannon_entropy};
use crate::keywords::KeywordAutomaton;
use crate::rules::{RuleError, RuleSet};
use rayon::prelude::*;

/// How far before a keyword a match may start, in bytes (e.g. `"aws_secret": "…"` where the
/// keyword is the key, or a quoted prefix).
const REACH_BEFORE_KEYWORD: usize = 64;

/// Blobs of at least twice this size are searched in parallel chunks of this size.
const PARALLEL_CHUNK: usize = 1 << 20;

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

/// The compiled matcher.
pub struct Matcher {
    rules: RuleSet,
    /// Every keyword, case-insensitive, overlapping occurrences included.
    keywords: KeywordAutomaton,
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
        let keywords = KeywordAutomaton::new(&keywords).map_err(|error| RuleError::Parse {
            file: "keywords".into(),
            message: error.to_string(),
        })?;
        Ok(Matcher {
            rules,
            keywords,
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
        let mut matches = self.find_unfiltered(blob);
        drop_allowed(blob, &mut matches);
        matches
    }

    /// [`Matcher::find`] without applying `steward:allow` markers, for a caller that
    /// applies its own rule (an export's field is allowed as a whole).
    pub fn find_ignoring_allow_markers(&self, blob: &[u8]) -> Vec<Match> {
        self.find_unfiltered(blob)
    }

    /// [`Matcher::find`] before `steward:allow` markers are applied, which happens over
    /// the whole blob (a chunk's view could cut a marker's line).
    fn find_unfiltered(&self, blob: &[u8]) -> Vec<Match> {
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
        let hits = self.keywords.hits(blob);
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
        let mut spaced = Vec::new();
        for (rule_index, start, end) in windows {
            let rule = &self.rules.rules[rule_index];
            let mut window = &blob[start..end];
            // Built-in patterns' `\s` is ASCII: Unicode whitespace (a no-break space in chat
            // text, say) becomes as many ASCII spaces, so offsets stay those of the blob.
            if !window.is_ascii() {
                spaced.clear();
                spaced.extend_from_slice(window);
                space_out_unicode_whitespace(&mut spaced);
                window = &spaced;
            }
            for captures in rule.regex().captures_iter(window) {
                let Some(secret) = captures.get(rule.secret_group()) else {
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

    fn accepts(&self, blob: &[u8], found: &Match) -> bool {
        let rule = &self.rules.rules[found.rule];
        let secret = &blob[found.start..found.end];
        if secret.is_empty() || is_placeholder(secret) {
            return false;
        }
        if let Some(minimum) = rule.entropy
            && shannon_entropy(secret) < minimum
        {
            return false;
        }
        if rule.provider == "generic" && looks_like_identifier(secret) {
            return false;
        }
        rule.validator.is_none_or(|validator| validator.accepts(secret))
    }
}

/// Drops the matches (sorted by start) that [`ALLOW_MARKER`] allows: those on a line
/// holding it; a secret over several lines (a PEM key), also when any of its lines holds
/// it (the `END` line as well as the `BEGIN` line) or the line just above it does and has
/// no secret of its own (a comment on a line of its own, as one writes before a block);
/// in a JSON document (or JSON lines), those in the string value holding it,
/// so that in minified JSON, one line, a marker in one value does not hide the secrets
/// of every other (JSON has no comments: the marker is data, and a value's own is the
/// narrowest place that says which secret it is about). Lines are found from one match
/// to the next, never from a line's start again, so that a long line holding many
/// secrets (a minified bundle) costs its length once, not once per secret.
fn drop_allowed(blob: &[u8], matches: &mut Vec<Match>) {
    if matches.is_empty() {
        return;
    }
    let markers: Vec<usize> = memchr::memmem::find_iter(blob, ALLOW_MARKER).collect();
    if markers.is_empty() {
        return;
    }
    let marker_within = |start: usize, end: usize| {
        let first = markers.partition_point(|marker| *marker < start);
        markers
            .get(first)
            .is_some_and(|marker| marker + ALLOW_MARKER.len() <= end)
    };
    if crate::exports::is_json_document(blob) {
        let strings = json_string_spans(blob);
        matches.retain(|found| {
            let containing = strings.partition_point(|(start, _)| *start <= found.start);
            match containing.checked_sub(1).map(|index| strings[index]) {
                Some((start, end)) if found.start < end => !marker_within(start, end),
                _ => true,
            }
        });
        return;
    }
    // Where secrets are, before any is dropped: a marker line above a multi-line secret
    // allows it only when no secret is on that line.
    // `starts` is sorted; `reach[i]` is the furthest end of the first `i` secrets.
    let starts: Vec<usize> = matches.iter().map(|found| found.start).collect();
    let reach: Vec<usize> = std::iter::once(0)
        .chain(matches.iter().scan(0, |furthest, found| {
            *furthest = found.end.max(*furthest);
            Some(*furthest)
        }))
        .collect();
    let secret_within = |start: usize, end: usize| {
        let first = starts.partition_point(|secret_start| *secret_start < start);
        reach[first] > start || starts.get(first).is_some_and(|secret_start| *secret_start < end)
    };
    let line_break = |bytes: &[u8]| memchr::memchr2(b'\n', b'\r', bytes);
    // The line of the previous match: `[line_start, line_end)`, `line_end` its line break.
    let mut line: Option<(usize, usize)> = None;
    matches.retain(|found| {
        let offset = found.start;
        let (line_start, line_end) = match line {
            Some((start, end)) if offset >= start && offset <= end => (start, end),
            previous => {
                // Only the bytes since the previous line's end (a newline) are searched back.
                let searched_from = previous.map(|(_, end)| end).filter(|end| *end <= offset).unwrap_or(0);
                // Lines end at LF, CR or CRLF, as `source::Positions` counts them.
                let start = memchr::memrchr2(b'\n', b'\r', &blob[searched_from..offset])
                    .map_or(0, |position| searched_from + position + 1);
                let end =
                    memchr::memchr2(b'\n', b'\r', &blob[offset..]).map_or(blob.len(), |position| offset + position);
                line = Some((start, end));
                (start, end)
            }
        };
        if marker_within(line_start, line_end) {
            return false;
        }
        if line_break(&blob[found.start..found.end]).is_none() {
            return true;
        }
        // A multi-line secret: its last line, and the line just above its first.
        let last_line_end = line_break(&blob[found.end..]).map_or(blob.len(), |position| found.end + position);
        if marker_within(line_start, last_line_end) {
            return false;
        }
        let above_end = match blob[..line_start] {
            [.., b'\r', b'\n'] => line_start - 2,
            [.., _] => line_start - 1,
            [] => return true,
        };
        let above_start = memchr::memrchr2(b'\n', b'\r', &blob[..above_end]).map_or(0, |position| position + 1);
        // Kept unless the line above holds a marker and no secret of its own.
        !marker_within(above_start, above_end) || secret_within(above_start, above_end)
    });
}

/// The contents of the strings of JSON text (`[start, end)`, quotes excluded), in order;
/// one left open runs to the end.
fn json_string_spans(json: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut index = 0;
    while let Some(quote) = memchr::memchr(b'"', &json[index..]) {
        let start = index + quote + 1;
        let mut at = start;
        loop {
            match memchr::memchr2(b'"', b'\\', &json[at.min(json.len())..]) {
                Some(offset) if json[at + offset] == b'\\' => at += offset + 2,
                Some(offset) => {
                    spans.push((start, at + offset));
                    index = at + offset + 1;
                    break;
                }
                None => {
                    spans.push((start, json.len()));
                    return spans;
                }
            }
        }
    }
    spans
}

/// Replaces each Unicode whitespace character other than ASCII's (U+0085, U+00A0,
/// U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000) in UTF-8 `text` by as
/// many ASCII spaces as it has bytes.
fn space_out_unicode_whitespace(text: &mut [u8]) {
    let mut index = 0;
    while index < text.len() {
        let length = match text[index..] {
            [0xC2, 0x85 | 0xA0, ..] => 2,
            [0xE1, 0x9A, 0x80, ..] | [0xE3, 0x80, 0x80, ..] | [0xE2, 0x81, 0x9F, ..] => 3,
            [0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF, ..] => 3,
            _ => 0,
        };
        if length > 0 {
            text[index..index + length].fill(b' ');
            index += length;
        } else {
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_whitespace_becomes_as_many_spaces_and_nothing_else_changes() {
        let mut text = "a\u{a0}b\u{2028}c\u{3000}d\u{85}e\u{200a}f\u{202f}g\u{205f}h\u{1680}i é\u{2030}"
            .as_bytes()
            .to_vec();
        let before = text.len();
        space_out_unicode_whitespace(&mut text);
        assert_eq!(text.len(), before);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "a  b   c   d  e   f   g   h   i é\u{2030}"
        );
    }

    /// A no-break space ends a built-in rule's value as an ASCII space would, and one
    /// before the key does not hide it.
    #[test]
    fn a_no_break_space_ends_a_value() {
        let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
        for text in [
            "login password=Vb7Qz2Lm9Xw4Tc8Rk1\u{a0}thanks",
            "see\u{a0}password=Vb7Qz2Lm9Xw4Tc8Rk1 thanks",
        ] {
            let found = matcher.find(text.as_bytes());
            let secrets: Vec<&str> = found.iter().map(|m| &text[m.start..m.end]).collect();
            assert!(secrets.contains(&"Vb7Qz2Lm9Xw4Tc8Rk1"), "{text:?}: {secrets:?}");
            assert!(
                secrets.iter().all(|secret| !secret.contains('\u{a0}')),
                "{text:?}: {secrets:?}"
            );
        }
    }

    #[test]
    fn json_strings_are_found_with_their_escapes() {
        let json = br#"{"a":"x\"y","b":["c\\",1,"d"],"e":"open"#;
        let spans: Vec<&[u8]> = json_string_spans(json)
            .into_iter()
            .map(|(start, end)| &json[start..end])
            .collect();
        assert_eq!(spans, [&b"a"[..], br#"x\"y"#, b"b", br"c\\", b"d", b"e", b"open"]);
    }
}
