//! The `divvi` binary as a user runs it: real processes, real config files, real folders.

mod common;

use common::{divvi, ok};
use std::path::Path;

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

#[test]
fn each_command_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    ok(&["keygen", "--out", p(&d), "--scheme", "ecies"]);
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
        "202611241200",
    ];
    let mut args = vec!["ingest", "--config", &ingestor];
    let csv_arg = p(&csv).to_string();
    args.extend(["--input", &csv_arg, "--batch-size", "2"]);
    args.extend(common);
    let out = ok(&args);
    assert!(out.contains("\"packets\": 3"), "{out}");
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
    let before = std::fs::read_dir(d.join("buckets/server0-ingestion/cli-test/2026/11/24/12/00"))
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
    let after = std::fs::read_dir(d.join("buckets/server0-ingestion/cli-test/2026/11/24/12/00"))
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
            "202611241200",
            "--end",
            "202611241200",
        ]);
    }
    let out = ok(&[
        "collect",
        "--config",
        &cfg("portal.toml"),
        "--aggregation",
        "cli-test",
        "--start",
        "202611241200",
        "--end",
        "202611241200",
    ]);
    // Truth: 1001 + 0100 + 0110 + 0001 + 0000 + 1111 = 2 3 2 3
    let counts: Vec<&str> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(counts, ["2", "3", "2", "3"], "{out}");
    let json = std::fs::read_to_string(
        d.join("buckets/portal-results/cli-test/202611241200-202611241200.result.json"),
    )
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
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--packets",
        "300",
        "--bins",
        "4",
        "--scheme",
        "hpke",
        "--output",
        "json",
        "--dir",
        p(&dir.path().join("b")),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["packets"], 300);
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
        assert!(s["packets_per_second"].as_f64().unwrap() > 0.0, "{s}");
    }
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
}
