//! What each fuzz target feeds to divvi, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the corpus replay in `tests/fuzz_corpus.rs`, so the kept
//! corpus is replayed through exactly the code that found it. Every function must return
//! normally on any input: a panic, abort, huge allocation or hang is a bug in divvi.
//!
//! The keys below are throwaway test keys, from a `divvi demo` run and from the ENPA interop
//! sample (`../shared/interop/enpa-v1-sample/README.md`); seeds in `fuzz/corpus/` are
//! signed or sealed with them, so fuzzing gets past signature and decryption checks.

#![allow(dead_code)]

use divvi::batch::{open_batch, BatchHeader, ObjectNames};
use divvi::crypto::{sha256, PacketPrivateKey, PacketScheme, SigningKey, StashKey, TrustSet};
use divvi::ids::ServerIndex;
use divvi::stash::{StashContext, StashReader};
use divvi::store::LocalStore;
use divvi::vdaf::{Prio2Bins, PRIME};
use divvi::wire::{self, Record, RecordReader};
use std::path::Path;
use std::sync::OnceLock;
use uuid::Uuid;

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// Targets by name: the name is the folder under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_container", wire_container),
    ("wire_single", wire_single),
    ("packet_open", packet_open),
    ("batch_open", batch_open),
    ("stash_read", stash_read),
];

