//! Structured documents scanned piece by piece: Jupyter notebooks (cells and outputs),
//! Slack workspace exports (channel day files, including edited
//! messages, attachments and file previews) and Jira REST search/export JSON (summary,
//! description, comments). Each text is scanned on its own so a finding names the channel
//! and message timestamp, or the issue key and comment id.
//!
//! Recognition is by content, so the same code serves exports on disk and inside zips.

use serde_json::Value;

/// Where inside an export a text was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportPlace {
    /// Slack channel.
    pub channel: Option<String>,
    /// Slack message timestamp (`ts`).
    pub message_ts: Option<String>,
    /// Jira issue key.
    pub issue_key: Option<String>,
    /// Jira comment id.
    pub comment_id: Option<String>,
    /// Jupyter notebook cell index, from 0.
    pub cell: Option<usize>,
    /// Which field of the message or issue (`text`, `files[0].preview`, `description`…).
    pub field: String,
}

/// One text of an export.
pub struct ExportText {
    /// Where it was.
    pub place: ExportPlace,
    /// The text.
    pub text: String,
}

/// Splits `blob` into texts when it is a Jupyter notebook (`.ipynb`: each cell's source and
/// text outputs), a Slack day file (`<channel>/<YYYY-MM-DD>.json`) or
/// a Jira search/export document; `None` for anything else.
pub fn split_export(path: &str, blob: &[u8]) -> Option<Vec<ExportText>> {
    let first = json_opening(blob)?;
    if path.ends_with(".ipynb") {
        let value: Value = serde_json::from_slice(blob).ok()?;
        return notebook_texts(&value);
    }
    if let Some(channel) = slack_channel(path) {
        let value: Value = serde_json::from_slice(blob).ok()?;
        return slack_texts(&channel, &value);
    }
    if first == b'{' && memchr::memmem::find(blob, b"\"issues\"").is_some() {
        let value: Value = serde_json::from_slice(blob).ok()?;
        return jira_texts(&value);
    }
    None
}

/// Whether `blob` could be an export at all (JSON: its first non-blank byte opens an array
/// or object). Anything else is scanned whole, whatever its path.
pub fn may_be_export(blob: &[u8]) -> bool {
    // UTF-16 text, or JSON after a UTF-8 byte order mark, is decoded before it is read.
    match blob {
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => true,
        [0xEF, 0xBB, 0xBF, rest @ ..] => json_opening(rest).is_some(),
        _ => json_opening(blob).is_some(),
    }
}

/// The first non-blank byte of `blob` when it opens a JSON array or object.
pub(crate) fn json_opening(blob: &[u8]) -> Option<u8> {
    blob.iter()
        .copied()
        .find(|byte| !byte.is_ascii_whitespace())
        .filter(|byte| matches!(byte, b'[' | b'{'))
}

/// Whether `blob` is JSON: one document or JSON lines (values one after another), each of
/// which parses.
pub(crate) fn is_json_document(blob: &[u8]) -> bool {
    json_opening(blob).is_some()
        && serde_json::Deserializer::from_slice(blob)
            .into_iter::<serde::de::IgnoredAny>()
            .all(|value| value.is_ok())
}

/// Whether a possible export (see [`may_be_export`]) is read differently at `path` than
/// at any other: notebooks and Slack day files are recognised by their path, Jira
/// documents by content alone.
pub fn export_depends_on_path(path: &str) -> bool {
    path.ends_with(".ipynb") || slack_channel(path).is_some()
}

/// The channel of a Slack day file path (`…/general/2024-05-01.json`).
fn slack_channel(path: &str) -> Option<String> {
    let stem = path.strip_suffix(".json")?;
    let (directory, day) = stem.rsplit_once('/')?;
    let is_day = day.len() == 10
        && day.bytes().enumerate().all(|(index, byte)| {
            if index == 4 || index == 7 {
                byte == b'-'
            } else {
                byte.is_ascii_digit()
            }
        });
    if !is_day {
        return None;
    }
    let channel = directory.rsplit(['/', '!']).next()?;
    (!channel.is_empty()).then(|| channel.to_string())
}

fn push_text(texts: &mut Vec<ExportText>, place: &ExportPlace, field: String, value: Option<&Value>) {
    if let Some(text) = value.and_then(Value::as_str).filter(|text| !text.is_empty()) {
        texts.push(ExportText {
            place: ExportPlace { field, ..place.clone() },
            text: text.to_string(),
        });
    }
}

