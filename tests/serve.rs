//! `divvi serve` as a real process on loopback: reports sealed by divvi's DAP-18 client are
//! uploaded over HTTP, one upload is retried, the server is killed with SIGKILL after its
//! acknowledgements and started again, then stopped with SIGTERM; the servers' intake,
//! aggregate and the portal's collect must then find every acknowledged report exactly
//! once.

mod common;

use common::{divvi, ok};
use divvi::dap::{decode_reports, encode_reports, Task};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Starts `divvi serve`; returns the process and its port.
fn start(dir: &Path) -> (Child, u16) {
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
            "--batch-size",
            "7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening: serde_json::Value = serde_json::from_str(&line).expect("the address line");
    let addr: std::net::SocketAddr = listening["listening"].as_str().unwrap().parse().unwrap();
    (child, addr.port())
}

/// One HTTP/1.1 request on loopback; the status and body.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/dap-upload-req\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

fn stop(child: &mut Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn acknowledged_uploads_reach_the_result_exactly_once_across_a_kill_and_a_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    ok(&[
        "keygen",
        "--out",
        p(&dir),
        "--vdaf",
        "histogram:4",
        "--min-batch-size",
        "2",
    ]);
    for server in ["server0", "server1"] {
        let path = dir.join(format!("{server}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("min_clients = 100", "min_clients = 2")).unwrap();
    }
    let task = Task::load(&dir.join("task.json")).unwrap();
    let measurements: String = (0..20).map(|i| format!("{}\n", i % 4)).collect();
    std::fs::write(tmp.path().join("m.jsonl"), &measurements).unwrap();
    ok(&[
        "client",
        "--task",
        p(&dir.join("task.json")),
        "--input",
        p(&tmp.path().join("m.jsonl")),
        "--output",
        p(&tmp.path().join("upload.bin")),
    ]);
    let reports = decode_reports(&std::fs::read(tmp.path().join("upload.bin")).unwrap()).unwrap();
    let path = format!("/leader/tasks/{}/reports", task.task_id().to_base64url());

    let (mut server, port) = start(&dir);
    let (status, list) = request(port, "GET", "/helper/hpke_config", b"");
    assert_eq!(status, 200);
    assert_eq!(
        list,
        divvi::dap::task::encode_config_list(&[task.params().helper_hpke_config.clone()]).unwrap()
    );
    for chunk in reports[..12].chunks(4) {
        let (status, body) = request(port, "POST", &path, &encode_reports(chunk).unwrap());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Killed after its acknowledgements: nothing acknowledged may be lost.
    stop(&mut server, "-KILL");
    server.wait().unwrap();

    let (mut server, port) = start(&dir);
    // A client that lost an answer sends the same upload again.
    let retried = encode_reports(&reports[8..16]).unwrap();
    for body in [&retried, &encode_reports(&reports[16..]).unwrap()] {
        let (status, answer) = request(port, "POST", &path, body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
    stop(&mut server, "-TERM");
    assert!(server.wait().unwrap().success(), "SIGTERM ends it cleanly");
    let left: Vec<_> = std::fs::read_dir(dir.join("journal")).unwrap().collect();
    assert!(
        left.is_empty(),
        "every segment flushed and removed: {left:?}"
    );

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
    let result: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(
        result["result"],
        serde_json::json!([5, 5, 5, 5]),
        "{result}"
    );
}
