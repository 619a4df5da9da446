//! The pipeline over a real S3-compatible server (SeaweedFS on loopback), with separate
//! credentials for the ingestor, each server, each server's grant to its peer, and the
//! portal. Every test starts its own server and runs the `divvi` binary as a user would.

mod common;

use common::seaweed::{aws_env, Seaweed};
use common::{divvi, ok, test_time};
use rand::RngExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Random one-hot reports as CSV; returns the file and the true histogram.
fn reports(dir: &Path, n: usize, bins: usize) -> (PathBuf, Vec<u64>) {
    let mut rng = rand::rng();
    let mut truth = vec![0u64; bins];
    let mut csv = String::new();
    for _ in 0..n {
        let b = rng.random_range(0..bins);
        truth[b] += 1;
        let row: Vec<&str> = (0..bins).map(|i| if i == b { "1" } else { "0" }).collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let path = dir.join(format!("reports-{n}-{bins}.csv"));
    std::fs::write(&path, csv).unwrap();
    (path, truth)
}

fn keygen(out: &Path, weed: Option<&Seaweed>) {
    let mut args = vec![
        "keygen".to_string(),
        "--out".into(),
        s(out),
        "--scheme".into(),
        "ecies".into(),
        "--min-clients".into(),
        "1".into(),
    ];
    if let Some(w) = weed {
        args.extend(w.keygen_flags());
    }
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn ingest(d: &Path, input: &Path, bins: usize, batch_size: usize) {
    ok(&[
        "ingest",
        "--config",
        &s(&d.join("ingestor.toml")),
        "--input",
        &s(input),
        "--aggregation",
        "s3-test",
        "--bins",
        &bins.to_string(),
        "--batch-size",
        &batch_size.to_string(),
        "--time",
        test_time(),
    ]);
}

/// Intake as a scheduled job runs it: a turn with nothing to do exits 0.
fn intake(d: &Path, server: usize) -> String {
    ok(&[
        "intake",
        "--config",
        &s(&d.join(format!("server{server}.toml"))),
        "--aggregation",
        "s3-test",
        "--exit-codes",
        "scheduler",
    ])
}

fn window_args(config: &str) -> Vec<&str> {
    vec![
        "--config",
        config,
        "--aggregation",
        "s3-test",
        "--start",
        test_time(),
        "--end",
        test_time(),
    ]
}

fn aggregate(d: &Path, server: usize) -> String {
    let config = s(&d.join(format!("server{server}.toml")));
    let mut args = vec!["aggregate"];
    args.extend(window_args(&config));
    ok(&args)
}

/// Collects and returns the histogram from the printed table.
fn collect(d: &Path) -> Vec<u64> {
    let config = s(&d.join("portal.toml"));
    let mut args = vec!["collect"];
    args.extend(window_args(&config));
    ok(&args)
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect()
}

fn run_pipeline(d: &Path, input: &Path, bins: usize, batch_size: usize) -> Vec<u64> {
    ingest(d, input, bins, batch_size);
    for n in 0..2 {
        intake(d, n);
    }
    for n in 0..2 {
        aggregate(d, n);
    }
    collect(d)
}

#[test]
fn the_pipeline_over_s3_gives_the_same_result_as_over_local_folders() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "same-");
    let (input, truth) = reports(dir.path(), 3000, 8);
    keygen(&dir.path().join("s3"), Some(&weed));
    keygen(&dir.path().join("local"), None);
    let over_s3 = run_pipeline(&dir.path().join("s3"), &input, 8, 1000);
    let local = run_pipeline(&dir.path().join("local"), &input, 8, 1000);
    assert_eq!(over_s3, truth);
    assert_eq!(over_s3, local);
    // The result objects are in the portal's results bucket, not on local disk.
    assert!(!dir.path().join("s3/buckets").exists());
    let results =
        divvi::store::open_location(&weed.location("portal-results", "portal"), dir.path())
            .unwrap();
    let keys = results.list("s3-test/").unwrap();
    assert_eq!(
        keys,
        vec![
            format!("s3-test/{t}-{t}.result.csv", t = test_time()),
            format!("s3-test/{t}-{t}.result.json", t = test_time()),
            "s3-test/series.csv".to_string(),
            "s3-test/series.jsonl".to_string(),
        ]
    );
    // inspect reads a sum part's signature on S3, its header and invalid file beside it.
    let parts =
        divvi::store::open_location(&weed.location("server0-sum-parts", "portal"), dir.path())
            .unwrap();
    let sig = parts
        .list("")
        .unwrap()
        .into_iter()
        .find(|k| k.ends_with(".sum_0.sig"))
        .unwrap();
    let portal = s(&dir.path().join("s3/portal.toml"));
    let object = format!("s3://{}server0-sum-parts/{sig}", weed.bucket_prefix);
    let shown: serde_json::Value = serde_json::from_str(&ok(&[
        "inspect",
        &object,
        "--config",
        &portal,
        "--s3-endpoint",
        &weed.endpoint,
        "--s3-region",
        "us-east-1",
        "--s3-path-style",
        "--s3-profile",
        "portal",
    ]))
    .unwrap();
    assert_eq!(shown["signature"]["verdict"], "valid", "{shown}");
    assert_eq!(shown["digest"]["verdict"], "matches", "{shown}");
    assert_eq!(shown["header"]["total_individual_clients"], 3000, "{shown}");
    // The series on S3 holds the run, once.
    let series = divvi::stages::series::read_series(results.as_ref(), "s3-test").unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(
        series[0].values,
        truth
            .iter()
            .map(|&v| serde_json::Value::from(v))
            .collect::<Vec<_>>()
    );
}

