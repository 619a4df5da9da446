//! Prometheus metrics for one job run: an in-process registry rendered in the
//! text exposition format 0.0.4, pushed to a Pushgateway when a cron job ends
//! or served on `/metrics` while a long run is in progress.
//!
//! HTTP goes through hyper, which divvi already compiles for the S3 client, so
//! the only added build cost is hyper's `server` feature. Each exchange runs on
//! a private current-thread tokio runtime on its own OS thread, which keeps
//! these blocking functions safe to call from inside another tokio runtime
//! (where `block_on` would panic).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Semaphore};

const PUSH_CONTENT_TYPE: &str = "text/plain; version=0.0.4";
const SCRAPE_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
// header_read_timeout does not cover a client that stops reading the response.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
// Scrapers need one or two connections; the cap only stops a stuck or hostile
// client from piling up tasks and file descriptors.
const MAX_CONNECTIONS: usize = 32;

/// Thread-safe metric registry for one job run.
///
/// Families and series are created on first use. The first `help` given for
/// a family is kept; later ones are ignored.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<String, Family>>,
}

#[derive(Debug)]
struct Family {
    help: String,
    series: Series,
}

/// Series are keyed by their rendered label set (`{a="x",b="y"}`, or empty),
/// with label names sorted, so the same labels in any order are one series and
/// rendering order is deterministic.
#[derive(Debug)]
enum Series {
    Counter(BTreeMap<String, u64>),
    Gauge(BTreeMap<String, f64>),
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds to a counter (created on first use). name must be a valid Prometheus
    /// metric name ending in `_total`; labels are (name, value) pairs.
    ///
    /// Invalid names, duplicate label names and reusing a gauge's name are
    /// programming errors: they panic in debug builds and are ignored in release.
    pub fn add(&self, name: &str, help: &str, labels: &[(&str, &str)], by: u64) {
        let valid = name.ends_with("_total") && is_metric_name(name);
        debug_assert!(
            valid,
            "invalid counter name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]* and end in _total"
        );
        let Some(key) = valid.then(|| series_key(labels)).flatten() else {
            return;
        };
        let mut families = self.lock();
        let family = families.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            series: Series::Counter(BTreeMap::new()),
        });
        match &mut family.series {
            Series::Counter(series) => {
                let value = series.entry(key).or_insert(0);
                *value = value.saturating_add(by);
            }
            Series::Gauge(_) => debug_assert!(false, "{name:?} is a gauge, not a counter"),
        }
    }

    /// Sets a gauge (created on first use).
    ///
    /// Same rules for names and labels as [`Metrics::add`], except that the
    /// name need not end in `_total`.
    pub fn set(&self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let valid = is_metric_name(name);
        debug_assert!(
            valid,
            "invalid gauge name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*"
        );
        let Some(key) = valid.then(|| series_key(labels)).flatten() else {
            return;
        };
        let mut families = self.lock();
        let family = families.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            series: Series::Gauge(BTreeMap::new()),
        });
        match &mut family.series {
            Series::Gauge(series) => {
                series.insert(key, value);
            }
            Series::Counter(_) => debug_assert!(false, "{name:?} is a counter, not a gauge"),
        }
    }

    /// Prometheus text exposition format 0.0.4: families sorted by name, each
    /// with one `# HELP` and `# TYPE` line, series sorted by label set.
    pub fn render(&self) -> String {
        let families = self.lock();
        let mut out = String::new();
        for (name, family) in families.iter() {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_into(&mut out, &family.help, false);
            out.push_str("\n# TYPE ");
            out.push_str(name);
            match &family.series {
                Series::Counter(series) => {
                    out.push_str(" counter\n");
                    for (labels, value) in series {
                        push_sample(&mut out, name, labels, &value.to_string());
                    }
                }
                Series::Gauge(series) => {
                    out.push_str(" gauge\n");
                    for (labels, value) in series {
                        push_sample(&mut out, name, labels, &format_float(*value));
                    }
                }
            }
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Family>> {
        // Every update is a single insert or add, so a panic elsewhere cannot
        // leave the map half-updated; losing metrics over poison would be worse.
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn push_sample(out: &mut String, name: &str, labels: &str, value: &str) {
    out.push_str(name);
    out.push_str(labels);
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Renders the label set that identifies a series, or `None` (after a debug
/// assertion) if a label name is invalid or repeated.
fn series_key(labels: &[(&str, &str)]) -> Option<String> {
    let mut sorted: Vec<&(&str, &str)> = labels.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let mut key = String::new();
    for (i, (name, value)) in sorted.iter().enumerate() {
        let valid = is_label_name(name) && (i == 0 || sorted[i - 1].0 != *name);
        debug_assert!(
            valid,
            "invalid or repeated label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"
        );
        if !valid {
            return None;
        }
        key.push(if i == 0 { '{' } else { ',' });
        key.push_str(name);
        key.push_str("=\"");
        escape_into(&mut key, value, true);
        key.push('"');
    }
    if !key.is_empty() {
        key.push('}');
    }
    Some(key)
}

fn escape_into(out: &mut String, text: &str, in_quotes: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if in_quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Formats a sample value the way Prometheus parses it (Go's ParseFloat).
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e16 {
        // Display never uses an exponent; this keeps whole numbers as "42".
        format!("{value}")
    } else {
        // Debug is the shortest round-trip form and switches to an exponent
        // for very large or small magnitudes instead of printing 300 digits.
        format!("{value:?}")
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    !name.starts_with("__")
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Errors from [`push`] and [`serve`]. Messages name the URL or address and the
/// reason; response bodies are never included.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    #[error("invalid Pushgateway URL {url:?}: {reason}")]
    InvalidGateway { url: String, reason: String },
    /// The URL itself is withheld from the message because it holds a secret.
    #[error("Pushgateway URL must not contain credentials (URL not shown)")]
    CredentialsInUrl,
    #[error("Pushgateway URL {url} uses https://, which is not supported; use the in-cluster http:// address")]
    HttpsUnsupported { url: String },
    #[error("cannot push to Pushgateway {url}: {reason}")]
    InvalidGrouping { url: String, reason: String },
    #[error("push to {url} failed: {reason}")]
    Push { url: String, reason: String },
    #[error("push to {url} rejected with HTTP {status} {status_text}")]
    Rejected {
        url: String,
        status: u16,
        status_text: &'static str,
    },
    #[error("cannot serve metrics on {addr}: {reason}")]
    Serve { addr: SocketAddr, reason: String },
}

/// Pushes to a Pushgateway: PUT {gateway}/metrics/job/{job}{/label/value...},
/// body = render(), replacing whatever was pushed before under the same
/// grouping key. Values that are empty or not plain URL-safe text (e.g.
/// containing '/') are sent in the `@base64` form.
///
/// Blocks for at most about 10 s. From async code, call it through
/// `tokio::task::spawn_blocking` so a worker thread is not held up.
pub fn push(
    metrics: &Metrics,
    gateway: &str,
    job: &str,
    grouping: &[(&str, &str)],
) -> Result<(), MetricsError> {
    push_with_timeout(metrics, gateway, job, grouping, PUSH_TIMEOUT)
}

fn push_with_timeout(
    metrics: &Metrics,
    gateway: &str,
    job: &str,
    grouping: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), MetricsError> {
    let target = PushTarget::new(gateway, job, grouping)?;
    let body = metrics.render();
    let failed = |reason: &str| MetricsError::Push {
        url: target.url.clone(),
        reason: reason.to_owned(),
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("metrics-push".to_owned())
            .spawn_scoped(scope, || put(&target, body, timeout))
            .map_err(|e| failed(&format!("cannot start push thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(failed("push thread panicked")))
    })
}

struct PushTarget {
    /// Full URL, for error messages.
    url: String,
    /// `host:port` to connect to.
    connect_to: String,
    host_header: String,
    path: String,
}

impl PushTarget {
    fn new(gateway: &str, job: &str, grouping: &[(&str, &str)]) -> Result<Self, MetricsError> {
        // Checked on the raw text so no later message can echo a password.
        let after_scheme = gateway.split_once("://").map_or(gateway, |(_, rest)| rest);
        if after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .contains('@')
        {
            return Err(MetricsError::CredentialsInUrl);
        }
        let invalid = |reason: &str| MetricsError::InvalidGateway {
            url: gateway.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = gateway
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(MetricsError::HttpsUnsupported {
                    url: gateway.to_owned(),
                })
            }
            _ => return Err(invalid("expected http://host:port")),
        }
        let Some(authority) = uri.authority() else {
            return Err(invalid("no host"));
        };
        if uri.query().is_some() {
            return Err(invalid("query strings are not supported"));
        }

        let mut path = uri.path().trim_end_matches('/').to_owned();
        path.push_str("/metrics");
        let url = |path: &str| format!("http://{authority}{path}");
        if job.is_empty() {
            return Err(MetricsError::InvalidGrouping {
                url: url(&path),
                reason: "job name must not be empty".to_owned(),
            });
        }
        push_path_segment(&mut path, "job", job);
        for (name, value) in grouping {
            if !is_label_name(name) || *name == "job" {
                return Err(MetricsError::InvalidGrouping {
                    url: url(&path),
                    reason: format!("invalid grouping label name {name:?}"),
                });
            }
            push_path_segment(&mut path, name, value);
        }
        Ok(Self {
            url: url(&path),
            connect_to: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(80)
            ),
            host_header: authority.as_str().to_owned(),
            path,
        })
    }
}

/// Appends `/name/value`, or `/name@base64/...` for values that a plain path
/// segment cannot carry: '/' would split it, an empty segment or "." / ".."
/// would be removed by path cleaning, and anything else non-trivial would need
/// percent-encoding, which base64 avoids having to get right.
fn push_path_segment(path: &mut String, name: &str, value: &str) {
    let plain = !matches!(value, "" | "." | "..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    path.push('/');
    path.push_str(name);
    if plain {
        path.push('/');
        path.push_str(value);
    } else {
        path.push_str("@base64/");
        if value.is_empty() {
            // The Pushgateway needs the padding to tell an empty value from a missing one.
            path.push('=');
        } else {
            base64::engine::general_purpose::URL_SAFE.encode_string(value, path);
        }
    }
}

fn put(target: &PushTarget, body: String, timeout: Duration) -> Result<(), MetricsError> {
    let failed = |reason: String| MetricsError::Push {
        url: target.url.clone(),
        reason,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| failed(format!("cannot start I/O runtime: {e}")))?;
    // The timer must be created inside the runtime, hence the async block.
    let outcome =
        runtime.block_on(async { tokio::time::timeout(timeout, exchange(target, body)).await });
    // A DNS lookup still running on the blocking pool must not hold us past the timeout.
    runtime.shutdown_background();
    let status = outcome
        .map_err(|_| failed(format!("no answer within {} s", timeout.as_secs_f32())))?
        .map_err(failed)?;
    if status.is_success() {
        Ok(())
    } else {
        Err(MetricsError::Rejected {
            url: target.url.clone(),
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("(unknown status)"),
        })
    }
}

async fn exchange(target: &PushTarget, body: String) -> Result<StatusCode, String> {
    let stream = tokio::net::TcpStream::connect(target.connect_to.as_str())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.connect_to))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {}", error_chain(&e)))?;
    // Errors of the connection task also surface through send_request.
    let connection = tokio::spawn(connection);
    let request = Request::put(target.path.as_str())
        .header(HOST, target.host_header.as_str())
        .header(CONTENT_TYPE, PUSH_CONTENT_TYPE)
        .header(CONTENT_LENGTH, body.len())
        .header(CONNECTION, "close")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
    connection.abort();
    Ok(response.status())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Serves `GET /metrics` from a background thread until dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    // Dropping the sender is the stop signal.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The bound address (0.0.0.0 and the actual port, also when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread ends as soon as it sees the signal; joining makes the
            // port free again by the time drop returns.
            let _ = thread.join();
        }
    }
}

/// Serves GET /metrics (render() on each request) on 0.0.0.0:port from a
/// background thread until the handle is dropped; other paths get 404. Port 0
/// picks a free port; [`MetricsServer::local_addr`] reports it.
pub fn serve(metrics: Arc<Metrics>, port: u16) -> Result<MetricsServer, MetricsError> {
    let requested = SocketAddr::from(([0, 0, 0, 0], port));
    let failed = move |what: &str, e: std::io::Error| MetricsError::Serve {
        addr: requested,
        reason: format!("{what}: {e}"),
    };
    let listener = std::net::TcpListener::bind(requested).map_err(|e| failed("bind", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| failed("local address", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| failed("set non-blocking", e))?;
    let (ready, started) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("metrics-server".to_owned())
        .spawn(move || {
            // The runtime lives and dies on this thread: dropping one inside
            // an async context panics, and the caller may be in one.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(failed("start I/O runtime", e)));
                    return;
                }
            };
            let listener = {
                let _context = runtime.enter();
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready.send(Err(failed("register listener", e)));
                        return;
                    }
                }
            };
            let _ = ready.send(Ok(()));
            runtime.spawn(accept_loop(listener, metrics));
            let _ = runtime.block_on(stopped);
            // Dropping the runtime cancels the accept loop and open
            // connections and closes the listening socket.
        })
        .map_err(|e| failed("start server thread", e))?;
    match started.recv() {
        Ok(Ok(())) => Ok(MetricsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(failed(
                "server thread",
                std::io::Error::other("ended during start-up"),
            ))
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return; // never closed
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually descriptor exhaustion: back off rather than spin.
                tracing::warn!("metrics server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(false);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            // Client errors and timeouts only concern that client.
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = if request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, "not found\n".to_owned())
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        )
    } else {
        (StatusCode::OK, metrics.render())
    };
    let content_type = if status == StatusCode::OK {
        SCRAPE_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Command, Stdio};

    fn sample_metrics() -> Metrics {
        let m = Metrics::new();
        m.add(
            "divvi_records_total",
            "Records read.",
            &[("stage", "ingest"), ("batch", "b2")],
            2,
        );
        // Same series with the labels in another order; the later help is ignored.
        m.add(
            "divvi_records_total",
            "ignored",
            &[("batch", "b2"), ("stage", "ingest")],
            3,
        );
        m.add(
            "divvi_records_total",
            "Records read.",
            &[("batch", "b1"), ("stage", "ingest")],
            7,
        );
        m.set(
            "divvi_batch_seconds",
            "Wall time.\nIncludes \\ upload.",
            &[],
            12.5,
        );
        m.set("divvi_batch_seconds", "", &[], 13.25);
        m.set(
            "divvi_last_input",
            "Last input seen.",
            &[("path", "s3://b/x \"quoted\" back\\slash\nnewline ünï")],
            1.0,
        );
        m.set("divvi_odd", "", &[("v", "nan")], f64::NAN);
        m.set("divvi_odd", "", &[("v", "pinf")], f64::INFINITY);
        m.set("divvi_odd", "", &[("v", "ninf")], f64::NEG_INFINITY);
        m.set("divvi_odd", "", &[("v", "big")], 1e300);
        m.set("divvi_odd", "", &[("v", "tiny")], -1.5e-7);
        m.add("divvi_errors_total", "Errors.", &[], 0);
        m
    }

    const SAMPLE_RENDERED: &str = r#"# HELP divvi_batch_seconds Wall time.\nIncludes \\ upload.
# TYPE divvi_batch_seconds gauge
divvi_batch_seconds 13.25
# HELP divvi_errors_total Errors.
# TYPE divvi_errors_total counter
divvi_errors_total 0
# HELP divvi_last_input Last input seen.
# TYPE divvi_last_input gauge
divvi_last_input{path="s3://b/x \"quoted\" back\\slash\nnewline ünï"} 1
# HELP divvi_odd 
# TYPE divvi_odd gauge
divvi_odd{v="big"} 1e300
divvi_odd{v="nan"} NaN
divvi_odd{v="ninf"} -Inf
divvi_odd{v="pinf"} +Inf
divvi_odd{v="tiny"} -1.5e-7
# HELP divvi_records_total Records read.
# TYPE divvi_records_total counter
divvi_records_total{batch="b1",stage="ingest"} 7
divvi_records_total{batch="b2",stage="ingest"} 5
"#;

    #[test]
    fn render_exact_text() {
        assert_eq!(sample_metrics().render(), SAMPLE_RENDERED);
    }

    #[test]
    fn render_has_help_and_type_once_per_family() {
        let text = sample_metrics().render();
        for family in [
            "divvi_batch_seconds",
            "divvi_errors_total",
            "divvi_last_input",
            "divvi_odd",
            "divvi_records_total",
        ] {
            for kind in ["HELP", "TYPE"] {
                let prefix = format!("# {kind} {family} ");
                let count = text.lines().filter(|l| l.starts_with(&prefix)).count();
                assert_eq!(count, 1, "{prefix:?} in\n{text}");
            }
        }
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 10);
    }

    #[test]
    fn render_is_independent_of_insertion_order() {
        let updates: Vec<(&str, &str, f64)> = vec![
            ("g_b", "x", 1.0),
            ("g_a", "y", 2.0),
            ("g_a", "x", 3.0),
            ("g_c", "", 4.0),
            ("g_a", "a", 5.0),
        ];
        let forward = Metrics::new();
        for (name, label, value) in &updates {
            forward.set(name, "h", &[("l", label)], *value);
        }
        let backward = Metrics::new();
        for (name, label, value) in updates.iter().rev() {
            backward.set(name, "h", &[("l", label)], *value);
        }
        let text = forward.render();
        assert_eq!(text, backward.render());
        assert_eq!(text, forward.render());
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "g_a{l=\"a\"} 5",
                "g_a{l=\"x\"} 3",
                "g_a{l=\"y\"} 2",
                "g_b{l=\"x\"} 1",
                "g_c{l=\"\"} 4"
            ]
        );
    }

    #[test]
    fn float_formatting() {
        for (value, text) in [
            (0.0, "0"),
            (42.0, "42"),
            (-3.0, "-3"),
            (0.1, "0.1"),
            (2.5e-5, "2.5e-5"),
            (1e15, "1000000000000000"),
            (1e16, "1e16"),
            (-1e17, "-1e17"),
            (123456789.125, "123456789.125"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float(value), text);
            if value.is_finite() {
                assert_eq!(text.parse::<f64>().ok(), Some(value), "{text} round trip");
            }
        }
    }

    #[test]
    fn counters_saturate_and_sum_across_threads() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.add("n_total", "n", &[("k", "v")], 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(m.render().contains("n_total{k=\"v\"} 4000\n"));
        m.add("n_total", "n", &[("k", "v")], u64::MAX);
        assert!(m
            .render()
            .contains(&format!("n_total{{k=\"v\"}} {}\n", u64::MAX)));
    }

    #[test]
    fn name_validation() {
        for ok in ["a", "_a", "a:b_c9", ":x"] {
            assert!(is_metric_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a b", "ä"] {
            assert!(!is_metric_name(bad), "{bad}");
        }
        for ok in ["a", "_a", "a_9"] {
            assert!(is_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a:b", "__reserved", "a-b"] {
            assert!(!is_label_name(bad), "{bad}");
        }
        assert!(series_key(&[("a", "1"), ("b", "2")]).is_some());
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "invalid counter name"))]
    fn counter_without_total_suffix_is_rejected() {
        let m = Metrics::new();
        m.add("requests", "h", &[], 1);
        assert_eq!(m.render(), "");
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "repeated label name"))]
    fn repeated_label_is_rejected() {
        let m = Metrics::new();
        m.set("g", "h", &[("a", "1"), ("a", "2")], 1.0);
        assert_eq!(m.render(), "");
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "is a counter, not a gauge"))]
    fn kind_clash_is_rejected() {
        let m = Metrics::new();
        m.add("x_total", "h", &[], 1);
        m.set("x_total", "h", &[], 5.0);
        assert!(m.render().contains("x_total 1\n"));
    }

    #[test]
    fn metrics_is_send_sync_default() {
        fn check<T: Send + Sync + Default>() {}
        check::<Metrics>();
    }

    // --- cross-check with the official Python client's parser ---

    const PY_PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"type": fam.type, "help": fam.documentation, "name": s.name,
                    "labels": s.labels, "value": repr(float(s.value))})
