//! `divvi ingest --task`: an upload body from `divvi client` into each server's signed DAP
//! ingestion batches, holding that server's sealed share only; refusals that write
//! nothing; reruns that write nothing new; and fastavro reading the new files.

mod common;
mod dap_common;

use common::{deployment, divvi, ok};
use dap_common::{test_task, Keys};
use divvi::batch::{open_batch, BatchId, BatchKind};
use divvi::config::Server;
use divvi::crypto::PacketScheme;
use divvi::dap::messages::{HpkeCiphertext, InputShareAad};
use divvi::dap::DapVersion;
use divvi::dap::{decode_reports, encode_reports, Role, Task, VdafConfig};
use divvi::dap::{ReportId, ReportMetadata};
use divvi::wire::{DapIngestionHeader, DapReportShare};
use std::path::{Path, PathBuf};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Setup {
    d: common::Deployment,
    task: Task,
    keys: Keys,
    task_path: PathBuf,
    body_path: PathBuf,
}

/// A deployment, a histogram:4 task and an upload body of 5 reports from `divvi client`.
fn setup() -> Setup {
    let d = deployment(PacketScheme::Hpke);
    let (task, keys) = test_task(VdafConfig::from_spec("histogram:4").unwrap(), 300);
    let task_path = d.dir.path().join("task.json");
    std::fs::write(&task_path, task.to_json()).unwrap();
    let input = d.dir.path().join("m.jsonl");
    std::fs::write(&input, "0\n3\n1\n3\n2\n").unwrap();
    let body_path = d.dir.path().join("upload.bin");
    ok(&[
        "client",
        "--task",
        p(&task_path),
        "--input",
        p(&input),
        "--output",
        p(&body_path),
    ]);
    Setup {
        d,
        task,
        keys,
        task_path,
        body_path,
    }
}

fn ingest(s: &Setup, body: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "ingest",
        "--config",
        p(&s.d.paths.ingestor),
        "--task",
        p(&s.task_path),
        "--input",
        p(body),
    ];
    args.extend(extra);
    divvi(&args)
}

/// An ingest that must succeed; returns its standard output (the JSON summary).
fn ingest_ok(s: &Setup, extra: &[&str]) -> Vec<u8> {
    let out = ingest(s, &s.body_path, extra);
    assert!(
        out.status.success(),
        "ingest {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The batch ids an ingest printed under `key`.
fn batch_ids(stdout: &[u8], key: &str) -> Vec<BatchId> {
    let report: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let text = b.as_str().unwrap();
            let (rest, uuid) = text.rsplit_once('/').unwrap();
            let (aggregation, date) = rest.split_once('/').unwrap();
            let time =
                chrono::NaiveDateTime::parse_from_str(&format!("{date}/00"), "%Y/%m/%d/%H/%M/%S")
                    .unwrap()
                    .and_utc();
            BatchId::new(aggregation, time, uuid.parse().unwrap()).unwrap()
        })
        .collect()
}

fn aad<'a>(
    task: &'a Task,
    configuration: &'a [u8],
    metadata: &'a ReportMetadata,
    public_share: &'a [u8],
) -> InputShareAad<'a> {
    InputShareAad {
        version: task.version(),
        task_id: task.task_id(),
        task_binding: configuration,
        metadata,
        public_share,
    }
}

