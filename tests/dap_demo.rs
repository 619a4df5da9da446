//! `divvi demo --vdaf`: every VDAF through the whole pipeline as a user runs it, its
//! printed result beside its printed truth, and the demo failing when they differ.

mod common;

use common::divvi;
use common::seaweed::Seaweed;
use std::path::Path;

/// Runs `divvi demo` in a fresh folder with a few hundred reports.
fn demo(dir: &Path, extra: &[&str]) -> std::process::Output {
    let d = dir.join("demo");
    let mut args = vec![
        "demo",
        "--dir",
        d.to_str().unwrap(),
        "--reports",
        "300",
        "--batch-size",
        "120",
    ];
    args.extend(extra);
    divvi(&args)
}

/// The demo of `vdaf` with `extra` arguments must pass; returns its standard output.
fn passing_demo_with(vdaf: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--vdaf", vdaf];
    args.extend(extra);
    let out = demo(dir.path(), &args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{vdaf}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("matches the truth"), "{vdaf}: {text}");
    assert!(
        text.contains("invalid found 6 (spoiled 6)"),
        "{vdaf}: {text}"
    );
    text
}

/// The printed (result, truth) pairs: a table's rows, or the one `result X, truth Y` line.
fn results_and_truths(out: &str) -> Vec<(u128, u128)> {
    let num = |s: &str| s.trim_matches(',').parse::<u128>().unwrap();
    let mut lines = out.lines();
    let mut pairs = Vec::new();
    if let Some(line) = out.lines().find(|l| l.contains(": result ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        pairs.push((num(words[2]), num(words[4])));
        return pairs;
    }
    lines
        .by_ref()
        .find(|l| l.split_whitespace().skip(1).eq(["result", "truth"]))
        .expect("a result table");
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        pairs.push((num(words[1]), num(words[2])));
    }
    pairs
}

/// The demo passes and every printed result equals the printed truth, with `rows` rows.
fn check(vdaf: &str, rows: usize) -> String {
    check_with(vdaf, rows, &[])
}

/// As [`check`], with `extra` arguments.
fn check_with(vdaf: &str, rows: usize, extra: &[&str]) -> String {
    let out = passing_demo_with(vdaf, extra);
    let pairs = results_and_truths(&out);
    assert_eq!(pairs.len(), rows, "{vdaf}: {out}");
    assert!(pairs.iter().all(|(r, t)| r == t), "{vdaf}: {out}");
    assert!(pairs.iter().any(|&(r, _)| r > 0), "{vdaf}: {out}");
    out
}

#[test]
fn count() {
    check("count", 1);
}

#[test]
fn sum() {
    check("sum:1000", 1);
}

#[test]
fn sumvec() {
    check("sumvec:3:7", 3);
}

#[test]
fn histogram_lists_each_spoiled_report_with_its_reason() {
    let out = check("histogram:8", 8);
    assert!(
        out.contains("DAP-18, reports sealed by the client library"),
        "{out}"
    );
    for reason in [
        "left out at intake",
        "no peer validation",
        "outside the window",
        "already seen",
    ] {
        assert!(out.contains(reason), "{reason}: {out}");
    }
}

#[test]
fn multihot() {
    check("multihot:6:2", 6);
}

/// DAP-09, as deployed clients speak it: VDAF-08 through the same pipeline.
#[test]
fn dap09_tasks_run_with_vdaf08() {
    for (vdaf, rows) in [("histogram:8", 8), ("sum:1023", 1), ("count", 1)] {
        let out = check_with(vdaf, rows, &["--dap-version", "09"]);
        assert!(
            out.contains("DAP-09, reports sealed by the client library"),
            "{out}"
        );
    }
    // VDAF-08 bounds sums by bits, and has no multihot.
    let dir = tempfile::tempdir().unwrap();
    for (vdaf, says) in [
        ("sum:1000", "2^bits - 1"),
        ("multihot:6:2", "not a VDAF-08"),
    ] {
        let out = demo(dir.path(), &["--vdaf", vdaf, "--dap-version", "09"]);
        assert!(!out.status.success(), "{vdaf}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{vdaf}: {stderr}");
    }
}

/// A heavy-hitters demo of 2,000 poplar1:32 strings that passed: its heavy hitters are
/// the true ones with their counts, and the spoiled reports were found. Its output.
fn passing_heavy_demo(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("OK: the list of heavy hitters matches the truth"),
        "{text}"
    );
    assert!(text.contains("invalid found 6 (spoiled 6)"), "{text}");
    let pairs = results_and_truths(&text);
    // w0 (about 13%) and w1 (about 7%) reach the threshold of 100 reports.
    assert!(pairs.len() >= 2, "{text}");
    assert!(pairs.iter().all(|(r, t)| r == t && *r >= 100), "{text}");
    text
}

