//! Command-line interface: one subcommand per job.

pub mod logging;
mod progress;

/// Prints a line to stdout; a closed pipe (`divvi ... | head`) ends output quietly
/// instead of panicking.
macro_rules! out {
    () => { $crate::cli::emit("\n") };
    ($($arg:tt)*) => { $crate::cli::emit(&format!("{}\n", format_args!($($arg)*))) };
}

mod check;
mod client;
mod job_metrics;
mod outcome;
mod runs;

pub use outcome::error_exit_code;
use outcome::{config, Ended, ExitCodes};

pub fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing output: {e}");
        std::process::exit(1);
    }
}

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use divvi::batch::{parse_time, Window};
use divvi::config::{read_config, Ingestor, Portal, PortalConfig, Server, ServerConfig};
use divvi::crypto::{PacketScheme, TrustSet, VerifyingKey};
use divvi::demo::{peak_rss, run_demo, DemoOptions};
use divvi::reports::{read_reports, FileFormat, ReportForm, ReportSource};
use divvi::stages::{collect, ingest, intake};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "divvi",
    version,
    about = "Privacy-preserving aggregate statistics: the ENPA Prio batch pipeline",
    after_help = outcome::EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as JSON or text; auto is JSON unless stderr is a terminal.
    #[arg(long, global = true, env = "DIVVI_LOG_FORMAT", default_value = "auto")]
    log_format: logging::LogFormat,
    /// Push the job's metrics to this Prometheus Pushgateway (http://host:port) when it ends.
    #[arg(long, global = true, env = "DIVVI_PUSHGATEWAY")]
    pushgateway: Option<String>,
    /// Serve the job's metrics at http://0.0.0.0:PORT/metrics while it runs.
    #[arg(long, global = true, env = "DIVVI_METRICS_PORT")]
    metrics_port: Option<u16>,
    /// detailed: 3 for nothing to do, 4 for waiting; scheduler: both exit 0 (see below).
    #[arg(
        long,
        global = true,
        env = "DIVVI_EXIT_CODES",
        default_value = "detailed"
    )]
    exit_codes: ExitCodes,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on local folders and compare with the true histogram.
    Demo(DemoArgs),
    /// Make every key and a matching set of configs for a new deployment.
    Keygen(KeygenArgs),
    /// (ingestor) Turn measurements into signed ingestion batches for both servers.
    Ingest(IngestArgs),
    /// (server) Verify ingestion batches and write validation batches.
    Intake(IntakeArgs),
    /// (server) Sum the valid packets of a window into a signed sum part.
    Aggregate(runs::AggregateArgs),
    /// (portal) Combine both servers' sum parts into the result.
    Collect(CollectArgs),
    /// (server) Per window: open, pending, done, late or failed.
    Status(runs::StatusArgs),
    /// (server 0) Leave a batch out of every run of its aggregation (server 1 follows):
    /// for a batch that cannot be summed and would hold its window back.
    Exclude(runs::ExcludeArgs),
    /// Show any ENPA object as JSON, with signature and digest verdicts.
    Inspect(InspectArgs),
    /// Load a server, ingestor or portal config and every key it names; no storage is touched.
    Check(check::CheckArgs),
    /// Throughput benchmark: one batch, intake and aggregate on both servers.
    Bench(BenchArgs),
    /// (DAP client) Turn JSON-lines measurements into a DAP-18 upload body of sealed reports.
    Client(client::ClientArgs),
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 100_000)]
    packets: u64,
    #[arg(long, default_value_t = 16)]
    bins: usize,
    #[arg(long, default_value = "ecies")]
    scheme: PacketScheme,
    /// Run each stage this many times and report the median run (and the range).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeat: u16,
    /// Where the batch is written and kept (default: a temporary folder, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Output: a table, JSON, or a markdown table (for the README).
    #[arg(long, default_value = "table")]
    output: BenchOutput,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchOutput {
    Table,
    Json,
    Markdown,
}

#[derive(Args)]
struct DemoArgs {
    /// Folder for keys, configs and buckets (default: a fresh ./divvi-demo/<time>).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 100_000)]
    reports: usize,
    #[arg(long, default_value_t = 16)]
    bins: usize,
    #[arg(long, default_value_t = 25_000)]
    batch_size: usize,
    /// How many reports to spoil on purpose (not-binary, undecryptable, bad r_pit, in turn).
    #[arg(long, default_value_t = 6)]
    invalid: usize,
    #[arg(long, default_value = "ecies")]
    scheme: PacketScheme,
    #[command(flatten)]
    layout: LayoutArgs,
}

