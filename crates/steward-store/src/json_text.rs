//! The JSON text of an identity's scope and labels, as stored in SQLite's `scope` and
//! `labels` columns: the same bytes `serde_json::to_string` makes, written into a buffer
//! that holds a chunk of rows. A million-identity import spent 7% of its writing
//! thread in serde for these two small maps.

use std::collections::BTreeMap;
use std::fmt::Write;
use steward_core::Scope;

/// Appends `text` as a JSON string, escaped as serde_json escapes it: `"` and `\`, the
/// short forms `\b \f \n \r \t`, other control characters as `\u00xx`; everything else,
/// non-ASCII included, as it is.
pub fn push_string(out: &mut String, text: &str) {
    out.push('"');
    let mut clean_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[clean_from..at]);
        if short.is_empty() {
            write!(out, "\\u{byte:04x}").expect("writing to a String does not fail");
        } else {
            out.push_str(short);
        }
        clean_from = at + 1;
    }
    out.push_str(&text[clean_from..]);
    out.push('"');
}

/// Appends the JSON of `scope` to `out`: `{"key":["value",…],…}`.
pub fn push_scope(out: &mut String, scope: &Scope) {
    out.push('{');
    for (index, (key, values)) in scope.0.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_string(out, key);
        out.push_str(":[");
        for (position, value) in values.iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            push_string(out, value);
        }
        out.push(']');
    }
    out.push('}');
}

/// Appends the JSON of `labels` to `out`: `{"key":"value",…}`.
pub fn push_labels(out: &mut String, labels: &BTreeMap<String, String>) {
    out.push('{');
    for (index, (key, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_string(out, key);
        out.push(':');
        push_string(out, value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f])*") {
            let mut out = String::new();
            push_string(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn maps_are_written_as_serde_json_writes_them(
            scope in proptest::collection::btree_map("[a-z_\"\\\\\\n]{0,6}", proptest::collection::vec("\\PC{0,8}", 0..3), 0..4),
            labels in proptest::collection::btree_map("\\PC{0,6}", "[\\x00-\\x7f]{0,8}", 0..4),
        ) {
            let scope = Scope(scope);
            let mut out = String::from("before");
            push_scope(&mut out, &scope);
            let scope_end = out.len();
            prop_assert_eq!(&out[6..], &serde_json::to_string(&scope).unwrap());
            push_labels(&mut out, &labels);
            prop_assert_eq!(&out[scope_end..], &serde_json::to_string(&labels).unwrap());
        }
    }
}