/// Writes a config, changed by `edit`, to `out`.
fn edit_config(config: &Path, out: &Path, edit: impl FnOnce(&mut toml::Value)) {
    let mut v: toml::Value = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(out, toml::to_string(&v).unwrap()).unwrap();
}

/// Rewrites one location of a config to be reached with another party's credentials.
fn with_profile(config: &Path, location: &[&str], profile: &str, out: &Path) {
    edit_config(config, out, |v| {
        let mut t = v;
        for k in location {
            t = t
                .get_mut(*k)
                .unwrap_or_else(|| panic!("no {k} in {}", config.display()));
        }
        t.as_table_mut()
            .unwrap()
            .insert("profile".into(), profile.into());
    });
}

/// A SeaweedFS server (buckets named with `prefix`), a deployment on it in `dir/d`, and
/// `n` reports of 4 bins ingested into aggregation s3-test; the reports' file.
fn ingested_over_s3(dir: &Path, prefix: &str, n: usize) -> (Seaweed, PathBuf, PathBuf) {
    let weed = Seaweed::start(&dir.join("weed"), prefix);
    let d = dir.join("d");
    keygen(&d, Some(&weed));
    let (input, _) = reports(dir, n, 4);
    ingest(&d, &input, 4, 100);
    (weed, d, input)
}

