//! DAP-18 batches: each report's input share, opened with the server's HPKE key, starts
//! Prio3 verification with the verify key both servers share (nonce = report id).
//! Intake also finishes the report's output share provisionally and sums it into the
//! batch's presum, keeping per report only its time and the seed its verifier message
//! must equal; aggregate decides each report from that and both verifier shares, and
//! takes the refused reports' output shares back out of the presum.

use super::{Presum, ReportJudge, RunSum, SharePacker, SumJudge, Verified, VerifiedBy};
use crate::batch::{
    open_batch, write_sum_part, BatchId, BatchKind, OpenedBatch, SumPartBinding, Window,
};
use crate::config::{dap::ServerDap, Server};
use crate::crypto::PacketDigest;
use crate::dap::aggregate_share::{
    seal_aggregate_share, AggregateShareAad, BatchInterval, ReportIdChecksum,
};
use crate::dap::messages::{HpkeCiphertextRef, InputShareAad, ReportMetadata};
use crate::dap::prio3::{AggregateSum, OutputShare, TaskAggregator, TaskVdaf};
use crate::dap::{ReportId, Role, VerifyInput};
use crate::ids::RunId;
use crate::stages::aggregate::RunTotals;
use crate::stages::checks::check_batch_names;
use crate::stages::dp_ledger::release_noise;
use crate::stages::replays::fingerprint;
use crate::stash::StashContext;
use crate::wire::{
    DapIngestionHeader, DapReportShare, DapSumPart, DapValidationHeader, DapVerifierShare,
};
use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use uuid::Uuid;

/// The report time's bytes at the start of what intake keeps.
pub(crate) const TIME_LEN: usize = 8;

/// DAP: one batch of a task this server takes part in.
pub(crate) struct DapJudge<'s> {
    server: &'s Server,
    dap: &'s ServerDap,
    aggregator: TaskAggregator,
    /// What of the task every report's HPKE AAD binds (DAP-18: its configuration).
    task_binding: Vec<u8>,
    /// Bytes kept per report: its time unit (u64 BE, for the window check) and the check
    /// ([`TaskAggregator::check_len`]).
    kept_len: usize,
    header: DapIngestionHeader,
}

impl<'s> DapJudge<'s> {
    /// The server's DAP task, or why it cannot take a DAP batch.
    fn task_of(server: &'s Server, object: &str) -> Result<&'s ServerDap> {
        server.dap.as_ref().ok_or_else(|| {
            anyhow!(
                "{object}: a DAP ingestion batch, but this server's config has no [dap] section (the task it takes part in)"
            )
        })
    }
}

impl<'s> ReportJudge<'s> for DapJudge<'s> {
    type Header = DapIngestionHeader;
    type Report = DapReportShare;
    type Verifier = DapVerifierShare;
    type ValidationHeader = DapValidationHeader;
    type Presum = DapPresum;
    /// BLAKE3: a validation of small reports is ~275 bytes a report, and SHA-256 of both
    /// servers' validations was 8% of aggregate's time at histogram 16.
    const VALIDATION_DIGEST: PacketDigest = PacketDigest::Blake3;

    fn open(
        server: &'s Server,
        id: &BatchId,
    ) -> Result<(OpenedBatch<'s, DapIngestionHeader>, Self, String)> {
        let object = server
            .ingestion
            .describe(&id.names(BatchKind::Ingestion).header);
        let dap = Self::task_of(server, &object)?;
        let (batch, object) = open_dap_ingestion(server, dap, id)?;
        let task = |e| anyhow!("dap.task: {e}");
        let vdaf = TaskVdaf::new(&dap.task).map_err(task)?;
        let aggregator = vdaf.aggregator(dap.role.agg_id()).map_err(task)?;
        let kept_len = TIME_LEN + aggregator.check_len();
        let header = batch.header.clone();
        let judge = DapJudge {
            server,
            dap,
            task_binding: dap.task.aad_task_binding(),
            aggregator,
            kept_len,
            header,
        };
        Ok((batch, judge, object))
    }

    fn report_id(share: &DapReportShare) -> Uuid {
        // Decoding checked the length; a short one cannot reach here.
        Uuid::from_slice(&share.report_id).unwrap_or_default()
    }

