//! Every rule must find each of its `examples` and none of its `counter_examples`, and
//! must be the rule that reports it (or share the secret with a more specific rule).

use steward_core::FingerprintKey;
use steward_scan::source::scan_blob;
use steward_scan::{Matcher, RuleSet};

fn matcher() -> Matcher {
    Matcher::new(RuleSet::builtin().expect("built-in rules load")).expect("matcher builds")
}

#[test]
fn every_rule_finds_its_examples_and_ignores_its_counter_examples() {
    let matcher = matcher();
    let key = FingerprintKey::from_bytes([3; 32]);
    let mut failures = Vec::new();
    for (index, rule) in matcher.rules().rules.iter().enumerate() {
        for example in &rule.examples {
            let found = scan_blob(&matcher, &key, "example", example.as_bytes(), false);
            if !found.iter().any(|occurrence| occurrence.rule == index) {
                let others: Vec<&str> = found
                    .iter()
                    .map(|occurrence| matcher.rules().rules[occurrence.rule].id.as_str())
                    .collect();
                failures.push(format!(
                    "{} ({}): example not found: {example:?} (found by: {others:?})",
                    rule.id, rule.file
                ));
            }
        }
        for counter in &rule.counter_examples {
            let found = scan_blob(&matcher, &key, "counter", counter.as_bytes(), false);
            if !found.is_empty() {
                let by: Vec<&str> = found
                    .iter()
                    .map(|occurrence| matcher.rules().rules[occurrence.rule].id.as_str())
                    .collect();
                failures.push(format!(
                    "{} ({}): counter-example flagged by {by:?}: {counter:?}",
                    rule.id, rule.file
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} rule example failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rules_are_many_and_documented() {
    let rules = RuleSet::builtin().unwrap();
    let minimum = 120;
    assert!(rules.len() >= minimum, "only {} rules", rules.len());
    for rule in &rules.rules {
        assert!(!rule.name.is_empty() && !rule.provider.is_empty(), "{}", rule.id);
    }
}
