//! Pushing a registry to a Prometheus Pushgateway when a job ends (a Kubernetes Job or
//! cron run is gone before a scrape would reach it): `PUT` over http:// inside a
//! cluster, or https:// with basic auth to a gateway elsewhere.
//!
//! Each push runs on a private current-thread tokio runtime on its own OS thread, so
//! it is safe to call from inside another tokio runtime (where `block_on` panics).

use super::{render, MetricsError, Registry};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;

const PUSH_CONTENT_TYPE: &str = "text/plain; version=0.0.4";
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Basic-auth credentials for a Pushgateway behind a reverse proxy. They come from the
/// environment, never from the command line, and never appear in `Debug` output or an
/// error.
#[derive(Clone)]
pub struct BasicAuth {
    username: String,
    password: String,
}

impl BasicAuth {
    pub fn new(username: String, password: String) -> Self {
        BasicAuth { username, password }
    }

    fn header(&self) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        // Kept out of any header dump hyper or a proxy library may log.
        value.set_sensitive(true);
        value
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"(withheld)")
            .finish()
    }
}

/// Where a job's metrics are pushed.
#[derive(Clone, Debug)]
pub struct Pushgateway {
    url: String,
    auth: Option<BasicAuth>,
    timeout: Duration,
}

impl Pushgateway {
    /// A gateway at `url` (http:// or https://, with an optional path prefix).
    pub fn new(url: &str, auth: Option<BasicAuth>) -> Self {
        Pushgateway {
            url: url.to_owned(),
            auth,
            timeout: PUSH_TIMEOUT,
        }
    }

    /// How long one push may take in all (10 s unless set).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL and credentials without pushing (a job checks them at start, so
    /// a typo fails before the work, not after it).
    pub fn check(&self) -> Result<(), MetricsError> {
        PushTarget::new(self, "check", &[]).map(|_| ())
    }
}

/// Pushes `registry` to the gateway: `PUT {gateway}/metrics/job/{job}{/label/value...}`,
/// replacing whatever was pushed before under the same grouping key. Values that are
/// empty or not plain URL-safe text (e.g. containing '/') are sent in the `@base64`
/// form.
///
/// Blocks for at most the gateway's timeout (10 s). From async code, call it through
/// `tokio::task::spawn_blocking` so a worker thread is not held up.
pub fn push(
    registry: &Registry,
    gateway: &Pushgateway,
    job: &str,
    grouping: &[(&str, &str)],
) -> Result<(), MetricsError> {
    let target = PushTarget::new(gateway, job, grouping)?;
    let body = render(registry);
    let failed = |reason: &str| MetricsError::Push {
        url: target.url.clone(),
        reason: reason.to_owned(),
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("metrics-push".to_owned())
            .spawn_scoped(scope, || put(&target, body, gateway.timeout))
            .map_err(|e| failed(&format!("cannot start push thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(failed("push thread panicked")))
    })
}

struct PushTarget {
    /// Full URL, for error messages (never holds credentials: those are refused).
    url: String,
    /// `host:port` to connect to.
    connect_to: String,
    /// The name the server's certificate must carry, for https://.
    tls: Option<ServerName<'static>>,
    host_header: String,
    path: String,
    auth: Option<HeaderValue>,
}

impl PushTarget {
    fn new(
        gateway: &Pushgateway,
        job: &str,
        grouping: &[(&str, &str)],
    ) -> Result<Self, MetricsError> {
        let text = gateway.url.as_str();
        // Checked on the raw text so no later message can echo a password.
        let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
        if after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .contains('@')
        {
            return Err(MetricsError::CredentialsInUrl);
        }
        let invalid = |reason: &str| MetricsError::InvalidGateway {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = text
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        let (https, default_port) = match uri.scheme_str() {
            Some("http") => (false, 80),
            Some("https") => (true, 443),
            _ => return Err(invalid("expected http://host:port or https://host:port")),
        };
        let Some(authority) = uri.authority() else {
            return Err(invalid("no host"));
        };
        if uri.query().is_some() {
            return Err(invalid("query strings are not supported"));
        }
        if gateway.auth.is_some() && !https {
            return Err(MetricsError::CredentialsOverHttp {
                url: text.to_owned(),
            });
        }
        // IPv6 literals come bracketed in a URL, bare in a certificate.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let tls = match https {
            true => Some(
                ServerName::try_from(host.to_owned())
                    .map_err(|e| invalid(&format!("host {host:?}: {e}")))?,
            ),
            false => None,
        };

        let mut path = uri.path().trim_end_matches('/').to_owned();
        path.push_str("/metrics");
        let scheme = if https { "https" } else { "http" };
        let url = |path: &str| format!("{scheme}://{authority}{path}");
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
                authority.port_u16().unwrap_or(default_port)
            ),
            tls,
            host_header: authority.as_str().to_owned(),
            path,
            auth: gateway.auth.as_ref().map(BasicAuth::header),
        })
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
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
    match &target.tls {
        None => send(TokioIo::new(stream), target, body).await,
        Some(name) => {
            let stream = tls_connector()?
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("TLS with {}: {}", target.connect_to, error_chain(&e)))?;
            send(TokioIo::new(stream), target, body).await
        }
    }
}

