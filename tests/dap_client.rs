//! The DAP client end to end: reports made by `DapClient` are decoded, opened by each
//! aggregator with its own key and the right AAD, verified on both sides, aggregated and
//! unsharded, and the result compared with the truth. And what must not open does not.

mod dap_common;

use dap_common::test_task;
use divvi::dap::messages::InputShareAad;
use divvi::dap::DapVersion;
use divvi::dap::{
    dap_context, decode_reports, encode_reports, AggregateResult, DapClient, HpkeKeypair,
    Measurement, Prio3Vdaf, Report, Role, Task, TaskId, VdafConfig, VerifyInput,
};

struct Deployment {
    task: Task,
    leader: HpkeKeypair,
    helper: HpkeKeypair,
    verify_key: [u8; 32],
}

fn deployment(vdaf: VdafConfig) -> Deployment {
    let (task, keys) = test_task(vdaf, 300);
    Deployment {
        task,
        leader: keys.leader,
        helper: keys.helper,
        verify_key: rand::random(),
    }
}

fn random_measurement(vdaf: &VdafConfig) -> Measurement {
    let below = |n: u64| rand::random::<u64>() % n;
    match *vdaf {
        VdafConfig::Count => Measurement::Count(below(2) == 1),
        VdafConfig::Sum { max_measurement } => Measurement::Sum(below(max_measurement + 1)),
        VdafConfig::SumVec {
            length,
            max_measurement,
            ..
        } => Measurement::SumVec(
            (0..length)
                .map(|_| below(max_measurement + 1).into())
                .collect(),
        ),
        VdafConfig::Histogram { length, .. } => {
            Measurement::Histogram(below(length.into()) as usize)
        }
        VdafConfig::MultihotCountVec {
            length, max_weight, ..
        } => {
            let mut flags = vec![false; length as usize];
            for _ in 0..below(max_weight + 1) {
                flags[below(length.into()) as usize] = true;
            }
            Measurement::Multihot(flags)
        }
        VdafConfig::Poplar1 { .. } => panic!("these tests make Prio3 measurements"),
    }
}

fn truth(vdaf: &VdafConfig, measurements: &[Measurement]) -> AggregateResult {
    let length = match *vdaf {
        VdafConfig::SumVec { length, .. }
        | VdafConfig::Histogram { length, .. }
        | VdafConfig::MultihotCountVec { length, .. } => length as usize,
        _ => 0,
    };
    let mut total = 0u128;
    let mut vector = vec![0u128; length];
    for m in measurements {
        match m {
            Measurement::Count(b) => total += u128::from(*b),
            Measurement::Sum(n) => total += u128::from(*n),
            Measurement::SumVec(v) => v.iter().zip(&mut vector).for_each(|(x, t)| *t += x),
            Measurement::Histogram(i) => vector[*i] += 1,
            Measurement::Multihot(f) => f
                .iter()
                .zip(&mut vector)
                .for_each(|(x, t)| *t += u128::from(*x)),
            Measurement::String(_) => panic!("these tests sum Prio3 measurements"),
        }
    }
    if length == 0 {
        AggregateResult::Integer(total)
    } else {
        AggregateResult::Vector(vector)
    }
}

/// What both aggregators do with an upload: open, verify, aggregate; then the collector.
fn aggregate_upload(d: &Deployment, body: &[u8]) -> AggregateResult {
    let vdaf = Prio3Vdaf::new(d.task.vdaf()).unwrap();
    let ctx = dap_context(d.task.task_id());
    let reports = decode_reports(DapVersion::Dap18, body).unwrap();
    let mut outs: [Vec<Vec<u8>>; 2] = Default::default();
    for report in &reports {
        let nonce = report.metadata.report_id.0;
        let mut verified = Vec::new();
        for (role, key) in [(Role::Leader, &d.leader), (Role::Helper, &d.helper)] {
            let input_share = key.open_report_share(&d.task, role, report).unwrap();
            let input = VerifyInput {
                agg_id: role.agg_id(),
                nonce: &nonce,
                public_share: &report.public_share,
                input_share: &input_share,
            };
            verified.push(vdaf.verify_init(&d.verify_key, &ctx, &input).unwrap());
        }
        let message = vdaf
            .verifier_shares_to_message(&ctx, &verified[0].0, [&verified[0].1, &verified[1].1])
            .unwrap();
        for (agg_id, (state, _)) in verified.iter().enumerate() {
            outs[agg_id].push(vdaf.verify_next(&ctx, state, &message).unwrap());
        }
    }
    let agg: Vec<Vec<u8>> = outs
        .iter()
        .map(|o| vdaf.aggregate(o.iter().map(Vec::as_slice)).unwrap())
        .collect();
    vdaf.unshard([&agg[0], &agg[1]], reports.len()).unwrap()
}

