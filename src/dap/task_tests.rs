use super::*;

fn key(byte: u8) -> HpkeConfig {
    HpkeConfig::x25519(byte, vec![byte; 32])
}

fn params() -> TaskParams {
    TaskParams {
        dap_version: DapVersion::Dap18,
        task_id: TaskId([7; 32]),
        task_info: b"ab".to_vec(),
        leader_aggregator_endpoint: "https://l/".into(),
        helper_aggregator_endpoint: "https://h/".into(),
        time_precision: 3600,
        min_batch_size: 100,
        batch_mode: BatchMode::TimeInterval,
        vdaf: VdafConfig::Histogram {
            length: 4,
            chunk_length: 2,
        },
        leader_hpke_config: key(1),
        helper_hpke_config: key(2),
        collector_hpke_config: key(3),
        dp: None,
    }
}

fn task() -> Task {
    Task::new(params()).unwrap()
}

fn field_of(e: TaskError) -> String {
    match e {
        TaskError::Field { field, .. } => field,
        other => panic!("expected a field error, got {other}"),
    }
}

#[test]
fn task_configuration_has_the_d18_layout() {
    let expected: Vec<u8> = [
        &[2u8, b'a', b'b'][..], // task_info<1..255>
        &[0, 10],
        b"https://l/", // leader Url
        &[0, 10],
        b"https://h/",                   // helper Url
        &3600u64.to_be_bytes(),          // time_precision
        &100u64.to_be_bytes(),           // min_batch_size
        &[1],                            // batch_mode time_interval
        &[0, 0],                         // batch_config: empty
        &[0, 0, 0, 4],                   // vdaf_type Prio3Histogram
        &[0, 8, 0, 0, 0, 4, 0, 0, 0, 2], // length 4, chunk_length 2
        &[0, 0],                         // extensions: none
    ]
    .concat();
    assert_eq!(task().task_configuration(), expected);
}

#[test]
fn vdaf_configuration_bytes_follow_appendix_b() {
    assert!(VdafConfig::Count.configuration_bytes().is_empty());
    assert_eq!(
        VdafConfig::Sum {
            max_measurement: 255
        }
        .configuration_bytes(),
        255u64.to_be_bytes()
    );
    let sumvec = VdafConfig::SumVec {
        length: 10,
        max_measurement: 255,
        chunk_length: 9,
    };
    assert_eq!(
        sumvec.configuration_bytes(),
        [
            &10u32.to_be_bytes()[..],
            &255u64.to_be_bytes(),
            &9u32.to_be_bytes()
        ]
        .concat()
    );
    // MultihotCountVec puts chunk_length before max_weight.
    let multihot = VdafConfig::MultihotCountVec {
        length: 4,
        max_weight: 2,
        chunk_length: 3,
    };
    assert_eq!(
        multihot.configuration_bytes(),
        [
            &4u32.to_be_bytes()[..],
            &3u32.to_be_bytes(),
            &2u64.to_be_bytes()
        ]
        .concat()
    );
    let poplar1 = VdafConfig::Poplar1 { bits: 256 };
    assert_eq!(poplar1.configuration_bytes(), 256u16.to_be_bytes());
    let codes: Vec<u32> = [VdafConfig::Count, sumvec, multihot, poplar1]
        .iter()
        .map(VdafConfig::vdaf_type)
        .collect();
    assert_eq!(codes, [1, 3, 5, 6]);
}

#[test]
fn json_round_trips_and_uses_base64url() {
    let t = task();
    let text = t.to_json();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["task_id"].as_str().unwrap().len(), 43);
    assert_eq!(
        value["vdaf"],
        serde_json::json!({"type": "histogram", "length": 4, "chunk_length": 2})
    );
    assert_eq!(Task::from_json(&text).unwrap(), t);
}

fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Task, TaskError> {
    let mut value: serde_json::Value = serde_json::from_str(&task().to_json()).unwrap();
    edit(&mut value);
    Task::from_json(&value.to_string())
}

