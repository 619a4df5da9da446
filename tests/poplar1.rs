//! Poplar1 end to end in memory: strings made into reports by `DapClient` (DAP-18
//! encoding, each input share sealed to its server), decoded, opened by each server with
//! its own key, and run through the three steps of each pass on both servers, the
//! collector's traversal choosing the passes. The heavy hitters found must be exactly the
//! strings whose true count reaches the threshold, with their true counts; reports
//! tampered with are found invalid and the rest still count.

mod dap_common;

use dap_common::test_task;
use divvi::dap::poplar1::{HeavyHitter, Next, Pass, Prefix, PrepareStep, Traversal};
use divvi::dap::{
    decode_reports, encode_reports, DapClient, HpkeKeypair, Measurement, Poplar1Vdaf, Role, Task,
    VdafConfig,
};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;

const VERIFY_KEY: [u8; 32] = [9; 32];

/// A report as the servers hold it once opened: its id, public share and both input
/// shares (each server reads only its own).
struct Opened {
    nonce: [u8; 16],
    public_share: Vec<u8>,
    input_shares: [Vec<u8>; 2],
}

/// Reports of `strings` for a poplar1:`bits` task, through the wire encoding and HPKE.
fn reports(bits: u16, strings: &[Vec<u8>]) -> (Task, Vec<Opened>) {
    let (task, keys) = test_task(VdafConfig::Poplar1 { bits }, 3600);
    let client = DapClient::new(&task).unwrap();
    let made: Vec<_> = strings
        .iter()
        .map(|s| {
            client
                .report(&Measurement::String(s.clone()), 1_800_000_000)
                .unwrap()
        })
        .collect();
    let body = encode_reports(task.version(), &made).unwrap();
    let open = |key: &HpkeKeypair, role: Role, r: &divvi::dap::Report| {
        key.open_report_share(&task, role, r).unwrap()
    };
    let opened = decode_reports(task.version(), &body)
        .unwrap()
        .iter()
        .map(|r| Opened {
            nonce: r.metadata.report_id.0,
            public_share: r.public_share.clone(),
            input_shares: [
                open(&keys.leader, Role::Leader, r),
                open(&keys.helper, Role::Helper, r),
            ],
        })
        .collect();
    (task, opened)
}

/// One pass over every report, both servers through the three steps as the pipeline
/// runs them; the counts per prefix and the reports found invalid.
fn run_pass(poplar: &Poplar1Vdaf, reports: &[Opened], pass: &Pass) -> (Vec<u64>, Vec<usize>) {
    let servers = [0, 1].map(|id| poplar.aggregator(id).unwrap());
    let mut sums = servers.each_ref().map(|s| s.new_sum(pass).unwrap());
    let mut invalid = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let steps = || -> Result<Vec<Vec<u8>>, divvi::dap::VdafStepError> {
            let first = servers
                .iter()
                .zip(&r.input_shares)
                .map(|(s, input)| s.start(&VERIFY_KEY, pass, &r.nonce, &r.public_share, input))
                .collect::<Result<Vec<PrepareStep>, _>>()?;
            let shares = [&first[0].verifier_share[..], &first[1].verifier_share[..]];
            let second = servers
                .iter()
                .zip(&first)
                .map(|(s, f)| s.second(pass, &f.state, shares))
                .collect::<Result<Vec<PrepareStep>, _>>()?;
            let shares = [&second[0].verifier_share[..], &second[1].verifier_share[..]];
            servers
                .iter()
                .zip(&second)
                .map(|(s, st)| s.finish(pass, &st.state, shares))
                .collect()
        };
        match steps() {
            Ok(outputs) => {
                for (sum, out) in sums.iter_mut().zip(&outputs) {
                    sum.add(out).unwrap();
                }
            }
            Err(_) => invalid.push(i),
        }
    }
    let encoded = sums.each_ref().map(|s| s.encode().unwrap());
    let counts = poplar.unshard(pass, [&encoded[0], &encoded[1]]).unwrap();
    (counts, invalid)
}

/// A whole traversal; the heavy hitters and the passes it took.
fn heavy_hitters(
    poplar: &Poplar1Vdaf,
    reports: &[Opened],
    traversal: &Traversal,
) -> (Vec<HeavyHitter>, usize) {
    let mut pass = traversal.first().unwrap();
    let mut history: Vec<Pass> = Vec::new();
    loop {
        assert!(
            pass.may_follow(&history),
            "pass {} breaks the order",
            history.len()
        );
        let (counts, invalid) = run_pass(poplar, reports, &pass);
        assert!(invalid.is_empty(), "honest reports are valid: {invalid:?}");
        history.push(pass.clone());
        match traversal.next(&pass, &counts).unwrap() {
            Next::Pass(next) => pass = next,
            Next::Done(hitters) => return (hitters, history.len()),
        }
    }
}

