//! Per-report costs of a Poplar1 pass on 256-bit strings (32 bytes), before any I/O: a
//! server opens its input share (HPKE, X25519) and evaluates it at the pass's level and
//! prefixes (`start`); then the two later rounds (`second`, `finish`), which only join
//! small verifier shares. `pass/both` is one report's whole pass on both servers: what a
//! traversal pays per report per pass, on one core.
//!
//! Run with `cargo bench --bench poplar1`; ids read `poplar1/level-L/P/<bench>` for P
//! candidate prefixes: 16 at each level measured (2 at level 0), and 400 at two levels,
//! the shape of the Poplar paper's run (the 200 most common strings, each extended by a
//! bit, one level a pass).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use divvi::dap::poplar1::{Pass, Poplar1Aggregator, Prefix};
use divvi::dap::{
    DapClient, HpkeKeypair, Measurement, Poplar1Vdaf, Report, Role, Task, VdafConfig,
};

#[allow(dead_code)]
#[path = "../tests/dap_common/mod.rs"]
mod dap_common;
use dap_common::test_task;

const BITS: u16 = 256;
const VERIFY_KEY: [u8; 32] = [7; 32];

struct Setup {
    task: Task,
    keys: [HpkeKeypair; 2],
    servers: [Poplar1Aggregator; 2],
    report: Report,
}

fn setup() -> Setup {
    let (task, keys) = test_task(VdafConfig::Poplar1 { bits: BITS }, 3600);
    let keys = [keys.leader, keys.helper];
    let string = Measurement::String(b"https://example.com/a/32/byte/ur".to_vec());
    let report = DapClient::new(&task)
        .expect("client")
        .report(&string, 1_800_000_000)
        .expect("report");
    let poplar = Poplar1Vdaf::new(&task).expect("poplar1");
    Setup {
        servers: [0, 1].map(|id| poplar.aggregator(id).expect("aggregator")),
        task,
        keys,
        report,
    }
}

/// The pass at `level`: the report's own prefix among `prefixes` (fewer where the level
/// has fewer).
fn pass_at(level: usize, prefixes: usize) -> Pass {
    let truth = Prefix::from_bytes(b"https://example.com/a/32/byte/ur").truncate(level + 1);
    let count = prefixes.min(1 << (level + 1).min(16));
    let mut prefixes = vec![truth.clone()];
    let mut flip = 0usize;
    while prefixes.len() < count {
        // Other prefixes of the same length: the truth with its last bits changed.
        flip += 1;
        let bits: Vec<bool> = truth
            .bit_string()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let from_end = level - i.min(level);
                (c == '1') ^ (from_end < 16 && (flip >> from_end) & 1 == 1)
            })
            .collect();
        prefixes.push(Prefix::from_bools(&bits));
    }
    Pass::new(prefixes).expect("pass")
}

impl Setup {
    fn start(&self, role: Role, pass: &Pass) -> divvi::dap::poplar1::PrepareStep {
        let share = self.keys[role.agg_id()]
            .open_report_share(&self.task, role, &self.report)
            .expect("opens");
        self.servers[role.agg_id()]
            .start(
                &VERIFY_KEY,
                pass,
                &self.report.metadata.report_id.0,
                &self.report.public_share,
                &share,
            )
            .expect("starts")
    }

    /// One report's pass on both servers: the output shares.
    fn whole_pass(&self, pass: &Pass) -> [Vec<u8>; 2] {
        let first = [Role::Leader, Role::Helper].map(|role| self.start(role, pass));
        let shares = [&first[0].verifier_share[..], &first[1].verifier_share[..]];
        let second = [0, 1].map(|id| {
            self.servers[id]
                .second(pass, &first[id].state, shares)
                .expect("round two")
        });
        let shares = [&second[0].verifier_share[..], &second[1].verifier_share[..]];
        [0, 1].map(|id| {
            self.servers[id]
                .finish(pass, &second[id].state, shares)
                .expect("valid")
        })
    }
}

fn poplar1(c: &mut Criterion) {
    let s = setup();
    let cases = [
        (0, 2),
        (63, 16),
        (127, 16),
        (254, 16),
        (255, 16),
        (127, 400),
        (255, 400),
    ];
    for (level, prefixes) in cases {
        let pass = pass_at(level, prefixes);
        assert_eq!(pass.len(), prefixes);
        let mut group = c.benchmark_group(format!("poplar1/level-{level}/{prefixes}"));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20);
        for role in [Role::Leader, Role::Helper] {
            group.bench_function(format!("start/{}", role.name()), |b| {
                b.iter(|| black_box(s.start(role, &pass)))
            });
        }
        group.bench_function("pass/both", |b| b.iter(|| black_box(s.whole_pass(&pass))));
        group.finish();
    }
}

criterion_group!(benches, poplar1);
criterion_main!(benches);
