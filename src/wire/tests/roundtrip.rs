//! Every record survives encode → decode, in single-record and streaming form.

use super::fixtures::*;
use crate::wire::schema::NAMESPACE;
use crate::wire::*;
use std::fmt::Debug;

fn roundtrip<R: Record + PartialEq + Debug>(records: &[R]) {
    let file = encode_all(records).expect("encode_all");
    assert_eq!(record_name(&file).expect("record_name"), R::NAME);
    assert_eq!(decode_all::<R>(&file).expect("decode_all"), records);
    for record in records {
        let file = encode_single(record).expect("encode_single");
        assert_eq!(&decode_single::<R>(&file).expect("decode_single"), record);
    }
}

#[test]
fn schemas_parse_and_carry_their_names() {
    fn check<R: Record>() {
        let apache_avro::Schema::Record(record) = R::schema() else {
            panic!("{} is not a record schema", R::NAME);
        };
        assert_eq!(record.name.name, R::NAME);
        assert_eq!(record.name.namespace.as_deref(), Some(NAMESPACE));
    }
    check::<IngestionHeader>();
    check::<DataSharePacket>();
    check::<ValidityHeader>();
    check::<ValidityPacket>();
    check::<SumPart>();
    check::<InvalidPacket>();
    check::<BatchSignature>();
    check::<DapIngestionHeader>();
    check::<DapReportShare>();
    check::<DapSumPart>();
    check::<DapValidationHeader>();
    check::<DapVerifierShare>();
    check::<Poplar1RoundHeader>();
}

#[test]
fn every_record_roundtrips() {
    roundtrip(&[ingestion_header(None), ingestion_header(Some(3))]);
    roundtrip(&[packet(1, true), packet(2, false)]);
    roundtrip(&[validity_header(None), validity_header(Some(-1))]);
    roundtrip(&[validity_packet(0), validity_packet(u32::MAX)]);
    roundtrip(&[sum_part(None, 1), sum_part(Some(2), 0), sum_part(None, 5)]);
    roundtrip(&[invalid_packet(0), invalid_packet(42)]);
    roundtrip(&[signature(false), signature(true)]);
    roundtrip(&[DapIngestionHeader {
        batch_uuid: uuid::Uuid::from_u128(7),
        name: "dap".into(),
        task_id: vec![9; 32],
        report_count: 2,
        batch_start_time: 1_700_000_000_000,
        batch_end_time: 1_700_000_300_000,
        packet_file_digest: vec![1; 32],
        packet_file_digest_algorithm: crate::crypto::PacketDigest::Blake3,
    }]);
    roundtrip(&[Poplar1RoundHeader {
        batch_uuid: uuid::Uuid::from_u128(9),
        name: "hh".into(),
        task_id: vec![5; 32],
        pass_index: 3,
        round: 2,
        aggregation_parameter: vec![0, 7, 0, 0, 0, 1, 0x80],
        packet_file_digest: vec![6; 32],
    }]);
    roundtrip(&[DapValidationHeader {
        batch_uuid: uuid::Uuid::from_u128(8),
        name: "dap".into(),
        task_id: vec![3; 32],
        packet_file_digest: vec![2; 32],
        packet_file_digest_algorithm: crate::crypto::PacketDigest::Blake3,
    }]);
    roundtrip(&[
        DapVerifierShare {
            report_id: vec![1; 16],
            verifier_share: vec![4; 80],
        },
        DapVerifierShare {
            report_id: vec![2; 16],
            verifier_share: vec![],
        },
    ]);
    let share = |n: u8| DapReportShare {
        report_id: vec![n; 16],
        time: 5_666_666,
        public_share: vec![],
        config_id: 255,
        enc: vec![n; 32],
        payload: vec![n; 40],
    };
    roundtrip(&[share(1), share(2)]);
    roundtrip(&[dap_sum_part(2, 0), dap_sum_part(0, 255)]);
}