#[test]
fn a_party_acting_outside_its_grant_is_denied_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (weed, d, input) = ingested_over_s3(dir.path(), "deny-", 50);
    intake(&d, 0);

    // Server 1 writing into server 0's ingestion bucket (an ingestor config with server
    // 1's credentials for server 0's bucket).
    let forged = d.join("forged-ingestor.toml");
    let mut v: toml::Value =
        toml::from_str(&std::fs::read_to_string(d.join("ingestor.toml")).unwrap()).unwrap();
    v["servers"][0]["ingestion"]
        .as_table_mut()
        .unwrap()
        .insert("profile".into(), "server1".into());
    std::fs::write(&forged, toml::to_string(&v).unwrap()).unwrap();
    let out = divvi(&[
        "ingest",
        "--config",
        &s(&forged),
        "--input",
        &s(&input),
        "--aggregation",
        "s3-test",
        "--bins",
        "4",
        "--time",
        test_time(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AccessDenied")
            && err.contains("writing s3://deny-server0-ingestion/s3-test/"),
        "{err}"
    );

    // The ingestor reading a validation batch (server 0's own bucket, ingestor credentials).
    let snooping = d.join("snooping-server0.toml");
    with_profile(
        &d.join("server0.toml"),
        &["locations", "own"],
        "ingestor",
        &snooping,
    );
    let config = s(&snooping);
    let mut args = vec!["aggregate"];
    args.extend(window_args(&config));
    let out = divvi(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AccessDenied")
            && err.contains("s3://deny-server0-own/s3-test/")
            && err.contains("validity_0"),
        "{err}"
    );

    // And directly: the ingestor cannot list or read what the servers keep.
    let own =
        divvi::store::open_location(&weed.location("server0-own", "ingestor"), dir.path()).unwrap();
    let e = own.list("s3-test/").unwrap_err().to_string();
    assert!(
        e.contains("AccessDenied") && e.contains("listing s3://deny-server0-own/"),
        "{e}"
    );
}

/// Peak resident memory of a child process, polled until it exits.
fn peak_rss_of(mut cmd: Command) -> (bool, u64) {
    aws_env();
    let mut child = cmd.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
            {
                peak = peak.max(kib * 1024);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_200000_packet_batch_goes_through_intake_over_s3_with_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "big-");
    let d = dir.path().join("d");
    keygen(&d, Some(&weed));
    let mut peaks = Vec::new();
    for (n, aggregation) in [(20_000, "small"), (200_000, "large")] {
        let (input, _) = reports(dir.path(), n, 16);
        ok(&[
            "ingest",
            "--config",
            &s(&d.join("ingestor.toml")),
            "--input",
            &s(&input),
            "--aggregation",
            aggregation,
            "--bins",
            "16",
            "--batch-size",
            &n.to_string(),
            "--time",
            test_time(),
        ]);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_divvi"));
        cmd.args([
            "intake",
            "--config",
            &s(&d.join("server0.toml")),
            "--aggregation",
            aggregation,
        ]);
        let (success, peak) = peak_rss_of(cmd);
        assert!(success, "intake of {n} packets failed");
        peaks.push(peak);
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "intake peak RSS over S3: 20,000 packets {:.0} MiB, 200,000 packets {:.0} MiB",
        mib(peaks[0]),
        mib(peaks[1])
    );
    // Ten times the packets, not ten times the memory: the batch streams through.
    assert!(
        peaks[1] < peaks[0] + (32 << 20),
        "peaks {:?}",
        peaks.iter().map(|&p| mib(p)).collect::<Vec<_>>()
    );
    assert!(peaks[1] < 256 << 20);
    // The validation (and the stash, sent in multipart) arrived whole: aggregate agrees.
    ok(&[
        "intake",
        "--config",
        &s(&d.join("server1.toml")),
        "--aggregation",
        "large",
    ]);
    let config = s(&d.join("server0.toml"));
    let out = ok(&[
        "aggregate",
        "--config",
        &config,
        "--aggregation",
        "large",
        "--start",
        test_time(),
        "--end",
        test_time(),
    ]);
    assert!(out.contains("\"valid\":200000"), "{out}");
}

#[test]
fn the_server_stopping_mid_intake_fails_cleanly_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut weed = Seaweed::start(&dir.path().join("weed"), "crash-");
    let d = dir.path().join("d");
    keygen(&d, Some(&weed));
    let (input, truth) = reports(dir.path(), 150_000, 16);
    ingest(&d, &input, 16, 150_000);

    // Start server 0's intake, and kill the S3 server once it is busy.
    let mut child = Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args([
            "intake",
            "--config",
            &s(&d.join("server0.toml")),
            "--aggregation",
            "s3-test",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stat = format!("/proc/{}/stat", child.id());
    let started = Instant::now();
    loop {
        // utime (field 14) in clock ticks: wait for a quarter second of CPU.
        let busy = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(11))
                    .and_then(|t| t.parse::<u64>().ok())
            })
            .is_some_and(|ticks| ticks >= 25);
        if busy || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "intake finished before the server was stopped"
    );
    weed.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "intake must fail when its store goes away"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3://crash-server0-"),
        "the error names the object: {err}"
    );
    eprintln!("intake with its S3 server gone: {}", err.trim());

    // After a restart nothing partial is visible: no validation, no stash, in any bucket.
    weed.restart();
    // SeaweedFS serves reads only once its volumes are loaded again.
    let ingestion =
        divvi::store::open_location(&weed.location("server0-ingestion", "server0"), dir.path())
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let sig = ingestion
        .list("s3-test/")
        .unwrap()
        .into_iter()
        .find(|k| k.ends_with(".sig"))
        .unwrap();
    while divvi::store::get_bytes(ingestion.as_ref(), &sig, 1 << 20).is_err() {
        assert!(
            Instant::now() < deadline,
            "SeaweedFS did not serve its data again after the restart"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for (bucket, party) in [("server0-own", "server0"), ("server0-sum-parts", "portal")] {
        let store = divvi::store::open_location(&weed.location(bucket, party), dir.path()).unwrap();
        assert_eq!(store.list("").unwrap(), Vec::<String>::new(), "{bucket}");
    }
    let inbox =
        divvi::store::open_location(&weed.location("server1-peer-inbox", "server1"), dir.path())
            .unwrap();
    assert_eq!(inbox.list("").unwrap(), Vec::<String>::new());

    // The rerun finishes the work with the right result.
    assert_eq!(intake(&d, 0).lines().count(), 1);
    intake(&d, 1);
    aggregate(&d, 0);
    aggregate(&d, 1);
    assert_eq!(collect(&d), truth);
}

#[test]
fn the_demo_runs_on_an_s3_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "demo-");
    let mut args = vec![
        "demo".to_string(),
        "--dir".into(),
        s(&dir.path().join("demo")),
        "--reports".into(),
        "2000".into(),
        "--batch-size".into(),
        "700".into(),
    ];
    args.extend(weed.keygen_flags());
    let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("OK: the histogram matches the truth"), "{out}");
    let results =
        divvi::store::open_location(&weed.location("portal-results", "portal"), dir.path())
            .unwrap();
    // The default demo is a DAP task's, aggregated under its task id.
    let task = divvi::dap::Task::load(&dir.path().join("demo/task.json")).unwrap();
    let aggregation = task.task_id().to_base64url();
    assert_eq!(results.list(&format!("{aggregation}/")).unwrap().len(), 2);
}

