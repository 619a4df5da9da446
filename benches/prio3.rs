//! Per-report costs of a DAP-18 Prio3 task on the servers, before any I/O, as the
//! pipeline splits verification: intake opens the report's input share (HPKE, X25519),
//! starts verification (`verify_init`) and finishes the output share provisionally
//! (`Prio3Aggregator::start`); aggregate decides the report from both verifier shares and
//! the seed intake kept (`Prio3Aggregator::decide`). Intake is the whole of open +
//! verification start + finish but for the decision, so it is the floor a DAP pipeline's
//! intake is measured against.
//!
//! Run with `cargo bench --bench prio3`; ids read `intake/<vdaf>/<role>` and
//! `finish/<vdaf>/<role>`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use divvi::dap::task::BatchMode;
use divvi::dap::{
    dap_context, DapClient, HpkeKeypair, Measurement, Prio3Aggregator, Prio3Vdaf, Provisional,
    Report, Role, Task, TaskId, TaskParams, VdafConfig, VerifyInput,
};

/// The VDAFs measured, with a valid measurement of each.
fn cases() -> Vec<(&'static str, Measurement)> {
    vec![
        ("count", Measurement::Count(true)),
        ("sum:255", Measurement::Sum(200)),
        ("sumvec:100:1", Measurement::SumVec(vec![1; 100])),
        ("histogram:16", Measurement::Histogram(5)),
        ("histogram:256", Measurement::Histogram(100)),
        ("histogram:2048", Measurement::Histogram(1000)),
        (
            "multihot:256:8",
            Measurement::Multihot((0..256).map(|i| i % 64 == 0).collect()),
        ),
    ]
}

/// A task of `vdaf` with fresh keys, and one report of `measurement`.
struct Setup {
    task: Task,
    keys: [HpkeKeypair; 2],
    verify_key: [u8; 32],
    /// Leader's, then helper's.
    aggregators: [Prio3Aggregator; 2],
    ctx: Vec<u8>,
    report: Report,
}

fn setup(spec: &str, measurement: &Measurement) -> Setup {
    let vdaf_config = VdafConfig::from_spec(spec).expect("a VDAF spec");
    let keys = [
        HpkeKeypair::generate(1).expect("key"),
        HpkeKeypair::generate(2).expect("key"),
    ];
    let collector = HpkeKeypair::generate(3).expect("key");
    let task = Task::new(TaskParams {
        task_id: TaskId::random().expect("random"),
        task_info: b"bench".to_vec(),
        leader_aggregator_endpoint: "https://leader.example/".into(),
        helper_aggregator_endpoint: "https://helper.example/".into(),
        time_precision: 3600,
        min_batch_size: 1,
        batch_mode: BatchMode::TimeInterval,
        vdaf: vdaf_config.clone(),
        leader_hpke_config: keys[0].config().clone(),
        helper_hpke_config: keys[1].config().clone(),
        collector_hpke_config: collector.config().clone(),
    })
    .expect("task");
    let report = DapClient::new(&task)
        .expect("client")
        .report(measurement, 1_800_000_000)
        .expect("report");
    Setup {
        aggregators: [0, 1].map(|id| {
            Prio3Aggregator::new(&Prio3Vdaf::new(&vdaf_config).expect("vdaf"), id)
                .expect("aggregator")
        }),
        ctx: dap_context(task.task_id()),
        verify_key: [7; 32],
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
            .start(&self.verify_key, &self.ctx, &input)
            .expect("verifies")
    }
}

fn prio3(c: &mut Criterion) {
    for (spec, measurement) in cases() {
        let s = setup(spec, &measurement);
        let mut group = c.benchmark_group(format!("prio3/{spec}"));
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
                .decide(&s.ctx, check, shares)
                .expect("the report is valid");
            group.bench_function(format!("finish/{}", role.name()), |b| {
                b.iter(|| black_box(aggregator.decide(&s.ctx, check, shares)).is_ok())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, prio3);
criterion_main!(benches);