#[test]
fn dap_records_refuse_ids_of_the_wrong_length() {
    let file = encode_all(&[DapReportShare {
        report_id: vec![1; 15],
        time: 0,
        public_share: vec![],
        config_id: 1,
        enc: vec![1],
        payload: vec![1],
    }])
    .expect("encode");
    let err = decode_all::<DapReportShare>(&file).expect_err("15-byte report id");
    assert!(err.to_string().contains("report_id"), "{err}");
}

#[test]
fn dap_sum_parts_refuse_a_bad_checksum_task_id_or_config_id() {
    let refused = |part: DapSumPart, field: &str| {
        let file = encode_single(&part).expect("encode");
        let err = decode_single::<DapSumPart>(&file).expect_err(field);
        assert!(err.to_string().contains(field), "{err}");
        err.to_string()
    };
    let mut part = dap_sum_part(1, 1);
    part.checksum.pop();
    refused(part, "checksum");
    let mut part = dap_sum_part(1, 1);
    part.task_id.push(0);
    refused(part, "task_id");
    let err = refused(dap_sum_part(1, 256), "collector_config_id");
    assert!(
        err.contains("256 is not an HPKE config id (0-255)"),
        "{err}"
    );
    refused(dap_sum_part(1, -1), "collector_config_id");
}

#[test]
fn readers_and_writers_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<RecordReader<DataSharePacket, std::fs::File>>();
    send::<RecordWriter<DataSharePacket, std::fs::File>>();
}

#[test]
fn empty_file_is_a_valid_container() {
    let file = encode_all::<InvalidPacket>(&[]).expect("encode");
    assert!(!file.is_empty());
    assert_eq!(decode_all::<InvalidPacket>(&file).expect("decode"), vec![]);
}

#[test]
fn streaming_many_records_across_blocks() {
    let n = 5_000;
    let mut writer = RecordWriter::new(Vec::new()).expect("writer");
    for i in 0..n {
        writer.append(&packet(i, i % 2 == 0)).expect("append");
    }
    let file = writer.finish().expect("finish");
    let mut count = 0;
    for (i, record) in RecordReader::<DataSharePacket, _>::new(&file[..])
        .expect("reader")
        .enumerate()
    {
        let i = u32::try_from(i).expect("small");
        assert_eq!(record.expect("record"), packet(i, i % 2 == 0));
        count += 1;
    }
    assert_eq!(count, n);
}

#[test]
fn written_schema_keeps_uuid_logical_type_in_both_positions() {
    use apache_avro::Schema;
    let file = encode_single(&sum_part(None, 1)).expect("encode");
    let reader = apache_avro::Reader::new(&file[..]).expect("reader");
    let Schema::Record(record) = reader.writer_schema() else {
        panic!("not a record");
    };
    let Schema::Array(array) = &record.fields[0].schema else {
        panic!("batch_uuids not an array");
    };
    assert_eq!(*array.items, Schema::Uuid);
    let file = encode_single(&ingestion_header(None)).expect("encode");
    let reader = apache_avro::Reader::new(&file[..]).expect("reader");
    let Schema::Record(record) = reader.writer_schema() else {
        panic!("not a record");
    };
    assert_eq!(record.fields[0].schema, Schema::Uuid);
    assert_eq!(record.fields[7].schema, Schema::TimestampMillis);
}

#[test]
fn json_shows_hex_bytes_and_hyphenated_uuids() {
    let json = serde_json::to_value(signature(true)).expect("json");
    assert_eq!(json["batch_header"], "010203");
    assert_eq!(json["packets"], "");
    assert_eq!(
        json["batch_header_signature"].as_str().map(str::len),
        Some(142)
    );
    let json = serde_json::to_value(signature(false)).expect("json");
    assert!(json["batch_header"].is_null());
    let json = serde_json::to_value(sum_part(None, 1)).expect("json");
    assert_eq!(
        json["batch_uuids"][0],
        "00000000-0000-0000-0000-000000000007"
    );
    assert!(json["hamming_weight"].is_null());
}