#[test]
fn reports_of_every_vdaf_aggregate_to_the_truth() {
    let specs = [
        "count",
        "sum:1000",
        "sumvec:5:7",
        "histogram:10",
        "multihot:8:3",
    ];
    for spec in specs {
        let vdaf = VdafConfig::from_spec(spec).unwrap();
        let d = deployment(vdaf.clone());
        let client = DapClient::new(&d.task).unwrap();
        let measurements: Vec<Measurement> = (0..25).map(|_| random_measurement(&vdaf)).collect();
        let reports: Vec<Report> = measurements
            .iter()
            .map(|m| client.report(m, 1_700_000_123).unwrap())
            .collect();
        assert!(reports
            .iter()
            .all(|r| r.metadata.time == 1_700_000_123 / 300));
        let body = encode_reports(DapVersion::Dap18, &reports).unwrap();
        let result = aggregate_upload(&d, &body);
        assert_eq!(result, truth(&vdaf, &measurements), "{spec}");
    }
}

#[test]
fn report_ids_are_fresh() {
    let d = deployment(VdafConfig::Count);
    let client = DapClient::new(&d.task).unwrap();
    let a = client.report(&Measurement::Count(true), 0).unwrap();
    let b = client.report(&Measurement::Count(true), 0).unwrap();
    assert_ne!(a.metadata.report_id, b.metadata.report_id);
}

#[test]
fn a_measurement_of_another_vdaf_is_refused() {
    let d = deployment(VdafConfig::Count);
    let client = DapClient::new(&d.task).unwrap();
    let err = client.report(&Measurement::Sum(3), 0).unwrap_err();
    assert!(err.to_string().contains("count"), "{err}");
}

#[test]
fn shares_open_only_for_their_role_report_and_task() {
    let d = deployment(VdafConfig::from_spec("histogram:4").unwrap());
    let client = DapClient::new(&d.task).unwrap();
    let report = client
        .report(&Measurement::Histogram(2), 1_700_000_000)
        .unwrap();
    let open =
        |key: &HpkeKeypair, task: &Task, role, r: &Report| key.open_report_share(task, role, r);

    // The untouched report opens for both.
    open(&d.leader, &d.task, Role::Leader, &report).unwrap();
    open(&d.helper, &d.task, Role::Helper, &report).unwrap();

    // The leader's share with the helper's info (same key, same AAD): refused.
    let task_binding = d.task.aad_task_binding();
    let aad = InputShareAad {
        version: d.task.version(),
        task_id: d.task.task_id(),
        task_binding: &task_binding,
        metadata: &report.metadata,
        public_share: &report.public_share,
    };
    d.leader
        .open_input_share(Role::Helper, &report.leader_encrypted_input_share, &aad)
        .unwrap_err();
    d.leader
        .open_input_share(Role::Leader, &report.leader_encrypted_input_share, &aad)
        .unwrap();

    // A tampered metadata byte: time, then report id.
    let mut later = report.clone();
    later.metadata.time += 1;
    open(&d.leader, &d.task, Role::Leader, &later).unwrap_err();
    let mut renamed = report.clone();
    renamed.metadata.report_id.0[0] ^= 1;
    open(&d.helper, &d.task, Role::Helper, &renamed).unwrap_err();
    // A tampered public share.
    let mut public = report.clone();
    public.public_share[0] ^= 1;
    open(&d.leader, &d.task, Role::Leader, &public).unwrap_err();

    // The same keys in another task (other id; or same id, other parameters).
    let mut other = d.task.params().clone();
    other.task_id = TaskId::random().unwrap();
    let other = Task::new(other).unwrap();
    let err = open(&d.leader, &other, Role::Leader, &report).unwrap_err();
    assert!(err.to_string().contains("leader input share"), "{err}");
    let mut precision = d.task.params().clone();
    precision.time_precision = 600;
    open(
        &d.helper,
        &Task::new(precision).unwrap(),
        Role::Helper,
        &report,
    )
    .unwrap_err();

    // The helper's key on the leader's share: another config id.
    let err = open(&d.helper, &d.task, Role::Leader, &report).unwrap_err();
    assert!(err.to_string().contains("config"), "{err}");
}
