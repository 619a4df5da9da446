//! `divvi aggregate` and `divvi status`: scheduled and explicit aggregation runs.

use super::outcome::{config, Ended};
use super::output::{Output, Printer};
use super::progress;
use anyhow::{anyhow, bail, Result};
use chrono::Utc;
use clap::Args;
use divvi::batch::Window;
use divvi::config::Server;
use divvi::ids::ServerIndex;
use divvi::schedule::parse_duration;
use divvi::schedule::{
    closed_windows, decide_late_run, exclude, execute_run, leader_pending, status, undone_runs,
    window_of, Decision, RunId, RunOutcome, StatusOptions, WindowStatus,
};
use divvi::skipped::{Skipped, Survey};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct AggregateArgs {
    /// The server's config (server0.toml or server1.toml, as keygen writes them).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-").
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    /// Every run that is due: the latest window of the period closed a grace ago (and
    /// earlier ones in the lookback) not done yet, and decided runs left unfinished.
    #[arg(long, conflicts_with_all = ["start", "late"])]
    pending: bool,
    /// First minute of an explicit window (YYYYmmddHHMM, YYYY/mm/dd/HH/MM or RFC 3339).
    #[arg(long, required_unless_present = "pending", requires = "end")]
    start: Option<String>,
    /// Last minute of the explicit window, included.
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// Sum the window's late batches (those no run covers yet) as a new late run; on
    /// server 1, sum the late runs server 0 decided.
    #[arg(long)]
    late: bool,
    /// Allow a window longer than 31 days (a longer one is most likely a mistyped date).
    #[arg(long, requires = "start")]
    force: bool,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// How the result is printed: a JSON object per line, CSV, or a table.
    #[arg(long, default_value = "json")]
    output: Output,
}

/// How scheduled windows are cut and how far back to look (aggregate, status).
#[derive(Args)]
pub struct ScheduleArgs {
    /// Length of a window; windows align to midnight UTC (m, h or d).
    #[arg(long, default_value = "1d")]
    period: String,
    /// How long after a window closes before it is aggregated (m, h or d).
    #[arg(long, default_value = "6h")]
    grace: String,
    /// How far back to look for windows not done yet (m, h or d).
    #[arg(long, default_value = "72h")]
    lookback: String,
    /// Report a batch still missing objects after this long (m, h or d).
    #[arg(long, default_value = "2h")]
    incomplete_after: String,
}

impl ScheduleArgs {
    fn options(&self) -> Result<StatusOptions> {
        Ok(StatusOptions {
            period: parse_duration(&self.period)?,
            grace: parse_duration(&self.grace)?,
            lookback: parse_duration(&self.lookback)?,
            incomplete_after: parse_duration(&self.incomplete_after)?,
            now: Utc::now(),
        })
    }
}

