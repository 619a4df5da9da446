//! The end of a pass: every report decided from both servers' second verifier shares,
//! the valid ones' counts summed per prefix, and the pass's sum part written, sealed to
//! the collector (DAP-18's aggregate-share encryption, its AAD binding the pass).

use super::rounds::kept_of;
use super::PassRun;
use crate::batch::{create_pass_sum_part, BatchId, InvalidReport, PassSumPart};
use crate::dap::aggregate_share::{seal_aggregate_share, AggregateShareAad, ReportIdChecksum};
use crate::dap::ReportId;
use crate::stages::aggregate::TooFewClients;
use crate::stages::judges::{split_kept, window_interval};
use crate::stages::{judge_in_chunks, Tick};
use crate::stash::{StashReader, StashRecord};
use anyhow::{anyhow, Result};
use std::collections::HashSet;

/// A pass's sum part as written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SumWritten {
    pub name: String,
    pub reports: u64,
    pub invalid: usize,
}

impl PassRun<'_> {
    pub(super) fn finish(
        &self,
        batches: &[BatchId],
        left_out: &super::LeftOut,
        tick: Tick,
    ) -> Result<SumWritten> {
        let server = self.server;
        let task = &self.dap.task;
        let step = |e: crate::dap::VdafStepError| anyhow!("{}: {e}", self.id);
        let mut sum = self.aggregator.new_sum(&self.pass).map_err(step)?;
        let mut checksum = ReportIdChecksum::new();
        let mut invalid = Vec::new();
        let mut seen = HashSet::new();
        for id in batches {
            let batch = id.to_string();
            let header = self.ingestion(id)?.header;
            let refused = self.rejected(id)?;
            let (own, peer) = self.both_rounds(id, &header, 2)?;
            let mut stash = StashReader::open(
                server.own.as_ref(),
                &id.round_stash_name(server.index, self.id.index, 2),
                self.stash_key,
                &self.stash_context(id, &header, 2),
            )?;
            let judge = |record: &StashRecord| -> Result<Vec<u8>, String> {
                let (_, state) = split_kept(kept_of(record, 2)?)?;
                let shares = self.shares_of(&record.uuid, &own, &peer)?;
                self.aggregator
                    .finish(&self.pass, state, shares)
                    .map_err(|e| e.to_string())
            };
            judge_in_chunks(
                || Ok(stash.next_frame()?.unwrap_or_default()),
                judge,
                |record, result| {
                    let uuid = record.uuid;
                    let result = result.and_then(|output| match seen.insert(uuid) {
                        true => Ok(output),
                        false => Err("a duplicate: its report id was counted before".into()),
                    });
                    match result {
                        Ok(output) => {
                            sum.add(&output).map_err(step)?;
                            checksum.add(&ReportId(uuid.into_bytes()));
                        }
                        Err(reason) => {
                            // A report an earlier pass refused keeps that reason; one
                            // refused in a round of this pass gets that round's.
                            let key = (batch.clone(), uuid);
                            let reason = match (left_out.get(&key), refused.get(&uuid)) {
                                (Some(earlier), _) => earlier.clone(),
                                (None, Some(round)) => format!("pass {}, {round}", self.id.index),
                                (None, None) => format!("pass {}: {reason}", self.id.index),
                            };
                            invalid.push(InvalidReport {
                                batch: batch.clone(),
                                report_id: uuid,
                                reason,
                            });
                        }
                    }
                    Ok(())
                },
                tick,
            )?;
        }
        let (min, why) = crate::stages::judges::min_reports(self.server, self.dap);
        if sum.reports() < min {
            return Err(TooFewClients {
                run: self.id.to_string(),
                valid: sum.reports(),
                min,
                why,
            }
            .into());
        }
        // DP noise, claimed in the ledger first; drawn from a seed of this release, so
        // a rerun after a kill adds the same noise.
        let release = self.id.sum_name(server.index);
        let noise = crate::stages::dp_ledger::release_noise(
            server,
            &self.id.aggregation,
            &release,
            self.pass.len(),
        )?;
        if let Some(noise) = noise {
            sum.add_noise(&noise).map_err(step)?;
        }
        let interval = window_interval(&self.id.window, task.time_precision())?;
        let mut aad = AggregateShareAad::for_task(task, &self.task_binding, interval);
        aad.agg_param = &self.pass_bytes;
        let share = sum.encode().map_err(step)?;
        let sealed = seal_aggregate_share(
            &task.params().collector_hpke_config,
            self.dap.role,
            &aad,
            &share,
        )?;
        let part = PassSumPart {
            task_id: task.task_id().0,
            pass: self.pass_bytes.clone(),
            batches: batches.iter().map(|id| id.to_string()).collect(),
            report_count: sum.reports(),
            checksum: *checksum.as_bytes(),
            invalid,
            collector_config_id: sealed.config_id,
            enc: sealed.enc,
            payload: sealed.payload,
        };
        let name = self.id.sum_name(server.index);
        // Written once: a rerun after a kill finds it and stops before this.
        create_pass_sum_part(
            server.sum_parts.as_ref(),
            &self.id,
            server.index,
            &part,
            &server.signing_key,
        )?;
        tracing::info!(pass = %self.id, reports = part.report_count, invalid = part.invalid.len(), "pass sum part written");
        Ok(SumWritten {
            name: server.sum_parts.describe(&name),
            reports: part.report_count,
            invalid: part.invalid.len(),
        })
    }
}