/// TLS 1.2/1.3 on aws-lc (the provider the S3 client already uses), trusting the
/// system's CA store; `SSL_CERT_FILE` or `SSL_CERT_DIR` point it elsewhere (a private
/// CA).
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or("none found".to_owned(), |e| e.to_string());
        return Err(format!(
            "no trusted CA certificates ({why}); set SSL_CERT_FILE to a PEM file"
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn send<I>(io: I, target: &PushTarget, body: String) -> Result<StatusCode, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {}", error_chain(&e)))?;
    // Errors of the connection task also surface through send_request.
    let connection = tokio::spawn(connection);
    let mut request = Request::put(target.path.as_str())
        .header(HOST, target.host_header.as_str())
        .header(CONTENT_TYPE, PUSH_CONTENT_TYPE)
        .header(CONTENT_LENGTH, body.len())
        .header(CONNECTION, "close");
    if let Some(auth) = &target.auth {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    let request = request
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

#[cfg(test)]
mod tests {
    use super::super::{Counter, Gauge};
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn sample_registry() -> Registry {
        let mut registry = Registry::default();
        let records = Counter::<u64>::default();
        registry.register("divvi_records", "Records read.", records.clone());
        records.inc_by(7);
        let level = Gauge::<i64>::default();
        registry.register("divvi_level", "Level.", level.clone());
        level.set(3);
        registry
    }

    fn gateway(url: &str) -> Pushgateway {
        Pushgateway::new(url, None)
    }

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

    /// Accepts one plain-HTTP connection, records the request and answers with
    /// `status_line`.
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
        let registry = sample_registry();
        let (base, recorder) = fake_gateway("200 OK");
        push(
            &registry,
            &gateway(&base),
            "nightly-ingest",
            &[
                ("instance", "pod-7"),
                ("input", "s3://bucket/day=1?>"),
                ("shard", ""),
            ],
        )
        .unwrap();
        let req = recorder.join().unwrap();
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
        assert_eq!(req.header("authorization"), None);
        assert_eq!(String::from_utf8(req.body).unwrap(), render(&registry));
    }

    #[test]
    fn push_keeps_gateway_path_prefix_and_encodes_job() {
        let (base, recorder) = fake_gateway("202 Accepted");
        push(
            &sample_registry(),
            &gateway(&format!("{base}/pgw/")),
            "a/b",
            &[],
        )
        .unwrap();
        let req = recorder.join().unwrap();
        assert_eq!(
            req.request_line,
            "PUT /pgw/metrics/job@base64/YS9i HTTP/1.1"
        );
        let body = String::from_utf8(req.body).unwrap();
        assert!(body.contains("divvi_records_total 7\n"), "{body}");
    }

    #[test]
    fn push_error_status_names_url_and_status() {
        let (base, recorder) = fake_gateway("500 Internal Server Error");
        let err = push(&sample_registry(), &gateway(&base), "job1", &[("i", "x")]).unwrap_err();
        recorder.join().unwrap();
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
            &Registry::default(),
            &gateway(&format!("http://127.0.0.1:{port}")),
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
        let silent = gateway(&base).with_timeout(Duration::from_millis(300));
        let err = push(&Registry::default(), &silent, "j", &[]).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let msg = err.to_string();
        assert!(msg.contains(&format!("{base}/metrics/job/j")), "{msg}");
        assert!(msg.contains("no answer within 0.3 s"), "{msg}");
        drop(listener);
    }

    #[test]
    fn push_works_from_inside_a_tokio_runtime() {
        let (base, recorder) = fake_gateway("200 OK");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(async { push(&sample_registry(), &gateway(&base), "j", &[]) })
            .unwrap();
        recorder.join().unwrap();
    }

    #[test]
    fn push_rejects_bad_arguments_without_echoing_secrets() {
        let r = Registry::default();
        let err = push(&r, &gateway("http://user:hunter2@pgw:9091"), "j", &[]).unwrap_err();
        assert!(matches!(err, MetricsError::CredentialsInUrl));
        assert!(!err.to_string().contains("hunter2"));

        let auth = BasicAuth::new("divvi".into(), "hunter2".into());
        assert!(!format!("{auth:?}").contains("hunter2"));
        let err = Pushgateway::new("http://pgw:9091", Some(auth))
            .check()
            .unwrap_err();
        assert!(
            matches!(err, MetricsError::CredentialsOverHttp { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));

        let err = push(&r, &gateway("pgw:9091"), "j", &[]).unwrap_err();
        assert!(matches!(err, MetricsError::InvalidGateway { .. }), "{err}");
        let err = push(&r, &gateway("ftp://pgw:9091"), "j", &[]).unwrap_err();
        assert!(matches!(err, MetricsError::InvalidGateway { .. }), "{err}");
        let err = push(&r, &gateway("http://pgw:9091"), "", &[]).unwrap_err();
        assert!(
            err.to_string().contains("job name must not be empty"),
            "{err}"
        );
        let err = push(&r, &gateway("http://pgw:9091"), "j", &[("bad-name", "x")]).unwrap_err();
        assert!(err.to_string().contains("bad-name"), "{err}");
        assert!(gateway("https://pgw.example:9091/prefix").check().is_ok());
    }

    #[test]
    fn https_to_a_server_whose_certificate_no_trusted_ca_signed_fails_clearly() {
        // A plain-HTTP listener cannot complete a TLS handshake: the push says TLS failed
        // and names the address.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let err = push(
            &sample_registry(),
            &gateway(&format!("https://{addr}")),
            "j",
            &[],
        )
        .unwrap_err();
        answer.join().unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("push to https://{addr}/metrics/job/j failed: "))
                && (msg.contains(&format!("TLS with {addr}")) || msg.contains("CA certificates")),
            "{msg}"
        );
    }
}
