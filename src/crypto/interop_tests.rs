//! Checks against real files of the original ENPA pipeline
//! (`shared/interop/enpa-v1-sample`, keys from its README).
//!
//! The crate's Avro reader lives in another module, so the Avro-wrapped values were
//! extracted once into `testdata/` with Python `fastavro` (run in the fixture folder):
//! - `enpa-v1-packets.txt`: for every record of `{pha,facil}-out/**/*.batch.avro`, a line
//!   `server uuid expected_plaintext_len hex(encrypted_payload)`.
//! - `enpa-v1-signatures.txt`: for every `*.sig` (one PrioBatchSignature each), a line
//!   `header_path key_identifier hex(batch_header_signature)`; the header path is the
//!   `.sig` path without its suffix.
//! - `enpa-v1-digests.txt`: for every header file, `packet_file_path hex(packet_file_digest)`
//!   (for sum parts the packet file is the `.invalid_uuid_N.avro` file).

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use super::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/interop/enpa-v1-sample"
);
const PACKETS: &str = include_str!("testdata/enpa-v1-packets.txt");
const SIGNATURES: &str = include_str!("testdata/enpa-v1-signatures.txt");
const DIGESTS: &str = include_str!("testdata/enpa-v1-digests.txt");

// Test keys published in the fixture README.
const PHA_PACKET_KEY: &str = "BIl6j+J6dYttxALdjISDv6ZI4/VWVEhUzaS05LgrsfswmbLOgNt9HUC2E0w+9RqZx3XMkdEHBHfNuCSMpOwofVSq3TfyKwn0NrftKisKKVSaTOt5seJ67P5QL4hxgPWvxw==";
const FACIL_PACKET_KEY: &str = "BNNOqoU54GPo+1gTPv+hCgA9U2ZCKd76yOMrWa1xTWgeb4LhFLMQIQoRwDVaW64g/WTdcxT4rDULoycUNFB60LER6hPEHg/ObBnRPV1rwS3nj9Bj0tbjVPPyL9p8QW8B+w==";
const SIGNING_KEYS: [(&str, &str); 3] = [
    ("signing-key-1", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggoa08rQR90Asvhy5bWIgFBDeGaO8FnVEF3PVpNVmDGChRANCAAQ2mZfm4UC73PkWsYz3Uub6UTIAFQCPGxouP1O1PlmntOpfLYdvyZDCuenAzv1oCfyToolNArNjwo/+harNn1fs"),
    ("pha-signing-key", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1BQjH71U37XLfWqe+/xP8iUrMiHpmUtbj3UfDkhFIrShRANCAAQgqHcxxwTVx1IXimcRv5TQyYZh+ShDM6XZqJonoP1m52oN0aLID1hJSrfKJrnqdgmHmaT4eXNNf4C5+g1HZt+u"),
    ("facil-signing-key", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeSa+S+tmLupnAEyFKdVuKB99y09YEqW41+8pwP4cTkahRANCAASy7FHcLGnRudVHWga/j2k9nQ3lMvuGE01Q7DEyjyCuuw9YmB3dHvYcRUnxVRI/nF5LvneGim0dC7F1fuRAPeXI"),
];
/// Prio2's field modulus: every leader-share element must be below it.
const PRIME: u32 = 4_293_918_721;

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(FIXTURE).join(rel)
}

fn packet_key(text: &str) -> PacketPrivateKey {
    PacketPrivateKey::from_text(PacketScheme::Ecies, text).unwrap()
}

#[test]
fn decrypts_every_enpa_packet() {
    let pha = packet_key(PHA_PACKET_KEY);
    let facil = packet_key(FACIL_PACKET_KEY);
    let mut seen = [0usize; 2];
    for line in PACKETS.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [server, uuid, len, payload] = fields[..] else {
            panic!("bad testdata line {line:?}");
        };
        let (mine, other, count) = match server {
            "pha" => (&pha, &facil, &mut seen[0]),
            "facil" => (&facil, &pha, &mut seen[1]),
            _ => panic!("unknown server {server}"),
        };
        let payload = hex(payload);
        let plaintext = mine
            .open(&payload, uuid.as_bytes())
            .unwrap_or_else(|e| panic!("{server} packet {uuid}: {e}"));
        assert_eq!(plaintext.len(), len.parse::<usize>().unwrap(), "{uuid}");
        if server == "pha" {
            // Leader share: 4 * (bins + 3 + next_pow2(bins + 1)) little-endian field elements.
            assert_eq!(plaintext.len(), 4 * (10 + 3 + 16));
            for chunk in plaintext.chunks_exact(4) {
                let v = u32::from_le_bytes(chunk.try_into().unwrap());
                assert!(v < PRIME, "{uuid}: element {v} out of field");
            }
        }
        // A key-less packet is tried against each key; the wrong one must refuse it.
        assert!(matches!(
            other.open(&payload, b""),
            Err(CryptoError::DecryptFailed)
        ));
        *count += 1;
    }
    assert_eq!(seen, [10, 10]);
}

#[test]
fn fixture_packet_keys_round_trip() {
    for text in [PHA_PACKET_KEY, FACIL_PACKET_KEY] {
        let key = packet_key(text);
        let point = text::decode("t", text).unwrap()[..65].to_vec();
        assert_eq!(key.public_key().to_text(), text::encode(&point));
        let sealed = key.public_key().seal(b"round trip", b"").unwrap();
        assert_eq!(key.open(&sealed, b"").unwrap(), b"round trip");
    }
}

fn fixture_trust() -> TrustSet {
    let mut trust = TrustSet::new();
    for (id, pkcs8) in SIGNING_KEYS {
        let key = SigningKey::from_pkcs8_base64(id, pkcs8).unwrap();
        assert_eq!(key.key_id(), id);
        trust.insert(id, key.verifying_key());
    }
    trust
}

#[test]
fn verifies_every_enpa_signature() {
    let trust = fixture_trust();
    let mut count = 0;
    for line in SIGNATURES.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [header, key_id, sig] = fields[..] else {
            panic!("bad testdata line {line:?}");
        };
        let header_bytes = std::fs::read(fixture(header)).unwrap();
        let sig = hex(sig);
        trust
            .verify(key_id, &header_bytes, &sig)
            .unwrap_or_else(|e| panic!("{header}: {e}"));

        // Any other fixture key must reject it, by name.
        for (other, _) in SIGNING_KEYS.iter().filter(|(id, _)| *id != key_id) {
            match trust.verify(other, &header_bytes, &sig) {
                Err(CryptoError::BadSignature { key_id }) => assert_eq!(key_id, *other),
                r => panic!("{header} under {other}: expected BadSignature, got {r:?}"),
            }
        }
        let mut changed = header_bytes.clone();
        changed[header_bytes.len() / 2] ^= 1;
        assert!(trust.verify(key_id, &changed, &sig).is_err());
        assert!(matches!(
            trust.verify("no-such-key", &header_bytes, &sig),
            Err(CryptoError::UnknownKeyId(_))
        ));
        count += 1;
    }
    assert_eq!(count, 6);
}

