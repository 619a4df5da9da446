//! The DAP demo: a fresh deployment with a DAP task (DAP-18, or DAP-09 as deployed
//! clients speak it) of a Prio3 VDAF. Each report is
//! made by the client library ([`DapClient`]) from a random measurement and sealed to the
//! two servers ([`super::clients`]); the ingestor receives upload bodies of sealed
//! reports, as it would over HTTP, and never sees a measurement.

use super::clients::{make_uploads, Plan};
use super::servers::intake_and_aggregate;
use super::{timed, DemoOptions, DemoReport, Progress};
use crate::batch::Window;
use crate::config::{Ingestor, Limits, Portal, Server};
use crate::crypto::PacketScheme;
use crate::dap::{DapClient, DapVersion, Task, VdafConfig};
use crate::keygen::{keygen_with_dap, DapTaskOptions, Deployment, Layout};
use crate::stages::collect::{collect_any, Collected};
use crate::stages::ingest_dap::{ingest_dap, DapIngestOptions};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::path::Path;

/// The task's time precision: DAP's usual hour. The demo's window is the current hour.
const TIME_PRECISION: u64 = 3600;

/// The floor a run must reach (the task's min_batch_size and the servers' min_clients):
/// DAP's usual 100, or every valid report of a smaller demo.
pub(super) const FLOOR: u64 = 100;

/// The window holding `now`: one time-precision unit, as a window must fall on the task's
/// time-precision boundaries.
pub(crate) fn window_of(now: DateTime<Utc>) -> Result<Window> {
    let unit = TimeDelta::seconds(TIME_PRECISION as i64);
    let start = now.duration_trunc(unit)?;
    // A window names its last minute.
    Window::new(start, start + unit - TimeDelta::minutes(1)).map_err(anyhow::Error::msg)
}

/// A fresh deployment with a DAP task of `vdaf` in draft `version`, whose minimum batch
/// size and the servers' `min_clients` are both `floor`.
pub(crate) fn deploy_task(
    dir: &Path,
    scheme: PacketScheme,
    instance: &str,
    layout: &Layout,
    (version, vdaf): (DapVersion, &VdafConfig),
    floor: u64,
) -> Result<Deployment> {
    let task_options = DapTaskOptions {
        dap_version: version,
        vdaf: vdaf.clone(),
        time_precision: TIME_PRECISION,
        min_batch_size: floor,
        leader_endpoint: "https://leader.invalid/".into(),
        helper_endpoint: "https://helper.invalid/".into(),
        dp: None,
    };
    let limits = Limits {
        min_clients: floor,
        ..Default::default()
    };
    keygen_with_dap(dir, scheme, instance, layout, limits, Some(&task_options))
}

/// A collected result as numbers: one for count and sum, one per position otherwise.
fn values(result: &serde_json::Value) -> Result<Vec<u128>> {
    let one = |v: &serde_json::Value| -> Result<u128> {
        match v {
            serde_json::Value::Number(n) => n.as_u64().map(u128::from),
            // Values above 2^64-1 come as decimal strings.
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| anyhow!("a result value that is not a count: {v}"))
    };
    match result.as_array() {
        Some(items) => items.iter().map(one).collect(),
        None => Ok(vec![one(result)?]),
    }
}

/// The ingestor's side: each upload body into signed batches of the window.
fn ingest_uploads(
    ingestor: &Ingestor,
    task: &Task,
    bodies: &[Vec<u8>],
    (aggregation, window): (&str, Window),
    options: &DemoOptions,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    for body in bodies {
        let ingest_options = DapIngestOptions {
            aggregation: Some(aggregation.to_string()),
            batch_size: options.batch_size,
            // The ingestor's batches belong to the window it received them in.
            time: Some(window.start),
            now: Utc::now(),
        };
        let done = ingest_dap(ingestor, task, body, &ingest_options)?;
        tick(done.reports);
    }
    Ok(())
}

/// The DAP demo of `vdaf`.
pub(super) fn run(
    options: &DemoOptions,
    version: DapVersion,
    vdaf: &VdafConfig,
    progress: &dyn Progress,
) -> Result<DemoReport> {
    let plan = Plan::new(options)?;
    let floor = FLOOR.min((options.reports - options.invalid) as u64);
    let d = deploy_task(
        &options.dir,
        options.scheme,
        "divvi-demo",
        &options.layout,
        (version, vdaf),
        floor,
    )?;
    // The task file is public: what a device downloads before it reports.
    let task = Task::load(&d.dir.join("task.json"))?;
    let ingestor = Ingestor::load(&d.ingestor)?;
    let servers = [Server::load(&d.servers[0])?, Server::load(&d.servers[1])?];
    let portal = Portal::load(&d.portal)?;
    // Named by its task id, as ingest names a task's aggregation by default: a demo on
    // buckets an earlier one used does not meet that one's runs.
    let aggregation = task.task_id().to_base64url();
    let now = Utc::now();
    let window = window_of(now)?;
    let now_secs = u64::try_from(now.timestamp()).context("the clock is before 1970")?;
    let total = options.reports as u64;
    let mut stages = Vec::new();

    let client = DapClient::new(&task)?;
    let uploads = timed(progress, "client", plan.made(), &mut stages, |tick| {
        make_uploads(options, &client, &plan, now_secs, tick)
    })?;
    timed(progress, "ingest", total, &mut stages, |tick| {
        ingest_uploads(
            &ingestor,
            &task,
            &uploads.bodies,
            (&aggregation, window),
            options,
            tick,
        )
    })?;
    if options.vdaf.is_heavy_hitters() {
        let record =
            super::heavy::HeavyRecord::new(options, &aggregation, window, &uploads, stages);
        let run = super::heavy::HeavyRun {
            servers: &servers,
            portal: &portal,
            aggregation: &aggregation,
            window,
            dir: &d.dir,
        };
        return run.finish(record, progress);
    }
    let invalid =
        intake_and_aggregate(&servers, &aggregation, window, total, progress, &mut stages)?;
    let collected = timed(progress, "collect", 0, &mut stages, |_| {
        collect_any(&portal, &aggregation, &window, 0, Default::default())
    })?;
    let Collected::Dap(result) = collected else {
        bail!("collect found ENPA sum parts for the DAP task's aggregation {aggregation}");
    };
    Ok(DemoReport {
        dir: d.dir,
        vdaf: options.vdaf.clone(),
        truth: uploads.truth,
        result: values(&result.result)?,
        labels: None,
        reports: total,
        clients: result.report_count,
        invalid_injected: options.invalid,
        invalid_found: result.invalid_reports,
        invalid,
        stages,
    })
}
