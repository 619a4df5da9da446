//! `divvi serve` as a real process on loopback: reports sealed by divvi's DAP-18 client are
//! uploaded over HTTP, one upload is retried, the server is killed with SIGKILL after its
//! acknowledgements and started again, then stopped with SIGTERM; the servers' intake,
//! aggregate and the portal's collect must then find every acknowledged report exactly
//! once. A kill under load from eight concurrent clients loses no acknowledged report and,
//! with the unanswered uploads sent again, counts none twice; with storage down, uploads
//! wait (503) and readiness fails until it returns. The deployed clients' own libraries,
//! @divviup/dap (npm) and janus_client (crates.io), both DAP-09, upload thousands of
//! reports whose result must be the truth.

mod common;

use common::divvi;
use divvi::dap::DapVersion;
use divvi::dap::{encode_reports, DapClient, Measurement, Report, Task};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A running `divvi serve`, killed if a failing test leaves it running.
struct Server(Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `divvi serve`; returns the process and its port.
fn start(dir: &Path) -> (Server, u16) {
    start_with_port(dir, &[])
}

/// Starts `divvi serve` with `extra` arguments; returns the process and its port.
fn start_with_port(dir: &Path, extra: &[&str]) -> (Server, u16) {
    let (child, listening) = start_with(dir, extra);
    (
        child,
        listening["listening"]
            .as_str()
            .unwrap()
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .port(),
    )
}

/// Starts `divvi serve` with `extra` arguments; returns the process and the line it
/// printed once listening (its addresses).
fn start_with(dir: &Path, extra: &[&str]) -> (Server, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args([
            "serve",
            "--config",
            p(&dir.join("ingestor.toml")),
            "--task",
            p(&dir.join("task.json")),
            "--listen",
            "127.0.0.1:0",
            "--journal",
            p(&dir.join("journal")),
        ])
        .args(extra)
        // Small batches unless a test asks otherwise, so a few reports make several.
        .args(match extra.contains(&"--batch-size") {
            true => &[][..],
            false => &["--batch-size", "7"][..],
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening = serde_json::from_str(&line).expect("the address line");
    (Server(child), listening)
}

/// One HTTP/1.1 request on loopback; the status and body.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = exchange(port, method, path, body);
    (status, body)
}

/// One HTTP/1.1 request on loopback; the status, the response head and the body.
fn exchange(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    try_exchange(port, method, path, body).expect("a whole answer")
}

/// One HTTP/1.1 request on loopback; None when the connection breaks before a whole
/// answer (the server being killed).
fn try_exchange(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<(u16, String, Vec<u8>)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    // What an upload of the method's draft carries (DAP-09 PUTs one report).
    let content_type = match method {
        "PUT" => divvi::serve::routes::REPORT_TYPE_09,
        _ => divvi::serve::routes::UPLOAD_REQUEST_TYPE_18,
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head, response[split + 4..].to_vec()))
}

/// Polls `check` until it gives a value, for at most a minute.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// SIGTERM: the server must end cleanly with every journal segment flushed and removed.
fn stop_and_check_flushed(mut server: Server, dir: &Path) {
    stop(&mut server, "-TERM");
    assert!(server.wait().unwrap().success(), "SIGTERM ends it cleanly");
    let left: Vec<_> = std::fs::read_dir(dir.join("journal")).unwrap().collect();
    assert!(
        left.is_empty(),
        "every segment flushed and removed: {left:?}"
    );
}

fn stop(child: &mut Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A DAP histogram:4 deployment made by keygen (its servers take runs of one report),
/// and `n` reports of it sealed by divvi's client library (measurements 0,1,2,3,0,1,...).
fn deployment(n: usize) -> (common::Deployment, PathBuf, Task, Vec<Report>) {
    let (d, task) = common::dap_deployment("histogram:4".parse().unwrap());
    let client = DapClient::new(&task).unwrap();
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let reports = (0..n)
        .map(|i| client.report(&Measurement::Histogram(i % 4), now).unwrap())
        .collect();
    let dir = d.paths.dir.clone();
    (d, dir, task, reports)
}

/// Runs both servers' intake and aggregate over today's window, then the portal's collect;
/// the result file.
fn collected(dir: &Path, task: &Task) -> serde_json::Value {
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    let (start, end) = (format!("{day}0000"), format!("{day}2359"));
    let window = ["--start", &start, "--end", &end];
    let aggregation = task.task_id().to_base64url();
    for server in ["server0", "server1"] {
        let config = dir.join(format!("{server}.toml"));
        let out = divvi(&[
            "intake",
            "--config",
            p(&config),
            "--aggregation",
            &aggregation,
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    for server in ["server0", "server1"] {
        let config = dir.join(format!("{server}.toml"));
        let mut args = vec![
            "aggregate",
            "--config",
            p(&config),
            "--aggregation",
            &aggregation,
        ];
        args.extend(window);
        let out = divvi(&args);
        assert!(out.status.success(), "{out:?}");
    }
    let portal = dir.join("portal.toml");
    let mut args = vec![
        "collect",
        "--config",
        p(&portal),
        "--aggregation",
        &aggregation,
    ];
    args.extend(window);
    let out = divvi(&args);
    assert!(out.status.success(), "{out:?}");
    let result = std::fs::read_to_string(
        dir.join("buckets/portal-results")
            .join(&aggregation)
            .join(format!("{start}-{end}.result.json")),
    )
    .unwrap();
    serde_json::from_str(&result).unwrap()
}

#[test]
fn acknowledged_uploads_reach_the_result_exactly_once_across_a_kill_and_a_stop() {
    let (_deployment, dir, task, reports) = deployment(20);
    let path = format!("/leader/tasks/{}/reports", task.task_id().to_base64url());

    let (mut server, port) = start(&dir);
    let (status, list) = request(port, "GET", "/helper/hpke_config", b"");
    assert_eq!(status, 200);
    assert_eq!(
        list,
        divvi::dap::task::encode_config_list(&[task.params().helper_hpke_config.clone()]).unwrap()
    );
    for chunk in reports[..12].chunks(4) {
        let (status, body) = request(
            port,
            "POST",
            &path,
            &encode_reports(DapVersion::Dap18, chunk).unwrap(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Killed after its acknowledgements: nothing acknowledged may be lost.
    stop(&mut server, "-KILL");
    server.wait().unwrap();

    let (server, port) = start(&dir);
    // A client that lost an answer sends the same upload again.
    let retried = encode_reports(DapVersion::Dap18, &reports[8..16]).unwrap();
    for body in [
        &retried,
        &encode_reports(DapVersion::Dap18, &reports[16..]).unwrap(),
    ] {
        let (status, answer) = request(port, "POST", &path, body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
    stop_and_check_flushed(server, &dir);

    let result = collected(&dir, &task);
    assert_eq!(
        result["result"],
        serde_json::json!([5, 5, 5, 5]),
        "{result}"
    );
}

#[test]
fn uploads_wait_while_storage_is_down_and_resume_when_it_returns() {
    let (_deployment, dir, task, reports) = deployment(20);
    let path = format!("/leader/tasks/{}/reports", task.task_id().to_base64url());
    // Server 0's ingestion location cannot be written: a file stands where its folder goes.
    let ingestion = dir.join("buckets/server0-ingestion");
    let _ = std::fs::remove_dir_all(&ingestion);
    std::fs::create_dir_all(dir.join("buckets")).unwrap();
    std::fs::write(&ingestion, b"in the way").unwrap();

    // Every upload seals a segment; one sealed segment may wait for the flusher.
    let (server, bound) = start_with(
        &dir,
        &[
            "--segment-bytes",
            "1",
            "--max-pending-segments",
            "1",
            "--metrics-port",
            "0",
        ],
    );
    let port = bound["listening"]
        .as_str()
        .unwrap()
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .port();
    let metrics_port = bound["metrics"]
        .as_str()
        .unwrap()
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .port();
    assert_eq!(request(port, "GET", "/readyz", b"").0, 200);
    for chunk in reports[..8].chunks(4) {
        let (status, body) = request(
            port,
            "POST",
            &path,
            &encode_reports(DapVersion::Dap18, chunk).unwrap(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Two segments wait now (each sealed just after its upload was answered), one more
    // than may: the server is not ready, and uploads are refused with when to come back.
    let body = wait_for("not ready while storage is down", || {
        let (status, _, body) = exchange(port, "GET", "/readyz", b"");
        (status == 503).then_some(body)
    });
    assert!(String::from_utf8_lossy(&body).contains("2 sealed segments wait"));
    let third = encode_reports(DapVersion::Dap18, &reports[8..]).unwrap();
    let (status, head, body) = exchange(port, "POST", &path, &third);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(head.to_lowercase().contains("retry-after: 1"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("flushing to storage is behind"));
    // The flusher's failed attempts are counted (the first may come after this point).
    let metrics = wait_for("a flush failure counted", || {
        let (_, metrics) = request(metrics_port, "GET", "/metrics", b"");
        let metrics = String::from_utf8(metrics).unwrap();
        metrics
            .contains("divvi_serve_flush_failures_total")
            .then_some(metrics)
    });
    assert!(
        metrics.contains("divvi_serve_reports_total{outcome=\"accepted\"} 8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("divvi_serve_responses_total{status=\"503\"}"),
        "{metrics}"
    );

    // Storage is back: the flusher's retries get through and uploads are taken again.
    std::fs::remove_file(&ingestion).unwrap();
    wait_for("ready again", || {
        (request(port, "GET", "/readyz", b"").0 == 200).then_some(())
    });
    let (status, body) = request(port, "POST", &path, &third);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    stop_and_check_flushed(server, &dir);
    // Each server's ingestion location holds every accepted report, in signed batches.
    for server in ["server0", "server1"] {
        let batches = std::fs::read_dir(dir.join(format!("buckets/{server}-ingestion")))
            .unwrap()
            .count();
        assert!(batches > 0, "{server} got no batch");
    }
}

#[test]
fn a_kill_under_concurrent_load_loses_no_acknowledged_report_and_counts_none_twice() {
    let (_deployment, dir, task, reports) = deployment(400);
    let path = format!("/leader/tasks/{}/reports", task.task_id().to_base64url());
    let (server, port) = start(&dir);

    // Eight clients upload one report at a time; the one whose answer is the 100th
    // acknowledgement kills the server (SIGKILL) while the others are still sending.
    let server = std::sync::Mutex::new(server);
    let acknowledged = std::sync::Mutex::new(vec![false; reports.len()]);
    let uploads: Vec<&[Report]> = reports.chunks(1).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let acks = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(upload) = uploads.get(i) else { break };
                match try_exchange(
                    port,
                    "POST",
                    &path,
                    &encode_reports(DapVersion::Dap18, upload).unwrap(),
                )
                .map(|(status, ..)| status)
                {
                    Some(200) => {
                        acknowledged.lock().unwrap()[i] = true;
                        if acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 100 {
                            server.lock().unwrap().kill().unwrap();
                        }
                    }
                    Some(status) => panic!("upload {i}: status {status}"),
                    None => break,
                }
            });
        }
    });
    server.into_inner().unwrap().wait().unwrap();
    let acknowledged = acknowledged.into_inner().unwrap();
    let acked = acknowledged.iter().filter(|a| **a).count();
    assert!(acked < uploads.len(), "the kill came after every upload");

    // Restarted, it flushes what the journal holds; clients send again every upload they
    // got no answer for (some of those may have been durable already).
    let (server, port) = start(&dir);
    for (upload, _) in uploads
        .iter()
        .zip(&acknowledged)
        .filter(|(_, acked)| !**acked)
    {
        let (status, body) = request(
            port,
            "POST",
            &path,
            &encode_reports(DapVersion::Dap18, upload).unwrap(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    stop_and_check_flushed(server, &dir);

    // Every report once: 100 of each bucket, whichever copies reached the batches.
    let result = collected(&dir, &task);
    assert_eq!(
        result["result"],
        serde_json::json!([100, 100, 100, 100]),
        "{result} ({acked} of {} uploads acknowledged before the kill)",
        uploads.len()
    );
}

/// A deployed DAP-09 client, run as a program: `PROGRAM TASK_JSON LEADER_URL HELPER_URL
/// MEASUREMENTS_JSONL [extra]`, which prints one summary line
/// (`{"uploaded": n, "failed": n, ...}`).
struct DeployedClient {
    name: &'static str,
    program: PathBuf,
    /// Arguments before the task file (the script, for node).
    before: Vec<&'static str>,
    extra: Vec<&'static str>,
    /// Where the program runs.
    dir: PathBuf,
}

/// The client fetches both HPKE configs from `divvi serve` and uploads a few thousand
/// reports of a histogram and of a sum task, one per request as DAP-09 has it; the
/// pipeline's result is the truth.
fn deployed_client_reaches_the_true_result(client: DeployedClient) {
    let name = client.name;
    assert!(
        client.program.exists() || client.program.components().count() == 1,
        "{name}: {} is missing: scripts/test.sh installs it",
        client.program.display()
    );
    /// The task's VDAF, how many reports, and the i-th report's measurement.
    type Case = (&'static str, usize, fn(usize) -> u64);
    let cases: [Case; 2] = [
        ("histogram:16", 2000, |i| (i * 7 % 16) as u64),
        ("sum:255", 1000, |i| (i * 37 % 256) as u64),
    ];
    for (vdaf, n, measure) in cases {
        let (_d, task) = common::dap_deployment_for(DapVersion::Dap09, vdaf.parse().unwrap());
        let dir = _d.paths.dir.clone();
        let measurements: Vec<u64> = (0..n).map(measure).collect();
        let lines: String = measurements.iter().map(|m| format!("{m}\n")).collect();
        std::fs::write(dir.join("m.jsonl"), lines).unwrap();
        let truth = match vdaf {
            "sum:255" => serde_json::json!(measurements.iter().sum::<u64>()),
            _ => {
                let mut buckets = vec![0u64; 16];
                measurements.iter().for_each(|&m| buckets[m as usize] += 1);
                serde_json::json!(buckets)
            }
        };
        let (server, port) = start_with_port(&dir, &["--batch-size", "500"]);
        let base = format!("http://127.0.0.1:{port}");
        let out = Command::new(&client.program)
            .current_dir(&client.dir)
            .args(&client.before)
            .args([
                p(&dir.join("task.json")),
                &format!("{base}/leader/"),
                &format!("{base}/helper/"),
                p(&dir.join("m.jsonl")),
            ])
            .args(&client.extra)
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{name} {vdaf}: the summary line: {out:?}"));
        assert_eq!(summary["uploaded"], n, "{name} {vdaf}: {summary}");
        assert_eq!(summary["failed"], 0, "{name} {vdaf}: {summary}");
        stop_and_check_flushed(server, &dir);
        let result = collected(&dir, &task);
        assert_eq!(result["result"], truth, "{name} {vdaf}: {result}");
        assert_eq!(result["report_count"], n, "{name} {vdaf}: {result}");
        assert_eq!(result["invalid_reports"], 0, "{name} {vdaf}: {result}");
    }
}

fn clients_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// The npm package deployed clients use, @divviup/dap 0.9.1 (DAP-09 with VDAF-08),
/// installed from `tests/clients/dap-js/package-lock.json` by scripts/test.sh.
#[test]
fn reports_from_the_divviup_dap_npm_client_reach_the_true_result() {
    let dir = clients_dir("dap-js");
    assert!(
        dir.join("node_modules/@divviup/dap").is_dir(),
        "@divviup/dap is not installed: run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    deployed_client_reaches_the_true_result(DeployedClient {
        name: "@divviup/dap",
        program: PathBuf::from("node"),
        before: vec!["upload.mjs"],
        extra: vec!["--concurrency", "8"],
        dir,
    });
}

/// The janus_client crate (0.7.145, DAP-09 with VDAF-08), built by scripts/test.sh from
/// `tests/clients/janus-rs` into `target/janus-client`.
#[test]
fn reports_from_the_janus_client_crate_reach_the_true_result() {
    let program = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/janus-client/release/divvi-janus-client");
    deployed_client_reaches_the_true_result(DeployedClient {
        name: "janus_client",
        program,
        before: vec![],
        extra: vec!["--concurrency", "4"],
        dir: clients_dir("janus-rs"),
    });
}