/// ECIES packet keys: `divvi demo` server 0 and 1, then ENPA sample PHA and facilitator.
const ECIES_KEYS: [&str; 4] = [
    "BMj0RNBjJkzgaRBEgJsGIr8peDJb6z3oOa5lulHK0qoutNL85D2hDU2ms7muuceMbOqur6ULzH0TMZhGm7oQ69F8u4efb/KOV+MU6yHnfnf7hAsVAlLHxiMREhXKw48iKw==",
    "BNqSbQd7/ord5U1Xf1hLoBqSKD/9GvAz6GayNYmRFXxSEDEpqaQMnAu+sOAWYO69MspB6emOOI2lgo1Is5zn7JXeYZ+dIlXma/MYOk2J5hJq/ugMYs82fosWyYAgA/w++g==",
    "BIl6j+J6dYttxALdjISDv6ZI4/VWVEhUzaS05LgrsfswmbLOgNt9HUC2E0w+9RqZx3XMkdEHBHfNuCSMpOwofVSq3TfyKwn0NrftKisKKVSaTOt5seJ67P5QL4hxgPWvxw==",
    "BNNOqoU54GPo+1gTPv+hCgA9U2ZCKd76yOMrWa1xTWgeb4LhFLMQIQoRwDVaW64g/WTdcxT4rDULoycUNFB60LER6hPEHg/ObBnRPV1rwS3nj9Bj0tbjVPPyL9p8QW8B+w==",
];
const HPKE_KEYS: [&str; 2] = [
    "4C6StoWF7KVbymiAeIHactng/72xpLn/gyNl0RKE6FA=",
    "kCDo5PHZDl8Svl+c9RfTi8pre1MP4qtaUTK6ec3mgHg=",
];
/// Trusted signing keys by key id: `divvi demo`'s ingestor and servers (the harness signs
/// with these), then the ENPA sample's.
const SIGNING_KEYS: [(&str, &str); 6] = [
    ("ingestor-signing", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgA954IegEvyc9tER6IbNoMdAVBVrf3mzkst4vYoP5wVShRANCAAS6Gg17Y6Lbndklt3h2YACECzoG6LzTKwbY/lrH2roB3nQ9BE/+eyMIPUqM3mqmFBWqmH8Wz4DRqDVOdAYBUS7Y"),
    ("server0-signing", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLEFfEhbP7vspHRbmMz6oYvwIb3av0ArC8OWgn0ZhYn6hRANCAATO+97PE2448vdQo/8fwmh51k2ncDChGjBrwWUIcJEEwHGyIcgcCwzF9xO2GBPsMtNMf+CZdF+zuqhFcm5HLDCR"),
    ("server1-signing", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpSP/SN2X0hqmgv60HIQDaJDsePdxU91NrMn2S8TGtfyhRANCAARmmncnM0CEkVr8rrx1ixmm2zS/Q1OvsvtYY+sYGlmqZI8Cjx1i2KXKO1gZFhqtegrcbvDrMn2RXSCXNJfN5kr6"),
    ("signing-key-1", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggoa08rQR90Asvhy5bWIgFBDeGaO8FnVEF3PVpNVmDGChRANCAAQ2mZfm4UC73PkWsYz3Uub6UTIAFQCPGxouP1O1PlmntOpfLYdvyZDCuenAzv1oCfyToolNArNjwo/+harNn1fs"),
    ("pha-signing-key", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1BQjH71U37XLfWqe+/xP8iUrMiHpmUtbj3UfDkhFIrShRANCAAQgqHcxxwTVx1IXimcRv5TQyYZh+ShDM6XZqJonoP1m52oN0aLID1hJSrfKJrnqdgmHmaT4eXNNf4C5+g1HZt+u"),
    ("facil-signing-key", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeSa+S+tmLupnAEyFKdVuKB99y09YEqW41+8pwP4cTkahRANCAASy7FHcLGnRudVHWga/j2k9nQ3lMvuGE01Q7DEyjyCuuw9YmB3dHvYcRUnxVRI/nF5LvneGim0dC7F1fuRAPeXI"),
];
const STASH_KEYS: [&str; 2] = [
    "EYRMFomXrMo0kmC+HowpGXsWtY8JGZDSwt+FvyTGaL4=",
    "hYPXHJTogAZ/kTp1WvUuZVTr9YuZLntD1Rok/Jumttg=",
];
/// `limits.max_object_bytes` for `open_batch`: above any input, so the format's own caps
/// and the parsers are what the fuzzer meets.
const MAX_OBJECT_BYTES: u64 = 1 << 24;
/// Above this many bins the share functions only cost time, not new code.
const MAX_FUZZ_BINS: u16 = 2048;

/// Splits `n` bytes off the front; `None` if there are fewer.
fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = data.split_at_checked(n)?;
    *data = rest;
    Some(head)
}

fn take_array<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    take(data, N)?.try_into().ok()
}

/// A part of the input prefixed by its length (u32 LE, clamped to what is left).
fn take_part<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(take_array(data)?);
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(data.len());
    take(data, len)
}

/// Writes an object where `LocalStore` reads it. Plain writes, not the store's own (which
/// syncs each file to disk and would make the disk, not the parsers, the bottleneck).
fn put(dir: &Path, key: &str, bytes: &[u8]) -> Option<()> {
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent()?).ok()?;
    std::fs::write(path, bytes).ok()
}

/// A fresh folder for a store, in memory (`/dev/shm`) where there is one: thousands of
/// inputs each create and remove one, which on a busy disk is most of the time.
fn temp_dir() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let in_memory = shm.is_dir().then(|| tempfile::tempdir_in(shm).ok());
    in_memory.flatten().or_else(|| tempfile::tempdir().ok())
}

fn server(bit: bool) -> ServerIndex {
    if bit {
        ServerIndex::One
    } else {
        ServerIndex::Zero
    }
}

/// Every record of a container of `R`, read to the end through both entry points.
fn drain<R: Record>(data: &[u8]) {
    let _ = wire::decode_all::<R>(data);
    if let Ok(reader) = RecordReader::<R, _>::new(data) {
        reader.for_each(drop);
    }
}

/// Target `wire_container`: the input is a whole Avro container file, read as each of
/// the seven record types and asked for its record name.
pub fn wire_container(data: &[u8]) {
    let _ = wire::record_name(data);
    drain::<wire::DataSharePacket>(data);
    drain::<wire::IngestionHeader>(data);
    drain::<wire::ValidityHeader>(data);
    drain::<wire::ValidityPacket>(data);
    drain::<wire::SumPart>(data);
    drain::<wire::BatchSignature>(data);
    drain::<wire::InvalidPacket>(data);
}

/// Target `wire_single`: the input is a whole file decoded as the single record of each
/// header and signature type.
pub fn wire_single(data: &[u8]) {
    let _ = wire::decode_single::<wire::IngestionHeader>(data);
    let _ = wire::decode_single::<wire::ValidityHeader>(data);
    let _ = wire::decode_single::<wire::SumPart>(data);
    let _ = wire::decode_single::<wire::BatchSignature>(data);
}

/// The fixed packet key: `flags` as in `packet_open`.
pub fn packet_key(flags: u8) -> &'static PacketPrivateKey {
    static KEYS: OnceLock<Vec<PacketPrivateKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let ecies = ECIES_KEYS.iter().map(|t| (PacketScheme::Ecies, t));
        let hpke = HPKE_KEYS.iter().map(|t| (PacketScheme::Hpke, t));
        ecies
            .chain(hpke)
            .map(|(scheme, text)| PacketPrivateKey::from_text(scheme, text).expect("test key"))
            .collect()
    });
    let server = usize::from(flags & 2 != 0);
    let at = match (flags & 1 != 0, flags & 8 != 0) {
        (false, false) => 0,
        (false, true) => 2,
        (true, _) => 4,
    };
    &keys[at + server]
}

