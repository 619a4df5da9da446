//! DAP tasks through the whole pipeline, by the CLI, on deployments from `keygen --vdaf`:
//! `client` seals reports, `ingest` batches them unopened, each server's `intake` opens
//! its input shares and starts Prio3 verification with the shared verify key, writing its
//! signed verifier shares to its own storage and the peer's inbox; `aggregate` finishes
//! each report from both shares and seals the aggregate share to the collector; `collect`
//! opens both and unshards. Verifier shares are checked against an independent
//! computation from the task's keys, and results against the truth.

mod common;

use common::{divvi, files_ending, kill_after};
use divvi::batch::{open_batch, BatchId, BatchKind};
use divvi::config::Server;
use divvi::dap::DapVersion;
use divvi::dap::{dap_context, decode_reports, encode_reports, Prio3Vdaf, Role, Task, VerifyInput};
use divvi::wire::{DapValidationHeader, DapVerifierShare};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run_ok(args: &[&str]) -> serde_json::Value {
    let out = divvi(args);
    assert!(
        out.status.success(),
        "divvi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One JSON document: pretty (ingest) or one line (client).
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

struct Deployment {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    task: Task,
}

impl Deployment {
    fn config(&self, party: &str) -> PathBuf {
        self.dir.join(format!("{party}.toml"))
    }

    fn aggregation(&self) -> String {
        self.task.task_id().to_base64url()
    }
}

/// `keygen --vdaf histogram:4`, and an upload body of `measurements` from `divvi client`.
fn deployment_and_body(measurements: &str) -> (Deployment, Vec<u8>) {
    deployment_of("histogram:4", measurements)
}

/// `keygen --vdaf VDAF` with a minimum batch size (and servers' `min_clients`) of 2, and
/// an upload body of `measurements` (JSON lines) from `divvi client`.
fn deployment_of(vdaf: &str, measurements: &str) -> (Deployment, Vec<u8>) {
    deployment_for("18", vdaf, measurements)
}

/// As [`deployment_of`], for a task of DAP draft `version` ("09" or "18").
fn deployment_for(version: &str, vdaf: &str, measurements: &str) -> (Deployment, Vec<u8>) {
    deployment_with(version, vdaf, measurements, &[])
}

/// As [`deployment_for`], with more `keygen` arguments.
fn deployment_with(
    version: &str,
    vdaf: &str,
    measurements: &str,
    extra: &[&str],
) -> (Deployment, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut args = vec![
        "keygen",
        "--out",
        p(&dir),
        "--vdaf",
        vdaf,
        "--dap-version",
        version,
        "--min-batch-size",
        "2",
    ];
    args.extend(extra);
    run_ok(&args);
    for server in ["server0", "server1"] {
        let path = dir.join(format!("{server}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("min_clients = 100"), "{text}");
        std::fs::write(&path, text.replace("min_clients = 100", "min_clients = 2")).unwrap();
    }
    let task = Task::load(&dir.join("task.json")).unwrap();
    let input = tmp.path().join("m.jsonl");
    std::fs::write(&input, measurements).unwrap();
    let body = tmp.path().join("upload.bin");
    run_ok(&[
        "client",
        "--task",
        p(&dir.join("task.json")),
        "--input",
        p(&input),
        "--output",
        p(&body),
    ]);
    let bytes = std::fs::read(&body).unwrap();
    (
        Deployment {
            _dir: tmp,
            dir,
            task,
        },
        bytes,
    )
}

fn ingest(d: &Deployment, body: &[u8]) -> Vec<String> {
    let path = d
        .dir
        .join(format!("upload-{}.bin", divvi::crypto::sha256(body)[0]));
    std::fs::write(&path, body).unwrap();
    let report = run_ok(&[
        "ingest",
        "--config",
        p(&d.config("ingestor")),
        "--task",
        p(&d.dir.join("task.json")),
        "--input",
        p(&path),
    ]);
    report["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect()
}

fn intake(d: &Deployment, server: u8) -> std::process::Output {
    let aggregation = d.aggregation();
    divvi(&[
        "intake",
        "--config",
        p(&d.config(&format!("server{server}"))),
        "--aggregation",
        &aggregation,
    ])
}

/// A server's verifier shares of a batch, by report id, read from `location` (its own
/// storage, or the peer's inbox) with the writer's signature checked.
fn verifier_shares(
    reader: &Server,
    from: u8,
    location: &dyn divvi::store::ObjectStore,
    id: &BatchId,
) -> HashMap<Vec<u8>, Vec<u8>> {
    let from = if from == 0 {
        divvi::ids::ServerIndex::Zero
    } else {
        divvi::ids::ServerIndex::One
    };
    let trust = if from == reader.index {
        &reader.own_trust
    } else {
        &reader.peer_trust
    };
    let names = id.names(BatchKind::Validation(from));
    let batch = open_batch::<DapValidationHeader>(location, &names, trust, u64::MAX).unwrap();
    assert_eq!(batch.header.batch_uuid, id.uuid);
    assert_eq!(
        batch.header.packet_file_digest_algorithm,
        divvi::crypto::PacketDigest::Blake3
    );
    assert_eq!(
        batch.header.task_id,
        reader.dap.as_ref().unwrap().task.task_id().0
    );
    batch
        .packets::<DapVerifierShare>()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.report_id, r.verifier_share)
        })
        .collect()
}

fn batch_id(text: &str) -> BatchId {
    BatchId::parse(text).unwrap()
}

#[test]
fn both_servers_verify_dap_reports_and_exchange_verifier_shares_that_combine() {
    let (d, body) = deployment_and_body("0\n3\n1\n3\n2\n");
    let batches = ingest(&d, &body);
    assert_eq!(batches.len(), 1);
    let id = batch_id(&batches[0]);
    for server in [0, 1] {
        let out = intake(&d, server);
        assert!(out.status.success(), "intake {server}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(r#""packets":5,"verified":5,"rejected":[]"#),
            "{text}"
        );
    }
    let s0 = Server::load(&d.config("server0")).unwrap();
    let s1 = Server::load(&d.config("server1")).unwrap();
    // Each server's shares, read from its own storage and from the peer's inbox.
    let leader = verifier_shares(&s0, 0, s0.own.as_ref(), &id);
    assert_eq!(leader, verifier_shares(&s1, 0, s1.peer_inbox.as_ref(), &id));
    let helper = verifier_shares(&s1, 1, s1.own.as_ref(), &id);
    assert_eq!(helper, verifier_shares(&s0, 1, s0.peer_inbox.as_ref(), &id));

    // Independently: open each share with the servers' keys, start verification, and
    // check both the shares intake wrote and that they combine.
    let (dap0, dap1) = (s0.dap.as_ref().unwrap(), s1.dap.as_ref().unwrap());
    assert_eq!(dap0.verify_key.as_bytes(), dap1.verify_key.as_bytes());
    let vdaf = Prio3Vdaf::new(d.task.vdaf()).unwrap();
    let ctx = dap_context(d.task.task_id());
    let reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    assert_eq!(leader.len(), reports.len());
    for report in &reports {
        let rid = report.metadata.report_id.0;
        let mut states = Vec::new();
        for (dap, role, written) in [(dap0, Role::Leader, &leader), (dap1, Role::Helper, &helper)] {
            let share = dap.hpke.open_report_share(&d.task, role, report).unwrap();
            let input = VerifyInput {
                agg_id: role.agg_id(),
                nonce: &rid,
                public_share: &report.public_share,
                input_share: &share,
            };
            let (state, verifier) = vdaf
                .verify_init(dap.verify_key.as_bytes().try_into().unwrap(), &ctx, &input)
                .unwrap();
            assert_eq!(written.get(rid.as_slice()), Some(&verifier));
            states.push(state);
        }
        let message = vdaf
            .verifier_shares_to_message(
                &ctx,
                &states[0],
                [&leader[rid.as_slice()], &helper[rid.as_slice()]],
            )
            .expect("a client's report verifies");
        for state in &states {
            vdaf.verify_next(&ctx, state, &message).unwrap();
        }
    }

    // A second intake finds nothing pending (exit 3, "nothing to do").
    let out = intake(&d, 0);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#""outcome":"nothing to do""#),
        "{out:?}"
    );
}

/// A validation's BLAKE3 digest is checked: `inspect` shows it matching, and one
/// changed byte of the peer's verifier shares makes aggregate refuse the batch, naming
/// the validation and the digest, with no sum part written.
#[test]
fn a_changed_byte_in_the_peers_verifier_shares_fails_their_digest() {
    let (d, body) = deployment_and_body("0\n3\n1\n3\n2\n");
    let id = batch_id(&ingest(&d, &body)[0]);
    for server in [0, 1] {
        assert!(intake(&d, server).status.success());
    }
    let s0 = Server::load(&d.config("server0")).unwrap();
    let names = id.names(BatchKind::Validation(divvi::ids::ServerIndex::One));
    let url = s0.peer_inbox.describe(&names.signature);
    let signature = PathBuf::from(url.strip_prefix("file://").unwrap());
    let shown = divvi::inspect::inspect(&signature, None, 0).unwrap();
    assert_eq!(shown["digest"]["verdict"], "matches", "{shown}");
    assert_eq!(shown["digest"]["algorithm"], "BLAKE3", "{shown}");

    // One byte inside one of the peer's verifier shares, found in the file.
    let shares = verifier_shares(&s0, 1, s0.peer_inbox.as_ref(), &id);
    let share = shares.values().next().unwrap();
    let mut bytes = std::fs::read(&signature).unwrap();
    let at = bytes
        .windows(share.len())
        .position(|w| w == share.as_slice())
        .unwrap();
    bytes[at + share.len() / 2] ^= 1;
    std::fs::write(&signature, bytes).unwrap();
    let shown = divvi::inspect::inspect(&signature, None, 0).unwrap();
    assert_eq!(shown["digest"]["verdict"], "MISMATCH", "{shown}");
    let out = aggregate_with(&d, 0, &[]);
    assert!(!out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("digest") && text.contains(&format!("{}.validity_1.sig", id.uuid)),
        "{text}"
    );
    assert!(files_under(&d.dir)
        .iter()
        .all(|f| !f.to_string_lossy().ends_with(".sum_0")));
}

#[test]
fn a_report_its_server_cannot_open_is_listed_and_the_others_verify() {
    let (d, body) = deployment_and_body("1\n2\n3\n");
    // An ingestor cannot tell a corrupted ciphertext from a good one: it passes framing.
    let mut reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    let payload = &mut reports[1].leader_encrypted_input_share.payload;
    payload[0] ^= 1;
    let bad = uuid::Uuid::from_bytes(reports[1].metadata.report_id.0);
    ingest(&d, &encode_reports(DapVersion::Dap18, &reports).unwrap());

    let out = intake(&d, 0);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#""packets":3,"verified":2"#) && text.contains(&bad.to_string()),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 x "), "one line per reason: {stderr}");
    // The helper's share of that report is intact.
    let out = intake(&d, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""packets":3,"verified":3"#), "{text}");
}

#[test]
fn a_dap_batch_is_refused_by_a_server_without_the_task_naming_the_section() {
    let (d, body) = deployment_and_body("1\n");
    ingest(&d, &body);
    let config = d.config("server0");
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("[dap]").unwrap();
    // The [dap] section is the config's last; without it the server has no task.
    std::fs::write(&config, &text[..start]).unwrap();
    let out = intake(&d, 0);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DAP ingestion batch") && stderr.contains("[dap]"),
        "{stderr}"
    );
    // Nothing was written for the batch.
    let s0 = Server::load(&config).unwrap();
    assert!(s0
        .own
        .list("")
        .unwrap()
        .iter()
        .all(|k| !k.contains(".validity_0")));
}

/// Today's window (UTC): reports made now fall in it, whatever the hour.
fn today() -> (String, String) {
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    (format!("{day}0000"), format!("{day}2359"))
}

/// `aggregate` of today's window on `server`, with `extra` arguments.
fn aggregate_with(d: &Deployment, server: u8, extra: &[&str]) -> std::process::Output {
    let (start, end) = today();
    let aggregation = d.aggregation();
    let config = d.config(&format!("server{server}"));
    let mut args = vec![
        "aggregate",
        "--config",
        p(&config),
        "--aggregation",
        &aggregation,
        "--start",
        &start,
        "--end",
        &end,
    ];
    args.extend(extra);
    divvi(&args)
}

fn aggregate(d: &Deployment, server: u8) -> serde_json::Value {
    let out = aggregate_with(d, server, &[]);
    assert!(out.status.success(), "aggregate {server}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// `collect` of today's window, with `extra` arguments.
fn collect_with(d: &Deployment, extra: &[&str]) -> std::process::Output {
    let (start, end) = today();
    let aggregation = d.aggregation();
    let config = d.config("portal");
    let mut args = vec![
        "collect",
        "--config",
        p(&config),
        "--aggregation",
        &aggregation,
        "--start",
        &start,
        "--end",
        &end,
    ];
    args.extend(extra);
    divvi(&args)
}

/// `collect` must succeed; returns the result file it wrote (JSON).
fn collect(d: &Deployment) -> serde_json::Value {
    let (start, end) = today();
    let aggregation = d.aggregation();
    let out = collect_with(d, &[]);
    assert!(out.status.success(), "collect: {out:?}");
    let file = d
        .dir
        .join("buckets/portal-results")
        .join(&aggregation)
        .join(format!("{start}-{end}.result.json"));
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// The whole pipeline over `measurements`; returns the collected result file.
fn run_pipeline(d: &Deployment, body: &[u8]) -> serde_json::Value {
    ingest(d, body);
    for server in [0, 1] {
        let out = intake(d, server);
        assert!(out.status.success(), "intake {server}: {out:?}");
    }
    for server in [0, 1] {
        aggregate(d, server);
    }
    collect(d)
}

#[test]
fn every_prio3_vdaf_goes_through_the_pipeline_to_the_true_result() {
    let cases = [
        ("count", "true\nfalse\ntrue\ntrue\n", serde_json::json!(3)),
        ("sum:255", "7\n200\n3\n0\n", serde_json::json!(210)),
        (
            "sumvec:3:5",
            "[1,2,3]\n[5,0,1]\n[0,0,0]\n",
            serde_json::json!([6, 2, 4]),
        ),
        (
            "histogram:4",
            "0\n3\n1\n3\n2\n3\n",
            serde_json::json!([1, 1, 1, 3]),
        ),
        (
            "multihot:4:2",
            "[true,false,true,false]\n[false,false,true,false]\n",
            serde_json::json!([1, 0, 2, 0]),
        ),
    ];
    for (vdaf, measurements, truth) in cases {
        let (d, body) = deployment_of(vdaf, measurements);
        let reports = decode_reports(DapVersion::Dap18, &body).unwrap().len();
        let result = run_pipeline(&d, &body);
        assert_eq!(result["result"], truth, "{vdaf}: {result}");
        assert_eq!(result["report_count"], reports, "{vdaf}: {result}");
        assert_eq!(result["invalid_reports"], 0, "{vdaf}: {result}");
        assert_eq!(result["task_id"], d.aggregation(), "{vdaf}: {result}");
        // The run is in the task's series, with the VDAF's labelled values.
        let series = d
            .dir
            .join("buckets/portal-results")
            .join(d.aggregation())
            .join("series.jsonl");
        let row: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(series).unwrap()).unwrap();
        let values = match truth.as_array() {
            Some(_) => truth.clone(),
            None => serde_json::json!([truth]),
        };
        assert_eq!(row["values"], values, "{vdaf}: {row}");
        assert_eq!(row["task"], d.aggregation(), "{vdaf}: {row}");
        let labels = row["labels"].as_array().unwrap();
        assert_eq!(
            labels.len(),
            values.as_array().unwrap().len(),
            "{vdaf}: {row}"
        );
        if !truth.is_array() {
            assert_eq!(labels[0], vdaf.split(':').next().unwrap(), "{vdaf}: {row}");
        }
    }
}

/// DAP-09 tasks (the deployed clients' draft, VDAF-08) take the same pipeline: divvi's
/// client seals DAP-09 reports, and a cheating client's and a tampered report are listed
/// invalid by both servers and left out.
#[test]
fn dap09_tasks_go_through_the_pipeline_to_the_true_result() {
    let cases = [
        ("count", "true\nfalse\ntrue\ntrue\n", serde_json::json!(3)),
        ("sum:255", "7\n200\n3\n0\n", serde_json::json!(210)),
        (
            "sumvec:3:7",
            "[1,2,3]\n[7,0,1]\n[0,0,0]\n",
            serde_json::json!([8, 2, 4]),
        ),
        (
            "histogram:4",
            "0\n3\n1\n3\n2\n3\n",
            serde_json::json!([1, 1, 1, 3]),
        ),
    ];
    for (vdaf, measurements, truth) in cases {
        let (d, body) = deployment_for("09", vdaf, measurements);
        assert_eq!(d.task.version(), DapVersion::Dap09);
        let mut reports = decode_reports(DapVersion::Dap09, &body).unwrap();
        // DAP-09 stamps reports in seconds, rounded down to the precision.
        assert_eq!(reports[0].metadata.time % d.task.time_precision(), 0);
        assert!(reports[0].metadata.time > 1_700_000_000);
        let valid = reports.len();
        if vdaf == "histogram:4" {
            reports.push(report_with_a_failing_proof(&d.task, 2));
            let mut tampered = decode_reports(DapVersion::Dap09, &body).unwrap().remove(0);
            tampered.metadata.report_id.0[0] ^= 1;
            reports.push(tampered);
        }
        let body = encode_reports(DapVersion::Dap09, &reports).unwrap();
        let result = run_pipeline(&d, &body);
        assert_eq!(result["result"], truth, "{vdaf}: {result}");
        assert_eq!(result["report_count"], valid, "{vdaf}: {result}");
        let invalid = reports.len() - valid;
        assert_eq!(result["invalid_reports"], invalid, "{vdaf}: {result}");
    }
}

#[test]
fn a_report_one_server_cannot_open_is_invalid_on_both_and_left_out_of_the_result() {
    let (d, body) = deployment_of("histogram:4", "0\n1\n1\n3\n");
    let mut reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    // Report 2 measured bucket 1; its helper share is corrupted on the way.
    reports[2].helper_encrypted_input_share.payload[0] ^= 1;
    let bad = uuid::Uuid::from_bytes(reports[2].metadata.report_id.0).to_string();
    let body = encode_reports(DapVersion::Dap18, &reports).unwrap();
    ingest(&d, &body);
    for server in [0, 1] {
        assert!(intake(&d, server).status.success());
    }
    for server in [0, 1] {
        let run = aggregate(&d, server);
        let report = &run["result"]["report"];
        assert_eq!(report["valid"], 3, "server {server}: {run}");
        let invalid = report["invalid"].as_array().unwrap();
        assert_eq!(invalid.len(), 1, "server {server}: {run}");
        assert_eq!(invalid[0]["uuid"], bad.as_str(), "server {server}: {run}");
    }
    let result = collect(&d);
    assert_eq!(
        result["result"],
        serde_json::json!([1, 1, 0, 1]),
        "{result}"
    );
    assert_eq!(result["invalid_reports"], 1, "{result}");
}

#[test]
fn a_report_ingested_again_in_another_batch_counts_once() {
    let (d, body) = deployment_of("histogram:4", "0\n2\n2\n3\n");
    let reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    // An ingestor sends reports 1 and 2 again, in a batch of their own.
    let again = encode_reports(DapVersion::Dap18, &reports[1..3]).unwrap();
    assert_eq!(ingest(&d, &body).len(), 1);
    assert_eq!(ingest(&d, &again).len(), 1);
    for server in [0, 1] {
        assert!(intake(&d, server).status.success());
    }
    for server in [0, 1] {
        let run = aggregate(&d, server);
        let report = &run["result"]["report"];
        assert_eq!(report["packets"], 6, "server {server}: {run}");
        assert_eq!(report["valid"], 4, "server {server}: {run}");
    }
    let result = collect(&d);
    assert_eq!(
        result["result"],
        serde_json::json!([1, 0, 2, 1]),
        "{result}"
    );
    assert_eq!(result["invalid_reports"], 2, "{result}");
}

#[test]
fn a_portal_without_the_task_refuses_dap_sum_parts_naming_the_section() {
    let (d, body) = deployment_of("count", "true\ntrue\n");
    run_pipeline(&d, &body);
    let config = d.config("portal");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, &text[..text.find("[dap]").unwrap()]).unwrap();
    let (start, end) = today();
    let aggregation = d.aggregation();
    let out = divvi(&[
        "collect",
        "--config",
        p(&config),
        "--aggregation",
        &aggregation,
        "--start",
        &start,
        "--end",
        &end,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[dap]"), "{stderr}");
}

/// A task id in base64url starts with "-" for one task in 64: every command must take it
/// as the aggregation's name, not as an option.
#[test]
fn an_aggregation_name_starting_with_a_hyphen_is_a_name() {
    let (d, _) = deployment_of("count", "true\n");
    let (start, end) = today();
    let server0 = d.config("server0");
    let portal = d.config("portal");
    for args in [
        vec!["intake", "--config", p(&server0)],
        vec![
            "aggregate",
            "--config",
            p(&server0),
            "--start",
            &start,
            "--end",
            &end,
        ],
        vec!["status", "--config", p(&server0)],
        vec![
            "collect",
            "--config",
            p(&portal),
            "--start",
            &start,
            "--end",
            &end,
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--aggregation", "-Ufh3"]);
        let out = divvi(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: {stderr}"
        );
        assert_ne!(out.status.code(), Some(2), "{args:?}: {stderr}");
    }
}

/// A report made by a client that cheats: the leader's measurement share is changed after
/// sharding, then sealed properly, so it opens and decodes but its proof fails.
fn report_with_a_failing_proof(task: &Task, bucket: usize) -> divvi::dap::Report {
    use divvi::dap::hpke::seal_input_share;
    use divvi::dap::messages::InputShareAad;
    use divvi::dap::{Measurement, ReportId, ReportMetadata};
    let vdaf = divvi::dap::TaskVdaf::new(task).unwrap();
    let report_id = ReportId::random().unwrap();
    let metadata = ReportMetadata {
        report_id,
        time: task.report_time(chrono::Utc::now().timestamp() as u64),
    };
    let mut shares = vdaf
        .shard(&Measurement::Histogram(bucket), &report_id.0)
        .unwrap();
    // The lowest byte of the first field element of the measurement share.
    shares.input_shares[0][0] ^= 1;
    let task_binding = task.aad_task_binding();
    let aad = InputShareAad {
        version: task.version(),
        task_id: task.task_id(),
        task_binding: &task_binding,
        metadata: &metadata,
        public_share: &shares.public_share,
    };
    let params = task.params();
    let seal = |config, role, share: &[u8]| seal_input_share(config, role, share, &aad).unwrap();
    divvi::dap::Report {
        metadata,
        public_share: shares.public_share.clone(),
        leader_encrypted_input_share: seal(
            &params.leader_hpke_config,
            Role::Leader,
            &shares.input_shares[0],
        ),
        helper_encrypted_input_share: seal(
            &params.helper_hpke_config,
            Role::Helper,
            &shares.input_shares[1],
        ),
    }
}

fn client_body(task_file: &Path, measurements: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.jsonl");
    std::fs::write(&input, measurements).unwrap();
    let body = dir.path().join("up.bin");
    let mut args = vec![
        "client",
        "--task",
        p(task_file),
        "--input",
        p(&input),
        "--output",
        p(&body),
    ];
    args.extend(extra);
    run_ok(&args);
    std::fs::read(body).unwrap()
}

#[test]
fn every_kind_of_invalid_report_is_listed_by_both_servers_and_left_out() {
    invalid_reports_are_listed_and_left_out(true);
}

/// Without a stash (removed after intake), aggregate opens and verifies every report
/// again instead of taking refused ones out of intake's presum: the same verdicts and
/// result.
#[test]
fn invalid_reports_are_left_out_as_well_when_aggregate_verifies_again() {
    invalid_reports_are_listed_and_left_out(false);
}

fn invalid_reports_are_listed_and_left_out(with_stash: bool) {
    let (d, body) = deployment_of("histogram:4", "0\n1\n2\n3\n");
    let good = decode_reports(DapVersion::Dap18, &body).unwrap();
    let mut bad = Vec::new();
    let mut reasons: Vec<(String, &str)> = Vec::new();
    let mut add = |report: divvi::dap::Report, why: &'static str| {
        let id = uuid::Uuid::from_bytes(report.metadata.report_id.0).to_string();
        reasons.push((id, why));
        bad.push(report);
    };
    // A cheating client's proof.
    add(report_with_a_failing_proof(&d.task, 2), "proof");
    // Tampered on the way: the public share, the report id (both bound into the AAD).
    let mut r = decode_reports(
        DapVersion::Dap18,
        &client_body(&d.dir.join("task.json"), "1\n", &[]),
    )
    .unwrap();
    let mut tampered = r.remove(0);
    tampered.public_share[0] ^= 1;
    add(tampered, "public share");
    let mut r = decode_reports(
        DapVersion::Dap18,
        &client_body(&d.dir.join("task.json"), "1\n", &[]),
    )
    .unwrap();
    let mut tampered = r.remove(0);
    tampered.metadata.report_id.0[0] ^= 1;
    add(tampered, "report id");
    // A report of another task, sealed to configs with the same ids.
    let (other, _) = deployment_of("histogram:4", "3\n");
    let mut r = decode_reports(
        DapVersion::Dap18,
        &client_body(&other.dir.join("task.json"), "3\n", &[]),
    )
    .unwrap();
    add(r.remove(0), "another task");
    let mut all = good.clone();
    all.extend(bad);
    ingest(&d, &encode_reports(DapVersion::Dap18, &all).unwrap());
    // Reports of yesterday, put by the ingestor into a batch of today.
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .timestamp()
        .to_string();
    let old = client_body(&d.dir.join("task.json"), "0\n", &["--time", &yesterday]);
    let old_id = uuid::Uuid::from_bytes(
        decode_reports(DapVersion::Dap18, &old).unwrap()[0]
            .metadata
            .report_id
            .0,
    );
    reasons.push((old_id.to_string(), "outside the window"));
    let path = d.dir.join("old.bin");
    std::fs::write(&path, &old).unwrap();
    let now = chrono::Utc::now().format("%Y%m%d%H%M").to_string();
    run_ok(&[
        "ingest",
        "--config",
        p(&d.config("ingestor")),
        "--task",
        p(&d.dir.join("task.json")),
        "--input",
        p(&path),
        "--time",
        &now,
    ]);

    for server in [0, 1] {
        assert!(intake(&d, server).status.success());
        let own = d.dir.join(format!("buckets/server{server}-own"));
        let stashes = files_ending(&own, &format!(".shares_{server}"));
        assert_eq!(stashes.len(), 2, "server {server}: one stash per batch");
        if !with_stash {
            stashes
                .iter()
                .for_each(|f| std::fs::remove_file(f).unwrap());
        }
    }
    for server in [0, 1] {
        let run = aggregate(&d, server);
        let report = &run["result"]["report"];
        assert_eq!(report["valid"], 4, "server {server}: {run}");
        let invalid: HashMap<String, String> = report["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["uuid"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(invalid.len(), reasons.len(), "server {server}: {run}");
        for (id, why) in &reasons {
            let reason = invalid
                .get(id)
                .unwrap_or_else(|| panic!("{why} not listed: {run}"));
            match *why {
                "proof" => assert!(reason.contains("verification failed"), "{why}: {reason}"),
                "outside the window" => assert!(reason.contains(why), "{why}: {reason}"),
                // Not opened by one server, so not validated by it: both list it.
                _ => assert!(reason.contains("validation"), "{why}: {reason}"),
            }
        }
    }
    let result = collect(&d);
    assert_eq!(
        result["result"],
        serde_json::json!([1, 1, 1, 1]),
        "{result}"
    );
    assert_eq!(result["invalid_reports"], reasons.len(), "{result}");
}

#[test]
fn fastavro_reads_every_dap_file_the_servers_write() {
    let (d, body) = deployment_of("histogram:4", "0\n1\n2\n");
    let mut reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    reports[0].leader_encrypted_input_share.payload[0] ^= 1;
    run_pipeline(&d, &encode_reports(DapVersion::Dap18, &reports).unwrap());
    let buckets = d.dir.join("buckets");
    let extracted = tempfile::tempdir().unwrap();
    // Validations are single objects: the signature carries header and packets inline.
    let mut files = Vec::new();
    for (i, sig) in files_ending(&buckets, ".sig")
        .iter()
        .filter(|f| f.to_string_lossy().contains(".validity_"))
        .enumerate()
    {
        let signature: divvi::wire::BatchSignature =
            divvi::wire::decode_single(&std::fs::read(sig).unwrap()).unwrap();
        for (kind, bytes) in [
            ("header", signature.batch_header),
            ("packets", signature.packets),
        ] {
            let path = extracted.path().join(format!("{i}.{kind}"));
            std::fs::write(&path, bytes.expect("inline")).unwrap();
            files.push(path);
        }
    }
    assert_eq!(files.len(), 8, "two validations, each in two places");
    files.extend(files_ending(&buckets, ".sum_0"));
    files.extend(files_ending(&buckets, ".sum_1"));
    files.extend(files_ending(&buckets, ".invalid_uuid_0.avro"));
    let records = common::fastavro_records(&files);
    let named = |r: &serde_json::Value, name: &str| {
        r["schema"] == format!("org.abetterinternet.prio.v1.{name}").as_str()
    };
    let count = |name: &str| records.iter().filter(|r| named(r, name)).count();
    assert_eq!(count("DapValidationHeader"), 4, "{records:?}");
    // Server 0 could not open report 0: 2 + 3 verifier shares, each in two places.
    assert_eq!(count("DapVerifierShare"), 10, "{records:?}");
    assert_eq!(count("DapSumPart"), 2, "{records:?}");
    assert_eq!(count("PrioInvalidPacket"), 1, "{records:?}");
    // The same records divvi reads.
    for r in records.iter().filter(|r| named(r, "DapSumPart")) {
        let file = PathBuf::from(r["file"].as_str().unwrap());
        let ours: divvi::wire::DapSumPart =
            divvi::wire::decode_single(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(r["record"]["report_count"], ours.report_count);
        assert_eq!(r["record"]["checksum"], hex_of(&ours.checksum));
        assert_eq!(
            r["record"]["encrypted_aggregate_share_payload"],
            hex_of(&ours.encrypted_aggregate_share_payload)
        );
        assert_eq!(r["record"]["task_id"], hex_of(&d.task.task_id().0));
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn large_histograms_and_vectors_reach_the_true_result() {
    // histogram:2048: a few buckets far apart, some twice.
    let buckets = [0usize, 2047, 1024, 5, 2047, 1024, 1024, 77];
    let lines: String = buckets.iter().map(|b| format!("{b}\n")).collect();
    let (d, body) = deployment_of("histogram:2048", &lines);
    let mut truth = vec![0u64; 2048];
    buckets.iter().for_each(|&b| truth[b] += 1);
    let result = run_pipeline(&d, &body);
    assert_eq!(result["result"], serde_json::json!(truth));
    assert_eq!(result["labels"].as_array().unwrap().len(), 2048);

    // sumvec:1000 with values up to 3: each report a different pattern.
    let vectors: Vec<Vec<u64>> = (0..6u64)
        .map(|r| (0..1000u64).map(|i| (i * 7 + r * 3) % 4).collect())
        .collect();
    let lines: String = vectors
        .iter()
        .map(|v| format!("{}\n", serde_json::json!(v)))
        .collect();
    let (d, body) = deployment_of("sumvec:1000:3", &lines);
    let truth: Vec<u64> = (0..1000)
        .map(|i| vectors.iter().map(|v| v[i]).sum())
        .collect();
    let result = run_pipeline(&d, &body);
    assert_eq!(result["result"], serde_json::json!(truth));
}

#[test]
fn dap_jobs_killed_at_any_point_finish_on_rerun_with_the_true_result() {
    let mut truth = vec![0u64; 16];
    let lines: String = (0..3000usize)
        .map(|i| {
            let bucket = (i * i + 3 * i) % 16;
            truth[bucket] += 1;
            format!("{bucket}\n")
        })
        .collect();
    let (d, body) = deployment_of("histogram:16", &lines);
    let upload = d.dir.join("upload.bin");
    std::fs::write(&upload, &body).unwrap();
    let (start, end) = today();
    let aggregation = d.aggregation();
    let (ingestor, task) = (d.config("ingestor"), d.dir.join("task.json"));
    let ingest: Vec<&str> = vec![
        "ingest",
        "--config",
        p(&ingestor),
        "--task",
        p(&task),
        "--input",
        p(&upload),
        "--batch-size",
        "500",
    ];
    let configs = [d.config("server0"), d.config("server1")];
    let intake = |c: &PathBuf| -> Vec<String> {
        ["intake", "--config", p(c), "--aggregation", &aggregation]
            .map(String::from)
            .to_vec()
    };
    let aggregate = |c: &PathBuf| -> Vec<String> {
        let args = ["aggregate", "--config", p(c), "--aggregation", &aggregation];
        let mut args = args.map(String::from).to_vec();
        args.extend(["--start".into(), start.clone(), "--end".into(), end.clone()]);
        args
    };
    let delays = [5, 30, 80, 150, 250, 400].map(std::time::Duration::from_millis);
    let mut killed = 0;
    for delay in delays {
        killed += usize::from(kill_after(&ingest, delay));
    }
    run_ok(&ingest);
    for jobs in [
        configs.each_ref().map(intake),
        configs.each_ref().map(aggregate),
    ] {
        for delay in delays {
            for job in &jobs {
                let job: Vec<&str> = job.iter().map(String::as_str).collect();
                killed += usize::from(kill_after(&job, delay));
            }
        }
        // Whatever state the kills left, a plain rerun finishes the work.
        for job in &jobs {
            let job: Vec<&str> = job.iter().map(String::as_str).collect();
            let out = divvi(&job);
            // 3: nothing to do, when the last killed job had finished it all.
            assert!(
                out.status.success() || out.status.code() == Some(3),
                "{job:?}: {out:?}"
            );
        }
    }
    assert!(
        killed >= 8,
        "only {killed} jobs were still running when killed"
    );
    let result = collect(&d);
    assert_eq!(result["result"], serde_json::json!(truth), "{result}");
    assert_eq!(result["report_count"], 3000, "{result}");
    assert_eq!(result["batches"].as_array().unwrap().len(), 6, "{result}");
}

/// Every file under `dir`, by path.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            match path.is_dir() {
                true => found.extend(files_under(&path)),
                false => found.push(path),
            }
        }
    }
    found
}

/// A histogram task with DP (scale 2 per server): the result is near the truth but noisy,
/// says so, and a rerun of both servers' aggregate (after a kill that lost their run
/// records and sum parts) draws the very same noise: the collected result is
/// byte-identical. A release beyond the budget (a late run) is refused by the server and
/// nothing of it is written.
#[test]
fn dp_noise_is_added_once_per_release_and_the_budget_holds() {
    let mut truth = [0i64; 16];
    let mut measurements = String::new();
    for i in 0..300usize {
        let bucket = (i * i) % 16;
        truth[bucket] += 1;
        measurements.push_str(&format!("{bucket}\n"));
    }
    let dp = ["--dp-epsilon", "1", "--dp-budget", "1"];
    let (d, body) = deployment_with("18", "histogram:16", &measurements, &dp);
    let result = run_pipeline(&d, &body);
    let values: Vec<i64> = result["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let off: Vec<i64> = values.iter().zip(truth).map(|(v, t)| v - t).collect();
    assert!(off.iter().all(|o| o.abs() < 60), "{off:?}");
    assert!(off.iter().any(|&o| o != 0), "no noise at all: {off:?}");
    let noise = result["noise"].as_str().unwrap();
    assert!(
        noise.contains("scale 2 ") && noise.contains("budget 1"),
        "{noise}"
    );
    let (start, end) = today();
    let result_file = d
        .dir
        .join("buckets/portal-results")
        .join(d.aggregation())
        .join(format!("{start}-{end}.result.json"));
    let first = std::fs::read_to_string(&result_file).unwrap();

    // A kill lost both servers' run records and sum parts: the rerun sums again.
    for server in [0, 1] {
        let own = d.dir.join(format!("buckets/server{server}-own"));
        for file in files_under(&own) {
            if file.to_string_lossy().ends_with(".done.json") {
                std::fs::remove_file(file).unwrap();
            }
        }
        std::fs::remove_dir_all(d.dir.join(format!("buckets/server{server}-sum-parts"))).unwrap();
        aggregate(&d, server);
    }
    collect(&d);
    assert_eq!(
        std::fs::read_to_string(&result_file).unwrap(),
        first,
        "another draw"
    );
    // --clamp shows values below zero as 0, and says so; the series row carries the noise.
    let out = collect_with(&d, &["--output", "json", "--clamp"]);
    assert!(out.status.success(), "collect --clamp: {out:?}");
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clamped: Vec<i64> = values.iter().map(|&v| v.max(0)).collect();
    assert_eq!(out["values"], serde_json::json!(clamped), "{out}");
    assert!(out["noise"].as_str().unwrap().contains("scale 2 "), "{out}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result_file).unwrap()).unwrap();
    assert_eq!(written["clamped"], true, "{written}");
    // Each server's ledger holds the one release.
    for server in [0, 1] {
        let ledger = d.dir.join(format!("buckets/server{server}-own/dp-ledger"));
        assert_eq!(files_under(&ledger).len(), 1, "server {server}");
    }

    // More reports of the window arrive; their late run would spend beyond the budget.
    let input = d.dir.join("late.jsonl");
    std::fs::write(&input, "1\n2\n3\n").unwrap();
    let late = d.dir.join("late.bin");
    run_ok(&[
        "client",
        "--task",
        p(&d.dir.join("task.json")),
        "--input",
        p(&input),
        "--output",
        p(&late),
    ]);
    ingest(&d, &std::fs::read(&late).unwrap());
    for server in [0, 1] {
        assert!(intake(&d, server).status.success());
    }
    let out = aggregate_with(&d, 0, &["--late"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("budget") && stderr.contains("1 of 1 spent"),
        "{stderr}"
    );
    let parts = files_under(&d.dir.join("buckets/server0-sum-parts"));
    assert!(
        parts
            .iter()
            .all(|f| !f.to_string_lossy().contains("-late1")),
        "a late part was written: {parts:?}"
    );
}
