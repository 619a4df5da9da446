//! One value of each record, with optional fields both set and unset.

use crate::wire::*;
use uuid::Uuid;

pub(super) fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("test uuid")
}

pub(super) fn ingestion_header(hamming_weight: Option<i32>) -> IngestionHeader {
    IngestionHeader {
        batch_uuid: uuid("ba097344-2b4e-45db-a002-c83f4a9adc63"),
        name: "test-aggregation".into(),
        bins: 10,
        epsilon: 0.11,
        prime: 4_293_918_721,
        number_of_servers: 2,
        hamming_weight,
        batch_start_time: 1_618_341_420_000,
        batch_end_time: 1_618_341_480_000,
        packet_file_digest: (0..32).collect(),
    }
}

pub(super) fn packet(i: u32, set: bool) -> DataSharePacket {
    DataSharePacket {
        uuid: Uuid::from_u128(u128::from(i) * 0x0001_0203_0405_0607),
        encrypted_payload: (0..200u32).map(|b| (b ^ i) as u8).collect(),
        encryption_key_id: set.then(|| "pha-fake-key-1".to_string()),
        r_pit: 998_314_904 + i64::from(i),
        version_configuration: set.then(|| "config-1".to_string()),
        device_nonce: set.then(|| vec![9; 16]),
    }
}

pub(super) fn validity_header(hamming_weight: Option<i32>) -> ValidityHeader {
    ValidityHeader {
        batch_uuid: uuid("ba097344-2b4e-45db-a002-c83f4a9adc63"),
        name: "test-aggregation".into(),
        bins: 10,
        epsilon: 0.11,
        prime: 4_293_918_721,
        number_of_servers: 2,
        hamming_weight,
        packet_file_digest: vec![0xab; 32],
    }
}

pub(super) fn validity_packet(i: u32) -> ValidityPacket {
    ValidityPacket {
        uuid: Uuid::from_u128(u128::from(i) + 1),
        f_r: 93_581_437,
        g_r: 3_239_014_267,
        h_r: i64::from(i),
    }
}

pub(super) fn sum_part(hamming_weight: Option<i32>, batches: usize) -> SumPart {
    SumPart {
        batch_uuids: (0..batches)
            .map(|i| Uuid::from_u128(i as u128 + 7))
            .collect(),
        name: "test-aggregation".into(),
        bins: 10,
        epsilon: 0.11,
        prime: 4_293_918_721,
        number_of_servers: 2,
        hamming_weight,
        sum: vec![5, 4, 5, 8, 7, 4, 5, 4, 6, 4_293_918_720],
        aggregation_start_time: 1_618_341_420_000,
        aggregation_end_time: -1,
        packet_file_digest: vec![0xe3; 32],
        total_individual_clients: 10,
    }
}

pub(super) fn invalid_packet(i: u32) -> InvalidPacket {
    InvalidPacket {
        uuid: Uuid::from_u128(u128::from(i) << 64),
    }
}

pub(super) fn signature(inline: bool) -> BatchSignature {
    BatchSignature {
        batch_header_signature: vec![0x30; 71],
        key_identifier: "signing-key-1".into(),
        batch_header: inline.then(|| vec![1, 2, 3]),
        packets: inline.then(Vec::new),
    }
}

/// A container written with an arbitrary schema, bypassing our records.
pub(super) fn write_raw(
    schema: &apache_avro::Schema,
    values: Vec<apache_avro::types::Value>,
) -> Vec<u8> {
    let mut writer = apache_avro::Writer::new(schema, Vec::new());
    for value in values {
        writer.append(value).expect("append raw");
    }
    writer.into_inner().expect("finish raw")
}

/// Also used by `inspect`'s tests.
pub(crate) fn dap_sum_part(batches: u128, collector_config_id: i32) -> DapSumPart {
    DapSumPart {
        batch_uuids: (0..batches).map(|i| Uuid::from_u128(i + 7)).collect(),
        name: "dap".into(),
        task_id: vec![9; 32],
        interval_start: 472_221,
        interval_duration: 24,
        report_count: 1_000,
        checksum: vec![0xc5; 32],
        collector_config_id,
        encrypted_aggregate_share_enc: vec![3; 32],
        encrypted_aggregate_share_payload: vec![4; 80],
        aggregation_start_time: 1_699_995_600_000,
        aggregation_end_time: 1_700_082_000_000,
        packet_file_digest: vec![0xe3; 32],
    }
}
