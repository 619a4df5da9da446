//! The HTTP server around [`super::routes`]: hyper on tokio, a body size limit, CORS for
//! browser clients, and an upload answered only once its reports are durable (group
//! commit, [`super::durable`]); a full journal queue is 503 with Retry-After. A flusher
//! thread turns sealed segments into ingestion batches, oldest first, retrying until it
//! can, and removes each only after. While more than `max_pending_segments` wait, uploads
//! are 503 and `/readyz` fails, so a load balancer sends devices to other replicas and
//! the journal does not fill the disk. SIGTERM or SIGINT: stop accepting, finish the
//! requests in flight, seal the open segment, flush everything, exit. Counters are served
//! on a separate metrics port (never on the port devices reach).

use super::backlog::{sealed_queue, Backlog, SealedReceiver};
use super::durable::{Busy, DurableLog, Rotation};
use super::flush::flush_segment;
use super::metrics::ServeMetrics;
use super::routes::{route, Answer, Request as RouteRequest, Route, Served};
use super::segments::{remove_sealed, Journal};
use crate::config::Ingestor;
use crate::dap::Task;
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub journal: PathBuf,
    pub rotation: Rotation,
    /// Uploads waiting for the journal at most; more are answered 503.
    pub queue: usize,
    /// The largest upload body taken, in bytes.
    pub max_body: usize,
    /// Reports per ingestion batch.
    pub batch_size: usize,
    pub aggregation: Option<String>,
    /// Sealed segments that may wait for the flusher before uploads are refused.
    pub max_pending_segments: usize,
    /// Where counters are served (`GET /metrics`); None serves none.
    pub metrics_port: Option<u16>,
}

/// `divvi serve`'s defaults, for the command line and for programs that embed it.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
pub const DEFAULT_SEGMENT_SECONDS: u64 = 60;
pub const DEFAULT_BATCH_SIZE: usize = 10_000;
pub const DEFAULT_MAX_BODY: usize = 16 << 20;
pub const DEFAULT_MAX_PENDING_SEGMENTS: usize = 16;
/// Uploads that may wait for the journal writer.
pub const JOURNAL_QUEUE: usize = 4096;

impl ServeOptions {
    /// Listening on `listen`, journaling in `journal`, everything else the defaults above;
    /// no metrics port.
    pub fn with_defaults(listen: SocketAddr, journal: PathBuf) -> Self {
        ServeOptions {
            listen,
            journal,
            rotation: Rotation {
                max_bytes: DEFAULT_SEGMENT_BYTES,
                max_age: Duration::from_secs(DEFAULT_SEGMENT_SECONDS),
            },
            queue: JOURNAL_QUEUE,
            max_body: DEFAULT_MAX_BODY,
            batch_size: DEFAULT_BATCH_SIZE,
            aggregation: None,
            max_pending_segments: DEFAULT_MAX_PENDING_SEGMENTS,
            metrics_port: None,
        }
    }
}

/// Where the server listens, once it does.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub listening: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

struct App {
    served: Served,
    log: DurableLog,
    max_body: usize,
    in_flight: AtomicUsize,
    backlog: Backlog,
    max_pending: usize,
    draining: AtomicBool,
    metrics: Arc<ServeMetrics>,
    /// Journal commits already counted in `metrics`.
    commits_counted: AtomicU64,
}

impl App {
    /// Why flushing is too far behind to take more reports, if it is.
    fn behind(&self) -> Option<String> {
        let pending = self.backlog.pending();
        self.metrics.segments_pending(pending);
        (pending > self.max_pending).then(|| {
            format!(
                "flushing to storage is behind ({pending} sealed segments wait, at most {} may)",
                self.max_pending
            )
        })
    }

    fn count_commits(&self) {
        let now = self.log.commits();
        let before = self.commits_counted.swap(now, Ordering::AcqRel);
        self.metrics.journal_commits(now.saturating_sub(before));
    }
}