/// Strings drawn by Zipf's law (exponent 1) over `words` words.
fn zipf_strings(n: usize, words: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let weights: Vec<f64> = (1..=words).map(|k| 1.0 / k as f64).collect();
    let total: f64 = weights.iter().sum();
    (0..n)
        .map(|_| {
            let mut u: f64 = rng.random::<f64>() * total;
            let mut k = 0;
            while k + 1 < words && u >= weights[k] {
                u -= weights[k];
                k += 1;
            }
            format!("w{k}").into_bytes()
        })
        .collect()
}

/// The strings counted directly, those reaching `threshold`, most common first.
fn truth(strings: &[Vec<u8>], threshold: u64) -> Vec<(String, u64)> {
    let mut counts: BTreeMap<&[u8], u64> = BTreeMap::new();
    for s in strings {
        *counts.entry(s).or_default() += 1;
    }
    let mut heavy: Vec<(String, u64)> = counts
        .into_iter()
        .filter(|(_, c)| *c >= threshold)
        .map(|(s, c)| (String::from_utf8(s.to_vec()).unwrap(), c))
        .collect();
    heavy.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    heavy
}

fn found(hitters: &[HeavyHitter]) -> Vec<(String, u64)> {
    hitters
        .iter()
        .map(|h| (h.string.text().unwrap(), h.count))
        .collect()
}

#[test]
fn a_traversal_finds_exactly_the_strings_at_or_above_the_threshold() {
    let strings = zipf_strings(300, 40, 1);
    let (task, reports) = reports(32, &strings);
    let poplar = Poplar1Vdaf::new(&task).unwrap();
    // One bit a pass, four (skipping levels), and a whole byte.
    for (threshold, step) in [(3, 1), (10, 4), (25, 8)] {
        let traversal = Traversal::new(32, threshold, step).unwrap();
        let (hitters, passes) = heavy_hitters(&poplar, &reports, &traversal);
        let want = truth(&strings, threshold);
        assert!(want.len() > 1, "the draw has heavy hitters");
        assert_eq!(found(&hitters), want, "threshold {threshold}, step {step}");
        assert_eq!(passes, traversal.passes());
    }
}

#[test]
fn a_threshold_above_every_count_ends_after_one_pass_with_nothing() {
    let strings = zipf_strings(20, 5, 2);
    let (task, reports) = reports(16, &strings);
    let poplar = Poplar1Vdaf::new(&task).unwrap();
    let traversal = Traversal::new(16, 21, 4).unwrap();
    let (hitters, passes) = heavy_hitters(&poplar, &reports, &traversal);
    assert!(hitters.is_empty());
    assert_eq!(passes, 1);
}

#[test]
fn tampered_reports_are_invalid_and_the_rest_still_count() {
    let strings: Vec<Vec<u8>> = ["ab", "ab", "cd", "ab", "ef", "ab"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let (task, mut reports) = reports(16, &strings);
    let poplar = Poplar1Vdaf::new(&task).unwrap();
    // A flipped bit in the public share (a correction word); in the leader's IDPF key;
    // in the helper's correlated randomness for level 1 (after the 16-byte key, the
    // 32-byte seed and level 0's pair of Field64s); a report id changed (the nonce
    // binds the evaluation).
    reports[0].public_share[20] ^= 1;
    reports[1].input_shares[0][3] ^= 0x80;
    reports[3].input_shares[1][16 + 32 + 16] ^= 1;
    reports[5].nonce[0] ^= 1;
    let bits = |s: &str| Prefix::from_bools(&s.chars().map(|c| c == '1').collect::<Vec<_>>());
    // Level 1: "ab", "cd" and "ef" all start 0b01.
    let pass = Pass::new(vec![bits("01"), bits("10")]).unwrap();
    let (counts, invalid) = run_pass(&poplar, &reports, &pass);
    assert_eq!(invalid, vec![0, 1, 3, 5]);
    assert_eq!(counts, vec![2, 0]);
}

#[test]
fn reports_of_another_task_do_not_verify() {
    let (_, reports) = reports(16, &[b"x".to_vec()]);
    let (other, _) = test_task(VdafConfig::Poplar1 { bits: 16 }, 3600);
    let poplar = Poplar1Vdaf::new(&other).unwrap();
    let pass = Pass::new(vec![Prefix::from_bools(&[false])]).unwrap();
    assert_eq!(run_pass(&poplar, &reports, &pass).1, vec![0]);
}

#[test]
fn a_client_refuses_what_a_poplar1_task_cannot_carry() {
    let (task, _) = test_task(VdafConfig::Poplar1 { bits: 16 }, 3600);
    let client = DapClient::new(&task).unwrap();
    assert!(client
        .report(&Measurement::String(b"abc".to_vec()), 1_800_000_000)
        .is_err());
    assert!(client
        .report(&Measurement::Count(true), 1_800_000_000)
        .is_err());
}