/// A whole heavy-hitters traversal on SeaweedFS: every pass's rounds and sum parts
/// through S3. Each server's round states are all under the one prefix its own bucket's
/// lifecycle rule expires (divvi's roles may not delete), and nothing else is.
#[test]
fn the_heavy_hitters_demo_runs_on_an_s3_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "heavy-");
    let mut args = [
        "demo",
        "--dir",
        &s(&dir.path().join("demo")),
        "--vdaf",
        "poplar1:16",
        "--reports",
        "400",
        "--threshold",
        "100",
        "--batch-size",
        "150",
    ]
    .map(String::from)
    .to_vec();
    args.extend(weed.keygen_flags());
    let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("OK: the list of heavy hitters matches the truth"),
        "{out}"
    );
    let prefix = divvi::batch::ROUND_STASH_PREFIX;
    for server in 0..2 {
        let own = weed.location(&format!("server{server}-own"), &format!("server{server}"));
        let own = divvi::store::open_location(&own, dir.path()).unwrap();
        let keys = own.list("").unwrap();
        let (states, others): (Vec<_>, Vec<_>) = keys.iter().partition(|k| k.starts_with(prefix));
        // Per batch: four passes (levels 3, 7, 11, 15), two rounds each.
        let batches: std::collections::BTreeSet<&str> = states
            .iter()
            .filter_map(|k| k.rsplit('/').next()?.split('.').next())
            .collect();
        assert!(batches.len() >= 3, "server {server}: {states:?}");
        assert_eq!(
            states.len(),
            batches.len() * 4 * 2,
            "server {server}: {states:?}"
        );
        assert!(
            states
                .iter()
                .all(|k| k.contains(&format!(".shares_{server}"))),
            "{states:?}"
        );
        assert!(
            !others.iter().any(|k| k.contains(".shares_")),
            "server {server}: a state outside {prefix}: {others:?}"
        );
    }
}

