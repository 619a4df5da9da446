//! `divvi client` as a user runs it: a task file and JSON lines in, an upload body out.

mod dap_common;

use dap_common::test_task;
use divvi::dap::DapVersion;
use divvi::dap::{decode_reports, HpkeKeypair, Role, Task, VdafConfig};
use std::path::Path;
use std::process::{Command, Output};

fn divvi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .output()
        .expect("run divvi")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes a histogram:4 task file into `dir`; returns it with the leader's key.
fn task_file(dir: &Path) -> (Task, HpkeKeypair) {
    let (task, keys) = test_task(VdafConfig::from_spec("histogram:4").unwrap(), 3600);
    std::fs::write(dir.join("task.json"), task.to_json()).unwrap();
    (task, keys.leader)
}

/// `divvi client --task T --input I --output O [extra...]`.
fn run_client(task: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "client",
        "--task",
        p(task),
        "--input",
        p(input),
        "--output",
        p(output),
    ];
    args.extend(extra);
    divvi(&args)
}

#[test]
fn client_writes_an_upload_body_of_one_report_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (task, leader) = task_file(dir.path());
    let input = dir.path().join("m.jsonl");
    std::fs::write(&input, "0\n3\n1\n3\n").unwrap();
    let output = dir.path().join("upload.bin");
    let task_path = dir.path().join("task.json");
    let out = run_client(
        &task_path,
        &input,
        &output,
        &["--time", "2026-05-01T10:30:00Z"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(summary["reports"], 4, "{stderr}");

    let reports = decode_reports(DapVersion::Dap18, &std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(reports.len(), 4);
    // 2026-05-01T10:30:00Z = 1777631400 s, truncated to hours.
    assert!(reports
        .iter()
        .all(|r| r.metadata.time == 1_777_631_400 / 3600));
    for r in &reports {
        leader.open_report_share(&task, Role::Leader, r).unwrap();
    }
}

#[test]
fn a_bad_line_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    task_file(dir.path());
    let task = dir.path().join("task.json");
    let output = dir.path().join("upload.bin");
    for (content, says) in [
        ("1\n2\n9\n0\n", "line 3"),
        ("1\n\n2\n", "line 2"),
        ("1\n{oops\n", "line 2: not JSON"),
    ] {
        let input = dir.path().join("m.jsonl");
        std::fs::write(&input, content).unwrap();
        let out = run_client(&task, &input, &output, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(says), "{content:?}: {stderr}");
        assert!(!output.exists(), "{content:?} left an output file");
    }
    // Only the task and the input remain: no temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn a_bad_task_file_is_refused_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    task_file(dir.path());
    let task = dir.path().join("task.json");
    let text = std::fs::read_to_string(&task)
        .unwrap()
        .replace("\"time_precision\": 3600", "\"time_precision\": 0");
    std::fs::write(&task, text).unwrap();
    let input = dir.path().join("m.jsonl");
    std::fs::write(&input, "1\n").unwrap();
    let out = run_client(&task, &input, &dir.path().join("o"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("time_precision"), "{stderr}");
}

#[test]
fn keygen_vdaf_makes_a_task_every_party_loads_and_a_client_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    assert!(divvi(&["keygen", "--out", p(&plain)]).status.success());
    assert!(!plain.join("task.json").exists(), "no task without --vdaf");
    let server0 = std::fs::read_to_string(plain.join("server0.toml")).unwrap();
    assert!(!server0.contains("[dap]"), "{server0}");

    let d = dir.path().join("dap");
    let out = divvi(&[
        "keygen",
        "--out",
        p(&d),
        "--vdaf",
        "sum:255",
        "--time-precision",
        "600",
        "--min-batch-size",
        "10",
        "--leader-endpoint",
        "https://l.example/",
    ]);
    assert!(out.status.success(), "{out:?}");
    let task = Task::load(&d.join("task.json")).unwrap();
    assert_eq!(task.time_precision(), 600);
    assert_eq!(task.params().min_batch_size, 10);
    assert_eq!(
        task.params().leader_aggregator_endpoint,
        "https://l.example/"
    );
    let id = task.task_id().to_string();
    for (config, party, role) in [
        ("server0.toml", "server", Some("leader")),
        ("server1.toml", "server", Some("helper")),
        ("portal.toml", "portal", Some("collector")),
        ("ingestor.toml", "ingestor", None),
    ] {
        let out = divvi(&["check", "--config", p(&d.join(config)), "--as", party]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{config}: {out:?}");
        assert!(text.contains(&format!("dap task     {id} (sum)")), "{text}");
        if let Some(role) = role {
            assert!(text.contains(&format!("dap role     {role}")), "{text}");
        }
    }
    // The ingestor's section holds the task file only.
    let ingestor = std::fs::read_to_string(d.join("ingestor.toml")).unwrap();
    let section = &ingestor[ingestor.find("[dap]").unwrap()..];
    assert_eq!(section.trim(), "[dap]\ntask = \"task.json\"", "{ingestor}");
    // The task is one a client can use.
    let body = dir.path().join("up.bin");
    let input = dir.path().join("m.jsonl");
    std::fs::write(&input, "7\n").unwrap();
    let out = run_client(&d.join("task.json"), &input, &body, &[]);
    assert!(out.status.success(), "{out:?}");
}
