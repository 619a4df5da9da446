//! Results over time: `collect --pending` collects every run both servers finished and
//! that is not collected yet, adds it to its aggregation's series (JSON lines and CSV),
//! never twice, and goes on past a run that fails.

mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use divvi::batch::{truncate_to_minute, Window};
use divvi::crypto::PacketScheme;
use divvi::schedule::{decide_late_run, execute_run, Decision, RunId, RunOutcome};
use divvi::stages::{intake, no_tick};
use std::path::PathBuf;

/// Intake of every pending batch on both servers, then `servers` run `run`.
fn summed_by(d: &Deployment, run: &RunId, servers: &[usize]) {
    for s in &d.servers {
        for id in intake::pending_batches(s, &run.aggregation).unwrap() {
            intake::intake(s, &id, &no_tick).unwrap();
        }
    }
    for &s in servers {
        let outcome = execute_run(
            &d.servers[s],
            run,
            TimeDelta::hours(1),
            Utc::now(),
            &no_tick,
        )
        .unwrap();
        assert!(matches!(outcome, RunOutcome::Done { .. }), "{outcome:?}");
    }
}

fn portal(d: &Deployment) -> String {
    d.paths.portal.to_str().unwrap().to_string()
}

/// `collect --pending` with `extra` arguments: exit code, stdout, stderr.
fn collect_pending(d: &Deployment, extra: &[&str]) -> (i32, String, String) {
    let config = portal(d);
    let mut args = vec!["collect", "--config", &config, "--pending"];
    args.extend(extra);
    let out = divvi(&args);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn results(d: &Deployment) -> PathBuf {
    d.paths.dir.join("buckets/portal-results")
}

/// The series rows of `aggregation`: (window, run, values).
fn series(d: &Deployment, aggregation: &str) -> Vec<(String, u64, Vec<u64>)> {
    let path = results(d).join(aggregation).join("series.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let values = row["values"].as_array().unwrap();
            (
                row["window"].as_str().unwrap().to_string(),
                row["run"].as_u64().unwrap(),
                values.iter().map(|v| v.as_u64().unwrap()).collect(),
            )
        })
        .collect()
}

fn minute_window(time: chrono::DateTime<Utc>) -> Window {
    Window::new(time, time).unwrap()
}

