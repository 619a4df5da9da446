//! Crafted files that made apache-avro 0.21 panic or abort the process on its own.

use super::fixtures::*;
use crate::wire::*;

fn push_long(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw > 0x7f {
        out.push((raw & 0x7f) as u8 | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// Appends to a bare container header one block of `count` records made of `datum`,
/// closed with the header's sync marker (its last 16 bytes).
fn push_block(file: &mut Vec<u8>, count: i64, datum: &[u8]) {
    let marker = file[file.len() - 16..].to_vec();
    push_long(file, count);
    push_long(file, i64::try_from(datum.len()).expect("small"));
    file.extend_from_slice(datum);
    file.extend_from_slice(&marker);
}

/// A container with our header for `R` and one block of `count` records made of `datum`.
fn with_block<R: Record>(count: i64, datum: &[u8]) -> Vec<u8> {
    let mut file = encode_all::<R>(&[]).expect("header");
    push_block(&mut file, count, datum);
    file
}

/// A container whose header carries `schema` verbatim.
fn with_schema(schema: &str) -> Vec<u8> {
    let mut file = b"Obj\x01".to_vec();
    push_long(&mut file, 1);
    push_long(&mut file, 11);
    file.extend_from_slice(b"avro.schema");
    push_long(&mut file, i64::try_from(schema.len()).expect("small"));
    file.extend_from_slice(schema.as_bytes());
    push_long(&mut file, 0);
    file.extend_from_slice(&[7; 16]);
    file
}

#[test]
fn huge_array_count_is_refused_not_allocated() {
    // batch_uuids claims 500 million items in a 5-byte record (apache-avro: 28 GB, abort).
    let mut datum = Vec::new();
    push_long(&mut datum, 500_000_000);
    let file = with_block::<SumPart>(1, &datum);
    assert!(matches!(
        decode_all::<SumPart>(&file),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn huge_lengths_and_counts_are_refused() {
    // A bytes field claiming 400 MB.
    let mut datum = Vec::new();
    push_long(&mut datum, 400_000_000);
    let file = with_block::<BatchSignature>(1, &datum);
    assert!(matches!(
        decode_all::<BatchSignature>(&file),
        Err(WireError::Malformed(_))
    ));
    // A block claiming more records than bytes, or a negative count.
    for count in [1_000_000, -1, 0] {
        let file = with_block::<InvalidPacket>(count, b"\x00");
        assert!(matches!(
            decode_all::<InvalidPacket>(&file),
            Err(WireError::Malformed(_))
        ));
    }
    // A block claiming 400 MB but ending at once: no 400 MB buffer, just an error.
    let mut file = encode_all::<InvalidPacket>(&[]).expect("header");
    push_long(&mut file, 1);
    push_long(&mut file, 400_000_000);
    assert!(matches!(
        decode_all::<InvalidPacket>(&file),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn invalid_names_in_writer_schema_are_refused() {
    // apache-avro unwraps name parsing: these panicked inside Schema::parse.
    let bad_top = r#"{"type":"record","name":"PrioD`ta","fields":[]}"#;
    assert!(matches!(
        decode_all::<DataSharePacket>(&with_schema(bad_top)),
        Err(WireError::WrongRecord { .. })
    ));
    for nested in [
        r#"{"name":"x","type":{"type":"fixed","name":"bad name","size":1}}"#,
        r#"{"name":"x","type":{"type":"record","name":"R","aliases":["1x"],"fields":[]}}"#,
        r#"{"name":"x","type":{"type":"no such-type"}}"#,
    ] {
        let schema = format!(
            r#"{{"type":"record","name":"PrioInvalidPacket",
                "namespace":"org.abetterinternet.prio.v1","fields":[{nested}]}}"#
        );
        let file = with_schema(&schema);
        assert!(
            matches!(
                decode_all::<InvalidPacket>(&file),
                Err(WireError::NotAvro(_))
            ),
            "{nested}"
        );
        assert_eq!(record_name(&file).expect("name"), "PrioInvalidPacket");
    }
}

#[test]
fn unsupported_codec_and_recursive_schemas_are_refused() {
    let mut file = b"Obj\x01".to_vec();
    push_long(&mut file, 1);
    push_long(&mut file, 10);
    file.extend_from_slice(b"avro.codec");
    push_long(&mut file, 7);
    file.extend_from_slice(b"deflate");
    push_long(&mut file, 0);
    file.extend_from_slice(&[7; 16]);
    assert!(matches!(
        decode_all::<InvalidPacket>(&file),
        Err(WireError::NotAvro(_))
    ));
    let recursive = r#"{"type":"record","name":"PrioInvalidPacket",
        "namespace":"org.abetterinternet.prio.v1",
        "fields":[{"name":"uuid","type":"string"},
                  {"name":"next","type":["null","PrioInvalidPacket"]}]}"#;
    assert!(matches!(
        decode_all::<InvalidPacket>(&with_schema(recursive)),
        Err(WireError::WrongRecord { .. })
    ));
}

#[test]
fn random_corruption_never_panics() {
    let records: Vec<_> = (0..30).map(|i| sum_part(Some(1), i % 4)).collect();
    let file = encode_all(&records).expect("encode");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        // xorshift64: a fixed, reproducible stream.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut bad = file.clone();
        for _ in 0..1 + next() % 4 {
            let pos = usize::try_from(next() % bad.len() as u64).expect("fits");
            bad[pos] = (next() & 0xff) as u8;
        }
        let _ = decode_all::<SumPart>(&bad);
        let _ = record_name(&bad);
    }
}

/// A block of one record `datum` after a header carrying `schema`.
fn with_schema_and_record(schema: &str, datum: &[u8]) -> Vec<u8> {
    let mut file = with_schema(schema);
    push_block(&mut file, 1, datum);
    file
}

#[test]
fn values_that_take_no_bytes_are_refused() {
    // Found while writing the fuzz targets: nulls take no bytes, yet apache-avro spends time and memory on
    // each. A 4 KB record whose array declares 4 million nulls took seconds and 500 MB.
    let uuid = b"0b0e2f5a-0000-4000-8000-000000000001";
    let mut datum = Vec::new();
    push_long(&mut datum, 36);
    datum.extend_from_slice(uuid);
    // Array blocks whose counts are as large as the bytes after them.
    let mut blocks = vec![0u8];
    for _ in 0..2000 {
        let mut count = Vec::new();
        push_long(&mut count, i64::try_from(blocks.len()).expect("small"));
        blocks.splice(0..0, count);
    }
    datum.extend_from_slice(&blocks);
    let nulls = r#"{"type":"record","name":"PrioInvalidPacket",
        "namespace":"org.abetterinternet.prio.v1",
        "fields":[{"name":"uuid","type":"string"},
                  {"name":"x","type":{"type":"array","items":"null"}}]}"#;
    let e = decode_all::<InvalidPacket>(&with_schema_and_record(nulls, &datum)).unwrap_err();
    assert!(e.to_string().contains("more values"), "{e}");

    // Thousands of null fields in a 37-byte record: the same, one record at a time.
    let fields: Vec<String> = (0..2000)
        .map(|i| format!(r#",{{"name":"n{i}","type":"null"}}"#))
        .collect();
    let wide = format!(
        r#"{{"type":"record","name":"PrioInvalidPacket",
            "namespace":"org.abetterinternet.prio.v1",
            "fields":[{{"name":"uuid","type":"string"}}{}]}}"#,
        fields.concat()
    );
    let e = decode_all::<InvalidPacket>(&with_schema_and_record(&wide, &datum[..37])).unwrap_err();
    assert!(e.to_string().contains("more values"), "{e}");
}

#[test]
fn the_value_bound_leaves_dense_real_records_alone() {
    // A sum of zeros is the densest real record: one value per byte.
    let mut part = sum_part(Some(1), 3);
    part.sum = vec![0; 1 << 16];
    let file = encode_all(std::slice::from_ref(&part)).expect("encode");
    assert_eq!(decode_all::<SumPart>(&file).expect("decode"), vec![part]);
}
