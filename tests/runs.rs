//! Aggregation runs: server 0 decides which batches a window sums, server 1 follows;
//! late batches are reported and summed by an explicit late run; reruns change nothing.

mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use divvi::batch::{truncate_to_minute, BatchId, BatchKind, Window};
use divvi::crypto::PacketScheme;
use divvi::schedule::{
    decide_late_run, execute_run, status, Decision, RunId, RunOutcome, StatusOptions,
};
use divvi::stages::ingest::{IngestionBatch, PacketMaker};
use divvi::stages::{collect, intake, no_tick};

const HOUR: TimeDelta = TimeDelta::hours(1);

fn run(d: &Deployment, server: usize, run: &RunId) -> RunOutcome {
    execute_run(&d.servers[server], run, HOUR, Utc::now(), &no_tick).unwrap()
}

fn done_batches(outcome: &RunOutcome) -> Vec<String> {
    match outcome {
        RunOutcome::Done { report, .. } => report.batches.clone(),
        other => panic!("not done: {other:?}"),
    }
}

fn window_at(time: chrono::DateTime<Utc>) -> Window {
    Window::new(time, time).unwrap()
}

#[test]
fn a_late_validation_is_left_out_by_both_and_summed_by_a_late_run() {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(5);
    let window = window_at(time);
    let on_time = write_batch(&d, "race", time, 0, 3);
    let late = write_batch(&d, "race", time, 2, 2);
    for s in &d.servers {
        intake::intake(s, &on_time, &no_tick).unwrap();
    }
    // Server 0 validated the late batch, but server 1's validation has not landed yet.
    intake::intake(&d.servers[0], &late, &no_tick).unwrap();

    let run0 = RunId::new("race", window, 0).unwrap();
    let first = run(&d, 0, &run0);
    assert_eq!(done_batches(&first), vec![on_time.to_string()]);
    match &first {
        RunOutcome::Done { left_out, .. } => assert_eq!(left_out, &vec![late.to_string()]),
        _ => unreachable!(),
    }
    // Now server 1 validates the late batch: it is complete on server 1's side, yet
    // server 1 sums exactly what server 0 decided.
    intake::intake(&d.servers[1], &late, &no_tick).unwrap();
    assert_eq!(done_batches(&run(&d, 1, &run0)), vec![on_time.to_string()]);
    let result = collect::collect(&d.portal, "race", &window).unwrap();
    assert_eq!(result.histogram, vec![3, 0, 0]);
    assert_eq!(result.batches, vec![on_time.uuid]);

    // Both servers report the late batch.
    let options = StatusOptions {
        period: TimeDelta::minutes(1),
        grace: TimeDelta::zero(),
        lookback: TimeDelta::minutes(10),
        incomplete_after: HOUR,
        now: Utc::now(),
    };
    for s in &d.servers {
        let w = status(s, "race", &options)
            .unwrap()
            .into_iter()
            .find(|w| w.window == window.name())
            .unwrap();
        assert_eq!((w.state, w.late.clone()), ("done", vec![late.to_string()]));
    }

    // The explicit late run sums it, once.
    let Decision::Decided(decided) =
        decide_late_run(&d.servers[0], "race", &window, HOUR, Utc::now()).unwrap()
    else {
        panic!("a late run should be decided");
    };
    assert_eq!(decided.run.run, 1);
    assert_eq!(decided.batches, vec![late.clone()]);
    assert_eq!(
        done_batches(&run(&d, 0, &decided.run)),
        vec![late.to_string()]
    );
    assert_eq!(
        done_batches(&run(&d, 1, &decided.run)),
        vec![late.to_string()]
    );
    let late_result = collect::collect_run(&d.portal, "race", &window, 1).unwrap();
    assert_eq!(late_result.histogram, vec![0, 0, 2]);
    assert_eq!(late_result.window, format!("{}-late1", window.name()));
    assert!(matches!(
        decide_late_run(&d.servers[0], "race", &window, HOUR, Utc::now()).unwrap(),
        Decision::NothingReady(_)
    ));
    for s in &d.servers {
        let w = status(s, "race", &options)
            .unwrap()
            .into_iter()
            .find(|w| w.window == window.name())
            .unwrap();
        assert_eq!(w.state, "done");
        assert!(w.late.is_empty(), "{:?}", w.late);
        assert_eq!(w.runs.len(), 2);
    }
}

