//! An ingest journal: one line per ingestion batch written in full (both servers' copies,
//! signatures last). Run again with the same journal, ingest skips the reports of those
//! batches, so a killed ingest is finished by running it again, and no report is sent
//! twice. The first line pins what the journal is about (input digest, aggregation, bins,
//! batch size, batch time); a different input or setting is refused.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Batches already written in full by earlier runs.
    pub done: usize,
    /// The batch time of the first run, kept so every batch of the input shares it.
    pub time: DateTime<Utc>,
}

fn header(
    input_digest: &str,
    aggregation: &str,
    bins: usize,
    batch_size: usize,
    time: DateTime<Utc>,
) -> String {
    format!(
        "divvi-ingest-journal v1 input-sha256={input_digest} aggregation={aggregation} bins={bins} batch-size={batch_size} time={}",
        time.to_rfc3339()
    )
}

impl Journal {
    /// Opens (or starts) the journal for this input and these settings; `time` is used
    /// only when the journal is new.
    pub fn open(
        path: &Path,
        input_digest: &str,
        aggregation: &str,
        bins: usize,
        batch_size: usize,
        time: DateTime<Utc>,
    ) -> Result<Journal> {
        let what = || format!("ingest journal {}", path.display());
        let mut lines = Vec::new();
        if path.exists() {
            for line in BufReader::new(File::open(path).with_context(what)?).lines() {
                lines.push(line.with_context(what)?);
            }
        }
        let time = match lines.first() {
            None => {
                let mut file = File::create(path).with_context(what)?;
                writeln!(
                    file,
                    "{}",
                    header(input_digest, aggregation, bins, batch_size, time)
                )
                .and_then(|()| file.sync_all())
                .with_context(what)?;
                time
            }
            Some(first) => {
                let kept = first
                    .rsplit_once(" time=")
                    .and_then(|(_, t)| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                let Some(kept) = kept else {
                    bail!(
                        "{}: first line is not a divvi ingest journal header",
                        what()
                    );
                };
                if *first != header(input_digest, aggregation, bins, batch_size, kept) {
                    bail!(
                        "{}: written for another input or other settings ({first}); use a new journal",
                        what()
                    );
                }
                kept
            }
        };
        let done = lines
            .iter()
            .skip(1)
            .filter(|l| l.starts_with("batch "))
            .count();
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(what)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            done,
            time,
        })
    }

    /// Records a batch written in full (durably, before the next batch starts).
    pub fn record(&mut self, index: usize, batch: &str) -> Result<()> {
        writeln!(self.file, "batch {index} {batch}")
            .and_then(|()| self.file.sync_all())
            .with_context(|| format!("ingest journal {}", self.path.display()))
    }
}
