//! Running one aggregation run on a server: server 0 decides (or finds) its manifest,
//! server 1 follows it; both sum exactly the listed batches once every validation is
//! there, write the sum part, and record the run as done.

use super::plan::{decide_run, earlier_batches, missing_validations, read_decided, Decision};
use super::{write_done, write_failed, RunId, RunRecord};
use crate::config::Server;
use crate::stages::aggregate::{aggregate_batches, AggregateReport};
use crate::stages::Tick;
use crate::vdaf::ServerIndex;
use anyhow::Result;
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
        if let Err(record) = write_failed(server.own.as_ref(), run, &format!("{e:#}")) {
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
    let (batches, left_out) = match server.index {
        ServerIndex::Zero => {
            let exclude = earlier_batches(server, run)?;
            match decide_run(server, run, &exclude, incomplete_after, now)? {
                Decision::Decided(d) => (d.batches, d.left_out),
                Decision::NothingReady(scan) => {
                    return Ok(RunOutcome::NothingReady {
                        waiting: scan.waiting.len(),
                        incomplete: scan.incomplete.len(),
                    })
                }
            }
        }
        ServerIndex::One => match read_decided(server, run)? {
            Some(m) => (m.manifest.batch_ids(run)?, Vec::new()),
            None => {
                let key = run.manifest_key();
                return Ok(RunOutcome::Waiting {
                    missing: vec![server.peer_inbox.describe(&key)],
                });
            }
        },
    };
    let mut missing = Vec::new();
    for id in &batches {
        missing.extend(missing_validations(server, id)?);
    }
    if !missing.is_empty() {
        return Ok(RunOutcome::Waiting { missing });
    }
    let report = aggregate_batches(server, run, &batches, tick)?;
    let record = RunRecord {
        aggregation: run.aggregation.clone(),
        run: run.name(),
        batches: batches.iter().map(ToString::to_string).collect(),
        packets: report.packets,
        valid: report.valid,
        invalid: report.invalid.len() as u64,
        sum_part: report.sum_part.clone(),
    };
    write_done(server.own.as_ref(), run, &record)?;
    Ok(RunOutcome::Done { report, left_out })
}
