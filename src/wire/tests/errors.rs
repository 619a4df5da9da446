//! Malformed, mismatched and failing input gives errors, never panics.

use super::fixtures::*;
use crate::wire::*;
use apache_avro::{types::Value, Schema};
use std::io::{self, Read, Write};

#[test]
fn decode_single_wants_exactly_one_record() {
    let none = encode_all::<SumPart>(&[]).expect("encode");
    assert!(matches!(
        decode_single::<SumPart>(&none),
        Err(WireError::RecordCount {
            record: "PrioSumPart",
            found: 0
        })
    ));
    let two = encode_all(&[sum_part(None, 1), sum_part(None, 2)]).expect("encode");
    assert!(matches!(
        decode_single::<SumPart>(&two),
        Err(WireError::RecordCount { found: 2, .. })
    ));
}

#[test]
fn wrong_record_type_is_refused() {
    let file = encode_single(&invalid_packet(1)).expect("encode");
    match decode_single::<SumPart>(&file) {
        Err(WireError::WrongRecord { expected, found }) => {
            assert_eq!(expected, "PrioSumPart");
            assert_eq!(found, "PrioInvalidPacket");
        }
        other => panic!("expected WrongRecord, got {other:?}"),
    }
    // Same shape, other namespace: still a different record.
    let foreign = Schema::parse_str(
        r#"{"type":"record","name":"PrioInvalidPacket","namespace":"other",
            "fields":[{"name":"uuid","type":{"type":"string","logicalType":"uuid"}}]}"#,
    )
    .expect("schema");
    let file = write_raw(
        &foreign,
        vec![Value::Record(vec![(
            "uuid".into(),
            Value::Uuid(uuid("1c383d27-a8e6-4e4e-a0ca-35f2ebcbaaf4")),
        )])],
    );
    assert_eq!(record_name(&file).expect("name"), "other.PrioInvalidPacket");
    assert!(matches!(
        decode_all::<InvalidPacket>(&file),
        Err(WireError::WrongRecord { .. })
    ));
    // Not a record at all.
    let file = write_raw(&Schema::Long, vec![Value::Long(1)]);
    assert!(matches!(record_name(&file), Err(WireError::NotARecord(_))));
    assert!(matches!(
        decode_all::<InvalidPacket>(&file),
        Err(WireError::WrongRecord { .. })
    ));
}

#[test]
fn empty_and_garbage_input_are_not_avro() {
    for bytes in [&b""[..], b"Obj", b"hello world, not avro", &[0xff; 64]] {
        assert!(matches!(
            decode_all::<DataSharePacket>(bytes),
            Err(WireError::NotAvro(_))
        ));
        assert!(matches!(record_name(bytes), Err(WireError::NotAvro(_))));
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let records: Vec<_> = (0..8).map(|i| packet(i, i % 3 == 0)).collect();
    let file = encode_all(&records).expect("encode");
    for len in 0..file.len() {
        // A cut at a block boundary looks like a shorter file; anything else is an error.
        if let Ok(decoded) = decode_all::<DataSharePacket>(&file[..len]) {
            assert!(decoded.len() < records.len());
        }
    }
    for pos in 0..file.len() {
        for bit in [0x01, 0x80] {
            let mut bad = file.clone();
            bad[pos] ^= bit;
            let _ = decode_all::<DataSharePacket>(&bad);
            let _ = record_name(&bad);
        }
    }
}

#[test]
fn uuid_accepted_as_string_and_bad_uuid_is_bad_field() {
    let good = "1c383d27-a8e6-4e4e-a0ca-35f2ebcbaaf4";
    let value = |s: &str| Value::Record(vec![("uuid".into(), Value::String(s.into()))]);
    assert_eq!(
        InvalidPacket::from_avro(value(good)).expect("string uuid"),
        InvalidPacket { uuid: uuid(good) }
    );
    assert!(matches!(
        InvalidPacket::from_avro(value("not-a-uuid")),
        Err(WireError::BadField { field: "uuid", .. })
    ));
    let array = Value::Array(vec![Value::String("nope".into())]);
    let mut sum = sum_part(None, 1).to_avro();
    if let Value::Record(fields) = &mut sum {
        fields[0].1 = array;
    }
    assert!(matches!(
        SumPart::from_avro(sum),
        Err(WireError::BadField {
            field: "batch_uuids",
            ..
        })
    ));

    // In a file with the uuid logical type, apache-avro parses while decoding.
    let file = write_raw(InvalidPacket::schema(), vec![value("not-a-uuid")]);
    assert!(matches!(
        decode_all::<InvalidPacket>(&file),
        Err(WireError::BadField { field: "uuid", .. })
    ));

    // A writer schema without the logical type: resolution turns the string into a uuid.
    let plain = Schema::parse_str(
        r#"{"type":"record","name":"PrioInvalidPacket","namespace":"org.abetterinternet.prio.v1",
            "fields":[{"name":"uuid","type":"string"}]}"#,
    )
    .expect("schema");
    let file = write_raw(&plain, vec![value(good)]);
    assert_eq!(
        decode_single::<InvalidPacket>(&file).expect("plain string uuid"),
        InvalidPacket { uuid: uuid(good) }
    );
    let file = write_raw(&plain, vec![value("zzz")]);
    assert!(matches!(
        decode_single::<InvalidPacket>(&file),
        Err(WireError::BadField { field: "uuid", .. })
    ));
}