#[test]
fn server_1_waits_for_a_validation_server_0_already_counted() {
    let d = deployment(PacketScheme::Hpke);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(5);
    let window = window_at(time);
    let id = write_batch(&d, "wait", time, 1, 4);
    for s in &d.servers {
        intake::intake(s, &id, &no_tick).unwrap();
    }
    // Server 1's intake sent server 0 its validation but died before keeping its own.
    let own1 = id.names(BatchKind::Validation(divvi::ids::ServerIndex::One));
    let own_dir = d.paths.dir.join("buckets/server1-own");
    std::fs::remove_file(own_dir.join(&own1.signature)).unwrap();

    let run0 = RunId::new("wait", window, 0).unwrap();
    // Server 1 has no manifest yet: it waits for server 0's decision.
    match run(&d, 1, &run0) {
        RunOutcome::Waiting { missing } => {
            assert!(missing[0].ends_with(".manifest.sig"), "{missing:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(done_batches(&run(&d, 0, &run0)), vec![id.to_string()]);
    match run(&d, 1, &run0) {
        RunOutcome::Waiting { missing } => {
            assert_eq!(missing.len(), 1);
            assert!(missing[0].ends_with(&own1.signature), "{missing:?}");
        }
        other => panic!("{other:?}"),
    }
    // Intake's rerun writes the validation again; then server 1 catches up.
    assert_eq!(
        intake::pending_batches(&d.servers[1], "wait").unwrap(),
        vec![id.clone()]
    );
    intake::intake(&d.servers[1], &id, &no_tick).unwrap();
    assert_eq!(done_batches(&run(&d, 1, &run0)), vec![id.to_string()]);
    assert_eq!(
        collect::collect(&d.portal, "wait", &window)
            .unwrap()
            .histogram,
        vec![0, 4, 0]
    );
}

// --- The scheduled jobs as processes -------------------------------------------------

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(d: &Deployment, server: usize) -> String {
    d.paths.servers[server].to_str().unwrap().to_string()
}

/// Scheduled jobs run as the jobs/ manifests run them: with `--exit-codes scheduler`, so
/// a turn with nothing to do or waiting exits 0.
fn intake_args(config: &str, aggregation: &str) -> Vec<String> {
    [
        "intake",
        "--config",
        config,
        "--aggregation",
        aggregation,
        "--pending",
        "--exit-codes",
        "scheduler",
    ]
    .map(String::from)
    .to_vec()
}

fn aggregate_args(config: &str, aggregation: &str) -> Vec<String> {
    let args = [
        "aggregate",
        "--config",
        config,
        "--aggregation",
        aggregation,
        "--pending",
        "--period",
        "1m",
        "--grace",
        "0m",
        "--lookback",
        "60m",
        "--exit-codes",
        "scheduler",
    ];
    args.map(String::from).to_vec()
}

/// A window's `--start` and `--end` values: the two halves of its name.
fn start_end(window: &Window) -> (String, String) {
    let name = window.name();
    let (start, end) = name.split_once('-').expect("a window name is START-END");
    (start.to_string(), end.to_string())
}

/// `divvi status --output json`'s entry for one window (1-minute windows, 10 min back).
fn window_status_of(config: &str, aggregation: &str, window: &Window) -> serde_json::Value {
    let out = ok(&[
        "status",
        "--config",
        config,
        "--aggregation",
        aggregation,
        "--period",
        "1m",
        "--grace",
        "0m",
        "--lookback",
        "10m",
        "--output",
        "json",
    ]);
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let windows = all["windows"].as_array().unwrap();
    let found = windows.iter().find(|w| w["window"] == window.name());
    found.cloned().unwrap()
}

/// Runs `aggregate` for each config; each must succeed.
fn aggregate_both_ok(configs: &[&String], aggregate: impl Fn(&str) -> std::process::Output) {
    for c in configs {
        let out = aggregate(c);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{c}: {stderr}");
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every object of a deployment's buckets with its bytes (temporary files excluded).
fn snapshot(d: &Deployment) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if !p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".divvi-tmp-")
            {
                let key = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    let root = d.paths.dir.join("buckets");
    walk(&root, &root, &mut out);
    out
}

/// Batches in one closed one-minute window: `counts[i]` reports setting bin i.
fn scheduled_deployment(
    aggregation: &str,
    batches: usize,
    per_batch: usize,
) -> (Deployment, Window, Vec<u64>) {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(3);
    let mut truth = vec![0u64; 3];
    for i in 0..batches {
        write_batch(&d, aggregation, time, i % 3, per_batch);
        truth[i % 3] += per_batch as u64;
    }
    (d, window_at(time), truth)
}

#[test]
fn racing_workers_agree_and_a_rerun_after_success_changes_nothing() {
    let (d, window, truth) = scheduled_deployment("sched", 6, 20);
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    // Two workers per server take the same pending intake work at once.
    let workers: Vec<Child> = [&c0, &c0, &c1, &c1]
        .iter()
        .map(|c| spawn(&strs(&intake_args(c, "sched"))))
        .collect();
    for w in workers {
        wait_ok(w, "intake");
    }
    // Two aggregate workers per server at once (server 1 may still wait for server 0's
    // manifest, so its workers run once more after).
    let workers: Vec<Child> = [&c0, &c0, &c1, &c1]
        .iter()
        .map(|c| spawn(&strs(&aggregate_args(c, "sched"))))
        .collect();
    for w in workers {
        wait_ok(w, "aggregate");
    }
    wait_ok(spawn(&strs(&aggregate_args(&c1, "sched"))), "aggregate");
    let result = collect::collect(&d.portal, "sched", &window).unwrap();
    assert_eq!(result.histogram, truth);
    assert_eq!(result.batches.len(), 6);

    // Rerunning every scheduled job after success writes nothing at all.
    let before = snapshot(&d);
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "sched")));
        ok(&strs(&aggregate_args(c, "sched")));
    }
    assert_eq!(snapshot(&d), before);

    // An explicit rerun of the window writes the same sum parts again, byte for byte
    // (only the ECDSA signatures, randomised, differ), so racing writers cannot mix.
    // Compared by digest: a failure message with whole files would be unreadable.
    let sum_parts = |s: &BTreeMap<String, Vec<u8>>| -> Vec<(String, String)> {
        s.iter()
            .filter(|(k, _)| {
                (k.contains(".sum_") && !k.ends_with(".sig")) || k.contains(".invalid_uuid_")
            })
            .map(|(k, v)| (k.clone(), divvi::batch::hex(&divvi::crypto::sha256(v))))
            .collect()
    };
    let (start, end) = start_end(&window);
    for c in [&c0, &c1] {
        ok(&[
            "aggregate",
            "--config",
            c,
            "--aggregation",
            "sched",
            "--start",
            &start,
            "--end",
            &end,
        ]);
    }
    let after = snapshot(&d);
    assert_eq!(sum_parts(&after), sum_parts(&before));
    assert_eq!(sum_parts(&before).len(), 4);
    assert_eq!(
        collect::collect(&d.portal, "sched", &window)
            .unwrap()
            .histogram,
        truth
    );
}

