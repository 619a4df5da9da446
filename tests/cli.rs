//! The `divvi` binary as a user runs it: real processes, real config files, real folders.

mod common;

use common::{divvi, ok, test_time};
use std::path::Path;

/// The test time as the folders of a batch's objects (`YYYY/mm/dd/HH/MM`).
fn date_path() -> String {
    let t = test_time();
    format!(
        "{}/{}/{}/{}/{}",
        &t[..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..]
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn demo_prints_a_matching_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let out = ok(&[
        "demo",
        "--dir",
        p(&d),
        "--reports",
        "3000",
        "--batch-size",
        "1000",
    ]);
    assert!(out.contains("OK: the histogram matches the truth"), "{out}");
    assert!(
        out.contains("intake 0") && out.contains("aggregate 1"),
        "{out}"
    );
}

/// `keygen` of an ECIES (ENPA) deployment in `dir/deploy`, any batch size allowed.
fn ecies_deployment(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("deploy");
    ok(&[
        "keygen",
        "--out",
        p(&d),
        "--scheme",
        "ecies",
        "--min-clients",
        "1",
    ]);
    d
}

#[test]
fn each_command_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let d = ecies_deployment(dir.path());
    let cfg = |name: &str| d.join(name).display().to_string();
    let ingestor = cfg("ingestor.toml");

    // Two report files: a CSV of 0/1 vectors and JSON lines of set indices.
    let csv = dir.path().join("a.csv");
    std::fs::write(&csv, "# bins: 4\n1,0,0,1\n0,1,0,0\n\n0,1,1,0\n").unwrap();
    let jsonl = dir.path().join("b.jsonl");
    std::fs::write(&jsonl, "[3]\n[]\n[0,1,2,3]\n").unwrap();
    let common = [
        "--aggregation",
        "cli-test",
        "--bins",
        "4",
        "--time",
        test_time(),
    ];
    let mut args = vec!["ingest", "--config", &ingestor];
    let csv_arg = p(&csv).to_string();
    args.extend(["--input", &csv_arg, "--batch-size", "2"]);
    args.extend(common);
    let out = ok(&args);
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["packets"], 3, "{out}");
    let mut args = vec![
        "ingest",
        "--config",
        &ingestor,
        "--input",
        p(&jsonl),
        "--form",
        "indices",
    ];
    args.extend(common);
    ok(&args);

    // A report that is not 0/1 is refused, naming file and line, and nothing is written.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1,0,0,0\n0,2,0,0\n").unwrap();
    let before = std::fs::read_dir(
        d.join("buckets/server0-ingestion/cli-test")
            .join(date_path()),
    )
    .unwrap()
    .count();
    let mut args = vec!["ingest", "--config", &ingestor, "--input", p(&bad)];
    args.extend(common);
    let out = divvi(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:2") && err.contains("not 0 or 1"),
        "{err}"
    );
    let after = std::fs::read_dir(
        d.join("buckets/server0-ingestion/cli-test")
            .join(date_path()),
    )
    .unwrap()
    .count();
    assert_eq!(before, after, "a refused input leaves no objects");

    for server in ["server0.toml", "server1.toml"] {
        let out = ok(&[
            "intake",
            "--config",
            &cfg(server),
            "--aggregation",
            "cli-test",
        ]);
        assert_eq!(out.lines().count(), 3, "three batches: {out}");
    }
    for server in ["server0.toml", "server1.toml"] {
        ok(&[
            "aggregate",
            "--config",
            &cfg(server),
            "--aggregation",
            "cli-test",
            "--start",
            test_time(),
            "--end",
            test_time(),
        ]);
    }
    let out = ok(&[
        "collect",
        "--config",
        &cfg("portal.toml"),
        "--aggregation",
        "cli-test",
        "--start",
        test_time(),
        "--end",
        test_time(),
    ]);
    // Truth: 1001 + 0100 + 0110 + 0001 + 0000 + 1111 = 2 3 2 3
    let counts: Vec<&str> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(counts, ["2", "3", "2", "3"], "{out}");
    let json = std::fs::read_to_string(d.join(format!(
        "buckets/portal-results/cli-test/{t}-{t}.result.json",
        t = test_time()
    )))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["histogram"], serde_json::json!([2, 3, 2, 3]));
    assert_eq!(v["total_individual_clients"], 6);

    // inspect: a validation batch's signature, checked with server 1's trust.
    let inbox = d.join("buckets/server1-peer-inbox");
    let sig = walk(&inbox)
        .into_iter()
        .find(|f| f.to_string_lossy().ends_with(".validity_0.sig"))
        .unwrap();
    let out = ok(&["inspect", p(&sig), "--config", &cfg("server1.toml")]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signature"]["verdict"], "valid", "{out}");
    assert_eq!(v["digest"]["verdict"], "matches", "{out}");
    assert_eq!(v["header"]["name"], "cli-test");
    // Without keys the signature is reported unchecked, not valid.
    let out = ok(&["inspect", p(&sig)]);
    assert!(out.contains("not checked"), "{out}");
}