#[test]
fn client_output_is_ingested_as_each_servers_own_sealed_shares() {
    let s = setup();
    let out = ingest_ok(&s, &["--batch-size", "2"]);
    let ids = batch_ids(&out, "batches");
    assert_eq!(ids.len(), 3, "5 reports, 2 a batch");
    assert!(ids
        .iter()
        .all(|b| b.aggregation == s.task.task_id().to_base64url()));
    let sent = decode_reports(DapVersion::Dap18, &std::fs::read(&s.body_path).unwrap()).unwrap();
    let configuration = s.task.task_configuration();
    let servers = [
        Server::load(&s.d.paths.servers[0]).unwrap(),
        Server::load(&s.d.paths.servers[1]).unwrap(),
    ];
    let roles = [
        (Role::Leader, &s.keys.leader, &s.keys.helper),
        (Role::Helper, &s.keys.helper, &s.keys.leader),
    ];
    let mut seen: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    for id in &ids {
        let names = id.names(BatchKind::Ingestion);
        for (server, (role, own, other)) in servers.iter().zip(roles) {
            let batch = open_batch::<DapIngestionHeader>(
                server.ingestion.as_ref(),
                &names,
                &server.ingestor_trust,
                u64::MAX,
            )
            .unwrap();
            assert_eq!(batch.header.task_id, s.task.task_id().0);
            let shares: Vec<DapReportShare> =
                batch.packets().unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(batch.header.report_count, shares.len() as i64);
            for share in shares {
                let metadata = ReportMetadata {
                    report_id: ReportId(share.report_id.clone().try_into().unwrap()),
                    time: share.time as u64,
                };
                let ciphertext = HpkeCiphertext {
                    config_id: u8::try_from(share.config_id).unwrap(),
                    enc: share.enc.clone(),
                    payload: share.payload.clone(),
                };
                let aad = aad(&s.task, &configuration, &metadata, &share.public_share);
                own.open_input_share(role, &ciphertext, &aad)
                    .expect("opens with its own key");
                assert!(other.open_input_share(role, &ciphertext, &aad).is_err());
                seen[role.agg_id()].push(share.report_id);
            }
        }
    }
    let want: Vec<Vec<u8>> = sent
        .iter()
        .map(|r| r.metadata.report_id.0.to_vec())
        .collect();
    assert_eq!(seen[0], want);
    assert_eq!(seen[1], want);
}

#[test]
fn rerunning_an_ingest_writes_no_new_batch() {
    let s = setup();
    let contents = |paths: &[PathBuf]| -> Vec<Vec<u8>> {
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    let first = ingest_ok(&s, &["--batch-size", "2"]);
    let before = files(s.d.dir.path());
    let bytes_before = contents(&before);
    let again = ingest_ok(&s, &["--batch-size", "2"]);
    assert!(batch_ids(&again, "batches").is_empty());
    assert_eq!(
        batch_ids(&again, "already_ingested"),
        batch_ids(&first, "batches")
    );
    // The ingestor cannot read the buckets: it wrote the same bytes again, and no second
    // signature.
    assert_eq!(files(s.d.dir.path()), before);
    let changed: Vec<&PathBuf> = before
        .iter()
        .zip(contents(&before).iter().zip(&bytes_before))
        .filter(|(_, (now, then))| now != then)
        .map(|(path, _)| path)
        .collect();
    assert!(
        changed.is_empty(),
        "rewritten with other bytes: {changed:?}"
    );
    // Cut another way, the input makes new batches beside the first ones, which stay as
    // they were (the servers count each report id once).
    let other = ingest_ok(&s, &["--batch-size", "3"]);
    let new = batch_ids(&other, "batches");
    assert_eq!(new.len(), 2);
    assert!(new
        .iter()
        .all(|id| !batch_ids(&first, "batches").contains(id)));
    assert_eq!(contents(&before), bytes_before);
}

#[test]
fn bad_bodies_are_refused_naming_the_report_and_nothing_is_written() {
    let s = setup();
    let body = std::fs::read(&s.body_path).unwrap();
    let mut reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    let first_len = reports[0].to_bytes(DapVersion::Dap18).unwrap().len();
    let truncated = body[..body.len() - 3].to_vec();
    let mut bad_length = body.clone();
    // Report 1's public_share length (after id 16, time 8, extensions length 2).
    bad_length[first_len + 26..first_len + 30].copy_from_slice(&[0xff; 4]);
    reports[2].metadata.report_id = reports[0].metadata.report_id;
    let duplicate = encode_reports(DapVersion::Dap18, &reports).unwrap();
    for (what, bytes, expect) in [
        ("truncated", truncated, "report 4 "),
        ("bad length", bad_length, "report 1 "),
        ("duplicate", duplicate, "report 2 "),
    ] {
        assert_refused(&s, what, &bytes, expect);
    }
}

/// Ingesting `body` fails with `expect` in its message and adds or leaves no file.
fn assert_refused(s: &Setup, what: &str, body: &[u8], expect: &str) {
    let before = files(s.d.dir.path());
    let path = s.d.dir.path().join("bad.bin");
    std::fs::write(&path, body).unwrap();
    let out = ingest(s, &path, &[]);
    std::fs::remove_file(&path).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} was accepted");
    assert!(stderr.contains(expect), "{what}: {stderr}");
    assert_eq!(files(s.d.dir.path()), before, "{what} wrote something");
}