/// Runs the server until SIGTERM or SIGINT, or until `stop` is sent or dropped (an
/// embedding program, such as the benchmark); `ready` hears the bound addresses once it
/// accepts connections.
pub fn serve(
    ingestor: Ingestor,
    task: Task,
    options: ServeOptions,
    ready: impl FnOnce(Bound),
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<()> {
    let metrics = Arc::new(ServeMetrics::new());
    let metrics_server = options
        .metrics_port
        .map(|port| crate::metrics::serve(Arc::clone(&metrics.registry), port))
        .transpose()?;
    let (journal, recovered) = Journal::open(&options.journal)?;
    let (sealed, segments, backlog) = sealed_queue();
    for segment in recovered {
        tracing::info!(segment = %segment.display(), "flushing a segment an earlier run sealed");
        sealed.hand_over(segment);
    }
    let flusher = {
        let (task, options, metrics) = (task.clone(), options.clone(), Arc::clone(&metrics));
        std::thread::Builder::new()
            .name("journal-flusher".into())
            .spawn(move || flush_all(&ingestor, &task, &options, &segments, &metrics))?
    };
    let log = DurableLog::start(journal, options.rotation, options.queue, sealed)?;
    let app = Arc::new(App {
        served: Served::new(task).context("encoding the task's HPKE configs")?,
        log,
        max_body: options.max_body,
        in_flight: AtomicUsize::new(0),
        backlog,
        max_pending: options.max_pending_segments,
        draining: AtomicBool::new(false),
        metrics,
        commits_counted: AtomicU64::new(0),
    });
    let metrics_addr = metrics_server.as_ref().map(|m| m.local_addr());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    runtime.block_on(accept_until_signalled(
        Arc::clone(&app),
        options.listen,
        |listening| {
            ready(Bound {
                listening,
                metrics: metrics_addr,
            })
        },
        stop,
    ))?;
    drop(runtime);
    // Every connection is gone: the log's last sender goes with the app.
    let app = Arc::into_inner(app).context("a request outlived the server")?;
    app.log.close()?;
    flusher
        .join()
        .map_err(|_| anyhow::anyhow!("the flusher panicked"))?;
    Ok(())
}

async fn accept_until_signalled(
    app: Arc<App>,
    listen: SocketAddr,
    ready: impl FnOnce(SocketAddr),
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<()> {
    let stopped = async {
        match stop {
            Some(stop) => drop(stop.await),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stopped);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    ready(listener.local_addr()?);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                // Answers are small: sent at once, not held back for more (Nagle).
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, Infallible>(handle(&app, request).await) }
                    });
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
    app.draining.store(true, Ordering::Release);
    tracing::info!("stopping: no new connections; finishing the requests in flight");
    let deadline = tokio::time::Instant::now() + DRAIN;
    while app.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    app.in_flight.fetch_add(1, Ordering::AcqRel);
    let started = std::time::Instant::now();
    let answer = answer(app, request).await;
    app.in_flight.fetch_sub(1, Ordering::AcqRel);
    app.metrics.response(answer.status, started.elapsed());
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    for (name, value) in answer.headers {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Browsers upload from pages of any origin; nothing here depends on cookies.
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    if answer.status == 503 {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn answer(app: &App, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let taskid = &app.served.task_id;
    let body = match Limited::new(body, app.max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Answer::problem(
                413,
                "invalidMessage",
                taskid,
                &format!("a body over {} bytes", app.max_body),
            )
        }
    };
    let now = chrono::Utc::now();
    let request = RouteRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &body,
    };
    match route(&app.served, &request, now) {
        Route::Answer(answer) => answer,
        Route::Readiness => {
            if app.draining.load(Ordering::Acquire) {
                Answer::plain(503, "draining: shutting down")
            } else if let Some(why) = app.behind() {
                Answer::plain(503, &why)
            } else {
                Answer::plain(200, "ready")
            }
        }
        Route::Upload {
            accepted,
            count,
            refused,
            answer,
        } => {
            for (id, why) in &refused {
                tracing::info!(report = %id, reason = %why, "report refused at upload");
            }
            app.metrics.reports("refused", refused.len());
            if let Some(why) = app.behind() {
                return Answer::problem(503, "busy", taskid, &why);
            }
            if count > 0 {
                let durable = match app.log.submit(accepted) {
                    Ok(durable) => durable,
                    Err(Busy) => {
                        return Answer::problem(503, "busy", taskid, "the journal is behind; retry")
                    }
                };
                let durable = durable.await;
                app.count_commits();
                match durable {
                    Ok(Ok(())) => app.metrics.reports("accepted", count),
                    Ok(Err(e)) => {
                        tracing::error!("journal: {e}");
                        return Answer::problem(503, "busy", taskid, "the journal could not write");
                    }
                    Err(_) => return Answer::problem(503, "busy", taskid, "shutting down"),
                }
            }
            answer
        }
    }
}

/// Flushes each sealed segment as it comes, retrying one that fails (storage down) with
/// a growing pause; never skips one. Ends when the log's writer has gone and every
/// segment is flushed.
fn flush_all(
    ingestor: &Ingestor,
    task: &Task,
    options: &ServeOptions,
    segments: &SealedReceiver,
    metrics: &ServeMetrics,
) {
    while let Some(segment) = segments.next() {
        let mut pause = Duration::from_millis(200);
        loop {
            let started = std::time::Instant::now();
            let flushed = flush_segment(
                ingestor,
                task,
                &segment,
                options.aggregation.as_deref(),
                options.batch_size,
            )
            .and_then(|f| {
                remove_sealed(&segment)?;
                Ok(f)
            });
            metrics.flush(flushed.is_ok(), started.elapsed());
            match flushed {
                Ok(f) => {
                    segments.flushed();
                    tracing::info!(segment = %f.segment, uploaded = f.uploaded, repeats = f.repeats, "segment flushed");
                    break;
                }
                Err(e) => {
                    tracing::error!(segment = %segment.display(), "flush failed, will retry: {e:#}");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