/// The input of `packet_open`, as the seed builder writes it.
pub fn packet_input(flags: u8, bins: u16, r_pit: i64, uuid: Uuid, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&bins.to_le_bytes());
    out.extend_from_slice(&r_pit.to_le_bytes());
    out.extend_from_slice(uuid.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Target `packet_open`: `flags (1) ‖ bins (u16 LE) ‖ r_pit (i64 LE) ‖ uuid (16) ‖ payload`.
/// flags bit 0: HPKE (else ECIES); bit 1: server 1 (else 0); bit 2: the payload is taken
/// as the plaintext share directly (else it is opened with that server's fixed key, the
/// uuid as associated data, as intake does); bit 3: the ENPA sample's ECIES keys. The plaintext then goes through the Prio2
/// share functions intake and aggregate use, for `bins` bins.
pub fn packet_open(mut data: &[u8]) {
    let Some([flags]) = take_array::<1>(&mut data) else {
        return;
    };
    let (Some(bins), Some(r_pit), Some(uuid)) = (
        take_array(&mut data).map(u16::from_le_bytes),
        take_array(&mut data).map(i64::from_le_bytes),
        take_array::<16>(&mut data),
    ) else {
        return;
    };
    let server = server(flags & 2 != 0);
    let opened;
    let plaintext = if flags & 4 != 0 {
        data
    } else {
        match packet_key(flags).open(data, &uuid) {
            Ok(p) => {
                opened = p;
                &opened
            }
            Err(_) => return,
        }
    };
    let Ok(prio) = Prio2Bins::new(i64::from(bins)) else {
        return;
    };
    if bins > MAX_FUZZ_BINS {
        return;
    }
    let _ = prio.verifier_share(server, plaintext, r_pit);
    let _ = prio.output_share(server, plaintext);
    if let Ok(kept) = prio.kept_share(server, plaintext) {
        let _ = prio.output_share_from_kept(server, kept);
    }
}

fn trust() -> &'static (TrustSet, Vec<SigningKey>) {
    static TRUST: OnceLock<(TrustSet, Vec<SigningKey>)> = OnceLock::new();
    TRUST.get_or_init(|| {
        let mut trust = TrustSet::new();
        let mut keys = Vec::new();
        for (id, text) in SIGNING_KEYS {
            let key = SigningKey::from_pkcs8_base64(id, text).expect("test key");
            trust.insert(id, key.verifying_key());
            keys.push(key);
        }
        (trust, keys)
    })
}

const HEADER: &str = "agg/2021/04/13/19/17/0b0e2f5a-0000-4000-8000-000000000001.batch";
const PACKETS: &str = "agg/2021/04/13/19/17/0b0e2f5a-0000-4000-8000-000000000001.batch.avro";
const SIGNATURE: &str = "agg/2021/04/13/19/17/0b0e2f5a-0000-4000-8000-000000000001.batch.sig";

fn names() -> ObjectNames {
    ObjectNames {
        header: HEADER.into(),
        packets: PACKETS.into(),
        signature: SIGNATURE.into(),
    }
}

/// Opens the batch and reads every packet, as intake, aggregate and collect do.
fn open_and_read<H: BatchHeader, P: Record>(store: &LocalStore) {
    let Ok(batch) = open_batch::<H>(store, &names(), &trust().0, u64::MAX) else {
        return;
    };
    let _ = batch.packet_object();
    if let Ok(mut packets) = batch.packets::<P>() {
        while let Ok(chunk) = packets.next_chunk(64) {
            if chunk.is_empty() {
                break;
            }
        }
    }
}

fn open_kind(kind: u8, store: &LocalStore) {
    match kind % 3 {
        0 => open_and_read::<wire::IngestionHeader, wire::DataSharePacket>(store),
        1 => open_and_read::<wire::ValidityHeader, wire::ValidityPacket>(store),
        _ => open_and_read::<wire::SumPart, wire::InvalidPacket>(store),
    }
}