/// [`common::kill_after`] of a job's arguments.
fn kill_after(args: &[String], delay: std::time::Duration) -> bool {
    common::kill_after(&strs(args), delay)
}

#[test]
fn jobs_killed_at_any_point_finish_on_rerun_with_the_true_result() {
    let (d, window, truth) = scheduled_deployment("crash", 8, 1500);
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    let delays = [5, 20, 40, 70, 110, 160, 230, 320, 450].map(std::time::Duration::from_millis);
    let mut killed = 0;
    for jobs in [
        [intake_args(&c0, "crash"), intake_args(&c1, "crash")],
        [aggregate_args(&c0, "crash"), aggregate_args(&c1, "crash")],
    ] {
        for delay in delays {
            for job in &jobs {
                killed += usize::from(kill_after(job, delay));
            }
        }
        // Whatever state the kills left, a plain rerun finishes the work.
        for job in &jobs {
            ok(&strs(job));
        }
    }
    assert!(
        killed >= 8,
        "only {killed} jobs were still running when killed"
    );
    // Collect killed too. It takes milliseconds, so most kills land before or after it;
    // the kills sweep its first few milliseconds in fine steps.
    let (start, end) = start_end(&window);
    let portal = d.paths.portal.to_str().unwrap().to_string();
    let collect_args: Vec<String> = [
        "collect",
        "--config",
        &portal,
        "--aggregation",
        "crash",
        "--start",
        &start,
        "--end",
        &end,
    ]
    .map(String::from)
    .to_vec();
    let collects_killed = (0..32u64)
        .filter(|&step| kill_after(&collect_args, std::time::Duration::from_micros(step * 150)))
        .count();
    assert!(
        collects_killed >= 4,
        "only {collects_killed} collects were still running when killed"
    );
    assert!(ok(&strs(&collect_args)).contains("clients 12000"));
    let results = d.paths.dir.join("buckets/portal-results/crash");
    let json = std::fs::read_to_string(results.join(format!("{}.result.json", window.name())));
    assert!(json
        .unwrap()
        .contains("\"total_individual_clients\": 12000"));
    let result = collect::collect(&d.portal, "crash", &window).unwrap();
    assert_eq!(result.histogram, truth);
    assert_eq!(result.batches.len(), 8);
    assert_eq!(result.total_individual_clients, 8 * 1500);
}

/// A stand-in Pushgateway on loopback: records each request's path and body.
fn fake_pushgateway() -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            let _ = tx.send((request_line, String::from_utf8(body).unwrap()));
        }
    });
    (url, rx)
}

