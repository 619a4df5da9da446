//! Results over time: every collected run of an aggregation is one row of its series,
//! `{aggregation}/series.jsonl` (a row a line) and `series.csv` (a value a line, long
//! form, which a spreadsheet or pandas pivots as it likes) in the portal's results.
//! A row is keyed by its window and run: collecting a run again replaces its row, so
//! nothing is counted twice, and a row's presence is what "collected" means.

use super::collect::{collect_any, CollectOptions, Collected};
use crate::batch::Window;
use crate::config::Portal;
use crate::ids::RunId;
use crate::store::{get_bytes, put_bytes, ObjectStore};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One collected run: its task, window and run, and the VDAF's labelled values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    /// The DAP task id (base64url); for ENPA, whose task is its aggregation, that name.
    pub task: String,
    pub aggregation: String,
    /// The window's name (`YYYYmmddHHMM-YYYYmmddHHMM`, its last minute included).
    pub window: String,
    /// The window's first and last minute (RFC 3339): what a chart's x axis needs.
    pub start: String,
    pub end: String,
    /// 0 for the window's regular run, k for its k-th run of late batches.
    pub run: u32,
    /// count, sum, sumvec, histogram, multihot, or prio2 (ENPA).
    pub vdaf: String,
    /// Reports counted in the values.
    pub reports: u64,
    /// Reports found invalid and left out.
    pub invalid: u64,
    /// What each value counts: a bucket or index, or the VDAF's name for one number.
    pub labels: Vec<String>,
    pub values: Vec<serde_json::Value>,
    /// A DP task's noise: the values are noisy (and may be below zero, unless clamped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
}

impl SeriesRow {
    /// The row of one collected run of `window`.
    pub fn new(collected: &Collected, window: &Window, run: u32) -> SeriesRow {
        let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
        let (task, aggregation, vdaf, reports, invalid, labels, values, noise) = match collected {
            Collected::Enpa(r) => (
                r.aggregation.clone(),
                r.aggregation.clone(),
                "prio2".to_string(),
                r.valid_clients
                    .unwrap_or(u64::try_from(r.total_individual_clients).unwrap_or(0)),
                r.invalid_packets as u64,
                (0..r.histogram.len()).map(|i| i.to_string()).collect(),
                r.histogram.iter().map(|&c| c.into()).collect(),
                None,
            ),
            Collected::Dap(r) => {
                let (labels, values) = super::collect_dap::dap_result_rows(r)
                    .into_iter()
                    .zip(labelled_values(&r.result))
                    .map(|((label, _), value)| (label, value))
                    .unzip();
                (
                    r.task_id.clone(),
                    r.aggregation.clone(),
                    r.vdaf.clone(),
                    r.report_count,
                    r.invalid_reports as u64,
                    labels,
                    values,
                    r.noise.clone(),
                )
            }
        };
        SeriesRow {
            task,
            aggregation,
            window: window.name(),
            start: time(window.start),
            end: time(window.end),
            run,
            vdaf,
            reports,
            invalid,
            labels,
            values,
            noise,
        }
    }

    fn key(&self) -> (&str, u32) {
        (&self.window, self.run)
    }
}

/// Collects each of `runs` (of any aggregations), handing each outcome to `each` as it
/// comes, then adds the collected ones to their series, one write per aggregation. A run
/// that fails is left out of its series, so a later `collect --pending` tries it again.
pub fn collect_runs(
    portal: &Portal,
    runs: &[RunId],
    options: CollectOptions,
    mut each: impl FnMut(&RunId, Result<(Collected, &SeriesRow)>) -> Result<()>,
) -> Result<()> {
    let mut rows: BTreeMap<&str, Vec<SeriesRow>> = BTreeMap::new();
    for run in runs {
        match collect_any(portal, &run.aggregation, &run.window, run.run, options) {
            Ok(collected) => {
                let row = SeriesRow::new(&collected, &run.window, run.run);
                each(run, Ok((collected, &row)))?;
                rows.entry(&run.aggregation).or_default().push(row);
            }
            Err(e) => each(run, Err(e))?,
        }
    }
    for (aggregation, rows) in rows {
        add_to_series(portal.results.as_ref(), aggregation, &rows)?;
    }
    Ok(())
}

/// A VDAF result's values in position order: the array, or the one number.
fn labelled_values(result: &serde_json::Value) -> Vec<serde_json::Value> {
    match result.as_array() {
        Some(values) => values.clone(),
        None => vec![result.clone()],
    }
}

/// A bound on a series read whole: a year of hourly 2048-bucket histograms is ~150 MB.
const MAX_SERIES_BYTES: u64 = 1 << 30;

/// The series objects of `aggregation` in a results location.
fn series_names(aggregation: &str) -> (String, String) {
    (
        format!("{aggregation}/series.jsonl"),
        format!("{aggregation}/series.csv"),
    )
}