#[test]
fn four_intake_workers_share_the_pending_batches_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "shard-");
    let d = dir.path().join("d");
    keygen(&d, Some(&weed));
    let (input, truth) = reports(dir.path(), 4000, 8);
    ingest(&d, &input, 8, 250); // 16 batches
    for server in 0..2 {
        let config = s(&d.join(format!("server{server}.toml")));
        // Four workers at once: two told their shard, two finding it as a Kubernetes
        // Indexed Job would tell them.
        let workers: Vec<std::process::Child> = (0..4)
            .map(|i| {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_divvi"));
                cmd.args([
                    "intake",
                    "--config",
                    &config,
                    "--aggregation",
                    "s3-test",
                    "--pending",
                ]);
                if i < 2 {
                    cmd.args(["--shard", &format!("{i}/4")]);
                } else {
                    cmd.env("JOB_COMPLETION_INDEX", i.to_string())
                        .env("DIVVI_SHARD_COUNT", "4");
                }
                cmd.stdout(std::process::Stdio::piped()).spawn().unwrap()
            })
            .collect();
        let mut done = Vec::new();
        for w in workers {
            let out = w.wait_with_output().unwrap();
            // Shards are drawn from batch ids: a worker's share of 16 batches can be empty
            // (about 1 run in 100), and it then exits 3, nothing to do, writing nothing.
            let code = out.status.code();
            assert!(
                matches!(code, Some(0) | Some(3)),
                "a worker exited {code:?}"
            );
            if code == Some(3) {
                assert!(
                    out.stdout.is_empty(),
                    "nothing to do, yet it validated batches"
                );
            }
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                done.push(v["batch"].as_str().unwrap().to_string());
            }
        }
        let mut unique = done.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            (done.len(), unique.len()),
            (16, 16),
            "server {server}: every batch exactly once"
        );
        // Nothing is left for a rerun.
        assert_eq!(intake(&d, server), "");
    }
    aggregate(&d, 0);
    aggregate(&d, 1);
    let sharded = collect(&d);
    assert_eq!(sharded, truth);
    // A single worker over the same reports reaches the same result.
    let single = dir.path().join("single");
    keygen(&single, None);
    assert_eq!(run_pipeline(&single, &input, 8, 250), sharded);
}

#[test]
fn a_conditional_create_on_s3_has_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "cond-");
    let store =
        divvi::store::open_location(&weed.location("server0-own", "server0"), dir.path()).unwrap();
    let wins: Vec<bool> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..6u8)
            .map(|i| {
                let store = &store;
                scope.spawn(move || store.create_new("runs/decision", &[i; 8]).unwrap())
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().filter(|&&w| w).count(), 1, "{wins:?}");
    let winner = wins.iter().position(|&w| w).unwrap() as u8;
    assert_eq!(
        divvi::store::get_bytes(store.as_ref(), "runs/decision", 100).unwrap(),
        vec![winner; 8]
    );
    assert!(!store.create_new("runs/decision", b"later").unwrap());
}

/// Rewrites a config's location to another bucket (same endpoint and credentials).
fn with_bucket(config: &Path, location: &str, bucket: &str, out: &Path) {
    edit_config(config, out, |v| {
        let url = &mut v["locations"][location]["url"];
        let old = url.as_str().unwrap().to_string();
        let rest = old.strip_prefix("s3://").unwrap();
        let path = rest.split_once('/').map_or("", |(_, p)| p);
        *url = format!("s3://{bucket}/{path}").into();
    });
}