/// The value of one sample in a Prometheus text body (name and a label it must carry).
fn sample(body: &str, name: &str, label: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no {name} with {label} in:\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn jobs_push_their_metrics_including_late_batches() {
    let (d, window, _) = scheduled_deployment("metrics", 3, 7);
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    let (gateway, pushes) = fake_pushgateway();
    let with_gateway = |mut args: Vec<String>| {
        args.extend(["--pushgateway".to_string(), gateway.clone()]);
        args
    };
    ok(&strs(&with_gateway(intake_args(&c0, "metrics"))));
    let (request, body) = pushes.recv().unwrap();
    assert!(
        request.starts_with("PUT /metrics/job/divvi_intake/server/0/aggregation/metrics "),
        "{request}"
    );
    assert_eq!(
        sample(&body, "divvi_packets_total", "outcome=\"valid\""),
        21.0
    );
    assert_eq!(
        sample(&body, "divvi_packets_total", "outcome=\"invalid\""),
        0.0
    );
    assert_eq!(
        sample(&body, "divvi_batches_total", "outcome=\"done\""),
        3.0
    );
    assert!(sample(&body, "divvi_bytes_total", "direction=\"read\"") > 0.0);
    assert!(sample(&body, "divvi_bytes_total", "direction=\"written\"") > 0.0);
    assert!(
        body.contains("divvi_last_success_timestamp_seconds{"),
        "{body}"
    );

    // One batch more arrives, validated by server 0 only: it is late for the window.
    ok(&strs(&intake_args(&c1, "metrics")));
    let late = write_batch(&d, "metrics", window.start, 1, 2);
    intake::intake(&d.servers[0], &late, &no_tick).unwrap();
    ok(&strs(&with_gateway(aggregate_args(&c0, "metrics"))));
    let (request, body) = pushes.recv().unwrap();
    assert!(request.contains("/job/divvi_aggregate/"), "{request}");
    assert_eq!(
        sample(&body, "divvi_packets_total", "outcome=\"valid\""),
        21.0
    );
    assert_eq!(sample(&body, "divvi_late_batches", "server=\"0\""), 1.0);
    assert_eq!(
        sample(&body, "divvi_batches_total", "outcome=\"done\""),
        1.0
    );
}

/// A Pushgateway behind TLS on loopback (Python's ssl module with a certificate made by
/// openssl for 127.0.0.1): prints its port, then one JSON line per request it answers
/// (path, Authorization header, body). Handshakes that fail are skipped.
const HTTPS_GATEWAY: &str = r#"
import http.server, json, ssl, sys
class Gateway(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        print(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body}), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A CA and a server certificate it signed for 127.0.0.1 (rustls, rightly, takes no
/// self-signed CA certificate as a server's), made by openssl: (ca, cert, key) paths.
fn certificate_for_loopback(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=gateway",
                "-keyout",
                "key.pem",
                "-out",
                "req.pem",
            ],
        ]
        .concat(),
    );
    std::fs::write(path("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "req.pem",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

#[test]
fn jobs_push_over_https_with_basic_auth_and_only_to_a_trusted_gateway() {
    use std::io::BufRead;
    let (d, _, _) = scheduled_deployment("tls", 2, 5);
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate_for_loopback(tls.path());
    let mut gateway = std::process::Command::new("python3")
        .args(["-c", HTTPS_GATEWAY])
        .args([&cert, &key])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Lines the gateway prints, read on a thread so a push that never comes fails the
    // test instead of hanging it.
    let (lines, requests) = std::sync::mpsc::channel();
    let stdout = gateway.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = lines.send(line.unwrap());
        }
    });
    let next = || {
        requests
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the gateway printed nothing within 30 s")
    };
    let port = next();
    let url = format!("https://127.0.0.1:{port}/pgw");
    let password = "pw-7f3a9c-not-for-logs";
    let job = |trust: bool| {
        let c0 = config(&d, 0);
        let mut args = intake_args(&c0, "tls");
        args.extend(["--log-format", "text", "--pushgateway", &url].map(String::from));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"));
        command
            .args(&args)
            .env("DIVVI_PUSHGATEWAY_USERNAME", "divvi")
            .env("DIVVI_PUSHGATEWAY_PASSWORD", password)
            .env("RUST_LOG", "info");
        if trust {
            command.env("SSL_CERT_FILE", &ca);
        }
        command.output().unwrap()
    };

    // Trusted through SSL_CERT_FILE: the push arrives with the credentials, and its
    // body is what the reference parser reads, durations as histograms.
    let out = job(true);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains(password), "{log}");
    let pushed: serde_json::Value = serde_json::from_str(&next()).unwrap();
    assert_eq!(
        pushed["path"],
        "/pgw/metrics/job/divvi_intake/server/0/aggregation/tls"
    );
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("divvi:{password}"));
    assert_eq!(pushed["authorization"], format!("Basic {expected}"));
    let samples = prometheus_samples(pushed["body"].as_str().unwrap());
    let at = |name: &str, labels: &str| {
        let key = format!(
            "{name}{{\"aggregation\": \"tls\", \"job_name\": \"intake\", {labels}\"server\": \"0\"}}"
        );
        *samples
            .get(&key)
            .unwrap_or_else(|| panic!("no {key} in {samples:?}"))
    };
    assert_eq!(at("divvi_batches_total", "\"outcome\": \"done\", "), 2.0);
    assert_eq!(
        at(
            "divvi_batch_duration_seconds_count",
            "\"outcome\": \"done\", "
        ),
        2.0
    );
    assert_eq!(
        at(
            "divvi_job_duration_seconds_count",
            "\"outcome\": \"success\", "
        ),
        1.0
    );
    assert_eq!(
        at(
            "divvi_job_duration_seconds_bucket",
            "\"le\": \"+Inf\", \"outcome\": \"success\", "
        ),
        1.0
    );

    // Not trusted (the system's CAs did not sign it): no push, a clear warning, and the
    // job still succeeds (its work does not depend on the push).
    let out = job(false);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("could not push metrics")
            && log.contains(&format!("TLS with 127.0.0.1:{port}")),
        "{log}"
    );
    assert!(!log.contains(password), "{log}");

    gateway.kill().unwrap();
    gateway.wait().unwrap();

    // Credentials are never sent in clear text: refused before any work.
    let c0 = config(&d, 0);
    let mut args = intake_args(&c0, "tls");
    args.extend(["--pushgateway", "http://127.0.0.1:9"].map(String::from));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(&args)
        .env("DIVVI_PUSHGATEWAY_USERNAME", "divvi")
        .env("DIVVI_PUSHGATEWAY_PASSWORD", password)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("only sent over https://") && !err.contains(password),
        "{err}"
    );
}