/// Heavy hitters: the whole traversal through the buckets, each pass asked by the portal
/// and run by both servers; the strings found are the true ones, with their counts.
#[test]
fn poplar1_finds_the_true_heavy_hitters_through_the_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let out = divvi(&[
        "demo",
        "--dir",
        d.to_str().unwrap(),
        "--vdaf",
        "poplar1:32",
        "--reports",
        "2000",
        "--batch-size",
        "700",
    ]);
    let text = passing_heavy_demo(&out);
    assert!(text.contains("pass 7 (level 31"), "{text}");
    for reason in ["round 1", "round 2", "outside the window", "a duplicate"] {
        assert!(text.contains(reason), "{reason}: {text}");
    }
}

#[test]
fn prio2_runs_the_enpa_pipeline() {
    let out = check("prio2:8", 8);
    assert!(out.contains("ENPA, ecies packets"), "{out}");
}

#[test]
fn bins_is_the_prio2_shorthand_and_refused_beside_vdaf() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), &["--bins", "4", "--scheme", "hpke"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("of prio2:4 (ENPA, hpke packets)"), "{text}");

    let out = demo(dir.path(), &["--bins", "4", "--vdaf", "count"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn scheme_and_bad_vdafs_are_refused_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["--vdaf", "count", "--scheme", "hpke"], "--scheme"),
        (vec!["--vdaf", "prio2:0"], "BINS must be a positive"),
        (vec!["--vdaf", "prio3"], "prio2:BINS"),
        (vec!["--vdaf", "count", "--invalid", "300"], "spoil fewer"),
    ] {
        let out = demo(dir.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Prio3Sum adds in a 64-bit field: 300 reports of up to 2^62 pass its modulus, so the
/// collected sum wraps and is not the true one. The demo must say so and fail.
#[test]
fn a_result_that_differs_from_the_truth_fails_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(
        dir.path(),
        &["--vdaf", "sum:4611686018427387904", "--invalid", "0"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("<-- differs"), "{text}");
    assert!(
        text.contains("FAILED: the sum or the invalid count differs from the truth"),
        "{text}"
    );
    let (result, truth) = results_and_truths(&text)[0];
    assert!(result < truth, "{text}");
}

/// On S3 the demos of both pipelines run, and a DAP demo again on buckets an earlier
/// one used: each task's reports are aggregated under its own task id.
#[test]
fn demos_on_an_s3_endpoint_share_its_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&dir.path().join("weed"), "demos-");
    for (run, vdaf) in [
        ("enpa", "prio2:4"),
        ("dap", "histogram:4"),
        ("again", "histogram:4"),
    ] {
        let mut args = vec!["--vdaf".to_string(), vdaf.into()];
        args.extend(weed.keygen_flags());
        let out = demo(
            &dir.path().join(run),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{run}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("OK: the histogram matches the truth"),
            "{run}: {text}"
        );
    }
}

/// The passes a heavy-hitters demo's record has timed so far.
fn recorded_passes(record: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(record) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    json["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["stage"].as_str())
        .filter(|s| s.starts_with("pass "))
        .map(str::to_string)
        .collect()
}

/// A heavy-hitters demo killed during its traversal finishes with `--resume`: the record
/// in its folder keeps the truth and the passes timed so far, the traversal goes on from
/// where it stands, and the answer is judged against the first run's truth (a record
/// whose truth is changed fails).
#[test]
fn a_killed_heavy_hitters_demo_finishes_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let record = d.join("heavy-demo.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(["demo", "--dir", d.to_str().unwrap(), "--vdaf", "poplar1:32"])
        .args(["--reports", "2000", "--batch-size", "700"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while recorded_passes(&record).len() < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early");
        assert!(
            std::time::Instant::now() < deadline,
            "no two passes in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = recorded_passes(&record);
    assert!(
        !before.iter().any(|p| p.starts_with("pass 7 ")),
        "{before:?}"
    );

    // A copy of the stopped folder whose truth says one more report of the commonest
    // string: the same traversal must then fail the comparison.
    let tampered = dir.path().join("tampered");
    assert!(std::process::Command::new("cp")
        .args(["-a", d.to_str().unwrap(), tampered.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    let path = tampered.join("heavy-demo.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let strings = json["strings"].as_object_mut().unwrap();
    let commonest = strings
        .iter()
        .max_by_key(|(_, c)| c.as_u64())
        .map(|(s, _)| s.clone())
        .unwrap();
    let count = strings[&commonest].as_u64().unwrap();
    strings.insert(commonest, (count + 1).into());
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();

    let out = divvi(&["demo", "--resume", d.to_str().unwrap()]);
    let text = passing_heavy_demo(&out);
    // The summary keeps the stages timed before the kill and adds the rest.
    let after = recorded_passes(&record);
    assert_eq!(after[..before.len()], before[..], "{after:?}");
    assert!(
        after.iter().any(|p| p.starts_with("pass 7 (level 31")),
        "{after:?}"
    );
    assert!(
        text.contains("client") && text.contains("pass 7 (level 31"),
        "{text}"
    );

    let out = divvi(&["demo", "--resume", tampered.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("<-- differs") && text.contains("FAILED"),
        "{text}"
    );

    // Nothing to resume, and a resume that is also asked for a new demo's settings.
    let out = divvi(&["demo", "--resume", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("heavy-demo.json") && err.contains("--resume"),
        "{err}"
    );
    let out = divvi(&["demo", "--resume", d.to_str().unwrap(), "--reports", "5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