/// Where keygen (and the demo) put the locations: local folders unless an S3 endpoint or
/// region is given.
#[derive(Args)]
struct LayoutArgs {
    /// Use buckets on this S3-compatible endpoint (e.g. http://127.0.0.1:8333).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// Use buckets on AWS S3 in this region (or the endpoint's region).
    #[arg(long)]
    s3_region: Option<String>,
    /// Path-style addressing (most S3-compatible servers need it).
    #[arg(long)]
    s3_path_style: bool,
    /// Prefix of every bucket name.
    #[arg(long, default_value = "divvi-")]
    s3_bucket_prefix: String,
    /// Reach each party's locations with its own AWS profile (ingestor, server0,
    /// server0-to-server1, server1, server1-to-server0, portal).
    #[arg(long)]
    s3_profiles: bool,
}

impl LayoutArgs {
    fn layout(&self) -> divvi::keygen::Layout {
        use divvi::keygen::{Layout, S3Layout};
        if self.s3_endpoint.is_none() && self.s3_region.is_none() {
            return Layout::Local;
        }
        Layout::S3(S3Layout {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone().unwrap_or_else(|| "us-east-1".into()),
            path_style: self.s3_path_style,
            bucket_prefix: self.s3_bucket_prefix.clone(),
            profiles: self.s3_profiles,
        })
    }
}

#[derive(Args)]
struct KeygenArgs {
    /// A new (or empty) folder to write keys/ and the four configs into.
    #[arg(long)]
    out: PathBuf,
    /// Packet encryption for the servers' keys.
    #[arg(long, default_value = "hpke")]
    scheme: PacketScheme,
    /// Deployment name, the first part of sum-part object names.
    #[arg(long, default_value = "divvi")]
    instance: String,
    /// Runs with fewer valid clients write no sum part (privacy floor, in the configs).
    #[arg(long, default_value_t = 100)]
    min_clients: u64,
    #[command(flatten)]
    layout: LayoutArgs,
}

#[derive(Args)]
struct IngestArgs {
    #[arg(long)]
    config: PathBuf,
    /// The measurements: one report per line, CSV or JSON lines; `-` is standard input.
    #[arg(long)]
    input: PathBuf,
    /// File format (default: by extension; .jsonl/.json/.ndjson are JSON lines, else CSV;
    /// required with `--input -`).
    #[arg(long)]
    format: Option<FileFormat>,
    /// Each report is a 0/1 vector of length `bins`, or the indices of its set bins.
    #[arg(long, default_value = "vector")]
    form: ReportForm,
    #[arg(long)]
    aggregation: String,
    #[arg(long)]
    bins: usize,
    /// Differential-privacy epsilon, carried in headers as declared (no noise is added).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = epsilon_arg)]
    epsilon: f64,
    /// Reports per ingestion batch (at least 1).
    #[arg(long, default_value_t = 100_000, value_parser = batch_size_arg)]
    batch_size: usize,
    /// Batch time (default: now), minute precision.
    #[arg(long)]
    time: Option<String>,
    /// Record each batch written in full here; run again with the same journal, ingest
    /// skips those batches, so a killed ingest is finished by running it again.
    #[arg(long)]
    journal: Option<PathBuf>,
}

#[derive(Args)]
struct IntakeArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    aggregation: String,
    /// Only this batch (its UUID), whenever it was written.
    #[arg(long, conflicts_with = "pending")]
    batch: Option<uuid::Uuid>,
    /// Every complete batch of the lookback window not validated yet (the default).
    #[arg(long)]
    pending: bool,
    /// How far back to look for batches (m, h or d).
    #[arg(long, default_value = "72h")]
    lookback: String,
    /// Report a batch still missing objects after this long (m, h or d).
    #[arg(long, default_value = "2h")]
    incomplete_after: String,
    /// This worker's part of the pending work, i/N (default: from Kubernetes
    /// JOB_COMPLETION_INDEX and DIVVI_SHARD_COUNT, else all of it).
    #[arg(long)]
    shard: Option<String>,
}

