//! The records read straight from their datums (DAP report and verifier shares) come out
//! exactly as through apache-avro's values, and are refused for the same reasons.

use super::fixtures::write_raw;
use crate::wire::{decode_all, encode_all, DapReportShare, DapVerifierShare, Record, RecordReader};
use apache_avro::{types::Value, Schema};

fn shares() -> Vec<DapReportShare> {
    // Sizes from empty to ~9 KB: several blocks, records across block boundaries.
    (0..400u32)
        .map(|i| DapReportShare {
            report_id: (0..16).map(|b| (i as u8).wrapping_add(b)).collect(),
            time: i64::from(i) * 3_600 - 1_000,
            public_share: vec![i as u8; (i as usize * 13) % 700],
            config_id: (i % 256) as i32,
            enc: vec![7; 32],
            payload: (0..(i as usize * 37) % 9_000).map(|b| b as u8).collect(),
        })
        .collect()
}

fn value_of(share: &DapReportShare) -> Vec<(String, Value)> {
    let Value::Record(fields) = share.to_avro() else {
        unreachable!("a record")
    };
    fields
}

#[test]
fn records_read_from_their_datums_equal_those_read_through_values() {
    let shares = shares();
    let ours = encode_all(&shares).unwrap();
    assert!(RecordReader::<DapReportShare, _>::new(&ours[..])
        .unwrap()
        .reads_datums());
    assert_eq!(decode_all::<DapReportShare>(&ours).unwrap(), shares);

    // Cut inside a later block: the whole blocks before it are read, then one error ends
    // the stream (nothing of the cut block is offered).
    let cut = &ours[..ours.len() * 2 / 3];
    let read: Vec<_> = RecordReader::<DapReportShare, _>::new(cut)
        .unwrap()
        .collect();
    let (last, whole) = read.split_last().unwrap();
    assert!(!whole.is_empty() && whole.len() < shares.len());
    for (got, want) in whole.iter().zip(&shares) {
        assert_eq!(got.as_ref().unwrap(), want);
    }
    let err = last.as_ref().unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");

    // A writer with one more field: resolved through apache-avro's values.
    let mut schema: serde_json::Value =
        serde_json::from_str(&DapReportShare::schema().canonical_form()).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "note", "type": "string"}));
    let writer = Schema::parse_str(&schema.to_string()).unwrap();
    let values = shares
        .iter()
        .map(|s| {
            let mut fields = value_of(s);
            fields.push(("note".into(), Value::String("extra".into())));
            Value::Record(fields)
        })
        .collect();
    let theirs = write_raw(&writer, values);
    assert!(!RecordReader::<DapReportShare, _>::new(&theirs[..])
        .unwrap()
        .reads_datums());
    assert_eq!(decode_all::<DapReportShare>(&theirs).unwrap(), shares);
}

#[test]
fn a_bad_record_is_refused_by_name_and_reading_goes_on() {
    let share = |id_len: usize| {
        Value::Record(vec![
            ("report_id".into(), Value::Bytes(vec![1; id_len])),
            ("verifier_share".into(), Value::Bytes(vec![2; 48])),
        ])
    };
    let bytes = write_raw(
        DapVerifierShare::schema(),
        vec![share(16), share(15), share(16)],
    );
    let reader = RecordReader::<DapVerifierShare, _>::new(&bytes[..]).unwrap();
    assert!(reader.reads_datums());
    let read: Vec<_> = reader.collect();
    assert_eq!(read.len(), 3);
    assert!(read[0].is_ok() && read[2].is_ok());
    let err = read[1].as_ref().unwrap_err().to_string();
    assert_eq!(
        err,
        "bad field DapVerifierShare.report_id: 15 bytes, must be 16"
    );
}

#[test]
fn a_datum_is_checked_field_by_field_and_whole() {
    let datum = |config_id: i64, extra: &[u8]| {
        let mut d = Vec::new();
        let push = |d: &mut Vec<u8>, v: i64| crate::wire::varint::push_long(d, v);
        push(&mut d, 16);
        d.extend([5; 16]);
        push(&mut d, 120); // time
        push(&mut d, 0); // empty public share
        push(&mut d, config_id);
        push(&mut d, 1);
        d.push(9); // enc
        push(&mut d, 2);
        d.extend([3, 4]); // payload
        d.extend(extra);
        d
    };
    let share = DapReportShare::from_datum(&datum(42, &[])).unwrap();
    assert_eq!(
        (share.time, share.config_id, share.payload),
        (120, 42, vec![3, 4])
    );
    let err = DapReportShare::from_datum(&datum(1 << 40, &[])).unwrap_err();
    assert!(
        err.to_string()
            .contains("DapReportShare.config_id: 1099511627776 is not an Avro int"),
        "{err}"
    );
    let err = DapReportShare::from_datum(&datum(42, &[0])).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 bytes left after a DapReportShare"),
        "{err}"
    );
    let whole = datum(42, &[]);
    let err = DapReportShare::from_datum(&whole[..whole.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("DapReportShare.payload"), "{err}");
}
