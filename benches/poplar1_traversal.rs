//! A whole heavy-hitters traversal, the servers' per-report work alone: reports of 256-bit
//! strings (Zipf-drawn words, zero-padded), opened once, then every pass run on both
//! servers in memory, in parallel on every core (rayon), through the same three steps per
//! report as the pipeline, the collector's `Traversal` choosing each pass. No I/O, and no
//! HPKE open per pass (criterion's `poplar1` bench has it: about 25 µs per server): the
//! floor a traversal over the buckets is measured against. Prints a line per pass and the
//! totals; checks the heavy hitters against the truth.
//!
//! `cargo bench --bench poplar1_traversal`; environment: POPLAR1_REPORTS (default
//! 10000), POPLAR1_STEP (bits per pass, default 4), POPLAR1_THRESHOLD (default 1% of the
//! reports), POPLAR1_WORDS (default 1000).

#[allow(dead_code)]
#[path = "../tests/dap_common/mod.rs"]
mod dap_common;
#[allow(dead_code)]
#[path = "../tests/poplar1_common/mod.rs"]
mod poplar1_common;

use divvi::dap::poplar1::Traversal;
use divvi::dap::Poplar1Vdaf;
use poplar1_common::{found, heavy_hitters, opened_reports, truth, zipf_strings};
use std::time::Instant;

const BITS: u16 = 256;

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this bench takes no arguments of its own.
    let reports = setting("POPLAR1_REPORTS", 10_000) as usize;
    let step = setting("POPLAR1_STEP", 4) as usize;
    let threshold = setting("POPLAR1_THRESHOLD", (reports as u64 / 100).max(1));
    let words = setting("POPLAR1_WORDS", 1000) as usize;
    let strings = zipf_strings(reports, words, 7);
    let made = Instant::now();
    let (task, opened) = opened_reports(BITS, &strings);
    println!(
        "{reports} reports of {BITS}-bit strings ({words} Zipf words) made and opened in {:.1} s on {} threads",
        made.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let poplar = Poplar1Vdaf::new(&task).expect("poplar1 task");
    let traversal = Traversal::new(usize::from(BITS), threshold, step).expect("traversal");
    let started = Instant::now();
    let mut widest = 0;
    let (hitters, passes) = heavy_hitters(&poplar, &opened, &traversal, |pass, took| {
        widest = widest.max(pass.len());
        println!(
            "pass at level {:>3}: {:>5} prefixes, {:>7.2} s, {:>6.1} µs per report (both servers, all cores)",
            pass.level(),
            pass.len(),
            took.as_secs_f64(),
            1e6 * took.as_secs_f64() / reports as f64
        );
    });
    let total = started.elapsed().as_secs_f64();
    let want = truth(&strings, threshold);
    assert_eq!(found(&hitters), want, "the heavy hitters are the true ones");
    println!(
        "traversal: {passes} passes (step {step}, threshold {threshold}, at most {widest} prefixes), {total:.1} s, {:.2} ms per report; {} heavy hitters, equal to the truth",
        1e3 * total / reports as f64,
        hitters.len()
    );
}
