//! Rendering of listings and records as table, JSON, JSON lines or CSV on stdout.

use crate::cli::OutputFormat;
use serde::Serialize;
use std::io::{BufWriter, Write};

/// Longest cell shown in table output; longer text is cut with an ellipsis.
const TABLE_CELL_LIMIT: usize = 60;

/// Text for an optional value in tables and CSV.
pub fn cell<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Text for an optional instant (RFC 3339, seconds).
pub fn instant_cell(value: Option<jiff::Timestamp>) -> String {
    value.map(steward_core::time::format_instant).unwrap_or_default()
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= TABLE_CELL_LIMIT {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(TABLE_CELL_LIMIT - 1).collect();
        cut.push('…');
        cut
    }
}

/// Writes to stdout, treating a closed pipe (`| head`) as success.
pub fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    match write(&mut out).and_then(|_| out.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn write_table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|value| truncate(value)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let mut line = String::new();
    let mut emit = |out: &mut dyn Write, values: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        line.clear();
        for (index, value) in values.enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(value);
            if index + 1 < widths.len() {
                line.extend(std::iter::repeat_n(' ', widths[index] - value.chars().count()));
            }
        }
        writeln!(out, "{}", line.trim_end())
    };
    let upper: Vec<String> = headers.iter().map(|header| header.to_uppercase()).collect();
    emit(out, &mut upper.iter().map(String::as_str))?;
    for row in &rows {
        emit(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Prints `items` in `format`: JSON forms serialise the items; table and CSV use
/// `headers` and `row`.
pub fn print_listing<T: Serialize>(
    format: OutputFormat,
    items: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = items.iter().map(&row).collect();
            write_stdout(|out| write_table(out, headers, &rows))
        }
        OutputFormat::Json => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, items)?;
            writeln!(out)
        }),
        OutputFormat::Jsonl => write_stdout(|out| {
            for item in items {
                serde_json::to_writer(&mut *out, item)?;
                writeln!(out)?;
            }
            Ok(())
        }),
        OutputFormat::Csv => write_stdout(|out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(headers)?;
            for item in items {
                writer.write_record(row(item))?;
            }
            writer.flush()
        }),
        OutputFormat::Yaml | OutputFormat::Sarif => Err(crate::usage(
            "-o yaml is only for `steward export` and -o sarif only for `steward scan`; use table, json, jsonl or csv",
        )),
    }
}

/// Prints one record: JSON forms serialise it; table and CSV print `fields` as
/// name/value pairs.
pub fn print_record<T: Serialize>(format: OutputFormat, item: &T, fields: &[(&str, String)]) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => write_stdout(|out| {
            let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            for (name, value) in fields {
                writeln!(out, "{name:width$}  {value}")?;
            }
            Ok(())
        }),
        OutputFormat::Json => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, item)?;
            writeln!(out)
        }),
        OutputFormat::Jsonl => write_stdout(|out| {
            serde_json::to_writer(&mut *out, item)?;
            writeln!(out)
        }),
        OutputFormat::Csv => write_stdout(|out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(fields.iter().map(|(name, _)| *name))?;
            writer.write_record(fields.iter().map(|(_, value)| value.as_str()))?;
            writer.flush()
        }),
        OutputFormat::Yaml | OutputFormat::Sarif => Err(crate::usage(
            "-o yaml is only for `steward export` and -o sarif only for `steward scan`; use table, json, jsonl or csv",
        )),
    }
}