    fn verify(&self, share: &DapReportShare) -> Result<VerifiedBy<'s, Self>, String> {
        let (metadata, plaintext, start) = open_input_share(self.dap, &self.task_binding, share)?;
        let input_share = &plaintext[start..];
        let nonce = metadata.report_id.0;
        let input = VerifyInput {
            agg_id: self.dap.role.agg_id(),
            nonce: &nonce,
            public_share: &share.public_share,
            input_share,
        };
        let started = self
            .aggregator
            .start(self.dap.verify_key.as_bytes(), &input)
            .map_err(|e| e.to_string())?;
        let kept = join_kept(self.dap.task.time_unit(metadata.time), &started.check);
        Ok(Verified {
            record: DapVerifierShare {
                report_id: share.report_id.clone(),
                verifier_share: started.verifier_share,
            },
            kept,
            fingerprint: fingerprint(input_share),
            output: started.output,
        })
    }

    fn new_presum(&self) -> DapPresum {
        DapPresum {
            sum: self.aggregator.new_sum(),
            count: 0,
        }
    }

    fn stash_context(&self, id: &BatchId) -> StashContext {
        StashContext::for_dap_batch(id, self.server.index, self.kept_len, &self.header)
    }

    fn validation_header(&self, digest: Vec<u8>) -> DapValidationHeader {
        DapValidationHeader {
            batch_uuid: self.header.batch_uuid,
            name: self.header.name.clone(),
            task_id: self.header.task_id.clone(),
            packet_file_digest: digest,
            packet_file_digest_algorithm: Self::VALIDATION_DIGEST,
        }
    }
}

/// Opens this server's input share of a report (HPKE, with DAP's info and AAD): the
/// report's metadata and the plaintext, whose share starts at the index returned.
pub(crate) fn open_input_share(
    dap: &ServerDap,
    task_binding: &[u8],
    share: &DapReportShare,
) -> Result<(ReportMetadata, Vec<u8>, usize), String> {
    let (metadata, ciphertext) = parts_of(share)?;
    let aad = InputShareAad {
        version: dap.task.version(),
        task_id: dap.task.task_id(),
        task_binding,
        metadata: &metadata,
        public_share: &share.public_share,
    };
    let (plaintext, start) = dap
        .hpke
        .open_input_share_in_place(dap.role, ciphertext, &aad)
        .map_err(|e| e.to_string())?;
    Ok((metadata, plaintext, start))
}

/// A batch record's report metadata and its ciphertext, in DAP's types.
fn parts_of(share: &DapReportShare) -> Result<(ReportMetadata, HpkeCiphertextRef<'_>), String> {
    let report_id: [u8; 16] = share
        .report_id
        .as_slice()
        .try_into()
        .map_err(|_| "report id is not 16 bytes".to_string())?;
    let time = u64::try_from(share.time).map_err(|_| format!("time {} is negative", share.time))?;
    let config_id = u8::try_from(share.config_id)
        .map_err(|_| format!("HPKE config id {} is not a u8", share.config_id))?;
    Ok((
        ReportMetadata {
            report_id: ReportId(report_id),
            time,
        },
        HpkeCiphertextRef {
            config_id,
            enc: &share.enc,
            payload: &share.payload,
        },
    ))
}

/// This server's DAP ingestion batch, opened: signature and header checked against the
/// batch's name and the server's task. With the batch's description for messages.
pub(crate) fn open_dap_ingestion<'s>(
    server: &'s Server,
    dap: &ServerDap,
    id: &BatchId,
) -> Result<(OpenedBatch<'s, DapIngestionHeader>, String)> {
    let names = id.names(BatchKind::Ingestion);
    let object = server.ingestion.describe(&names.header);
    let batch = open_batch::<DapIngestionHeader>(
        server.ingestion.as_ref(),
        &names,
        &server.ingestor_trust,
        server.limits.max_object_bytes,
    )?;
    check_dap_header(id, &batch.header, dap, &object)?;
    Ok((batch, object))
}

/// The fewest valid reports a DAP sum part may reveal: the server's floor or the task's
/// minimum batch size, whichever is larger; with the setting it comes from.
pub(crate) fn min_reports(server: &Server, dap: &ServerDap) -> (u64, &'static str) {
    let (limit, task) = (server.limits.min_clients, dap.task.params().min_batch_size);
    match task > limit {
        true => (task, "the task's min_batch_size"),
        false => (limit, "limits.min_clients"),
    }
}

/// A DAP ingestion header must name the batch it is stored as and this server's task.
fn check_dap_header(
    id: &BatchId,
    h: &DapIngestionHeader,
    dap: &ServerDap,
    object: &str,
) -> Result<()> {
    check_batch_names(id, h.batch_uuid, &h.name, object)?;
    if h.task_id != dap.task.task_id().0 {
        bail!(
            "{object}: a batch of DAP task {}, but this server's task (dap.task) is {}",
            crate::dap::TaskId(h.task_id.as_slice().try_into().unwrap_or([0; 32])).to_base64url(),
            dap.task.task_id().to_base64url()
        );
    }
    Ok(())
}

