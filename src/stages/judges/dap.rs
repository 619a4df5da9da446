//! DAP-18 batches: each report's input share, opened with the server's HPKE key, starts
//! Prio3 verification with the verify key both servers share (nonce = report id).

use super::{ReportJudge, RunSum, SumJudge, Verified};
use crate::batch::{
    open_batch, write_sum_part, BatchId, BatchKind, OpenedBatch, SumPartBinding, SumPartId, Window,
};
use crate::config::{dap::ServerDap, Server};
use crate::dap::aggregate_share::{
    seal_aggregate_share, AggregateShareAad, BatchInterval, ReportIdChecksum,
};
use crate::dap::messages::{HpkeCiphertext, InputShareAad, ReportMetadata};
use crate::dap::{dap_context, Prio3Vdaf, ReportId, Role, VerifyInput, VerifyState};
use crate::ids::RunId;
use crate::stages::aggregate::RunTotals;
use crate::stages::checks::check_batch_names;
use crate::stages::replays::fingerprint;
use crate::stash::StashContext;
use crate::wire::{
    DapIngestionHeader, DapReportShare, DapSumPart, DapValidationHeader, DapVerifierShare,
};
use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use uuid::Uuid;

/// The report time's bytes at the start of what intake keeps.
const TIME_LEN: usize = 8;

/// DAP: one batch of a task this server takes part in.
pub(crate) struct DapJudge<'s> {
    server: &'s Server,
    dap: &'s ServerDap,
    vdaf: Prio3Vdaf,
    /// The VDAF context, "dap-18" ‖ task id.
    ctx: Vec<u8>,
    /// The task's encoded configuration, part of every report's HPKE AAD.
    task_configuration: Vec<u8>,
    /// Bytes kept per report: its time (u64 BE, for the window check) and the verify
    /// state.
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

    fn open(
        server: &'s Server,
        id: &BatchId,
    ) -> Result<(OpenedBatch<'s, DapIngestionHeader>, Self, String)> {
        let names = id.names(BatchKind::Ingestion);
        let object = server.ingestion.describe(&names.header);
        let dap = Self::task_of(server, &object)?;
        let batch = open_batch::<DapIngestionHeader>(
            server.ingestion.as_ref(),
            &names,
            &server.ingestor_trust,
            server.limits.max_object_bytes,
        )?;
        check_dap_header(id, &batch.header, dap, &object)?;
        let vdaf = Prio3Vdaf::new(dap.task.vdaf()).map_err(|e| anyhow!("dap.task: {e}"))?;
        let kept_len = TIME_LEN
            + vdaf
                .verify_state_len(dap.role.agg_id())
                .map_err(|e| anyhow!("dap.task: {e}"))?;
        let header = batch.header.clone();
        let judge = DapJudge {
            server,
            dap,
            ctx: dap_context(dap.task.task_id()),
            task_configuration: dap.task.task_configuration(),
            vdaf,
            kept_len,
            header,
        };
        Ok((batch, judge, object))
    }

    fn report_id(share: &DapReportShare) -> Uuid {
        // Decoding checked the length; a short one cannot reach here.
        Uuid::from_slice(&share.report_id).unwrap_or_default()
    }

    fn verify(&self, share: &DapReportShare) -> Result<Verified<DapVerifierShare>, String> {
        let (metadata, ciphertext) = parts_of(share)?;
        let aad = InputShareAad {
            task_id: self.dap.task.task_id(),
            task_configuration: &self.task_configuration,
            metadata: &metadata,
            public_share: &share.public_share,
        };
        let input_share = self
            .dap
            .hpke
            .open_input_share(self.dap.role, &ciphertext, &aad)
            .map_err(|e| e.to_string())?;
        let nonce = metadata.report_id.0;
        let input = VerifyInput {
            agg_id: self.dap.role.agg_id(),
            nonce: &nonce,
            public_share: &share.public_share,
            input_share: &input_share,
        };
        let (state, verifier_share) = self
            .vdaf
            .verify_init(self.dap.verify_key.as_bytes(), &self.ctx, &input)
            .map_err(|e| e.to_string())?;
        let mut kept = Vec::with_capacity(self.kept_len);
        kept.extend_from_slice(&metadata.time.to_be_bytes());
        kept.extend_from_slice(&state.encoded);
        if kept.len() != self.kept_len {
            return Err(format!(
                "verify state of {} bytes, expected {}",
                state.encoded.len(),
                self.kept_len - TIME_LEN
            ));
        }
        Ok(Verified {
            record: DapVerifierShare {
                report_id: share.report_id.clone(),
                verifier_share,
            },
            kept,
            fingerprint: fingerprint(&input_share),
        })
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
        }
    }
}

