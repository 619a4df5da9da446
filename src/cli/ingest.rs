//! `divvi ingest` (ingestor): measurements into signed ingestion batches, with a journal
//! so an interrupted run can be finished; or, with `--task`, a DAP-18 upload body (what
//! `divvi client` writes) into signed DAP ingestion batches, without opening any share.

use super::outcome::config;
use super::progress;
use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use clap::Args;
use divvi::batch::parse_time;
use divvi::config::Ingestor;
use divvi::reports::{count_reports, read_reports, FileFormat, ReportForm, ReportSource};
use divvi::stages::ingest;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct IngestArgs {
    /// The ingestor's config (ingestor.toml, as keygen writes it).
    #[arg(long)]
    config: PathBuf,
    /// A DAP-18 task file (public JSON): the input is then an upload body of encoded
    /// reports, as `divvi client` writes it, not measurements.
    #[arg(long)]
    task: Option<PathBuf>,
    /// The measurements: one report per line, CSV or JSON lines; with `--task`, an
    /// upload body. `-` is standard input.
    #[arg(long)]
    input: PathBuf,
    /// File format (default: by extension; .jsonl/.json/.ndjson are JSON lines, else CSV;
    /// required with `--input -`).
    #[arg(long, conflicts_with = "task")]
    format: Option<FileFormat>,
    /// Each report is a 0/1 vector of length `bins`, or the indices of its set bins.
    #[arg(long, default_value = "vector", conflicts_with = "task")]
    form: ReportForm,
    /// The aggregation name (with `--task`, default: the task id in base64url).
    #[arg(long, required_unless_present = "task", allow_hyphen_values = true)]
    aggregation: Option<String>,
    /// Histogram bins of the ENPA aggregation (each report is a 0/1 vector this long).
    #[arg(long, required_unless_present = "task", conflicts_with = "task")]
    bins: Option<usize>,
    /// Differential-privacy epsilon, carried in headers as declared (no noise is added).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = epsilon_arg,
          conflicts_with = "task")]
    epsilon: f64,
    /// Reports per ingestion batch (at least 1).
    #[arg(long, default_value_t = 100_000, value_parser = batch_size_arg)]
    batch_size: usize,
    /// Batch time (default: now; with `--task`, the start of the earliest report's time
    /// unit, so a rerun names the same batches), minute precision.
    #[arg(long)]
    time: Option<String>,
    /// Record each batch written in full here; run again with the same journal, ingest
    /// skips those batches, so a killed ingest is finished by running it again.
    #[arg(long, conflicts_with = "task")]
    journal: Option<PathBuf>,
    /// How the result is printed: a JSON object per line, CSV, or a table.
    #[arg(long, default_value = "json")]
    output: super::output::Output,
}

pub(super) fn epsilon_arg(text: &str) -> Result<f64, String> {
    let epsilon: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    ingest::check_epsilon(epsilon).map(|()| epsilon)
}

pub(super) fn batch_size_arg(text: &str) -> Result<usize, String> {
    let size: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    ingest::check_batch_size(size).map(|()| size)
}

pub(super) fn ingest_command(a: IngestArgs) -> Result<ExitCode> {
    let ingestor = config(Ingestor::load(&a.config))?;
    if let Some(task) = &a.task {
        return ingest_dap_command(&ingestor, task, &a);
    }
    let (Some(aggregation), Some(bins)) = (a.aggregation.clone(), a.bins) else {
        bail!("--aggregation and --bins are required without --task");
    };
    let source = ReportSource::from_arg(&a.input);
    let format = source.format(a.format)?;
    let mut time = match &a.time {
        Some(t) => parse_time(t).map_err(|e| anyhow!(e))?,
        None => Utc::now(),
    };
    let mut journal = match &a.journal {
        Some(path) => {
            let j = open_journal(path, &source, &a, time)?;
            time = j.time;
            Some(j)
        }
        None => None,
    };
    let options = ingest::IngestOptions {
        aggregation,
        bins,
        epsilon: a.epsilon,
        batch_size: a.batch_size,
        time,
    };
    options.check()?;
    let written: Vec<_> = ingestor.targets.iter().map(|t| t.store.as_ref()).collect();
    divvi::stages::remove_stale_temporaries(&written);
    let reports = read_reports(&source, format, a.form, bins)?;
    // A file is read twice for the bar's total, but only when a bar is drawn.
    let total = match std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        true => count_reports(&source, format, a.form)?,
        false => None,
    };
    let bar = match total {
        Some(total) => progress::bar("ingest", total, "reports"),
        None => progress::counter("ingest", "reports"),
    };
    let report = ingest::ingest(&ingestor, &options, reports, journal.as_mut(), &|n| {
        bar.inc(n)
    })?;
    bar.finish_and_clear();
    super::output::print_one(a.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// The journal of an ingest of this input. It is bound to the input's digest, so the
/// input must be a file that can be read twice, not standard input.
pub(super) fn open_journal(
    path: &std::path::Path,
    source: &ReportSource,
    a: &IngestArgs,
    time: chrono::DateTime<Utc>,
) -> Result<divvi::stages::journal::Journal> {
    let ReportSource::File(input) = source else {
        bail!(
            "--journal needs --input to be a file: standard input cannot be read again to resume"
        );
    };
    let digest = divvi::batch::hex(&file_digest(input)?);
    let (Some(aggregation), Some(bins)) = (&a.aggregation, a.bins) else {
        bail!("--aggregation and --bins are required without --task");
    };
    divvi::stages::journal::Journal::open(path, &digest, aggregation, bins, a.batch_size, time)
}

/// `divvi ingest --task`: the whole upload body is read and checked before anything is
/// written. Only the public task file is read; no DAP key is needed or loaded.
fn ingest_dap_command(
    ingestor: &Ingestor,
    task: &std::path::Path,
    a: &IngestArgs,
) -> Result<ExitCode> {
    let task = divvi::dap::Task::load(task)?;
    let body = read_body(&a.input)?;
    let options = divvi::stages::ingest_dap::DapIngestOptions {
        aggregation: a.aggregation.clone(),
        batch_size: a.batch_size,
        time: a
            .time
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| anyhow!(e))?,
        now: Utc::now(),
    };
    let written: Vec<_> = ingestor.targets.iter().map(|t| t.store.as_ref()).collect();
    divvi::stages::remove_stale_temporaries(&written);
    let report = divvi::stages::ingest_dap::ingest_dap(ingestor, &task, &body, &options)
        .with_context(|| format!("ingesting {}", a.input.display()))?;
    super::output::print_one(a.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// The whole upload body, from a file or standard input (`-`).
fn read_body(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut body)
            .context("reading the upload body from standard input")?;
    } else {
        body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(body)
}

/// SHA-256 of a file, read in pieces.
pub(super) fn file_digest(path: &std::path::Path) -> Result<[u8; 32]> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hash = divvi::crypto::Sha256Stream::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok(hash.finish());
        }
        hash.update(&buf[..n]);
    }
}
