//! Every file of the ENPA v1 interop sample (written by the original system) reads back
//! with the known values, and re-encodes to the same records.

use super::fixtures::uuid;
use crate::wire::*;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/interop/enpa-v1-sample"
);
const BATCH: &str = "ba097344-2b4e-45db-a002-c83f4a9adc63";
const FIRST_PACKET: &str = "1c383d27-a8e6-4e4e-a0ca-35f2ebcbaaf4";
const PRIME: i64 = 4_293_918_721;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("sample dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_none_or(|e| e != "md") {
            out.push(path);
        }
    }
}

fn read<R: Record + PartialEq + Debug>(path: &Path) -> Vec<R> {
    let bytes = std::fs::read(path).expect("read sample file");
    let records = decode_all::<R>(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Our encoding of what we read must read back the same.
    let again = encode_all(&records).expect("re-encode");
    assert_eq!(decode_all::<R>(&again).expect("re-decode"), records);
    records
}

fn one<R: Record + PartialEq + Debug>(path: &Path) -> R {
    let mut records = read::<R>(path);
    assert_eq!(records.len(), 1, "{}", path.display());
    records.remove(0)
}

fn key_for(path: &Path) -> &'static str {
    let top = path
        .strip_prefix(SAMPLE)
        .ok()
        .and_then(|p| p.components().next())
        .and_then(|c| c.as_os_str().to_str());
    match top {
        Some("pha-out" | "facil-out") => "signing-key-1",
        Some("facil-peer-validation" | "pha-sum-parts") => "pha-signing-key",
        Some("pha-peer-validation" | "facil-sum-parts") => "facil-signing-key",
        other => panic!("unexpected sample folder {other:?}"),
    }
}

#[test]
fn reads_every_sample_file_with_known_values() {
    let mut paths = Vec::new();
    files(Path::new(SAMPLE), &mut paths);
    paths.sort();
    assert_eq!(paths.len(), 18);
    let mut sums = Vec::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();

    for path in &paths {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let bytes = std::fs::read(path).expect("read");
        if bytes.is_empty() {
            // The 0-byte "no invalid packets" file is not a container.
            assert!(name.contains(".invalid_uuid_"), "{name}");
            assert!(matches!(
                decode_all::<InvalidPacket>(&bytes),
                Err(WireError::NotAvro(_))
            ));
            *seen.entry("empty".into()).or_default() += 1;
            continue;
        }
        let kind = record_name(&bytes).expect("record name");
        *seen.entry(kind.clone()).or_default() += 1;
        match kind.as_str() {
            "PrioIngestionHeader" => {
                let h: IngestionHeader = one(path);
                assert_eq!(h.name, "test-aggregation");
                assert_eq!((h.bins, h.epsilon, h.prime), (10, 0.11, PRIME));
                assert_eq!((h.number_of_servers, h.hamming_weight), (2, None));
                assert_eq!(h.batch_uuid, uuid(BATCH));
                assert_eq!(h.packet_file_digest.len(), 32);
            }
            "PrioDataSharePacket" => {
                let packets: Vec<DataSharePacket> = read(path);
                assert_eq!(packets.len(), 10);
                assert_eq!(packets[0].uuid, uuid(FIRST_PACKET));
                assert!(packets.iter().all(|p| p.r_pit == 998_314_904));
                let key = if path.to_string_lossy().contains("/pha-out/") {
                    Some("pha-fake-key-1")
                } else {
                    None
                };
                assert!(packets
                    .iter()
                    .all(|p| p.encryption_key_id.as_deref() == key));
            }
            "PrioValidityHeader" => {
                let h: ValidityHeader = one(path);
                assert_eq!((h.name.as_str(), h.bins), ("test-aggregation", 10));
                assert_eq!(h.batch_uuid, uuid(BATCH));
            }
            "PrioValidityPacket" => {
                let packets: Vec<ValidityPacket> = read(path);
                assert_eq!(packets.len(), 10);
                let first = &packets[0];
                assert_eq!(first.uuid, uuid(FIRST_PACKET));
                let expected = if name.ends_with(".validity_0.avro") {
                    (93_581_437, 3_239_014_267, 2_490_300_021)
                } else {
                    (3_243_468_507, 2_085_562_111, 3_425_229_347)
                };
                assert_eq!((first.f_r, first.g_r, first.h_r), expected);
            }
            "PrioSumPart" => {
                let s: SumPart = one(path);
                assert_eq!(s.batch_uuids, vec![uuid(BATCH)]);
                assert_eq!((s.total_individual_clients, s.bins), (10, 10));
                assert_eq!(s.aggregation_start_time, 1_618_341_420_000);
                sums.push(s.sum);
            }
            "PrioBatchSignature" => {
                let s: BatchSignature = one(path);
                assert_eq!(s.key_identifier, key_for(path), "{name}");
                assert!((70..=72).contains(&s.batch_header_signature.len()));
                assert_eq!((s.batch_header, s.packets), (None, None));
            }
            other => panic!("unexpected record {other} in {name}"),
        }
    }

    let expected: std::collections::BTreeMap<String, usize> = [
        ("PrioIngestionHeader", 2),
        ("PrioDataSharePacket", 2),
        ("PrioBatchSignature", 6),
        ("PrioValidityHeader", 2),
        ("PrioValidityPacket", 2),
        ("PrioSumPart", 2),
        ("empty", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(seen, expected);

    let total: Vec<i64> = sums[0]
        .iter()
        .zip(&sums[1])
        .map(|(a, b)| (a + b) % PRIME)
        .collect();
    assert_eq!(total, vec![5, 4, 5, 8, 7, 4, 5, 4, 6, 5]);
}