/// One scrape of `/metrics` on loopback, or None while nothing answers.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn a_running_job_serves_its_metrics_on_the_metrics_port() {
    let (d, _, _) = scheduled_deployment("scrape", 6, 1500);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = intake_args(&config(&d, 0), "scrape");
    args.extend(["--metrics-port".to_string(), port.to_string()]);
    let mut job = spawn(&strs(&args));
    // Scrape while the job runs, until the first finished batch shows (6 batches of
    // 1500 packets: the job runs for seconds, and counts each batch as it ends).
    let mut answered = None;
    let mut counted = None;
    while job.try_wait().unwrap().is_none() {
        if let Some(response) = scrape(port) {
            if response.contains("divvi_packets_total{") {
                counted = Some(response);
                break;
            }
            answered = Some(response);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let still_running = job.try_wait().unwrap().is_none();
    wait_ok(job, "intake");
    let response = counted.expect("no scrape during the job showed a finished batch");
    assert!(still_running, "the scrape must happen while the job runs");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("text/plain; version=0.0.4"), "{response}");
    assert!(
        response.contains("# TYPE divvi_packets_total counter")
            && response.contains("divvi_batches_total{"),
        "{response}"
    );
    // Before the first batch ended, the endpoint already answered (with what it had).
    if let Some(early) = answered {
        assert!(early.starts_with("HTTP/1.1 200"), "{early}");
    }
    // Once the job has ended, nothing listens any more.
    assert!(scrape(port).is_none());
}

#[test]
fn status_and_a_late_run_from_the_command_line() {
    let (d, window, truth) = scheduled_deployment("cli-late", 2, 5);
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    let window_status = |c: &str| window_status_of(c, "cli-late", &window);
    assert_eq!(window_status(&c0)["state"], "pending");
    assert_eq!(window_status(&c0)["batches"], 2);
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "cli-late")));
    }
    let late = write_batch(&d, "cli-late", window.start, 2, 4);
    for c in [&c0, &c1] {
        ok(&strs(&aggregate_args(c, "cli-late")));
    }
    let w = window_status(&c0);
    assert_eq!(w["state"], "done");
    assert_eq!(w["late"], serde_json::json!([late.to_string()]));
    assert_eq!(w["incomplete"], 0);
    // Once validated, the late batch is summed by an explicit late run on both servers.
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "cli-late")));
    }
    let (start, end) = start_end(&window);
    for c in [&c0, &c1] {
        let late_args = [
            "aggregate",
            "--config",
            c,
            "--aggregation",
            "cli-late",
            "--late",
            "--start",
            &start,
            "--end",
            &end,
        ];
        ok(&late_args);
    }
    let portal = d.paths.portal.to_str().unwrap();
    let collect_args = |run: &str| {
        ok(&[
            "collect",
            "--config",
            portal,
            "--aggregation",
            "cli-late",
            "--start",
            &start,
            "--end",
            &end,
            "--run",
            run,
        ])
    };
    assert!(collect_args("0").contains(&format!("clients {}", truth.iter().sum::<u64>())));
    assert!(collect_args("1").contains("clients 4"));
    let w = window_status(&c1);
    assert_eq!(
        (w["state"].as_str(), w["late"].as_array().unwrap().len()),
        (Some("done"), 0)
    );
    assert_eq!(w["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_failed_run_is_recorded_shown_by_status_and_cleared_by_a_good_rerun() {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(4);
    let window = window_at(time);
    let id = write_batch(&d, "fail", time, 0, 6);
    for s in &d.servers {
        intake::intake(s, &id, &no_tick).unwrap();
    }
    // Server 0's share stash is damaged: its run fails, naming the stash.
    let stash = d
        .paths
        .dir
        .join("buckets/server0-own")
        .join(id.stash_name(d.servers[0].index));
    let good = std::fs::read(&stash).unwrap();
    let mut bad = good.clone();
    bad[60] ^= 1;
    std::fs::write(&stash, &bad).unwrap();
    let run0 = RunId::new("fail", window, 0).unwrap();
    let err = execute_run(&d.servers[0], &run0, HOUR, Utc::now(), &no_tick).unwrap_err();
    assert!(format!("{err:#}").contains(".shares_0"), "{err:#}");

    let options = StatusOptions {
        period: TimeDelta::minutes(1),
        grace: TimeDelta::zero(),
        lookback: TimeDelta::minutes(10),
        incomplete_after: HOUR,
        now: Utc::now(),
    };
    let find = |s: &divvi::config::Server| {
        status(s, "fail", &options)
            .unwrap()
            .into_iter()
            .find(|w| w.window == window.name())
            .unwrap()
    };
    let w = find(&d.servers[0]);
    assert_eq!(w.state, "failed");
    assert!(
        w.runs[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains(".shares_0"),
        "{w:?}"
    );
    // Server 1 sees the decided run it has not summed yet.
    assert_eq!(find(&d.servers[1]).state, "pending");

    std::fs::write(&stash, &good).unwrap();
    assert_eq!(done_batches(&run(&d, 0, &run0)), vec![id.to_string()]);
    assert_eq!(done_batches(&run(&d, 1, &run0)), vec![id.to_string()]);
    for s in &d.servers {
        assert_eq!(find(s).state, "done");
    }
    assert_eq!(
        collect::collect(&d.portal, "fail", &window)
            .unwrap()
            .histogram,
        vec![6, 0, 0]
    );
}

#[test]
fn an_ingest_killed_at_any_point_is_finished_by_running_it_again_with_its_journal() {
    let d = deployment(PacketScheme::Ecies);
    let dir = d.dir.path();
    let (reports, batch_size) = (6000, 500);
    let mut csv = String::new();
    let mut truth = vec![0u64; 3];
    for i in 0..reports {
        let bin = (i * 7 + i / 3) % 3;
        truth[bin] += 1;
        let row: Vec<&str> = (0..3).map(|b| if b == bin { "1" } else { "0" }).collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let input = dir.join("reports.csv");
    std::fs::write(&input, csv).unwrap();
    let time = (truncate_to_minute(Utc::now()) - TimeDelta::minutes(3))
        .format("%Y%m%d%H%M")
        .to_string();
    let ingest: Vec<String> = [
        "ingest",
        "--config",
        d.paths.ingestor.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--aggregation",
        "ingest-crash",
        "--bins",
        "3",
        "--batch-size",
        &batch_size.to_string(),
        "--time",
        &time,
        "--journal",
        dir.join("ingest.journal").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let mut killed = 0;
    for ms in [20, 60, 120, 200, 300, 450] {
        killed += usize::from(kill_after(&ingest, std::time::Duration::from_millis(ms)));
    }
    assert!(
        killed >= 3,
        "only {killed} ingest runs were still running when killed"
    );
    ok(&strs(&ingest));
    // A rerun after success sends nothing more.
    let again: serde_json::Value = serde_json::from_str(&ok(&strs(&ingest))).unwrap();
    assert_eq!(again["batches"], serde_json::json!([]), "{again}");

    let (c0, c1) = (config(&d, 0), config(&d, 1));
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "ingest-crash")));
    }
    for c in [&c0, &c1] {
        ok(&strs(&aggregate_args(c, "ingest-crash")));
    }
    let window = window_at(divvi::batch::parse_time(&time).unwrap());
    let result = collect::collect(&d.portal, "ingest-crash", &window).unwrap();
    assert_eq!(result.histogram, truth);
    assert_eq!(result.total_individual_clients, reports as i64);
    assert_eq!(result.batches.len(), reports / batch_size);
}

