//! `GET /metrics` on a port of its own while a long run lasts (a job with
//! `--metrics-port`, the upload server), for a scraper or a PodMonitor.
//!
//! The server runs on a private current-thread tokio runtime on its own OS thread, so
//! starting and dropping it is safe from inside another tokio runtime.

use super::{render, MetricsError, Registry};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE as SCRAPE_CONTENT_TYPE;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
// header_read_timeout does not cover a client that stops reading the response.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
// Scrapers need one or two connections; the cap only stops a stuck or hostile
// client from piling up tasks and file descriptors.
const MAX_CONNECTIONS: usize = 32;

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

/// Serves GET /metrics (the registry rendered on each request) on 0.0.0.0:port from a
/// background thread until the handle is dropped; other paths get 404. Port 0
/// picks a free port; [`MetricsServer::local_addr`] reports it.
pub fn serve(registry: Arc<Registry>, port: u16) -> Result<MetricsServer, MetricsError> {
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
            runtime.spawn(accept_loop(listener, registry));
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

async fn accept_loop(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
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
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&registry, &request);
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

fn respond(registry: &Registry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = if request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, "not found\n".to_owned())
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        )
    } else {
        (StatusCode::OK, render(registry))
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
    use super::super::FloatGauge;
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

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

    /// A registry with one gauge, and the gauge to change it by.
    fn one_gauge() -> (Arc<Registry>, FloatGauge) {
        let mut registry = Registry::default();
        let gauge = FloatGauge::default();
        registry.register("divvi_batch_seconds", "Wall time.", gauge.clone());
        gauge.set(12.5);
        (Arc::new(registry), gauge)
    }

    #[test]
    fn serve_answers_metrics_and_404() {
        let (registry, gauge) = one_gauge();
        let server = serve(Arc::clone(&registry), 0).unwrap();
        let addr = server.local_addr();
        assert!(addr.ip().is_unspecified());
        assert_ne!(addr.port(), 0);

        let (status, head, body) = http(addr, "GET", "/metrics");
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert_eq!(body, render(&registry));
        assert!(body.contains("divvi_batch_seconds 12.5\n"), "{body}");

        // Each scrape renders what the run has counted by then.
        gauge.set(99.5);
        let (status, _, body) = http(addr, "GET", "/metrics?debug=1");
        assert_eq!(status, 200);
        assert!(body.contains("divvi_batch_seconds 99.5\n"), "{body}");

        assert_eq!(http(addr, "GET", "/other").0, 404);
        assert_eq!(http(addr, "GET", "/").0, 404);
        let (status, head, _) = http(addr, "POST", "/metrics");
        assert_eq!(status, 405);
        assert!(head.contains("allow: get, head"), "{head}");
    }

    #[test]
    fn serve_is_not_blocked_by_an_idle_client() {
        let (registry, _) = one_gauge();
        let server = serve(Arc::clone(&registry), 0).unwrap();
        let idle = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
        let (status, _, body) = http(server.local_addr(), "GET", "/metrics");
        assert_eq!((status, body), (200, render(&registry)));
        drop(idle);
    }

    #[test]
    fn serve_and_drop_work_inside_a_tokio_runtime() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let status = runtime.block_on(async {
            let server = serve(Arc::new(Registry::default()), 0).unwrap();
            let status = http(server.local_addr(), "GET", "/metrics").0;
            drop(server);
            status
        });
        assert_eq!(status, 200);
    }

    #[test]
    fn dropping_the_server_closes_the_port() {
        let server = serve(Arc::new(Registry::default()), 0).unwrap();
        let port = server.local_addr().port();
        assert_eq!(http(server.local_addr(), "GET", "/metrics").0, 200);
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn serve_reports_bind_errors_with_address() {
        let taken = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = serve(Arc::new(Registry::default()), port).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("cannot serve metrics on 0.0.0.0:{port}: bind: ")),
            "{msg}"
        );
    }
}
