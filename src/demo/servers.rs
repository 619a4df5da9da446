//! The servers' half of a demo, the same for every task kind: intake on both servers,
//! then aggregate on both through the scheduled jobs' path (server 0 decides the run,
//! server 1 follows).

use super::{timed, Progress, StageTiming};
use crate::batch::Window;
use crate::config::Server;
use crate::schedule::{execute_run, RunId, RunOutcome};
use crate::stages::{intake, Rejected};
use anyhow::{bail, Result};
use chrono::{TimeDelta, Utc};

/// Runs intake then aggregate on both servers over `window`; `reports` is what the
/// ingestor wrote (for the progress bars). Returns the invalid reports server 0 listed.
pub(super) fn intake_and_aggregate(
    servers: &[Server; 2],
    aggregation: &str,
    window: Window,
    reports: u64,
    progress: &dyn Progress,
    stages: &mut Vec<StageTiming>,
) -> Result<Vec<Rejected>> {
    for server in servers {
        let name = format!("intake {}", server.index);
        timed(progress, &name, reports, stages, |tick| {
            for id in intake::pending_batches(server, aggregation)? {
                intake::intake(server, &id, tick)?;
            }
            Ok(())
        })?;
    }
    let mut invalid = Vec::new();
    for server in servers {
        let name = format!("aggregate {}", server.index);
        let run = RunId::new(aggregation, window, 0)?;
        let report = timed(progress, &name, reports, stages, |tick| match execute_run(
            server,
            &run,
            TimeDelta::hours(2),
            Utc::now(),
            tick,
        )? {
            RunOutcome::Done { report, .. } => Ok(report),
            other => bail!("{run} did not finish: {}", serde_json::to_string(&other)?),
        })?;
        if server.index.is_leader() {
            invalid = report.invalid;
        }
    }
    Ok(invalid)
}