#[test]
fn over_s3_an_unknown_aggregation_names_the_known_ones_and_a_missing_bucket_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_weed, d, _) = ingested_over_s3(dir.path(), "skip-", 10);
    let config = s(&d.join("server0.toml"));
    let status: serde_json::Value = serde_json::from_str(&ok(&[
        "status",
        "--config",
        &config,
        "--aggregation",
        "nothing",
        "--output",
        "json",
    ]))
    .unwrap();
    let skipped = status["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["kind"] == "unknown_aggregation"
            && s["reason"]
                .as_str()
                .unwrap()
                .ends_with("known aggregations there: s3-test")),
        "{skipped:?}"
    );
    // A bucket that does not exist is no empty listing: the stage fails, naming it (S3
    // says NoSuchBucket, or AccessDenied where the credentials have no grant on it, as
    // SeaweedFS's per-bucket identities here).
    let missing = d.join("missing-bucket-server0.toml");
    with_bucket(
        &d.join("server0.toml"),
        "ingestion",
        "skip-no-such-bucket",
        &missing,
    );
    let out = divvi(&[
        "intake",
        "--config",
        &s(&missing),
        "--aggregation",
        "s3-test",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && (err.contains("NoSuchBucket") || err.contains("AccessDenied"))
            && err.contains("listing s3://skip-no-such-bucket/s3-test/"),
        "{err}"
    );
}

/// A DAP task (Prio3 histogram) through the pipeline over S3, each party with its own
/// credentials: reports sealed by `divvi client`, batches only the servers can open.
#[test]
fn a_prio3_task_goes_through_the_pipeline_over_s3() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "dap-");
    let d = dir.path().join("d");
    let mut args: Vec<String> = [
        "keygen",
        "--out",
        &s(&d),
        "--vdaf",
        "histogram:8",
        "--min-batch-size",
        "1",
        "--min-clients",
        "1",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(weed.keygen_flags());
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut rng = rand::rng();
    let mut truth = vec![0u64; 8];
    let mut lines = String::new();
    for _ in 0..300 {
        let bucket = rng.random_range(0..8usize);
        truth[bucket] += 1;
        lines.push_str(&format!("{bucket}\n"));
    }
    let (input, body) = (dir.path().join("m.jsonl"), dir.path().join("up.bin"));
    std::fs::write(&input, lines).unwrap();
    let task = s(&d.join("task.json"));
    ok(&[
        "client",
        "--task",
        &task,
        "--input",
        &s(&input),
        "--output",
        &s(&body),
    ]);
    let config = |party: &str| s(&d.join(format!("{party}.toml")));
    let ingested: serde_json::Value = serde_json::from_str(&ok(&[
        "ingest",
        "--config",
        &config("ingestor"),
        "--task",
        &task,
        "--input",
        &s(&body),
        "--batch-size",
        "100",
    ]))
    .unwrap();
    assert_eq!(ingested["batches"].as_array().unwrap().len(), 3);
    let aggregation = ingested["aggregation"].as_str().unwrap().to_string();
    for server in ["server0", "server1"] {
        ok(&[
            "intake",
            "--config",
            &config(server),
            "--aggregation",
            &aggregation,
        ]);
    }
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    let (start, end) = (format!("{day}0000"), format!("{day}2359"));
    let window = |party: &str| {
        vec![
            "--config".to_string(),
            config(party),
            "--aggregation".into(),
            aggregation.clone(),
            "--start".into(),
            start.clone(),
            "--end".into(),
            end.clone(),
        ]
    };
    for server in ["server0", "server1"] {
        let mut args = vec!["aggregate".to_string()];
        args.extend(window(server));
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let mut args = vec!["collect".to_string()];
    args.extend(window("portal"));
    let table = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let counts: Vec<u64> = table
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts, truth, "{table}");
    // Nothing went to local disk: the buckets are on the S3 server.
    assert!(!d.join("buckets").exists());
}
