//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod seaweed;

/// The batch time of a test run (the current minute, fixed once): pending work is looked
/// for in a window that ends now.
pub fn test_time() -> &'static str {
    static TIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TIME.get_or_init(|| chrono::Utc::now().format("%Y%m%d%H%M").to_string())
}

/// Runs the `divvi` binary.
pub fn divvi(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .output()
        .expect("run divvi")
}

/// Every file of `dir` (recursively) whose name ends with `suffix` ("" for all), sorted.
#[allow(dead_code)]
pub fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Starts `divvi ARGS`, kills it with SIGKILL after `delay`; true if it was still running.
pub fn kill_after(args: &[&str], delay: std::time::Duration) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap().signal() == Some(9)
}

/// Samples of a Prometheus text body as Python's prometheus_client parser reads them:
/// "name{labels as sorted JSON}" to value.
pub fn prometheus_samples(body: &str) -> std::collections::HashMap<String, f64> {
    use std::io::Write;
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps({s.name + json.dumps(s.labels, sort_keys=True): s.value
    for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples}))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client cannot parse:\n{body}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the `divvi` binary, which must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = divvi(args);
    assert!(
        out.status.success(),
        "divvi {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

use divvi::batch::{truncate_to_minute, Window};
use divvi::config::{Ingestor, Portal, Server};
use divvi::crypto::PacketScheme;
use divvi::keygen::keygen;
use divvi::stages::{aggregate, collect, intake, no_tick};
use std::path::{Path, PathBuf};

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/interop/enpa-v1-sample")
}

/// A fresh deployment made by keygen, loaded.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub ingestor: Ingestor,
    pub servers: [Server; 2],
    pub portal: Portal,
    pub paths: divvi::keygen::Deployment,
}

pub fn deployment(scheme: PacketScheme) -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let limits = divvi::config::Limits {
        min_clients: 1,
        ..Default::default()
    };
    let paths = keygen(
        &dir.path().join("d"),
        scheme,
        "test",
        &Default::default(),
        limits,
    )
    .unwrap();
    loaded(dir, paths)
}

/// Every party's config of a deployment keygen wrote.
fn loaded(dir: tempfile::TempDir, paths: divvi::keygen::Deployment) -> Deployment {
    Deployment {
        ingestor: Ingestor::load(&paths.ingestor).unwrap(),
        servers: [
            Server::load(&paths.servers[0]).unwrap(),
            Server::load(&paths.servers[1]).unwrap(),
        ],
        portal: Portal::load(&paths.portal).unwrap(),
        paths,
        dir,
    }
}

/// A deployment with a DAP-18 task of `vdaf` (time precision one hour, minimum batch size
/// and the servers' `min_clients` 1), and the task.
pub fn dap_deployment(vdaf: divvi::dap::VdafConfig) -> (Deployment, divvi::dap::Task) {
    dap_deployment_for(divvi::dap::task::DapVersion::Dap18, vdaf)
}

/// As [`dap_deployment`], with a task of DAP draft `version`.
pub fn dap_deployment_for(
    version: divvi::dap::task::DapVersion,
    vdaf: divvi::dap::VdafConfig,
) -> (Deployment, divvi::dap::Task) {
    let dir = tempfile::tempdir().unwrap();
    let limits = divvi::config::Limits {
        min_clients: 1,
        ..Default::default()
    };
    let task = divvi::keygen::DapTaskOptions {
        dap_version: version,
        vdaf,
        time_precision: 3600,
        min_batch_size: 1,
        leader_endpoint: "https://leader.invalid/".into(),
        helper_endpoint: "https://helper.invalid/".into(),
        dp: None,
    };
    let paths = divvi::keygen::keygen_with_dap(
        &dir.path().join("d"),
        PacketScheme::Ecies,
        "test",
        &Default::default(),
        limits,
        Some(&task),
    )
    .unwrap();
    let task = divvi::dap::Task::load(&paths.dir.join("task.json")).unwrap();
    (loaded(dir, paths), task)
}

/// An ENPA batch at `time` of `n` reports, each setting bin `bin` of 3.
pub fn write_batch(
    d: &Deployment,
    aggregation: &str,
    time: chrono::DateTime<chrono::Utc>,
    bin: usize,
    n: usize,
) -> divvi::batch::BatchId {
    use divvi::stages::ingest::{IngestionBatch, PacketMaker};
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let mut b = IngestionBatch::new(&d.ingestor, aggregation, time).unwrap();
    let mut m = [0u32; 3];
    m[bin] = 1;
    for _ in 0..n {
        b.append(&maker.make(&m).unwrap()).unwrap();
    }
    b.finish(3, 1.0).unwrap()
}

pub fn now_window() -> (chrono::DateTime<chrono::Utc>, Window) {
    let t = truncate_to_minute(chrono::Utc::now());
    (t, Window::new(t, t).unwrap())
}

/// Runs intake on both servers, aggregate on both, and collect.
pub fn run_servers(
    d: &Deployment,
    aggregation: &str,
    window: &Window,
) -> (
    Vec<intake::IntakeReport>,
    [aggregate::AggregateReport; 2],
    collect::CollectResult,
) {
    let mut intakes = Vec::new();
    for s in &d.servers {
        for id in intake::pending_batches(s, aggregation).unwrap() {
            intakes.push(intake::intake(s, &id, &no_tick).unwrap());
        }
    }
    let a0 = aggregate::aggregate(&d.servers[0], aggregation, window, &no_tick).unwrap();
    let a1 = aggregate::aggregate(&d.servers[1], aggregation, window, &no_tick).unwrap();
    let result = collect::collect(&d.portal, aggregation, window).unwrap();
    (intakes, [a0, a1], result)
}

/// Reads Avro files with Python fastavro (`tests/fastavro_check.py`): one JSON value per
/// record, `{"file", "schema", "record"}`, in file order.
pub fn fastavro_records(paths: &[PathBuf]) -> Vec<serde_json::Value> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fastavro_check.py");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .args(paths)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "fastavro failed (is it installed? scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
