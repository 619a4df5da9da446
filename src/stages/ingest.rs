//! The ingestor: measurements → Prio2 shares → one sealed packet per server → signed
//! ingestion batches (three-object form, as real ingestors write them) for both servers,
//! with the same batch UUID, packet UUIDs and `r_pit`.

use super::journal::Journal;
use super::{Tick, CHUNK};
use crate::batch::{BatchId, BatchKind, BatchWriter};
use crate::config::Ingestor;
use crate::crypto::PacketDigest;
use crate::vdaf::{Prio2Bins, PRIME};
use crate::wire::{DataSharePacket, IngestionHeader};
use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub aggregation: String,
    pub bins: usize,
    /// Carried in the header as the deployment declares it; divvi adds no noise itself.
    pub epsilon: f64,
    pub batch_size: usize,
    /// The batch time (minute precision) used in object names.
    pub time: DateTime<Utc>,
}

impl IngestOptions {
    /// Refuses options no run can honour, before anything is written.
    pub fn check(&self) -> Result<()> {
        check_batch_size(self.batch_size).map_err(|e| anyhow!("batch size: {e}"))?;
        check_epsilon(self.epsilon).map_err(|e| anyhow!("epsilon: {e}"))
    }
}

/// A batch holds at least one report (0 would make every report a batch of its own).
pub fn check_batch_size(batch_size: usize) -> Result<(), String> {
    match batch_size {
        0 => Err("must be at least 1, got 0".into()),
        _ => Ok(()),
    }
}

/// Epsilon is a privacy budget the header declares: a finite number, not negative.
pub fn check_epsilon(epsilon: f64) -> Result<(), String> {
    match epsilon.is_finite() && epsilon >= 0.0 {
        true => Ok(()),
        false => Err(format!("must be a finite number >= 0, got {epsilon}")),
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestReport {
    pub batches: Vec<String>,
    pub packets: u64,
}

/// Makes the pair of packets (server 0, server 1) for one measurement.
pub struct PacketMaker<'a> {
    prio: Prio2Bins,
    ingestor: &'a Ingestor,
}

impl<'a> PacketMaker<'a> {
    pub fn new(ingestor: &'a Ingestor, bins: usize) -> Result<Self> {
        let prio = Prio2Bins::new(bins as i64)?;
        Ok(PacketMaker { prio, ingestor })
    }

    /// A random evaluation point that the servers will accept.
    pub fn random_r_pit(&self) -> i64 {
        loop {
            let r = rand::random::<u32>() % PRIME;
            if self.prio.query_point(i64::from(r)).is_ok() {
                return i64::from(r);
            }
        }
    }

    /// Shards and seals a measurement. Entries other than 0/1 are sealed as given (their
    /// proof will fail); callers that take user input check it first.
    pub fn make(&self, measurement: &[u32]) -> Result<[DataSharePacket; 2]> {
        let (leader, helper) = self.prio.shard(measurement)?;
        let uuid = Uuid::new_v4();
        let r_pit = self.random_r_pit();
        let seal =
            |target: &crate::config::IngestTarget, share: &[u8]| -> Result<DataSharePacket> {
                Ok(DataSharePacket {
                    uuid,
                    encrypted_payload: target.key.seal(share, uuid.as_bytes())?,
                    encryption_key_id: Some(target.key_id.clone()),
                    r_pit,
                    version_configuration: None,
                    device_nonce: None,
                })
            };
        Ok([
            seal(&self.ingestor.targets[0], &leader)?,
            seal(&self.ingestor.targets[1], &helper)?,
        ])
    }
}

/// One ingestion batch being written to both servers' ingestion locations.
pub struct IngestionBatch<'a> {
    pub id: BatchId,
    ingestor: &'a Ingestor,
    writers: [BatchWriter<DataSharePacket>; 2],
    started: DateTime<Utc>,
}

impl<'a> IngestionBatch<'a> {
    pub fn new(ingestor: &'a Ingestor, aggregation: &str, time: DateTime<Utc>) -> Result<Self> {
        let id = BatchId::new(aggregation, time, Uuid::new_v4()).map_err(|e| anyhow!(e))?;
        let names = id.names(BatchKind::Ingestion);
        let writers = [
            BatchWriter::three_object(
                ingestor.targets[0].store.as_ref(),
                names.clone(),
                PacketDigest::Sha256,
            )?,
            BatchWriter::three_object(
                ingestor.targets[1].store.as_ref(),
                names,
                PacketDigest::Sha256,
            )?,
        ];
        Ok(IngestionBatch {
            id,
            ingestor,
            writers,
            started: Utc::now(),
        })
    }