#[test]
fn a_different_writer_schema_is_resolved_against_ours() {
    use apache_avro::{types::Value, Schema};
    // No prime / number_of_servers (ours has defaults for them), fields reordered,
    // bins written as int but epsilon as float (promoted to double).
    let writer = Schema::parse_str(
        r#"{"type":"record","name":"PrioValidityHeader","namespace":"org.abetterinternet.prio.v1",
            "fields":[{"name":"name","type":"string"},
                      {"name":"batch_uuid","type":"string"},
                      {"name":"bins","type":"int"},
                      {"name":"epsilon","type":"float"},
                      {"name":"hamming_weight","type":["int","null"]},
                      {"name":"packet_file_digest","type":"bytes"}]}"#,
    )
    .expect("schema");
    let value = Value::Record(vec![
        ("name".into(), Value::String("agg".into())),
        (
            "batch_uuid".into(),
            Value::String("ba097344-2b4e-45db-a002-c83f4a9adc63".into()),
        ),
        ("bins".into(), Value::Int(3)),
        ("epsilon".into(), Value::Float(0.5)),
        (
            "hamming_weight".into(),
            Value::Union(1, Box::new(Value::Null)),
        ),
        ("packet_file_digest".into(), Value::Bytes(vec![1])),
    ]);
    let file = write_raw(&writer, vec![value]);
    let header = decode_single::<ValidityHeader>(&file).expect("resolved");
    assert_eq!(
        header,
        ValidityHeader {
            batch_uuid: uuid("ba097344-2b4e-45db-a002-c83f4a9adc63"),
            name: "agg".into(),
            bins: 3,
            epsilon: 0.5,
            prime: 4_293_918_721,
            number_of_servers: 2,
            hamming_weight: None,
            packet_file_digest: vec![1],
        }
    );
}

/// DAP ingestion and validation headers written before the digest algorithm field read
/// as SHA-256; a header naming a digest divvi does not know is refused by name.
#[test]
fn dap_headers_name_their_digest_and_older_ones_are_sha256() {
    use crate::crypto::PacketDigest;
    use crate::wire::DapValidationHeader;
    use apache_avro::{types::Value, Schema};
    const FIELD: &str = "packet_file_digest_algorithm";

    /// `header` as a writer with the field named `algorithm` (None: without the field).
    fn written_as<H: Record>(header: &H, algorithm: Option<&str>) -> Result<H, WireError> {
        let path = format!("{}/schemas/{}.avsc", env!("CARGO_MANIFEST_DIR"), H::NAME);
        let text = std::fs::read_to_string(path).expect("our schema");
        let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let schema_fields = schema["fields"].as_array_mut().unwrap();
        schema_fields.retain(|f| f["name"] != FIELD);
        let Value::Record(mut fields) = header.to_avro() else {
            unreachable!("a record")
        };
        fields.retain(|(name, _)| name != FIELD);
        if let Some(name) = algorithm {
            schema_fields.push(serde_json::json!({"name": FIELD, "type": "string"}));
            fields.push((FIELD.into(), Value::String(name.into())));
        }
        let writer = Schema::parse_str(&schema.to_string()).expect("schema");
        decode_single::<H>(&write_raw(&writer, vec![Value::Record(fields)]))
    }

    fn check<H: Record + Debug>(header: H, algorithm_of: impl Fn(&H) -> PacketDigest) {
        let old = written_as(&header, None).expect("an older header");
        assert_eq!(algorithm_of(&old), PacketDigest::Sha256, "{}", H::NAME);
        let new = written_as(&header, Some("BLAKE3")).expect("a header naming BLAKE3");
        assert_eq!(algorithm_of(&new), PacketDigest::Blake3, "{}", H::NAME);
        let e = written_as(&header, Some("MD5")).unwrap_err().to_string();
        assert!(e.contains(FIELD) && e.contains("\"MD5\""), "{e}");
    }

    check(
        DapIngestionHeader {
            batch_uuid: uuid::Uuid::from_u128(4),
            name: "dap".into(),
            task_id: vec![9; 32],
            report_count: 2,
            batch_start_time: 0,
            batch_end_time: 300_000,
            packet_file_digest: vec![1; 32],
            packet_file_digest_algorithm: PacketDigest::Blake3,
        },
        |h| h.packet_file_digest_algorithm,
    );
    check(
        DapValidationHeader {
            batch_uuid: uuid::Uuid::from_u128(5),
            name: "dap".into(),
            task_id: vec![9; 32],
            packet_file_digest: vec![1; 32],
            packet_file_digest_algorithm: PacketDigest::Blake3,
        },
        |h| h.packet_file_digest_algorithm,
    );
}