pub fn aggregate_command(a: AggregateArgs, m: &super::MetricsArgs) -> Result<Ended> {
    let server = config(Server::load(&a.config))?;
    let metrics =
        super::job_metrics::JobMetrics::start("aggregate", &a.aggregation, &server, m.port)?;
    let server = metrics.meter(server);
    divvi::stages::remove_stale_temporaries(&server.written_locations());
    let o = a.schedule.options()?;
    // An explicit window is checked before anything is listed.
    let explicit = match a.pending {
        true => None,
        false => Some(super::window(
            a.start.as_deref().unwrap_or_default(),
            a.end.as_deref().unwrap_or_default(),
            a.force,
        )?),
    };
    let mut survey = divvi::skipped::survey(&server, &a.aggregation)?;
    if a.pending {
        survey
            .skipped
            .extend(left_before_lookback(&server, &a.aggregation, &survey, &o)?);
    }
    divvi::skipped::warn_all(&survey.skipped);
    metrics.skipped(&survey.skipped);
    let runs = match explicit {
        Some(window) => explicit_runs(&server, &a.aggregation, &window, a.late, &o)?,
        None => {
            let since = o.now - o.lookback;
            if server.decides_runs {
                let windows = closed_windows(o.now, o.period, o.grace, o.lookback)?;
                leader_pending(&server, &a.aggregation, &windows, since)?
            } else {
                undone_runs(&server, &a.aggregation, since)?
            }
        }
    };

    let (mut failed, mut waiting, mut done) = (0, 0, 0);
    let mut printer = Printer::new(a.output);
    for (run, outcome, took) in run_all(&server, &runs, &o) {
        match outcome {
            Ok(outcome) => {
                match &outcome {
                    RunOutcome::Done { report, left_out } => {
                        done += 1;
                        metrics.packets(report.valid, report.invalid.len() as u64);
                        metrics.batch("done", took);
                        for batch in left_out {
                            tracing::warn!(run = %run, batch = %batch, "late batch: not in this run (not ready when it was decided, or other Prio parameters); sum it later with aggregate --late");
                        }
                    }
                    RunOutcome::Waiting { .. } => {
                        waiting += 1;
                        metrics.batch("waiting", took);
                    }
                    // Batches of the window not ready yet: wait for them.
                    RunOutcome::NothingReady {
                        waiting: w,
                        incomplete,
                    } if w + incomplete > 0 => waiting += 1,
                    RunOutcome::NothingReady { .. } => {}
                }
                printer.record(&serde_json::json!({ "run": run.name(), "result": outcome }))?;
            }
            Err(e) => {
                failed += 1;
                metrics.batch("failed", took);
                eprintln!("error: {run}: {e:#}");
            }
        }
    }
    printer.finish();
    if a.pending {
        metrics.late(report_late(&server, &a.aggregation, &o)?);
    }
    let ended = if failed > 0 {
        Ended::Failed
    } else if waiting > 0 {
        Ended::Waiting
    } else if done > 0 {
        Ended::Done
    } else {
        Ended::NothingToDo
    };
    let summary = serde_json::json!({ "runs": runs.len(), "failed": failed, "waiting": waiting, "outcome": ended.name() });
    eprintln!("{summary}");
    metrics.finish(failed == 0, m.pushgateway.as_ref(), None);
    Ok(ended)
}

/// Runs each run; runs left waiting get another turn while others finish, since a run
/// waits for the runs decided before it (a late run may precede a later window's run).
/// Each outcome comes with the time its run took over all its turns.
fn run_all(
    server: &Server,
    runs: &[RunId],
    o: &StatusOptions,
) -> Vec<(RunId, Result<RunOutcome>, Duration)> {
    let mut finished = Vec::new();
    let mut todo: Vec<(RunId, Duration)> =
        runs.iter().map(|r| (r.clone(), Duration::ZERO)).collect();
    loop {
        let mut waiting = Vec::new();
        let mut progressed = false;
        for (run, took_before) in todo {
            let bar = progress::counter("aggregate", "packets");
            let started = Instant::now();
            let outcome = execute_run(server, &run, o.incomplete_after, o.now, &|n| bar.inc(n));
            let took = took_before + started.elapsed();
            bar.finish_and_clear();
            match outcome {
                Ok(RunOutcome::Waiting { missing }) => waiting.push((run, missing, took)),
                other => {
                    progressed |= matches!(other, Ok(RunOutcome::Done { .. }));
                    finished.push((run, other, took));
                }
            }
        }
        if !progressed || waiting.is_empty() {
            finished.extend(
                waiting
                    .into_iter()
                    .map(|(run, missing, took)| (run, Ok(RunOutcome::Waiting { missing }), took)),
            );
            return finished;
        }
        todo = waiting
            .into_iter()
            .map(|(run, _, took)| (run, took))
            .collect();
    }
}

