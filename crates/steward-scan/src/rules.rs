//! Rules: what a secret of one provider looks like, in steward's own TOML format.
//!
//! ```toml
//! [[rules]]
//! id = "github-classic-pat"              # unique, lowercase, dashes
//! name = "GitHub personal access token (classic)"
//! provider = "github"
//! credential = "token"                   # steward credential kind (optional)
//! keywords = ["ghp_"]                    # literals, matched case-insensitively; one must occur
//! pattern = '''\b(?P<secret>ghp_[A-Za-z0-9]{36})\b'''   # the secret is group `secret` (or the match)
//! entropy = 3.5                          # optional minimum Shannon entropy of the secret, bits/byte
//! validator = "github-checksum"          # optional: a named checksum check
//! window = 512                           # optional: bytes after a keyword the match may reach (default 256)
//! examples = ["token: ghp_…"]            # each must produce a finding by this rule
//! counter_examples = ["ghp_xxxxxxxx…"]   # none may produce one
//! ```
//!
//! Rules from files have their examples checked when loaded; the built-in rules, by a
//! test (checking them at start-up would compile every pattern).
//!
//! The built-in rules are embedded from `rules/*.toml`; `--rules DIR` adds a directory of
//! the same files.

use crate::checks::Validator;
use rayon::prelude::*;
use serde::Deserialize;
use std::path::Path;
use std::sync::OnceLock;

/// Errors in rule files. Messages name the file and the rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file is not valid TOML or does not follow the format.
    #[error("{file}: {message}")]
    Parse {
        /// Rule file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A rule is inconsistent.
    #[error("{file}: rule {id}: {message}")]
    Invalid {
        /// Rule file.
        file: String,
        /// Rule id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A rules directory could not be read.
    #[error("cannot read rules from {path}: {message}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    name: String,
    provider: String,
    #[serde(default)]
    credential: Option<String>,
    keywords: Vec<String>,
    pattern: String,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    validator: Option<String>,
    #[serde(default)]
    window: Option<usize>,
    examples: Vec<String>,
    #[serde(default)]
    counter_examples: Vec<String>,
}

/// Default reach of a rule's match after its keyword, in bytes.
pub const DEFAULT_WINDOW: usize = 256;

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Provider (aws, github, slack…).
    pub provider: String,
    /// Steward credential kind, when known.
    pub credential: Option<steward_core::CredentialKind>,
    /// Lowercase keywords.
    pub keywords: Vec<String>,
    /// The pattern, as written (read-only: see [`Rule::pattern`]).
    pattern: String,
    /// The pattern compiled, on first use (see [`Rule::regex`]).
    compiled: OnceLock<Compiled>,
    /// Minimum entropy of the secret.
    pub entropy: Option<f64>,
    /// Checksum validator.
    pub validator: Option<Validator>,
    /// Bytes after a keyword that a match may reach.
    pub window: usize,
    /// Texts that must produce a finding.
    pub examples: Vec<String>,
    /// Texts that must not.
    pub counter_examples: Vec<String>,
    /// File the rule came from.
    pub file: String,
}

/// A rule's compiled pattern.
#[derive(Debug, Clone)]
struct Compiled {
    regex: regex::bytes::Regex,
    /// Index of the capture group holding the secret (0: the whole match).
    secret_group: usize,
}

/// Compiles a rule's pattern. Built-in rules compile with ASCII classes (`ascii`: `\b`,
/// `\w`, `\s`, `\d`, `(?i)`; `.` is any byte but a newline): tokens and their context are
/// ASCII, and Unicode classes made each automaton larger and slower to build (in the middle
/// of a scan, as built-in rules compile on first use), and made the lazy DFA give up at the
/// first non-ASCII byte of a window (Unicode `\b`). The matcher turns Unicode whitespace in
/// a window into ASCII spaces first, so `\s` still ends a value at a no-break space. Rules
/// loaded with `--rules` keep the regex crate's Unicode classes, as their authors wrote them.
/// The history scan of the benchmark: 1.586 G → 1.388 G instructions, 128 → 99 MB peak.
fn compile_pattern(pattern: &str, ascii: bool) -> Result<Compiled, regex::Error> {
    let regex = regex::bytes::RegexBuilder::new(pattern)
        .unicode(!ascii)
        .size_limit(1 << 22)
        .build()?;
    let secret_group = regex
        .capture_names()
        .position(|name| name == Some("secret"))
        .unwrap_or(if regex.captures_len() > 1 { 1 } else { 0 });
    Ok(Compiled { regex, secret_group })
}

