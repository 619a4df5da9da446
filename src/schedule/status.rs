//! `divvi status`: per window of an aggregation, what is open, pending, done, late or
//! failed, as this server sees it.

use super::exclusion::{exclusions, Exclusion};
use super::plan::{read_decided, scan_window};
use super::windows::window_of;
use super::{list_manifests, read_done, read_failed, RunId};
use crate::batch::Window;
use crate::config::Server;
use anyhow::Result;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, BTreeSet};

pub struct StatusOptions {
    pub period: TimeDelta,
    pub grace: TimeDelta,
    pub lookback: TimeDelta,
    pub incomplete_after: TimeDelta,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WindowStatus {
    pub window: String,
    /// open (not closed a grace ago), empty, pending, done, failed.
    pub state: &'static str,
    pub batches: usize,
    /// Batches both validations cover, still missing a validation, missing objects.
    pub ready: usize,
    pub waiting: usize,
    pub incomplete: usize,
    pub runs: Vec<RunState>,
    /// Batches of a decided window that no run covers.
    pub late: Vec<String>,
    /// Batches of the window an operator excluded (`divvi exclude`), with the reason.
    pub excluded: Vec<Exclusion>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunState {
    pub run: String,
    /// done, decided (not summed here yet), failed.
    pub state: &'static str,
    pub batches: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn status(
    server: &Server,
    aggregation: &str,
    options: &StatusOptions,
) -> Result<Vec<WindowStatus>> {
    let since = options.now - options.lookback;
    let (decided_in, _) = server.decisions();
    let runs: Vec<RunId> = list_manifests(decided_in, aggregation)?
        .into_iter()
        .filter(|r| r.window.end >= since)
        .collect();
    let mut windows: Vec<Window> = runs.iter().map(|r| r.window).collect();
    let mut w = window_of(since, options.period)?;
    while w.start <= options.now {
        windows.push(w);
        w = window_of(w.start + options.period, options.period)?;
    }
    windows.sort_by_key(|w| (w.start, w.end));
    windows.dedup();

    let excluded = exclusions(server, aggregation)?;
    let mut out = Vec::new();
    for window in windows {
        let window_runs: Vec<&RunId> = runs.iter().filter(|r| r.window == window).collect();
        out.push(window_status(
            server,
            aggregation,
            &window,
            &window_runs,
            options,
            &excluded,
        )?);
    }
    Ok(out)
}

fn window_status(
    server: &Server,
    aggregation: &str,
    window: &Window,
    runs: &[&RunId],
    options: &StatusOptions,
    excluded: &BTreeMap<String, Exclusion>,
) -> Result<WindowStatus> {
    let scan = scan_window(
        server,
        aggregation,
        window,
        options.incomplete_after,
        options.now,
    )?;
    let mut covered = BTreeSet::new();
    let mut states = Vec::new();
    for run in runs {
        let (batches, revision) = match read_decided(server, run)? {
            Some(m) => (m.manifest.batches, m.manifest.revision),
            None => (Vec::new(), 0),
        };
        let count = batches.len();
        covered.extend(batches);
        // A run decided again since it was summed here is not done any more.
        let done = read_done(server.own.as_ref(), run)?.filter(|d| d.revision >= revision);
        let state = match (done, read_failed(server.own.as_ref(), run)?) {
            (Some(done), _) => RunState {
                run: run.name(),
                state: "done",
                batches: count,
                valid: Some(done.valid),
                error: None,
            },
            (None, Some(failed)) => RunState {
                run: run.name(),
                state: "failed",
                batches: count,
                valid: None,
                error: Some(failed.error),
            },
            (None, None) => RunState {
                run: run.name(),
                state: "decided",
                batches: count,
                valid: None,
                error: None,
            },
        };
        states.push(state);
    }
    let all = scan.all_batches();
    let excluded: Vec<Exclusion> = (excluded.values())
        .filter(|e| all.contains(&e.batch))
        .cloned()
        .collect();
    let late = if runs.iter().any(|r| r.run == 0) {
        all.iter()
            .filter(|b| !covered.contains(*b) && !excluded.iter().any(|e| &e.batch == *b))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let closed = window.end + TimeDelta::minutes(1) + options.grace <= options.now;
    let run0 = RunId::new(aggregation, *window, 0)?;
    let state = if states.iter().any(|s| s.state == "failed") {
        "failed"
    } else if !states.is_empty() && states.iter().all(|s| s.state == "done") {
        "done"
    } else if !states.is_empty() {
        "pending"
    } else if read_failed(server.own.as_ref(), &run0)?.is_some() {
        "failed"
    } else if !closed {
        "open"
    } else if all.is_empty() {
        "empty"
    } else {
        "pending"
    };
    Ok(WindowStatus {
        window: window.name(),
        state,
        batches: all.len(),
        ready: scan.ready.len(),
        waiting: scan.waiting.len(),
        incomplete: scan.incomplete.len(),
        runs: states,
        late,
        excluded,
    })
}
