//! VDAF-18 test vectors shipped inside prio 0.18.1, run through divvi's own `VdafConfig`
//! dispatch and byte-level steps (`divvi::dap::Prio3Vdaf`), and VDAF-08's shipped inside
//! prio 0.16.8 (DAP-09 tasks), run through the pipeline's own halves
//! (`divvi::dap::TaskAggregator`). The vectors are read from the prio packages in the
//! cargo registry (found with `cargo metadata`), not copied here.
//!
//! Sharding is not checked against the vectors: prio's public `Client::shard` draws its
//! randomness from the OS, and the vectors' fixed `rand` can only be injected through
//! prio's test-only API. Everything from verify_init on is checked byte for byte.

#[allow(dead_code)]
mod dap_common;

use divvi::dap::poplar1::{Pass, Poplar1Vdaf};
use divvi::dap::prio3::{Prio3Vdaf08, VdafStepError};
use divvi::dap::{DapVersion, Prio3Vdaf, TaskVdaf, VdafConfig, VerifyInput, VerifyState};
use serde_json::Value;
use std::path::PathBuf;

/// `<prio 0.18.1 package>/src/vdaf/test_vec/18`.
fn vector_dir() -> PathBuf {
    test_vec_dir("0.18.1", "18")
}

/// `<prio VERSION package>/src/vdaf/test_vec/DIR`.
fn test_vec_dir(version: &str, dir: &str) -> PathBuf {
    // Only this platform's packages: a fresh machine has not downloaded the others
    // (Windows-only crates), and --offline would fail on them.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "prio" && p["version"] == version)
        .unwrap_or_else(|| panic!("prio {version} is a dependency"))["manifest_path"]
        .as_str()
        .unwrap()
        .to_owned();
    PathBuf::from(manifest)
        .parent()
        .unwrap()
        .join("src/vdaf/test_vec")
        .join(dir)
}