impl Rule {
    /// The compiled pattern. Built-in rules compile on first use, so a scan pays only for
    /// the rules whose keywords it meets (compiling all of them was most of the start-up);
    /// the test of every rule's examples compiles each one. Rules loaded from files compile
    /// when loaded, so their errors are reported then.
    pub fn regex(&self) -> &regex::bytes::Regex {
        &self.compiled().regex
    }

    /// The pattern, as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Index of the capture group holding the secret (0: the whole match).
    pub fn secret_group(&self) -> usize {
        self.compiled().secret_group
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            compile_pattern(&self.pattern, true)
                .unwrap_or_else(|error| panic!("built-in rule {} does not compile: {error}", self.id))
        })
    }
}

/// All rules in force.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The rules, in load order.
    pub rules: Vec<Rule>,
}

const BUILTIN_FILES: &[(&str, &str)] = &[
    ("cloud.toml", include_str!("../rules/cloud.toml")),
    ("code-hosting.toml", include_str!("../rules/code-hosting.toml")),
    ("chat.toml", include_str!("../rules/chat.toml")),
    (
        "payments-messaging.toml",
        include_str!("../rules/payments-messaging.toml"),
    ),
    ("ai.toml", include_str!("../rules/ai.toml")),
    ("registries.toml", include_str!("../rules/registries.toml")),
    ("infrastructure.toml", include_str!("../rules/infrastructure.toml")),
    ("observability.toml", include_str!("../rules/observability.toml")),
    ("databases.toml", include_str!("../rules/databases.toml")),
    ("keys.toml", include_str!("../rules/keys.toml")),
    ("saas.toml", include_str!("../rules/saas.toml")),
    ("generic.toml", include_str!("../rules/generic.toml")),
];

/// Checks `spec` and makes it a rule; `eager` compiles its pattern now (rules from files),
/// otherwise on first use (built-in rules, which tests compile).
fn compile(file: &str, spec: RuleSpec, eager: bool) -> Result<Rule, RuleError> {
    let invalid = |message: String| RuleError::Invalid {
        file: file.to_string(),
        id: spec.id.clone(),
        message,
    };
    let id_ok = !spec.id.is_empty()
        && spec
            .id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !id_ok {
        return Err(invalid("id must be lowercase letters, digits and dashes".into()));
    }
    if spec.keywords.is_empty() || spec.keywords.iter().any(|keyword| keyword.len() < 2) {
        return Err(invalid(
            "needs at least one keyword, each of 2 or more characters".into(),
        ));
    }
    if spec.examples.is_empty() {
        return Err(invalid("needs at least one example".into()));
    }
    let validator = spec
        .validator
        .as_deref()
        .map(|name| Validator::from_name(name).ok_or_else(|| invalid(format!("unknown validator '{name}'"))))
        .transpose()?;
    let credential = spec
        .credential
        .as_deref()
        .map(|kind| {
            kind.parse()
                .map_err(|error: steward_core::DomainError| invalid(error.to_string()))
        })
        .transpose()?;
    let compiled = if eager {
        OnceLock::from(compile_pattern(&spec.pattern, false).map_err(|error| invalid(format!("pattern: {error}")))?)
    } else {
        OnceLock::new()
    };
    Ok(Rule {
        keywords: spec
            .keywords
            .iter()
            .map(|keyword| keyword.to_ascii_lowercase())
            .collect(),
        id: spec.id,
        name: spec.name,
        provider: spec.provider,
        credential,
        pattern: spec.pattern,
        compiled,
        entropy: spec.entropy,
        validator,
        window: spec.window.unwrap_or(DEFAULT_WINDOW),
        examples: spec.examples,
        counter_examples: spec.counter_examples,
        file: file.to_string(),
    })
}

/// The rule specifications of one file, in order.
fn parse_file(file: &str, text: &str) -> Result<Vec<RuleSpec>, RuleError> {
    let parsed: RuleFile = toml::from_str(text).map_err(|error| RuleError::Parse {
        file: file.to_string(),
        message: error.to_string(),
    })?;
    Ok(parsed.rules)
}

