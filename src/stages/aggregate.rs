//! Aggregate: for a window, join each ingestion batch with this server's own validation
//! and the peer's, decide each report from the two verifier shares, and add the valid
//! reports' output shares. It reads its own validation instead of verifying proofs again,
//! and takes what it needs of each report from the stash intake kept; only without a
//! stash (no stash key, or batches validated elsewhere) does it open reports again. A DAP
//! stash ends with the sum of every kept report's output share: aggregate adds that and
//! takes out the reports it refuses, opening those again.
//! Written once for every task kind; the per-report decision and the sum part's record
//! are the kind's ([`super::judges::SumJudge`]).

use super::judges::{ingestion_kind, DapJudge, IngestionKind, Prio2Judge, SumJudge};
use super::judges::{shares_by_report, Presum, ReportJudge, RunSum, SharePacker, SharesByReport};
use super::{judge_in_chunks, next_packets, Rejected, Tick};
use crate::batch::{open_batch, BatchId, BatchKind, Window};
use crate::config::Server;
use crate::ids::{ReportIdSet, RunId};
use crate::stash::{StashReader, StashRecord};
use anyhow::{bail, Context, Result};
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct AggregateReport {
    pub sum_part: String,
    pub batches: Vec<String>,
    pub packets: u64,
    pub valid: u64,
    /// Packets judged by their proof, valid or not: the sum part's
    /// `total_individual_clients`, counted as the original aggregator counts it.
    pub judged: u64,
    pub invalid: Vec<Rejected>,
    /// This server's share of the sum (ENPA); empty for DAP, whose aggregate share is
    /// sealed to the collector.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sum: Vec<u32>,
    /// UUIDs of the packets counted (the run's contribution to the replay check).
    #[serde(skip)]
    pub counted: Vec<Uuid>,
}

/// A run with fewer valid clients than the server's floor: nothing was written, so
/// nothing was revealed, and the run may be decided again with more batches.
#[derive(Debug, thiserror::Error)]
#[error(
    "{run}: {valid} valid clients, fewer than the minimum of {min} ({why}): no sum part written"
)]
pub struct TooFewClients {
    pub run: String,
    pub valid: u64,
    pub min: u64,
    /// Which setting the minimum comes from.
    pub why: &'static str,
}

/// Ingestion batches of an aggregation inside a window, in time then UUID order.
pub fn batches_in_window(
    server: &Server,
    aggregation: &str,
    window: &Window,
) -> Result<Vec<BatchId>> {
    let mut ids = super::ingestion_batches(server, aggregation)?;
    ids.retain(|id| window.contains(id.time));
    Ok(ids)
}

/// Reads a validation batch into a map from report to verifier share.
fn read_validation<'s, J: SumJudge<'s>>(
    judge: &J,
    store: &dyn crate::store::ObjectStore,
    id: &BatchId,
    from: crate::ids::ServerIndex,
    trust: &crate::crypto::TrustSet,
    max_bytes: u64,
) -> Result<SharesByReport<J::Share>> {
    let names = id.names(BatchKind::Validation(from));
    let object = store.describe(&names.signature);
    let batch = open_batch::<J::ValidationHeader>(store, &names, trust, max_bytes)
        .with_context(|| format!("validation of {id} by server {from}"))?;
    judge.check_validation(&batch.header, &object)?;
    shares_by_report::<J, _>(&batch, &object)
}

/// What happened to one packet in aggregate.
enum Outcome<O> {
    Valid(O),
    Invalid {
        reason: String,
        /// Both verifier shares were there, so the packet was judged (and failed): the
        /// original aggregator counts such a packet in `total_individual_clients`.
        judged: bool,
    },
}

impl<O> Outcome<O> {
    fn invalid(reason: impl Into<String>, judged: bool) -> Self {
        Outcome::Invalid {
            reason: reason.into(),
            judged,
        }
    }

    /// Ok(share) goes into the sum; an error after both verifier shares were found is a
    /// judged packet.
    fn judged(share: Result<O, String>) -> Self {
        match share {
            Ok(s) => Outcome::Valid(s),
            Err(reason) => Outcome::invalid(reason, true),
        }
    }
}

/// Both servers' verifier shares of a report, or the outcome (not judged) if either is
/// missing or unusable.
fn both_shares<'v, S, O>(
    uuid: &Uuid,
    own: &'v SharesByReport<S>,
    peer: &'v SharesByReport<S>,
) -> Result<(&'v S, &'v S), Outcome<O>> {
    let lookup = |map: &'v SharesByReport<S>, whose: &str| match map.get(uuid) {
        None => Err(Outcome::invalid(format!("no {whose} validation"), false)),
        Some(Err(e)) => Err(Outcome::invalid(format!("{whose} validation: {e}"), false)),
        Some(Ok(v)) => Ok(v),
    };
    Ok((lookup(own, "own")?, lookup(peer, "peer")?))
}

