//! The two rounds of a Poplar1 pass over one batch: what each writes (sealed states in
//! the server's own storage, signed verifier shares to both own storage and the peer's
//! inbox) and how the other steps read them back.

use super::{LeftOut, PassRun};
use crate::batch::{open_batch, BatchId, BatchWriter, OpenedBatch};
use crate::crypto::{PacketDigest, TrustSet};
use crate::dap::Role;
use crate::ids::ServerIndex;
use crate::stages::judges::{
    check_time_unit, join_kept, open_dap_ingestion, open_input_share, shares_by_report, split_kept,
    DapJudge, SharesByReport,
};
use crate::stages::replays::{fingerprint, keep_share, record_and_check, Fingerprint};
use crate::stages::{judge_in_chunks, next_packets, Rejected, Tick};
use crate::stash::{StashContext, StashReader, StashRecord, StashWriter};
use crate::store::{get_bytes, put_bytes, ObjectStore};
use crate::wire::{DapIngestionHeader, DapReportShare, DapVerifierShare, Poplar1RoundHeader};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::TimeDelta;
use std::collections::HashMap;
use uuid::Uuid;

/// A list of refused reports is some bytes per report; refuse an absurd one.
const MAX_REJECTED_BYTES: u64 = 1 << 30;

/// One round over one batch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundReport {
    pub batch: String,
    pub round: u8,
    pub reports: u64,
    /// Reports carried on to the next step.
    pub kept: u64,
    pub rejected: Vec<Rejected>,
}

/// What a round is writing over one batch.
struct RoundOutput {
    stash: StashWriter,
    out: BatchWriter<DapVerifierShare>,
    report: RoundReport,
}

impl RoundOutput {
    /// Takes one report's outcome, in batch order: its kept state and verifier share, or
    /// why it was refused (listed when `list`).
    fn take(
        &mut self,
        uuid: Uuid,
        result: Result<(Vec<u8>, Vec<u8>), String>,
        list: bool,
    ) -> Result<()> {
        self.report.reports += 1;
        match result {
            Ok((kept, verifier_share)) => {
                self.stash.push(uuid, Some(&kept))?;
                self.out.append(&DapVerifierShare {
                    report_id: uuid.as_bytes().to_vec(),
                    verifier_share,
                })?;
                self.report.kept += 1;
            }
            Err(reason) => {
                self.stash.push(uuid, None)?;
                if list {
                    self.report.rejected.push(Rejected { uuid, reason });
                }
            }
        }
        Ok(())
    }
}

/// Verifier shares of a batch's reports in one round, by report (Err: unusable), read as
/// aggregate reads its validations.
pub(super) type RoundShares = SharesByReport<Bytes>;

/// What a round makes of one report: the state kept (time first), its verifier share,
/// and (round one) the fingerprint of its opened share.
type Judged = Result<(Vec<u8>, Vec<u8>, Option<Fingerprint>), String>;