/// Checks that each of `rules` finds every one of its examples and none of its
/// counter-examples, as a scan would (keywords, pattern, entropy, checksum, placeholders),
/// each rule judged by its own matches. The built-in rules are held to the same by a test;
/// rules from files are checked when loaded, as the format promises. Returns the index of
/// the first faulty rule with its error.
fn check_examples(rules: &[Rule]) -> Result<(), (usize, RuleError)> {
    if rules.is_empty() {
        return Ok(());
    }
    let matcher = crate::Matcher::new(RuleSet { rules: rules.to_vec() }).map_err(|error| (0, error))?;
    let found_by = |index: usize, text: &str| matcher.find(text.as_bytes()).iter().any(|found| found.rule == index);
    for (index, rule) in rules.iter().enumerate() {
        let invalid = |message: String| {
            (
                index,
                RuleError::Invalid {
                    file: rule.file.clone(),
                    id: rule.id.clone(),
                    message,
                },
            )
        };
        if let Some(example) = rule.examples.iter().find(|example| !found_by(index, example)) {
            return Err(invalid(format!(
                "example {} is not found by the rule",
                shown_example(example)
            )));
        }
        if let Some(counter) = rule.counter_examples.iter().find(|counter| found_by(index, counter)) {
            return Err(invalid(format!(
                "counter-example {} is found by the rule",
                shown_example(counter)
            )));
        }
    }
    Ok(())
}

/// An example for an error message: quoted and escaped, so it stays on one line, and cut
/// after 80 characters (a private key example is long).
fn shown_example(example: &str) -> String {
    const SHOWN: usize = 80;
    match example.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}…", &example[..cut]),
        None => format!("{example:?}"),
    }
}

impl RuleSet {
    /// Parses one rule file's text and adds its rules, each of which must find every one
    /// of its examples and none of its counter-examples. On an error, the rules before the
    /// faulty one stay added.
    pub fn add_file(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        let specs = parse_file(file, text)?;
        let before = self.rules.len();
        self.add_specs(specs.into_iter().map(|spec| (file, spec)).collect(), true)?;
        check_examples(&self.rules[before..]).map_err(|(index, error)| {
            self.rules.truncate(before + index);
            error
        })
    }

    /// Checks and adds `specs`, stopping at the first error in their order (rules before it
    /// stay added). With `eager`, their patterns compile now, in parallel (compiling is the
    /// slow part); a duplicate id is found first, in order, and only the rules before it
    /// are compiled.
    fn add_specs(&mut self, mut specs: Vec<(&str, RuleSpec)>, eager: bool) -> Result<(), RuleError> {
        let mut ids: std::collections::HashSet<String> = self.rules.iter().map(|rule| rule.id.clone()).collect();
        let first_duplicate = specs.iter().position(|(_, spec)| !ids.insert(spec.id.clone()));
        let duplicate = first_duplicate.map(|index| specs.swap_remove(index));
        if let Some(index) = first_duplicate {
            specs.truncate(index);
        }
        let compiled: Vec<Result<Rule, RuleError>> = specs
            .into_par_iter()
            .map(|(file, spec)| compile(file, spec, eager))
            .collect();
        for rule in compiled {
            self.rules.push(rule?);
        }
        match duplicate {
            Some((file, spec)) => Err(RuleError::Invalid {
                file: file.to_string(),
                id: spec.id,
                message: "duplicate rule id".into(),
            }),
            None => Ok(()),
        }
    }

