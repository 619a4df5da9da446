//! The pipeline's jobs. Each is a function from (party, task) to a report; none knows
//! about the command line. Progress is reported through a `Tick` callback.

pub mod aggregate;
mod checks;
pub mod collect;
pub mod collect_dap;
pub mod collect_heavy;
pub mod dp_ledger;
pub mod heavy;
pub mod ingest;
pub mod ingest_dap;
pub mod intake;
pub mod intake_floor;
pub mod journal;
mod judges;
mod packets;
pub mod pass_ledger;
pub mod replays;
pub mod series;

pub use checks::check_ingestion_header;
pub use judges::{batch_task, ingestion_kind, BatchTask, IngestionKind};
pub use packets::open_packet;

/// An ingestion batch of this server, opened: its signature checked against the trusted
/// ingestors and its header against its name and divvi's Prio2 parameters; its packets
/// are not read yet. With the Prio2 instance for its bins and the header's description
/// for messages.
pub(crate) fn open_ingestion_batch<'s>(
    server: &'s crate::config::Server,
    id: &crate::batch::BatchId,
) -> anyhow::Result<(
    crate::batch::OpenedBatch<'s, crate::wire::IngestionHeader>,
    crate::vdaf::Prio2Bins,
    String,
)> {
    let names = id.names(crate::batch::BatchKind::Ingestion);
    let object = server.ingestion.describe(&names.header);
    let batch = crate::batch::open_batch::<crate::wire::IngestionHeader>(
        server.ingestion.as_ref(),
        &names,
        &server.ingestor_trust,
        server.limits.max_object_bytes,
    )?;
    let prio = check_ingestion_header(id, &batch.header, &object)?;
    Ok((batch, prio, object))
}

/// Called with the number of packets just processed, for progress display.
pub type Tick<'a> = &'a (dyn Fn(u64) + Sync);

/// A tick that does nothing.
pub fn no_tick(_: u64) {}

/// Temporary files younger than this are left alone: a concurrent worker (another shard,
/// or the other stage on a shared folder) may be writing one right now, and no single
/// object write takes this long. Older ones are the leftovers of a killed job.
pub const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the stale temporary files a killed job left in the locations a stage writes,
/// logging how many. A failure to do so is logged, not fatal: it is housekeeping.
pub fn remove_stale_temporaries(locations: &[&dyn crate::store::ObjectStore]) {
    for location in locations {
        let where_ = location.describe("");
        match location.remove_stale_temporaries(STALE_TEMPORARY_AGE) {
            Ok(0) => tracing::debug!(location = %where_, "no stale temporary files"),
            Ok(removed) => {
                tracing::warn!(location = %where_, removed, "removed stale temporary files a killed job left")
            }
            Err(e) => tracing::warn!(error = %e, "could not remove stale temporary files"),
        }
    }
}

/// Packets are read and processed in chunks of this many: enough to keep every core busy,
/// few enough that memory does not grow with the batch.
pub const CHUNK: usize = 512;

/// A chunk also ends once this much of the batch was read for it: with Prio3 leader
/// shares of 33 KB (histogram 2048), 512 packets are 17 MB, and the first chunk read and
/// the last taken, each on one core, left the other idle at every batch's start and end.
const CHUNK_BYTES: u64 = 2 << 20;

/// The next chunk of a batch's packets ([`CHUNK`], [`CHUNK_BYTES`]) for
/// [`judge_in_chunks`]; an empty one at the end.
pub(crate) fn next_packets<P: crate::wire::Record>(
    packets: &mut crate::batch::PacketStream<P>,
) -> anyhow::Result<Vec<P>> {
    Ok(packets.next_chunk_within(CHUNK, CHUNK_BYTES)?)
}

/// Streams items (a batch's packets, a stash's records) in the chunks `next_chunk` reads
/// (empty at the end): `judge` runs on every item of a chunk in parallel (rayon), then
/// `take` sees each item with its verdict, in order.
///
/// Three steps overlap inside the pool so no core waits on another: reading (and hashing
/// or decrypting, and decoding) chunk N+1, judging chunk N, and taking the verdicts of
/// chunk N-1. At most three chunks are in memory.
pub(crate) fn judge_in_chunks<P, T>(
    mut next_chunk: impl FnMut() -> anyhow::Result<Vec<P>> + Send,
    judge: impl Fn(&P) -> T + Sync,
    mut take: impl FnMut(&P, T) -> anyhow::Result<()> + Send,
    tick: Tick,
) -> anyhow::Result<()>
where
    P: Send + Sync,
    T: Send,
{
    use rayon::prelude::*;
    let mut take_all = |chunk: Vec<P>, verdicts: Vec<T>| -> anyhow::Result<()> {
        for (packet, verdict) in chunk.iter().zip(verdicts) {
            take(packet, verdict)?;
        }
        tick(chunk.len() as u64);
        Ok(())
    };
    let mut judged: Option<(Vec<P>, Vec<T>)> = None;
    let mut chunk = next_chunk()?;
    while !chunk.is_empty() {
        let (next, (verdicts, taken)) = rayon::join(&mut next_chunk, || {
            rayon::join(
                // Small pieces: each packet costs tens of microseconds, and a large
                // last piece left one core idle at every chunk's end (192% CPU
                // against 197% with pieces of at most 4, 16 bins ECIES). A chunk the
                // byte bound cut short holds large reports (a third of a millisecond
                // each at histogram 2048): one at a time then.
                || {
                    let piece = if chunk.len() < CHUNK { 1 } else { 4 };
                    chunk
                        .par_iter()
                        .with_max_len(piece)
                        .map(&judge)
                        .collect::<Vec<T>>()
                },
                || judged.take().map_or(Ok(()), |(c, v)| take_all(c, v)),
            )
        });
        taken?;
        judged = Some((chunk, verdicts));
        chunk = next?;
    }
    judged.map_or(Ok(()), |(c, v)| take_all(c, v))
}

/// The ingestion batches of an aggregation (complete ones: the signature is written
/// last), sorted by time, then UUID. Batch objects under non-canonical keys are never
/// taken; each is logged as a warning.
pub fn ingestion_batches(
    server: &crate::config::Server,
    aggregation: &str,
) -> anyhow::Result<Vec<crate::batch::BatchId>> {
    crate::batch::validate_name("aggregation", aggregation).map_err(anyhow::Error::msg)?;
    let keys = server.ingestion.list(&format!("{aggregation}/"))?;
    let sorted = crate::skipped::ingestion_keys(server.ingestion.as_ref(), &keys);
    crate::skipped::warn_all(&sorted.odd);
    Ok(sorted.complete)
}

/// A packet left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    pub uuid: uuid::Uuid,
    pub reason: String,
}