/// An app moving from 3 to 4 bins in the middle of a window: the run sums the batches of
/// its first batch's parameters, reports the others (left out, late) instead of failing,
/// and a late run sums them with their own bins. All through the command line.
#[test]
fn a_batch_with_other_prio_parameters_is_left_out_and_summed_by_a_late_run() {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(4);
    let update = time + TimeDelta::minutes(1);
    let window = Window::new(time, update).unwrap();
    let (start, end) = start_end(&window);
    write_batch(&d, "bins-change", time, 1, 3);
    write_batch(&d, "bins-change", time, 2, 2);
    // The 4-bin batch, as the ingestor writes it after the app's update a minute later.
    let maker = PacketMaker::new(&d.ingestor, 4).unwrap();
    let mut b = IngestionBatch::new(&d.ingestor, "bins-change", update).unwrap();
    for _ in 0..5 {
        b.append(&maker.make(&[0, 0, 0, 1]).unwrap()).unwrap();
    }
    let four_bins = b.finish(4, 1.0).unwrap();
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "bins-change")));
    }
    let with_window = |command: &str, config: &str| -> Vec<String> {
        let args = [
            command,
            "--config",
            config,
            "--aggregation",
            "bins-change",
            "--start",
            &start,
            "--end",
            &end,
        ];
        args.map(String::from).to_vec()
    };
    let explicit = |c: &str, late: bool| {
        let mut args = with_window("aggregate", c);
        if late {
            args.push("--late".into());
        }
        let out = common::divvi(&strs(&args));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let log = explicit(&c0, false);
    assert!(
        log.contains(&four_bins.to_string()) && log.contains("bins 4") && log.contains("--late"),
        "server 0 reports the batch it left out: {log}"
    );
    explicit(&c1, false);
    for c in [&c0, &c1] {
        explicit(c, true);
    }
    let portal = d.paths.portal.to_str().unwrap();
    let collect = |run: &str| {
        let mut args = with_window("collect", portal);
        args.extend(["--run".into(), run.into()]);
        ok(&strs(&args))
    };
    let counts = |out: &str| -> Vec<u64> {
        out.lines()
            .skip(2)
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(counts(&collect("0")), vec![0, 3, 2]);
    assert_eq!(counts(&collect("1")), vec![0, 0, 0, 5]);
}

/// Writes server 0's ingestion batch again with one packet fewer, signed by the ingestor:
/// a batch re-signed after intake, which no run can sum any more.
fn resign_without_last_packet(d: &Deployment, id: &BatchId) {
    use divvi::batch::{open_batch, BatchWriter};
    use divvi::crypto::PacketDigest;
    use divvi::wire::{DataSharePacket, IngestionHeader};
    let store = d.servers[0].ingestion.as_ref();
    let names = id.names(BatchKind::Ingestion);
    let batch = open_batch::<IngestionHeader>(store, &names, &d.servers[0].ingestor_trust, 1 << 30)
        .unwrap();
    let mut packets: Vec<DataSharePacket> = batch
        .packets::<DataSharePacket>()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    packets.pop();
    let header = batch.header.clone();
    let mut w = BatchWriter::three_object(store, names, PacketDigest::Sha256).unwrap();
    for p in &packets {
        w.append(p).unwrap();
    }
    let header = |digest| IngestionHeader {
        packet_file_digest: digest,
        ..header
    };
    w.finish(header, &d.ingestor.signing_key, &[store]).unwrap();
}

/// A batch that wedges its window (re-signed after intake: every run listing it fails) is
/// excluded by the operator on server 0; both servers then finish the window without it,
/// `status` shows the exclusion and its reason, and a batch already summed cannot be
/// excluded. All through the command line.
#[test]
fn an_excluded_batch_lets_a_wedged_window_finish_on_both_servers() {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(4);
    let window = window_at(time);
    let (start, end) = start_end(&window);
    let good = write_batch(&d, "wedge", time, 0, 3);
    let bad = write_batch(&d, "wedge", time, 2, 2);
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "wedge")));
    }
    resign_without_last_packet(&d, &bad);
    let aggregate = |c: &str| {
        let args = [
            "aggregate",
            "--config",
            c,
            "--aggregation",
            "wedge",
            "--start",
            &start,
            "--end",
            &end,
        ];
        common::divvi(&args)
    };
    let out = aggregate(&c0);
    assert_eq!(out.status.code(), Some(1), "the bad batch fails the run");

    let exclude = |c: &str, batch: &BatchId| {
        let uuid = batch.uuid.to_string();
        let args = [
            "exclude",
            "--config",
            c,
            "--aggregation",
            "wedge",
            "--batch",
            &uuid,
            "--reason",
            "re-signed after intake",
        ];
        common::divvi(&args)
    };
    let out = exclude(&c1, &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("server 1 follows"),
        "{stderr}"
    );
    let out = exclude(&c0, &bad);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    aggregate_both_ok(&[&c0, &c1], aggregate);
    let result = collect::collect(&d.portal, "wedge", &window).unwrap();
    assert_eq!(result.histogram, vec![3, 0, 0]);
    assert_eq!(result.batches, vec![good.uuid]);

    let w = window_status_of(&c1, "wedge", &window);
    assert_eq!(w["state"], "done");
    assert_eq!(w["late"], serde_json::json!([]));
    assert_eq!(w["excluded"][0]["batch"], bad.to_string());
    assert_eq!(w["excluded"][0]["reason"], "re-signed after intake");

    // The good batch is summed: excluding it now could reveal its sum by difference.
    let out = exclude(&c0, &good);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("would reveal"),
        "{stderr}"
    );
}

