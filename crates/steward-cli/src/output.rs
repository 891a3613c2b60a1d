//! Rendering of listings and records as table, JSON, JSON lines or CSV on stdout.

use crate::cli::OutputFormat;
use serde::Serialize;
use std::io::{BufWriter, Write};
use steward_store::StoreError;

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

/// `text` safe to print on a terminal: control characters (line breaks, escape sequences)
/// and the invisible format characters that reorder or hide text (bidirectional overrides,
/// zero-width characters) are written as Rust escapes (`\n`, `\u{1b}`), so a name, reason
/// or path cannot add a row or rewrite the screen.
pub fn terminal_text(text: &str) -> std::borrow::Cow<'_, str> {
    let hazardous = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !text.contains(hazardous) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hazardous(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    std::borrow::Cow::Owned(safe)
}

fn truncate(text: &str) -> String {
    let text = terminal_text(text);
    if text.chars().count() <= TABLE_CELL_LIMIT {
        text.into_owned()
    } else {
        let mut cut: String = text.chars().take(TABLE_CELL_LIMIT - 1).collect();
        cut.push('…');
        cut
    }
}

/// A CSV cell that a spreadsheet will not read as a formula: text starting with `=`, `+`,
/// `-` or `@` (or a tab or carriage return, which some spreadsheets skip before one) gets
/// a leading `'`, as OWASP advises against CSV injection; a spreadsheet shows the text,
/// and other programs see the `'`. Text that starts with `'` gets one more, so that one
/// leading `'` can always be taken off again (`steward import` of a CSV does). Other text
/// is left as it is.
pub fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A CSV writer's error as the I/O error it carries (csv's own conversion makes every
/// error `Other`, so a closed pipe would no longer look like one).
pub fn csv_io(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => std::io::Error::other(format!("{other:?}")),
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

/// Runs a store walk (`walk` gets the visitor) whose visitor writes with `write`: a write
/// error ends the walk and is returned as it was (a closed pipe stays a closed pipe); a
/// store error is returned as an I/O error carrying it.
pub fn write_walk<T>(
    walk: impl FnOnce(&mut dyn FnMut(T) -> Result<(), StoreError>) -> Result<(), StoreError>,
    mut write: impl FnMut(T) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut failed = None;
    let walked = walk(&mut |part| {
        write(part).map_err(|error| {
            let message = error.to_string();
            failed = Some(error);
            StoreError::Callback(message)
        })
    });
    match failed {
        Some(error) => Err(error),
        None => walked.map_err(std::io::Error::other),
    }
}

/// Writes `item` as an element of a pretty-printed JSON array nested `depth` levels deep
/// (its lines indented by two spaces a level), after `separator`: the bytes
/// `serde_json::to_writer_pretty` writes for it there. The item is serialized straight
/// into `out` by serde_json's own pretty formatter, opened `depth` levels in.
pub fn write_json_element<W: Write>(
    out: &mut W,
    item: &impl Serialize,
    separator: &[u8],
    depth: usize,
) -> std::io::Result<()> {
    use serde_json::ser::Formatter;
    out.write_all(separator)?;
    out.write_all(&b"  ".repeat(depth))?;
    let mut formatter = serde_json::ser::PrettyFormatter::new();
    for _ in 0..depth {
        formatter.begin_array(&mut std::io::sink())?;
    }
    item.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))
        .map_err(std::io::Error::from)
}

/// Writes a JSON, JSON-lines or CSV listing in parts, a batch of items at a time; the
/// bytes are those of the whole listing written at once (as [`print_listing`] does, with
/// one batch).
pub struct ListingWriter {
    format: OutputFormat,
    written: usize,
    /// A batch's JSON, serialized here (serde_json's many small writes cost less into a
    /// `Vec` than through `dyn Write` and a `BufWriter`) and then written out at once.
    buffer: Vec<u8>,
}

impl ListingWriter {
    /// Starts a listing (CSV: the header row).
    pub fn start(format: OutputFormat, headers: &[&str], out: &mut dyn Write) -> std::io::Result<Self> {
        if format == OutputFormat::Csv {
            let mut writer = csv::Writer::from_writer(&mut *out);
            writer.write_record(headers).map_err(csv_io)?;
            writer.flush()?;
        }
        Ok(ListingWriter {
            format,
            written: 0,
            buffer: Vec::new(),
        })
    }