/// The runs an explicit window names: its regular run, or with `--late` a new late run
/// (server 0) or the late runs server 0 decided (server 1).
fn explicit_runs(
    server: &Server,
    aggregation: &str,
    window: &Window,
    late: bool,
    o: &StatusOptions,
) -> Result<Vec<RunId>> {
    if !late {
        return Ok(vec![RunId::new(aggregation, *window, 0)?]);
    }
    if server.index == ServerIndex::One && server.decides_runs {
        bail!("--late: server 0 (the original aggregator, peer_writes_manifests = false) has no late runs to follow");
    }
    match server.index {
        ServerIndex::Zero => {
            match decide_late_run(server, aggregation, window, o.incomplete_after, o.now)? {
                Decision::Decided(d) => Ok(vec![d.run]),
                Decision::NothingReady(scan) => {
                    if scan.waiting.is_empty() && scan.incomplete.is_empty() {
                        out!(
                            "{}",
                            serde_json::json!({ "window": window.name(), "late": "none: every batch of the window is summed" })
                        );
                        Ok(Vec::new())
                    } else {
                        bail!(
                        "window {}: no late batch is ready ({} waiting for validations, {} incomplete)",
                        window.name(),
                        scan.waiting.len(),
                        scan.incomplete.len()
                    )
                    }
                }
            }
        }
        ServerIndex::One => {
            let runs: Vec<RunId> = undone_runs(server, aggregation, window.end)?
                .into_iter()
                .filter(|r| r.window == *window && r.run > 0)
                .collect();
            if runs.is_empty() {
                return Err(anyhow!(
                    "window {}: server 0 has decided no late run this server has not summed",
                    window.name()
                ));
            }
            Ok(runs)
        }
    }
}

/// Batches before the first window of the lookback that no run lists, or that are
/// still incomplete: neither `aggregate --pending` nor `status` looks at them again.
fn left_before_lookback(
    server: &Server,
    aggregation: &str,
    survey: &Survey,
    o: &StatusOptions,
) -> Result<Vec<Skipped>> {
    let cutoff = window_of(o.now - o.lookback, o.period)?.start;
    let unsummed = divvi::skipped::unsummed_before(server, aggregation, &survey.batches, cutoff)?;
    let incomplete =
        divvi::skipped::incomplete_before(server, aggregation, &survey.incomplete, cutoff);
    Ok(unsummed.into_iter().chain(incomplete).collect())
}

/// Logs the late batches of the lookback's windows (a batch no run covers); their count.
fn report_late(server: &Server, aggregation: &str, o: &StatusOptions) -> Result<usize> {
    let mut late = 0;
    for w in status(server, aggregation, o)? {
        if !w.late.is_empty() {
            late += w.late.len();
            tracing::warn!(window = %w.window, late = w.late.len(), batches = ?w.late, "late batches not summed by any run: use aggregate --late");
        }
    }
    Ok(late)
}

#[derive(Args)]
pub struct StatusArgs {
    /// The server's config (server0.toml or server1.toml, as keygen writes them).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-").
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// A table for people; JSON (the whole report, one object) or CSV (a line per
    /// window, or per traversal) for scripts.
    #[arg(long, default_value = "table")]
    output: Output,
}

/// What `status --output json` prints: the windows, and what is passed over.
#[derive(serde::Serialize)]
struct StatusReport {
    windows: Vec<WindowStatus>,
    skipped: Vec<Skipped>,
    /// Heavy hitters (a Poplar1 task): each window's traversal on this server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    traversals: Vec<divvi::stages::heavy::PassProgress>,
}

