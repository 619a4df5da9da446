//! ENPA batches: Prio2 packets, opened with the server's packet keys.

use super::{NoPresum, ReportJudge, RunSum, SharePacker, SumJudge, Verified, VerifiedBy};
use crate::batch::{write_sum_part, BatchId, OpenedBatch, SumPartBinding, Window};
use crate::config::Server;
use crate::crypto::PacketDigest;
use crate::ids::RunId;
use crate::stages::aggregate::RunTotals;
use crate::stages::checks::check_validity_header;
use crate::stages::replays::fingerprint;
use crate::stages::{open_ingestion_batch, open_packet};
use crate::stash::StashContext;
use crate::vdaf::{is_valid, Accumulator, OutputShare, Prio2Bins, VerifierShare};
use crate::wire::{DataSharePacket, IngestionHeader, SumPart, ValidityHeader, ValidityPacket};
use anyhow::Result;
use uuid::Uuid;

/// ENPA: one batch's Prio2 instance.
pub(crate) struct Prio2Judge<'s> {
    server: &'s Server,
    prio: Prio2Bins,
    header: IngestionHeader,
}

impl<'s> ReportJudge<'s> for Prio2Judge<'s> {
    type Header = IngestionHeader;
    type Report = DataSharePacket;
    type Verifier = ValidityPacket;
    type ValidationHeader = ValidityHeader;
    /// ENPA's validity header has no field to name another.
    const VALIDATION_DIGEST: PacketDigest = PacketDigest::Sha256;
    type Presum = NoPresum;

    fn open(
        server: &'s Server,
        id: &BatchId,
    ) -> Result<(OpenedBatch<'s, IngestionHeader>, Self, String)> {
        let (batch, prio, object) = open_ingestion_batch(server, id)?;
        let header = batch.header.clone();
        Ok((
            batch,
            Prio2Judge {
                server,
                prio,
                header,
            },
            object,
        ))
    }

    fn report_id(packet: &DataSharePacket) -> Uuid {
        packet.uuid
    }

    fn verify(&self, packet: &DataSharePacket) -> Result<VerifiedBy<'s, Self>, String> {
        let (server, prio) = (self.server, &self.prio);
        let share = open_packet(&server.packet_keys, packet)?;
        let v = prio
            .verifier_share(server.index, &share, packet.r_pit)
            .map_err(|e| e.to_string())?;
        let kept = prio
            .kept_share(server.index, &share)
            .map_err(|e| e.to_string())?
            .to_vec();
        Ok(Verified {
            record: ValidityPacket {
                uuid: packet.uuid,
                f_r: i64::from(v.f_r),
                g_r: i64::from(v.g_r),
                h_r: i64::from(v.h_r),
            },
            kept,
            fingerprint: fingerprint(&share),
            output: (),
        })
    }

    fn new_presum(&self) -> NoPresum {
        NoPresum
    }

    fn stash_context(&self, id: &BatchId) -> StashContext {
        StashContext::for_batch(id, self.server.index, self.prio.bins(), &self.header)
    }

    fn validation_header(&self, digest: Vec<u8>) -> ValidityHeader {
        let h = &self.header;
        ValidityHeader {
            batch_uuid: h.batch_uuid,
            name: h.name.clone(),
            bins: h.bins,
            epsilon: h.epsilon,
            prime: h.prime,
            number_of_servers: h.number_of_servers,
            hamming_weight: h.hamming_weight,
            packet_file_digest: digest,
        }
    }
}

impl<'s> SumJudge<'s> for Prio2Judge<'s> {
    type Share = VerifierShare;
    type Output = OutputShare;
    type Sum = Prio2Sum;

    fn check_validation(&self, header: &ValidityHeader, object: &str) -> Result<()> {
        check_validity_header(&self.header, header, object)
    }

    fn share_of(p: ValidityPacket, _: &mut SharePacker) -> (Uuid, Result<VerifierShare, String>) {
        let share = VerifierShare::from_longs(p.f_r, p.g_r, p.h_r).map_err(|e| e.to_string());
        (p.uuid, share)
    }

    fn same_task_as(&self, first: &Self) -> Result<(), String> {
        let (mine, run) = (self.header.parameters(), first.header.parameters());
        match mine == run {
            true => Ok(()),
            false => Err(format!("{mine} differ from the run's first batch ({run})")),
        }
    }

    /// ENPA batches belong to a window by their time; their packets carry none.
    fn admit(&self, _kept: &[u8], _window: &Window) -> Result<(), String> {
        Ok(())
    }

    fn finish(
        &self,
        kept: &[u8],
        own: &VerifierShare,
        peer: &VerifierShare,
    ) -> Result<OutputShare, String> {
        if !is_valid(own, peer) {
            return Err("proof check failed".into());
        }
        self.prio
            .output_share_from_kept(self.server.index, kept)
            .map_err(|e| e.to_string())
    }

    fn finish_fresh(
        &self,
        kept: &[u8],
        _output: (),
        own: &VerifierShare,
        peer: &VerifierShare,
    ) -> Result<OutputShare, String> {
        self.finish(kept, own, peer)
    }

    /// ENPA sums each valid report's kept share: its stash has no trailer.
    fn settle(
        &self,
        _sum: &mut Prio2Sum,
        trailer: Option<&[u8]>,
        _refused: NoPresum,
        _kept: u64,
    ) -> Result<()> {
        match trailer {
            None => Ok(()),
            Some(_) => anyhow::bail!("an ENPA batch's stash ends with a sum it never keeps"),
        }
    }

    fn new_sum(&self) -> Prio2Sum {
        Prio2Sum(Accumulator::new(self.prio.bins()))
    }

    fn min_clients(&self) -> (u64, &'static str) {
        (self.server.limits.min_clients, "limits.min_clients")
    }

    fn write_sum_part(
        &self,
        run: &RunId,
        ids: &[BatchId],
        totals: &RunTotals<Prio2Sum>,
    ) -> Result<(String, Vec<u32>)> {
        let (server, header, window) = (self.server, &self.header, &run.window);
        let part = run.sum_part(&server.instance, server.index);
        let acc = &totals.sum.0;
        let sum = acc.sum();
        let record = SumPart {
            batch_uuids: ids.iter().map(|id| id.uuid).collect(),
            name: header.name.clone(),
            bins: header.bins,
            epsilon: header.epsilon,
            prime: header.prime,
            number_of_servers: header.number_of_servers,
            hamming_weight: header.hamming_weight,
            sum: sum.iter().map(|&v| i64::from(v)).collect(),
            aggregation_start_time: window.start.timestamp_millis(),
            aggregation_end_time: window.end.timestamp_millis(),
            packet_file_digest: Vec::new(), // set by write_sum_part
            total_individual_clients: i64::try_from(totals.judged)?,
        };
        let binding = SumPartBinding {
            instance: server.instance.clone(),
            run: run.run,
            server: server.index,
            valid_clients: acc.count(),
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
        Ok((name, sum))
    }
}

/// A run's Prio2 sum so far.
pub(crate) struct Prio2Sum(Accumulator);

impl RunSum<OutputShare> for Prio2Sum {
    fn add(&mut self, _report: Uuid, output: OutputShare) -> Result<()> {
        Ok(self.0.add(&output)?)
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        Ok(self.0.merge(&other.0)?)
    }

    fn count(&self) -> u64 {
        self.0.count()
    }
}