#[test]
fn wrong_types_missing_fields_and_ranges_are_bad_fields() {
    let mut header = ingestion_header(None).to_avro();
    if let Value::Record(fields) = &mut header {
        fields[2].1 = Value::Long(1 << 40);
    }
    assert!(matches!(
        IngestionHeader::from_avro(header),
        Err(WireError::BadField { field: "bins", .. })
    ));
    let mut header = ingestion_header(None).to_avro();
    if let Value::Record(fields) = &mut header {
        fields[1].1 = Value::Int(3);
    }
    assert!(matches!(
        IngestionHeader::from_avro(header),
        Err(WireError::BadField { field: "name", .. })
    ));
    let mut packet_value = validity_packet(1).to_avro();
    if let Value::Record(fields) = &mut packet_value {
        fields.remove(2);
    }
    assert!(matches!(
        ValidityPacket::from_avro(packet_value),
        Err(WireError::BadField { field: "g_r", .. })
    ));
    assert!(matches!(
        ValidityPacket::from_avro(Value::Long(3)),
        Err(WireError::NotARecord(_))
    ));
}

#[test]
fn fields_found_by_name_when_out_of_order_and_plain_values_accepted() {
    let value = Value::Record(vec![
        ("h_r".into(), Value::Int(3)),
        ("g_r".into(), Value::Long(2)),
        (
            "uuid".into(),
            Value::Uuid(uuid("1c383d27-a8e6-4e4e-a0ca-35f2ebcbaaf4")),
        ),
        ("f_r".into(), Value::Long(1)),
    ]);
    let p = ValidityPacket::from_avro(value).expect("by name");
    assert_eq!((p.f_r, p.g_r, p.h_r), (1, 2, 3));

    let mut header = ingestion_header(Some(4)).to_avro();
    if let Value::Record(fields) = &mut header {
        fields[6].1 = Value::Int(4); // not wrapped in a union
        fields[7].1 = Value::Long(100); // plain long for a timestamp
    }
    let h = IngestionHeader::from_avro(header).expect("plain values");
    assert_eq!((h.hamming_weight, h.batch_start_time), (Some(4), 100));
}

/// A reader that fails with a network-like error after `left` bytes.
struct Flaky<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn io_failures_surface_as_io_errors() {
    let file = encode_all(&(0..3000).map(|i| packet(i, true)).collect::<Vec<_>>()).expect("enc");
    let header_cut = Flaky {
        data: &file,
        left: 10,
    };
    assert!(matches!(
        RecordReader::<DataSharePacket, _>::new(header_cut),
        Err(WireError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset
    ));
    let body_cut = Flaky {
        data: &file,
        left: file.len() / 2,
    };
    let last = RecordReader::<DataSharePacket, _>::new(body_cut)
        .expect("header reads")
        .last()
        .expect("some item");
    assert!(matches!(last, Err(WireError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset));

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut writer = RecordWriter::new(Full).expect("writer");
    let mut failed = None;
    for i in 0..1000 {
        if let Err(e) = writer.append(&packet(i, true)) {
            failed = Some(e);
            break;
        }
    }
    let failed = match failed {
        Some(e) => e,
        None => writer.finish().err().expect("finish fails"),
    };
    assert!(matches!(failed, WireError::Io(e) if e.kind() == io::ErrorKind::StorageFull));
}