pub fn status_command(a: StatusArgs) -> Result<ExitCode> {
    let server = config(Server::load(&a.config))?;
    let o = a.schedule.options()?;
    let mut survey = divvi::skipped::survey(&server, &a.aggregation)?;
    let old = left_before_lookback(&server, &a.aggregation, &survey, &o)?;
    survey.skipped.extend(old);
    divvi::skipped::warn_all(&survey.skipped);
    let heavy_hitters = server
        .dap
        .as_ref()
        .is_some_and(|d| matches!(d.task.vdaf(), divvi::dap::VdafConfig::Poplar1 { .. }));
    let report = StatusReport {
        windows: match heavy_hitters {
            // Its reports are summed in passes, not in runs of windows.
            true => Vec::new(),
            false => status(&server, &a.aggregation, &o)?,
        },
        skipped: survey.skipped,
        traversals: match heavy_hitters {
            true => divvi::stages::heavy::traversals(&server, &a.aggregation)?,
            false => Vec::new(),
        },
    };
    match a.output {
        Output::Json => out!("{}", serde_json::to_string_pretty(&report)?),
        Output::Csv => {
            let mut printer = Printer::new(Output::Csv);
            match heavy_hitters {
                true => report
                    .traversals
                    .iter()
                    .try_for_each(|t| printer.record(t))?,
                false => report.windows.iter().try_for_each(|w| printer.record(w))?,
            }
            printer.finish();
        }
        Output::Table if heavy_hitters => {
            print_traversals(&report.traversals);
            print_skipped(&report.skipped);
        }
        Output::Table => {
            print_table(&report.windows);
            print_skipped(&report.skipped);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per window whose heavy-hitters traversal began, then what it waits for.
fn print_traversals(traversals: &[divvi::stages::heavy::PassProgress]) {
    if traversals.is_empty() {
        out!(
            "no heavy-hitters traversal begun (divvi collect --heavy-hitters asks the first pass)"
        );
    }
    for t in traversals {
        let pass = match (t.pass, t.level, t.prefixes) {
            (Some(k), Some(level), Some(prefixes)) => {
                format!("pass {k} (level {level}, {prefixes} prefixes)")
            }
            _ => "no pass".to_string(),
        };
        let state = match (t.done, t.ready.is_empty()) {
            (true, _) => "sum part written".to_string(),
            (false, false) => format!("ready: {}", t.ready.join(", ")),
            (false, true) => "waiting".to_string(),
        };
        out!("{}  {pass}  {} batches  {state}", t.window, t.batches);
        for w in &t.waiting {
            out!("    waiting for {w}");
        }
    }
}

fn print_skipped(skipped: &[Skipped]) {
    if !skipped.is_empty() {
        out!("skipped (not read, not summed):");
    }
    for s in skipped {
        out!("  {}: {}", s.kind, s.reason);
    }
}

fn print_table(windows: &[WindowStatus]) {
    out!(
        "{:<27}  {:<8}  {:>7}  {:>5}  {:>7}  {:>10}  {:>4}  runs",
        "window",
        "state",
        "batches",
        "ready",
        "waiting",
        "incomplete",
        "late"
    );
    for w in windows {
        let runs: Vec<String> = w
            .runs
            .iter()
            .map(|r| {
                let suffix = r.run.strip_prefix(&w.window).unwrap_or(&r.run);
                let name = if suffix.is_empty() {
                    "regular"
                } else {
                    suffix.trim_start_matches('-')
                };
                format!("{name}: {} ({} batches)", r.state, r.batches)
            })
            .collect();
        out!(
            "{:<27}  {:<8}  {:>7}  {:>5}  {:>7}  {:>10}  {:>4}  {}",
            w.window,
            w.state,
            w.batches,
            w.ready,
            w.waiting,
            w.incomplete,
            w.late.len(),
            runs.join(", ")
        );
        for r in w.runs.iter().filter(|r| r.error.is_some()) {
            out!(
                "    {} failed: {}",
                r.run,
                r.error.as_deref().unwrap_or_default()
            );
        }
        for b in &w.late {
            out!("    late: {b}");
        }
        for e in &w.excluded {
            out!("    excluded: {} ({}, {})", e.batch, e.reason, e.at);
        }
    }
}

#[derive(Args)]
pub struct ExcludeArgs {
    /// The server's config (server0.toml or server1.toml, as keygen writes them).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-").
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    /// The batch's UUID.
    #[arg(long)]
    batch: uuid::Uuid,
    /// Why, for the record both servers keep and `status` shows.
    #[arg(long)]
    reason: String,
    /// How the exclusion is printed: a JSON object per line, CSV, or a table.
    #[arg(long, default_value = "json")]
    output: Output,
}

/// Server 0 excludes a batch from every run of its aggregation; server 1 follows.
pub fn exclude_command(a: ExcludeArgs) -> Result<ExitCode> {
    let server = config(Server::load(&a.config))?;
    let all = divvi::stages::ingestion_batches(&server, &a.aggregation)?;
    let Some(batch) = all.into_iter().find(|id| id.uuid == a.batch) else {
        bail!(
            "no ingestion batch {} of {} in {}",
            a.batch,
            a.aggregation,
            server.ingestion.describe("")
        );
    };
    let exclusion = exclude(&server, &batch, &a.reason)?;
    super::output::print_one(a.output, &exclusion)?;
    Ok(ExitCode::SUCCESS)
}
