//! `divvi bench --upload`: the upload server under load on loopback. Starts `divvi serve`
//! in this process over a fresh DAP task, lets many keep-alive HTTP clients upload sealed
//! reports as fast as they are answered for a while, and reports the rate, the latency
//! of an acknowledgement, the journal's group commits against the disk's own fsync rate
//! (what bounds an acknowledged upload), memory over time, and how long the final flush
//! took. Each upload carries fresh report ids (written over the pool's), so the server
//! journals and flushes every one as a distinct report, as it would from real devices;
//! the ciphertexts no longer match their ids, which only the servers could notice.

use crate::config::Ingestor;
use crate::dap::{DapClient, DapVersion, Task, VdafConfig};
use crate::demo::dap::deploy_task;
use crate::demo::draw;
use crate::keygen::Layout;
use crate::serve::http::{serve, Bound, ServeOptions};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rayon::prelude::*;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct UploadLoad {
    /// Concurrent clients, each on its own keep-alive connection.
    pub clients: usize,
    /// How long the clients upload.
    pub seconds: f64,
    pub reports_per_upload: usize,
    /// Reports sealed before the run; uploads cycle through them, with fresh ids.
    pub pool: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadBenchReport {
    pub vdaf: String,
    pub clients: usize,
    pub reports_per_upload: usize,
    pub seconds: f64,
    pub uploads: u64,
    pub reports_per_second: f64,
    pub uploads_per_second: f64,
    /// Time from sending an upload to its acknowledgement (durable in the journal).
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Uploads answered 503 (the journal queue full, or flushing behind); retried.
    pub busy_answers: u64,
    /// The journal's group commits (one fsync each), from the server's own metrics.
    pub commits_per_second: f64,
    pub uploads_per_commit: f64,
    /// fsyncs per second one thread gets from the journal's disk, appending small records.
    pub disk_fsyncs_per_second: f64,
    /// CPU time of the whole process (server and clients) over wall time, in percent.
    pub cpu_percent: f64,
    /// Resident memory sampled each second of the run (MiB).
    pub rss_mib_samples: Vec<f64>,
    /// From the stop to the end of the server: draining, then flushing the journal.
    pub shutdown_seconds: f64,
}

impl UploadBenchReport {
    /// Resident memory over the run (MiB): the first sample, the highest, the last.
    pub fn rss_mib_first_max_last(&self) -> (f64, f64, f64) {
        let samples = &self.rss_mib_samples;
        (
            samples.first().copied().unwrap_or(0.0),
            samples.iter().copied().fold(0.0, f64::max),
            samples.last().copied().unwrap_or(0.0),
        )
    }
}

/// How an upload is sent in a task's DAP draft.
#[derive(Clone)]
struct UploadRequest {
    /// On the leader's URL.
    path: String,
    method: hyper::Method,
    content_type: &'static str,
}

impl UploadRequest {
    fn of(task: &Task) -> Self {
        let path = format!("/leader/tasks/{}/reports", task.task_id().to_base64url());
        match task.version() {
            DapVersion::Dap09 => UploadRequest {
                path,
                method: hyper::Method::PUT,
                content_type: crate::serve::routes::REPORT_TYPE_09,
            },
            DapVersion::Dap18 => UploadRequest {
                path,
                method: hyper::Method::POST,
                content_type: crate::serve::routes::UPLOAD_REQUEST_TYPE_18,
            },
        }
    }
}

pub fn run_upload_bench(
    dir: &Path,
    name: &str,
    (version, vdaf): (DapVersion, &VdafConfig),
    load: &UploadLoad,
) -> Result<UploadBenchReport> {
    if load.clients == 0 || load.reports_per_upload == 0 || load.pool == 0 {
        bail!("--clients, --reports-per-upload and --packets must be at least 1");
    }
    if version == DapVersion::Dap09 && load.reports_per_upload != 1 {
        bail!("a DAP-09 upload is one report: --reports-per-upload 1");
    }
    let d = deploy_task(
        dir,
        crate::crypto::PacketScheme::Ecies,
        "divvi-bench",
        &Layout::Local,
        (version, vdaf),
        100,
    )?;
    let task = Task::load(&d.dir.join("task.json"))?;
    let ingestor = Ingestor::load(&d.ingestor)?;
    let bodies = upload_bodies(&task, vdaf, load)?;
    let journal = d.dir.join("journal");
    std::fs::create_dir_all(&journal)?;
    let disk_fsyncs_per_second = fsync_rate(&journal, Duration::from_secs(2))?;

    let options = ServeOptions {
        metrics_port: Some(0),
        ..ServeOptions::with_defaults(SocketAddr::from(([127, 0, 0, 1], 0)), journal)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (bound_tx, bound_rx) = std::sync::mpsc::channel::<Bound>();
    let server = {
        let task = task.clone();
        std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                serve(
                    ingestor,
                    task,
                    options,
                    move |b| {
                        let _ = bound_tx.send(b);
                    },
                    Some(stopped),
                )
            })?
    };
    let bound = bound_rx
        .recv_timeout(Duration::from_secs(30))
        .context("the upload server did not start")?;
    let metrics = bound
        .metrics
        .context("the upload server serves no metrics")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let commits_before = runtime.block_on(journal_commits(metrics))?;
    let cpu_before = crate::process::cpu_seconds();
    let started = Instant::now();
    let outcome = runtime.block_on(drive(
        bound.listening,
        UploadRequest::of(&task),
        Arc::new(bodies),
        load,
    ))?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = crate::process::cpu_seconds() - cpu_before;
    let commits = runtime.block_on(journal_commits(metrics))? - commits_before;

    let stopping = Instant::now();
    drop(stop);
    server
        .join()
        .map_err(|_| anyhow::anyhow!("the upload server panicked"))??;
    let shutdown_seconds = stopping.elapsed().as_secs_f64();

    let latencies = &outcome.latencies;
    let uploads = latencies.count();
    Ok(UploadBenchReport {
        vdaf: name.to_string(),
        clients: load.clients,
        reports_per_upload: load.reports_per_upload,
        seconds: elapsed,
        uploads,
        reports_per_second: (uploads * load.reports_per_upload as u64) as f64 / elapsed,
        uploads_per_second: uploads as f64 / elapsed,
        latency_p50_ms: latencies.quantile_ms(0.5),
        latency_p99_ms: latencies.quantile_ms(0.99),
        latency_max_ms: latencies.max_ms(),
        busy_answers: outcome.busy,
        commits_per_second: commits as f64 / elapsed,
        uploads_per_commit: uploads as f64 / (commits.max(1)) as f64,
        disk_fsyncs_per_second,
        cpu_percent: 100.0 * cpu / elapsed,
        rss_mib_samples: outcome.rss_mib,
        shutdown_seconds,
    })
}

