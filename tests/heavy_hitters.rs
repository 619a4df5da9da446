//! Heavy hitters through the batch pipeline, by the CLI, on deployments from
//! `keygen --vdaf poplar1:BITS`: `client` seals Zipf-drawn strings, `ingest` batches them
//! unopened, and the traversal runs as the parties would run it: the portal's
//! `collect --heavy-hitters` asks each pass, each server's `passes` runs both rounds
//! (verifier shares through the buckets) and writes the pass's sum part. The strings
//! found must be exactly those whose true count reaches the threshold, with their true
//! counts.

mod common;
#[allow(dead_code)]
mod dap_common;
#[allow(dead_code)]
mod poplar1_common;

use common::{divvi, files_ending, kill_after};
use divvi::batch::{create_pass_query, PassId, PassQuery, Window};
use divvi::config::{Portal, Server};
use divvi::dap::poplar1::{Pass, Prefix};
use divvi::dap::{decode_reports, encode_reports, DapVersion, Report, Role, Task};
use std::path::{Path, PathBuf};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = divvi(args);
    assert!(
        out.status.success(),
        "divvi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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

    /// The encoded reports of `strings`, sealed by `divvi client`.
    fn reports(&self, strings: &[Vec<u8>]) -> Vec<u8> {
        let lines: String = strings
            .iter()
            .map(|s| format!("{}\n", serde_json::json!(String::from_utf8_lossy(s))))
            .collect();
        let input = self.dir.join("m.jsonl");
        std::fs::write(&input, lines).unwrap();
        let body = self.dir.join("upload.bin");
        run_ok(&[
            "client",
            "--task",
            p(&self.dir.join("task.json")),
            "--input",
            p(&input),
            "--output",
            p(&body),
        ]);
        std::fs::read(&body).unwrap()
    }

    fn ingest(&self, body: &[u8], batch_size: usize) {
        let path = self.dir.join("ingest.bin");
        std::fs::write(&path, body).unwrap();
        run_ok(&[
            "ingest",
            "--config",
            p(&self.config("ingestor")),
            "--task",
            p(&self.dir.join("task.json")),
            "--input",
            p(&path),
            "--batch-size",
            &batch_size.to_string(),
        ]);
    }
}

/// A report of `string` whose input share of server `agg_id` is changed by `tamper`
/// before it is sealed: a malicious client's, that opens fine and fails verification.
fn malicious_report(
    task: &Task,
    string: &[u8],
    agg_id: usize,
    tamper: impl Fn(&mut Vec<u8>),
) -> Report {
    use divvi::dap::hpke::seal_input_share;
    use divvi::dap::messages::{InputShareAad, ReportId, ReportMetadata};
    let metadata = ReportMetadata {
        report_id: ReportId::random().unwrap(),
        time: task.report_time(chrono::Utc::now().timestamp() as u64),
    };
    let poplar = divvi::dap::Poplar1Vdaf::new(task).unwrap();
    let mut shares = poplar.shard(string, &metadata.report_id.0).unwrap();
    tamper(&mut shares.input_shares[agg_id]);
    let binding = task.aad_task_binding();
    let aad = InputShareAad {
        version: task.version(),
        task_id: task.task_id(),
        task_binding: &binding,
        metadata: &metadata,
        public_share: &shares.public_share,
    };
    let params = task.params();
    let seal = |config, role, share: &Vec<u8>| seal_input_share(config, role, share, &aad).unwrap();
    Report {
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
        metadata,
        public_share: shares.public_share,
    }
}

/// `keygen --vdaf poplar1:BITS`, with a minimum batch size and `min_clients` of 2.
fn deployment(bits: u16) -> Deployment {
    deployment_with(bits, &[])
}

