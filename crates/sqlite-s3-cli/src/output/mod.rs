//! Printing query results: aligned tables, JSON, CSV.

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
            Value::Real(f) => f.to_string(),
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
pub fn table(table: &Table, out: &mut impl Write) -> io::Result<()> {
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
    line(out, &table.columns, &left)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule, &left)?;
    for (row, text) in table.rows.iter().zip(&cells) {
        let numeric: Vec<bool> = row
            .iter()
            .map(|v| matches!(v, Value::Integer(_) | Value::Real(_)))
            .collect();
        line(out, text, &numeric)?;
    }
    Ok(())
}

/// An array of objects keyed by column name, in column order.
pub fn json(table: &Table, out: &mut impl Write) -> io::Result<()> {
    let rows: Vec<serde_json::Value> = table
        .rows
        .iter()
        .map(|row| {
            let object = table.columns.iter().cloned().zip(row.iter().map(Value::json)).collect();
            serde_json::Value::Object(object)
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &rows)?;
    writeln!(out)
}

/// RFC 4180 CSV with a header row; NULL is an empty field.
pub fn csv(table: &Table, out: &mut impl Write) -> io::Result<()> {
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    };
    let header: Vec<String> = table.columns.iter().map(|c| field(c)).collect();
    write!(out, "{}\r\n", header.join(","))?;
    for row in &table.rows {
        let fields: Vec<String> = row
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                v => field(&v.display()),
            })
            .collect();
        write!(out, "{}\r\n", fields.join(","))?;
    }
    Ok(())
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

    fn render(f: fn(&Table, &mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&sample(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_aligns_wide_characters() {
        let text = render(table);
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
        let text = render(json);
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
        let text = render(csv);
        assert_eq!(text, "id,name,data\r\n1,日本語,\r\n22,\"a,\"\"b\"\"\",x'dead'\r\n");
    }
}