#[test]
fn bad_fields_are_named() {
    use serde_json::json;
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("task_id", Box::new(|v| v["task_id"] = json!("not base64!"))),
        ("task_id", Box::new(|v| v["task_id"] = json!("AAAA"))),
        ("task_info", Box::new(|v| v["task_info"] = json!(""))),
        (
            "time_precision",
            Box::new(|v| v["time_precision"] = json!(0)),
        ),
        (
            "min_batch_size",
            Box::new(|v| v["min_batch_size"] = json!(0)),
        ),
        (
            "batch_mode",
            Box::new(|v| v["batch_mode"] = json!("leader_selected")),
        ),
        (
            "leader_aggregator_endpoint",
            Box::new(|v| v["leader_aggregator_endpoint"] = json!("")),
        ),
        (
            "vdaf.chunk_length",
            Box::new(|v| v["vdaf"] = json!({"type": "histogram", "length": 4, "chunk_length": 0})),
        ),
        (
            "vdaf.chunk_length",
            Box::new(|v| v["vdaf"] = json!({"type": "histogram", "length": 4, "chunk_length": 5})),
        ),
        (
            "vdaf.bits",
            Box::new(|v| v["vdaf"] = json!({"type": "poplar1", "bits": 12})),
        ),
        (
            "vdaf",
            Box::new(|v| v["vdaf"] = json!({"type": "count", "length": 4})),
        ),
        (
            "vdaf.max_measurement",
            Box::new(|v| v["vdaf"] = json!({"type": "sum", "max_measurement": 0})),
        ),
        (
            "helper_hpke_config",
            Box::new(|v| v["helper_hpke_config"]["kem_id"] = json!(16)),
        ),
        (
            "collector_hpke_config",
            Box::new(|v| v["collector_hpke_config"]["aead_id"] = json!(3)),
        ),
        (
            "leader_hpke_config.public_key",
            Box::new(|v| v["leader_hpke_config"]["public_key"] = json!("AAAA")),
        ),
        (
            "leader_hpke_config.public_key",
            Box::new(|v| v["leader_hpke_config"]["public_key"] = json!("AA==")),
        ),
    ];
    for (field, edit) in cases {
        let err = edited(edit).expect_err(field);
        assert!(err.to_string().contains(field), "{field}: {err}");
        assert_eq!(field_of(err), field);
    }
}

#[test]
fn unknown_and_duplicate_keys_are_refused() {
    let err = edited(|v| v["extra"] = serde_json::json!(1)).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let text = task().to_json().replacen(
        "\"min_batch_size\": 100,",
        "\"min_batch_size\": 100, \"min_batch_size\": 5,",
        1,
    );
    let err = Task::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("duplicate field"), "{err}");
}

#[test]
fn specs_parse_with_firefox_chunk_lengths() {
    use prio::vdaf::prio3::optimal_chunk_length;
    assert_eq!(VdafConfig::from_spec("count").unwrap(), VdafConfig::Count);
    assert_eq!(
        VdafConfig::from_spec("sum:255").unwrap(),
        VdafConfig::Sum {
            max_measurement: 255
        }
    );
    assert_eq!(
        VdafConfig::from_spec("histogram:8").unwrap(),
        VdafConfig::Histogram {
            length: 8,
            chunk_length: optimal_chunk_length(8) as u32
        }
    );
    assert_eq!(
        VdafConfig::from_spec("histogram:8:3").unwrap(),
        VdafConfig::Histogram {
            length: 8,
            chunk_length: 3
        }
    );
    // SumVec's gadget runs over length * bits(max) encoded elements (8 bits for 255).
    assert_eq!(
        VdafConfig::from_spec("sumvec:4:255").unwrap(),
        VdafConfig::SumVec {
            length: 4,
            max_measurement: 255,
            chunk_length: optimal_chunk_length(32) as u32
        }
    );
    assert_eq!(
        VdafConfig::from_spec("multihot:10:2:4").unwrap(),
        VdafConfig::MultihotCountVec {
            length: 10,
            max_weight: 2,
            chunk_length: 4
        }
    );
    for spec in [
        "count",
        "sum:255",
        "histogram:8",
        "sumvec:4:255:7",
        "multihot:10:2",
        "poplar1:256",
    ] {
        let vdaf = VdafConfig::from_spec(spec).unwrap();
        assert_eq!(VdafConfig::from_spec(&vdaf.spec()).unwrap(), vdaf, "{spec}");
    }
    for bad in [
        "",
        "counts",
        "count:1",
        "sum",
        "sum:0",
        "sum:-1",
        "histogram:0",
        "histogram:4:0",
        "histogram:4:5",
        "histogram:4:2:1",
        "sumvec:4",
        "multihot:4",
        "sumvec:4:x",
        "poplar1",
        "poplar1:0",
        "poplar1:12",
        "poplar1:4104",
        "poplar1:70000",
        "poplar1:8:1",
    ] {
        let err = VdafConfig::from_spec(bad).expect_err(bad);
        assert!(err.to_string().contains("vdaf"), "{bad}: {err}");
    }
}

