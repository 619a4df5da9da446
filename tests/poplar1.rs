//! Poplar1 end to end in memory: strings made into reports by `DapClient` (DAP-18
//! encoding, each input share sealed to its server), decoded, opened by each server with
//! its own key, and run through the three steps of each pass on both servers, the
//! collector's traversal choosing the passes. The heavy hitters found must be exactly the
//! strings whose true count reaches the threshold, with their true counts; reports
//! tampered with are found invalid and the rest still count.

#[allow(dead_code)]
mod dap_common;
#[allow(dead_code)]
mod poplar1_common;

use dap_common::test_task;
use divvi::dap::poplar1::{Pass, Prefix, Traversal};
use divvi::dap::{DapClient, Measurement, Poplar1Vdaf, VdafConfig};
use poplar1_common::{found, heavy_hitters, opened_reports, run_pass, truth, zipf_strings};

#[test]
fn a_traversal_finds_exactly_the_strings_at_or_above_the_threshold() {
    let strings = zipf_strings(300, 40, 1);
    let (task, reports) = opened_reports(32, &strings);
    let poplar = Poplar1Vdaf::new(&task).unwrap();
    // One bit a pass, four (skipping levels), and a whole byte.
    for (threshold, step) in [(3, 1), (10, 4), (25, 8)] {
        let traversal = Traversal::new(32, threshold, step).unwrap();
        let (hitters, passes) = heavy_hitters(&poplar, &reports, &traversal, |_, _| ());
        let want = truth(&strings, threshold);
        assert!(want.len() > 1, "the draw has heavy hitters");
        assert_eq!(found(&hitters), want, "threshold {threshold}, step {step}");
        assert_eq!(passes, traversal.passes());
    }
}

#[test]
fn a_threshold_above_every_count_ends_after_one_pass_with_nothing() {
    let strings = zipf_strings(20, 5, 2);
    let (task, reports) = opened_reports(16, &strings);
    let poplar = Poplar1Vdaf::new(&task).unwrap();
    let traversal = Traversal::new(16, 21, 4).unwrap();
    let (hitters, passes) = heavy_hitters(&poplar, &reports, &traversal, |_, _| ());
    assert!(hitters.is_empty());
    assert_eq!(passes, 1);
}

#[test]
fn tampered_reports_are_invalid_and_the_rest_still_count() {
    let strings: Vec<Vec<u8>> = ["ab", "ab", "cd", "ab", "ef", "ab"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let (task, mut reports) = opened_reports(16, &strings);
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
    let (_, reports) = opened_reports(16, &[b"x".to_vec()]);
    let (other, _) = test_task(VdafConfig::Poplar1 { bits: 16 }, 3600);
    let poplar = Poplar1Vdaf::new(&other).unwrap();
    let pass = Pass::new(vec![Prefix::from_bools(&[false])]).unwrap();
    assert_eq!(run_pass(&poplar, &reports, &pass).1, vec![0]);
}

#[test]
fn a_client_refuses_what_a_poplar1_task_cannot_carry() {
    let (task, _) = test_task(VdafConfig::Poplar1 { bits: 16 }, 3600);
    let client = DapClient::new(&task).unwrap();
    // The rule `divvi client`'s JSON reader applies holds for library callers too.
    for bad in [&b"abc"[..], b"", b"a\0"] {
        assert!(client
            .report(&Measurement::String(bad.to_vec()), 1_800_000_000)
            .is_err());
    }
    assert!(client
        .report(&Measurement::Count(true), 1_800_000_000)
        .is_err());
}
