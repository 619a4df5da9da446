//! Intake: verify the ingestor's batch, open every packet, compute verifier shares in
//! parallel, and write the signed validation batch (single-object form) to this server's
//! own location and to the peer's inbox. Written once for every task kind: what differs
//! per report (ENPA's Prio2 packets, DAP's sealed Prio3 reports) is in [`super::judges`]. A packet that cannot be opened or decoded is left
//! out and listed; it then counts as invalid on both sides. Memory stays flat: packets
//! stream in chunks, and the validation records spool to a temporary file.

use super::intake_floor::FloorClock;
use super::judges::{ingestion_kind, DapJudge, IngestionKind, Presum, Prio2Judge, ReportJudge};
use super::replays::{keep_share, record_and_check, Fingerprint, Replay};
use super::{judge_in_chunks, next_packets, Rejected, Tick};
use crate::batch::{BatchId, BatchKind, BatchWriter};
use crate::config::Server;
use crate::stash::StashWriter;
use anyhow::{Context, Result};
use chrono::TimeDelta;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct IntakeReport {
    pub batch: String,
    pub packets: u64,
    pub verified: u64,
    pub rejected: Vec<Rejected>,
}

/// Ingestion batches of an aggregation whose validation this server has not written yet.
pub fn pending_batches(server: &Server, aggregation: &str) -> Result<Vec<BatchId>> {
    let mut pending = Vec::new();
    for id in super::ingestion_batches(server, aggregation)? {
        let own = id.names(BatchKind::Validation(server.index)).signature;
        if server.own.head(&own)?.is_none() {
            pending.push(id);
        }
    }
    Ok(pending)
}

/// Each reason packets were refused for, with how many: one line per reason, not one
/// per packet.
fn reason_counts(rejected: &[Rejected]) -> Vec<String> {
    let mut counts: std::collections::BTreeMap<&str, (usize, uuid::Uuid)> = Default::default();
    for r in rejected {
        counts.entry(&r.reason).or_insert((0, r.uuid)).0 += 1;
    }
    let mut lines: Vec<(usize, String)> = counts
        .into_iter()
        .map(|(reason, (n, first))| (n, format!("{n} x {reason} (e.g. {first})")))
        .collect();
    lines.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    lines.into_iter().map(|(_, line)| line).collect()
}

fn warn_rejected(id: &BatchId, rejected: &[Rejected]) {
    for line in reason_counts(rejected) {
        tracing::warn!(batch = %id, "packets left out of validation: {line}");
    }
}

/// What a batch whose every packet is refused most likely means.
fn likely_cause(rejected: &[Rejected]) -> &'static str {
    let unopened = rejected.iter().all(|r| {
        r.reason.contains("key") || r.reason.contains("decrypt") || r.reason.contains("open")
    });
    if unopened {
        "Likely cause: this server's packet keys do not open the batch: a wrong or missing packet key, or the other server's batch in this server's ingestion bucket."
    } else {
        "Likely cause: the batch's Prio parameters or encoding do not match what its devices sent (bins, or a batch for the other server)."
    }
}

/// Validates one batch. A pass that finds shares another batch kept under other UUIDs
/// writes nothing; the next pass leaves those packets out. More passes are needed only
/// while other intakes keep committing copies of this batch's shares.
pub fn intake(server: &Server, id: &BatchId, tick: Tick) -> Result<IntakeReport> {
    intake_timed(server, id, tick, None)
}

fn intake_timed(
    server: &Server,
    id: &BatchId,
    tick: Tick,
    clock: Option<&FloorClock>,
) -> Result<IntakeReport> {
    match ingestion_kind(server, id)? {
        IngestionKind::Prio2 => intake_of::<Prio2Judge>(server, id, tick, clock),
        IngestionKind::Dap => intake_of::<DapJudge>(server, id, tick, clock),
    }
}

/// Validates batches, as many at once as the pool has threads, in parallel: while one
/// batch reads its first chunk or writes and syncs its outputs, the others' reports keep
/// every core busy. Batches in flight at once are what workers of one aggregation on
/// several machines are anyway: replay checks and commits already allow them. `done`
/// hears of each batch as it ends; a benchmark's `clock` sums the per-packet work.
pub fn intake_batches(
    server: &Server,
    ids: &[BatchId],
    tick: Tick,
    clock: Option<&FloorClock>,
    done: impl Fn(&BatchId, Result<IntakeReport>, std::time::Duration) + Sync,
) {
    use rayon::prelude::*;
    ids.par_iter().with_max_len(1).for_each(|id| {
        let started = std::time::Instant::now();
        let result = intake_timed(server, id, tick, clock);
        done(id, result, started.elapsed())
    });
}