print(json.dumps(out))
"#;
    const PY_HINT: &str = "this test needs Python 3 with the prometheus_client module; \
        install it with `python3 -m pip install prometheus-client`";

    fn parse_with_prometheus_client(text: &str) -> serde_json::Value {
        let mut child = Command::new("python3")
            .args(["-c", PY_PARSE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {PY_HINT}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !(stderr.contains("ModuleNotFoundError") || stderr.contains("ImportError")),
            "python3 cannot import prometheus_client: {PY_HINT}\n{stderr}"
        );
        assert!(
            out.status.success(),
            "prometheus_client could not parse the output:\n{stderr}\n--- input ---\n{text}"
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    type Sample = (String, BTreeMap<String, String>, String);
    /// (name, kind, help, labels, updates)
    type Recording = (
        &'static str,
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
        Vec<f64>,
    );

    fn canonical(value: f64) -> String {
        if value.is_nan() {
            "NaN".to_owned()
        } else {
            format!("{value:?}")
        }
    }

    #[test]
    fn render_parses_with_prometheus_client() {
        // (name, kind, help, labels, updates): counters add each update, gauges keep the last.
        let recorded: Vec<Recording> = vec![
            (
                "jobs_total",
                "counter",
                "Jobs run.",
                vec![("status", "ok")],
                vec![1.0, 2.0, 3.0],
            ),
            (
                "jobs_total",
                "counter",
                "Jobs run.",
                vec![("status", "failed")],
                vec![1.0],
            ),
            (
                "input_bytes",
                "gauge",
                "Bytes in \\ the \"input\".\nSecond line.",
                vec![("bucket", "s3://a/b"), ("odd", "q\"uote b\\ack\nnl ✓")],
                vec![5.0, 1234.5],
            ),
            (
                "input_bytes",
                "gauge",
                "",
                vec![("bucket", "")],
                vec![f64::NAN],
            ),
            (
                "edge",
                "gauge",
                "",
                vec![("v", "pinf")],
                vec![f64::INFINITY],
            ),
            (
                "edge",
                "gauge",
                "",
                vec![("v", "ninf")],
                vec![f64::NEG_INFINITY],
            ),
            ("edge", "gauge", "", vec![("v", "big")], vec![1e300]),
            ("edge", "gauge", "", vec![("v", "small")], vec![-2.5e-12]),
            ("edge", "gauge", "", vec![("v", "zero")], vec![0.0]),
            ("empty_help", "gauge", "", vec![], vec![7.0]),
        ];
        let m = Metrics::new();
        let mut expected: Vec<Sample> = Vec::new();
        let mut families: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (name, kind, help, labels, updates) in &recorded {
            for v in updates {
                match *kind {
                    "counter" => m.add(name, help, labels, *v as u64),
                    _ => m.set(name, help, labels, *v),
                }
            }
            let value = match *kind {
                "counter" => updates.iter().sum(),
                _ => *updates.last().unwrap(),
            };
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            expected.push((name.to_string(), labels, canonical(value)));
            families
                .entry(name.to_string())
                .or_insert((kind.to_string(), help.to_string()));
        }

        let text = m.render();
        let parsed = parse_with_prometheus_client(&text);
        let mut actual: Vec<Sample> = Vec::new();
        for s in parsed.as_array().expect("JSON list") {
            let name = s["name"].as_str().unwrap().to_owned();
            let labels = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let value: f64 = s["value"].as_str().unwrap().parse().unwrap();
            let (kind, help) = &families[&name];
            assert_eq!(s["type"].as_str(), Some(kind.as_str()), "type of {name}");
            assert_eq!(s["help"].as_str(), Some(help.as_str()), "help of {name}");
            actual.push((name, labels, canonical(value)));
        }
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected, "rendered:\n{text}");
    }

    // --- push ---

    struct Recorded {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Recorded {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Accepts one connection, records the request and answers with `status_line`.
    fn fake_gateway(status_line: &'static str) -> (String, std::thread::JoinHandle<Recorded>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let handle = std::thread::spawn(move || {
            // Polled so that a push that never connects fails the test instead of hanging it.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(std::time::Instant::now() < deadline, "no push arrived");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_len = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed inside the request head");
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8(buf[..head_len].to_vec()).unwrap();
            let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
            let request_line = lines.next().unwrap().to_owned();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap();
                    (k.trim().to_ascii_lowercase(), v.trim().to_owned())
                })
                .collect();
            let mut body = buf[head_len..].to_vec();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .expect("content-length header")
                .1
                .parse()
                .unwrap();
            while body.len() < len {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed inside the body");
                body.extend_from_slice(&chunk[..n]);
            }
            let answer = format!(
                "HTTP/1.1 {status_line}\r\nContent-Length: 12\r\nConnection: close\r\n\r\nsecret-body\n"
            );
            stream.write_all(answer.as_bytes()).unwrap();
            Recorded {
                request_line,
                headers,
                body,
            }
        });
        (base, handle)
    }

    #[test]
    fn push_puts_rendered_metrics_with_grouping_path() {
        let m = sample_metrics();
        let (base, gateway) = fake_gateway("200 OK");
        push(
            &m,
            &base,
            "nightly-ingest",
            &[
                ("instance", "pod-7"),
                ("input", "s3://bucket/day=1?>"),
                ("shard", ""),
            ],
        )
        .unwrap();
        let req = gateway.join().unwrap();
        // Expected base64 from Python's base64.urlsafe_b64encode; the standard
        // alphabet would give ".../PTE/Pg==".
        let path = "/metrics/job/nightly-ingest/instance/pod-7\
                    /input@base64/czM6Ly9idWNrZXQvZGF5PTE_Pg==/shard@base64/=";
        assert_eq!(req.request_line, format!("PUT {path} HTTP/1.1"));
        assert_eq!(
            req.header("content-type"),
            Some("text/plain; version=0.0.4")
        );
        assert_eq!(req.header("host"), Some(&base["http://".len()..]));
        assert_eq!(String::from_utf8(req.body).unwrap(), m.render());
    }

    #[test]
    fn push_keeps_gateway_path_prefix_and_encodes_job() {
        let m = Metrics::new();
        m.set("g", "h", &[], 1.0);
        let (base, gateway) = fake_gateway("202 Accepted");
        push(&m, &format!("{base}/pgw/"), "a/b", &[]).unwrap();
        let req = gateway.join().unwrap();
        assert_eq!(
            req.request_line,
            "PUT /pgw/metrics/job@base64/YS9i HTTP/1.1"
        );
        assert_eq!(req.body, b"# HELP g h\n# TYPE g gauge\ng 1\n");
    }

    #[test]
    fn push_error_status_names_url_and_status() {
        let (base, gateway) = fake_gateway("500 Internal Server Error");
        let err = push(&sample_metrics(), &base, "job1", &[("i", "x")]).unwrap_err();
        gateway.join().unwrap();
        assert!(
            matches!(err, MetricsError::Rejected { status: 500, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert_eq!(
            msg,
            format!(
                "push to {base}/metrics/job/job1/i/x rejected with HTTP 500 Internal Server Error"
            )
        );
        assert!(!msg.contains("secret-body"));
    }

    #[test]
    fn push_to_unreachable_gateway_fails_clearly() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let err = push(
            &Metrics::new(),
            &format!("http://127.0.0.1:{port}"),
            "j",
            &[],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "push to http://127.0.0.1:{port}/metrics/job/j failed: cannot connect to 127.0.0.1:{port}: "
            )),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
    }

    #[test]
    fn push_times_out_on_silent_gateway() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let started = std::time::Instant::now();
        let err = push_with_timeout(&Metrics::new(), &base, "j", &[], Duration::from_millis(300))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let msg = err.to_string();
        assert!(msg.contains(&format!("{base}/metrics/job/j")), "{msg}");
        assert!(msg.contains("no answer within 0.3 s"), "{msg}");
        drop(listener);
    }

    #[test]
    fn push_works_from_inside_a_tokio_runtime() {
        let (base, gateway) = fake_gateway("200 OK");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(async { push(&sample_metrics(), &base, "j", &[]) })
            .unwrap();
        gateway.join().unwrap();
    }

    #[test]
    fn push_rejects_bad_arguments() {
        let m = Metrics::new();
        let err = push(&m, "https://pgw.example:9091", "j", &[]).unwrap_err();
        assert!(
            matches!(err, MetricsError::HttpsUnsupported { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("https://pgw.example:9091"));

        let err = push(&m, "http://user:hunter2@pgw:9091", "j", &[]).unwrap_err();
        assert!(matches!(err, MetricsError::CredentialsInUrl));
        assert!(!err.to_string().contains("hunter2"));

        let err = push(&m, "pgw:9091", "j", &[]).unwrap_err();
        assert!(matches!(err, MetricsError::InvalidGateway { .. }), "{err}");
        let err = push(&m, "http://pgw:9091", "", &[]).unwrap_err();
        assert!(
            err.to_string().contains("job name must not be empty"),
            "{err}"
        );
        let err = push(&m, "http://pgw:9091", "j", &[("bad-name", "x")]).unwrap_err();
        assert!(err.to_string().contains("bad-name"), "{err}");
    }

    // --- serve ---

    /// Sends one request over a real TCP connection; returns status, headers, body.
    fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("response head");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        (status, head, body.to_owned())
    }

    #[test]
    fn serve_answers_metrics_and_404() {
        let m = Arc::new(sample_metrics());
        let server = serve(Arc::clone(&m), 0).unwrap();
        let addr = server.local_addr();
        assert!(addr.ip().is_unspecified());
        assert_ne!(addr.port(), 0);

        let (status, head, body) = http(addr, "GET", "/metrics");
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert_eq!(body, m.render());

        m.set("divvi_batch_seconds", "", &[], 99.5);
        m.add("late_total", "Added after start.", &[], 1);
        let (status, _, body) = http(addr, "GET", "/metrics?debug=1");
        assert_eq!(status, 200);
        assert_eq!(body, m.render());
        assert!(body.contains("divvi_batch_seconds 99.5\n"), "{body}");
        assert!(body.contains("late_total 1\n"), "{body}");

        assert_eq!(http(addr, "GET", "/other").0, 404);
        assert_eq!(http(addr, "GET", "/").0, 404);
        let (status, head, _) = http(addr, "POST", "/metrics");
        assert_eq!(status, 405);
        assert!(head.contains("allow: get, head"), "{head}");
    }

    #[test]
    fn serve_is_not_blocked_by_an_idle_client() {
        let m = Arc::new(Metrics::new());
        m.set("g", "h", &[], 1.0);
        let server = serve(Arc::clone(&m), 0).unwrap();
        let idle = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
        let (status, _, body) = http(server.local_addr(), "GET", "/metrics");
        assert_eq!(
            (status, body.as_str()),
            (200, "# HELP g h\n# TYPE g gauge\ng 1\n")
        );
        drop(idle);
    }

    #[test]
    fn serve_and_drop_work_inside_a_tokio_runtime() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let status = runtime.block_on(async {
            let server = serve(Arc::new(Metrics::new()), 0).unwrap();
            let status = http(server.local_addr(), "GET", "/metrics").0;
            drop(server);
            status
        });
        assert_eq!(status, 200);
    }

    #[test]
    fn dropping_the_server_closes_the_port() {
        let server = serve(Arc::new(Metrics::new()), 0).unwrap();
        let port = server.local_addr().port();
        assert_eq!(http(server.local_addr(), "GET", "/metrics").0, 200);
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn serve_reports_bind_errors_with_address() {
        let taken = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = serve(Arc::new(Metrics::new()), port).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("cannot serve metrics on 0.0.0.0:{port}: bind: ")),
            "{msg}"
        );
    }
}
