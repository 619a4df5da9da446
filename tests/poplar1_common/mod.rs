//! Heavy hitters in memory, shared by `tests/poplar1.rs` and `benches/poplar1_traversal.rs`:
//! Zipf-drawn strings made into DAP-18 reports by `DapClient` and opened with each
//! server's HPKE key, then passes run on both servers through the three steps the
//! pipeline runs, in parallel (rayon), the collector's traversal choosing each pass.

use crate::dap_common::test_task;
use divvi::dap::poplar1::{HeavyHitter, Next, Pass, PrepareStep, Traversal};
use divvi::dap::{
    decode_reports, encode_reports, DapClient, HpkeKeypair, Measurement, Poplar1Vdaf, Report, Role,
    Task, VdafConfig, VdafStepError,
};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use std::collections::BTreeMap;

pub const VERIFY_KEY: [u8; 32] = [9; 32];

/// A report as the servers hold it once opened: its id, public share and both input
/// shares (each server reads only its own).
pub struct Opened {
    pub nonce: [u8; 16],
    pub public_share: Vec<u8>,
    pub input_shares: [Vec<u8>; 2],
}

/// A poplar1:`bits` task and reports of `strings`, through the wire encoding and HPKE.
pub fn opened_reports(bits: u16, strings: &[Vec<u8>]) -> (Task, Vec<Opened>) {
    let (task, keys) = test_task(VdafConfig::Poplar1 { bits }, 3600);
    let client = DapClient::new(&task).unwrap();
    let made: Vec<Report> = strings
        .par_iter()
        .map(|s| {
            client
                .report(&Measurement::String(s.clone()), 1_800_000_000)
                .unwrap()
        })
        .collect();
    let body = encode_reports(task.version(), &made).unwrap();
    drop(made);
    let open =
        |key: &HpkeKeypair, role: Role, r: &Report| key.open_report_share(&task, role, r).unwrap();
    let opened = decode_reports(task.version(), &body)
        .unwrap()
        .par_iter()
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

/// One report through a pass on both servers: each server's output share, or why the
/// report is invalid.
fn one_report(
    servers: &[divvi::dap::poplar1::Poplar1Aggregator; 2],
    pass: &Pass,
    r: &Opened,
) -> Result<Vec<Vec<u8>>, VdafStepError> {
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
}

/// One pass over every report (in parallel); the count per prefix and the positions of
/// the reports found invalid.
pub fn run_pass(poplar: &Poplar1Vdaf, reports: &[Opened], pass: &Pass) -> (Vec<u64>, Vec<usize>) {
    let servers = [0, 1].map(|id| poplar.aggregator(id).unwrap());
    let empty = || servers.each_ref().map(|s| s.new_sum(pass).unwrap());
    let (sums, mut invalid) = reports
        .par_iter()
        .enumerate()
        .fold(
            || (empty(), Vec::new()),
            |(mut sums, mut invalid), (i, r)| {
                match one_report(&servers, pass, r) {
                    Ok(outputs) => {
                        for (sum, out) in sums.iter_mut().zip(&outputs) {
                            sum.add(out).unwrap();
                        }
                    }
                    Err(_) => invalid.push(i),
                }
                (sums, invalid)
            },
        )
        .reduce(
            || (empty(), Vec::new()),
            |(mut a, mut ai), (b, bi)| {
                for (x, y) in a.iter_mut().zip(&b) {
                    x.merge(y).unwrap();
                }
                ai.extend(bi);
                (a, ai)
            },
        );
    invalid.sort_unstable();
    let encoded = sums.each_ref().map(|s| s.encode().unwrap());
    let counts = poplar.unshard(pass, [&encoded[0], &encoded[1]]).unwrap();
    (counts, invalid)
}

/// A whole traversal; `each_pass` hears of every pass with its time. The heavy hitters
/// and the number of passes.
pub fn heavy_hitters(
    poplar: &Poplar1Vdaf,
    reports: &[Opened],
    traversal: &Traversal,
    mut each_pass: impl FnMut(&Pass, std::time::Duration),
) -> (Vec<HeavyHitter>, usize) {
    let mut pass = traversal.first().unwrap();
    let mut history: Vec<Pass> = Vec::new();
    loop {
        assert!(
            pass.may_follow(&history),
            "pass {} breaks the order",
            history.len()
        );
        let started = std::time::Instant::now();
        let (counts, invalid) = run_pass(poplar, reports, &pass);
        each_pass(&pass, started.elapsed());
        assert!(invalid.is_empty(), "honest reports are valid: {invalid:?}");
        history.push(pass.clone());
        match traversal.next(&pass, &counts).unwrap() {
            Next::Pass(next) => pass = next,
            Next::Done(hitters) => return (hitters, history.len()),
        }
    }
}

/// `n` words drawn by Zipf's law (exponent 1) over `words` words, `w0` the most common.
pub fn zipf_strings(n: usize, words: usize, seed: u64) -> Vec<Vec<u8>> {
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
pub fn truth(strings: &[Vec<u8>], threshold: u64) -> Vec<(String, u64)> {
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

/// Heavy hitters as (text, count), to compare with [`truth`].
pub fn found(hitters: &[HeavyHitter]) -> Vec<(String, u64)> {
    hitters
        .iter()
        .map(|h| (h.string.text().unwrap(), h.count))
        .collect()
}
