//! Files divvi writes read back in another Avro implementation (Python fastavro, which the
//! test script installs) as the same records.

mod common;

use divvi::crypto::PacketScheme;
use divvi::demo::{run_demo, DemoOptions, DemoVdaf, NoProgress};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn fastavro_reads_every_file_divvi_writes_as_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        heavy: Default::default(),
        dir: dir.path().join("demo"),
        reports: 40,
        vdaf: DemoVdaf::Prio2 { bins: 5 },
        batch_size: 15,
        invalid: 3,
        scheme: PacketScheme::Hpke,
        layout: Default::default(),
    };
    assert!(run_demo(&options, &NoProgress).unwrap().matches());
    let mut all = Vec::new();
    files(&options.dir.join("buckets"), &mut all);
    // Results and run records (JSON, CSV), share stashes (divvi's own sealed format),
    // counted-UUID lists (raw 16-byte UUIDs) and records of shares seen (raw 32-byte
    // entries) are not ENPA Avro.
    all.retain(|p| {
        let name = p.to_string_lossy();
        !(name.ends_with(".json")
            || name.ends_with(".csv")
            || name.ends_with(".uuids")
            || name.contains(".shares_")
            || name.contains(".seen_"))
    });
    all.sort();
    // Single-object batches carry header and packet files inline: check those files too.
    let inline = dir.path().join("inline");
    std::fs::create_dir_all(&inline).unwrap();
    for path in all
        .clone()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sig"))
    {
        let sig: divvi::wire::BatchSignature =
            divvi::wire::decode_single(&std::fs::read(path).unwrap()).unwrap();
        if let (Some(header), Some(packets)) = (sig.batch_header, sig.packets) {
            let n = all.len();
            for (what, bytes) in [("header", header), ("packets", packets)] {
                let p = inline.join(format!("{n}.{what}.avro"));
                std::fs::write(&p, bytes).unwrap();
                all.push(p);
            }
        }
    }

    let mut theirs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for v in common::fastavro_records(&all) {
        theirs
            .entry(v["file"].as_str().unwrap().to_string())
            .or_default()
            .push(v["record"].clone());
    }

    let mut kinds = std::collections::BTreeSet::new();
    for path in &all {
        let ours = divvi::inspect::inspect(path, None, usize::MAX).unwrap();
        let records = ours["records"].as_array().unwrap().clone();
        let key = path.display().to_string();
        assert_eq!(theirs.remove(&key).unwrap_or_default(), records, "{key}");
        if let Some(name) = ours["record"].as_str() {
            kinds.insert(name.to_string());
        }
    }
    assert!(theirs.is_empty());
    // Every record type was written and checked (invalid packets exist: 3 were spoiled).
    assert_eq!(kinds.len(), 7, "{kinds:?}");
}