/// An upload body and where each of its reports' ids starts.
struct Body {
    bytes: Vec<u8>,
    id_offsets: Vec<usize>,
}

/// The upload bodies clients send: `pool` reports sealed by the client library,
/// `reports_per_upload` to a body.
fn upload_bodies(task: &Task, vdaf: &VdafConfig, load: &UploadLoad) -> Result<Vec<Body>> {
    let client = DapClient::new(task)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).context("the clock is before 1970")?;
    let reports = (0..load.pool)
        .into_par_iter()
        .map_init(rand::rng, |rng, _| {
            client.report(&draw::measurement(vdaf, rng), now)
        })
        .collect::<Result<Vec<_>, _>>()?;
    reports
        .chunks(load.reports_per_upload)
        .map(|chunk| {
            let mut body = Body {
                bytes: Vec::new(),
                id_offsets: Vec::new(),
            };
            for report in chunk {
                // A report's encoding starts with its id (ReportMetadata, both drafts).
                body.id_offsets.push(body.bytes.len());
                body.bytes.extend(report.to_bytes(task.version())?);
            }
            Ok(body)
        })
        .collect()
}

/// Acknowledgement latencies of all clients, in 10 µs buckets up to 10 s (the rest in
/// the last), so memory stays flat however long the run.
struct Latencies {
    buckets: Vec<std::sync::atomic::AtomicU64>,
    max_us: std::sync::atomic::AtomicU64,
}

const BUCKET_US: u64 = 10;

