//! What intake does to one report, for each task kind. Intake's loop (streaming, rayon,
//! replays, stash, the signed validation written to own storage and the peer's inbox) is
//! written once over [`ReportJudge`]; a task kind supplies its records and its per-report
//! step: ENPA opens a Prio2 packet and computes (f_r, g_r, h_r); DAP opens a report's
//! input share with the server's HPKE key and starts Prio3 verification with the verify
//! key the two servers share (nonce = report id).

mod dap;
mod prio2;

pub(crate) use dap::{
    check_time_unit, join_kept, min_reports, open_dap_ingestion, open_input_share, split_kept,
    window_interval, DapJudge, TIME_LEN,
};
pub(crate) use prio2::Prio2Judge;

use super::aggregate::RunTotals;
use super::replays::Fingerprint;
use crate::batch::{BatchHeader, BatchId, BatchKind, OpenedBatch};
use crate::config::Server;
use crate::crypto::PacketDigest;
use crate::ids::{ReportIdMap, RunId};
use crate::stash::StashContext;
use crate::wire::{DapIngestionHeader, Record};
use anyhow::Result;
use uuid::Uuid;

/// What intake keeps of one report it could verify.
pub(crate) struct Verified<V, O> {
    /// The server's verifier share, for its own validation and the peer's inbox.
    pub record: V,
    /// What aggregate needs of the report, sealed in the stash.
    pub kept: Vec<u8>,
    /// Of the opened share: a second report carrying it is a replay.
    pub fingerprint: Fingerprint,
    /// The output share the report has if aggregate decides it valid (DAP), summed into
    /// the batch's [`Presum`]; nothing for ENPA.
    pub output: O,
}

/// The sum intake keeps of the output shares of every report it kept, sealed as its
/// stash's trailer: aggregate then decides each report from a few bytes and takes away
/// only the reports it refuses, instead of finishing and summing every one.
pub(crate) trait Presum: Send {
    type Output: Send;
    fn add(&mut self, output: Self::Output) -> Result<()>;
    /// The stash trailer; None for a kind that keeps no sum.
    fn trailer(&self) -> Result<Option<Vec<u8>>>;
}

/// ENPA keeps each report's share in its stash and sums at aggregate: no presum.
pub(crate) struct NoPresum;