/// As [`deployment`], with more `keygen` arguments.
fn deployment_with(bits: u16, extra: &[&str]) -> Deployment {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let vdaf = format!("poplar1:{bits}");
    let mut args = vec![
        "keygen",
        "--out",
        p(&dir),
        "--vdaf",
        &vdaf,
        "--min-batch-size",
        "2",
    ];
    args.extend(extra);
    run_ok(&args);
    for server in ["server0", "server1"] {
        let path = dir.join(format!("{server}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("min_clients = 100", "min_clients = 2")).unwrap();
    }
    let task = Task::load(&dir.join("task.json")).unwrap();
    Deployment {
        _dir: tmp,
        dir,
        task,
    }
}

/// Today's window (UTC): reports made now fall in it, whatever the hour.
fn today() -> (String, String) {
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    (format!("{day}0000"), format!("{day}2359"))
}

fn window_of((start, end): &(String, String)) -> Window {
    let t = |s: &str| divvi::batch::parse_time(s).unwrap();
    Window::new(t(start), t(end)).unwrap()
}

fn collect_args(d: &Deployment, threshold: u64, step: usize) -> Vec<String> {
    let (start, end) = today();
    [
        "collect",
        "--config",
        p(&d.config("portal")),
        &format!("--aggregation={}", d.aggregation()),
        "--start",
        &start,
        "--end",
        &end,
        "--heavy-hitters",
        "--threshold",
        &threshold.to_string(),
        "--step",
        &step.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn passes_args(d: &Deployment, server: u8) -> Vec<String> {
    let (start, end) = today();
    [
        "passes",
        "--config",
        p(&d.config(&format!("server{server}"))),
        &format!("--aggregation={}", d.aggregation()),
        "--start",
        &start,
        "--end",
        &end,
    ]
    .map(String::from)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Today's heavy-hitters result, once the portal has written it.
fn heavy_hitters_result(d: &Deployment) -> Option<serde_json::Value> {
    let (start, end) = today();
    let file = d
        .dir
        .join("buckets/portal-results")
        .join(d.aggregation())
        .join(format!("{start}-{end}.heavy-hitters.json"));
    let bytes = std::fs::read(file).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// One turn of every party: the portal's collect step, then each server's passes.
/// Returns the heavy-hitters result once the portal wrote it.
fn turn(d: &Deployment, threshold: u64, step: usize) -> Option<serde_json::Value> {
    let out = divvi(&strs(&collect_args(d, threshold, step)));
    // 0: asked a pass or done; 4: waiting for the servers.
    let code = out.status.code();
    assert!(matches!(code, Some(0) | Some(4)), "collect: {out:?}");
    if let Some(result) = heavy_hitters_result(d) {
        return Some(result);
    }
    for server in [0, 1] {
        let out = divvi(&strs(&passes_args(d, server)));
        assert!(
            matches!(out.status.code(), Some(0) | Some(3) | Some(4)),
            "passes {server}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    None
}

/// Turns until the traversal ends; at most `turns`.
fn traverse(d: &Deployment, threshold: u64, step: usize, turns: usize) -> serde_json::Value {
    for _ in 0..turns {
        if let Some(result) = turn(d, threshold, step) {
            return result;
        }
    }
    panic!("the traversal did not end in {turns} turns");
}

/// (string, count) pairs of a result, most common first.
fn hitters(result: &serde_json::Value) -> Vec<(String, u64)> {
    result["heavy_hitters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["string"].as_str().unwrap().to_string(),
                h["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn heavy_hitters_through_the_buckets_are_the_true_ones_with_exact_counts() {
    let d = deployment(64);
    let strings = poplar1_common::zipf_strings(600, 40, 7);
    let body = d.reports(&strings);
    let mut reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    // Report 0: its leader ciphertext tampered with (server 0 cannot open it).
    reports[0].leader_encrypted_input_share.payload[3] ^= 1;
    // Report 1: its public share tampered with (bound into both ciphertexts' AAD).
    reports[1].public_share[0] ^= 1;
    // Two malicious clients: a flipped bit in the leader's IDPF key, and in the helper's
    // correlated randomness for level 3, pass 0's with step 4 (after its 16-byte key,
    // 32-byte seed and levels 0 to 2's pairs of Field64s). Both open, and fail
    // verification at pass 0.
    let most_common = strings[0].clone();
    reports.push(malicious_report(&d.task, &most_common, 0, |s| s[3] ^= 0x80));
    reports.push(malicious_report(&d.task, &most_common, 1, |s| {
        s[16 + 32 + 16 * 3] ^= 1
    }));
    d.ingest(&encode_reports(DapVersion::Dap18, &reports).unwrap(), 250);
    // Report 2 again, in a batch of its own: a replay, refused at pass 0.
    d.ingest(
        &encode_reports(DapVersion::Dap18, &reports[2..3]).unwrap(),
        250,
    );
    let threshold = 20;
    let result = traverse(&d, threshold, 4, 60);
    let truth = poplar1_common::truth(&strings[2..], threshold);
    assert!(truth.len() >= 4, "a weak test: {truth:?}");
    assert_eq!(hitters(&result), truth, "{result}");
    assert_eq!(result["reports"], 598, "{result}");
    assert_eq!(result["invalid_reports"], 5, "{result}");
    assert_eq!(result["passes"], 16, "{result}");
    // The invalid reports are listed with their reasons in both servers' last sum part.
    let last = PassId {
        instance: "divvi".into(),
        aggregation: d.aggregation(),
        window: window_of(&today()),
        index: 15,
    };
    let portal = Portal::load(&d.config("portal")).unwrap();
    for (s, server) in portal.servers.iter().enumerate() {
        let index = [divvi::ids::ServerIndex::Zero, divvi::ids::ServerIndex::One][s];
        let part = divvi::batch::read_pass_sum_part(
            server.sum_parts.as_ref(),
            &last,
            index,
            &server.trust,
        )
        .unwrap()
        .unwrap();
        let reasons: Vec<&str> = part.invalid.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 5, "server {s}: {reasons:?}");
        // Found at pass 0, each keeps its first reason through the last pass.
        assert!(
            reasons.iter().all(|r| r.starts_with("pass 0")),
            "server {s}: {reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("a duplicate")),
            "server {s}: {reasons:?}"
        );
        let unopened = reasons.iter().filter(|r| r.contains("round 1:")).count();
        // Server 0 opens neither tampered report; server 1 opens the one whose leader
        // ciphertext was tampered, then misses server 0's share of it.
        assert_eq!(unopened, [2, 1][s], "server {s}: {reasons:?}");
        let unverified = reasons.iter().filter(|r| r.contains("verif")).count();
        assert!(unverified >= 2, "server {s}: {reasons:?}");
    }
    // A rerun of every party changes nothing.
    assert_eq!(turn(&d, threshold, 4).unwrap(), result);
}

/// A task with differential privacy: each server adds discrete Laplace noise (scale 4:
/// sensitivity 2 at epsilon 1/2) to every count of every pass, once, and claims each pass
/// in its budget ledger.
#[test]
fn with_dp_noise_the_counts_are_near_the_truth_and_a_rerun_shows_the_same_draw() {
    let d = deployment_with(32, &["--dp-epsilon", "1/2"]);
    let task = std::fs::read_to_string(d.dir.join("task.json")).unwrap();
    assert!(
        task.contains("\"mechanism\": \"discrete_laplace\""),
        "{task}"
    );
    let strings = poplar1_common::zipf_strings(800, 20, 21);
    d.ingest(&d.reports(&strings), 400);
    let threshold = 30;
    let result = traverse(&d, threshold, 4, 30);
    assert!(
        result["noise"].as_str().unwrap().contains("scale 4 "),
        "{result}"
    );
    let found = hitters(&result);
    let truth = poplar1_common::truth(&strings, 1);
    let true_count = |s: &str| truth.iter().find(|(t, _)| t == s).map_or(0, |(_, c)| *c);
    // Each count is off by the two servers' noise: within 80 but for odds below 1e-8,
    // and not off at all in every one of them but for odds below 1e-4.
    let mut exact = 0;
    for (s, count) in &found {
        let off = *count as i64 - true_count(s) as i64;
        assert!(
            off.abs() <= 80,
            "{s}: {count} vs {}: {result}",
            true_count(s)
        );
        exact += usize::from(off == 0);
    }
    assert!(exact < found.len(), "no noise at all: {result}");
    // Strings far above the threshold are found; none far below it is.
    for (s, c) in &truth {
        if *c >= threshold + 80 {
            assert!(
                found.iter().any(|(f, _)| f == s),
                "{s} ({c}) missing: {result}"
            );
        }
    }
    for (s, _) in &found {
        assert!(true_count(s) + 80 >= threshold, "{s}: {result}");
    }
    // The noise was drawn once: a rerun of every party shows the same counts.
    assert_eq!(turn(&d, threshold, 4).unwrap(), result);
    // Each server's ledger holds each pass once, at epsilon 1/2.
    let passes = result["passes"].as_u64().unwrap() as usize;
    for server in [0, 1] {
        let ledger = d.dir.join(format!("buckets/server{server}-own/dp-ledger"));
        let entries = std::fs::read_dir(ledger.join(d.aggregation()))
            .unwrap()
            .count();
        assert_eq!(entries, passes, "server {server}");
    }
}

#[test]
fn a_server_refuses_a_pass_the_vdaf_does_not_allow_after_the_ones_it_ran() {
    let d = deployment(16);
    let strings = poplar1_common::zipf_strings(40, 3, 1);
    d.ingest(&d.reports(&strings), 100);
    // Pass 0 (level 1 with step 2), asked and run by both servers.
    for _ in 0..2 {
        assert!(turn(&d, 2, 2).is_none());
    }
    let portal = Portal::load(&d.config("portal")).unwrap();
    let key = portal.signing_key.as_ref().unwrap();
    // The portal (or whoever holds its key) asks pass 1 at level 1 again, with other
    // prefixes: evaluated twice at one level, reports could reveal more than counts.
    let again = Pass::new(vec![Prefix::from_bools(&[true, true])]).unwrap();
    let id = PassId {
        instance: "divvi".into(),
        aggregation: d.aggregation(),
        window: window_of(&today()),
        index: 1,
    };
    let query = PassQuery {
        task_id: d.task.task_id().0,
        pass: again.encode().unwrap(),
        threshold: 2,
    };
    for server in &portal.servers {
        assert!(create_pass_query(server.sum_parts.as_ref(), &id, &query, key).unwrap());
    }
    for server in [0, 1] {
        let out = divvi(&strs(&passes_args(&d, server)));
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("may not follow"), "{err}");
    }
    // Nothing of pass 1 was written.
    let s0 = Server::load(&d.config("server0")).unwrap();
    let keys = s0.own.list("").unwrap();
    assert!(!keys.iter().any(|k| k.contains(".pass1")), "{keys:?}");
    // And the portal itself refuses to go on from a pass it did not ask.
    let out = divvi(&strs(&collect_args(&d, 2, 2)));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("other settings"),
        "{out:?}"
    );
}

fn status(d: &Deployment, server: u8) -> String {
    run_ok(&[
        "status",
        "--config",
        p(&d.config(&format!("server{server}"))),
        &format!("--aggregation={}", d.aggregation()),
    ])
}

/// `passes --pending`, as a scheduled job runs it: every traversal begun.
fn passes(d: &Deployment, server: u8) {
    let out = divvi(&[
        "passes",
        "--config",
        p(&d.config(&format!("server{server}"))),
        &format!("--aggregation={}", d.aggregation()),
        "--pending",
    ]);
    assert!(
        matches!(out.status.code(), Some(0) | Some(3) | Some(4)),
        "{out:?}"
    );
}

/// The Poplar1 round states a server keeps in its own folder (under `rounds/`). Not the
/// temporary files of writes killed by a test: `remove_stale_temporaries` removes those
/// by age, as everywhere else.
fn round_states(d: &Deployment, server: u8) -> Vec<PathBuf> {
    let rounds = d
        .dir
        .join(format!("buckets/server{server}-own"))
        .join(divvi::batch::ROUND_STASH_PREFIX);
    if !rounds.exists() {
        return Vec::new();
    }
    let mut states = files_ending(&rounds, "");
    states.retain(|f| !f.to_string_lossy().contains("/.divvi-tmp-"));
    states
}

/// The S3 side of giving up round states and share stashes: the own bucket's lifecycle
/// rules in terraform/ must expire the prefixes divvi writes them under, or they stay for
/// the own bucket's whole retention.
#[test]
fn the_own_buckets_short_lived_prefixes_are_where_round_states_and_stashes_live() {
    let buckets =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/modules/divvi-server/buckets.tf");
    let text = std::fs::read_to_string(&buckets).unwrap();
    let rules = [
        (divvi::batch::ROUND_STASH_PREFIX, "var.round_state_days"),
        (
            divvi::batch::SHARE_STASH_PREFIX,
            "var.retention_days.peer_inbox",
        ),
    ];
    for (prefix, days) in rules {
        let rule = format!("{{ prefix = {prefix:?}, days = {days} }}");
        assert!(text.contains(&rule), "{} lacks {rule}", buckets.display());
    }
    // And a stash is written under its prefix.
    let id =
        divvi::batch::BatchId::new("a", chrono::DateTime::UNIX_EPOCH, uuid::Uuid::nil()).unwrap();
    assert!(id
        .stash_name(divvi::ids::ServerIndex::One)
        .starts_with(divvi::batch::SHARE_STASH_PREFIX));
}

#[test]
fn status_shows_where_a_traversal_stands() {
    let d = deployment(16);
    d.ingest(&d.reports(&poplar1_common::zipf_strings(30, 2, 9)), 100);
    assert!(status(&d, 0).contains("no heavy-hitters traversal begun"));
    // Nothing begun: a scheduled run has nothing to do.
    let idle = divvi(&[
        "passes",
        "--config",
        p(&d.config("server0")),
        &format!("--aggregation={}", d.aggregation()),
        "--pending",
    ]);
    assert_eq!(idle.status.code(), Some(3), "{idle:?}");
    // The portal asks pass 0 (level 1 with step 2).
    let out = divvi(&strs(&collect_args(&d, 2, 2)));
    assert!(out.status.success(), "{out:?}");
    let s0 = status(&d, 0);
    assert!(
        s0.contains("pass 0 (level 1, 4 prefixes)  1 batches  ready: round one of"),
        "{s0}"
    );
    passes(&d, 0);
    let s0 = status(&d, 0);
    assert!(s0.contains("waiting for server 1's round one of"), "{s0}");
    let kept = round_states(&d, 0);
    assert!(
        kept.iter()
            .any(|f| f.to_string_lossy().ends_with(".pass0r1.shares_0")),
        "round one's states are kept for round two: {kept:?}"
    );
    passes(&d, 1);
    passes(&d, 0);
    assert!(
        status(&d, 0).contains("sum part written"),
        "{}",
        status(&d, 0)
    );
    // Once its sum part is written, a server gives up the pass's round states; the
    // peer, whose sum part is still to write, keeps both rounds' states.
    assert_eq!(round_states(&d, 0), Vec::<PathBuf>::new());
    let peer_kept = round_states(&d, 1);
    for round in ["r1", "r2"] {
        let name = format!(".pass0{round}.shares_1");
        assert!(
            peer_kept
                .iter()
                .any(|f| f.to_string_lossy().ends_with(&name)),
            "{name}: {peer_kept:?}"
        );
    }
    let s1 = status(&d, 1);
    assert!(s1.contains("ready: the sum part of pass 0"), "{s1}");
    // Nothing was done by looking: server 1's sum part is still to write.
    assert!(status(&d, 1).contains("ready: the sum part of pass 0"));
    passes(&d, 1);
    let s1 = status(&d, 1);
    assert!(
        s1.contains("sum part written")
            && s1.contains("waiting for the portal's query after pass 0"),
        "{s1}"
    );
    assert_eq!(round_states(&d, 1), Vec::<PathBuf>::new());
    // Run to the end: at the last level nothing more is awaited, and no round state is
    // left on either server.
    traverse(&d, 2, 2, 40);
    let s0 = status(&d, 0);
    assert!(s0.contains("(level 15") && !s0.contains("waiting"), "{s0}");
    for server in [0, 1] {
        assert_eq!(round_states(&d, server), Vec::<PathBuf>::new(), "{server}");
    }
}

#[test]
fn a_query_not_signed_by_the_portal_is_refused() {
    let d = deployment(16);
    d.ingest(&d.reports(&poplar1_common::zipf_strings(10, 2, 3)), 100);
    let s0 = Server::load(&d.config("server0")).unwrap();
    // Signed with server 0's own key: not the portal's.
    let id = PassId {
        instance: "divvi".into(),
        aggregation: d.aggregation(),
        window: window_of(&today()),
        index: 0,
    };
    let query = PassQuery {
        task_id: d.task.task_id().0,
        pass: Pass::new(vec![
            Prefix::from_bools(&[false]),
            Prefix::from_bools(&[true]),
        ])
        .unwrap()
        .encode()
        .unwrap(),
        threshold: 2,
    };
    create_pass_query(s0.sum_parts.as_ref(), &id, &query, &s0.signing_key).unwrap();
    let out = divvi(&strs(&passes_args(&d, 0)));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".pass0.query") && err.contains("signature"),
        "{err}"
    );
}

#[test]
fn passes_killed_at_any_point_finish_on_rerun_with_the_true_heavy_hitters() {
    let d = deployment(32);
    let strings = poplar1_common::zipf_strings(3000, 30, 11);
    d.ingest(&d.reports(&strings), 1000);
    let threshold = 100;
    let delays = [20, 60, 150, 300].map(std::time::Duration::from_millis);
    let mut killed = 0;
    let mut result = None;
    for _ in 0..40 {
        // Each party is killed at several points, then run to the end of its step.
        for delay in delays {
            killed += usize::from(kill_after(&strs(&collect_args(&d, threshold, 2)), delay));
            for server in [0, 1] {
                killed += usize::from(kill_after(&strs(&passes_args(&d, server)), delay));
            }
        }
        result = turn(&d, threshold, 2);
        if result.is_some() {
            break;
        }
    }
    let result = result.expect("the traversal ended");
    assert!(
        killed >= 10,
        "only {killed} jobs were still running when killed"
    );
    assert_eq!(
        hitters(&result),
        poplar1_common::truth(&strings, threshold),
        "{result}"
    );
    assert_eq!(result["reports"], 3000, "{result}");
    // A kill between a sum part and the discarding of its pass's round states leaves
    // them to a later run: of that pass, which finds it done, or of the next.
    for server in [0, 1] {
        divvi(&strs(&passes_args(&d, server)));
        assert_eq!(round_states(&d, server), Vec::<PathBuf>::new(), "{server}");
    }
}

#[test]
fn fastavro_reads_the_round_files_the_servers_write() {
    let d = deployment(16);
    d.ingest(&d.reports(&poplar1_common::zipf_strings(12, 2, 5)), 100);
    for _ in 0..3 {
        turn(&d, 2, 8);
    }
    let s1 = Server::load(&d.config("server1")).unwrap();
    let mut files = Vec::new();
    let extracted = tempfile::tempdir().unwrap();
    for key in s1.own.list("").unwrap() {
        if !(key.contains(".pass0r") && key.ends_with(".sig")) {
            continue;
        }
        // Single objects: the signature record carries header and packets inline.
        let bytes = std::fs::read(d.dir.join("buckets/server1-own").join(&key)).unwrap();
        let record: divvi::wire::BatchSignature = divvi::wire::decode_single(&bytes).unwrap();
        for (n, part) in [record.batch_header, record.packets]
            .into_iter()
            .enumerate()
        {
            let path = extracted.path().join(format!("{}-{n}.avro", files.len()));
            std::fs::write(&path, part.unwrap()).unwrap();
            files.push(path);
        }
    }
    assert_eq!(files.len(), 4, "two rounds, header and packets each");
    let records = common::fastavro_records(&files);
    let named = |name: &str| {
        records
            .iter()
            .filter(|r| r["schema"] == format!("org.abetterinternet.prio.v1.{name}").as_str())
            .count()
    };
    assert_eq!(named("Poplar1RoundHeader"), 2, "{records:?}");
    assert_eq!(named("DapVerifierShare"), 24, "{records:?}");
    let rounds: Vec<i64> = records
        .iter()
        .filter_map(|r| r["record"]["round"].as_i64())
        .collect();
    assert_eq!(rounds, vec![1, 2]);
}

#[test]
fn passes_on_a_server_of_another_task_does_nothing_and_refuses_a_window() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    run_ok(&["keygen", "--out", p(&dir), "--vdaf", "histogram:4"]);
    let config = dir.join("server0.toml");
    let base = ["passes", "--config", p(&config), "--aggregation", "x"];
    // Scheduled: nothing begun, nothing to do (the same job runs on every server).
    let out = divvi(&[&base[..], &["--pending"]].concat());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"traversals\":0"));
    // Asked for a window: a configuration error, which no retry mends.
    let (start, end) = today();
    let out = divvi(&[&base[..], &["--start", &start, "--end", &end]].concat());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not poplar1"),
        "{out:?}"
    );
}

#[test]
fn check_shows_the_portal_key_on_both_sides() {
    let d = deployment_with(16, &["--dp-epsilon", "2"]);
    let server = run_ok(&["check", "--config", p(&d.config("server1"))]);
    assert!(server.contains("  portal       portal-signing"), "{server}");
    assert!(server.contains("epsilon 2 per release"), "{server}");
    let portal = run_ok(&[
        "check",
        "--config",
        p(&d.config("portal")),
        "--as",
        "portal",
    ]);
    assert!(portal.contains("  signing key  portal-signing"), "{portal}");
    // Without trust.portal a poplar1 server says what that means.
    let path = d.config("server0");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find("[[trust.portal]]")
        .expect("trust.portal in server0.toml");
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |e| start + e + 1);
    std::fs::write(&path, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let server = run_ok(&["check", "--config", p(&path)]);
    assert!(
        server.contains("none: its heavy-hitters queries are refused"),
        "{server}"
    );
}

/// Passes scale out like intake: each server's turn is two workers at once
/// (`--shard 0/2` and `1/2`, the second as a Kubernetes Indexed Job finds it), each
/// preparing the batches it owns; worker 0 alone writes each sum part. The heavy hitters
/// are the true ones with their counts, every batch was prepared by its owner only, and
/// no worker 1 ever wrote a sum part.
#[test]
fn passes_split_between_workers_find_the_true_heavy_hitters() {
    let d = deployment(32);
    let strings = poplar1_common::zipf_strings(400, 20, 11);
    d.ingest(&d.reports(&strings), 50); // 8 batches
    let threshold = 20;
    let mut result = None;
    let mut round_one = std::collections::HashMap::<String, Vec<String>>::new();
    let mut sum_parts_by = vec![0usize; 2];
    for _ in 0..40 {
        let out = divvi(&strs(&collect_args(&d, threshold, 4)));
        assert!(
            matches!(out.status.code(), Some(0) | Some(4)),
            "collect: {out:?}"
        );
        if let Some(found) = heavy_hitters_result(&d) {
            result = Some(found);
            break;
        }
        for server in [0u8, 1] {
            let workers: Vec<std::process::Child> = (0..2)
                .map(|i| {
                    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"));
                    cmd.args(strs(&passes_args(&d, server)));
                    if i == 0 {
                        cmd.args(["--shard", "0/2"]);
                    } else {
                        cmd.env("JOB_COMPLETION_INDEX", "1")
                            .env("DIVVI_SHARD_COUNT", "2");
                    }
                    cmd.stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for (i, w) in workers.into_iter().enumerate() {
                let out = w.wait_with_output().unwrap();
                assert!(
                    matches!(out.status.code(), Some(0) | Some(3) | Some(4)),
                    "passes {server} shard {i}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    for batch in v["round_one"].as_array().into_iter().flatten() {
                        let key = format!("server {server} pass {} {}", v["pass"], batch["batch"]);
                        round_one.entry(key).or_default().push(format!("shard {i}"));
                    }
                    if !v["sum_part"].is_null() {
                        sum_parts_by[i] += 1;
                    }
                }
            }
        }
    }
    let result = result.expect("the traversal ended");
    let truth = poplar1_common::truth(&strings, threshold);
    assert!(truth.len() >= 2, "a weak test: {truth:?}");
    assert_eq!(hitters(&result), truth, "{result}");
    assert_eq!(result["reports"], 400, "{result}");
    // 8 passes × 8 batches × 2 servers, each by exactly one worker, and both worked.
    assert_eq!(round_one.len(), 8 * 8 * 2, "{round_one:?}");
    assert!(
        round_one.values().all(|who| who.len() == 1),
        "{round_one:?}"
    );
    // Each batch by the worker that owns it (a random draw of 8 ids leaves one worker
    // idle about 1 run in 130, so "both worked" cannot be asserted; who did what can).
    for (key, who) in &round_one {
        let batch = key
            .rsplit(' ')
            .next()
            .and_then(|b| divvi::batch::BatchId::parse(b.trim_matches('"')))
            .unwrap_or_else(|| panic!("no batch in {key}"));
        let owner = (0..2)
            .find(|&index| divvi::batch::Shard { index, count: 2 }.owns(&batch))
            .unwrap_or_else(|| panic!("no shard owns {key}"));
        assert_eq!(who[0], format!("shard {owner}"), "{key}");
    }
    assert_eq!(
        sum_parts_by,
        [16, 0],
        "8 passes × 2 servers, all by worker 0"
    );
}