    pub fn append(&mut self, pair: &[DataSharePacket; 2]) -> Result<()> {
        for (writer, packet) in self.writers.iter_mut().zip(pair) {
            writer.append(packet)?;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.writers[0].count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes headers and signatures (signature last) to both servers.
    pub fn finish(self, bins: usize, epsilon: f64) -> Result<BatchId> {
        let key = &self.ingestor.signing_key;
        let (start, end) = (
            self.started.timestamp_millis(),
            Utc::now().timestamp_millis(),
        );
        let bins = i32::try_from(bins).context("bins does not fit an Avro int")?;
        for (writer, target) in self.writers.into_iter().zip(&self.ingestor.targets) {
            let header = |digest| IngestionHeader {
                batch_uuid: self.id.uuid,
                name: self.id.aggregation.clone(),
                bins,
                epsilon,
                prime: i64::from(PRIME),
                number_of_servers: 2,
                hamming_weight: None,
                batch_start_time: start,
                batch_end_time: end,
                packet_file_digest: digest,
            };
            writer.finish(header, key, &[target.store.as_ref()])?;
        }
        Ok(self.id)
    }
}

/// Cuts a stream of packet pairs into batches of `batch_size`, for both servers.
pub struct Batcher<'a> {
    ingestor: &'a Ingestor,
    options: &'a IngestOptions,
    current: Option<IngestionBatch<'a>>,
    report: IngestReport,
    journal: Option<&'a mut Journal>,
    index: usize,
}

impl<'a> Batcher<'a> {
    pub fn new(ingestor: &'a Ingestor, options: &'a IngestOptions) -> Self {
        Batcher {
            ingestor,
            options,
            current: None,
            report: IngestReport::default(),
            journal: None,
            index: 0,
        }
    }

    /// Records each finished batch in `journal`, numbering on from its finished ones.
    pub fn with_journal(mut self, journal: &'a mut Journal) -> Self {
        self.index = journal.done;
        self.journal = Some(journal);
        self
    }

    pub fn push(&mut self, pair: &[DataSharePacket; 2]) -> Result<()> {
        let batch = match &mut self.current {
            Some(b) => b,
            None => self.current.insert(IngestionBatch::new(
                self.ingestor,
                &self.options.aggregation,
                self.options.time,
            )?),
        };
        batch.append(pair)?;
        self.report.packets += 1;
        if batch.len() as usize >= self.options.batch_size {
            self.close_batch()?;
        }
        Ok(())
    }

    fn close_batch(&mut self) -> Result<()> {
        if let Some(full) = self.current.take() {
            let id = full.finish(self.options.bins, self.options.epsilon)?;
            if let Some(journal) = self.journal.as_deref_mut() {
                journal.record(self.index, &id.to_string())?;
            }
            self.index += 1;
            self.report.batches.push(id.to_string());
        }
        Ok(())
    }

    /// Writes the last, partly filled batch.
    pub fn finish(mut self) -> Result<IngestReport> {
        self.close_batch()?;
        Ok(self.report)
    }
}

/// Ingests measurements into batches of `batch_size` reports for both servers; packets
/// are made in parallel, a chunk at a time. With a journal, the reports of batches an
/// earlier run wrote in full are skipped, and each new batch is recorded.
pub fn ingest(
    ingestor: &Ingestor,
    options: &IngestOptions,
    measurements: impl Iterator<Item = Result<Vec<u32>>>,
    journal: Option<&mut Journal>,
    tick: Tick,
) -> Result<IngestReport> {
    options.check()?;
    let maker = PacketMaker::new(ingestor, options.bins)?;
    let mut batcher = Batcher::new(ingestor, options);
    let mut measurements = measurements.peekable();
    if let Some(journal) = journal {
        let skip = journal.done.saturating_mul(options.batch_size);
        for m in measurements.by_ref().take(skip) {
            m?;
        }
        batcher = batcher.with_journal(journal);
    }
    while measurements.peek().is_some() {
        let chunk: Vec<Vec<u32>> = measurements.by_ref().take(CHUNK).collect::<Result<_>>()?;
        let pairs: Vec<[DataSharePacket; 2]> = chunk
            .par_iter()
            .map(|m| maker.make(m))
            .collect::<Result<_>>()?;
        for pair in &pairs {
            batcher.push(pair)?;
        }
        tick(pairs.len() as u64);
    }
    batcher.finish()
}
