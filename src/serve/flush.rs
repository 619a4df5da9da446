//! From a sealed journal segment to signed ingestion batches: the segment's uploads are
//! joined into one upload body, each report id kept once (a client may retry an upload
//! whose answer it lost), and handed to the DAP ingestor. The body, and so the batch
//! ids, depend only on the segment: flushing a segment again after a crash (batches
//! written, segment not yet removed) writes the same objects, so no report counts twice.

use super::segments::read_sealed;
use crate::config::Ingestor;
use crate::crypto::sha256;
use crate::dap::{decode_reports, Task};
use crate::stages::ingest_dap::{ingest_reports, DapIngestOptions, DapIngestReport};
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::path::Path;

/// What one flush did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Flushed {
    pub segment: String,
    /// Reports in the segment, counting retried uploads' copies.
    pub uploaded: u64,
    /// Copies of a report id already in the segment, left out.
    pub repeats: u64,
    /// None when the segment held no report.
    pub ingest: Option<DapIngestReport>,
}

/// Writes a sealed segment's reports as ingestion batches of `batch_size` reports.
pub fn flush_segment(
    ingestor: &Ingestor,
    task: &Task,
    segment: &Path,
    aggregation: Option<&str>,
    batch_size: usize,
) -> Result<Flushed> {
    let payloads = read_sealed(segment)?;
    let mut seen = HashSet::new();
    let (mut kept, mut uploaded, mut repeats) = (Vec::new(), 0u64, 0u64);
    // The kept reports' encoding, hashed: it names the batches, as ingesting it would.
    let mut body = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let reports = decode_reports(task.version(), payload)
            .with_context(|| format!("{}: upload {i}", segment.display()))?;
        for report in reports {
            uploaded += 1;
            if !seen.insert(report.metadata.report_id.0) {
                repeats += 1;
                continue;
            }
            report
                .encode(task.version(), &mut body)
                .with_context(|| format!("{}: upload {i}: re-encoding", segment.display()))?;
            kept.push(report);
        }
    }
    let ingest = match kept.is_empty() {
        true => None,
        false => {
            let options = DapIngestOptions {
                aggregation: aggregation.map(str::to_string),
                batch_size,
                time: None,
                now: chrono::Utc::now(),
            };
            Some(
                ingest_reports(ingestor, task, &kept, &sha256(&body), &options)
                    .with_context(|| format!("flushing {}", segment.display()))?,
            )
        }
    };
    Ok(Flushed {
        segment: segment.display().to_string(),
        uploaded,
        repeats,
        ingest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dap::{encode_reports, DapClient, DapVersion, Measurement, VdafConfig};
    use crate::serve::segments::Journal;

    #[test]
    fn a_segment_flushes_each_report_once_and_again_to_the_same_batches() {
        let dir = tempfile::tempdir().unwrap();
        let vdaf = VdafConfig::Histogram {
            length: 4,
            chunk_length: 2,
        };
        let d = crate::demo::dap::deploy_task(
            &dir.path().join("d"),
            crate::crypto::PacketScheme::Hpke,
            "serve-test",
            &crate::keygen::Layout::Local,
            (DapVersion::Dap18, &vdaf),
            1,
        )
        .unwrap();
        let task = Task::load(&d.dir.join("task.json")).unwrap();
        let ingestor = Ingestor::load(&d.ingestor).unwrap();
        let client = DapClient::new(&task).unwrap();
        let now = chrono::Utc::now().timestamp() as u64;
        let reports: Vec<_> = (0..5)
            .map(|i| client.report(&Measurement::Histogram(i % 4), now).unwrap())
            .collect();
        let (mut journal, _) = Journal::open(&dir.path().join("journal")).unwrap();
        let first = encode_reports(DapVersion::Dap18, &reports[..3]).unwrap();
        // The second upload retries the third report, then sends two more.
        let second = encode_reports(DapVersion::Dap18, &reports[2..]).unwrap();
        journal.append(&[&first, &second]).unwrap();
        let segment = journal.seal().unwrap().unwrap();

        let once = flush_segment(&ingestor, &task, &segment, None, 2).unwrap();
        assert_eq!((once.uploaded, once.repeats), (6, 1));
        let ingest = once.ingest.unwrap();
        assert_eq!(ingest.reports, 5);
        assert_eq!(ingest.batches.len(), 3);
        // Killed before the segment was removed: flushed again, nothing new is written.
        let again = flush_segment(&ingestor, &task, &segment, None, 2).unwrap();
        let again = again.ingest.unwrap();
        assert!(again.batches.is_empty(), "{again:?}");
        assert_eq!(again.already_ingested, ingest.batches);
    }
}