impl Presum for NoPresum {
    type Output = ();
    fn add(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
    fn trailer(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// What a judge's `verify` returns for a report it could verify.
pub(crate) type VerifiedBy<'s, J> =
    Verified<<J as ReportJudge<'s>>::Verifier, <<J as ReportJudge<'s>>::Presum as Presum>::Output>;

/// One ingestion batch's per-report work, for one task kind.
pub(crate) trait ReportJudge<'s>: Sync + Sized {
    type Header: BatchHeader + Clone;
    type Report: Record + Send + Sync;
    type Verifier: Record + Send;
    type ValidationHeader: BatchHeader;
    type Presum: Presum;
    /// What validation packet files are hashed with (the header names it where it can).
    const VALIDATION_DIGEST: PacketDigest;

    /// Opens this server's ingestion batch (signature and header checked) and the judge
    /// for its reports; with the batch's description for messages.
    fn open(
        server: &'s Server,
        id: &BatchId,
    ) -> Result<(OpenedBatch<'s, Self::Header>, Self, String)>;

    /// The report's identity: the ENPA packet UUID, or the DAP report id (16 bytes).
    fn report_id(report: &Self::Report) -> Uuid;

    /// Opens the report and computes this server's verifier share, or says why not.
    fn verify(&self, report: &Self::Report) -> Result<VerifiedBy<'s, Self>, String>;

    /// A sum of no reports' output shares.
    fn new_presum(&self) -> Self::Presum;

    /// The context the stash of this batch is sealed under.
    fn stash_context(&self, id: &BatchId) -> StashContext;

    /// The validation header for the batch, given its packet file's digest.
    fn validation_header(&self, digest: Vec<u8>) -> Self::ValidationHeader;
}

/// What aggregate does with one batch's reports, for one task kind: decide each report
/// from both servers' verifier shares and what intake kept, and add its output share.
pub(crate) trait SumJudge<'s>: ReportJudge<'s> {
    /// A verifier share as read back from a validation batch.
    type Share: Send + Sync + PartialEq;
    type Output: Send;
    type Sum: RunSum<Self::Output>;

    /// The validation header must describe this batch.
    fn check_validation(&self, header: &Self::ValidationHeader, object: &str) -> Result<()>;

    /// A validation record's report and its verifier share (Err: listed but unusable);
    /// a share that is bytes goes into `packer`.
    fn share_of(
        record: Self::Verifier,
        packer: &mut SharePacker,
    ) -> (Uuid, Result<Self::Share, String>);

    /// A batch of the run after the first must be of the same task: the same Prio2
    /// parameters, or the same DAP task.
    fn same_task_as(&self, first: &Self) -> Result<(), String>;

    /// Whether the report belongs in the run's window at all (DAP: its time); a refusal
    /// here is not a judgement of its proof.
    fn admit(&self, kept: &[u8], window: &crate::batch::Window) -> Result<(), String>;

    /// Both verifier shares found: the output share (or, DAP, the mark that it is in
    /// the presum), or why the report is invalid.
    fn finish(
        &self,
        kept: &[u8],
        own: &Self::Share,
        peer: &Self::Share,
    ) -> Result<Self::Output, String>;

    /// As `finish`, for a report verified again just now (no stash): its output share
    /// is at hand, not in a presum.
    fn finish_fresh(
        &self,
        kept: &[u8],
        output: <Self::Presum as Presum>::Output,
        own: &Self::Share,
        peer: &Self::Share,
    ) -> Result<Self::Output, String>;

    /// After a batch's stash was read: adds the presum its trailer holds (written over
    /// `kept` reports) less the output shares of the reports aggregate refused.
    fn settle(
        &self,
        sum: &mut Self::Sum,
        trailer: Option<&[u8]>,
        refused: Self::Presum,
        kept: u64,
    ) -> Result<()>;

    /// An empty sum for the run.
    fn new_sum(&self) -> Self::Sum;

    /// The fewest valid reports a sum part may reveal, and the setting it comes from.
    fn min_clients(&self) -> (u64, &'static str);

    /// Writes the run's signed sum part (this judge is of the run's first batch);
    /// returns its name and, for ENPA, the server's share of the sum.
    fn write_sum_part(
        &self,
        run: &RunId,
        ids: &[BatchId],
        totals: &RunTotals<Self::Sum>,
    ) -> Result<(String, Vec<u32>)>;
}

/// Verifier shares of a batch's reports, by report (Err: listed but unusable).
pub(crate) type SharesByReport<S> = ReportIdMap<Result<S, String>>;

/// Reads a validation batch (`object`, for messages) into its verifier shares by report,
/// packed into shared buffers. A batch that lists a report twice is not trusted for it.
pub(crate) fn shares_by_report<'s, J: SumJudge<'s>, H: BatchHeader>(
    batch: &OpenedBatch<H>,
    object: &str,
) -> Result<SharesByReport<J::Share>> {
    let mut map = SharesByReport::default();
    let mut packer = SharePacker::default();
    for record in batch.packets::<J::Verifier>()? {
        let (uuid, share) = J::share_of(record?, &mut packer);
        if map.insert(uuid, share).is_some() {
            map.insert(uuid, Err(format!("listed twice in {object}")));
        }
    }
    Ok(map)
}

/// Copies small byte strings into a few shared buffers. A batch's verifier shares are
/// kept until its last report is decided; with one allocation each, freeing them was 9%
/// of aggregate's CPU at histogram 16, all of it on one thread after the batch. Packed,
/// they are freed a buffer at a time.
#[derive(Default)]
pub(crate) struct SharePacker {
    buffer: bytes::BytesMut,
    /// The size of the next buffer: it doubles from a few KiB (a packer used for one
    /// share allocates little) to [`SharePacker::MAX_CHUNK`].
    chunk: usize,
}

impl SharePacker {
    const MIN_CHUNK: usize = 4 << 10;
    const MAX_CHUNK: usize = 64 << 10;

    pub fn pack(&mut self, bytes: &[u8]) -> bytes::Bytes {
        if self.buffer.capacity() - self.buffer.len() < bytes.len() {
            self.chunk = (self.chunk * 2).clamp(Self::MIN_CHUNK, Self::MAX_CHUNK);
            self.buffer = bytes::BytesMut::with_capacity(bytes.len().max(self.chunk));
        }
        self.buffer.extend_from_slice(bytes);
        self.buffer.split().freeze()
    }
}

/// A run's sum of output shares so far.
pub(crate) trait RunSum<O>: Send {
    /// Takes the output share: a Prio3 one may be tens of KB, not to be copied.
    fn add(&mut self, report: Uuid, output: O) -> Result<()>;
    fn merge(&mut self, other: Self) -> Result<()>;
    /// Reports counted.
    fn count(&self) -> u64;
}

/// The task kind of an ingestion batch, read from its header's Avro record name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestionKind {
    /// ENPA: `PrioIngestionHeader`, Prio2 packets.
    Prio2,
    /// DAP-18: `DapIngestionHeader`, sealed Prio3 reports.
    Dap,
}

/// Only a header that reads as a `DapIngestionHeader` makes a DAP batch; anything else
/// (an ENPA header, a missing one, or one that is not a container file) takes the ENPA
/// path, whose opening checks the signature first and names what is wrong. A failed read
/// is an error. The signature of a DAP batch is checked the same way when it is opened.
pub fn ingestion_kind(
    server: &Server,
    id: &BatchId,
) -> Result<IngestionKind, crate::store::StoreError> {
    let names = id.names(BatchKind::Ingestion);
    let limit = crate::batch::MAX_HEADER_BYTES.min(server.limits.max_object_bytes);
    let name = crate::batch::peek_record_name(server.ingestion.as_ref(), &names.header, limit)?;
    Ok(match name.as_deref() {
        Some(DapIngestionHeader::NAME) => IngestionKind::Dap,
        _ => IngestionKind::Prio2,
    })
}

/// What a run's batches must share to be summed together: the ENPA Prio2 parameters, or
/// the DAP task.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchTask {
    Prio2(crate::wire::Prio2Parameters),
    Dap { task_id: Vec<u8> },
}

impl std::fmt::Display for BatchTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchTask::Prio2(parameters) => write!(f, "{parameters}"),
            BatchTask::Dap { task_id } => {
                let id = <[u8; 32]>::try_from(task_id.as_slice())
                    .map(|id| crate::dap::TaskId(id).to_base64url())
                    .unwrap_or_else(|_| crate::batch::hex(task_id));
                write!(f, "DAP task {id}")
            }
        }
    }
}

