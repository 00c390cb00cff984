//! Printing query results: aligned tables, JSON, JSON lines, CSV, one
//! `name = value` line per column, Markdown.

use std::io::{self, Write};

use rusqlite::types::ValueRef;
use unicode_width::UnicodeWidthStr;

/// One SQLite value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// A BLOB.
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for Value {
    fn from(value: ValueRef<'_>) -> Self {
        match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl Value {
    /// The value as text: NULL as `NULL`, a BLOB as a SQL hex literal.
    fn display(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Integer(i) => i.to_string(),
            // As SQLite prints them: 18.0, not 18.
            Value::Real(f) => format!("{f:?}"),
            Value::Text(t) => t.clone(),
            Value::Blob(b) => format!("x'{}'", hex(b)),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => (*i).into(),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Value::Text(t) => t.clone().into(),
            Value::Blob(b) => hex(b).into(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header.
    Table,
    /// An array of objects keyed by column name.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// One `column = value` line per column, rows apart.
    Line,
    /// A Markdown table.
    Markdown,
}

impl Format {
    /// Parses a name as given to `.mode`.
    pub fn parse(name: &str) -> Option<Format> {
        <Format as clap::ValueEnum>::from_str(name, true).ok()
    }
}

/// Prints `table` in `format`; `headers` says whether column names head
/// tables, CSV and Markdown.
pub fn write(format: Format, table: &Table, headers: bool, out: &mut impl Write) -> io::Result<()> {
    match format {
        Format::Table => self::table(table, headers, out),
        Format::Json => json(table, out),
        Format::Jsonl => jsonl(table, out),
        Format::Csv => csv(table, headers, out),
        Format::Line => line(table, out),
        Format::Markdown => markdown(table, headers, out),
    }
}

/// A result set.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

/// Aligned columns: numbers to the right, text to the left, widths counted
/// in terminal cells so that any Unicode text lines up.
pub fn table(table: &Table, headers: bool, out: &mut impl Write) -> io::Result<()> {
    let cells: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|r| r.iter().map(Value::display).collect())
        .collect();
    let widths: Vec<usize> = (0..table.columns.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].width())
                .chain([table.columns[c].width()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, values: &[String], numeric: &[bool]| -> io::Result<()> {
        let mut text = String::new();
        for (i, value) in values.iter().enumerate() {
            let pad = " ".repeat(widths[i] - value.width());
            if i > 0 {
                text.push_str("  ");
            }
            if numeric[i] {
                text.push_str(&pad);
                text.push_str(value);
            } else {
                text.push_str(value);
                text.push_str(&pad);
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    let left = vec![false; widths.len()];
    if headers {
        line(out, &table.columns, &left)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(out, &rule, &left)?;
    }
    for (row, text) in table.rows.iter().zip(&cells) {
        let numeric: Vec<bool> = row
            .iter()
            .map(|v| matches!(v, Value::Integer(_) | Value::Real(_)))
            .collect();
        line(out, text, &numeric)?;
    }
    Ok(())
}

fn objects(table: &Table) -> impl Iterator<Item = serde_json::Value> + '_ {
    table.rows.iter().map(|row| {
        let object = table.columns.iter().cloned().zip(row.iter().map(Value::json)).collect();
        serde_json::Value::Object(object)
    })
}

/// An array of objects keyed by column name, in column order.
pub fn json(table: &Table, out: &mut impl Write) -> io::Result<()> {
    let rows: Vec<serde_json::Value> = objects(table).collect();
    serde_json::to_writer_pretty(&mut *out, &rows)?;
    writeln!(out)
}

/// One object per line.
pub fn jsonl(table: &Table, out: &mut impl Write) -> io::Result<()> {
    for object in objects(table) {
        serde_json::to_writer(&mut *out, &object)?;
        writeln!(out)?;
    }
    Ok(())
}

/// `column = value`, one line per column, names aligned, rows apart (as
/// `sqlite3 -line`).
pub fn line(table: &Table, out: &mut impl Write) -> io::Result<()> {
    let width = table.columns.iter().map(|c| c.width()).max().unwrap_or(0);
    for (i, row) in table.rows.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        for (name, value) in table.columns.iter().zip(row) {
            let pad = " ".repeat(width - name.width());
            writeln!(out, "{pad}{name} = {}", value.display())?;
        }
    }
    Ok(())
}

/// A GitHub-flavoured Markdown table.
pub fn markdown(table: &Table, headers: bool, out: &mut impl Write) -> io::Result<()> {
    let cell = |text: String| text.replace('|', "\\|").replace('\n', " ");
    let row = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
    if headers {
        writeln!(out, "{}", row(table.columns.iter().cloned().map(cell).collect()))?;
        writeln!(
            out,
            "{}",
            row(table.columns.iter().map(|_| "---".to_string()).collect())
        )?;
    }
    for values in &table.rows {
        writeln!(out, "{}", row(values.iter().map(|v| cell(v.display())).collect()))?;
    }
    Ok(())
}

/// RFC 4180 CSV with a header row, written by the `csv` crate: fields
/// holding a comma, a quote, CR or LF are quoted, quotes doubled, lines end
/// in CRLF. NULL is an empty field (written `""` when it is a row's only
/// field, so that the row is not read as a blank line); a BLOB is its SQL
/// hex literal, as in tables.
pub fn csv(table: &Table, headers: bool, out: &mut impl Write) -> io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .flexible(true)
        .from_writer(out);
    if headers {
        writer.write_record(&table.columns)?;
    }
    for row in &table.rows {
        writer.write_record(row.iter().map(|v| match v {
            Value::Null => String::new(),
            v => v.display(),
        }))?;
    }
    writer.flush()
}

/// A time as RFC 3339 in UTC with milliseconds, as `log` and `info` show it.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            columns: vec!["id".into(), "name".into(), "data".into()],
            rows: vec![
                vec![Value::Integer(1), Value::Text("日本語".into()), Value::Null],
                vec![
                    Value::Integer(22),
                    Value::Text("a,\"b\"".into()),
                    Value::Blob(vec![0xde, 0xad]),
                ],
            ],
        }
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        write(format, &sample(), true, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_aligns_wide_characters() {
        let text = render(Format::Table);
        assert_eq!(
            text,
            "id  name    data\n\
             --  ------  -------\n \
             1  日本語  NULL\n\
             22  a,\"b\"   x'dead'\n"
        );
    }

    #[test]
    fn json_is_an_array_of_objects_in_column_order() {
        let text = render(Format::Json);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"id": 1, "name": "日本語", "data": null},
                {"id": 22, "name": "a,\"b\"", "data": "dead"},
            ])
        );
        assert!(text.find("\"id\"").unwrap() < text.find("\"name\"").unwrap());
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let text = render(Format::Csv);
        assert_eq!(text, "id,name,data\r\n1,日本語,\r\n22,\"a,\"\"b\"\"\",x'dead'\r\n");
    }

    #[test]
    fn csv_quotes_line_breaks_and_leaves_other_text_alone() {
        let table = Table {
            columns: vec!["a,b".into(), "c".into()],
            rows: vec![
                vec![Value::Text("one\ntwo".into()), Value::Text("cr\r".into())],
                vec![Value::Text(" spaced ".into()), Value::Real(1.5)],
                vec![Value::Text(String::new()), Value::Null],
            ],
        };
        let mut out = Vec::new();
        write(Format::Csv, &table, true, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",c\r\n\"one\ntwo\",\"cr\r\"\r\n spaced ,1.5\r\n,\r\n"
        );
    }

    #[test]
    fn csv_writes_a_lone_null_as_an_empty_quoted_field() {
        let table = Table {
            columns: vec!["a".into()],
            rows: vec![vec![Value::Null], vec![Value::Integer(1)]],
        };
        let mut out = Vec::new();
        write(Format::Csv, &table, false, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\"\"\r\n1\r\n");
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let text = render(Format::Jsonl);
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            serde_json::json!({"id": 22, "name": "a,\"b\"", "data": "dead"})
        );
    }

    #[test]
    fn line_mode_aligns_names() {
        assert_eq!(
            render(Format::Line),
            "  id = 1\nname = 日本語\ndata = NULL\n\n  id = 22\nname = a,\"b\"\ndata = x'dead'\n"
        );
    }

    #[test]
    fn markdown_escapes_pipes() {
        let table = Table {
            columns: vec!["a".into()],
            rows: vec![vec![Value::Text("x|y".into())]],
        };
        let mut out = Vec::new();
        write(Format::Markdown, &table, true, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "| a |\n| --- |\n| x\\|y |\n");
    }

    #[test]
    fn headers_can_be_turned_off() {
        let mut out = Vec::new();
        write(Format::Csv, &sample(), false, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("1,"));
    }
}