    /// The rules embedded in the binary.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        let mut specs = Vec::new();
        for (file, text) in BUILTIN_FILES {
            specs.extend(parse_file(file, text)?.into_iter().map(|spec| (*file, spec)));
        }
        let mut set = RuleSet::default();
        set.add_specs(specs, false)?;
        Ok(set)
    }

    /// Adds every `*.toml` file of `dir`, in name order.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), RuleError> {
        let io = |error: std::io::Error| RuleError::Io {
            path: dir.display().to_string(),
            message: error.to_string(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            self.add_file(&path.display().to_string(), &text)?;
        }
        Ok(())
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, pattern: &str) -> String {
        format!(
            "[[rules]]\nid = \"{id}\"\nname = \"n\"\nprovider = \"p\"\nkeywords = [\"kw\"]\npattern = '''{pattern}'''\nexamples = [\"kw42\"]\n"
        )
    }

    #[test]
    fn the_first_error_in_file_order_is_reported_and_the_rules_before_it_are_kept() {
        let bad_then_duplicate = [rule("a", "kw"), rule("b", "(unclosed"), rule("a", "kw")].concat();
        let mut set = RuleSet::default();
        let error = set.add_file("x.toml", &bad_then_duplicate).expect_err("invalid");
        assert!(error.to_string().starts_with("x.toml: rule b: pattern:"), "{error}");
        assert_eq!(set.len(), 1);

        let duplicate_then_bad = [rule("c", "kw"), rule("a", "kw"), rule("d", "(unclosed")].concat();
        let error = set.add_file("y.toml", &duplicate_then_bad).expect_err("invalid");
        assert_eq!(error.to_string(), "y.toml: rule a: duplicate rule id");
        assert_eq!(
            set.rules.iter().map(|rule| rule.id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
    }

    /// A rule file's examples are checked when it is loaded, as the format promises: an
    /// example the rule does not find, or a counter-example it does find, is an error
    /// naming the file, the rule and the example; the rules before it stay added.
    #[test]
    fn examples_of_rules_from_files_are_checked_when_loaded() {
        let acme = |examples: &str, counter_examples: &str| {
            format!(
                "[[rules]]\nid = \"acme-token\"\nname = \"n\"\nprovider = \"acme\"\nkeywords = [\"acme_\"]\n\
                 pattern = '''\\b(?P<secret>acme_[a-z0-9]{{24}})\\b'''\nexamples = [{examples}]\n\
                 counter_examples = [{counter_examples}]\n"
            )
        };
        let valid = acme(
            r#""acme_q8w7e6r5t4y3u2i1o9p8a7s6""#,
            r#""acme_xxxxxxxxxxxxxxxxxxxxxxxx""#,
        );
        let mut set = RuleSet::default();
        set.add_file("good.toml", &valid).expect("examples hold");

        let too_short = [rule("first", "kw"), acme(r#""acme_short""#, "")].concat();
        let mut set = RuleSet::default();
        let error = set.add_file("bad.toml", &too_short).expect_err("example not found");
        assert_eq!(
            error.to_string(),
            r#"bad.toml: rule acme-token: example "acme_short" is not found by the rule"#
        );
        assert_eq!(
            set.rules.iter().map(|rule| rule.id.as_str()).collect::<Vec<_>>(),
            ["first"]
        );

        let found_counter = acme(
            r#""acme_q8w7e6r5t4y3u2i1o9p8a7s6""#,
            r#""k = acme_z1x2c3v4b5n6m7l8k9j0h1g2""#,
        );
        let error = RuleSet::default()
            .add_file("ctr.toml", &found_counter)
            .expect_err("counter-example found");
        assert_eq!(
            error.to_string(),
            r#"ctr.toml: rule acme-token: counter-example "k = acme_z1x2c3v4b5n6m7l8k9j0h1g2" is found by the rule"#
        );

        // An example on several lines (a private key) stays one line, and a long one is cut.
        let long = format!(r#""-----BEGIN\n{}""#, "x".repeat(100));
        let error = RuleSet::default()
            .add_file("long.toml", &acme(&long, ""))
            .expect_err("example not found");
        let message = error.to_string();
        assert!(
            !message.contains('\n') && message.contains('…') && message.len() < 200,
            "{message}"
        );
    }

    #[test]
    fn built_in_rules_compile_on_first_use_and_rules_from_files_when_loaded() {
        let builtin = RuleSet::builtin().expect("built-in rules");
        assert!(builtin.rules.iter().all(|rule| rule.compiled.get().is_none()));
        for rule in &builtin.rules {
            // Every built-in pattern compiles (a failure would panic mid-scan).
            assert!(compile_pattern(&rule.pattern, true).is_ok(), "{}", rule.id);
            assert!(rule.secret_group() < rule.regex().captures_len(), "{}", rule.id);
        }
        let mut loaded = RuleSet::default();
        loaded
            .add_file("x.toml", &rule("a", "kw(?P<secret>[0-9]+)"))
            .expect("valid");
        assert!(loaded.rules[0].compiled.get().is_some());
        assert_eq!(loaded.rules[0].secret_group(), 1);
    }

    /// Built-in patterns match bytes with ASCII classes: `é` is not a word character, so
    /// `\b` sees a boundary after it and `\w{4}` does not take `café`, `.` takes any byte
    /// but a newline, and `(?u)` brings Unicode back. Rules from files keep Unicode classes.
    #[test]
    fn built_in_patterns_use_ascii_classes_and_rules_from_files_unicode() {
        let ascii = |pattern: &str| compile_pattern(pattern, true).expect("compiles").regex;
        let unicode = |pattern: &str| compile_pattern(pattern, false).expect("compiles").regex;
        let text = "caf\u{e9}acme_0123456789".as_bytes();
        assert!(ascii(r"\bacme_[0-9]+\b").is_match(text));
        assert!(!unicode(r"\bacme_[0-9]+\b").is_match(text));
        assert!(!ascii(r"(?u)\bacme_[0-9]+\b").is_match(text));
        assert!(ascii(r"f..acme").is_match(text));
        assert!(!unicode(r"f..acme").is_match(text));
        assert!(!ascii(r"\w{4}acme").is_match(text));
        assert!(ascii(r"(?u:\w{4})acme").is_match(text));
        assert!(unicode(r"\w{4}acme").is_match(text));
        assert!(ascii(r"\xFF").is_match(&[0xff]));
        assert!(unicode(r"(?i)passwört").is_match("PASSWÖRT".as_bytes()));
    }
}
