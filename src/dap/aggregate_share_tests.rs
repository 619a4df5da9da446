use super::*;
use crate::dap::task::{Task, TaskParams, VdafConfig};

const SHARE: &[u8] = b"an encoded aggregate share";

fn task_with(collector: HpkeConfig, min_batch_size: u64) -> Task {
    let key = |id: u8| HpkeConfig::x25519(id, vec![id; 32]);
    Task::new(TaskParams {
        dap_version: DapVersion::Dap18,
        task_id: TaskId([7; 32]),
        task_info: b"ab".to_vec(),
        leader_aggregator_endpoint: "https://l/".into(),
        helper_aggregator_endpoint: "https://h/".into(),
        time_precision: 3600,
        min_batch_size,
        batch_mode: BatchMode::TimeInterval,
        vdaf: VdafConfig::Sum {
            max_measurement: 255,
        },
        leader_hpke_config: key(1),
        helper_hpke_config: key(2),
        collector_hpke_config: collector,
        dp: None,
    })
    .unwrap()
}

/// A task whose collector key is `collector`, and its TaskConfiguration.
fn setup() -> (HpkeKeypair, Task, Vec<u8>) {
    let collector = HpkeKeypair::generate(9).unwrap();
    let task = task_with(collector.config().clone(), 100);
    let configuration = task.task_configuration();
    (collector, task, configuration)
}

const INTERVAL: BatchInterval = BatchInterval {
    start: 472_000,
    duration: 24,
};

fn seal(task: &Task, sender: Role, aad: &AggregateShareAad) -> HpkeCiphertext {
    seal_aggregate_share(&task.params().collector_hpke_config, sender, aad, SHARE).unwrap()
}

fn aad<'a>(task: &'a Task, configuration: &'a [u8]) -> AggregateShareAad<'a> {
    AggregateShareAad::for_task(task, configuration, INTERVAL)
}

#[test]
fn both_servers_shares_round_trip() {
    let (collector, task, configuration) = setup();
    let aad = aad(&task, &configuration);
    for sender in [Role::Leader, Role::Helper] {
        let sealed = seal(&task, sender, &aad);
        assert_eq!(sealed.config_id, 9);
        assert_eq!(sealed.enc.len(), 32);
        let opened = collector
            .open_aggregate_share(sender, &sealed, &aad)
            .unwrap();
        assert_eq!(opened, SHARE);
    }
}

#[test]
fn opening_fails_when_anything_bound_differs() {
    let (collector, task, configuration) = setup();
    let aad = aad(&task, &configuration);
    let sealed = seal(&task, Role::Leader, &aad);
    let refused = |sender: Role, ciphertext: &HpkeCiphertext, aad: &AggregateShareAad| {
        collector
            .open_aggregate_share(sender, ciphertext, aad)
            .unwrap_err()
            .to_string()
    };

    // The helper's role: the info differs.
    let err = refused(Role::Helper, &sealed, &aad);
    assert!(err.starts_with("helper aggregate share:"), "{err}");

    // Another batch interval.
    for interval in [
        BatchInterval {
            start: INTERVAL.start + 1,
            ..INTERVAL
        },
        BatchInterval {
            duration: INTERVAL.duration - 1,
            ..INTERVAL
        },
    ] {
        let other = AggregateShareAad { interval, ..aad };
        let err = refused(Role::Leader, &sealed, &other);
        assert!(err.starts_with("leader aggregate share:"), "{err}");
    }

    // Another aggregation parameter.
    let other = AggregateShareAad {
        agg_param: &[0],
        ..aad
    };
    refused(Role::Leader, &sealed, &other);

    // Another task configuration (same task id, another min_batch_size).
    let changed = task_with(collector.config().clone(), 101).task_configuration();
    assert_ne!(changed, configuration);
    let other = AggregateShareAad {
        task_binding: &changed,
        ..aad
    };
    refused(Role::Leader, &sealed, &other);

    // Another task id.
    let other_id = TaskId([8; 32]);
    let other = AggregateShareAad {
        task_id: &other_id,
        ..aad
    };
    refused(Role::Leader, &sealed, &other);

    // A ciphertext for another config id is refused before any decryption.
    let mut wrong_id = sealed.clone();
    wrong_id.config_id = 10;
    let err = refused(Role::Leader, &wrong_id, &aad);
    assert_eq!(
        err,
        "leader aggregate share: ciphertext is for HPKE config 10, this key is config 9"
    );

    // Another key under the same id.
    let impostor = HpkeKeypair::generate(9).unwrap();
    assert!(impostor
        .open_aggregate_share(Role::Leader, &sealed, &aad)
        .is_err());
    // And the untouched ciphertext still opens.
    assert_eq!(
        collector
            .open_aggregate_share(Role::Leader, &sealed, &aad)
            .unwrap(),
        SHARE
    );
}