fn hex(v: &Value) -> Vec<u8> {
    // VDAF-08's vectors list output and aggregate shares element by element.
    if let Some(items) = v.as_array() {
        return items.iter().flat_map(hex).collect();
    }
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn u32_of(v: &Value, key: &str) -> u32 {
    v[key].as_u64().unwrap().try_into().unwrap()
}

/// The vector's VDAF, built through divvi's `VdafConfig` (the same path a task takes).
fn config_of(kind: &str, v: &Value) -> VdafConfig {
    match kind {
        "Prio3Count" => VdafConfig::Count,
        "Prio3Sum" => VdafConfig::Sum {
            max_measurement: v["max_measurement"].as_u64().unwrap(),
        },
        "Prio3SumVec" => VdafConfig::SumVec {
            length: u32_of(v, "length"),
            max_measurement: v["max_measurement"].as_u64().unwrap(),
            chunk_length: u32_of(v, "chunk_length"),
        },
        "Prio3Histogram" => VdafConfig::Histogram {
            length: u32_of(v, "length"),
            chunk_length: u32_of(v, "chunk_length"),
        },
        "Prio3MultihotCountVec" => VdafConfig::MultihotCountVec {
            length: u32_of(v, "length"),
            max_weight: v["max_weight"].as_u64().unwrap(),
            chunk_length: u32_of(v, "chunk_length"),
        },
        other => panic!("no VdafConfig for {other}"),
    }
}

struct Vector {
    name: String,
    kind: &'static str,
    json: Value,
}

/// The vectors of `kind` (exact name `<kind>_N` or `<kind>_bad_*`) for two aggregators:
/// DAP always has two, so the 3- and 4-aggregator vectors do not apply.
fn vectors(kind: &'static str) -> Vec<Vector> {
    let mut found: Vec<Vector> = std::fs::read_dir(vector_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_owned();
            let rest = name.strip_prefix(kind)?.strip_prefix('_')?;
            if !(rest.starts_with("bad_") || rest.chars().all(|c| c.is_ascii_digit())) {
                return None;
            }
            let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            (json["shares"] == 2).then_some(Vector { name, kind, json })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn nonce(report: &Value) -> [u8; 16] {
    hex(&report["nonce"]).try_into().unwrap()
}

/// A valid vector: every intermediate value and the result match.
fn check_good(v: &Vector) {
    let j = &v.json;
    let vdaf = Prio3Vdaf::new(&config_of(v.kind, j)).unwrap();
    let vk: [u8; 32] = hex(&j["verify_key"]).try_into().unwrap();
    let ctx = hex(&j["ctx"]);
    let mut outs: [Vec<Vec<u8>>; 2] = Default::default();
    for (i, report) in j["reports"].as_array().unwrap().iter().enumerate() {
        let at = format!("{} report {i}", v.name);
        let nonce = nonce(report);
        let public_share = hex(&report["public_share"]);
        let input_shares: Vec<Vec<u8>> = report["input_shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex)
            .collect();
        let mut states: Vec<VerifyState> = Vec::new();
        let mut shares: Vec<Vec<u8>> = Vec::new();
        for agg_id in 0..2 {
            let input = VerifyInput {
                agg_id,
                nonce: &nonce,
                public_share: &public_share,
                input_share: &input_shares[agg_id],
            };
            let (state, share) = vdaf.verify_init(&vk, &ctx, &input).unwrap();
            assert_eq!(
                share,
                hex(&report["verifier_shares"][0][agg_id]),
                "{at} share {agg_id}"
            );
            // What a server stashes per report is this long for every report.
            assert_eq!(
                state.encoded.len(),
                vdaf.verify_state_len(agg_id).unwrap(),
                "{at} state {agg_id}"
            );
            states.push(state);
            shares.push(share);
        }
        let message = vdaf
            .verifier_shares_to_message(&ctx, &states[0], [&shares[0], &shares[1]])
            .unwrap();
        assert_eq!(
            message,
            hex(&report["verifier_messages"][0]),
            "{at} message"
        );
        for (agg_id, state) in states.iter().enumerate() {
            let out = vdaf.verify_next(&ctx, state, &message).unwrap();
            assert_eq!(out, hex(&report["out_shares"][agg_id]), "{at} out {agg_id}");
            outs[agg_id].push(out);
        }
    }
    let agg: Vec<Vec<u8>> = (0..2)
        .map(|a| vdaf.aggregate(outs[a].iter().map(Vec::as_slice)).unwrap())
        .collect();
    for (a, share) in agg.iter().enumerate() {
        assert_eq!(share, &hex(&j["agg_shares"][a]), "{} agg share {a}", v.name);
        // Summed in two parts and merged, as aggregate sums a run frame by frame.
        let (first, rest) = outs[a].split_at(outs[a].len() / 2);
        let merged = vdaf
            .merge_aggregate_shares(
                &vdaf.aggregate(first.iter().map(Vec::as_slice)).unwrap(),
                &vdaf.aggregate(rest.iter().map(Vec::as_slice)).unwrap(),
            )
            .unwrap();
        assert_eq!(&merged, share, "{} merged agg share {a}", v.name);
    }
    let result = vdaf.unshard([&agg[0], &agg[1]], outs[0].len()).unwrap();
    assert_eq!(result.to_json(), j["agg_result"], "{} result", v.name);
}

/// An invalid vector: replays its `operations` and checks each succeeds or fails as listed,
/// and that at least one step the vector marks as failing does fail here.
fn check_bad(v: &Vector) {
    let j = &v.json;
    let vdaf = Prio3Vdaf::new(&config_of(v.kind, j)).unwrap();
    let vk: [u8; 32] = hex(&j["verify_key"]).try_into().unwrap();
    let ctx = hex(&j["ctx"]);
    let report = &j["reports"][0];
    let nonce = nonce(report);
    let public_share = hex(&report["public_share"]);
    let mut states: [Option<VerifyState>; 2] = Default::default();
    let mut shares: [Vec<u8>; 2] = Default::default();
    let mut failures = 0;
    for op in j["operations"].as_array().unwrap() {
        let want_ok = op["success"].as_bool().unwrap();
        let agg_id = op["aggregator_id"].as_u64().unwrap_or(0) as usize;
        let ok = match op["operation"].as_str().unwrap() {
            "verify_init" => {
                let input_share = hex(&report["input_shares"][agg_id]);
                let input = VerifyInput {
                    agg_id,
                    nonce: &nonce,
                    public_share: &public_share,
                    input_share: &input_share,
                };
                vdaf.verify_init(&vk, &ctx, &input)
                    .map(|(state, share)| {
                        states[agg_id] = Some(state);
                        shares[agg_id] = share;
                    })
                    .is_ok()
            }
            "verifier_shares_to_message" => vdaf
                .verifier_shares_to_message(
                    &ctx,
                    states[0].as_ref().unwrap(),
                    [&shares[0], &shares[1]],
                )
                .is_ok(),
            "verify_next" => {
                let message = hex(&report["verifier_messages"][0]);
                vdaf.verify_next(&ctx, states[agg_id].as_ref().unwrap(), &message)
                    .is_ok()
            }
            other => panic!("{}: operation {other} not expected in a bad vector", v.name),
        };
        assert_eq!(ok, want_ok, "{}: {op}", v.name);
        failures += usize::from(!ok);
    }
    assert!(failures > 0, "{}: nothing failed", v.name);
}

/// Runs every two-aggregator vector of `kind`; `good` and `bad` are how many there must be,
/// so a vector that silently stops being found fails the test.
fn run(kind: &'static str, good: usize, bad: usize) {
    let all = vectors(kind);
    let (bads, goods): (Vec<&Vector>, Vec<&Vector>) =
        all.iter().partition(|v| v.name.contains("_bad_"));
    assert_eq!(
        (goods.len(), bads.len()),
        (good, bad),
        "{kind} vectors found"
    );
    goods.into_iter().for_each(check_good);
    bads.into_iter().for_each(check_bad);
}

#[test]
fn prio3_count_vectors() {
    run("Prio3Count", 2, 4);
}

#[test]
fn prio3_sum_vectors() {
    run("Prio3Sum", 2, 0);
}

#[test]
fn prio3_sumvec_vectors() {
    run("Prio3SumVec", 1, 0);
}

#[test]
fn prio3_histogram_vectors() {
    run("Prio3Histogram", 2, 4);
}

#[test]
fn prio3_multihot_vectors() {
    run("Prio3MultihotCountVec", 2, 0);
}

/// The harness itself must notice a wrong value: a flipped byte of an input share
/// changes the verifier share, so `check_good` would panic.
#[test]
#[should_panic(expected = "share 0")]
fn a_changed_input_share_is_noticed() {
    let mut v = vectors("Prio3Count").into_iter().next().unwrap();
    let share = v.json["reports"][0]["input_shares"][0].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if &share[..1] == "0" { "1" } else { "0" },
        &share[1..]
    );
    v.json["reports"][0]["input_shares"][0] = Value::String(flipped);
    check_good(&v);
}

/// A VDAF-08 vector's VDAF as a DAP-09 task names it: Sum and SumVec by
/// `max_measurement` = 2^bits - 1.
fn config_of_08(kind: &str, v: &Value) -> VdafConfig {
    let max = |v: &Value| (1u64 << v["bits"].as_u64().unwrap()) - 1;
    match kind {
        "Prio3Count" => VdafConfig::Count,
        "Prio3Sum" => VdafConfig::Sum {
            max_measurement: max(v),
        },
        "Prio3SumVec" => VdafConfig::SumVec {
            length: u32_of(v, "length"),
            max_measurement: max(v),
            chunk_length: u32_of(v, "chunk_length"),
        },
        "Prio3Histogram" => VdafConfig::Histogram {
            length: u32_of(v, "length"),
            chunk_length: u32_of(v, "chunk_length"),
        },
        other => panic!("no VdafConfig for {other}"),
    }
}

/// Every two-aggregator VDAF-08 vector of `kind` (there must be `count`): prepare shares
/// byte for byte from prio 0.16's prepare_init, and from the pipeline's intake half the
/// same shares, the prepare message as the check it keeps, the output shares, a verdict
/// of valid, the aggregate shares and the result.
fn run08(kind: &'static str, count: usize) {
    let dir = test_vec_dir("0.16.8", "08");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            let rest = name
                .strip_prefix(kind)?
                .strip_prefix('_')?
                .strip_suffix(".json")?;
            rest.chars().all(|c| c.is_ascii_digit()).then_some(name)
        })
        .collect();
    names.sort();
    let mut checked = 0;
    for name in names {
        let j: Value = serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
        if j["shares"] != 2 {
            continue;
        }
        checked += 1;
        let config = config_of_08(kind, &j);
        let (task, _) = dap_common::test_task_for(DapVersion::Dap09, config.clone(), 3600);
        let vdaf = TaskVdaf::new(&task).unwrap();
        let aggregators = [vdaf.aggregator(0).unwrap(), vdaf.aggregator(1).unwrap()];
        let steps = Prio3Vdaf08::new(&config).unwrap();
        let vk = hex(&j["verify_key"]);
        let mut sums = [aggregators[0].new_sum(), aggregators[1].new_sum()];
        let reports = j["prep"].as_array().unwrap();
        for (i, report) in reports.iter().enumerate() {
            let at = format!("{name} report {i}");
            let nonce = nonce(report);
            let public_share = hex(&report["public_share"]);
            let input_shares: Vec<Vec<u8>> =
                (0..2).map(|a| hex(&report["input_shares"][a])).collect();
            let mut started = Vec::new();
            for agg_id in 0..2 {
                let input = VerifyInput {
                    agg_id,
                    nonce: &nonce,
                    public_share: &public_share,
                    input_share: &input_shares[agg_id],
                };
                let want_share = hex(&report["prep_shares"][0][agg_id]);
                let (_, share) = steps
                    .prepare_init(vk.as_slice().try_into().unwrap(), &input)
                    .unwrap();
                assert_eq!(share, want_share, "{at} prepare share {agg_id}");
                let provisional = aggregators[agg_id].start(&vk, &input).unwrap();
                assert_eq!(
                    provisional.verifier_share, want_share,
                    "{at} intake {agg_id}"
                );
                assert_eq!(
                    provisional.check,
                    hex(&report["prep_messages"][0]),
                    "{at} check {agg_id}"
                );
                let mut one = aggregators[agg_id].new_sum();
                one.add(&provisional.output).unwrap();
                assert_eq!(
                    one.encode().unwrap(),
                    hex(&report["out_shares"][agg_id]),
                    "{at} output share {agg_id}"
                );
                sums[agg_id].add(&provisional.output).unwrap();
                started.push(provisional);
            }
            let shares = [
                &started[0].verifier_share[..],
                &started[1].verifier_share[..],
            ];
            for agg_id in 0..2 {
                aggregators[agg_id]
                    .decide(&started[agg_id].check, shares)
                    .unwrap_or_else(|e| panic!("{at}: decided invalid by {agg_id}: {e}"));
            }
        }
        let agg: Vec<Vec<u8>> = sums.iter().map(|s| s.encode().unwrap()).collect();
        for (a, share) in agg.iter().enumerate() {
            assert_eq!(share, &hex(&j["agg_shares"][a]), "{name} agg share {a}");
        }
        let result = vdaf.unshard([&agg[0], &agg[1]], reports.len()).unwrap();
        assert_eq!(result.to_json(), j["agg_result"], "{name} result");
    }
    assert_eq!(
        checked, count,
        "{kind}: two-aggregator VDAF-08 vectors found"
    );
}

#[test]
fn vdaf08_prio3_count_vectors() {
    run08("Prio3Count", 1);
}

#[test]
fn vdaf08_prio3_sum_vectors() {
    run08("Prio3Sum", 1);
}

#[test]
fn vdaf08_prio3_sumvec_vectors() {
    run08("Prio3SumVec", 1);
}

#[test]
fn vdaf08_prio3_histogram_vectors() {
    run08("Prio3Histogram", 1);
}

/// Poplar1 (VDAF-18 §8): each vector through divvi's three pass steps, byte for byte:
/// both rounds' verifier shares, the output shares, the aggregate shares and the counts.
/// `Poplar1_bad_corr_inner` (a client's correlated randomness tampered with) must fail in
/// the last step.
#[test]
fn poplar1_vectors() {
    let all = vectors("Poplar1");
    assert_eq!(all.len(), 7, "Poplar1_0..5 and Poplar1_bad_corr_inner");
    for v in &all {
        let j = &v.json;
        let bits = j["bits"].as_u64().unwrap() as usize;
        let poplar = Poplar1Vdaf::with_params(bits, hex(&j["ctx"]));
        let pass = Pass::decode(&hex(&j["agg_param"])).unwrap();
        assert_eq!(pass.encode().unwrap(), hex(&j["agg_param"]), "{}", v.name);
        let vk: [u8; 32] = hex(&j["verify_key"]).try_into().unwrap();
        let aggregators = [0, 1].map(|id| poplar.aggregator(id).unwrap());
        let mut sums = aggregators.each_ref().map(|a| a.new_sum(&pass).unwrap());
        let bad = v.name.contains("_bad_");
        for (i, report) in j["reports"].as_array().unwrap().iter().enumerate() {
            let at = format!("{} report {i}", v.name);
            let inputs: Vec<Vec<u8>> = report["input_shares"]
                .as_array()
                .unwrap()
                .iter()
                .map(hex)
                .collect();
            let public = hex(&report["public_share"]);
            let rounds: Vec<Vec<Vec<u8>>> = report["verifier_shares"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(hex).collect())
                .collect();
            let first = [0, 1].map(|id| {
                aggregators[id]
                    .start(&vk, &pass, &nonce(report), &public, &inputs[id])
                    .unwrap()
            });
            for id in 0..2 {
                assert_eq!(
                    first[id].verifier_share, rounds[0][id],
                    "{at} round 1, {id}"
                );
            }
            let shares1 = [&first[0].verifier_share[..], &first[1].verifier_share[..]];
            let second = [0, 1].map(|id| {
                aggregators[id]
                    .second(&pass, &first[id].state, shares1)
                    .unwrap()
            });
            for id in 0..2 {
                assert_eq!(
                    second[id].verifier_share, rounds[1][id],
                    "{at} round 2, {id}"
                );
            }
            let shares2 = [&second[0].verifier_share[..], &second[1].verifier_share[..]];
            for id in 0..2 {
                let finished = aggregators[id].finish(&pass, &second[id].state, shares2);
                if bad {
                    let err = finished.unwrap_err();
                    assert!(matches!(err, VdafStepError::Verify(_)), "{at}: {err}");
                    continue;
                }
                let output = finished.unwrap();
                assert_eq!(output, hex(&report["out_shares"][id]), "{at} output {id}");
                sums[id].add(&output).unwrap();
            }
        }
        if bad {
            continue;
        }
        let encoded = sums.each_ref().map(|s| s.encode().unwrap());
        for id in 0..2 {
            assert_eq!(
                encoded[id],
                hex(&j["agg_shares"][id]),
                "{} share {id}",
                v.name
            );
        }
        let counts = poplar.unshard(&pass, [&encoded[0], &encoded[1]]).unwrap();
        let want: Vec<u64> = j["agg_result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        assert_eq!(counts, want, "{}", v.name);
    }
}