fn slack_texts(channel: &str, value: &Value) -> Option<Vec<ExportText>> {
    let messages = value.as_array()?;
    let mut texts = Vec::new();
    for message in messages {
        let place = ExportPlace {
            channel: Some(channel.to_string()),
            message_ts: message.get("ts").and_then(Value::as_str).map(str::to_string),
            ..Default::default()
        };
        push_text(&mut texts, &place, "text".into(), message.get("text"));
        if let Some(previous) = message.get("edited").and_then(|edited| edited.get("text")) {
            push_text(&mut texts, &place, "edited.text".into(), Some(previous));
        }
        for (index, attachment) in message
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            push_text(
                &mut texts,
                &place,
                format!("attachments[{index}].text"),
                attachment.get("text"),
            );
            push_text(
                &mut texts,
                &place,
                format!("attachments[{index}].fallback"),
                attachment.get("fallback"),
            );
        }
        for (index, file) in message
            .get("files")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            push_text(
                &mut texts,
                &place,
                format!("files[{index}].preview"),
                file.get("preview"),
            );
            push_text(
                &mut texts,
                &place,
                format!("files[{index}].plain_text"),
                file.get("plain_text"),
            );
        }
    }
    Some(texts)
}

/// Jira text fields can be plain strings or Atlassian Document Format trees; collect the
/// text of either.
fn jira_field_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(_) => {
            let mut collected = String::new();
            collect_adf_text(value, &mut collected);
            (!collected.is_empty()).then_some(collected)
        }
        _ => None,
    }
}

fn collect_adf_text(value: &Value, out: &mut String) {
    if let Some(text) = value.get("text").and_then(Value::as_str) {
        out.push_str(text);
        out.push('\n');
    }
    if let Some(children) = value.get("content").and_then(Value::as_array) {
        for child in children {
            collect_adf_text(child, out);
        }
    }
}

fn jira_texts(value: &Value) -> Option<Vec<ExportText>> {
    let issues = value.get("issues")?.as_array()?;
    let mut texts = Vec::new();
    for issue in issues {
        // An issue without a key or fields has no place to name: the whole-file pass finds
        // its secrets at their line and column, and the other issues keep theirs.
        let (Some(key), Some(fields)) = (issue.get("key").and_then(Value::as_str), issue.get("fields")) else {
            continue;
        };
        let place = ExportPlace {
            issue_key: Some(key.to_string()),
            ..Default::default()
        };
        for field in ["summary", "description", "environment"] {
            if let Some(text) = fields.get(field).and_then(jira_field_text) {
                texts.push(ExportText {
                    place: ExportPlace {
                        field: field.into(),
                        ..place.clone()
                    },
                    text,
                });
            }
        }
        let comments = fields
            .get("comment")
            .and_then(|comment| comment.get("comments"))
            .and_then(Value::as_array);
        for comment in comments.into_iter().flatten() {
            let comment_place = ExportPlace {
                comment_id: comment.get("id").and_then(id_text),
                ..place.clone()
            };
            if let Some(text) = comment.get("body").and_then(jira_field_text) {
                texts.push(ExportText {
                    place: ExportPlace {
                        field: "comment".into(),
                        ..comment_place
                    },
                    text,
                });
            }
        }
    }
    Some(texts)
}

/// An id as text: Jira's REST API writes ids as strings (`"10001"`), other exporters as
/// numbers.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Notebook strings are a string or a list of lines.
fn joined_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(lines) => Some(lines.iter().filter_map(Value::as_str).collect::<String>()),
        _ => None,
    }
}

fn notebook_texts(value: &Value) -> Option<Vec<ExportText>> {
    let cells = value.get("cells")?.as_array()?;
    let mut texts = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        let place = ExportPlace {
            cell: Some(index),
            ..Default::default()
        };
        if let Some(text) = cell.get("source").and_then(joined_text) {
            texts.push(ExportText {
                place: ExportPlace {
                    field: "source".into(),
                    ..place.clone()
                },
                text,
            });
        }
        for (output_index, output) in cell
            .get("outputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(text) = output.get("text").and_then(joined_text) {
                let field = format!("outputs[{output_index}].text");
                texts.push(ExportText {
                    place: ExportPlace { field, ..place.clone() },
                    text,
                });
            }
            if let Some(plain) = output
                .get("data")
                .and_then(|data| data.get("text/plain"))
                .and_then(joined_text)
            {
                let field = format!("outputs[{output_index}].data");
                texts.push(ExportText {
                    place: ExportPlace { field, ..place.clone() },
                    text: plain,
                });
            }
        }
    }
    Some(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_day_files_are_recognised_by_path() {
        assert_eq!(
            slack_channel("export/general/2024-05-01.json").as_deref(),
            Some("general")
        );
        assert_eq!(
            slack_channel("export.zip!deploys/2024-05-01.json").as_deref(),
            Some("deploys")
        );
        assert_eq!(slack_channel("export/channels.json"), None);
    }

    #[test]
    fn jira_description_in_document_format_is_flattened() {
        let value: Value = serde_json::json!({"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "token abc"}]}]});
        assert_eq!(jira_field_text(&value).as_deref(), Some("token abc\n"));
    }
}