#[test]
fn errors_name_the_role_and_no_key() {
    let (collector, task, configuration) = setup();
    let aad = aad(&task, &configuration);
    let mut bad = task.params().collector_hpke_config.clone();
    bad.public_key.truncate(5);
    let err = seal_aggregate_share(&bad, Role::Helper, &aad, SHARE)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("collector HPKE config:"), "{err}");
    assert!(
        err.ends_with("(sealing the helper aggregate share)"),
        "{err}"
    );
    let sealed = seal(&task, Role::Helper, &aad);
    let err = collector
        .open_aggregate_share(Role::Leader, &sealed, &aad)
        .unwrap_err()
        .to_string();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let private = hex(&collector.private_key_bytes());
    let public = hex(&collector.config().public_key);
    assert!(err.starts_with("leader aggregate share:"), "{err}");
    assert!(!err.contains(&private) && !err.contains(&public), "{err}");
}

#[test]
fn info_is_the_d18_label_then_sender_then_collector() {
    // "dap-18 aggregate share" (DAP-FORMAT.md §4: the "dap-09 aggregate share" hex with
    // the "18" of the "dap-18 input share" hex).
    let label = [
        0x64, 0x61, 0x70, 0x2d, 0x31, 0x38, 0x20, 0x61, 0x67, 0x67, 0x72, 0x65, 0x67, 0x61, 0x74,
        0x65, 0x20, 0x73, 0x68, 0x61, 0x72, 0x65,
    ];
    assert_eq!(
        aggregate_share_info(DapVersion::Dap18, Role::Leader),
        [&label[..], &[0x02, 0x00]].concat()
    );
    assert_eq!(
        aggregate_share_info(DapVersion::Dap18, Role::Helper),
        [&label[..], &[0x03, 0x00]].concat()
    );
    assert_ne!(
        aggregate_share_info(DapVersion::Dap18, Role::Leader),
        crate::dap::hpke::input_share_info(DapVersion::Dap18, Role::Leader)
    );
}

#[test]
fn aad_has_the_d18_layout() {
    let task = task_with(HpkeConfig::x25519(3, vec![3; 32]), 100);
    let configuration = task.task_configuration();
    // task_info 3, two Urls 12 each, time_precision 8, min_batch_size 8, batch_mode 1,
    // batch_config 2, vdaf_type 4, Sum's vdaf_configuration 2 + 8, extensions 2.
    assert_eq!(configuration.len(), 62);
    let agg_param = [0xa1, 0xa2, 0xa3];
    let bytes = AggregateShareAad {
        agg_param: &agg_param,
        ..AggregateShareAad::for_task(&task, &configuration, INTERVAL)
    }
    .to_bytes()
    .unwrap();
    // task_id 32 | TaskConfiguration 62 | batch_mode 1 | u16 16 | Interval 16 |
    // u32 3 | agg_param 3 | u16 0.
    assert_eq!(bytes.len(), 32 + 62 + 1 + 2 + 16 + 4 + 3 + 2);
    assert_eq!(bytes[..32], [7; 32]);
    assert_eq!(bytes[32..94], configuration[..]);
    let query = &bytes[94..];
    assert_eq!(query[0], 1, "batch_mode time_interval");
    assert_eq!(query[1..3], [0, 16], "Query.config length");
    assert_eq!(query[3..11], 472_000u64.to_be_bytes(), "Interval.start");
    assert_eq!(query[11..19], 24u64.to_be_bytes(), "Interval.duration");
    assert_eq!(query[19..23], [0, 0, 0, 3], "agg_param length");
    assert_eq!(query[23..26], agg_param);
    assert_eq!(query[26..], [0, 0], "extensions: none");

    // Prio3's empty aggregation parameter still carries its u32 prefix.
    let empty = aad(&task, &configuration).to_bytes().unwrap();
    assert_eq!(empty.len(), bytes.len() - 3);
    assert_eq!(empty[94 + 19..], [0, 0, 0, 0, 0, 0]);
}