#[test]
fn collect_pending_builds_the_series_once_per_run_and_goes_on_past_a_bad_part() {
    let d = deployment(PacketScheme::Ecies);
    let now = truncate_to_minute(Utc::now());
    let times: Vec<_> = (1..=3).rev().map(|m| now - TimeDelta::minutes(m)).collect();
    let runs: Vec<RunId> = times
        .iter()
        .map(|&t| RunId::new("ts", minute_window(t), 0).unwrap())
        .collect();
    // Window i: i + 1 reports in bin i. The third is summed by server 0 only.
    for (i, &t) in times.iter().enumerate() {
        write_batch(&d, "ts", t, i, i + 1);
    }
    summed_by(&d, &runs[0], &[0, 1]);
    summed_by(&d, &runs[1], &[0, 1]);
    summed_by(&d, &runs[2], &[0]);
    // Another aggregation, collected by the same call when none is named.
    write_batch(&d, "other", times[0], 1, 4);
    summed_by(
        &d,
        &RunId::new("other", minute_window(times[0]), 0).unwrap(),
        &[0, 1],
    );

    let (code, out, err) = collect_pending(&d, &["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 3, "{out}");
    assert_eq!(
        series(&d, "ts"),
        [
            (runs[0].window.name(), 0, vec![1, 0, 0]),
            (runs[1].window.name(), 0, vec![0, 2, 0]),
        ]
    );
    assert_eq!(
        series(&d, "other"),
        [(runs[0].window.name(), 0, vec![0, 4, 0])]
    );
    let row = &printed.iter().find(|r| r["aggregation"] == "ts").unwrap();
    assert_eq!(row["task"], "ts");
    assert_eq!(row["vdaf"], "prio2");
    assert_eq!(row["reports"], 1);
    assert_eq!(row["labels"], serde_json::json!(["0", "1", "2"]));
    assert_eq!(row["start"], times[0].to_rfc3339());

    // Nothing new: nothing collected, nothing rewritten.
    let jsonl = results(&d).join("ts/series.jsonl");
    let before = std::fs::read(&jsonl).unwrap();
    let (code, out, err) = collect_pending(&d, &["--aggregation", "ts"]);
    assert_eq!((code, out.as_str()), (3, ""), "{err}");
    assert_eq!(std::fs::read(&jsonl).unwrap(), before);

    // Server 1 catches up on the third window; a late batch of the first window gets a
    // late run; a fourth window's part is damaged on server 1.
    summed_by(&d, &runs[2], &[1]);
    write_batch(&d, "ts", times[0], 2, 5);
    for s in &d.servers {
        for id in intake::pending_batches(s, "ts").unwrap() {
            intake::intake(s, &id, &no_tick).unwrap();
        }
    }
    let decided = decide_late_run(
        &d.servers[0],
        "ts",
        &runs[0].window,
        TimeDelta::hours(1),
        Utc::now(),
    );
    let Decision::Decided(late) = decided.unwrap() else {
        panic!("a late run should be decided");
    };
    let late = late.run;
    summed_by(&d, &late, &[0, 1]);
    let fourth = RunId::new("ts", minute_window(now), 0).unwrap();
    write_batch(&d, "ts", now, 0, 1);
    summed_by(&d, &fourth, &[0, 1]);
    let part = d
        .paths
        .dir
        .join("buckets/server1-sum-parts")
        .join(d.servers[1].instance.as_str())
        .join("ts")
        .join(format!("{}.sum_1", fourth.name()));
    let mut bytes = std::fs::read(&part).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&part, bytes).unwrap();

    let (code, out, err) = collect_pending(&d, &["--aggregation", "ts", "--output", "csv"]);
    assert_eq!(code, 1, "a bad part fails the call: {err}");
    assert!(
        err.contains(&fourth.name()) && err.contains("\"collected\":2"),
        "the failed run is named: {err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], divvi::stages::series::SERIES_CSV_HEADER);
    assert_eq!(lines.len(), 1 + 2 * 3, "{out}");
    assert_eq!(
        series(&d, "ts"),
        [
            (runs[0].window.name(), 0, vec![1, 0, 0]),
            (runs[0].window.name(), 1, vec![0, 0, 5]),
            (runs[1].window.name(), 0, vec![0, 2, 0]),
            (runs[2].window.name(), 0, vec![0, 0, 3]),
        ]
    );
    let csv = std::fs::read_to_string(results(&d).join("ts/series.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 3, "{csv}");
    // The damaged run stays pending: named again, never added.
    let (code, _, err) = collect_pending(&d, &["--aggregation", "ts", "--output", "table"]);
    assert_eq!(code, 1);
    assert!(err.contains(&fourth.name()), "{err}");
    assert_eq!(series(&d, "ts").len(), 4);

    // The series drawn: a line per bin with a point per collected run, a bar per bin of
    // the latest run, and both in a page that stands alone.
    let pictures = d.paths.dir.join("pictures");
    let config = portal(&d);
    let out = ok(&[
        "plot",
        "--config",
        &config,
        "--aggregation",
        "ts",
        "--out",
        pictures.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let written: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["runs"], 4, "{out}");
    let over_time = std::fs::read_to_string(pictures.join("ts-over-time.svg")).unwrap();
    assert_eq!(
        divvi::plot::line_points(&over_time),
        [4, 4, 4],
        "{over_time}"
    );
    let latest = std::fs::read_to_string(pictures.join("ts-latest.svg")).unwrap();
    assert!(latest.starts_with("<svg") && latest.matches("<rect").count() >= 3);
    // The same two charts as PNG pictures of the chart's size.
    for name in ["ts-over-time.png", "ts-latest.png"] {
        let bytes = std::fs::read(pictures.join(name)).unwrap();
        let info = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap()
            .info()
            .clone();
        assert_eq!((info.width, info.height), (960, 480), "{name}");
        assert_eq!(
            written[name.replace("ts-", "").replace(['-', '.'], "_")],
            pictures.join(name).display().to_string()
        );
    }
    let html = std::fs::read_to_string(pictures.join("ts.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(html.matches("<tr><td>").count(), 4, "a table row per run");
    // A real browser opens the page offline: no console message, both charts drawn.
    let (dom, console) = open_in_browser(&pictures.join("ts.html"));
    assert!(console.is_empty(), "{console:?}");
    assert_eq!(dom.matches("<svg").count(), 2, "{dom}");
    assert!(dom.matches("<polyline").count() >= 3, "{dom}");
    // The console check itself: a page that errs is caught.
    let broken = pictures.join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><p>x</p><script>missingFunction();</script>",
    )
    .unwrap();
    let (_, console) = open_in_browser(&broken);
    assert!(
        console.iter().any(|l| l.contains("missingFunction")),
        "{console:?}"
    );
    // An aggregation with nothing collected: an error that names it, no pictures.
    let out = divvi(&[
        "plot",
        "--config",
        &config,
        "--aggregation",
        "never",
        "--out",
        pictures.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("never") && err.contains("no results yet"),
        "{err}"
    );
    assert!(!pictures.join("never.html").exists());
}

/// Opens a page in headless Chromium (Debian's package; scripts/test.sh installs it):
/// the DOM once loaded, and the lines the page wrote to its console.
fn open_in_browser(page: &std::path::Path) -> (String, Vec<String>) {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8(out.stdout).unwrap(), console)
}

#[test]
fn an_explicit_collect_adds_its_run_to_the_series_and_prints_each_form() {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(1);
    let run = RunId::new("one", minute_window(time), 0).unwrap();
    write_batch(&d, "one", time, 2, 3);
    summed_by(&d, &run, &[0, 1]);
    let config = portal(&d);
    let name = run.window.name();
    let (start, end) = name.split_once('-').unwrap();
    let collect = |output: &str| {
        ok(&[
            "collect",
            "--config",
            &config,
            "--aggregation",
            "one",
            "--start",
            start,
            "--end",
            end,
            "--output",
            output,
        ])
    };
    let table = collect("table");
    assert!(
        table.lines().next().unwrap().starts_with("aggregation one"),
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .last()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["2", "3"]
    );
    let csv = collect("csv");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().last().unwrap().ends_with(",3,0,2,3"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&collect("json")).unwrap();
    assert_eq!(json["values"], serde_json::json!([0, 0, 3]));
    // Collected three times, one row.
    assert_eq!(series(&d, "one"), [(name.clone(), 0, vec![0, 0, 3])]);
    let (code, _, _) = collect_pending(&d, &[]);
    assert_eq!(code, 3, "an explicitly collected run is not pending");
}

#[test]
fn intake_and_aggregate_print_json_lines_csv_or_a_table() {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(1);
    write_batch(&d, "forms", time, 0, 2);
    write_batch(&d, "forms", time, 1, 3);
    let config = |s: usize| d.paths.servers[s].to_str().unwrap().to_string();
    let intake = |s: usize, output: &str| {
        ok(&[
            "intake",
            "--config",
            &config(s),
            "--aggregation",
            "forms",
            "--output",
            output,
        ])
    };
    let csv = intake(0, "csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and a line per batch: {csv}");
    assert_eq!(lines[0], "batch,packets,verified,rejected");
    let mut verified: Vec<&str> = lines[1..].iter().map(|l| &l[l.len() - 4..]).collect();
    verified.sort();
    assert_eq!(verified, [",2,0", ",3,0"], "{csv}");
    let json = intake(1, "json");
    for line in json.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(record["rejected"].as_array().unwrap().is_empty(), "{line}");
    }
    assert_eq!(json.lines().count(), 2);

    let name = minute_window(time).name();
    let (start, end) = name.split_once('-').unwrap();
    let aggregate = |s: usize, output: &str| {
        ok(&[
            "aggregate",
            "--config",
            &config(s),
            "--aggregation",
            "forms",
            "--start",
            start,
            "--end",
            end,
            "--output",
            output,
        ])
    };
    let table = aggregate(0, "table");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    assert_eq!(rows[1][column("run")], name);
    assert_eq!(rows[1][column("result.outcome")], "done");
    assert_eq!(rows[1][column("result.report.valid")], "5");
    let line: serde_json::Value = serde_json::from_str(&aggregate(1, "json")).unwrap();
    assert_eq!(line["result"]["report"]["valid"], 5, "{line}");
}
