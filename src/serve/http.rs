//! The HTTP server around [`super::routes`]: hyper on tokio, a body size limit, CORS for
//! browser clients, and an upload answered only once its reports are durable (group
//! commit, [`super::durable`]); a full journal queue is 503 with Retry-After. A flusher
//! thread turns sealed segments into ingestion batches, oldest first, retrying until it
//! can, and removes each only after. SIGTERM or SIGINT: stop accepting, finish the
//! requests in flight, seal the open segment, flush everything, exit.

use super::durable::{Busy, DurableLog, Rotation};
use super::flush::flush_segment;
use super::routes::{route, Answer, Route, Served};
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
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
}

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

struct App {
    served: Served,
    log: DurableLog,
    max_body: usize,
    in_flight: AtomicUsize,
}

/// Runs the server until SIGTERM or SIGINT; `ready` hears the bound address once it
/// accepts connections.
pub fn serve(
    ingestor: Ingestor,
    task: Task,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let (journal, recovered) = Journal::open(&options.journal)?;
    let (sealed, segments) = mpsc::channel::<PathBuf>();
    for segment in recovered {
        tracing::info!(segment = %segment.display(), "flushing a segment an earlier run sealed");
        let _ = sealed.send(segment);
    }
    let flusher = {
        let (task, options) = (task.clone(), options.clone());
        std::thread::Builder::new()
            .name("journal-flusher".into())
            .spawn(move || flush_all(&ingestor, &task, &options, segments))?
    };
    let log = DurableLog::start(journal, options.rotation, options.queue, sealed)?;
    let app = Arc::new(App {
        served: Served::new(task).context("encoding the task's HPKE configs")?,
        log,
        max_body: options.max_body,
        in_flight: AtomicUsize::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    runtime.block_on(accept_until_signalled(
        Arc::clone(&app),
        options.listen,
        ready,
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
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    ready(listener.local_addr()?);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
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
    tracing::info!("stopping: no new connections; finishing the requests in flight");
    let deadline = tokio::time::Instant::now() + DRAIN;
    while app.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    app.in_flight.fetch_add(1, Ordering::AcqRel);
    let answer = answer(app, request).await;
    app.in_flight.fetch_sub(1, Ordering::AcqRel);
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
    let taskid = app.served.task.task_id().to_base64url();
    let body = match Limited::new(body, app.max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Answer::problem(
                413,
                "invalidMessage",
                &taskid,
                &format!("a body over {} bytes", app.max_body),
            )
        }
    };
    let now = chrono::Utc::now();
    match route(
        &app.served,
        parts.method.as_str(),
        parts.uri.path(),
        &body,
        now,
    ) {
        Route::Answer(answer) => answer,
        Route::Upload {
            accepted,
            count,
            refused,
        } => {
            for (id, why) in &refused {
                tracing::info!(report = %id, reason = %why, "report refused at upload");
            }
            if count > 0 {
                let durable = match app.log.submit(accepted) {
                    Ok(durable) => durable,
                    Err(Busy) => {
                        return Answer::problem(
                            503,
                            "busy",
                            &taskid,
                            "the journal is behind; retry",
                        )
                    }
                };
                match durable.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!("journal: {e}");
                        return Answer::problem(
                            503,
                            "busy",
                            &taskid,
                            "the journal could not write",
                        );
                    }
                    Err(_) => return Answer::problem(503, "busy", &taskid, "shutting down"),
                }
            }
            match refused.first() {
                None => Answer::empty(),
                Some((id, why)) => Answer::problem(
                    400,
                    "reportRejected",
                    &taskid,
                    &format!(
                        "{} of {} reports refused (the others are kept), e.g. {id}: {why}",
                        refused.len(),
                        refused.len() + count
                    ),
                ),
            }
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
    segments: mpsc::Receiver<PathBuf>,
) {
    for segment in segments {
        let mut pause = Duration::from_millis(200);
        loop {
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
            match flushed {
                Ok(f) => {
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