/// The portal's config, an aggregation, a window and which of its runs.
#[derive(Args)]
struct CollectArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    aggregation: String,
    /// First minute of the window (YYYYmmddHHMM, YYYY/mm/dd/HH/MM or RFC 3339).
    #[arg(long)]
    start: String,
    /// Last minute of the window, included.
    #[arg(long)]
    end: String,
    /// Which run of the window: 0 is the regular run, k >= 1 its k-th late run.
    #[arg(long, default_value_t = 0)]
    run: u32,
    /// Allow a window longer than 31 days (a longer one is most likely a mistyped date).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct InspectArgs {
    file: PathBuf,
    /// A trusted signing key, as ID=BASE64 (SPKI or raw point); repeatable.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Trust the signing keys a server or portal config trusts (and a server's own).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Show at most this many records.
    #[arg(long, default_value_t = usize::MAX)]
    limit: usize,
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    logging::init(
        match cli.command {
            Command::Demo(_) | Command::Bench(_) => "error",
            _ => "warn",
        },
        cli.log_format,
    );
    let metrics_args = MetricsArgs {
        pushgateway: cli.pushgateway,
        port: cli.metrics_port,
    };
    let exit_codes = cli.exit_codes;
    match cli.command {
        Command::Demo(a) => demo(a),
        Command::Keygen(a) => {
            let limits = divvi::config::Limits {
                min_clients: a.min_clients,
                ..Default::default()
            };
            let d =
                divvi::keygen::keygen(&a.out, a.scheme, &a.instance, &a.layout.layout(), limits)?;
            out!("wrote keys to {}/keys and configs:", d.dir.display());
            for p in [&d.ingestor, &d.servers[0], &d.servers[1], &d.portal] {
                out!("  {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(a) => ingest_command(a),
        Command::Intake(a) => Ok(intake_command(a, &metrics_args)?.exit_code(exit_codes)),
        Command::Aggregate(a) => {
            Ok(runs::aggregate_command(a, &metrics_args)?.exit_code(exit_codes))
        }
        Command::Status(a) => runs::status_command(a),
        Command::Exclude(a) => runs::exclude_command(a),
        Command::Collect(a) => {
            let portal = config(Portal::load(&a.config))?;
            divvi::stages::remove_stale_temporaries(&[portal.results.as_ref()]);
            let window = window(&a.start, &a.end, a.force)?;
            let result = collect::collect_run(&portal, &a.aggregation, &window, a.run)?;
            let valid = (result.valid_clients).map_or("unknown".into(), |v| v.to_string());
            out!(
                "aggregation {}  window {}  valid clients {valid}  judged (total_individual_clients) {}  invalid packets {}",
                result.aggregation,
                result.window,
                result.total_individual_clients,
                result.invalid_packets
            );
            out!("{:>6}  {:>12}", "bin", "count");
            for (i, c) in result.histogram.iter().enumerate() {
                out!("{i:>6}  {c:>12}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(a) => bench(a),
        Command::Check(a) => check::check_command(a),
        Command::Client(a) => client::client_command(a),
        Command::Inspect(a) => {
            let trust = inspect_trust(&a)?;
            let out = divvi::inspect::inspect(&a.file, trust.as_ref(), a.limit)?;
            out!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn epsilon_arg(text: &str) -> Result<f64, String> {
    let epsilon: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    ingest::check_epsilon(epsilon).map(|()| epsilon)
}

fn batch_size_arg(text: &str) -> Result<usize, String> {
    let size: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    ingest::check_batch_size(size).map(|()| size)
}

fn ingest_command(a: IngestArgs) -> Result<ExitCode> {
    let ingestor = config(Ingestor::load(&a.config))?;
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
        aggregation: a.aggregation,
        bins: a.bins,
        epsilon: a.epsilon,
        batch_size: a.batch_size,
        time,
    };
    options.check()?;
    let written: Vec<_> = ingestor.targets.iter().map(|t| t.store.as_ref()).collect();
    divvi::stages::remove_stale_temporaries(&written);
    let reports = read_reports(&source, format, a.form, a.bins)?;
    let bar = progress::bar("ingest", 0);
    let report = ingest::ingest(&ingestor, &options, reports, journal.as_mut(), &|n| {
        bar.inc(n)
    })?;
    bar.finish_and_clear();
    out!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// The journal of an ingest of this input. It is bound to the input's digest, so the
/// input must be a file that can be read twice, not standard input.
fn open_journal(
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
    divvi::stages::journal::Journal::open(path, &digest, &a.aggregation, a.bins, a.batch_size, time)
}

/// Where a job's metrics go (global flags).
pub struct MetricsArgs {
    pub pushgateway: Option<String>,
    pub port: Option<u16>,
}

fn intake_command(a: IntakeArgs, m: &MetricsArgs) -> Result<Ended> {
    use divvi::schedule::{parse_duration, pending_intake, Shard};
    let server = config(Server::load(&a.config))?;
    let metrics = job_metrics::JobMetrics::start("intake", &a.aggregation, &server, m.port)?;
    let server = metrics.meter(server);
    divvi::stages::remove_stale_temporaries(&server.written_locations());
    let now = Utc::now();
    let mut survey = divvi::skipped::survey(&server, &a.aggregation)?;
    let (ids, incomplete, shard) = match a.batch {
        Some(uuid) => {
            let id = survey.batches.iter().find(|id| id.uuid == uuid).cloned();
            let id = id.ok_or_else(|| {
                anyhow!("no ingestion batch {uuid} in aggregation {}", a.aggregation)
            })?;
            (vec![id], Vec::new(), Shard::ALL)
        }
        None => {
            let shard = match &a.shard {
                Some(text) => Shard::parse(text)?,
                None => Shard::from_env()?.unwrap_or(Shard::ALL),
            };
            let lookback = parse_duration(&a.lookback)?;
            let (ids, incomplete) = pending_intake(
                &server,
                &a.aggregation,
                lookback,
                parse_duration(&a.incomplete_after)?,
                shard,
                now,
            )?;
            let cutoff = divvi::batch::truncate_to_minute(now) - lookback;
            let old = divvi::skipped::unvalidated_before(
                &server,
                &a.aggregation,
                &survey.batches,
                cutoff,
            )?;
            survey.skipped.extend(old);
            let unfinished = divvi::skipped::incomplete_before(
                &server,
                &a.aggregation,
                &survey.incomplete,
                cutoff,
            );
            survey.skipped.extend(unfinished);
            (ids, incomplete, shard)
        }
    };
    divvi::skipped::warn_all(&survey.skipped);
    for i in incomplete.iter().filter(|i| i.overdue) {
        tracing::warn!(batch = %i.batch, age_minutes = i.age_minutes, missing = ?i.missing, "ingestion batch still incomplete");
    }
    metrics.incomplete(
        incomplete.len(),
        incomplete.iter().filter(|i| i.overdue).count(),
    );
    let mut failed = 0;
    for id in &ids {
        let bar = progress::bar("intake", 0);
        match intake::intake(&server, id, &|n| bar.inc(n)) {
            Ok(r) => {
                metrics.packets(r.verified, r.rejected.len() as u64);
                metrics.batch("done");
                out!("{}", serde_json::to_string(&r)?);
            }
            Err(e) => {
                failed += 1;
                metrics.batch("failed");
                eprintln!("error: intake of {id}: {e:#}");
            }
        }
        bar.finish_and_clear();
    }
    let ended = if failed > 0 {
        Ended::Failed
    } else if !ids.is_empty() {
        Ended::Done
    } else if !incomplete.is_empty() {
        // Batches the ingestor has not finished writing: they come at a later turn.
        Ended::Waiting
    } else {
        Ended::NothingToDo
    };
    let summary = serde_json::json!({
        "shard": shard.to_string(),
        "batches": ids.len(),
        "failed": failed,
        "incomplete": incomplete,
        "outcome": ended.name(),
        "skipped": survey.skipped,
    });
    eprintln!("{summary}");
    let shard_label = (shard != Shard::ALL).then(|| shard.to_string());
    metrics.finish(failed == 0, m.pushgateway.as_deref(), shard_label);
    Ok(ended)
}

/// SHA-256 of a file, read in pieces.
fn file_digest(path: &std::path::Path) -> Result<[u8; 32]> {
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

/// Windows longer than this need `--force`: a longer one is most likely a mistyped date,
/// and would read and sum far more than meant.
const MAX_WINDOW_DAYS: i64 = 31;

fn window(start: &str, end: &str, force: bool) -> Result<Window> {
    let start = parse_time(start).map_err(|e| anyhow!(e))?;
    let end = parse_time(end).map_err(|e| anyhow!(e))?;
    let window = Window::new(start, end).map_err(|e| anyhow!(e))?;
    let span = window.end - window.start;
    if span > chrono::TimeDelta::days(MAX_WINDOW_DAYS) && !force {
        bail!(
            "window --start {start} --end {end} spans {} days, over the bound of {MAX_WINDOW_DAYS} days (a mistyped date?); pass --force if it is meant",
            span.num_days()
        );
    }
    Ok(window)
}

fn inspect_trust(a: &InspectArgs) -> Result<Option<TrustSet>> {
    if a.keys.is_empty() && a.config.is_none() {
        return Ok(None);
    }
    let mut trust = TrustSet::new();
    for k in &a.keys {
        let (id, key) = k
            .split_once('=')
            .ok_or_else(|| anyhow!("--key takes ID=BASE64"))?;
        trust.insert(
            id,
            VerifyingKey::from_base64(key).with_context(|| format!("--key {id}"))?,
        );
    }
    if let Some(path) = &a.config {
        if let Ok((c, base)) = read_config::<ServerConfig>(path) {
            for set in [&c.trust.ingestors, &c.trust.peer] {
                for k in set {
                    trust.insert(&k.id, VerifyingKey::from_base64(&k.public_key)?);
                }
            }
            // Read for its public half only: an open key file draws a warning here.
            let own = c
                .signing_key
                .load(&base, divvi::config::KeyFileCheck::Warn)?;
            trust.insert(own.key_id(), own.verifying_key());
        } else {
            let (c, _): (PortalConfig, _) =
                read_config(path).context("--config is neither a server nor a portal config")?;
            for s in &c.servers {
                for k in &s.signing_keys {
                    trust.insert(&k.id, VerifyingKey::from_base64(&k.public_key)?);
                }
            }
        }
    }
    Ok(Some(trust))
}

fn bench(a: BenchArgs) -> Result<ExitCode> {
    let temp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("bench")
        }
    };
    let bars = progress::Bars::default();
    let r = divvi::bench::run_bench(
        &dir,
        a.packets,
        a.bins,
        a.scheme,
        usize::from(a.repeat),
        &bars,
    )?;
    match a.output {
        BenchOutput::Json => out!("{}", serde_json::to_string_pretty(&r)?),
        BenchOutput::Markdown => out!("{}", r.markdown().trim_end()),
        BenchOutput::Table => {
            out!(
                "{} packets, {} bins, {} packets, {} cores (batch made in {:.1}s)",
                r.packets,
                r.bins,
                r.scheme,
                r.cores,
                r.generate_seconds
            );
            out!(
                "{:>12}  {:>9}  {:>10}  {:>6}  {:>9}  {:>19}",
                "stage",
                "seconds",
                "packets/s",
                "CPU",
                "peak RSS",
                "range (runs)"
            );
            for s in &r.stages {
                let rss = s.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB"));
                let range = format!(
                    "{:.0}-{:.0} ({})",
                    s.packets_per_second_min, s.packets_per_second_max, s.runs
                );
                out!(
                    "{:>12}  {:>9.2}  {:>10.0}  {:>5.0}%  {:>9}  {:>19}",
                    s.stage,
                    s.seconds,
                    s.packets_per_second,
                    s.cpu_percent,
                    rss,
                    range
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(a: DemoArgs) -> Result<ExitCode> {
    let dir = a.dir.unwrap_or_else(|| {
        PathBuf::from("divvi-demo").join(Utc::now().format("%Y%m%d-%H%M%S").to_string())
    });
    let options = DemoOptions {
        dir,
        reports: a.reports,
        bins: a.bins,
        batch_size: a.batch_size,
        invalid: a.invalid,
        scheme: a.scheme,
        layout: a.layout.layout(),
    };
    if options.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    out!(
        "divvi demo: {} reports, {} bins, batches of {}, {} spoiled on purpose, {} packets, in {}",
        options.reports,
        options.bins,
        options.batch_size,
        options.invalid,
        options.scheme,
        options.dir.display()
    );
    let bars = progress::Bars::default();
    let report = run_demo(&options, &bars)?;
    out!();
    out!("{:>5}  {:>10}  {:>10}", "bin", "divvi", "truth");
    for (i, (d, t)) in report.histogram.iter().zip(&report.truth).enumerate() {
        let mark = if d == t { "" } else { "  <-- differs" };
        out!("{i:>5}  {d:>10}  {t:>10}{mark}");
    }
    out!();
    out!("{:>12}  {:>9}  {:>12}", "stage", "seconds", "packets/s");
    for s in &report.stages {
        // Collect reads two small sum parts: a packet rate means nothing there.
        let rate = match s.packets {
            0 => "-".to_string(),
            _ => format!("{:.0}", s.packets_per_second()),
        };
        out!("{:>12}  {:>9.2}  {:>12}", s.stage, s.seconds, rate);
    }
    if let Some(rss) = peak_rss() {
        out!("peak RSS {:.0} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    out!(
        "clients counted {}, invalid packets found {} (spoiled {}):",
        report.clients,
        report.invalid_found,
        report.invalid_injected
    );
    for r in &report.invalid {
        out!("  {}  {}", r.uuid, r.reason);
    }
    if report.matches() {
        out!("OK: the histogram matches the truth");
        Ok(ExitCode::SUCCESS)
    } else {
        out!("FAILED: the histogram or the invalid count differs from the truth");
        Ok(ExitCode::FAILURE)
    }
}
