//! `divvi intake` (server): validate pending ingestion batches, this worker's shard of them.

use super::outcome::{config, Ended};
use super::{job_metrics, progress, MetricsArgs};
use anyhow::{anyhow, Result};
use chrono::Utc;
use clap::Args;
use divvi::config::Server;
use divvi::stages::intake;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct IntakeArgs {
    /// The server's config (server0.toml or server1.toml, as keygen writes them).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-").
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    /// Only this batch (its UUID), whenever it was written.
    #[arg(long, conflicts_with = "pending")]
    batch: Option<uuid::Uuid>,
    /// Every complete batch of the lookback window not validated yet (the default).
    #[arg(long)]
    pending: bool,
    /// How far back to look for batches (m, h or d).
    #[arg(long, default_value = "72h")]
    lookback: String,
    /// Report a batch still missing objects after this long (m, h or d).
    #[arg(long, default_value = "2h")]
    incomplete_after: String,
    /// This worker's part of the pending work, i/N (default: from Kubernetes
    /// JOB_COMPLETION_INDEX and DIVVI_SHARD_COUNT, else all of it).
    #[arg(long)]
    shard: Option<String>,
    /// How the result is printed: a JSON object per line, CSV, or a table.
    #[arg(long, default_value = "json")]
    output: super::output::Output,
}

pub(super) fn intake_command(a: IntakeArgs, m: &MetricsArgs) -> Result<Ended> {
    use divvi::schedule::{parse_duration, pending_intake, Shard};
    let server = config(Server::load(&a.config))?;
    let metrics = job_metrics::JobMetrics::start("intake", &a.aggregation, &server, m.port)?;
    let server = metrics.meter(server);
    divvi::stages::remove_stale_temporaries(&server.written_locations());
    let now = Utc::now();
    let mut survey = divvi::skipped::survey(&server, &a.aggregation)?;
    let (ids, incomplete, shard) = match a.batch {
        Some(uuid) => {
            let id = survey.batches.iter().find(|id| id.uuid == uuid).cloned();
            let id = id.ok_or_else(|| {
                anyhow!("no ingestion batch {uuid} in aggregation {}", a.aggregation)
            })?;
            (vec![id], Vec::new(), Shard::ALL)
        }
        None => {
            let shard = match &a.shard {
                Some(text) => Shard::parse(text)?,
                None => Shard::from_env()?.unwrap_or(Shard::ALL),
            };
            let lookback = parse_duration(&a.lookback)?;
            let (ids, incomplete) = pending_intake(
                &server,
                &a.aggregation,
                lookback,
                parse_duration(&a.incomplete_after)?,
                shard,
                now,
            )?;
            let cutoff = divvi::batch::truncate_to_minute(now) - lookback;
            let old = divvi::skipped::unvalidated_before(
                &server,
                &a.aggregation,
                &survey.batches,
                cutoff,
            )?;
            survey.skipped.extend(old);
            let unfinished = divvi::skipped::incomplete_before(
                &server,
                &a.aggregation,
                &survey.incomplete,
                cutoff,
            );
            survey.skipped.extend(unfinished);
            (ids, incomplete, shard)
        }
    };
    // Every shard surveys the whole aggregation; the first alone warns, so N pods do
    // not log each finding N times (each shard's summary and metrics still carry it).
    if shard.index == 0 {
        divvi::skipped::warn_all(&survey.skipped);
    }
    metrics.skipped(&survey.skipped);
    for i in incomplete.iter().filter(|i| i.overdue) {
        tracing::warn!(batch = %i.batch, age_minutes = i.age_minutes, missing = ?i.missing, "ingestion batch still incomplete");
    }
    metrics.incomplete(
        incomplete.len(),
        incomplete.iter().filter(|i| i.overdue).count(),
    );
    let bar = progress::batches("intake", ids.len() as u64);
    let packets = std::sync::atomic::AtomicU64::new(0);
    let tick = |n| {
        let seen = packets.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        bar.set_message(seen.to_string());
    };
    // Each batch is counted and printed as it ends, whichever worker ran it.
    let printer = super::output::Printer::new(a.output);
    let ended = std::sync::Mutex::new((&metrics, 0usize, None, printer));
    intake::intake_batches(&server, &ids, &tick, None, |id, result, took| {
        bar.inc(1);
        let mut ended = ended.lock().unwrap_or_else(|p| p.into_inner());
        let (metrics, failed, print_error, printer) = &mut *ended;
        match result {
            Ok(r) => {
                metrics.packets(r.verified, r.rejected.len() as u64);
                metrics.batch("done", took);
                if let Err(e) = printer.record(&r) {
                    *print_error = Some(e);
                }
            }
            Err(e) => {
                *failed += 1;
                metrics.batch("failed", took);
                eprintln!("error: intake of {id}: {e:#}");
            }
        }
    });
    bar.finish_and_clear();
    let (_, failed, print_error, printer) = ended.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = print_error {
        return Err(e);
    }
    printer.finish();
    let ended = if failed > 0 {
        Ended::Failed
    } else if !ids.is_empty() {
        Ended::Done
    } else if !incomplete.is_empty() {
        // Batches the ingestor has not finished writing: they come at a later turn.
        Ended::Waiting
    } else {
        Ended::NothingToDo
    };
    let summary = serde_json::json!({
        "shard": shard.to_string(),
        "batches": ids.len(),
        "failed": failed,
        "incomplete": incomplete,
        "outcome": ended.name(),
        "skipped": survey.skipped,
    });
    eprintln!("{summary}");
    let shard_label = (shard != Shard::ALL).then(|| shard.to_string());
    metrics.finish(failed == 0, m.pushgateway.as_ref(), shard_label);
    Ok(ended)
}
