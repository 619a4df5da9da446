//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry
//! functions as the cargo-fuzz targets (`fuzz/harness.rs`), without a sanitizer: every
//! input that once found a bug, or new coverage, must still be handled without a panic.
//! The ignored `write_seeds` builds seed inputs from real files (see `fuzz/README.md`).

#[path = "../fuzz/harness.rs"]
mod harness;

use divvi::stash::StashContext;
use divvi::wire::{self, DataSharePacket, IngestionHeader};
use std::collections::BTreeMap;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use uuid::Uuid;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// Regular files of a folder, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("folder entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn kept_corpus_replays_without_panics() {
    let corpus = corpus_dir();
    assert!(corpus.is_dir(), "{} is missing", corpus.display());
    let targets: BTreeMap<&str, harness::Target> = harness::TARGETS.iter().copied().collect();
    for entry in fs::read_dir(&corpus).expect("corpus folder") {
        let name = entry.expect("folder entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            targets.contains_key(name.as_ref()),
            "fuzz/corpus/{name} belongs to no target of fuzz/harness.rs"
        );
    }
    let mut failures = Vec::new();
    for (target, run) in targets {
        let files = files_in(&corpus.join(target));
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        for file in files {
            let bytes = fs::read(&file).expect("corpus file");
            if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}

/// Writes seed inputs for every target from real files: set `DIVVI_FUZZ_SEED_SOURCES` to
/// folders (`:`-separated) holding files divvi or the original aggregator wrote, and
/// `DIVVI_FUZZ_SEEDS_OUT` to the folder that gets one subfolder per target.
#[test]
#[ignore = "builds fuzz seeds from real files; run by hand, see fuzz/README.md"]
fn write_seeds() {
    let out = PathBuf::from(std::env::var("DIVVI_FUZZ_SEEDS_OUT").expect("DIVVI_FUZZ_SEEDS_OUT"));
    let sources = std::env::var("DIVVI_FUZZ_SEED_SOURCES").expect("DIVVI_FUZZ_SEED_SOURCES");
    let mut seeds = Seeds { out, count: 0 };
    for source in sources.split(':') {
        let mut files = Vec::new();
        walk(Path::new(source), &mut files);
        for file in files {
            seeds.add_file(&file);
        }
    }
    seeds.handmade_stash_frames();
    assert!(seeds.count > 0, "no seeds written");
    println!("{} seeds written", seeds.count);
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("seed source folder") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

struct Seeds {
    out: PathBuf,
    count: usize,
}

impl Seeds {
    fn save(&mut self, target: &str, bytes: &[u8]) {
        let dir = self.out.join(target);
        fs::create_dir_all(&dir).expect("seed folder");
        let digest = divvi::crypto::sha256(bytes);
        let name: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        fs::write(dir.join(name), bytes).expect("seed file");
        self.count += 1;
    }

    fn add_file(&mut self, file: &Path) {
        let bytes = fs::read(file).expect("seed source");
        let name = file.to_string_lossy().into_owned();
        if bytes.starts_with(b"Obj\x01") {
            self.save("wire_container", &bytes);
            let single = [
                "PrioIngestionHeader",
                "PrioValidityHeader",
                "PrioSumPart",
                "PrioBatchSignature",
            ];
            if wire::record_name(&bytes).is_ok_and(|n| single.contains(&n.as_str())) {
                self.save("wire_single", &bytes);
            }
        }
        if let Some(stem) = name.strip_suffix(".sig") {
            self.batch(stem, &bytes);
        }
        if let Some(stem) = name.strip_suffix(".batch.avro") {
            self.packets(stem, &bytes);
        }
        if name.contains(".shares_") {
            self.stash(file, &bytes);
        }
    }

    /// A batch as found (three objects or one), and its packet file under a header the
    /// harness signs.
    fn batch(&mut self, stem: &str, signature: &[u8]) {
        let (kind, packets) = if stem.ends_with(".batch") || stem.contains(".validity_") {
            (u8::from(!stem.ends_with(".batch")), format!("{stem}.avro"))
        } else if let Some((base, server)) = stem.rsplit_once(".sum_") {
            (2, format!("{base}.invalid_uuid_{server}.avro"))
        } else {
            return; // not a batch (a run manifest)
        };
        let header = fs::read(stem).ok();
        let mut packets = fs::read(packets).ok();
        self.save(
            "batch_open",
            &harness::batch_input(0, kind, header.as_deref(), signature, packets.as_deref()),
        );
        if let Ok(inline) = wire::decode_single::<wire::BatchSignature>(signature) {
            packets = packets.or(inline.packets);
        }
        if let Some(packets) = packets {
            for flags in [1, 3] {
                self.save("batch_open", &[&[flags, kind], &packets[..]].concat());
            }
        }
    }

    /// The first packets of an ingestion batch, sealed and opened.
    fn packets(&mut self, stem: &str, file: &[u8]) {
        let Ok(header) = fs::read(format!("{stem}.batch"))
            .map_err(|e| e.to_string())
            .and_then(|h| wire::decode_single::<IngestionHeader>(&h).map_err(|e| e.to_string()))
        else {
            return;
        };
        let bins = u16::try_from(header.bins).unwrap_or(0);
        let packets = wire::decode_all::<DataSharePacket>(file).unwrap_or_default();
        for p in packets.iter().take(3) {
            let aad = p.uuid.as_bytes();
            let payload = &p.encrypted_payload;
            let opened = [0, 1, 2, 3, 8, 10]
                .into_iter()
                .find_map(|f| Some((f, harness::packet_key(f).open(payload, aad).ok()?)));
            let (flags, plaintext) = opened.unwrap_or((0, Vec::new()));
            let sealed = harness::packet_input(flags, bins, p.r_pit, p.uuid, payload);
            self.save("packet_open", &sealed);
            if !plaintext.is_empty() {
                let direct = harness::packet_input(flags | 4, bins, p.r_pit, p.uuid, &plaintext);
                self.save("packet_open", &direct);
            }
        }
    }

    /// A stash as intake wrote it, with the context of its ingestion batch.
    fn stash(&mut self, file: &Path, bytes: &[u8]) {
        let name = file.to_string_lossy();
        let Some((stem, server)) = name.rsplit_once(".shares_") else {
            return;
        };
        let ingestion = stem.replace(
            &format!("server{server}-own"),
            &format!("server{server}-ingestion"),
        );
        let Some(header) = fs::read(format!("{ingestion}.batch"))
            .ok()
            .and_then(|h| wire::decode_single::<IngestionHeader>(&h).ok())
        else {
            return;
        };
        let context = StashContext {
            batch: header.batch_uuid,
            server: if server == "1" {
                divvi::ids::ServerIndex::One
            } else {
                divvi::ids::ServerIndex::Zero
            },
            kept: divvi::stash::KeptShape::Prio2 {
                bins: usize::try_from(header.bins).unwrap_or(0),
            },
            ingestion_digest: header.packet_file_digest,
        };
        if let Some(input) = harness::stash_input(&context, bytes) {
            self.save("stash_read", &input);
        }
    }

    /// Stash frames for the harness to seal: kept and left-out records, in two frames.
    fn handmade_stash_frames(&mut self) {
        for (server, share_len) in [(0u8, 20usize), (1, 32)] {
            let mut input = vec![1, server];
            input.extend_from_slice(&5u16.to_le_bytes());
            input.extend_from_slice(Uuid::from_u128(7).as_bytes());
            input.extend_from_slice(&[9; 32]);
            for flag in [0u8, 1] {
                let mut plain = Vec::new();
                plain.extend_from_slice(Uuid::from_u128(u128::from(flag) + 1).as_bytes());
                plain.push(0);
                plain.extend(std::iter::repeat_n(3u8, share_len));
                plain.extend_from_slice(Uuid::from_u128(99).as_bytes());
                plain.push(1);
                input.push(flag);
                let len = u16::try_from(plain.len()).expect("small");
                input.extend_from_slice(&len.to_le_bytes());
                input.extend_from_slice(&plain);
            }
            self.save("stash_read", &input);
        }
    }
}