impl PassRun<'_> {
    /// The batch's ingestion header (signature and task checked).
    pub(super) fn ingestion(&self, id: &BatchId) -> Result<OpenedBatch<'_, DapIngestionHeader>> {
        Ok(open_dap_ingestion(self.server, self.dap, id)?.0)
    }

    pub(super) fn stash_context(
        &self,
        id: &BatchId,
        header: &DapIngestionHeader,
        round: u8,
    ) -> StashContext {
        StashContext::for_poplar1_round(
            id,
            self.server.index,
            header,
            (self.id.index, round, &self.pass_bytes),
            self.kept_lens[usize::from(round - 1)],
        )
    }

    fn round_header(
        &self,
        header: &DapIngestionHeader,
        round: u8,
        digest: Vec<u8>,
    ) -> Poplar1RoundHeader {
        Poplar1RoundHeader {
            batch_uuid: header.batch_uuid,
            name: header.name.clone(),
            task_id: header.task_id.clone(),
            pass_index: i32::try_from(self.id.index).unwrap_or(i32::MAX),
            round: i32::from(round),
            aggregation_parameter: self.pass_bytes.clone(),
            packet_file_digest: digest,
        }
    }

    /// Round one: records the pass, opens every report and evaluates it at the pass's
    /// prefixes. At pass 0, reports whose shares another batch keeps are refused as
    /// replays (the batch is then judged again without them, as intake does).
    pub(super) fn round_one(
        &self,
        id: &BatchId,
        left_out: &LeftOut,
        tick: Tick,
    ) -> Result<RoundReport> {
        self.ledger().admit(id, self.id.index, &self.pass)?;
        const TRIES: usize = 3;
        let batch = id.to_string();
        let mut left_out: HashMap<Uuid, String> = left_out
            .iter()
            .filter(|((b, _), _)| *b == batch)
            .map(|((_, uuid), reason)| (*uuid, reason.clone()))
            .collect();
        for _ in 0..TRIES {
            match self.try_round_one(id, &left_out, tick)? {
                Ok(report) => return Ok(report),
                Err(replays) => {
                    for r in replays {
                        tracing::warn!(batch = %id, report = %r.uuid, reason = %r.reason, "replayed report left out");
                        left_out.insert(r.uuid, r.reason);
                    }
                }
            }
        }
        bail!("{id}: other batches kept committing copies of its reports through {TRIES} tries; run again")
    }

    fn try_round_one(
        &self,
        id: &BatchId,
        left_out: &HashMap<Uuid, String>,
        tick: Tick,
    ) -> Result<Result<RoundReport, Vec<crate::stages::replays::Replay>>> {
        let server = self.server;
        let batch = self.ingestion(id)?;
        let header = batch.header.clone();
        let task = &self.dap.task;
        let first_pass = self.id.index == 0;
        let mut output = self.round_output(id, &header, 1)?;
        let mut kept_shares: HashMap<Fingerprint, Uuid> = HashMap::new();
        let judge = |share: &DapReportShare| -> Judged {
            let uuid = Uuid::from_slice(&share.report_id).unwrap_or_default();
            if let Some(reason) = left_out.get(&uuid) {
                return Err(reason.clone());
            }
            let (metadata, plaintext, start) =
                open_input_share(self.dap, &self.task_binding, share)?;
            let unit = task.time_unit(metadata.time);
            check_time_unit(unit, task.time_precision(), &self.id.window)?;
            let input_share = &plaintext[start..];
            let step = self
                .aggregator
                .start(
                    self.verify_key,
                    &self.pass,
                    &metadata.report_id.0,
                    &share.public_share,
                    input_share,
                )
                .map_err(|e| e.to_string())?;
            let kept = join_kept(unit, &step.state);
            let print = first_pass.then(|| fingerprint(input_share));
            Ok((kept, step.verifier_share, print))
        };
        let mut packets = batch.packets::<DapReportShare>()?;
        judge_in_chunks(
            || next_packets(&mut packets),
            judge,
            |share, result| {
                let uuid = Uuid::from_slice(&share.report_id).unwrap_or_default();
                let result = result.and_then(|(kept, verifier, print)| match print {
                    None => Ok((kept, verifier)),
                    Some(print) => {
                        keep_share(&mut kept_shares, print, uuid).map(|()| (kept, verifier))
                    }
                });
                output.take(uuid, result, true)
            },
            tick,
        )?;
        let report = &output.report;
        if first_pass && report.reports > 0 && report.kept == 0 {
            // Written, this would mark every report invalid for good on both servers.
            bail!(
                "{id}: every one of its {} reports was refused at pass 0 (first: {}); nothing written",
                report.reports,
                report.rejected.first().map_or("", |r| r.reason.as_str())
            );
        }
        if first_pass {
            let horizon = TimeDelta::hours(i64::from(server.limits.replay_horizon_hours));
            let replays = record_and_check(server, id, &kept_shares, horizon)?;
            if !replays.is_empty() {
                return Ok(Err(replays));
            }
        }
        Ok(Ok(self.commit_round(id, &header, output)?))
    }

    /// Round two: both servers' first verifier shares of each report into its sketch,
    /// and this server's answer.
    pub(super) fn round_two(&self, id: &BatchId, tick: Tick) -> Result<RoundReport> {
        let server = self.server;
        let header = self.ingestion(id)?.header;
        let (own, peer) = self.both_rounds(id, &header, 1)?;
        let mut stash_in = StashReader::open(
            server.own.as_ref(),
            &id.round_stash_name(server.index, self.id.index, 1),
            self.stash_key,
            &self.stash_context(id, &header, 1),
        )?;
        let mut output = self.round_output(id, &header, 2)?;
        let judge = |record: &StashRecord| -> Result<(Vec<u8>, Vec<u8>), String> {
            let (time, state) = split_kept(kept_of(record, 1)?)?;
            let shares = self.shares_of(&record.uuid, &own, &peer)?;
            let step = self
                .aggregator
                .second(&self.pass, state, shares)
                .map_err(|e| e.to_string())?;
            Ok((join_kept(time, &step.state), step.verifier_share))
        };
        judge_in_chunks(
            || Ok(stash_in.next_frame()?.unwrap_or_default()),
            judge,
            // Left out at round one: listed there already.
            |record, result| output.take(record.uuid, result, record.share.is_some()),
            tick,
        )?;
        self.commit_round(id, &header, output)
    }

    /// Where a round over the batch writes: a fresh sealed stash of states and a signed
    /// batch of verifier shares, both made visible by [`Self::commit_round`] only.
    fn round_output(
        &self,
        id: &BatchId,
        header: &DapIngestionHeader,
        round: u8,
    ) -> Result<RoundOutput> {
        let server = self.server;
        Ok(RoundOutput {
            stash: StashWriter::create(
                server.own.as_ref(),
                &id.round_stash_name(server.index, self.id.index, round),
                self.stash_key,
                &self.stash_context(id, header, round),
            )?,
            out: BatchWriter::single_object(
                id.names(self.round_kind(server.index, round)),
                PacketDigest::Sha256,
            )?,
            report: RoundReport {
                batch: id.to_string(),
                round,
                reports: 0,
                kept: 0,
                rejected: Vec::new(),
            },
        })
    }

    /// Ends a round: the list of refused reports, then the states, then the verifier
    /// shares (the peer's copy first): a round counts as done once its own shares exist.
    fn commit_round(
        &self,
        id: &BatchId,
        header: &DapIngestionHeader,
        output: RoundOutput,
    ) -> Result<RoundReport> {
        let server = self.server;
        let RoundOutput { stash, out, report } = output;
        let round = report.round;
        self.write_rejected(id, round, &report.rejected)?;
        stash.finish(None)?;
        out.finish(
            |digest| self.round_header(header, round, digest),
            &server.signing_key,
            &[server.peer_outbox.as_ref(), server.own.as_ref()],
        )
        .with_context(|| format!("writing round {round} of pass {} over {id}", self.id.index))?;
        log_round(id, &report);
        Ok(report)
    }

    /// Keeps the reports a round refused, with the reasons, for the pass's sum part.
    fn write_rejected(&self, id: &BatchId, round: u8, rejected: &[Rejected]) -> Result<()> {
        let name = id.round_rejected_name(self.server.index, self.id.index, round);
        put_bytes(
            self.server.own.as_ref(),
            &name,
            &serde_json::to_vec(rejected)?,
        )?;
        Ok(())
    }

    /// The reports this server refused in either round over the batch, with the round
    /// and reason.
    pub(super) fn rejected(&self, id: &BatchId) -> Result<HashMap<Uuid, String>> {
        let mut reasons = HashMap::new();
        for round in [2, 1] {
            let name = id.round_rejected_name(self.server.index, self.id.index, round);
            let object = self.server.own.describe(&name);
            let bytes = get_bytes(self.server.own.as_ref(), &name, MAX_REJECTED_BYTES)?;
            let list: Vec<Rejected> = serde_json::from_slice(&bytes)
                .with_context(|| format!("{object}: not a list of refused reports"))?;
            for r in list {
                reasons.insert(r.uuid, format!("round {round}: {}", r.reason));
            }
        }
        Ok(reasons)
    }

    /// Both servers' verifier shares of a round over the batch (own, peer).
    pub(super) fn both_rounds(
        &self,
        id: &BatchId,
        header: &DapIngestionHeader,
        round: u8,
    ) -> Result<(RoundShares, RoundShares)> {
        let server = self.server;
        let (own, peer) = rayon::join(
            || {
                self.read_round(
                    server.own.as_ref(),
                    id,
                    header,
                    (server.index, round),
                    &server.own_trust,
                )
            },
            || {
                self.read_round(
                    server.peer_inbox.as_ref(),
                    id,
                    header,
                    (server.index.peer(), round),
                    &server.peer_trust,
                )
            },
        );
        Ok((own?, peer?))
    }

    /// `from`'s verifier shares of `round`: its header must name this batch, task, pass
    /// and round.
    fn read_round(
        &self,
        store: &dyn ObjectStore,
        id: &BatchId,
        header: &DapIngestionHeader,
        (from, round): (ServerIndex, u8),
        trust: &TrustSet,
    ) -> Result<RoundShares> {
        let names = id.names(self.round_kind(from, round));
        let object = store.describe(&names.signature);
        let batch = open_batch::<Poplar1RoundHeader>(
            store,
            &names,
            trust,
            self.server.limits.max_object_bytes,
        )
        .with_context(|| {
            format!(
                "round {round} of pass {} over {id} by server {from}",
                self.id.index
            )
        })?;
        let expected = self.round_header(header, round, batch.header.packet_file_digest.clone());
        if batch.header != expected {
            bail!(
                "{object}: its header is not of this batch, task, pass {} and round {round}",
                self.id.index
            );
        }
        shares_by_report::<DapJudge, _>(&batch, &object)
    }

    /// A report's verifier shares from both servers, leader's first.
    pub(super) fn shares_of<'m>(
        &self,
        uuid: &Uuid,
        own: &'m RoundShares,
        peer: &'m RoundShares,
    ) -> Result<[&'m [u8]; 2], String> {
        let lookup = |map: &'m RoundShares, whose: String| match map.get(uuid) {
            Some(Ok(share)) => Ok(share.as_ref()),
            Some(Err(reason)) => Err(reason.clone()),
            None => Err(format!("no verifier share from {whose}")),
        };
        let own = lookup(own, format!("this server ({})", self.server.index))?;
        let peer = lookup(peer, format!("server {}", self.server.index.peer()))?;
        Ok(match self.dap.role {
            Role::Leader => [own, peer],
            Role::Helper => [peer, own],
        })
    }
}

/// What a round kept of a report, or why it has nothing.
pub(super) fn kept_of(record: &StashRecord, round: u8) -> Result<&[u8], String> {
    record
        .share
        .as_deref()
        .ok_or_else(|| format!("not verified by this server at round {round}"))
}

fn log_round(id: &BatchId, report: &RoundReport) {
    tracing::info!(
        batch = %id,
        round = report.round,
        reports = report.reports,
        kept = report.kept,
        rejected = report.rejected.len(),
        "round written"
    );
    if let Some(first) = report.rejected.first() {
        tracing::warn!(batch = %id, round = report.round, first = %first.reason, "{} reports left out", report.rejected.len());
    }
}