/// `divvi status --output json` for an aggregation, with its `--lookback`.
fn status_json(config: &str, aggregation: &str, lookback: &str) -> serde_json::Value {
    let args = [
        "status",
        "--config",
        config,
        "--aggregation",
        aggregation,
        "--lookback",
        lookback,
        "--output",
        "json",
    ];
    serde_json::from_str(&ok(&args)).unwrap()
}

/// The `skipped` entries of a status report of one kind, as (object, reason).
fn skipped_of(status: &serde_json::Value, kind: &str) -> Vec<(String, String)> {
    let all = status["skipped"].as_array().expect("status lists skipped");
    all.iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| (s["object"].to_string(), s["reason"].to_string()))
        .collect()
}

#[test]
fn batches_older_than_the_lookback_are_reported_by_intake_and_status() {
    let (d, _, _) = scheduled_deployment("old", 1, 2);
    let old = write_batch(&d, "old", Utc::now() - TimeDelta::days(10), 0, 2);
    // A batch the ingestor never finished (no signature), as old.
    let unfinished = BatchId::new("old", old.time, uuid::Uuid::new_v4()).unwrap();
    let header = unfinished.names(BatchKind::Ingestion).header;
    divvi::store::put_bytes(d.servers[0].ingestion.as_ref(), &header, b"x").unwrap();
    let c0 = config(&d, 0);
    let mut intake = intake_args(&c0, "old");
    intake.extend(["--lookback".into(), "72h".into()]);
    // A second shard finds the same, and says so in its summary and metrics, but leaves
    // the warning to the first shard (N pods, one warning each).
    let (gateway, pushes) = fake_pushgateway();
    let mut second_shard = intake.clone();
    second_shard
        .extend(["--shard", "1/2", "--log-format", "text", "--pushgateway"].map(String::from));
    second_shard.push(gateway);
    let out = divvi(&strs(&second_shard));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains("older than the lookback"))
            && log.contains("\"kind\":\"older_than_lookback\""),
        "{log}"
    );
    let (_, body) = pushes.recv().unwrap();
    assert_eq!(
        sample(&body, "divvi_skipped", "kind=\"older_than_lookback\""),
        2.0
    );
    assert_eq!(
        sample(&body, "divvi_skipped", "kind=\"unknown_aggregation\""),
        0.0
    );
    let out = divvi(&strs(&intake));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("1 ingestion batches of old older than the lookback")
            && log.contains(&old.to_string())
            && log.contains("have no validation by this server")
            && log.contains("are incomplete (no .batch.sig")
            && log.contains(&unfinished.to_string()),
        "{log}"
    );
    // Validated (by --batch) but in no run: aggregate --pending and status still say so.
    let batch = old.uuid.to_string();
    ok(&[
        "intake",
        "--config",
        &c0,
        "--aggregation",
        "old",
        "--batch",
        &batch,
    ]);
    let out = divvi(&strs(&aggregate_args(&c0, "old")));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("are in no run") && log.contains(&old.to_string()),
        "{log}"
    );
    let found = skipped_of(&status_json(&c0, "old", "72h"), "older_than_lookback");
    assert!(
        found.len() == 2
            && found[0].1.contains(&old.to_string())
            && found[1].1.contains(&unfinished.to_string()),
        "{found:?}"
    );
    // A lookback reaching it: nothing skipped.
    let found = skipped_of(&status_json(&c0, "old", "11d"), "older_than_lookback");
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn status_reports_an_unknown_aggregation_and_batches_under_odd_keys() {
    let (d, window, _) = scheduled_deployment("known", 1, 2);
    let c0 = config(&d, 0);
    let found = skipped_of(&status_json(&c0, "unknown", "72h"), "unknown_aggregation");
    assert!(
        found.len() == 1
            && found[0]
                .1
                .contains("no batches of aggregation unknown in file://")
            && found[0].1.contains("known aggregations there: known"),
        "{found:?}"
    );
    let date = window.start.format("%Y/%m/%d/%H/%M").to_string();
    let upper = uuid::Uuid::new_v4().to_string().to_uppercase();
    let odd = [
        format!("known/{date}/{upper}.batch.sig"),
        format!("known/2026/1/2/3/4/{}.batch", uuid::Uuid::new_v4()),
    ];
    for key in &odd {
        divvi::store::put_bytes(d.servers[0].ingestion.as_ref(), key, b"x").unwrap();
    }
    let status = status_json(&c0, "known", "72h");
    let found = skipped_of(&status, "non_canonical_key");
    for key in &odd {
        assert!(
            found
                .iter()
                .any(|(o, r)| o.contains(key.as_str()) && r.contains("not taken for a batch")),
            "{key}: {found:?}"
        );
    }
    let w = &status["windows"].as_array().unwrap();
    let batches: u64 = w.iter().map(|w| w["batches"].as_u64().unwrap()).sum();
    assert_eq!(batches, 1, "odd keys are not taken for batches");
}