/// The shares and window a batch's reports are decided against.
struct Against<'a, S> {
    own: &'a SharesByReport<S>,
    peer: &'a SharesByReport<S>,
    window: &'a Window,
}

/// With a stash: the output share comes from what intake kept.
fn judge_kept<'s, J: SumJudge<'s>>(
    judge: &J,
    record: &StashRecord,
    by: &Against<J::Share>,
) -> Outcome<J::Output> {
    let Some(kept) = &record.share else {
        return Outcome::invalid("left out at intake (no own validation)", false);
    };
    if let Err(reason) = judge.admit(kept, by.window) {
        return Outcome::invalid(reason, false);
    }
    match both_shares(&record.uuid, by.own, by.peer) {
        Err(outcome) => outcome,
        Ok((own, peer)) => Outcome::judged(judge.finish(kept, own, peer)),
    }
}

/// Without a stash: the report is opened and verified again, and its verifier share must
/// be the one intake recorded: a packet file re-signed since intake (same ids, other
/// payloads) is not summed under old verdicts.
fn judge_again<'s, J: SumJudge<'s>>(
    judge: &J,
    report: &J::Report,
    by: &Against<J::Share>,
) -> Outcome<J::Output> {
    let uuid = J::report_id(report);
    let (own, peer) = match both_shares(&uuid, by.own, by.peer) {
        Err(outcome) => return outcome,
        Ok(shares) => shares,
    };
    let verified = match judge.verify(report) {
        Ok(v) => v,
        Err(reason) => return Outcome::invalid(reason, true),
    };
    if let Err(reason) = judge.admit(&verified.kept, by.window) {
        return Outcome::invalid(reason, false);
    }
    let (_, now) = J::share_of(verified.record, &mut SharePacker::default());
    if now.as_ref().ok() != Some(own) {
        return Outcome::invalid("packet differs from the one validated at intake", true);
    }
    Outcome::judged(judge.finish_fresh(&verified.kept, verified.output, own, peer))
}

/// The sum of one batch, kept apart until its packet file's digest has been checked.
struct BatchSum<S> {
    sum: S,
    packets: u64,
    /// Packets judged by their proof, valid or not (the original's client count).
    judged: u64,
    invalid: Vec<Rejected>,
    counted: Vec<Uuid>,
    /// Every packet UUID of the batch, to find validations listing packets it lacks.
    uuids: ReportIdSet,
}

/// Packet UUIDs a run must not count: those of earlier runs of the aggregation (kept by
/// the server), and those already met in this run.
struct Seen<'a> {
    before: &'a ReportIdSet,
    this_run: ReportIdSet,
}

impl<S> BatchSum<S> {
    /// Counts one packet; a UUID counted in an earlier run (a replay) or seen before in
    /// this run is refused whatever its proof. Whether it was counted.
    fn account<O>(&mut self, seen: &mut Seen, uuid: Uuid, outcome: Outcome<O>) -> Result<bool>
    where
        S: RunSum<O>,
    {
        self.packets += 1;
        self.uuids.insert(uuid);
        let outcome = if seen.before.contains(&uuid) {
            Outcome::invalid(
                "replayed: counted in an earlier run of this aggregation",
                false,
            )
        } else if !seen.this_run.insert(uuid) {
            Outcome::invalid("packet uuid already seen in this run", false)
        } else {
            outcome
        };
        match outcome {
            Outcome::Valid(share) => {
                self.sum.add(uuid, share)?;
                self.counted.push(uuid);
                self.judged += 1;
                Ok(true)
            }
            Outcome::Invalid { reason, judged } => {
                self.judged += u64::from(judged);
                self.invalid.push(Rejected { uuid, reason });
                Ok(false)
            }
        }
    }
}

