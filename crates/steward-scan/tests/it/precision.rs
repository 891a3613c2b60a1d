//! Recall and false positives of the built-in rules on an evaluation set that is
//! independent of the rules' own examples (`tests/precision/dataset.rs`): realistic
//! snippets with one secret each, per provider family, and look-alikes that must not be
//! reported. Run with `--nocapture` to see the table.

#[path = "../precision/dataset.rs"]
mod dataset;

use dataset::Sample;
use std::collections::BTreeMap;
use steward_scan::{Matcher, RuleSet};

/// Seed of the generated set: fixed, so the figures are reproducible.
/// `STEWARD_PRECISION_SEED` draws another set from the same templates.
const SEED: u64 = 0x5EC2_E75C_A11E;

fn seed() -> u64 {
    std::env::var("STEWARD_PRECISION_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(SEED)
}

/// Draws of the set evaluated together.
const DRAWS: u64 = 3;

const MINIMUM_OVERALL_RECALL: f64 = 0.95;
const MINIMUM_FAMILY_RECALL: f64 = 0.80;
const MAXIMUM_FALSE_POSITIVE_RATE: f64 = 0.05;

/// Per-group tallies.
#[derive(Default)]
struct Tally {
    samples: usize,
    hits: usize,
    /// Positives found only by a generic (context) rule, not a provider's own.
    by_generic_only: usize,
    examples: Vec<String>,
}

fn one_line(text: &str) -> String {
    let flat: String = text.replace('\n', "⏎");
    if flat.chars().count() > 160 {
        flat.chars().take(160).collect::<String>() + "…"
    } else {
        flat
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        100.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Whether the matcher reports a secret covering `secret` in the sample, and which rules.
fn found_by(matcher: &Matcher, sample: &Sample, secret: &str) -> Vec<usize> {
    let start = sample.text.find(secret).expect("the secret is in its sample");
    let end = start + secret.len();
    matcher
        .find(sample.text.as_bytes())
        .into_iter()
        .filter(|found| found.start < end && found.end > start)
        .map(|found| found.rule)
        .collect()
}

#[test]
fn recall_and_false_positives_on_the_evaluation_set() {
    let matcher = Matcher::new(RuleSet::builtin().expect("built-in rules load")).expect("matcher builds");
    let rules = &matcher.rules().rules;

    // Several draws from the same templates, so the figures do not hinge on one draw.
    let seed = seed();
    let (mut positives, mut negatives) = (Vec::new(), Vec::new());
    for draw in 0..DRAWS {
        positives.extend(dataset::positives(seed.wrapping_add(draw)));
        negatives.extend(dataset::negatives((seed ^ 0xFFFF).wrapping_add(draw)));
    }
    assert!(positives.len() >= 300 && negatives.len() >= 300, "the set is too small");

    let mut families: BTreeMap<&str, Tally> = BTreeMap::new();
    for sample in &positives {
        let secret = sample.secret.as_deref().expect("positives carry their secret");
        let rules_found = found_by(&matcher, sample, secret);
        let tally = families.entry(sample.group).or_default();
        tally.samples += 1;
        if rules_found.is_empty() {
            tally
                .examples
                .push(format!("[{}] {}", sample.context, one_line(&sample.text)));
        } else {
            tally.hits += 1;
            if rules_found.iter().all(|rule| rules[*rule].provider == "generic") {
                tally.by_generic_only += 1;
            }
        }
    }

    let mut categories: BTreeMap<&str, Tally> = BTreeMap::new();
    for sample in &negatives {
        let found = matcher.find(sample.text.as_bytes());
        let tally = categories.entry(sample.group).or_default();
        tally.samples += 1;
        if !found.is_empty() {
            tally.hits += 1;
            let by: Vec<String> = found
                .iter()
                .map(|hit| {
                    format!(
                        "{} on {:?}",
                        rules[hit.rule].id,
                        String::from_utf8_lossy(&sample.text.as_bytes()[hit.start..hit.end])
                    )
                })
                .collect();
            tally.examples.push(format!(
                "[{}] {} ⇐ {}",
                sample.context,
                one_line(&sample.text),
                by.join(", ")
            ));
        }
    }

    let total_positives: usize = families.values().map(|tally| tally.samples).sum();
    let total_found: usize = families.values().map(|tally| tally.hits).sum();
    let total_negatives: usize = categories.values().map(|tally| tally.samples).sum();
    let total_flagged: usize = categories.values().map(|tally| tally.hits).sum();
    let overall_recall = total_found as f64 / total_positives as f64;
    let false_positive_rate = total_flagged as f64 / total_negatives as f64;

    println!("\nPositives (recall per provider family)");
    println!(
        "{:<16} {:>7} {:>6} {:>8} {:>13}",
        "family", "samples", "found", "recall", "generic only"
    );
    for (family, tally) in &families {
        println!(
            "{:<16} {:>7} {:>6} {:>7.1}% {:>13}",
            family,
            tally.samples,
            tally.hits,
            percent(tally.hits, tally.samples),
            tally.by_generic_only
        );
    }
    println!(
        "{:<16} {:>7} {:>6} {:>7.1}%",
        "overall",
        total_positives,
        total_found,
        100.0 * overall_recall
    );
    println!("\nNegatives (flagged per look-alike category)");
    println!("{:<34} {:>7} {:>8}", "category", "samples", "flagged");
    for (category, tally) in &categories {
        println!("{:<34} {:>7} {:>8}", category, tally.samples, tally.hits);
    }
    println!(
        "{:<34} {:>7} {:>8} ({:.1}%)",
        "overall",
        total_negatives,
        total_flagged,
        100.0 * false_positive_rate
    );
    for (family, tally) in &families {
        for example in &tally.examples {
            println!("missed {family}: {example}");
        }
    }
    for (category, tally) in &categories {
        for example in &tally.examples {
            println!("flagged {category}: {example}");
        }
    }

    let weak_families: Vec<String> = families
        .iter()
        .filter(|(_, tally)| (tally.hits as f64) < MINIMUM_FAMILY_RECALL * tally.samples as f64)
        .map(|(family, tally)| format!("{family} {:.1}%", percent(tally.hits, tally.samples)))
        .collect();
    assert!(
        overall_recall >= MINIMUM_OVERALL_RECALL,
        "overall recall {:.1}% is below {:.0}%",
        100.0 * overall_recall,
        100.0 * MINIMUM_OVERALL_RECALL
    );
    assert!(
        weak_families.is_empty(),
        "families below {:.0}% recall: {weak_families:?}",
        100.0 * MINIMUM_FAMILY_RECALL
    );
    assert!(
        false_positive_rate < MAXIMUM_FALSE_POSITIVE_RATE,
        "{:.1}% of negatives flagged, the limit is {:.0}%",
        100.0 * false_positive_rate,
        100.0 * MAXIMUM_FALSE_POSITIVE_RATE
    );
}

/// The generator itself: valid GitHub checksums verify with the scanner's check, and the
/// set is the same on every run.
#[test]
fn the_evaluation_set_is_deterministic_and_its_checksums_verify() {
    let mut rng = dataset::Rng::new(7);
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        let token = dataset::github_token(&mut rng, prefix);
        assert!(
            steward_scan::checks::github_checksum_is_valid(token.as_bytes()),
            "{token}"
        );
    }
    let first: Vec<String> = dataset::positives(SEED).into_iter().map(|sample| sample.text).collect();
    let second: Vec<String> = dataset::positives(SEED).into_iter().map(|sample| sample.text).collect();
    assert_eq!(first, second);
}