#[test]
fn fixture_public_keys_in_both_forms() {
    for (id, pkcs8) in SIGNING_KEYS {
        let vk = SigningKey::from_pkcs8_base64(id, pkcs8)
            .unwrap()
            .verifying_key();
        // The PKCS#8 blobs end with the public point (after a 0x00 BIT STRING pad).
        let der = text::decode("t", pkcs8).unwrap();
        let point = &der[der.len() - 65..];
        assert_eq!(VerifyingKey::from_base64(&text::encode(point)).unwrap(), vk);
        assert_eq!(VerifyingKey::from_base64(&vk.to_base64()).unwrap(), vk);
    }
}

#[test]
fn packet_file_digests_match_headers() {
    for line in DIGESTS.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [path, digest] = fields[..] else {
            panic!("bad testdata line {line:?}");
        };
        let expected: [u8; 32] = hex(digest).try_into().unwrap();
        let bytes = std::fs::read(fixture(path)).unwrap();
        assert_eq!(sha256(&bytes), expected, "{path}");

        let mut reader = HashingReader::new(File::open(fixture(path)).unwrap());
        let mut sink = Vec::new();
        reader.read_to_end(&mut sink).unwrap();
        assert_eq!(reader.finish(), expected, "{path} (streamed)");
    }
}
