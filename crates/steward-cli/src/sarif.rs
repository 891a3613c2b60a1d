//! SARIF 2.1.0 output of `steward scan`, for code-scanning tools: one result per place a
//! secret was seen, each carrying the secret's keyed fingerprint as a partial fingerprint
//! (so tools deduplicate across runs) and never the secret itself.

use serde_json::{Value, json};
use steward_scan::{Finding, FindingLocation, RuleSet};

/// The SARIF schema this output follows.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A relative URI reference for a path: backslashes become slashes, and characters that
/// are not allowed in URIs are percent-encoded.
fn uri_of(path: &str) -> String {
    let mut uri = String::with_capacity(path.len() + 7);
    if path.starts_with('/') {
        uri.push_str("file://");
    }
    for byte in path.replace('\\', "/").bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// The artifact a copy is in: the file, or for a copy in a repository's history the
/// path in its tree under the repository's path as the scan met it (`org/app.git/src/app.py`,
/// relative when the scan was given a relative path), so that two repositories' copies
/// differ and a viewer finds the file in a checkout at that place.
fn artifact_uri(location: &FindingLocation) -> String {
    match &location.git {
        Some(origin) if origin.repository != "." && !origin.repository.is_empty() => uri_of(&format!(
            "{}/{}",
            origin.repository.trim_end_matches('/'),
            location.path
        )),
        _ => uri_of(&location.path),
    }
}

/// The region of a copy in its artifact: its line and column, except for a copy in an
/// export, whose own line and column count within a message or cell: there the place in
/// the file where the whole-document pass found it, and no region when it did not.
fn region_of(location: &FindingLocation) -> Option<(usize, usize)> {
    if location.field.is_none() {
        return Some((location.line, location.column));
    }
    location.file_line.zip(location.file_column)
}

/// The SARIF `name` of a rule: its id in PascalCase, which must differ from the id even
/// ignoring case (SARIF1001), so one-word ids get a `Secret` suffix.
fn rule_name(id: &str) -> String {
    let mut name: String = id
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    if name.eq_ignore_ascii_case(id) {
        name.push_str("Secret");
    }
    name
}

fn location_properties(location: &FindingLocation) -> Value {
    let mut properties = serde_json::Map::new();
    if let Some(origin) = &location.git {
        properties.insert("repository".into(), json!(origin.repository));
        properties.insert("path_in_repository".into(), json!(location.path));
        properties.insert("commit".into(), json!(origin.commit));
        properties.insert("author".into(), json!(origin.author));
        properties.insert("date".into(), json!(origin.date));
    }
    if location.field.is_some() {
        // An export's copy: `line` and `column` count within the message or cell field;
        // the region is the place in the file.
        properties.insert("field_line".into(), json!(location.line));
        properties.insert("field_column".into(), json!(location.column));
    }
    if let Some(cell) = location.cell {
        properties.insert("cell".into(), json!(cell));
    }
    for (name, value) in [
        ("channel", &location.channel),
        ("message_ts", &location.message_ts),
        ("issue_key", &location.issue_key),
        ("comment_id", &location.comment_id),
        ("field", &location.field),
    ] {
        if let Some(value) = value {
            properties.insert(name.into(), json!(value));
        }
    }
    Value::Object(properties)
}

/// The SARIF log for `findings` found with `rules`.
pub fn sarif_log(rules: &RuleSet, findings: &[Finding]) -> Value {
    let descriptors: Vec<Value> = rules
        .rules
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "name": rule_name(&rule.id),
                "shortDescription": {"text": rule.name},
                "fullDescription": {"text": format!("A {} secret was found. Rotate or revoke it at {}, then remove every copy.", rule.name, rule.provider)},
                "defaultConfiguration": {"level": "error"},
                "properties": {"provider": rule.provider, "tags": ["security", "secret"], "security-severity": "8.0"}
            })
        })
        .collect();
    let mut results = Vec::new();
    for finding in findings {
        let rule_index = rules.rules.iter().position(|rule| rule.id == finding.rule_id);
        for location in &finding.locations {
            let mut physical = json!({"artifactLocation": {"uri": artifact_uri(location)}});
            if let Some((line, column)) = region_of(location) {
                physical["region"] = json!({"startLine": line, "startColumn": column});
            }
            let mut result = json!({
                "ruleId": finding.rule_id,
                "level": "error",
                "message": {"text": format!("{} found: {}", finding.rule_name, finding.preview)},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {"stewardSecretFingerprint/v1": finding.fingerprint.as_str()},
                "properties": location_properties(location)
            });
            if let Some(index) = rule_index {
                result["ruleIndex"] = json!(index);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "steward",
                "version": env!("CARGO_PKG_VERSION"),
                // The workspace's `repository` (Cargo.toml), one place to set the project's
                // address; SARIF2005 warns when a tool has none.
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": descriptors
            }},
            "columnKind": "unicodeCodePoints",
            "results": results
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_relative_uris() {
        assert_eq!(uri_of("src/config.py"), "src/config.py");
        assert_eq!(uri_of("my dir\\a b.txt"), "my%20dir/a%20b.txt");
        assert_eq!(uri_of("dump.tar.gz!etc/x"), "dump.tar.gz!etc/x");
        assert_eq!(uri_of("/srv/app/.env"), "file:///srv/app/.env");
    }
}