impl<'s> SumJudge<'s> for DapJudge<'s> {
    type Share = Bytes;
    type Output = DapOutput;
    type Sum = DapSum;

    fn check_validation(&self, v: &DapValidationHeader, object: &str) -> Result<()> {
        let h = &self.header;
        let mut diffs = Vec::new();
        if v.batch_uuid != h.batch_uuid {
            diffs.push(format!("batch_uuid {} vs {}", v.batch_uuid, h.batch_uuid));
        }
        if v.name != h.name {
            diffs.push(format!("name {:?} vs {:?}", v.name, h.name));
        }
        if v.task_id != h.task_id {
            diffs.push("task_id".to_string());
        }
        if !diffs.is_empty() {
            bail!(
                "{object}: validation header disagrees with the ingestion header: {}",
                diffs.join(", ")
            );
        }
        Ok(())
    }

    fn share_of(
        record: DapVerifierShare,
        packer: &mut SharePacker,
    ) -> (Uuid, Result<Bytes, String>) {
        let uuid = Uuid::from_slice(&record.report_id).unwrap_or_default();
        (uuid, Ok(packer.pack(&record.verifier_share)))
    }

    fn same_task_as(&self, first: &Self) -> Result<(), String> {
        match self.header.task_id == first.header.task_id {
            true => Ok(()),
            false => Err("a batch of another DAP task than the run's first batch".into()),
        }
    }

    fn admit(&self, kept: &[u8], window: &Window) -> Result<(), String> {
        let (time, _) = split_kept(kept)?;
        check_time_unit(time, self.dap.task.time_precision(), window)
    }

    fn finish(&self, kept: &[u8], own: &Bytes, peer: &Bytes) -> Result<DapOutput, String> {
        self.decide(kept, own, peer)?;
        Ok(DapOutput::InPresum)
    }

    fn finish_fresh(
        &self,
        kept: &[u8],
        output: OutputShare,
        own: &Bytes,
        peer: &Bytes,
    ) -> Result<DapOutput, String> {
        self.decide(kept, own, peer)?;
        Ok(DapOutput::Share(output))
    }

    fn settle(
        &self,
        sum: &mut DapSum,
        trailer: Option<&[u8]>,
        refused: DapPresum,
        kept: u64,
    ) -> Result<()> {
        let Some((count, presum)) = trailer.and_then(|t| t.split_first_chunk::<8>()) else {
            bail!("the stash has no sum of its reports' output shares (written by an older divvi? remove it and aggregate opens the batch again)");
        };
        let count = u64::from_be_bytes(*count);
        if count != kept {
            bail!("the stash's sum is of {count} reports, but it keeps {kept}");
        }
        let mut presum = self.aggregator.decode_sum(presum)?;
        presum.subtract(&refused.sum)?;
        sum.sum.merge(&presum)?;
        Ok(())
    }

    fn new_sum(&self) -> DapSum {
        DapSum {
            sum: self.aggregator.new_sum(),
            count: 0,
        }
    }

    fn min_clients(&self) -> (u64, &'static str) {
        min_reports(self.server, self.dap)
    }

    fn write_sum_part(
        &self,
        run: &RunId,
        ids: &[BatchId],
        totals: &RunTotals<DapSum>,
    ) -> Result<(String, Vec<u32>)> {
        let (server, task, window) = (self.server, &self.dap.task, &run.window);
        let interval = window_interval(window, task.time_precision())?;
        let task_binding = task.aad_task_binding();
        let aad = AggregateShareAad::for_task(task, &task_binding, interval);
        let part = run.sum_part(&server.instance, server.index);
        // DP noise, claimed in the ledger first; drawn from a seed of this release (the
        // part's name), so a rerun adds the same noise.
        let mut share = totals.sum.sum.clone();
        let release = part.names().header;
        let noise = release_noise(server, &run.aggregation, &release, share.len())?;
        if let Some(noise) = noise {
            share.add_noise(&noise)?;
        }
        let collector = &task.params().collector_hpke_config;
        let sealed = seal_aggregate_share(collector, self.dap.role, &aad, &share.encode()?)?;
        let mut checksum = ReportIdChecksum::new();
        for report in &totals.counted {
            checksum.add(&ReportId(report.into_bytes()));
        }
        let record = DapSumPart {
            batch_uuids: ids.iter().map(|id| id.uuid).collect(),
            name: run.aggregation.clone(),
            task_id: task.task_id().0.to_vec(),
            interval_start: i64::try_from(interval.start)?,
            interval_duration: i64::try_from(interval.duration)?,
            report_count: i64::try_from(totals.sum.count())?,
            checksum: checksum.as_bytes().to_vec(),
            collector_config_id: i32::from(sealed.config_id),
            encrypted_aggregate_share_enc: sealed.enc,
            encrypted_aggregate_share_payload: sealed.payload,
            aggregation_start_time: window.start.timestamp_millis(),
            aggregation_end_time: window.end.timestamp_millis(),
            packet_file_digest: Vec::new(), // set by write_sum_part
        };
        let binding = SumPartBinding {
            instance: server.instance.clone(),
            run: run.run,
            server: server.index,
            valid_clients: totals.sum.count(),
        };
        let invalid: Vec<Uuid> = totals.invalid.iter().map(|r| r.uuid).collect();
        let name = write_sum_part(
            server.sum_parts.as_ref(),
            &part,
            record,
            &binding,
            &invalid,
            &server.signing_key,
        )?;
        // The server's share is sealed to the collector: nothing to show here.
        Ok((name, Vec::new()))
    }
}

