//! Per-report costs of a DAP Prio3 task on the servers, before any I/O, as the pipeline
//! splits verification: intake opens the report's input share (HPKE, X25519), starts
//! verification (`verify_init`) and finishes the output share provisionally
//! (`TaskAggregator::start`); aggregate decides the report from both verifier shares and
//! the seed intake kept (`TaskAggregator::decide`). Intake is the whole of open +
//! verification start + finish but for the decision, so it is the floor a DAP pipeline's
//! intake is measured against. DAP-18 tasks run VDAF-18; the `dap-09/` cases run the
//! VDAF-08 of the clients already deployed.
//!
//! Run with `cargo bench --bench prio3`; ids read `prio3/[dap-09/]<vdaf>/intake/<role>`
//! and `.../finish/<role>`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

#[allow(dead_code)]
#[path = "../tests/dap_common/mod.rs"]
mod dap_common;
use dap_common::test_task_for;
use divvi::dap::{
    DapClient, DapVersion, HpkeKeypair, Measurement, Provisional, Report, Role, Task,
    TaskAggregator, TaskVdaf, VdafConfig, VerifyInput,
};

/// The drafts and VDAFs measured, with a valid measurement of each.
fn cases() -> Vec<(DapVersion, &'static str, Measurement)> {
    use DapVersion::{Dap09, Dap18};
    vec![
        (Dap18, "count", Measurement::Count(true)),
        (Dap18, "sum:255", Measurement::Sum(200)),
        (Dap18, "sumvec:100:1", Measurement::SumVec(vec![1; 100])),
        (Dap18, "histogram:16", Measurement::Histogram(5)),
        (Dap18, "histogram:256", Measurement::Histogram(100)),
        (Dap18, "histogram:2048", Measurement::Histogram(1000)),
        (
            Dap18,
            "multihot:256:8",
            Measurement::Multihot((0..256).map(|i| i % 64 == 0).collect()),
        ),
        (Dap09, "count", Measurement::Count(true)),
        (Dap09, "sum:255", Measurement::Sum(200)),
        (Dap09, "histogram:256", Measurement::Histogram(100)),
        (Dap09, "histogram:2048", Measurement::Histogram(1000)),
    ]
}

/// A task of `vdaf` with fresh keys, and one report of `measurement`.
struct Setup {
    task: Task,
    keys: [HpkeKeypair; 2],
    verify_key: Vec<u8>,
    /// Leader's, then helper's.
    aggregators: [TaskAggregator; 2],
    report: Report,
}

fn setup(version: DapVersion, spec: &str, measurement: &Measurement) -> Setup {
    let vdaf_config = VdafConfig::from_spec(spec).expect("a VDAF spec");
    let (task, keys) = test_task_for(version, vdaf_config, 3600);
    let keys = [keys.leader, keys.helper];
    let report = DapClient::new(&task)
        .expect("client")
        .report(measurement, 1_800_000_000)
        .expect("report");
    let vdaf = TaskVdaf::new(&task).expect("vdaf");
    Setup {
        aggregators: [0, 1].map(|id| vdaf.aggregator(id).expect("aggregator")),
        verify_key: vec![7; version.verify_key_len()],
        task,
        keys,
        report,
    }
}

impl Setup {
    /// What intake does for one report on one server.
    fn intake(&self, role: Role) -> Provisional {
        let keys = &self.keys[role.agg_id()];
        let share = keys
            .open_report_share(&self.task, role, &self.report)
            .expect("opens");
        let input = VerifyInput {
            agg_id: role.agg_id(),
            nonce: &self.report.metadata.report_id.0,
            public_share: &self.report.public_share,
            input_share: &share,
        };
        self.aggregators[role.agg_id()]
            .start(&self.verify_key, &input)
            .expect("verifies")
    }
}

fn prio3(c: &mut Criterion) {
    for (version, spec, measurement) in cases() {
        let s = setup(version, spec, &measurement);
        let name = match version {
            DapVersion::Dap09 => format!("prio3/dap-09/{spec}"),
            DapVersion::Dap18 => format!("prio3/{spec}"),
        };
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20);
        let started = [Role::Leader, Role::Helper].map(|role| s.intake(role));
        let shares = [
            &started[0].verifier_share[..],
            &started[1].verifier_share[..],
        ];
        for role in [Role::Leader, Role::Helper] {
            group.bench_function(format!("intake/{}", role.name()), |b| {
                b.iter(|| black_box(s.intake(role)))
            });
            let (aggregator, check) =
                (&s.aggregators[role.agg_id()], &started[role.agg_id()].check);
            aggregator
                .decide(check, shares)
                .expect("the report is valid");
            group.bench_function(format!("finish/{}", role.name()), |b| {
                b.iter(|| black_box(aggregator.decide(check, shares)).is_ok())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, prio3);
criterion_main!(benches);