fn intake_of<'s, J: ReportJudge<'s>>(
    server: &'s Server,
    id: &BatchId,
    tick: Tick,
    clock: Option<&FloorClock>,
) -> Result<IntakeReport> {
    const PASSES: usize = 3;
    let mut left_out = HashMap::new();
    for _ in 0..PASSES {
        match intake_pass::<J>(server, id, &left_out, tick, clock)? {
            Pass::Written(report) => return Ok(report),
            Pass::Replays(found) => {
                for r in found {
                    tracing::warn!(batch = %id, packet = %r.uuid, reason = %r.reason, "replayed share left out");
                    left_out.insert(r.uuid, r.reason);
                }
            }
        }
    }
    anyhow::bail!(
        "{id}: other batches kept committing copies of its shares through {PASSES} passes; run intake again"
    )
}

/// What one pass over a batch came to.
enum Pass {
    Written(IntakeReport),
    /// Packets whose shares another batch keeps: nothing was written.
    Replays(Vec<Replay>),
}

fn intake_pass<'s, J: ReportJudge<'s>>(
    server: &'s Server,
    id: &BatchId,
    left_out: &HashMap<Uuid, String>,
    tick: Tick,
    clock: Option<&FloorClock>,
) -> Result<Pass> {
    let (batch, judge, object) = J::open(server, id)?;

    let out_names = id.names(BatchKind::Validation(server.index));
    let mut out = BatchWriter::<J::Verifier>::single_object(out_names, J::VALIDATION_DIGEST)?;
    let mut report = IntakeReport {
        batch: id.to_string(),
        packets: 0,
        verified: 0,
        rejected: Vec::new(),
    };
    // What aggregate will need, kept sealed in our own location.
    let mut stash = match &server.stash_key {
        Some(key) => {
            let context = judge.stash_context(id);
            Some(StashWriter::create(
                server.own.as_ref(),
                &id.stash_name(server.index),
                key,
                &context,
            )?)
        }
        None => None,
    };
    // The output shares of the reports kept in the stash, summed (DAP).
    let mut presum = judge.new_presum();
    // Each share kept, by fingerprint: a second UUID for one share is a replay.
    let mut kept_shares: HashMap<Fingerprint, Uuid> = HashMap::new();
    let mut packets = batch.packets::<J::Report>()?;
    judge_in_chunks(
        || next_packets(&mut packets),
        |p| match clock {
            Some(clock) => clock.time(|| judge.verify(p)),
            None => judge.verify(p),
        },
        |packet, result| {
            report.packets += 1;
            let uuid = J::report_id(packet);
            let result = match left_out.get(&uuid) {
                Some(reason) => Err(reason.clone()),
                // The same UUID twice is left to aggregate's UUID rules.
                None => result.and_then(|verified| {
                    keep_share(&mut kept_shares, verified.fingerprint, uuid).map(|()| verified)
                }),
            };
            // Duplicate UUIDs are kept: aggregate sees them listed twice and refuses
            // both, so intake needs no per-batch memory for them.
            if let Some(stash) = &mut stash {
                stash.push(uuid, result.as_ref().ok().map(|v| v.kept.as_slice()))?;
            }
            match result {
                Ok(verified) => {
                    // Exactly the reports the stash keeps: aggregate checks the count.
                    presum.add(verified.output)?;
                    let v = verified.record;
                    out.append(&v)?;
                    report.verified += 1;
                }
                Err(reason) => {
                    tracing::debug!(batch = %id, packet = %uuid, %reason, "packet left out of validation");
                    report.rejected.push(Rejected { uuid, reason });
                }
            }
            Ok(())
        },
        tick,
    )?;
    // The digest was checked when the stream ended; only now is anything written.
    warn_rejected(id, &report.rejected);
    if report.packets > 0 && report.verified == 0 {
        // A validation listing nothing would mark every packet invalid on both servers
        // for good; written nothing, the batch stays pending until the cause is fixed.
        anyhow::bail!(
            "{object}: every one of its {} packets was refused ({}); nothing written. {}",
            report.packets,
            reason_counts(&report.rejected).join(", "),
            likely_cause(&report.rejected)
        );
    }
    let horizon = TimeDelta::hours(i64::from(server.limits.replay_horizon_hours));
    let replays = record_and_check(server, id, &kept_shares, horizon)?;
    if !replays.is_empty() {
        return Ok(Pass::Replays(replays));
    }
    let header = |digest| judge.validation_header(digest);
    if let Some(stash) = stash {
        stash.finish(presum.trailer()?.as_deref())?;
    }
    // The peer's copy first: a batch counts as done once our own copy exists.
    out.finish(
        header,
        &server.signing_key,
        &[server.peer_outbox.as_ref(), server.own.as_ref()],
    )
    .with_context(|| format!("writing validation of {id}"))?;
    Ok(Pass::Written(report))
}