/// A report whose time unit (`time`, in units of `precision` seconds) is not wholly
/// inside the window is refused, with the reason.
pub(crate) fn check_time_unit(time: u64, precision: u64, window: &Window) -> Result<(), String> {
    let start = time
        .checked_mul(precision)
        .and_then(|t| i64::try_from(t).ok())
        .ok_or_else(|| format!("report time {time} (units of {precision} s) is out of range"))?;
    let end = start.saturating_add(i64::try_from(precision).unwrap_or(i64::MAX));
    if start < window.start.timestamp() || end > window.end_exclusive().timestamp() {
        return Err(format!(
            "report time {} is outside the window {}",
            chrono::DateTime::from_timestamp(start, 0)
                .map_or_else(|| start.to_string(), |t| t.to_rfc3339()),
            window.name()
        ));
    }
    Ok(())
}

/// The DAP batch interval a window covers (it must fall on the task's time precision).
pub(crate) fn window_interval(window: &Window, time_precision: u64) -> Result<BatchInterval> {
    BatchInterval::from_window(
        window.start.timestamp(),
        window.end_exclusive().timestamp(),
        time_precision,
    )
    .map_err(|e| anyhow!("window {}: {e}", window.name()))
}

/// What a DAP server keeps of a report between its steps: the report's time unit
/// (u64 BE, for the window check) then `rest` (Prio3: the check; Poplar1: its state).
pub(crate) fn join_kept(time: u64, rest: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(TIME_LEN + rest.len());
    kept.extend_from_slice(&time.to_be_bytes());
    kept.extend_from_slice(rest);
    kept
}

/// The report's time unit and the rest, as [`join_kept`] put them.
pub(crate) fn split_kept(kept: &[u8]) -> Result<(u64, &[u8]), String> {
    match kept.split_first_chunk::<TIME_LEN>() {
        Some((time, check)) => Ok((u64::from_be_bytes(*time), check)),
        None => Err(format!("kept record of {} bytes is too short", kept.len())),
    }
}

impl DapJudge<'_> {
    /// The verdict on a report from both verifier shares and what intake kept.
    fn decide(&self, kept: &[u8], own: &[u8], peer: &[u8]) -> Result<(), String> {
        let (_, check) = split_kept(kept)?;
        // The verifier message is computed from the leader's share, then the helper's.
        let shares = match self.dap.role {
            Role::Leader => [own, peer],
            Role::Helper => [peer, own],
        };
        self.aggregator
            .decide(check, shares)
            .map_err(|e| e.to_string())
    }
}

/// The output shares of the reports a batch's intake kept, and how many.
pub(crate) struct DapPresum {
    sum: AggregateSum,
    count: u64,
}

impl Presum for DapPresum {
    type Output = OutputShare;

    fn add(&mut self, output: OutputShare) -> Result<()> {
        self.sum.add(&output)?;
        self.count += 1;
        Ok(())
    }

    /// The count (u64 BE), then the encoded aggregate share.
    fn trailer(&self) -> Result<Option<Vec<u8>>> {
        let mut trailer = self.count.to_be_bytes().to_vec();
        trailer.extend_from_slice(&self.sum.encode()?);
        Ok(Some(trailer))
    }
}

/// A valid report's contribution to a run's sum.
pub(crate) enum DapOutput {
    /// Already in its batch's presum, added when the batch settles.
    InPresum,
    /// Verified again just now (no stash): its output share.
    Share(OutputShare),
}

/// A run's Prio3 aggregate share so far, as field elements.
pub(crate) struct DapSum {
    sum: AggregateSum,
    count: u64,
}

impl RunSum<DapOutput> for DapSum {
    fn add(&mut self, _report: Uuid, output: DapOutput) -> Result<()> {
        if let DapOutput::Share(share) = output {
            self.sum.add(&share)?;
        }
        self.count += 1;
        Ok(())
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.sum.merge(&other.sum)?;
        self.count += other.count;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }
}
