//! The DAP ingestor: an upload body of DAP-18 reports (what `divvi client` writes) into,
//! for each server, signed ingestion batches of [`DapReportShare`]s that carry each
//! report's metadata, public share and the one encrypted input share sealed to that
//! server (leader → server 0, helper → server 1). The ingestor reads only the public
//! task file: it checks framing and routing, and never holds a key that opens a share.
//!
//! Everything is checked before anything is written, so a refused input leaves no
//! objects. Batch UUIDs are derived from the task, the input's digest, the batch size and
//! the batch's index, and batch times from the reports, and the batch files' encoding is
//! deterministic: ingesting the same input again writes the same bytes, and signatures
//! only where none exist (a conditional create). The ingestor never reads a
//! bucket, so a put-only grant is all it needs.

use crate::batch::{write_batch_unless_signed, BatchId, BatchKind};
use crate::config::Ingestor;
use crate::crypto::{sha256, PacketDigest};
use crate::dap::{decode_reports, Report, ReportId, Task};
use crate::wire::{DapIngestionHeader, DapReportShare};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// How far ahead of the ingestor's clock a report's time may be (DAP-18 lets aggregators
/// refuse reports from the future as `report_too_early`; divvi refuses them at the door).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The digest of the ingestion batches' packet files: every server hashes its whole
/// file on the way in, and the leader's shares are large.
const PACKET_DIGEST: PacketDigest = PacketDigest::Blake3;

#[derive(Debug, Clone)]
pub struct DapIngestOptions {
    /// The aggregation name; `None`: the task id in base64url.
    pub aggregation: Option<String>,
    /// Reports per batch (at least 1).
    pub batch_size: usize,
    /// The batch time used in object names; `None`: the start of the earliest report's
    /// time unit, so a rerun names the same objects.
    pub time: Option<DateTime<Utc>>,
    /// The ingestor's clock, for the clock-skew check.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DapIngestReport {
    pub task_id: String,
    pub aggregation: String,
    pub reports: u64,
    /// Batches written, to at least one server.
    pub batches: Vec<String>,
    /// Batches every server already held complete (an earlier run of this input).
    pub already_ingested: Vec<String>,
}

/// Ingests an upload body for `task`: refuses the whole body if any report is malformed,
/// from the future, sealed to an HPKE config the task does not name, or a repeat of an
/// earlier report id; else writes `batch_size` reports a batch to each server.
pub fn ingest_dap(
    ingestor: &Ingestor,
    task: &Task,
    body: &[u8],
    options: &DapIngestOptions,
) -> Result<DapIngestReport> {
    let reports = decode_reports(task.version(), body).context("the upload body")?;
    ingest_reports(ingestor, task, &reports, &sha256(body), options)
}

/// As [`ingest_dap`], for reports already decoded from an input whose SHA-256 is
/// `input_digest` (what names the batches: the same input, the same batches).
pub fn ingest_reports(
    ingestor: &Ingestor,
    task: &Task,
    reports: &[Report],
    input_digest: &[u8; 32],
    options: &DapIngestOptions,
) -> Result<DapIngestReport> {
    super::ingest::check_batch_size(options.batch_size).map_err(|e| anyhow!("batch size: {e}"))?;
    let task_id = task.task_id().to_base64url();
    let aggregation = options
        .aggregation
        .clone()
        .unwrap_or_else(|| task_id.clone());
    crate::batch::validate_name("aggregation", &aggregation).map_err(|e| anyhow!(e))?;
    if reports.is_empty() {
        bail!("the upload body holds no reports");
    }
    check_reports(task, reports, options.now)?;
    let precision = task.time_precision();
    let time = match options.time {
        Some(t) => t,
        None => unit_start(
            reports
                .iter()
                .map(|r| task.time_unit(r.metadata.time))
                .min(),
            precision,
        )?,
    };
    let mut out = DapIngestReport {
        task_id,
        aggregation: aggregation.clone(),
        reports: reports.len() as u64,
        ..Default::default()
    };
    for (index, chunk) in reports.chunks(options.batch_size).enumerate() {
        let uuid = batch_uuid(task, input_digest, options.batch_size, index);
        let id = BatchId::new(&aggregation, time, uuid).map_err(|e| anyhow!(e))?;
        let names = id.names(BatchKind::Ingestion);
        let header = |packet_file_digest| DapIngestionHeader {
            batch_uuid: uuid,
            name: aggregation.clone(),
            task_id: task.task_id().0.to_vec(),
            report_count: chunk.len() as i64,
            batch_start_time: unit_millis(
                chunk.iter().map(|r| task.time_unit(r.metadata.time)).min(),
                precision,
            ),
            batch_end_time: unit_millis(
                chunk
                    .iter()
                    .map(|r| task.time_unit(r.metadata.time).saturating_add(1))
                    .max(),
                precision,
            ),
            packet_file_digest,
            packet_file_digest_algorithm: PACKET_DIGEST,
        };
        let mut wrote = false;
        for (server, target) in ingestor.targets.iter().enumerate() {
            let store = target.store.as_ref();
            let shares: Vec<DapReportShare> = chunk.iter().map(|r| share_for(r, server)).collect();
            wrote |= write_batch_unless_signed(
                store,
                &names,
                &shares,
                (PACKET_DIGEST, header),
                &ingestor.signing_key,
            )?;
        }
        match wrote {
            true => out.batches.push(id.to_string()),
            false => out.already_ingested.push(id.to_string()),
        }
    }
    Ok(out)
}