/// The task an ingestion batch's signed header declares; Ok(Err) if the header does not
/// open. Storage trouble is an error: it may pass, and a caller deciding can wait for it.
pub fn batch_task(
    server: &Server,
    id: &BatchId,
) -> Result<std::result::Result<BatchTask, crate::batch::BatchError>> {
    use crate::batch::{open_batch, BatchError};
    let names = id.names(BatchKind::Ingestion);
    let (store, trust, max) = (
        server.ingestion.as_ref(),
        &server.ingestor_trust,
        server.limits.max_object_bytes,
    );
    let opened = match ingestion_kind(server, id)? {
        IngestionKind::Prio2 => {
            open_batch::<crate::wire::IngestionHeader>(store, &names, trust, max)
                .map(|b| BatchTask::Prio2(b.header.parameters()))
        }
        IngestionKind::Dap => {
            open_batch::<DapIngestionHeader>(store, &names, trust, max).map(|b| BatchTask::Dap {
                task_id: b.header.task_id,
            })
        }
    };
    match opened {
        Ok(task) => Ok(Ok(task)),
        Err(BatchError::Store(e)) => Err(e.into()),
        Err(e) => Ok(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::SharePacker;

    #[test]
    fn packed_shares_read_back_and_share_buffers() {
        let mut packer = SharePacker::default();
        let shares: Vec<Vec<u8>> = (0..200u32)
            .map(|i| (0..(i % 97) * 13).map(|b| (b ^ i) as u8).collect())
            .collect();
        let packed: Vec<_> = shares.iter().map(|s| packer.pack(s)).collect();
        for (share, bytes) in shares.iter().zip(&packed) {
            assert_eq!(&bytes[..], &share[..]);
        }
        // Small shares follow each other in one buffer, not one allocation each.
        let (a, b) = (packer.pack(&[1; 10]), packer.pack(&[2; 20]));
        assert_eq!(b.as_ptr(), a.as_ptr().wrapping_add(10));
        // A share larger than any buffer still packs whole.
        let big = vec![7u8; SharePacker::MAX_CHUNK * 2 + 1];
        assert_eq!(&packer.pack(&big)[..], &big[..]);
        assert_eq!(&packer.pack(&[3; 5])[..], &[3; 5]);
    }
}