/// A run refused for too few clients wrote and revealed nothing; once more reports have
/// arrived for its window, it is decided again with them (a new manifest revision that
/// server 1 follows) and both servers sum it. Through the command line.
#[test]
fn a_run_refused_for_too_few_clients_is_decided_again_when_more_reports_arrive() {
    let d = deployment(PacketScheme::Ecies);
    for path in &d.paths.servers {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("min_clients = 1"), "{text}");
        std::fs::write(path, text.replace("min_clients = 1", "min_clients = 5")).unwrap();
    }
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(4);
    let window = window_at(time);
    let (start, end) = start_end(&window);
    let (c0, c1) = (config(&d, 0), config(&d, 1));
    let aggregate = |c: &str| {
        let args = [
            "aggregate",
            "--config",
            c,
            "--aggregation",
            "floor",
            "--start",
            &start,
            "--end",
            &end,
        ];
        common::divvi(&args)
    };
    write_batch(&d, "floor", time, 0, 3);
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "floor")));
    }
    for c in [&c0, &c1] {
        let out = aggregate(c);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("fewer than the minimum of 5"),
            "{c}: {stderr}"
        );
    }
    assert!(d.servers[0].sum_parts.list("").unwrap().is_empty());

    write_batch(&d, "floor", time, 1, 3);
    for c in [&c0, &c1] {
        ok(&strs(&intake_args(c, "floor")));
    }
    aggregate_both_ok(&[&c0, &c1], aggregate);
    let result = collect::collect(&d.portal, "floor", &window).unwrap();
    assert_eq!(result.histogram, vec![3, 3, 0]);
    assert_eq!(result.valid_clients, Some(6));
    let w = window_status_of(&c1, "floor", &window);
    assert_eq!(
        (w["state"].as_str(), w["late"].as_array().unwrap().len()),
        (Some("done"), 0)
    );
}