fn sum_batch<'s, J: SumJudge<'s>>(
    server: &'s Server,
    id: &BatchId,
    window: &Window,
    first: &mut Option<J>,
    seen: &mut Seen,
    tick: Tick,
) -> Result<(BatchSum<J::Sum>, J)> {
    let (batch, judge, object) = J::open(server, id)?;
    if let Some(first) = first {
        judge
            .same_task_as(first)
            .map_err(|e| anyhow::anyhow!("{object}: {e}"))?;
    }
    // Both validations at once: decoding them is most of aggregate's time for small
    // reports (a Prio3 histogram of 16 buckets finishes in 2 µs).
    let (own, peer) = rayon::join(
        || {
            read_validation(
                &judge,
                server.own.as_ref(),
                id,
                server.index,
                &server.own_trust,
                server.limits.max_object_bytes,
            )
        },
        || {
            read_validation(
                &judge,
                server.peer_inbox.as_ref(),
                id,
                server.index.peer(),
                &server.peer_trust,
                server.limits.max_object_bytes,
            )
        },
    );
    let (own, peer) = (own?, peer?);
    let by = Against {
        own: &own,
        peer: &peer,
        window,
    };
    let mut sum = BatchSum {
        sum: judge.new_sum(),
        packets: 0,
        judged: 0,
        invalid: Vec::new(),
        counted: Vec::new(),
        uuids: ReportIdSet::default(),
    };
    match open_stash(server, id, &judge)? {
        Some(mut stash) => {
            // Reports the stash keeps, and those of them refused here (by position in
            // the batch, with what intake kept).
            let (mut position, mut kept) = (0u64, 0u64);
            let mut refused: Vec<(u64, Vec<u8>)> = Vec::new();
            judge_in_chunks(
                // An empty frame (a last one may be) is not the end: only None is.
                || loop {
                    match stash.next_frame()? {
                        Some(records) if records.is_empty() => continue,
                        records => return Ok(records.unwrap_or_default()),
                    }
                },
                |r| judge_kept(&judge, r, &by),
                |record, outcome| {
                    let counted = sum.account(seen, record.uuid, outcome)?;
                    if let Some(share) = &record.share {
                        kept += 1;
                        if !counted {
                            refused.push((position, share.clone()));
                        }
                    }
                    position += 1;
                    Ok(())
                },
                tick,
            )?;
            let trailer = stash.trailer();
            let taken_back = match trailer {
                Some(_) if !refused.is_empty() => outputs_again(&judge, &batch, &refused)?,
                _ => judge.new_presum(),
            };
            judge.settle(&mut sum.sum, trailer, taken_back, kept)?;
        }
        None => {
            let mut packets = batch.packets::<J::Report>()?;
            judge_in_chunks(
                || next_packets(&mut packets),
                |p| judge_again(&judge, p, &by),
                |packet, outcome| {
                    sum.account(seen, J::report_id(packet), outcome)?;
                    Ok(())
                },
                tick,
            )?;
        }
    }
    for (map, from, store) in [
        (&own, server.index, server.own.as_ref()),
        (&peer, server.index.peer(), server.peer_inbox.as_ref()),
    ] {
        let extra: Vec<&Uuid> = map.keys().filter(|u| !sum.uuids.contains(u)).collect();
        if let Some(first) = extra.first() {
            bail!(
                "{}: lists {} packet(s) the ingestion batch does not hold, e.g. {first}",
                store.describe(&id.names(BatchKind::Validation(from)).signature),
                extra.len()
            );
        }
    }
    Ok((sum, judge))
}

/// The output shares of the reports at `refused` (positions in the batch, ascending, with
/// what intake kept of each), from opening and verifying them again: what a DAP batch's
/// presum must give back. Each must verify to what intake kept, or the batch is not the
/// one intake saw. The whole batch is read, so its digest is checked.
fn outputs_again<'s, J: SumJudge<'s>>(
    judge: &J,
    batch: &crate::batch::OpenedBatch<'s, J::Header>,
    refused: &[(u64, Vec<u8>)],
) -> Result<J::Presum> {
    use rayon::prelude::*;
    let mut sum = judge.new_presum();
    let mut packets = batch.packets::<J::Report>()?;
    let (mut position, mut wanted) = (0u64, refused.iter().peekable());
    loop {
        let chunk = next_packets(&mut packets)?;
        if chunk.is_empty() {
            break;
        }
        let mut picked = Vec::new();
        for packet in &chunk {
            if let Some((_, kept)) = wanted.next_if(|(at, _)| *at == position) {
                picked.push((packet, kept));
            }
            position += 1;
        }
        let outputs: Vec<Result<_>> = picked
            .par_iter()
            .map(|(packet, kept)| {
                let uuid = J::report_id(packet);
                match judge.verify(packet) {
                    Ok(v) if &v.kept == *kept => Ok(v.output),
                    Ok(_) => bail!("report {uuid} verifies to other than intake kept: the batch changed since intake"),
                    Err(e) => bail!("report {uuid} verified at intake but not now: {e}"),
                }
            })
            .collect();
        for output in outputs {
            sum.add(output?)?;
        }
    }
    if let Some((at, _)) = wanted.next() {
        bail!("the batch ends before report {at}, which intake kept");
    }
    Ok(sum)
}