#[test]
fn whole_files_are_deterministic() {
    use crate::wire::{decode_all, encode_all, InvalidPacket};
    let records: Vec<InvalidPacket> = (0..5u128)
        .map(|i| InvalidPacket {
            uuid: uuid::Uuid::from_u128(i * 7919),
        })
        .collect();
    let a = encode_all(&records).unwrap();
    assert_eq!(a, encode_all(&records).unwrap());
    assert_eq!(decode_all::<InvalidPacket>(&a).unwrap(), records);
    // Different content, different sync marker.
    let b = encode_all(&records[1..]).unwrap();
    assert_ne!(a[a.len() - 16..], b[b.len() - 16..]);
    assert!(
        decode_all::<InvalidPacket>(&encode_all::<InvalidPacket>(&[]).unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_large_deterministic_file_comes_in_blocks_a_reader_streams() {
    // ~100 bytes a packet: 3000 of them span several 64 KB blocks.
    let records: Vec<DataSharePacket> = (0..3000).map(|i| packet(i, true)).collect();
    let file = encode_all(&records).expect("encode_all");
    assert_eq!(encode_all(&records).expect("again"), file, "deterministic");
    assert_eq!(
        decode_all::<DataSharePacket>(&file).expect("decode"),
        records
    );
    // Blocks: each ends with the file's sync marker, the 16 bytes that end the header.
    let sync = &file[file.len() - 16..];
    let blocks = file.windows(16).filter(|w| *w == sync).count() - 1;
    let data_len: usize = records
        .iter()
        .map(|r| {
            apache_avro::to_avro_datum(DataSharePacket::schema(), r.to_avro())
                .unwrap()
                .len()
        })
        .sum();
    assert!(
        blocks >= data_len / 64_000 && blocks <= data_len / 64_000 + 1,
        "{blocks} blocks for {data_len} bytes of records"
    );
    assert!(blocks > 1);
}

/// The records written straight from their fields encode exactly as their Avro values do.
#[test]
fn records_serialized_straight_write_the_bytes_their_values_do() {
    fn same<R: Record>(records: &[R]) {
        let marker = [7u8; 16];
        let mut direct = apache_avro::Writer::append_to(R::schema(), Vec::new(), marker);
        let mut by_value = apache_avro::Writer::append_to(R::schema(), Vec::new(), marker);
        for r in records {
            r.append_to(&mut direct).expect("direct");
            by_value.append_value_ref(&r.to_avro()).expect("by value");
        }
        let (direct, by_value) = (direct.into_inner(), by_value.into_inner());
        let (direct, by_value) = (direct.expect("direct"), by_value.expect("by value"));
        assert!(!direct.is_empty(), "{}", R::NAME);
        assert_eq!(direct, by_value, "{}", R::NAME);
    }
    same(&[
        DapReportShare {
            report_id: vec![1; 16],
            time: -3,
            public_share: vec![],
            config_id: 255,
            enc: vec![9; 32],
            payload: (0..=255).collect(),
        },
        DapReportShare {
            report_id: vec![2; 16],
            time: 1_796_418_000,
            public_share: vec![5; 64],
            config_id: 0,
            enc: vec![1],
            payload: vec![2; 70_000],
        },
    ]);
    same(&[
        DapVerifierShare {
            report_id: vec![1; 16],
            verifier_share: vec![],
        },
        DapVerifierShare {
            report_id: vec![3; 16],
            verifier_share: vec![4; 300],
        },
    ]);
}