/// The input of `batch_open` mode 0, as the seed builder writes it.
pub fn batch_input(
    flags: u8,
    kind: u8,
    header: Option<&[u8]>,
    signature: &[u8],
    packets: Option<&[u8]>,
) -> Vec<u8> {
    let mut flags = flags & !1;
    if header.is_none() {
        flags |= 2;
    }
    if packets.is_none() {
        flags |= 4;
    }
    let mut out = vec![flags, kind];
    for part in [header.unwrap_or_default(), signature] {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(packets.unwrap_or_default());
    out
}

/// Target `batch_open`: a batch in a fresh local store, opened with a fixed trust set
/// (`ingestor-signing`, `server0-signing`, `server1-signing`), then its packets read to
/// the end. Input: `flags (1) ‖ kind (1) ‖ rest`; kind % 3 picks ingestion / validation /
/// sum part. flags bit 0 clear: the fuzzer writes every object, rest =
/// `len (u32 LE) ‖ header ‖ len (u32 LE) ‖ signature ‖ packet file` (bit 1: no header
/// object, bit 2: no packet object); the signature only verifies if unchanged from a seed.
/// flags bit 0 set: rest is the packet file, and the harness writes a header with its
/// digest, signed with a trusted key (bit 1: single-object form, header and packets
/// inline in the signature), so every mutation is parsed past the signature check.
pub fn batch_open(mut data: &[u8]) {
    let (Some([flags]), Some([kind])) = (take_array::<1>(&mut data), take_array::<1>(&mut data))
    else {
        return;
    };
    let Some(dir) = temp_dir() else {
        return;
    };
    let store = LocalStore::new(dir.path());
    let written = if flags & 1 == 0 {
        write_given(dir.path(), flags, data)
    } else {
        write_signed(dir.path(), flags, kind, data)
    };
    if written.is_some() {
        open_kind(kind, &store);
    }
}

fn write_given(dir: &Path, flags: u8, mut data: &[u8]) -> Option<()> {
    let header = take_part(&mut data)?;
    let signature = take_part(&mut data)?;
    if flags & 2 == 0 {
        put(dir, HEADER, header)?;
    }
    put(dir, SIGNATURE, signature)?;
    if flags & 4 == 0 {
        put(dir, PACKETS, data)?;
    }
    Some(())
}

/// A header of `kind` over a packet file with `digest`, encoded.
fn header_bytes(kind: u8, digest: Vec<u8>) -> Option<Vec<u8>> {
    let batch_uuid = Uuid::from_u128(0x0b0e_2f5a_0000_4000_8000_0000_0000_0001);
    let name = "agg".to_string();
    let prime = i64::from(PRIME);
    let encoded = match kind % 3 {
        0 => wire::encode_single(&wire::IngestionHeader {
            batch_uuid,
            name,
            bins: 5,
            epsilon: 1.0,
            prime,
            number_of_servers: 2,
            hamming_weight: None,
            batch_start_time: 1_618_341_420_000,
            batch_end_time: 1_618_341_480_000,
            packet_file_digest: digest,
        }),
        1 => wire::encode_single(&wire::ValidityHeader {
            batch_uuid,
            name,
            bins: 5,
            epsilon: 1.0,
            prime,
            number_of_servers: 2,
            hamming_weight: None,
            packet_file_digest: digest,
        }),
        _ => wire::encode_single(&wire::SumPart {
            batch_uuids: vec![batch_uuid],
            name,
            bins: 5,
            epsilon: 1.0,
            prime,
            number_of_servers: 2,
            hamming_weight: None,
            sum: vec![1, 2, 3, 4, 5],
            aggregation_start_time: 1_618_341_420_000,
            aggregation_end_time: 1_618_341_480_000,
            packet_file_digest: digest,
            total_individual_clients: 7,
        }),
    };
    encoded.ok()
}

fn write_signed(dir: &Path, flags: u8, kind: u8, packets: &[u8]) -> Option<()> {
    let header = header_bytes(kind, sha256(packets).to_vec())?;
    let key = &trust().1[usize::from(kind % 3).min(2)];
    let signature = key.sign(&header).ok()?;
    if flags & 2 != 0 {
        let sig = wire::write_inline_signature(
            Vec::new(),
            &signature,
            key.key_id(),
            &header,
            packets,
            u64::try_from(packets.len()).ok()?,
        )
        .ok()?;
        put(dir, SIGNATURE, &sig)?;
    } else {
        let sig = wire::encode_single(&wire::BatchSignature {
            batch_header_signature: signature,
            key_identifier: key.key_id().to_string(),
            batch_header: None,
            packets: None,
        })
        .ok()?;
        put(dir, HEADER, &header)?;
        put(dir, PACKETS, packets)?;
        put(dir, SIGNATURE, &sig)?;
    }
    Some(())
}

const STASH: &str = "agg/2021/04/13/19/17/0b0e2f5a-0000-4000-8000-000000000001.shares_0";

fn stash_key(server: ServerIndex) -> &'static StashKey {
    static KEYS: OnceLock<Vec<StashKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        STASH_KEYS
            .iter()
            .map(|t| StashKey::from_text(t).expect("test key"))
            .collect()
    });
    &keys[usize::from(server.number())]
}