/// This server's share stash of a batch, if it has a stash key and intake kept one.
fn open_stash<'s, J: ReportJudge<'s>>(
    server: &Server,
    id: &BatchId,
    judge: &J,
) -> Result<Option<StashReader>> {
    let Some(key) = &server.stash_key else {
        return Ok(None);
    };
    let name = id.stash_name(server.index);
    if server.own.head(&name)?.is_none() {
        return Ok(None);
    }
    let context = judge.stash_context(id);
    Ok(Some(StashReader::open(
        server.own.as_ref(),
        &name,
        key,
        &context,
    )?))
}

/// Aggregates every batch of a window, as its regular run, without asking server 0 which
/// batches to sum (for a single operator and for checks; scheduled jobs use `runs`).
pub fn aggregate(
    server: &Server,
    aggregation: &str,
    window: &Window,
    tick: Tick,
) -> Result<AggregateReport> {
    let ids = batches_in_window(server, aggregation, window)?;
    let run = RunId::new(aggregation, *window, 0)?;
    aggregate_batches(server, &run, &ids, &ReportIdSet::default(), tick)
}

/// Sums the given batches of a run and writes the signed sum part and the invalid-UUID
/// file. Every batch needs both validations: a missing one fails the run, naming it.
/// Packets in `counted_before` (earlier runs) are refused as replays. With fewer valid
/// clients than the server's `min_clients` (or a DAP task's `min_batch_size`), nothing
/// is written and the run fails. A run's batches are all of one task kind.
pub fn aggregate_batches(
    server: &Server,
    run: &RunId,
    ids: &[BatchId],
    counted_before: &ReportIdSet,
    tick: Tick,
) -> Result<AggregateReport> {
    let Some(first) = ids.first() else {
        bail!(
            "no ingestion batches of {} in window {}",
            run.aggregation,
            run.window.name()
        );
    };
    match ingestion_kind(server, first)? {
        IngestionKind::Prio2 => aggregate_of::<Prio2Judge>(server, run, ids, counted_before, tick),
        IngestionKind::Dap => aggregate_of::<DapJudge>(server, run, ids, counted_before, tick),
    }
}

/// What a run came to, for the task kind to write as its sum part.
pub(crate) struct RunTotals<S> {
    pub sum: S,
    pub packets: u64,
    pub judged: u64,
    pub invalid: Vec<Rejected>,
    pub counted: Vec<Uuid>,
}

fn aggregate_of<'s, J: SumJudge<'s>>(
    server: &'s Server,
    run: &RunId,
    ids: &[BatchId],
    counted_before: &ReportIdSet,
    tick: Tick,
) -> Result<AggregateReport> {
    let mut first: Option<J> = None;
    let mut seen = Seen {
        before: counted_before,
        this_run: ReportIdSet::default(),
    };
    let mut totals: Option<RunTotals<J::Sum>> = None;
    for id in ids {
        let (s, judge) = sum_batch(server, id, &run.window, &mut first, &mut seen, tick)
            .with_context(|| format!("aggregating batch {id}"))?;
        match &mut totals {
            Some(t) => {
                t.packets += s.packets;
                t.judged += s.judged;
                t.invalid.extend(s.invalid);
                t.counted.extend(s.counted);
                t.sum.merge(s.sum)?;
            }
            None => {
                totals = Some(RunTotals {
                    sum: s.sum,
                    packets: s.packets,
                    judged: s.judged,
                    invalid: s.invalid,
                    counted: s.counted,
                })
            }
        }
        first.get_or_insert(judge);
    }
    let (Some(judge), Some(totals)) = (first, totals) else {
        bail!("no batches were summed");
    };
    for r in &totals.invalid {
        tracing::info!(packet = %r.uuid, reason = %r.reason, "invalid packet");
    }
    let (min, why) = judge.min_clients();
    let valid = totals.sum.count();
    if valid < min {
        return Err(TooFewClients {
            run: run.to_string(),
            valid,
            min,
            why,
        }
        .into());
    }
    let (sum_part, sum) = judge.write_sum_part(run, ids, &totals)?;
    Ok(AggregateReport {
        sum_part,
        batches: ids.iter().map(|id| id.to_string()).collect(),
        packets: totals.packets,
        valid,
        judged: totals.judged,
        invalid: totals.invalid,
        sum,
        counted: totals.counted,
    })
}