#[test]
fn a_config_list_is_its_byte_length_then_each_config() {
    let (a, b) = (key(1), key(2));
    let list = encode_config_list(&[a.clone(), b.clone()]).unwrap();
    let (one, two) = (a.get_encoded().unwrap(), b.get_encoded().unwrap());
    // id, three u16 ids, u16 key length, the 32-byte X25519 key.
    assert_eq!(one.len(), 1 + 6 + 2 + 32);
    assert_eq!(&list[..2], &((one.len() + two.len()) as u16).to_be_bytes());
    assert_eq!(list[2..], [one, two].concat());
}

#[test]
fn the_dap_version_is_in_the_file_and_defaults_to_dap18() {
    use serde_json::json;
    let t = task();
    assert_eq!(t.version(), DapVersion::Dap18);
    let value: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(value["dap_version"], "dap-18");
    // A file written before DAP-09 support has no such field: DAP-18.
    let old = edited(|v| {
        v.as_object_mut().unwrap().remove("dap_version");
    })
    .unwrap();
    assert_eq!(old, t);
    let d09 = edited(|v| v["dap_version"] = json!("dap-09")).unwrap();
    assert_eq!(d09.version(), DapVersion::Dap09);
    assert_eq!(Task::from_json(&d09.to_json()).unwrap(), d09);
    assert_eq!(
        field_of(edited(|v| v["dap_version"] = json!("dap-07")).unwrap_err()),
        "dap_version"
    );
    // DAP-09 binds only the task id into AADs, and stamps reports in seconds.
    assert!(d09.aad_task_binding().is_empty());
    assert_eq!(d09.report_time(7_201), 7_200);
    assert_eq!(d09.time_unit(7_200), 2);
    assert_eq!(d09.time_seconds(7_200), Some(7_200));
    assert_eq!(t.report_time(7_201), 2);
    assert_eq!(t.time_seconds(2), Some(7_200));
}

#[test]
fn a_dap09_task_takes_only_vdaf08s_vdafs() {
    use serde_json::json;
    let as_09 = |vdaf: serde_json::Value| {
        edited(|v| {
            v["dap_version"] = json!("dap-09");
            v["vdaf"] = vdaf;
        })
    };
    as_09(json!({"type": "sum", "max_measurement": 255})).unwrap();
    as_09(json!({"type": "sumvec", "length": 4, "max_measurement": 1, "chunk_length": 2})).unwrap();
    for (vdaf, field) in [
        (
            json!({"type": "sum", "max_measurement": 256}),
            "vdaf.max_measurement",
        ),
        (
            json!({"type": "sumvec", "length": 4, "max_measurement": 6, "chunk_length": 2}),
            "vdaf.max_measurement",
        ),
        (
            json!({"type": "multihot", "length": 4, "max_weight": 2, "chunk_length": 2}),
            "vdaf",
        ),
        (json!({"type": "poplar1", "bits": 64}), "vdaf"),
    ] {
        assert_eq!(field_of(as_09(vdaf.clone()).unwrap_err()), field, "{vdaf}");
    }
}

#[test]
fn dp_is_carried_by_any_task_and_read_exactly() {
    use crate::dap::dp::{DpStrategy, Epsilon};
    let mut p = params();
    for vdaf in [VdafConfig::Poplar1 { bits: 64 }, VdafConfig::Count] {
        p.vdaf = vdaf;
        p.dp = Some(DpStrategy::DiscreteLaplace {
            epsilon: Epsilon::parse("0.5").unwrap(),
            budget: Some(Epsilon::parse("10").unwrap()),
        });
        let t = Task::new(p.clone()).unwrap();
        let text = t.to_json();
        assert!(text.contains("\"epsilon\": \"1/2\""), "{text}");
        assert!(text.contains("\"budget\": \"10\""), "{text}");
        assert_eq!(Task::from_json(&text).unwrap(), t);
    }
    let text = Task::new(p).unwrap().to_json();
    // A bad mechanism, epsilon or budget names the field.
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["dp"]["epsilon"] = "0".into();
    assert_eq!(
        field_of(Task::from_json(&value.to_string()).unwrap_err()),
        "dp"
    );
    value["dp"] =
        serde_json::json!({"mechanism": "discrete_laplace", "epsilon": "1", "budget": "1/2"});
    assert_eq!(
        field_of(Task::from_json(&value.to_string()).unwrap_err()),
        "dp"
    );
    value["dp"] = serde_json::json!({"mechanism": "gaussian", "epsilon": "1"});
    assert_eq!(
        field_of(Task::from_json(&value.to_string()).unwrap_err()),
        "dp"
    );
}