/// The rows of `aggregation`'s series, oldest window first (none before its first run).
pub fn read_series(store: &dyn ObjectStore, aggregation: &str) -> Result<Vec<SeriesRow>> {
    let (jsonl, _) = series_names(aggregation);
    let bytes = match get_bytes(store, &jsonl, MAX_SERIES_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let object = store.describe(&jsonl);
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{object}: not UTF-8"))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| anyhow!("{object}: line {} is not a series row: {e}", i + 1))
        })
        .collect()
}

/// Adds `rows` to `aggregation`'s series (replacing a row of the same window and run),
/// and rewrites both objects, each whole or not at all.
pub fn add_to_series(
    store: &dyn ObjectStore,
    aggregation: &str,
    rows: &[SeriesRow],
) -> Result<Vec<SeriesRow>> {
    let mut series = read_series(store, aggregation)?;
    for row in rows {
        series.retain(|r| r.key() != row.key());
        series.push(row.clone());
    }
    series.sort_by(|a, b| (&a.start, &a.end, a.run).cmp(&(&b.start, &b.end, b.run)));
    let (jsonl, csv) = series_names(aggregation);
    let mut lines = String::new();
    for row in &series {
        lines.push_str(&serde_json::to_string(row)?);
        lines.push('\n');
    }
    // The CSV first: the JSON lines are what "collected" is read from, so a kill between
    // the two leaves the run uncollected, and the next collect writes both again.
    put_bytes(store, &csv, series_csv(&series).as_bytes())?;
    put_bytes(store, &jsonl, lines.as_bytes())?;
    Ok(series)
}

/// The CSV header of [`series_csv`].
pub const SERIES_CSV_HEADER: &str =
    "task,aggregation,window,start,end,run,vdaf,reports,invalid,label,value";

/// Rows in long form: one line per value, under [`SERIES_CSV_HEADER`].
pub fn series_csv(rows: &[SeriesRow]) -> String {
    let mut csv = format!("{SERIES_CSV_HEADER}\n");
    for row in rows {
        csv.push_str(&series_csv_lines(row));
    }
    csv
}

/// One row's CSV lines, without the header.
pub fn series_csv_lines(row: &SeriesRow) -> String {
    let mut csv = String::new();
    for (label, value) in row.labels.iter().zip(&row.values) {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            row.task,
            row.aggregation,
            row.window,
            row.start,
            row.end,
            row.run,
            row.vdaf,
            row.reports,
            row.invalid,
            csv_field(label),
            value
        ));
    }
    csv
}

/// A CSV field: quoted when it holds a comma, quote or line break (a bucket label may).
pub fn csv_field(field: &str) -> String {
    match field.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", field.replace('"', "\"\"")),
        false => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_time;
    use crate::store::LocalStore;

    fn row(day: &str, run: u32, values: &[u64]) -> SeriesRow {
        let window = Window::new(
            parse_time(&format!("{day}0000")).unwrap(),
            parse_time(&format!("{day}2359")).unwrap(),
        )
        .unwrap();
        SeriesRow {
            task: "t".into(),
            aggregation: "a".into(),
            window: window.name(),
            start: window.start.to_rfc3339(),
            end: window.end.to_rfc3339(),
            run,
            vdaf: "histogram".into(),
            reports: values.iter().sum(),
            invalid: 0,
            labels: (0..values.len()).map(|i| i.to_string()).collect(),
            values: values.iter().map(|&v| v.into()).collect(),
            noise: None,
        }
    }

    #[test]
    fn a_run_collected_again_replaces_its_row_and_rows_stay_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert!(read_series(&store, "a").unwrap().is_empty());
        add_to_series(&store, "a", &[row("20261202", 0, &[1, 2])]).unwrap();
        add_to_series(&store, "a", &[row("20261201", 0, &[3, 4])]).unwrap();
        add_to_series(&store, "a", &[row("20261202", 1, &[5, 6])]).unwrap();
        let series = add_to_series(&store, "a", &[row("20261202", 0, &[1, 2])]).unwrap();
        let keys: Vec<(String, u32)> = series.iter().map(|r| (r.window.clone(), r.run)).collect();
        assert_eq!(
            keys,
            [
                ("202612010000-202612012359".to_string(), 0),
                ("202612020000-202612022359".to_string(), 0),
                ("202612020000-202612022359".to_string(), 1),
            ]
        );
        assert_eq!(read_series(&store, "a").unwrap(), series);
        let csv = std::fs::read_to_string(dir.path().join("a/series.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 3 * 2, "{csv}");
        assert!(csv.contains(
            "t,a,202612020000-202612022359,2026-12-02T00:00:00+00:00,2026-12-02T23:59:00+00:00,1,histogram,11,0,1,6\n"
        ));
    }

    #[test]
    fn a_damaged_series_is_refused_with_its_object_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        let good = serde_json::to_string(&row("20261202", 0, &[1])).unwrap();
        std::fs::write(
            dir.path().join("a/series.jsonl"),
            format!("{good}\n{{\"task\":1}}\n"),
        )
        .unwrap();
        let e = read_series(&LocalStore::new(dir.path()), "a").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("series.jsonl") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn labels_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
