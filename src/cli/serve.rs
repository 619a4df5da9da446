//! `divvi serve`: the ingestor's DAP upload endpoint.

use anyhow::{Context, Result};
use clap::Args;
use divvi::config::Ingestor;
use divvi::dap::Task;
use divvi::serve::durable::Rotation;
use divvi::serve::http::{
    serve, ServeOptions, DEFAULT_BATCH_SIZE, DEFAULT_MAX_BODY, DEFAULT_MAX_PENDING_SEGMENTS,
    DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_SECONDS, JOURNAL_QUEUE,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// The ingestor's config (both servers' ingestion locations, its signing key).
    #[arg(long)]
    config: PathBuf,
    /// The task file of the task served.
    #[arg(long)]
    task: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The write-ahead journal's folder, on local disk: uploads are acknowledged once
    /// fsynced there.
    #[arg(long)]
    journal: PathBuf,
    /// Seal a journal segment into batches once it holds this many bytes.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_BYTES)]
    segment_bytes: u64,
    /// ... or once it is this many seconds old.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SECONDS)]
    segment_seconds: u64,
    /// Reports per ingestion batch.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// The largest upload body taken, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
    /// The aggregation name (default: the task id).
    #[arg(long)]
    aggregation: Option<String>,
    /// Sealed segments that may wait to be flushed into batches (storage slow or down)
    /// before uploads are answered 503 and /readyz fails.
    #[arg(long, default_value_t = DEFAULT_MAX_PENDING_SEGMENTS)]
    max_pending_segments: usize,
    /// Serve counters on this port as GET /metrics (Prometheus text format), apart from
    /// the port devices reach. 0 picks a free port.
    #[arg(long)]
    metrics_port: Option<u16>,
}

pub fn serve_command(a: ServeArgs) -> Result<ExitCode> {
    let ingestor = Ingestor::load(&a.config)
        .with_context(|| format!("loading ingestor config {}", a.config.display()))?;
    let task = Task::load(&a.task).with_context(|| format!("loading task {}", a.task.display()))?;
    let options = ServeOptions {
        listen: a.listen,
        journal: a.journal,
        rotation: Rotation {
            max_bytes: a.segment_bytes,
            max_age: Duration::from_secs(a.segment_seconds),
        },
        queue: JOURNAL_QUEUE,
        max_body: a.max_body,
        batch_size: a.batch_size,
        aggregation: a.aggregation,
        max_pending_segments: a.max_pending_segments,
        metrics_port: a.metrics_port,
    };
    serve(
        ingestor,
        task,
        options,
        |bound| {
            // One line on stdout, so a supervisor or test learns the ports.
            println!(
                "{}",
                serde_json::json!({
                    "listening": bound.listening.to_string(),
                    "metrics": bound.metrics.map(|m| m.to_string()),
                })
            );
        },
        None,
    )?;
    Ok(ExitCode::SUCCESS)
}
