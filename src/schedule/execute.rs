//! Running one aggregation run on a server: server 0 decides (or finds) its manifest,
//! server 1 follows it; both sum exactly the listed batches once every validation is
//! there, write the sum part, and record the run as done.

use super::exclusion::exclusions;
use super::history::{counted_elsewhere, other_runs, preceding_runs, summed_by, write_counted};
use super::plan::{decide_run, missing_validations, read_decided, Decision};
use super::{read_done, write_done, write_failed, RunId, RunRecord};
use crate::config::Server;
use crate::stages::aggregate::{aggregate_batches, AggregateReport};
use crate::stages::Tick;
use anyhow::{bail, Result};
use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The sum part is written; `left_out` are the window's late batches.
    Done {
        report: AggregateReport,
        left_out: Vec<String>,
    },
    /// Waiting for server 0's manifest, or for validations of listed batches.
    Waiting { missing: Vec<String> },
    /// Server 0 found no batch of the window ready to sum.
    NothingReady { waiting: usize, incomplete: usize },
}

/// Runs one run; a failure is also recorded in the server's own storage for `status`.
pub fn execute_run(
    server: &Server,
    run: &RunId,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
    tick: Tick,
) -> Result<RunOutcome> {
    let outcome = execute(server, run, incomplete_after, now, tick);
    if let Err(e) = &outcome {
        if let Err(record) = write_failed(server.own.as_ref(), run, e) {
            tracing::warn!(run = %run, error = %record, "could not record the failure");
        }
    }
    outcome
}

fn execute(
    server: &Server,
    run: &RunId,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
    tick: Tick,
) -> Result<RunOutcome> {
    let (manifest, left_out) = match server.decides_runs {
        true => match decide_run(server, run, incomplete_after, now)? {
            Decision::Decided(d) => (d.manifest, d.left_out),
            Decision::NothingReady(scan) => {
                return Ok(RunOutcome::NothingReady {
                    waiting: scan.waiting.len(),
                    incomplete: scan.incomplete.len(),
                })
            }
        },
        false => match read_decided(server, run)? {
            Some(m) => (m, Vec::new()),
            None => {
                return Ok(RunOutcome::Waiting {
                    missing: vec![server.peer_inbox.describe(&run.manifest_key())],
                });
            }
        },
    };
    // Batches the deciding server excluded (after the run was decided) are not summed.
    let excluded = exclusions(server, &run.aggregation)?;
    let batches: Vec<_> = manifest
        .manifest
        .batch_ids(run)?
        .into_iter()
        .filter(|id| !excluded.contains_key(&id.to_string()))
        .collect();
    if batches.is_empty() {
        bail!("{run}: every batch it lists is excluded: nothing to sum");
    }

    // The runs decided before this one must be summed here first: they say which
    // batches and packets this run must not count again.
    let preceding = preceding_runs(run, &manifest)?;
    let mut missing = Vec::new();
    for earlier in &preceding {
        if read_done(server.own.as_ref(), earlier)?.is_none() {
            missing.push(format!(
                "{earlier} (decided before it, not summed here yet)"
            ));
        }
    }
    for id in &batches {
        missing.extend(missing_validations(server, id)?);
    }
    if !missing.is_empty() {
        return Ok(RunOutcome::Waiting { missing });
    }
    let summed = summed_by(server, &other_runs(server, run)?)?;
    if let Some((batch, by)) = batches
        .iter()
        .find_map(|b| summed.get_key_value(&b.to_string()))
    {
        bail!("{run} lists batch {batch}, already summed by run {by}: refusing to sum it twice");
    }
    let counted = counted_elsewhere(server, run)?;

    let report = aggregate_batches(server, run, &batches, &counted, tick)?;
    write_counted(server, run, &report.counted)?;
    let record = RunRecord {
        aggregation: run.aggregation.clone(),
        run: run.name(),
        batches: batches.iter().map(ToString::to_string).collect(),
        packets: report.packets,
        valid: report.valid,
        invalid: report.invalid.len() as u64,
        sum_part: report.sum_part.clone(),
        revision: manifest.manifest.revision,
    };
    write_done(server.own.as_ref(), run, &record)?;
    Ok(RunOutcome::Done { report, left_out })
}