/// Checks every report before anything is written; an error names the report.
/// Why the ingestor refuses one report at the door, whatever else came with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// DAP's `report_too_early`.
    #[error(
        "its time, {time} {unit}, is more than {MAX_CLOCK_SKEW_SECS} s ahead of this clock ({now})"
    )]
    TooEarly {
        time: u64,
        /// What `time` counts ("seconds", or "time_precision units").
        unit: &'static str,
        now: DateTime<Utc>,
    },
    /// DAP's `hpke_unknown_config_id` (the client holds an outdated config).
    #[error(
        "its {role} input share is sealed to HPKE config {got}, the task's {role} config is {want}"
    )]
    UnknownConfig {
        role: &'static str,
        got: u8,
        want: u8,
    },
}

/// Whether one report may be taken: not from the future (beyond the allowed clock skew)
/// and sealed to the task's two HPKE configs.
pub fn admit_report(task: &Task, report: &Report, now: DateTime<Utc>) -> Result<(), Refusal> {
    let latest = u64::try_from(now.timestamp())
        .unwrap_or(0)
        .saturating_add(MAX_CLOCK_SKEW_SECS);
    match task.time_seconds(report.metadata.time) {
        Some(seconds) if seconds <= latest => {}
        _ => {
            return Err(Refusal::TooEarly {
                time: report.metadata.time,
                unit: task.version().time_unit_name(),
                now,
            })
        }
    }
    let params = task.params();
    let shares = [
        (
            "leader",
            &report.leader_encrypted_input_share,
            params.leader_hpke_config.id,
        ),
        (
            "helper",
            &report.helper_encrypted_input_share,
            params.helper_hpke_config.id,
        ),
    ];
    for (role, share, want) in shares {
        if share.config_id != want {
            return Err(Refusal::UnknownConfig {
                role,
                got: share.config_id,
                want,
            });
        }
    }
    Ok(())
}

fn check_reports(task: &Task, reports: &[Report], now: DateTime<Utc>) -> Result<()> {
    let mut seen: HashMap<ReportId, usize> = HashMap::with_capacity(reports.len());
    for (index, report) in reports.iter().enumerate() {
        let id = crate::batch::hex(&report.metadata.report_id.0);
        let name = || format!("report {index} (id {id})");
        admit_report(task, report, now).map_err(|why| anyhow!("{}: {why}", name()))?;
        if let Some(first) = seen.insert(report.metadata.report_id, index) {
            bail!("{}: the same report id as report {first}", name());
        }
    }
    Ok(())
}

/// The record of `report` for `server` (0: leader's share, 1: helper's).
fn share_for(report: &Report, server: usize) -> DapReportShare {
    let ciphertext = match server {
        0 => &report.leader_encrypted_input_share,
        _ => &report.helper_encrypted_input_share,
    };
    DapReportShare {
        report_id: report.metadata.report_id.0.to_vec(),
        // check_reports bounded the time by the clock, so it fits an i64.
        time: report.metadata.time as i64,
        public_share: report.public_share.clone(),
        config_id: i32::from(ciphertext.config_id),
        enc: ciphertext.enc.clone(),
        payload: ciphertext.payload.clone(),
    }
}

/// A batch UUID from SHA-256("divvi dap batch" ‖ task id ‖ SHA-256(input) ‖ batch size ‖
/// index), as an RFC 9562 version 8 (custom) UUID: the same input cut the same way always
/// names the same batches. (Cut another way, its batches are new ones; the servers count
/// each report id once.)
fn batch_uuid(task: &Task, input_digest: &[u8; 32], batch_size: usize, index: usize) -> Uuid {
    let mut seed = b"divvi dap batch".to_vec();
    seed.extend_from_slice(&task.task_id().0);
    seed.extend_from_slice(input_digest);
    seed.extend_from_slice(&(batch_size as u64).to_be_bytes());
    seed.extend_from_slice(&(index as u64).to_be_bytes());
    let hash = sha256(&seed);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The start of time unit `units` (of `precision` seconds) as a time.
fn unit_start(units: Option<u64>, precision: u64) -> Result<DateTime<Utc>> {
    let seconds = units.and_then(|u| u.checked_mul(precision));
    seconds
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| anyhow!("report time out of range"))
}

/// Milliseconds since the epoch of the start of time unit `units`; saturates (only for
/// times check_reports has already refused).
fn unit_millis(units: Option<u64>, precision: u64) -> i64 {
    let millis = units
        .unwrap_or(0)
        .saturating_mul(precision)
        .saturating_mul(1000);
    i64::try_from(millis).unwrap_or(i64::MAX)
}