/// The input of `stash_read` mode 0, as the seed builder writes it.
pub fn stash_input(context: &StashContext, file: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0, context.server.number()];
    let divvi::stash::KeptShape::Prio2 { bins } = context.kept else {
        return None;
    };
    out.extend_from_slice(&u16::try_from(bins).ok()?.to_le_bytes());
    out.extend_from_slice(context.batch.as_bytes());
    out.extend_from_slice(context.ingestion_digest.get(..32)?);
    out.extend_from_slice(file);
    Some(out)
}

/// Target `stash_read`: a share stash read to the end with a fixed stash key. Input:
/// `mode (1) ‖ server (1) ‖ bins (u16 LE) ‖ batch uuid (16) ‖ ingestion digest (32) ‖ rest`,
/// the first fields making the context the stash is bound to. mode bit 0 clear: rest is
/// the stash file. Set: rest is frames `flag (1) ‖ len (u16 LE) ‖ plaintext`, which the
/// harness seals in order under the key and context (the flag byte written as given,
/// sealed as final if it is 1), so the record parser sees fuzzed plaintext.
pub fn stash_read(mut data: &[u8]) {
    let (Some([mode, server_byte]), Some(bins), Some(batch), Some(digest)) = (
        take_array::<2>(&mut data),
        take_array(&mut data).map(u16::from_le_bytes),
        take_array::<16>(&mut data),
        take(&mut data, 32),
    ) else {
        return;
    };
    let context = StashContext {
        batch: Uuid::from_bytes(batch),
        server: server(server_byte & 1 != 0),
        kept: divvi::stash::KeptShape::Prio2 {
            bins: usize::from(bins),
        },
        ingestion_digest: digest.to_vec(),
    };
    let key = stash_key(context.server);
    let file = if mode & 1 == 0 {
        data.to_vec()
    } else {
        match seal_frames(key, &context, data) {
            Some(file) => file,
            None => return,
        }
    };
    let Some(dir) = temp_dir() else {
        return;
    };
    let store = LocalStore::new(dir.path());
    if put(dir.path(), STASH, &file).is_none() {
        return;
    }
    let Ok(mut reader) = StashReader::open(&store, STASH, key, &context) else {
        return;
    };
    while let Ok(Some(_)) = reader.next_frame() {}
}

/// A stash file whose frames are the given plaintexts, sealed as divvi seals them.
fn seal_frames(key: &StashKey, context: &StashContext, mut data: &[u8]) -> Option<Vec<u8>> {
    let salt = [0x5a; 32];
    let sealer = key.file_sealer(&salt, &context.key_context()).ok()?;
    let mut file = b"DVSTASH1".to_vec();
    file.extend_from_slice(&salt);
    let mut index = 0u64;
    while let Some([flag]) = take_array::<1>(&mut data) {
        let len = take_array(&mut data).map_or(0, u16::from_le_bytes);
        let len = usize::from(len).min(data.len());
        let mut frame = take(&mut data, len)?.to_vec();
        sealer.seal_in_place(index, flag == 1, &mut frame).ok()?;
        file.push(flag);
        file.extend_from_slice(&u32::try_from(frame.len()).ok()?.to_be_bytes());
        file.extend_from_slice(&frame);
        index += 1;
    }
    Some(file)
}