impl Latencies {
    fn new() -> Self {
        Latencies {
            buckets: (0..1_000_000).map(|_| Default::default()).collect(),
            max_us: Default::default(),
        }
    }

    fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let last = self.buckets.len() - 1;
        let i = usize::try_from(us / BUCKET_US).map_or(last, |i| i.min(last));
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The upper edge of the bucket holding quantile `q`, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let target = (self.count() as f64 * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1e3;
            }
        }
        self.max_ms()
    }

    fn max_ms(&self) -> f64 {
        self.max_us.load(Ordering::Relaxed) as f64 / 1e3
    }
}

struct Outcome {
    latencies: Arc<Latencies>,
    busy: u64,
    rss_mib: Vec<f64>,
}

/// Runs the clients for `load.seconds`, sampling memory each second.
async fn drive(
    addr: SocketAddr,
    request: UploadRequest,
    bodies: Arc<Vec<Body>>,
    load: &UploadLoad,
) -> Result<Outcome> {
    let done = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Latencies::new());
    let clients: Vec<_> = (0..load.clients)
        .map(|c| {
            let (bodies, request, done) = (Arc::clone(&bodies), request.clone(), Arc::clone(&done));
            let latencies = Arc::clone(&latencies);
            tokio::spawn(async move { client(addr, &request, &bodies, c, &done, &latencies).await })
        })
        .collect();
    let mut rss_mib = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(load.seconds);
    while Instant::now() < deadline {
        rss_mib.push(current_rss_mib().unwrap_or(0.0));
        tokio::time::sleep(Duration::from_secs(1).min(deadline - Instant::now())).await;
    }
    rss_mib.push(current_rss_mib().unwrap_or(0.0));
    done.store(true, Ordering::Release);
    let mut busy = 0;
    for c in clients {
        busy += c.await??;
    }
    Ok(Outcome {
        latencies,
        busy,
        rss_mib,
    })
}

/// One client: a keep-alive connection, uploads one after another (starting at its own
/// place in the pool) until `done`; a 503 waits a moment and sends the same body again.
async fn client(
    addr: SocketAddr,
    upload: &UploadRequest,
    bodies: &[Body],
    first: usize,
    done: &AtomicBool,
    latencies: &Latencies,
) -> Result<u64> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut busy = 0u64;
    let mut i = first;
    let mut sent_reports = 0u64;
    while !done.load(Ordering::Acquire) {
        // Fresh report ids: this client's number, then its count of reports sent.
        let template = &bodies[i % bodies.len()];
        let mut bytes = template.bytes.clone();
        for &at in &template.id_offsets {
            bytes[at..at + 8].copy_from_slice(&(first as u64).to_be_bytes());
            bytes[at + 8..at + 16].copy_from_slice(&sent_reports.to_be_bytes());
            sent_reports += 1;
        }
        let body = Bytes::from(bytes);
        let request = Request::builder()
            .method(upload.method.clone())
            .uri(upload.path.as_str())
            .header(HOST, "localhost")
            .header(CONTENT_TYPE, upload.content_type)
            .body(Full::new(body))?;
        let sent = Instant::now();
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        match status.as_u16() {
            200 | 201 => {
                latencies.record(sent.elapsed());
                i += 1;
            }
            503 => {
                busy += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => bail!("upload answered {other}"),
        }
    }
    Ok(busy)
}

/// The server's journal commits so far, read from its own /metrics.
async fn journal_commits(metrics: SocketAddr) -> Result<u64> {
    let addr = SocketAddr::from(([127, 0, 0, 1], metrics.port()));
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/metrics")
        .header(HOST, "localhost")
        .body(Full::new(Bytes::new()))?;
    let body = sender
        .send_request(request)
        .await?
        .into_body()
        .collect()
        .await?;
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("divvi_serve_journal_commits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// fsyncs per second of small appends to a scratch file in `dir`, for `period`.
fn fsync_rate(dir: &Path, period: Duration) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < period {
        file.write_all(&[7u8; 128])?;
        file.sync_data()?;
        n += 1;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn current_rss_mib() -> Option<f64> {
    crate::process::current_rss().map(|bytes| bytes as f64 / (1 << 20) as f64)
}