/// A batch record's report metadata and its ciphertext, in DAP's types.
fn parts_of(share: &DapReportShare) -> Result<(ReportMetadata, HpkeCiphertext), String> {
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
        HpkeCiphertext {
            config_id,
            enc: share.enc.clone(),
            payload: share.payload.clone(),
        },
    ))
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
    type Share = Vec<u8>;
    type Output = Vec<u8>;
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

    fn share_of(record: DapVerifierShare) -> (Uuid, Result<Vec<u8>, String>) {
        let uuid = Uuid::from_slice(&record.report_id).unwrap_or_default();
        (uuid, Ok(record.verifier_share))
    }

    fn same_task_as(&self, first: &Self) -> Result<(), String> {
        match self.header.task_id == first.header.task_id {
            true => Ok(()),
            false => Err("a batch of another DAP task than the run's first batch".into()),
        }
    }

    fn admit(&self, kept: &[u8], window: &Window) -> Result<(), String> {
        let (time, _) = split_kept(kept)?;
        let precision = self.dap.task.time_precision();
        let start = time
            .checked_mul(precision)
            .and_then(|t| i64::try_from(t).ok())
            .ok_or_else(|| {
                format!("report time {time} (units of {precision} s) is out of range")
            })?;
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

    fn finish(&self, kept: &[u8], own: &Vec<u8>, peer: &Vec<u8>) -> Result<Vec<u8>, String> {
        let (_, state) = split_kept(kept)?;
        let state = VerifyState {
            agg_id: self.dap.role.agg_id(),
            encoded: state.to_vec(),
        };
        // The verifier message is computed from the leader's share, then the helper's.
        let shares = match self.dap.role {
            Role::Leader => [own.as_slice(), peer.as_slice()],
            Role::Helper => [peer.as_slice(), own.as_slice()],
        };
        let message = self
            .vdaf
            .verifier_shares_to_message(&self.ctx, &state, shares)
            .map_err(|e| e.to_string())?;
        self.vdaf
            .verify_next(&self.ctx, &state, &message)
            .map_err(|e| e.to_string())
    }

    fn new_sum(&self) -> DapSum {
        DapSum {
            vdaf: self.vdaf.clone(),
            share: None,
            pending: Vec::new(),
            count: 0,
        }
    }

    fn min_clients(&self) -> (u64, &'static str) {
        let (limit, task) = (
            self.server.limits.min_clients,
            self.dap.task.params().min_batch_size,
        );
        match task > limit {
            true => (task, "the task's min_batch_size"),
            false => (limit, "limits.min_clients"),
        }
    }

    fn write_sum_part(
        &self,
        run: &RunId,
        ids: &[BatchId],
        totals: &RunTotals<DapSum>,
    ) -> Result<(String, Vec<u32>)> {
        let (server, task, window) = (self.server, &self.dap.task, &run.window);
        let interval = BatchInterval::from_window(
            window.start.timestamp(),
            window.end_exclusive().timestamp(),
            task.time_precision(),
        )
        .map_err(|e| anyhow!("window {}: {e}", window.name()))?;
        let task_configuration = task.task_configuration();
        let aad = AggregateShareAad {
            task_id: task.task_id(),
            task_configuration: &task_configuration,
            interval,
            agg_param: &[],
        };
        let collector = &task.params().collector_hpke_config;
        let sealed = seal_aggregate_share(
            collector,
            self.dap.role,
            &aad,
            &totals.sum.aggregate_share()?,
        )?;
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
        let part = SumPartId {
            instance: server.instance.clone(),
            aggregation: run.aggregation.clone(),
            window: *window,
            run: run.run,
            server: server.index,
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

/// The report time and the verify state intake kept.
fn split_kept(kept: &[u8]) -> Result<(u64, &[u8]), String> {
    match kept.split_first_chunk::<TIME_LEN>() {
        Some((time, state)) => Ok((u64::from_be_bytes(*time), state)),
        None => Err(format!("kept record of {} bytes is too short", kept.len())),
    }
}

/// A run's Prio3 aggregate share so far. Output shares are summed a chunk at a time, so
/// memory holds at most one chunk of them.
pub(crate) struct DapSum {
    vdaf: Prio3Vdaf,
    share: Option<Vec<u8>>,
    pending: Vec<Vec<u8>>,
    count: u64,
}

/// Output shares summed at once.
const SUM_CHUNK: usize = 512;
/// Output shares one worker sums before its sum is merged with the others'.
const SUM_PIECE: usize = 32;

impl DapSum {
    fn flush(&mut self) -> Result<()> {
        // Decoding and adding output shares was aggregate's one serial step per report
        // (2,048 field elements at histogram 2048): spread over the pool in pieces.
        let vdaf = &self.vdaf;
        let chunk = self
            .pending
            .par_chunks(SUM_PIECE)
            .map(|piece| vdaf.aggregate(piece.iter().map(Vec::as_slice)))
            .try_reduce_with(|a, b| vdaf.merge_aggregate_shares(&a, &b));
        self.pending.clear();
        match chunk.transpose()? {
            Some(chunk) => self.absorb(chunk),
            None => Ok(()),
        }
    }

    /// Adds an encoded aggregate share of other reports into the running one.
    fn absorb(&mut self, share: Vec<u8>) -> Result<()> {
        self.share = Some(match self.share.take() {
            Some(sum) => self.vdaf.merge_aggregate_shares(&sum, &share)?,
            None => share,
        });
        Ok(())
    }

    /// The encoded aggregate share of every report added.
    pub fn aggregate_share(&self) -> Result<Vec<u8>> {
        let pending = self
            .vdaf
            .aggregate(self.pending.iter().map(Vec::as_slice))?;
        Ok(match &self.share {
            Some(sum) => self.vdaf.merge_aggregate_shares(sum, &pending)?,
            None => pending,
        })
    }
}

impl RunSum<Vec<u8>> for DapSum {
    fn add(&mut self, _report: Uuid, output: Vec<u8>) -> Result<()> {
        self.pending.push(output);
        self.count += 1;
        if self.pending.len() >= SUM_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn merge(&mut self, mut other: Self) -> Result<()> {
        other.flush()?;
        self.count += other.count;
        if let Some(theirs) = other.share {
            self.flush()?;
            self.absorb(theirs)?;
        }
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }
}