    /// Writes `items`, the next ones in the listing.
    pub fn items<T: Serialize>(
        &mut self,
        out: &mut dyn Write,
        items: &[T],
        row: impl Fn(&T) -> Vec<String>,
    ) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json => {
                self.buffer.clear();
                for (position, item) in items.iter().enumerate() {
                    let separator: &[u8] = if self.written + position == 0 { b"[\n" } else { b",\n" };
                    write_json_element(&mut self.buffer, item, separator, 1)?;
                }
                out.write_all(&self.buffer)?;
            }
            OutputFormat::Jsonl => {
                self.buffer.clear();
                for item in items {
                    serde_json::to_writer(&mut self.buffer, item)?;
                    self.buffer.push(b'\n');
                }
                out.write_all(&self.buffer)?;
            }
            OutputFormat::Csv => {
                let mut writer = csv::Writer::from_writer(&mut *out);
                for item in items {
                    // Names, reasons, locators and public ids are anyone's text: none may
                    // run as a spreadsheet formula.
                    for cell in row(item) {
                        writer.write_field(spreadsheet_safe(&cell).as_bytes()).map_err(csv_io)?;
                    }
                    writer.write_record(None::<&[u8]>).map_err(csv_io)?;
                }
                writer.flush()?;
            }
            OutputFormat::Table | OutputFormat::Yaml | OutputFormat::Sarif => {
                return Err(std::io::Error::other(
                    "a listing is streamed only as json, jsonl or csv",
                ));
            }
        }
        self.written += items.len();
        Ok(())
    }

    /// Ends the listing.
    pub fn finish(self, out: &mut dyn Write) -> std::io::Result<()> {
        match (self.format, self.written) {
            (OutputFormat::Json, 0) => writeln!(out, "[]"),
            (OutputFormat::Json, _) => writeln!(out, "\n]"),
            _ => Ok(()),
        }
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
        // The whole listing as the one batch of a streamed listing (one writer for both).
        OutputFormat::Json | OutputFormat::Jsonl | OutputFormat::Csv => write_stdout(|out| {
            let mut writer = ListingWriter::start(format, headers, &mut *out)?;
            writer.items(&mut *out, items, row)?;
            writer.finish(out)
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
                writeln!(out, "{name:width$}  {}", terminal_text(value))?;
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
            writer
                .write_record(fields.iter().map(|(name, _)| *name))
                .map_err(csv_io)?;
            let values: Vec<_> = fields.iter().map(|(_, value)| spreadsheet_safe(value)).collect();
            writer
                .write_record(values.iter().map(|value| value.as_bytes()))
                .map_err(csv_io)?;
            writer.flush()
        }),
        OutputFormat::Yaml | OutputFormat::Sarif => Err(crate::usage(
            "-o yaml is only for `steward export` and -o sarif only for `steward scan`; use table, json, jsonl or csv",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Item {
        name: String,
        values: Vec<u32>,
        note: Option<String>,
    }

    fn row(item: &Item) -> Vec<String> {
        vec![item.name.clone(), format!("{:?}", item.values), cell(&item.note)]
    }

    #[test]
    fn a_listing_written_in_batches_is_the_listing_written_whole() {
        let items: Vec<Item> = (0..9)
            .map(|index| Item {
                name: format!("item \"{index}\", with, commas\nand a newline"),
                values: (0..index).collect(),
                note: (index % 2 == 0).then(|| "a: b".to_string()),
            })
            .collect();
        let headers = ["name", "values", "note"];
        for count in [0, 1, 9] {
            let items = &items[..count];
            let json = format!("{}\n", serde_json::to_string_pretty(items).unwrap());
            let jsonl: String = items
                .iter()
                .map(|item| format!("{}\n", serde_json::to_string(item).unwrap()))
                .collect();
            let mut csv = csv::Writer::from_writer(Vec::new());
            csv.write_record(headers).unwrap();
            for item in items {
                csv.write_record(row(item)).unwrap();
            }
            let csv = String::from_utf8(csv.into_inner().unwrap()).unwrap();
            for (format, whole) in [
                (OutputFormat::Json, json),
                (OutputFormat::Jsonl, jsonl),
                (OutputFormat::Csv, csv),
            ] {
                for batch in [1, 2, 4, 9] {
                    let mut out = Vec::new();
                    let mut writer = ListingWriter::start(format, &headers, &mut out).unwrap();
                    for chunk in items.chunks(batch) {
                        writer.items(&mut out, chunk, row).unwrap();
                    }
                    writer.finish(&mut out).unwrap();
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        whole,
                        "{format:?}, {count} in batches of {batch}"
                    );
                }
            }
        }
    }
}