/// On a terminal, ingest draws a bar whose total is the file's number of reports (it
/// once read "512/0"). Run under `script`, which gives the command a pseudo-terminal.
#[test]
fn ingest_on_a_terminal_shows_the_files_real_total() {
    let dir = tempfile::tempdir().unwrap();
    let d = ecies_deployment(dir.path());
    let input = dir.path().join("reports.csv");
    let mut text = String::from("# bins: 2\n");
    for i in 0..5000 {
        text.push_str(if i % 2 == 0 { "1,0\n" } else { "0,1\n" });
    }
    std::fs::write(&input, text).unwrap();
    let command = format!(
        "{} ingest --config {} --input {} --aggregation tty --bins 2 --time {}",
        env!("CARGO_BIN_EXE_divvi"),
        p(&d.join("ingestor.toml")),
        p(&input),
        test_time()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}");
    assert!(terminal.contains("/5000 reports"), "{terminal}");
    assert!(!terminal.contains("/0 "), "{terminal}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn bench_reports_every_stage_as_json() {
    // ENPA packets over 4 bins, and a DAP task's Prio3 reports made by the client library.
    for (what, vdaf, scheme) in [
        (&["--bins", "4", "--scheme", "hpke"][..], "prio2:4", "hpke"),
        (&["--vdaf", "histogram:4"][..], "histogram:4:2", "null"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("b");
        let mut args = vec!["bench", "--packets", "300"];
        args.extend(what);
        args.extend(["--repeat", "3", "--output", "json", "--dir", p(&b)]);
        let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        assert_eq!(v["packets"], 300);
        assert_eq!(v["vdaf"], vdaf, "{v}");
        assert_eq!(v["scheme"].to_string().trim_matches('"'), scheme, "{v}");
        let stages: Vec<&str> = v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        assert_eq!(
            stages,
            ["intake 0", "intake 1", "aggregate 0", "aggregate 1"]
        );
        for s in v["stages"].as_array().unwrap() {
            let rate = |key: &str| s[key].as_f64().unwrap();
            assert!(rate("packets_per_second") > 0.0, "{s}");
            // Three runs, the median reported inside their range.
            assert_eq!(s["runs"], 3, "{s}");
            assert!(
                rate("packets_per_second_min") <= rate("packets_per_second")
                    && rate("packets_per_second") <= rate("packets_per_second_max"),
                "{s}"
            );
            // Intake is measured against its floors (timed around the run with the other
            // cores idle and with every core busy, and inside the run); aggregate has
            // none. Each share is the rate times the floor over the cores.
            let cores = v["cores"].as_f64().unwrap();
            let floors = [
                ("floor_us", "of_floor_percent"),
                ("busy_floor_us", "of_busy_floor_percent"),
                ("in_run_floor_us", "of_in_run_floor_percent"),
            ];
            for (floor, share) in floors {
                if s["stage"].as_str().unwrap().starts_with("intake") {
                    let expected = rate("packets_per_second") * rate(floor) / 1e4 / cores;
                    assert!(rate(floor) > 0.0, "{s}");
                    assert!((rate(share) - expected).abs() < 1e-6, "{s}");
                    // The in-run floor is CPU time the run spent: its share of the cores
                    // cannot exceed the whole process's CPU over the same wall time.
                    if floor == "in_run_floor_us" {
                        assert!(rate(share) * cores <= rate("cpu_percent") + 1.0, "{s}");
                    }
                } else {
                    assert!(s[floor].is_null() && s[share].is_null(), "{s}");
                }
            }
        }
    }
}

#[test]
fn bench_refuses_an_enpa_scheme_for_a_dap_task() {
    let out = divvi(&[
        "bench",
        "--packets",
        "10",
        "--vdaf",
        "count",
        "--scheme",
        "hpke",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--scheme sets ENPA packet encryption"),
        "{err}"
    );
}

#[test]
fn the_upload_bench_reports_acknowledged_uploads_and_the_journal_commits() {
    let out = divvi(&[
        "bench",
        "--upload",
        "--vdaf",
        "count",
        "--packets",
        "50",
        "--clients",
        "4",
        "--seconds",
        "1",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let uploads = r["uploads"].as_u64().unwrap();
    assert!(uploads > 0, "{r}");
    // Every acknowledgement waited for a commit; a commit serves one upload or more.
    let per_commit = r["uploads_per_commit"].as_f64().unwrap();
    assert!(per_commit >= 1.0, "{r}");
    assert!(r["commits_per_second"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["latency_p50_ms"].as_f64().unwrap() <= r["latency_p99_ms"].as_f64().unwrap());
    assert!(r["disk_fsyncs_per_second"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn the_upload_bench_needs_a_dap_task() {
    let out = divvi(&["bench", "--upload", "--vdaf", "prio2:4", "--seconds", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--upload measures DAP uploads"), "{err}");
}

#[test]
fn the_readme_server_config_example_parses() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("README has a toml example") + 8;
    let end = start + readme[start..].find("```").unwrap();
    let config: divvi::config::ServerConfig = toml::from_str(&readme[start..end]).unwrap();
    assert!(config.stash_key.is_some());
    assert_eq!(config.packet_keys.len(), 1);
    assert_eq!(config.limits, divvi::config::Limits::default());
}

#[test]
fn an_incomplete_batch_is_waited_for_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    ok(&["keygen", "--out", p(&d), "--min-clients", "1"]);
    let input = dir.path().join("r.csv");
    std::fs::write(&input, "1,0\n0,1\n").unwrap();
    let ingestor = d.join("ingestor.toml");
    ok(&[
        "ingest",
        "--config",
        p(&ingestor),
        "--input",
        p(&input),
        "--aggregation",
        "late",
        "--bins",
        "2",
        "--time",
        test_time(),
    ]);
    // The ingestor has not written the signature yet: the batch is incomplete.
    let folder = d.join("buckets/server0-ingestion/late").join(date_path());
    let sig = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".batch.sig"))
        .unwrap();
    let held = std::fs::read(&sig).unwrap();
    std::fs::remove_file(&sig).unwrap();
    let server = d.join("server0.toml");
    let run = |after: &str| {
        divvi(&[
            "intake",
            "--config",
            p(&server),
            "--aggregation",
            "late",
            "--incomplete-after",
            after,
        ])
    };
    let out = run("2h");
    assert!(
        out.status.code() == Some(4) && out.stdout.is_empty(),
        "nothing to do yet: waiting for the ingestor to finish the batch (exit code 4)"
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("\"overdue\":false") && summary.contains(".batch.sig"),
        "{summary}"
    );
    // Past the limit it is reported as overdue (a warning in the log, and the summary).
    let out = run("0m");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("still incomplete") && log.contains("\"overdue\":true"),
        "{log}"
    );
    // Once the signature lands, the batch is taken.
    std::fs::write(&sig, held).unwrap();
    let out = run("2h");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn check_loads_each_config_with_its_keys_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    ok(&["keygen", "--out", p(&d), "--s3-region", "us-west-2"]);
    let cfg = |name: &str| d.join(name).display().to_string();

    let server = ok(&["check", "--config", &cfg("server1.toml")]);
    for line in [
        "server 1 config",
        "signing key  server1-signing",
        "packet keys  server1-packet",
        "peer         server0-signing",
        "peer_outbox  s3://divvi-server0-peer-inbox/",
    ] {
        assert!(server.contains(line), "{line:?} not in:\n{server}");
    }
    let portal = ok(&["check", "--config", &cfg("portal.toml"), "--as", "portal"]);
    assert!(portal.contains("trusts server0-signing"), "{portal}");
    let ingestor = ok(&[
        "check",
        "--config",
        &cfg("ingestor.toml"),
        "--as",
        "ingestor",
    ]);
    assert!(ingestor.contains("packet key server1-packet"), "{ingestor}");

    // A key file the Secret lacks, and a trusted key that is not a key: both named.
    std::fs::remove_file(d.join("keys/server0-stash.key")).unwrap();
    let out = divvi(&["check", "--config", &cfg("server0.toml")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("server0-stash.key"),
        "{err}"
    );
    let text = std::fs::read_to_string(d.join("server1.toml")).unwrap();
    let broken = text.replacen("public_key = \"MFkw", "public_key = \"XFkw", 1);
    assert_ne!(text, broken);
    std::fs::write(d.join("server1.toml"), broken).unwrap();
    let out = divvi(&["check", "--config", &cfg("server1.toml")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("server1.toml"),
        "{err}"
    );
    // The wrong party's config is refused by its parser, naming the file.
    let out = divvi(&["check", "--config", &cfg("portal.toml")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("portal.toml"),
        "{err}"
    );
}

/// Starts `divvi` with its output captured.
fn spawn_divvi(args: &[&str], stdin: std::process::Stdio) -> std::process::Child {
    use std::process::{Command, Stdio};
    Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `divvi`, failing the test (instead of hanging it) if it has not ended in 60 s.
fn divvi_within_a_minute(args: &[&str]) -> std::process::Output {
    let mut child = spawn_divvi(args, std::process::Stdio::null());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("divvi {args:?} blocked for a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.unwrap().success(), "mkfifo {}", path.display());
}

/// A fresh deployment (local folders, HPKE) in `dir`/deploy; returns that folder.
fn keygen_into(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("deploy");
    ok(&["keygen", "--out", p(&d)]);
    d
}

/// A deployment holding one ingestion batch; returns its header's path in server 0's
/// ingestion folder.
fn one_batch(dir: &Path) -> std::path::PathBuf {
    let d = keygen_into(dir);
    let input = dir.join("r.csv");
    std::fs::write(&input, "1,0\n0,1\n").unwrap();
    let ingestor = d.join("ingestor.toml");
    let mut args = vec!["ingest", "--config", p(&ingestor), "--input", p(&input)];
    args.extend(["--aggregation", "bounded", "--bins", "2"]);
    ok(&args);
    walk(&d.join("buckets/server0-ingestion"))
        .into_iter()
        .find(|f| f.to_string_lossy().ends_with(".batch"))
        .unwrap()
}

/// A copy of `from` at `to`, grown (sparse) to `len` bytes.
fn grown_copy(from: &Path, to: &Path, len: u64) {
    std::fs::copy(from, to).unwrap();
    std::fs::File::options()
        .write(true)
        .open(to)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// How inspect refuses `path`, one byte over its cap.
fn one_byte_too_many(path: &Path, what: &str, cap: u64) -> String {
    let size = cap + 1;
    let path = path.display();
    format!("{path} ({what}) is {size} bytes, over the inspect limit of {cap} bytes")
}

fn inspect_json(file: &Path) -> serde_json::Value {
    let out = divvi_within_a_minute(&["inspect", p(file)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap()
}

fn inspect_error(file: &Path) -> String {
    let out = divvi_within_a_minute(&["inspect", p(file)]);
    assert!(
        !out.status.success(),
        "inspect {} succeeded",
        file.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn inspect_refuses_what_is_not_a_regular_file_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.batch");
    mkfifo(&fifo);
    let socket = dir.path().join("x.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let link = dir.path().join("link.batch");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    for (file, kind) in [
        (fifo.as_path(), "is a FIFO"),
        (link.as_path(), "is a FIFO"),
        (socket.as_path(), "is a socket"),
        (dir.path(), "is a directory"),
        (Path::new("/dev/null"), "is a character device"),
    ] {
        let err = inspect_error(file);
        assert!(
            err.contains(&file.display().to_string()) && err.contains(kind),
            "{kind}: {err}"
        );
    }
}

#[test]
fn inspect_caps_what_it_reads_of_a_file_and_of_its_neighbours() {
    use divvi::batch::MAX_HEADER_BYTES;
    use divvi::inspect::MAX_PACKET_FILE_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let header = one_batch(dir.path());
    let packets = header.with_extension("batch.avro");
    let sig = header.with_extension("batch.sig");
    let here = |name: &str| dir.path().join(name);

    // The file named: a header over the header cap, a packet file over the packet cap.
    let named = [
        (
            &header,
            "big.batch",
            MAX_HEADER_BYTES,
            "a PrioIngestionHeader file",
        ),
        (
            &packets,
            "big.batch.avro",
            MAX_PACKET_FILE_BYTES,
            "a PrioDataSharePacket file",
        ),
    ];
    for (real, name, cap, what) in named {
        grown_copy(real, &here(name), cap + 1);
        let err = inspect_error(&here(name));
        assert!(
            err.contains(&one_byte_too_many(&here(name), what, cap)),
            "{err}"
        );
    }
    // Neighbours a signature or header opens itself: its header, its packet file.
    std::fs::copy(&sig, here("n.batch.sig")).unwrap();
    std::fs::copy(&header, here("m.batch")).unwrap();
    let neighbours = [
        (
            "n.batch.sig",
            "n.batch",
            "signature",
            &header,
            MAX_HEADER_BYTES,
            "a batch header",
        ),
        (
            "m.batch",
            "m.batch.avro",
            "digest",
            &packets,
            MAX_PACKET_FILE_BYTES,
            "a packet file",
        ),
    ];
    for (file, neighbour, section, real, cap, what) in neighbours {
        let reason = |v: &serde_json::Value| v[section]["reason"].to_string();
        // A FIFO: refused by its type, without blocking.
        mkfifo(&here(neighbour));
        let v = inspect_json(&here(file));
        let fifo = format!("{} is a FIFO", here(neighbour).display());
        assert!(reason(&v).contains(&fifo), "{v}");
        // A copy of the real one grown past its cap: refused by its size.
        std::fs::remove_file(here(neighbour)).unwrap();
        grown_copy(real, &here(neighbour), cap + 1);
        let v = inspect_json(&here(file));
        let refusal = one_byte_too_many(&here(neighbour), what, cap);
        assert!(reason(&v).contains(&refusal), "{v}");
    }
    // The real batch still inspects whole, its digest checked.
    assert_eq!(inspect_json(&header)["digest"]["verdict"], "matches");
}

/// Runs `divvi ingest` with `stdin` as its standard input; returns how many packets it wrote.
fn ingest_packets(args: &[&str], stdin: &str) -> u64 {
    use std::io::Write;
    let mut child = spawn_divvi(args, std::process::Stdio::piped());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "divvi {args:?}: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["packets"].as_u64().unwrap()
}

#[test]
fn ingest_counts_an_empty_csv_indices_line_as_a_report_and_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = keygen_into(dir.path());
    let ingestor = d.join("ingestor.toml");
    let csv = dir.path().join("r.csv");
    // Three reports: bin 0, none, bin 2; the comment is skipped.
    std::fs::write(&csv, "# indices\n0\n\n2\n").unwrap();
    let common = [
        "--config",
        p(&ingestor),
        "--aggregation",
        "stdin",
        "--bins",
        "3",
    ];
    let mut args = vec!["ingest", "--input", p(&csv), "--form", "indices"];
    args.extend(common);
    assert_eq!(ingest_packets(&args, ""), 3);
    // The same reports on standard input.
    let mut args = vec![
        "ingest", "--input", "-", "--format", "csv", "--form", "indices",
    ];
    args.extend(common);
    assert_eq!(ingest_packets(&args, "# indices\n0\n\n2\n"), 3);
    let mut args = vec!["ingest", "--input", "-", "--format", "jsonl"];
    args.extend(common);
    assert_eq!(ingest_packets(&args, "[1,0,1]\n"), 1);
}

#[test]
fn a_stage_removes_stale_temporary_files_and_keeps_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = keygen_into(dir.path());
    // As a killed intake leaves them, in the folder of the object it was writing.
    let folder = d.join("buckets/server0-own/killed/2026/12/03/10/00");
    std::fs::create_dir_all(&folder).unwrap();
    let old = folder.join(".divvi-tmp-0123456789abcdef");
    let fresh = folder.join(".divvi-tmp-fedcba9876543210");
    for file in [&old, &fresh] {
        std::fs::write(file, b"half an object").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let planted = std::fs::File::options().write(true).open(&old).unwrap();
    planted.set_modified(two_hours_ago).unwrap();
    drop(planted);
    let out = divvi(&[
        "intake",
        "--config",
        p(&d.join("server0.toml")),
        "--aggregation",
        "killed",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "nothing to do: {log}");
    assert!(!old.exists(), "the stale temporary file is removed");
    assert!(fresh.exists(), "a fresh one may be a live write: kept");
    assert!(
        log.contains("removed stale temporary files") && log.contains("\"removed\":1"),
        "{log}"
    );
}

/// Runs `divvi` with extra environment variables; returns its exit code and stderr.
fn exit_code(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

/// Done, failed, usage, nothing to do and waiting each have an exit code; a scheduler
/// mode folds the two idle ones into 0.
#[test]
fn exit_codes_tell_done_failed_nothing_to_do_and_waiting_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    ok(&["keygen", "--out", p(&d), "--min-clients", "1"]);
    let cfg = |name: &str| d.join(name).display().to_string();
    let (server0, server1) = (cfg("server0.toml"), cfg("server1.toml"));
    let idle = ["--aggregation", "codes"];
    let scheduler = [("DIVVI_EXIT_CODES", "scheduler")];

    // Nothing ingested: nothing to do.
    let intake0 = ["intake", "--config", &server0, idle[0], idle[1]];
    assert_eq!(exit_code(&intake0, &[]).0, 3);
    assert_eq!(exit_code(&intake0, &scheduler).0, 0);

    // A batch validated by server 0 only: server 1's explicit run waits for the manifest,
    // server 0's for server 1's validation.
    let input = dir.path().join("reports.csv");
    std::fs::write(&input, "1,0\n0,1\n").unwrap();
    let t = test_time();
    ok(&[
        "ingest",
        "--config",
        &cfg("ingestor.toml"),
        "--input",
        p(&input),
        "--aggregation",
        "codes",
        "--bins",
        "2",
        "--time",
        t,
    ]);
    let (code, stderr) = exit_code(&intake0, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("\"outcome\":\"done\""), "{stderr}");
    let window = ["--start", t, "--end", t];
    for server in [&server0, &server1] {
        let mut args = vec!["aggregate", "--config", server.as_str(), idle[0], idle[1]];
        args.extend(window);
        let (code, stderr) = exit_code(&args, &[]);
        assert_eq!(code, 4, "{server}: {stderr}");
        assert_eq!(exit_code(&args, &scheduler).0, 0);
    }
    // Collect before any sum part is written waits for it, naming the part and, while
    // nothing was ever written there, the missing location (a mistyped path would
    // otherwise wait unexplained).
    let portal = cfg("portal.toml");
    let mut collect = vec!["collect", "--config", portal.as_str(), idle[0], idle[1]];
    collect.extend(window);
    let (code, stderr) = exit_code(&collect, &[]);
    assert!(
        code == 4
            && stderr.contains("waiting")
            && stderr.contains("server 0's sum_parts location")
            && stderr.contains("does not exist"),
        "{code}: {stderr}"
    );
    assert_eq!(exit_code(&collect, &scheduler).0, 0);
    std::fs::create_dir_all(d.join("buckets/server0-sum-parts")).unwrap();
    let (code, stderr) = exit_code(&collect, &[]);
    assert!(
        code == 4 && stderr.contains("server 0 has not summed this window"),
        "{code}: {stderr}"
    );
    // A config that does not load: a usage error.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "server_index = 7\n").unwrap();
    let (code, stderr) = exit_code(&["intake", "--config", p(&broken), idle[0], idle[1]], &[]);
    assert_eq!(code, 2, "{stderr}");
    // A failed job: a batch that is not Avro.
    let sig = d.join("buckets/server1-ingestion/codes").join(date_path());
    let header = std::fs::read_dir(&sig)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "batch"))
        .unwrap();
    std::fs::write(&header, b"not avro").unwrap();
    let intake1 = ["intake", "--config", &server1, idle[0], idle[1]];
    assert_eq!(exit_code(&intake1, &[]).0, 1);
    assert_eq!(
        exit_code(&intake1, &scheduler).0,
        1,
        "a failure stays a failure"
    );

    let help = ok(&["--help"]);
    assert!(
        help.contains("Exit codes:") && help.contains("4  waiting"),
        "{help}"
    );
}

#[test]
fn a_window_over_31_days_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen_into(dir.path());
    let config = |name: &str| keys.join(name).to_str().unwrap().to_string();
    let (server, portal) = (config("server0.toml"), config("portal.toml"));
    for (command, config) in [("aggregate", &server), ("collect", &portal)] {
        let args = |force: bool| {
            let mut args = vec![command, "--config", config, "--aggregation", "long"];
            args.extend(["--start", "202601010000", "--end", "202602020000"]);
            args.extend(force.then_some("--force"));
            divvi(&args)
        };
        let refused = args(false);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success()
                && err.contains("spans 32 days, over the bound of 31 days")
                && err.contains("pass --force"),
            "{command}: {err}"
        );
        let forced = args(true);
        let err = String::from_utf8_lossy(&forced.stderr);
        assert!(!err.contains("over the bound"), "{command} --force: {err}");
    }
}

/// `divvi completions bash` is a script bash loads, completing every command; `divvi man`
/// writes a page per command that groff renders with its flags.
#[test]
fn completions_load_in_bash_and_man_pages_render() {
    let script = ok(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("divvi.bash");
    std::fs::write(&path, script).unwrap();
    // Load it, then ask bash for the words it offers after `divvi col`.
    let probe = format!(
        "source {}; COMP_WORDS=(divvi col); COMP_CWORD=1; COMP_LINE='divvi col'; COMP_POINT=9; \
         _divvi divvi col divvi; echo \"${{COMPREPLY[@]}}\"; complete -p divvi",
        path.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .any(|w| w == "collect"),
        "{text}"
    );
    assert!(
        text.contains("complete") && text.contains("divvi"),
        "{text}"
    );

    let pages = dir.path().join("man");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["man", "--out", pages.to_str().unwrap()])).unwrap();
    let names: Vec<&str> = listed["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for page in [
        "divvi.1",
        "divvi-collect.1",
        "divvi-intake.1",
        "divvi-man.1",
    ] {
        assert!(names.contains(&page), "{page} missing: {names:?}");
    }
    let rendered = std::process::Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou"])
        .arg(pages.join("divvi-collect.1"))
        .output()
        .expect("groff (scripts/test.sh installs groff-base)");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success());
    for flag in ["--pending", "--output", "--clamp", "--heavy-hitters"] {
        assert!(text.contains(flag), "{flag} not in the page: {text}");
    }
}