#[test]
fn enpa_flags_are_refused_with_a_task() {
    let s = setup();
    for flag in [["--bins", "4"], ["--epsilon", "1"], ["--form", "indices"]] {
        let out = ingest(&s, &s.body_path, &flag);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag[0]) && stderr.contains("--task"),
            "{stderr}"
        );
    }
}

/// A DAP ingestion header names its packet file's digest, BLAKE3, and both a server
/// (reading the batch) and `inspect` check it: a changed byte of a share is found.
#[test]
fn the_packet_file_digest_is_blake3_and_checked() {
    let s = setup();
    let out = ingest_ok(&s, &["--batch-size", "5"]);
    let id = &batch_ids(&out, "batches")[0];
    let server = Server::load(&s.d.paths.servers[0]).unwrap();
    let names = id.names(BatchKind::Ingestion);
    let read = || {
        let batch = open_batch::<DapIngestionHeader>(
            server.ingestion.as_ref(),
            &names,
            &server.ingestor_trust,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(
            batch.header.packet_file_digest_algorithm,
            divvi::crypto::PacketDigest::Blake3
        );
        batch
            .packets()
            .unwrap()
            .collect::<Result<Vec<DapReportShare>, _>>()
    };
    assert_eq!(read().unwrap().len(), 5);
    let path = |key: &str| {
        let url = server.ingestion.describe(key);
        PathBuf::from(url.strip_prefix("file://").unwrap())
    };
    let signature = path(&names.signature);
    let digest = |v: &serde_json::Value| v["digest"].clone();
    let shown = divvi::inspect::inspect(&signature, None, 0).unwrap();
    assert_eq!(digest(&shown)["verdict"], "matches", "{shown}");
    assert_eq!(digest(&shown)["algorithm"], "BLAKE3", "{shown}");
    // One byte of the last share's ciphertext (just before the file's closing sync
    // marker): the records still decode, the digest does not match.
    let packets = path(&names.packets);
    let mut bytes = std::fs::read(&packets).unwrap();
    let at = bytes.len() - 17;
    bytes[at] ^= 1;
    std::fs::write(&packets, bytes).unwrap();
    let e = read().unwrap_err().to_string();
    assert!(e.contains("digest") && e.contains(&names.packets), "{e}");
    let shown = divvi::inspect::inspect(&signature, None, 0).unwrap();
    assert_eq!(digest(&shown)["verdict"], "MISMATCH", "{shown}");
}

#[test]
fn fastavro_reads_dap_ingestion_files_as_the_same_records() {
    let s = setup();
    ingest_ok(&s, &["--batch-size", "3"]);
    let all: Vec<PathBuf> = files(s.d.dir.path())
        .into_iter()
        .filter(|f| {
            let name = f.to_string_lossy();
            name.ends_with(".batch") || name.ends_with(".batch.avro")
        })
        .collect();
    assert_eq!(
        all.len(),
        2 * 2 * 2,
        "2 batches, 2 servers, header and packets"
    );
    let mut theirs: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    let mut kinds = std::collections::BTreeSet::new();
    for v in common::fastavro_records(&all) {
        kinds.insert(v["schema"].as_str().unwrap().to_string());
        theirs
            .entry(v["file"].as_str().unwrap().to_string())
            .or_default()
            .push(v["record"].clone());
    }
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    for path in &all {
        let ours = divvi::inspect::inspect(path, None, usize::MAX).unwrap();
        let key = path.display().to_string();
        assert_eq!(
            theirs.remove(&key).unwrap_or_default(),
            ours["records"].as_array().unwrap().clone(),
            "{key}"
        );
    }
}

#[test]
fn reports_from_the_future_or_for_other_hpke_configs_are_refused() {
    let s = setup();
    let client = divvi::dap::DapClient::new(&s.task).unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let measurement = divvi::dap::Measurement::Histogram(1);
    let report = |time| client.report(&measurement, time).unwrap();
    let mut other_config = report(now);
    other_config.helper_encrypted_input_share.config_id = 9;
    for (what, reports, expect) in [
        ("future", vec![report(now), report(now + 3600)], "report 1 "),
        ("config", vec![other_config], "HPKE config 9"),
    ] {
        assert_refused(
            &s,
            what,
            &encode_reports(DapVersion::Dap18, &reports).unwrap(),
            expect,
        );
    }
}