#[test]
fn checksum_is_xor_of_sha256_order_free_and_combines() {
    let ids: Vec<ReportId> = (0..5u8).map(|i| ReportId([i; 16])).collect();
    assert_eq!(ReportIdChecksum::new().as_bytes(), &[0; 32]);
    assert_eq!(ReportIdChecksum::default(), ReportIdChecksum::new());

    let mut one = ReportIdChecksum::new();
    one.add(&ids[1]);
    assert_eq!(one.as_bytes(), &crate::crypto::sha256(&[1; 16]));

    let mut forward = ReportIdChecksum::new();
    ids.iter().for_each(|id| forward.add(id));
    let mut backward = ReportIdChecksum::new();
    ids.iter().rev().for_each(|id| backward.add(id));
    assert_eq!(forward, backward);
    assert_ne!(forward, ReportIdChecksum::new());

    let (mut left, mut right) = (ReportIdChecksum::new(), ReportIdChecksum::new());
    ids[..2].iter().for_each(|id| left.add(id));
    ids[2..].iter().for_each(|id| right.add(id));
    left.combine(&right);
    assert_eq!(left, forward);
    assert_eq!(ReportIdChecksum::from_bytes(*forward.as_bytes()), forward);

    // Combining with the empty checksum changes nothing.
    let mut same = forward;
    same.combine(&ReportIdChecksum::new());
    assert_eq!(same, forward);
}

#[test]
fn windows_become_intervals_in_time_precision_units() {
    let interval = BatchInterval::from_window(1_699_995_600, 1_700_082_000, 3600).unwrap();
    assert_eq!(
        interval,
        BatchInterval {
            start: 472_221,
            duration: 24
        }
    );
    assert_eq!(interval.window(3600), Some((1_699_995_600, 1_700_082_000)));
    assert_eq!(
        BatchInterval::from_window(0, 1, 1).unwrap(),
        BatchInterval {
            start: 0,
            duration: 1
        }
    );
    assert_eq!(
        BatchInterval {
            start: u64::MAX,
            duration: 1
        }
        .window(1),
        None
    );
}

#[test]
fn misaligned_empty_and_impossible_windows_are_refused() {
    let err = |start, end, precision| {
        BatchInterval::from_window(start, end, precision)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(1_800, 7_200, 3600),
        "window start 1800 (Unix seconds) is not a multiple of the task's time_precision \
         of 3600 seconds"
    );
    assert_eq!(
        err(3_600, 9_000, 3600),
        "window end 9000 (Unix seconds) is not a multiple of the task's time_precision \
         of 3600 seconds"
    );
    assert_eq!(
        err(7_200, 7_200, 3600),
        "window 7200..7200 (Unix seconds) is empty: it must end after it starts"
    );
    assert!(err(7_200, 3_600, 3600).contains("empty"));
    assert_eq!(
        BatchInterval::from_window(0, 3600, 0),
        Err(IntervalError::ZeroPrecision)
    );
    assert_eq!(
        BatchInterval::from_window(-3600, 3600, 3600),
        Err(IntervalError::BeforeEpoch { start: -3600 })
    );
}

#[test]
fn dap09_aad_and_info_have_the_d09_layout() {
    let mut params = task_with(HpkeConfig::x25519(3, vec![3; 32]), 100)
        .params()
        .clone();
    params.dap_version = DapVersion::Dap09;
    let task = Task::new(params).unwrap();
    let binding = task.aad_task_binding();
    assert!(binding.is_empty(), "DAP-09 binds only the task id");
    let bytes = AggregateShareAad::for_task(&task, &binding, INTERVAL)
        .to_bytes()
        .unwrap();
    // task_id 32 | u32 0 (no agg_param) | query_type 1 | Interval in seconds.
    let expected = [
        &[7u8; 32][..],
        &[0, 0, 0, 0],
        &[1],
        &(472_000u64 * 3600).to_be_bytes(),
        &(24u64 * 3600).to_be_bytes(),
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(
        aggregate_share_info(DapVersion::Dap09, Role::Helper),
        [&b"dap-09 aggregate share"[..], &[0x03, 0x00]].concat()
    );
    // A share sealed under DAP-09's info and AAD opens only under them.
    let collector = HpkeKeypair::generate(9).unwrap();
    let mut params = task.params().clone();
    params.collector_hpke_config = collector.config().clone();
    let task = Task::new(params).unwrap();
    let aad = AggregateShareAad::for_task(&task, &binding, INTERVAL);
    let sealed = seal(&task, Role::Leader, &aad);
    assert_eq!(
        collector
            .open_aggregate_share(Role::Leader, &sealed, &aad)
            .unwrap(),
        SHARE
    );
    let as_18 = AggregateShareAad {
        version: DapVersion::Dap18,
        ..AggregateShareAad::for_task(&task, &binding, INTERVAL)
    };
    assert!(collector
        .open_aggregate_share(Role::Leader, &sealed, &as_18)
        .is_err());
}
