//! How a command prints what it did, one shape for every command: `--output json` (a
//! JSON line per record, printed as it comes), `csv` (a header, then a line per record)
//! or `table` (aligned columns). A record's fields are its columns; a nested object's
//! fields are spelt with dotted names (`result.report.valid`); a list shows its length
//! (the JSON form carries the list itself).

use anyhow::Result;
use divvi::stages::series::csv_field;
use serde::Serialize;

/// The `--output` of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A JSON object per line.
    Json,
    /// A header line, then a line per record.
    Csv,
    /// Aligned columns for a terminal.
    Table,
}

/// Prints records in one [`Output`]; CSV and tables wait for [`Printer::finish`], which
/// needs every record to know the columns and their widths.
pub struct Printer {
    format: Output,
    columns: Vec<String>,
    rows: Vec<Vec<(String, String)>>,
}

impl Printer {
    pub fn new(format: Output) -> Printer {
        Printer {
            format,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn record(&mut self, record: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(record)?;
        if self.format == Output::Json {
            out!("{value}");
            return Ok(());
        }
        let mut cells = Vec::new();
        flatten("", &value, &mut cells);
        for (column, _) in &cells {
            if !self.columns.contains(column) {
                self.columns.push(column.clone());
            }
        }
        self.rows.push(cells);
        Ok(())
    }

    pub fn finish(self) {
        let grid: Vec<Vec<&str>> = self
            .rows
            .iter()
            .map(|cells| {
                self.columns
                    .iter()
                    .map(|c| {
                        cells
                            .iter()
                            .find(|(name, _)| name == c)
                            .map_or("", |(_, v)| v.as_str())
                    })
                    .collect()
            })
            .collect();
        match self.format {
            Output::Json => {}
            Output::Csv => {
                let line = |fields: Vec<String>| out!("{}", fields.join(","));
                line(self.columns.iter().map(|c| csv_field(c)).collect());
                for row in &grid {
                    line(row.iter().map(|v| csv_field(v)).collect());
                }
            }
            Output::Table => {
                let widths: Vec<usize> = (0..self.columns.len())
                    .map(|i| {
                        grid.iter()
                            .map(|row| row[i].chars().count())
                            .chain([self.columns[i].chars().count()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |fields: Vec<&str>| {
                    let padded: Vec<String> = fields
                        .iter()
                        .zip(&widths)
                        .map(|(f, w)| format!("{f:<w$}"))
                        .collect();
                    out!("{}", padded.join("  ").trim_end());
                };
                line(self.columns.iter().map(String::as_str).collect());
                for row in grid {
                    line(row);
                }
            }
        }
    }
}

/// Prints one record.
pub fn print_one(format: Output, record: &impl Serialize) -> Result<()> {
    let mut printer = Printer::new(format);
    printer.record(record)?;
    printer.finish();
    Ok(())
}

/// A JSON value's cells: scalars as text, objects by dotted name, lists by length.
fn flatten(prefix: &str, value: &serde_json::Value, cells: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let name = |key: &str| match prefix {
        "" => key.to_string(),
        p => format!("{p}.{key}"),
    };
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                flatten(&name(key), field, cells);
            }
        }
        Value::Array(items) => cells.push((prefix.to_string(), items.len().to_string())),
        Value::String(s) => cells.push((prefix.to_string(), s.clone())),
        Value::Null => cells.push((prefix.to_string(), String::new())),
        other => cells.push((prefix.to_string(), other.to_string())),
    }
    if prefix.is_empty() && !value.is_object() {
        // A bare value: one column, "value".
        if let Some(last) = cells.last_mut() {
            last.0 = "value".to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_get_dotted_names_and_lists_their_length() {
        let mut cells = Vec::new();
        let value = serde_json::json!({
            "run": "w", "result": {"outcome": "done", "report": {"valid": 3, "invalid": ["a", "b"]}},
            "note": null
        });
        flatten("", &value, &mut cells);
        let find = |c: &str| cells.iter().find(|(n, _)| n == c).map(|(_, v)| v.as_str());
        assert_eq!(find("run"), Some("w"));
        assert_eq!(find("result.outcome"), Some("done"));
        assert_eq!(find("result.report.valid"), Some("3"));
        assert_eq!(find("result.report.invalid"), Some("2"));
        assert_eq!(find("note"), Some(""));
        let mut bare = Vec::new();
        flatten("", &serde_json::json!(7), &mut bare);
        assert_eq!(bare, [("value".to_string(), "7".to_string())]);
    }
}
