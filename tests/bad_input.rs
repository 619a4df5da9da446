//! The bad-input corpus: one table of broken, forged, inconsistent or hostile inputs, each
//! with the stage that meets it and what must happen.
//!
//! Every case starts from a fresh valid deployment holding two batches of one window:
//! `good`, which no case touches, and `target`, which the case spoils (or replaces). The
//! stages before the one under test have already run. A case expects exactly one of:
//!
//! - **fails**: the stage fails with an error naming the object (its `file://` URL, key or
//!   argument) and the reason, and writes nothing for it (no validation, stash, sum part or
//!   result, no temporary file left); intake, which takes batches one by one, still
//!   validates the good batch;
//! - **invalid**: the packet is listed invalid with its reason, the output is written, and
//!   every packet is accounted for (counted or listed, never both);
//! - **accepted**: (only where the input is harmless, and the case says why) the stage
//!   succeeds with nothing refused;
//! - **warns**: (the command line only) the command succeeds and logs a warning naming the
//!   object and the reason: what it passes over is never passed over in silence.
//!
//! A known gap (its fix belongs in code outside this test's change, named in its note)
//! keeps its actual behaviour asserted and is marked GAP. No case may panic. Each case is
//! a test of its own (this target runs without the standard harness, through
//! libtest-mimic), so a filter selects cases by name; each prints its outcome line.

mod common;

use common::{deployment, now_window, Deployment};
use divvi::batch::{
    decode_sum_part, encode_sum_part, open_batch, BatchId, BatchKind, BatchWriter, ObjectNames,
    SumPartId, Window,
};
use divvi::crypto::{sha256, PacketDigest, PacketScheme, SigningKey};
use divvi::ids::ServerIndex;
use divvi::stages::aggregate::AggregateReport;
use divvi::stages::ingest::{IngestionBatch, PacketMaker};
use divvi::stages::intake::IntakeReport;
use divvi::stages::{aggregate, collect, intake, no_tick, Rejected};
use divvi::store::{get_bytes, put_bytes, validate_key, ObjectStore};
use divvi::vdaf::{Prio2Bins, PRIME};
use divvi::wire::{
    self, BatchSignature, DataSharePacket, IngestionHeader, InvalidPacket, SumPart, ValidityHeader,
    ValidityPacket,
};
use libtest_mimic::{Failed, Trial};
use std::collections::BTreeSet;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use uuid::Uuid;

const AGG: &str = "bad-input";
const BINS: usize = 3;
const GOOD: [[u32; BINS]; 3] = [[1, 0, 0], [0, 1, 0], [1, 1, 1]];
const TARGET: [[u32; BINS]; 4] = [[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]];
// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------
use Stage::*;

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        // --- Avro: truncated, garbage, wrong record or schema (intake) ---
        case("header truncated (signature no longer covers it)", Intake(0), |fx| {
            fx.edit(fx.ing(0), &fx.names().header, |b| b.truncate(b.len() / 2));
            fails(fx.header_url(), "signature does not verify")
        }),
        case("header truncated, re-signed", Intake(0), |fx| {
            let h = fx.header_bytes(0);
            fx.replace_header(&h[..h.len() / 2]);
            fails(fx.header_url(), "not an Avro object container file")
        }),
        case("header garbage, re-signed", Intake(0), |fx| {
            fx.replace_header(&garbage(300));
            fails(fx.header_url(), "not an Avro object container file")
        }),
        case("header empty (0 bytes), re-signed", Intake(0), |fx| {
            fx.replace_header(&[]);
            fails(fx.header_url(), "not an Avro object container file")
        }),
        case("header is a PrioValidityHeader, re-signed", Intake(0), |fx| {
            let h = validity_header_of(&fx.ingestion_header(0));
            fx.replace_header(&wire::encode_single(&h).unwrap());
            fails(fx.header_url(), "expected a PrioIngestionHeader file, found PrioValidityHeader")
        }),
        case("header record renamed, re-signed", Intake(0), |fx| {
            let h = fx.header_bytes(0);
            fx.replace_header(&replace_once(&h, b"PrioIngestionHeader", b"PrioIngestionHeadeX"));
            fails(fx.header_url(), "found PrioIngestionHeadeX")
        }),
        case("header schema lacks a field (bins), re-signed", Intake(0), |fx| {
            let h = fx.header_bytes(0);
            fx.replace_header(&replace_once(&h, b"\"bins\"", b"\"binz\""));
            fails(fx.header_url(), "bad field PrioIngestionHeader.bins")
        }),
        case("header declares codec zstd, re-signed", Intake(0), |fx| {
            let h = fx.header_bytes(0);
            fx.replace_header(&replace_once(&h, b"\x08null", b"\x08zstd"));
            fails(fx.header_url(), "zstd")
        }),
        case("header holds two records, re-signed", Intake(0), |fx| {
            let h = fx.ingestion_header(0);
            fx.replace_header(&wire::encode_all(&[h.clone(), h]).unwrap());
            fails(fx.header_url(), "expected exactly one PrioIngestionHeader record, found 2")
        }),
        case("packet file truncated (digest no longer matches)", Intake(0), |fx| {
            fx.edit(fx.ing(0), &fx.names().packets, |b| b.truncate(b.len() - 30));
            fails(fx.packets_url(), "malformed Avro data")
        }),
        case("packet file truncated, digest re-signed", Intake(0), |fx| {
            let p = fx.packet_file(0);
            fx.replace_packet_file(&p[..p.len() - 30]);
            fails(fx.packets_url(), "malformed Avro data")
        }),
        case("packet file garbage, digest re-signed", Intake(0), |fx| {
            fx.replace_packet_file(&garbage(2000));
            fails(fx.packets_url(), "not an Avro object container file")
        }),
        case("packet file with trailing garbage, digest re-signed", Intake(0), |fx| {
            let p = [fx.packet_file(0), garbage(40)].concat();
            fx.replace_packet_file(&p);
            fails(fx.packets_url(), "malformed Avro data")
        }),
        case("packet file of PrioValidityPacket records, re-signed", Intake(0), |fx| {
            let records: Vec<ValidityPacket> = (fx.pairs.iter())
                .map(|p| ValidityPacket { uuid: p[0].uuid, f_r: 1, g_r: 2, h_r: 3 })
                .collect();
            fx.replace_packet_file(&wire::encode_all(&records).unwrap());
            fails(fx.packets_url(), "expected a PrioDataSharePacket file, found PrioValidityPacket")
        }),
        case("packet file block claims 2^40 records, re-signed", Intake(0), |fx| {
            fx.replace_packet_file(&container_with_block(1 << 40, 8));
            fails(fx.packets_url(), "malformed Avro data")
        }),
        case("packet file block claims 2^40 bytes, re-signed", Intake(0), |fx| {
            fx.replace_packet_file(&container_with_block(1, 1 << 40));
            fails(fx.packets_url(), "malformed Avro data")
        }),
        case("signature truncated", Intake(0), |fx| {
            fx.edit(fx.ing(0), &fx.names().signature, |b| b.truncate(b.len() - 10));
            fails(fx.sig_url(), "malformed Avro data")
        }),
        case("signature garbage", Intake(0), |fx| {
            fx.put(fx.ing(0), &fx.names().signature, &garbage(150));
            fails(fx.sig_url(), "not an Avro object container file")
        }),
        case("signature empty (0 bytes)", Intake(0), |fx| {
            fx.put(fx.ing(0), &fx.names().signature, &[]);
            fails(fx.sig_url(), "not an Avro object container file")
        }),
        case("signature object is a PrioIngestionHeader", Intake(0), |fx| {
            fx.put(fx.ing(0), &fx.names().signature, &fx.header_bytes(0));
            fails(fx.sig_url(), "expected a PrioBatchSignature file, found PrioIngestionHeader")
        }),
        case("signature carries the header inline but no packets", Intake(0), |fx| {
            let sig = BatchSignature { batch_header: Some(fx.header_bytes(0)), ..fx.signature() };
            fx.put(fx.ing(0), &fx.names().signature, &wire::encode_single(&sig).unwrap());
            fails(fx.sig_url(), "signature carries only one of batch_header and packets")
        }),
        case("single-object batch: a byte after the sync marker", Intake(0), |fx| {
            let sig = BatchSignature {
                batch_header: Some(fx.header_bytes(0)),
                packets: Some(fx.packet_file(0)),
                ..fx.signature()
            };
            fx.remove(fx.ing(0), &fx.names().header);
            fx.remove(fx.ing(0), &fx.names().packets);
            let mut bytes = wire::encode_single(&sig).unwrap();
            bytes.push(0);
            fx.put(fx.ing(0), &fx.names().signature, &bytes);
            fails(fx.sig_url(), "does not end with its sync marker")
        }),
        case("single-object batch: inline packets differ from the digest", Intake(0), |fx| {
            let mut packets = fx.packet_file(0);
            let n = packets.len();
            packets[n - 20] ^= 1;
            let sig = BatchSignature {
                batch_header: Some(fx.header_bytes(0)),
                packets: Some(packets),
                ..fx.signature()
            };
            fx.remove(fx.ing(0), &fx.names().header);
            fx.remove(fx.ing(0), &fx.names().packets);
            fx.put(fx.ing(0), &fx.names().signature, &wire::encode_single(&sig).unwrap());
            fails(fx.sig_url(), "does not match the signed header")
        }),
        // --- Missing objects (intake) ---
        case("header missing", Intake(0), |fx| {
            fx.remove(fx.ing(0), &fx.names().header);
            fails(fx.header_url(), "no such object")
        }),
        case("packet file missing", Intake(0), |fx| {
            fx.remove(fx.ing(0), &fx.names().packets);
            fails(fx.packets_url(), "no such object")
        }),
        case("signature missing (the batch asked for by id)", Intake(0), |fx| {
            fx.remove(fx.ing(0), &fx.names().signature);
            fails(fx.sig_url(), "no such object")
        }),
        // --- Signatures and keys (intake) ---
        case("header changed after signing", Intake(0), |fx| {
            let h = IngestionHeader { epsilon: 8.0, ..fx.ingestion_header(0) };
            fx.put(fx.ing(0), &fx.names().header, &wire::encode_single(&h).unwrap());
            fails(fx.header_url(), "signature does not verify")
        }),
        case("signature bytes are not DER", Intake(0), |fx| {
            let sig = BatchSignature { batch_header_signature: vec![0x30, 2, 1], ..fx.signature() };
            fx.put(fx.ing(0), &fx.names().signature, &wire::encode_single(&sig).unwrap());
            fails(fx.header_url(), "signature does not verify")
        }),
        case("unknown key id", Intake(0), |fx| {
            let sig = BatchSignature { key_identifier: "nobody".into(), ..fx.signature() };
            fx.put(fx.ing(0), &fx.names().signature, &wire::encode_single(&sig).unwrap());
            fails(fx.header_url(), "no trusted key with identifier \"nobody\"")
        }),
        case("signed by an untrusted key under the ingestor's id", Intake(0), |fx| {
            let (impostor, _) = SigningKey::generate(fx.d.ingestor.signing_key.key_id()).unwrap();
            fx.write_raw_ingestion(&fx.header_bytes(0), None, &impostor);
            fails(fx.header_url(), "signature does not verify under key \"ingestor-signing\"")
        }),
        case("signed by the peer server's key (not an ingestor key)", Intake(0), |fx| {
            fx.write_raw_ingestion(&fx.header_bytes(0), None, &fx.d.servers[1].signing_key);
            fails(fx.header_url(), "no trusted key with identifier \"server1-signing\"")
        }),
        case("packet file swapped for another batch's (digest)", Intake(0), |fx| {
            let other = fx.get(fx.ing(0), &fx.good.names(BatchKind::Ingestion).packets);
            fx.put(fx.ing(0), &fx.names().packets, &other);
            fails(fx.packets_url(), "does not match the signed header")
        }),
        // --- Ingestion header fields (intake) ---
        case("header batch_uuid differs from the object's", Intake(0), |fx| {
            fx.set_header(|h| h.batch_uuid = Uuid::nil());
            fails(fx.header_url(), "header batch_uuid 00000000-0000-0000-0000-000000000000")
        }),
        case("header name differs from the aggregation", Intake(0), |fx| {
            fx.set_header(|h| h.name = "../other".into());
            fails(fx.header_url(), "header name \"../other\" differs")
        }),
        case("header bins 0", Intake(0), |fx| {
            fx.set_header(|h| h.bins = 0);
            fails(fx.header_url(), "bins must be between 1 and 65536, got 0")
        }),
        case("header bins negative", Intake(0), |fx| {
            fx.set_header(|h| h.bins = -3);
            fails(fx.header_url(), "bins must be between 1 and 65536, got -3")
        }),
        case("header bins absurdly large (i32::MAX)", Intake(0), |fx| {
            fx.set_header(|h| h.bins = i32::MAX);
            fails(fx.header_url(), "bins must be between 1 and 65536, got 2147483647")
        }),
        case("header bins 65536 (the maximum) for 3-bin packets", Intake(0), |fx| {
            fx.set_header(|h| h.bins = 65536);
            // Every packet is refused: the batch fails, naming the reason, and no
            // validation marks its packets invalid for good.
            fails(fx.header_url(), "every one of its 4 packets was refused (4 x share does not decode: share of 40 bytes, expected 786444 for 65536 bins")
        }),
        case("header prime is not Prio2's", Intake(0), |fx| {
            fx.set_header(|h| h.prime = 7);
            fails(fx.header_url(), "prime 7 is not 4293918721")
        }),
        case("header number_of_servers 3", Intake(0), |fx| {
            fx.set_header(|h| h.number_of_servers = 3);
            fails(fx.header_url(), "number_of_servers 3 is not 2")
        }),
        case("empty batch (0 packets)", Intake(0), |fx| {
            fx.rewrite_ingestion(0, |_, p| p.clear());
            accepted("a signed empty batch is harmless: validated with 0 packets, sums nothing")
        }),
        // --- Packets: payloads, shares, r_pit, keys (intake) ---
        case("payload shorter than HPKE's overhead", Intake(0), |fx| {
            let u = fx.spoil(0, 1, |p| p.encrypted_payload.truncate(47));
            invalid(u, "encrypted payload of 47 bytes is shorter than the minimum 48")
        }),
        Case {
            scheme: PacketScheme::Ecies,
            ..case("payload shorter than ECIES's overhead", Intake(0), |fx| {
                let u = fx.spoil(0, 1, |p| p.encrypted_payload.truncate(80));
                invalid(u, "encrypted payload of 80 bytes is shorter than the minimum 81")
            })
        },
        case("payload empty", Intake(1), |fx| {
            let u = fx.spoil(1, 2, |p| p.encrypted_payload.clear());
            invalid(u, "encrypted payload of 0 bytes is shorter than the minimum 48")
        }),
        case("leader share 4 bytes short", Intake(0), |fx| {
            let share = fx.leader_share();
            let u = fx.reseal(0, 1, &share[..share.len() - 4]);
            invalid(u, "share of 36 bytes, expected 40 for 3 bins")
        }),
        case("leader share 4 bytes long", Intake(0), |fx| {
            let share = [fx.leader_share(), vec![0; 4]].concat();
            let u = fx.reseal(0, 1, &share);
            invalid(u, "share of 44 bytes, expected 40 for 3 bins")
        }),
        case("helper seed 31 bytes", Intake(1), |fx| {
            let u = fx.reseal(1, 0, &[7; 31]);
            invalid(u, "share of 31 bytes, expected 32")
        }),
        case("leader share element = p", Intake(0), |fx| {
            let mut share = fx.leader_share();
            share[..4].copy_from_slice(&PRIME.to_le_bytes());
            let u = fx.reseal(0, 3, &share);
            invalid(u, "share does not decode: other error: input value exceeds modulus")
        }),
        case("leader share element 0xffffffff", Intake(0), |fx| {
            let mut share = fx.leader_share();
            let n = share.len();
            share[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
            let u = fx.reseal(0, 3, &share);
            invalid(u, "share does not decode: other error: input value exceeds modulus")
        }),
        case("r_pit negative", Intake(0), |fx| {
            let u = fx.spoil(0, 0, |p| p.r_pit = -1);
            invalid(u, "r_pit -1 is out of range")
        }),
        case("r_pit 2^32", Intake(0), |fx| {
            let u = fx.spoil(0, 0, |p| p.r_pit = 1 << 32);
            invalid(u, "r_pit 4294967296 is out of range")
        }),
        case("r_pit 1 (a root of unity)", Intake(0), |fx| {
            let u = fx.spoil(0, 0, |p| p.r_pit = 1);
            invalid(u, "r_pit 1 is a root of unity")
        }),
        case("r_pit p - 1 (= -1, a root of unity)", Intake(1), |fx| {
            let u = fx.spoil(1, 0, |p| p.r_pit = i64::from(PRIME) - 1);
            invalid(u, "r_pit 4293918720 is a root of unity")
        }),
        case("r_pit p + 1 (= 1 mod p, a root of unity)", Intake(0), |fx| {
            let u = fx.spoil(0, 0, |p| p.r_pit = i64::from(PRIME) + 1);
            invalid(u, "r_pit 4293918722 is a root of unity")
        }),
        case("encryption key id unknown", Intake(0), |fx| {
            let u = fx.spoil(0, 2, |p| p.encryption_key_id = Some("old-key".into()));
            invalid(u, "unknown encryption key id \"old-key\"")
        }),
        case("no key id, and no key opens it", Intake(0), |fx| {
            let u = fx.spoil(0, 2, |p| {
                p.encryption_key_id = None;
                p.encrypted_payload[60] ^= 1;
            });
            invalid(u, "no configured key opens it")
        }),
        case("packet sealed to the other server's key", Intake(0), |fx| {
            let payload = fx.seal(1, fx.uuid(1), &fx.leader_share());
            let u = fx.spoil(0, 1, |p| p.encrypted_payload = payload);
            invalid(u, "could not decrypt payload")
        }),
        // --- Object size: limits.max_object_bytes ---
        case("object over limits.max_object_bytes (100 bytes)", Intake(0), |fx| {
            // No object fits under 100 bytes: the good batch is validated first.
            intake::intake(&fx.d.servers[0], &fx.good, &no_tick).unwrap();
            fx.d.servers[0].limits.max_object_bytes = 100;
            let size = fx.size(fx.ing(0), &fx.names().signature);
            let reason = format!(
                "object is {size} bytes, over the limit of 100 bytes \
                 (limits.max_object_bytes); refused before reading"
            );
            fails(fx.sig_url(), reason)
        }),
        case("packet file over limits.max_object_bytes", Intake(0), |fx| {
            // A limit the header and signature fit under, and the packet file does not.
            let size = fx.size(fx.ing(0), &fx.names().packets);
            let others = [&fx.names().header, &fx.names().signature].map(|k| fx.size(fx.ing(0), k));
            assert!(others.iter().all(|&o| o < size - 1), "the packet file is the largest");
            fx.d.servers[0].limits.max_object_bytes = size - 1;
            let limit = size - 1;
            fails(fx.packets_url(), format!("object is {size} bytes, over the limit of {limit}"))
        }),
        case("validations over limits.max_object_bytes", Aggregate(0), |fx| {
            // Both batches' validations are over it; aggregate reads the first batch first.
            let first = std::cmp::min(&fx.good, &fx.target);
            let own_key = first.names(BatchKind::Validation(ServerIndex::Zero)).signature;
            let own = fx.d.servers[0].own.as_ref();
            let (validation, object) = (fx.size(own, &own_key), fx.url(own, &own_key));
            let limit = fx.largest_ingestion_object(0);
            assert!(limit < validation, "{limit} < {validation}");
            fx.d.servers[0].limits.max_object_bytes = limit;
            // Server 0 reads its own validation before the peer's: that is the one refused.
            fails(object, format!("object is {validation} bytes, over the limit of {limit}"))
        }),
        // --- Packet UUIDs (aggregate) ---
        case("duplicate packet uuid within a batch", Aggregate(0), |fx| {
            let copy = fx.pair_with_uuid(&[1, 1, 1], fx.uuid(0));
            fx.rewrite_ingestion_both(|s, _, p| p[2] = copy[s].clone());
            invalid(fx.uuid(0), "own validation: listed twice")
        }),
        case(
            "duplicate packet uuid within a batch, the copy undecryptable",
            Aggregate(0),
            |fx| {
                // Sealed under another UUID (HPKE binds it): intake leaves the copy out.
                let copy = fx.pair_with_uuid(&[1, 1, 1], Uuid::new_v4());
                let u = fx.uuid(0);
                fx.rewrite_ingestion_both(|s, _, p| {
                    p[2] = DataSharePacket { uuid: u, ..copy[s].clone() }
                });
                invalid_after_counted(u, "packet uuid already seen in this run")
            },
        ),
        case(
            "duplicate packet uuid across batches of one window",
            Aggregate(0),
            |fx| {
                fx.add_batch(&fx.pairs[1..2]);
                invalid_after_counted(fx.uuid(1), "packet uuid already seen in this run")
            },
        ),
        // --- Peer validation: its packets (aggregate) ---
        case("peer validation missing a packet", Aggregate(0), |fx| {
            let u = fx.uuid(2);
            fx.rewrite_validation(0, 1, |_, p| p.retain(|x| x.uuid != u));
            invalid(u, "no peer validation")
        }),
        case("server 1: peer validation missing a packet", Aggregate(1), |fx| {
            let u = fx.uuid(1);
            fx.rewrite_validation(1, 0, |_, p| p.retain(|x| x.uuid != u));
            invalid(u, "no peer validation")
        }),
        case("peer validation with an extra packet", Aggregate(0), |fx| {
            let extra = ValidityPacket { uuid: Uuid::new_v4(), f_r: 1, g_r: 1, h_r: 1 };
            fx.rewrite_validation(0, 1, |_, p| p.push(extra));
            let object = fx.url(fx.d.servers[0].peer_inbox.as_ref(), &fx.peer_sig_key());
            fails(object, "lists 1 packet(s) the ingestion batch does not hold")
        }),
        case("peer validation reordered", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |_, p| p.reverse());
            accepted("validations are joined by packet uuid, not position")
        }),
        case("peer validation lists a packet twice", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |_, p| p.push(p[3].clone()));
            invalid(fx.uuid(3), "peer validation: listed twice in")
        }),
        case("peer validation f_r = p", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |_, p| p[0].f_r = i64::from(PRIME));
            invalid(fx.uuid(0), "verifier value 4293918721 is not a field element")
        }),
        case("peer validation h_r negative", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |_, p| p[1].h_r = -1);
            invalid(fx.uuid(1), "verifier value -1 is not a field element")
        }),
        case("peer validation with a wrong verifier value", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |_, p| p[1].g_r = (p[1].g_r + 1) % i64::from(PRIME));
            invalid(fx.uuid(1), "proof check failed")
        }),
        case("peer validation missing", Aggregate(0), |fx| {
            fx.remove(fx.d.servers[0].peer_inbox.as_ref(), &fx.peer_sig_key());
            fails(fx.peer_validation_url(), "no such object")
        }),
        case("peer validation signed by the ingestor", Aggregate(0), |fx| {
            let store = fx.d.servers[0].peer_inbox.as_ref();
            let sig = fx.get(store, &fx.peer_sig_key());
            let sig: BatchSignature = wire::decode_single(&sig).unwrap();
            let key = &fx.d.ingestor.signing_key;
            let sig = BatchSignature {
                batch_header_signature: key.sign(sig.batch_header.as_ref().unwrap()).unwrap(),
                key_identifier: key.key_id().into(),
                ..sig
            };
            fx.put(store, &fx.peer_sig_key(), &wire::encode_single(&sig).unwrap());
            let header = fx.peer_validation_url().replace(".sig", "");
            fails(header, "no trusted key with identifier \"ingestor-signing\"")
        }),
        // --- Headers disagreeing: ingestion, own and peer validation (aggregate) ---
        case("peer validation batch_uuid differs", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |h, _| h.batch_uuid = Uuid::nil());
            fails(fx.peer_validation_url(), "disagrees with the ingestion header: batch_uuid")
        }),
        case("peer validation name differs", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |h, _| h.name = "other".into());
            fails(fx.peer_validation_url(), "name \"other\" vs \"bad-input\"")
        }),
        case("peer validation bins differ", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |h, _| h.bins = 4);
            fails(fx.peer_validation_url(), "bins 4 vs 3")
        }),
        case("peer validation prime differs", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |h, _| h.prime = 65537);
            fails(fx.peer_validation_url(), "prime 65537 vs 4293918721")
        }),
        case("peer validation number_of_servers differs", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |h, _| h.number_of_servers = 1);
            fails(fx.peer_validation_url(), "number_of_servers 1 vs 2")
        }),
        case("peer validation epsilon differs", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 1, |h, _| h.epsilon = 0.25);
            fails(fx.peer_validation_url(), "epsilon 0.25 vs 1")
        }),
        case("own validation bins differ", Aggregate(0), |fx| {
            fx.rewrite_validation(0, 0, |h, _| h.bins = 2);
            fails(fx.own_validation_url(), "bins 2 vs 3")
        }),
        case("server 1's ingestion header has another epsilon", Aggregate(0), |fx| {
            fx.rewrite_ingestion(1, |h, _| h.epsilon = 3.0);
            fx.redo_intake(1);
            fails(fx.peer_validation_url(), "epsilon 3 vs 1")
        }),
        case("ingestion header re-signed after intake, other bins", Aggregate(0), |fx| {
            fx.drop_good(); // alone in its window: no other batch to compare with first
            fx.set_header(|h| h.bins = 4);
            fails(fx.own_validation_url(), "bins 3 vs 4")
        }),
        case("batches of one window disagree on epsilon", Aggregate(0), |fx| {
            fx.rewrite_ingestion_both(|_, h, _| h.epsilon = 2.0);
            // Batches are summed in UUID order: the second one is refused.
            let second = std::cmp::max(&fx.good, &fx.target).names(BatchKind::Ingestion);
            fails(fx.url(fx.ing(0), &second.header), "hamming_weight None differ from the run's first batch (bins 3, epsilon ")
        }),
        case("ingestion packets re-signed after intake, one fewer", Aggregate(0), |fx| {
            fx.rewrite_ingestion(0, |_, p| {
                p.pop();
            });
            // The stash intake kept is bound to the packet file it read.
            fails(fx.stash_url(), "authenticate")
        }),
        case("no stash: packets swapped after intake are refused", Collect, |fx| {
            let swapped = fx.pair_with_uuid(&[1000, 0, 0], fx.uuid(3));
            fx.d.servers.iter_mut().for_each(|s| s.stash_key = None);
            for (s, packet) in swapped.into_iter().enumerate() {
                fx.rewrite_ingestion(s, |_, p| p[3] = packet);
            }
            for s in &fx.d.servers {
                let report = aggregate::aggregate(s, AGG, &fx.window, &no_tick).unwrap();
                let refused = report.invalid.iter().find(|r| r.uuid == fx.uuid(3));
                assert!(
                    refused.is_some_and(|r| r.reason.contains("differs from the one validated")),
                    "{:?}",
                    report.invalid
                );
            }
            // Verifier shares are computed again and no longer match intake's.
            Expect::Accepted {
                why: "the swapped packet is refused, the rest is summed",
                histogram: Some(vec![3, 3, 4]),
            }
        }),
        // --- Sum parts (collect) ---
        case("sum parts cover different batches", Collect, |fx| {
            let good = fx.good.uuid;
            fx.rewrite_sum_part(1, |p, _| p.batch_uuids.retain(|u| *u != good));
            let reason = format!("cover different batches (only in server 0: [{good}]");
            fails(fx.sum_part_url(1), reason)
        }),
        case("sum parts disagree on clients", Collect, |fx| {
            fx.rewrite_sum_part(1, |p, _| p.total_individual_clients += 1);
            fails(fx.sum_part_url(1), "total_individual_clients 7 vs 8")
        }),
        case("sum parts disagree on bins", Collect, |fx| {
            fx.rewrite_sum_part(1, |p, _| {
                p.bins = 4;
                p.sum.push(0);
            });
            fails(fx.sum_part_url(1), "bins 3 vs 4")
        }),
        case("sum parts disagree on the window", Collect, |fx| {
            fx.rewrite_sum_part(1, |p, _| p.aggregation_start_time -= 60_000);
            fails(fx.sum_part_url(1), "is not the sum part asked for: its signed fields say window")
        }),
        case("sum parts disagree on invalid packets", Collect, |fx| {
            let u = fx.uuid(0);
            fx.rewrite_sum_part(0, |_, invalid| invalid.push(u));
            fails(fx.sum_part_url(0), "invalid packet lists differ (1 vs 0 packets)")
        }),
        case("sum part value = p", Collect, |fx| {
            fx.rewrite_sum_part(1, |p, _| p.sum[1] = i64::from(PRIME));
            fails(fx.sum_part_url(1), "sum[1] = 4293918721 is not a field element")
        }),
        case("sum part value negative", Collect, |fx| {
            fx.rewrite_sum_part(0, |p, _| p.sum[2] = -5);
            fails(fx.sum_part_url(0), "sum[2] = -5 is not a field element")
        }),
        case("sum parts agree on a sum shorter than bins", Collect, |fx| {
            for s in 0..2 {
                fx.rewrite_sum_part(s, |p, _| p.sum.truncate(2));
            }
            fails(fx.sum_part_url(0), "sum has 2 values, but bins is 3")
        }),
        case("sum part changed after signing", Collect, |fx| {
            let key = fx.sum_part_id(1).names().header;
            let mut record: SumPart = wire::decode_single(&fx.get(fx.sums(1), &key)).unwrap();
            record.sum[0] = (record.sum[0] + 1) % i64::from(PRIME);
            fx.put(fx.sums(1), &key, &wire::encode_single(&record).unwrap());
            fails(fx.sum_part_url(1), "signature check failed: signature does not verify")
        }),
        case("invalid-uuid file changed (digest mismatch)", Collect, |fx| {
            let key = fx.sum_part_id(0).names().packets;
            let list = wire::encode_all(&[InvalidPacket { uuid: Uuid::new_v4() }]).unwrap();
            fx.put(fx.sums(0), &key, &list);
            fails(fx.url(fx.sums(0), &key), "does not match the sum part's")
        }),
        case("invalid-uuid file of PrioDataSharePacket records", Collect, |fx| {
            let names = fx.sum_part_id(1).names();
            let records = wire::encode_all(&fx.packets(1)).unwrap();
            let header = fx.get(fx.sums(1), &names.header);
            let mut part: SumPart = wire::decode_single(&header).unwrap();
            part.packet_file_digest = sha256(&records).to_vec();
            fx.write_sum_part(1, &part, &records);
            fails(fx.url(fx.sums(1), &names.packets), "expected a PrioInvalidPacket file")
        }),
        case("sum part header garbage, re-signed", Collect, |fx| {
            let names = fx.sum_part_id(1).names();
            let junk = garbage(500);
            fx.put(fx.sums(1), &names.header, &junk);
            let sig = signature_record(&junk, &fx.d.servers[1].signing_key);
            fx.put(fx.sums(1), &names.signature, &wire::encode_single(&sig).unwrap());
            fails(fx.sum_part_url(1), "not an Avro object container file")
        }),
        case("sum part missing", Collect, |fx| {
            let key = fx.sum_part_id(1).names().signature;
            fx.remove(fx.sums(1), &key);
            fails(fx.url(fx.sums(1), &key), "no sum part yet; server 1 has not summed this window")
        }),
        case("sum part signed by the other server", Collect, |fx| {
            let names = fx.sum_part_id(1).names();
            let header = fx.get(fx.sums(1), &names.header);
            let sig = signature_record(&header, &fx.d.servers[0].signing_key);
            fx.put(fx.sums(1), &names.signature, &wire::encode_single(&sig).unwrap());
            fails(fx.sum_part_url(1), "no trusted key with identifier \"server0-signing\"")
        }),
        // --- Sum parts that are not the ones asked for (issue 16 item 1) ---
        case("sum parts of another window, re-signed by their servers", Collect, |fx| {
            for s in 0..2 {
                fx.rewrite_sum_part(s, |p, _| {
                    p.aggregation_start_time -= 86_400_000;
                    p.aggregation_end_time -= 86_400_000;
                });
            }
            fails(fx.sum_part_url(0), "is not the sum part asked for: its signed fields say window")
        }),
        case("sum parts of another aggregation, re-signed by their servers", Collect, |fx| {
            for s in 0..2 {
                fx.rewrite_sum_part(s, |p, _| p.name = "other-aggregation".into());
            }
            fails(fx.sum_part_url(0), "aggregation \"other-aggregation\", not \"bad-input\"")
        }),
        case("regular run's sum parts copied over a late run's names", Direct, |fx| {
            fx.prepare(Collect);
            for s in 0..2 {
                fx.copy_sum_part(s, &fx.sum_part_id(s), &fx.late_sum_part_id(s, 1));
            }
            fx.direct = Some(collect_late(fx, 1));
            fails(fx.url(fx.sums(0), &fx.late_sum_part_id(0, 1).names().header), "run 0, not 1")
        }),
        case("sum part copied under another instance's name", Direct, |fx| {
            fx.prepare(Collect);
            let mut moved = fx.sum_part_id(0);
            moved.instance = "elsewhere".into();
            fx.copy_sum_part(0, &fx.sum_part_id(0), &moved);
            fx.d.portal.servers[0].instance = "elsewhere".into();
            fx.direct = Some(guarded(|| collect::collect(&fx.d.portal, AGG, &fx.window)).map(|_| String::new()));
            let object = fx.url(fx.sums(0), &moved.names().header);
            fails(object, "instance \"test\", not \"elsewhere\"")
        }),
        case("server 0's sum part copied over server 1's, one key trusted for both", Direct, |fx| {
            fx.prepare(Collect);
            let key = fx.d.servers[0].signing_key.verifying_key();
            fx.d.portal.servers[1].trust.insert("server0-signing", key);
            let (from, to) = (fx.sum_part_id(0), fx.sum_part_id(1));
            let names = to.names();
            for key in [&names.header, &names.packets, &names.signature] {
                fx.remove(fx.sums(1), key);
            }
            fx.copy_objects(fx.sums(0), &from.names(), fx.sums(1), &names);
            fx.direct = Some(guarded(|| collect::collect(&fx.d.portal, AGG, &fx.window)).map(|_| String::new()));
            fails(fx.sum_part_url(1), "server 0, not 1")
        }),
        case("sum parts adding to a bin above the clients counted", Collect, |fx| {
            fx.rewrite_sum_part(0, |p, _| p.sum[0] = (p.sum[0] + 1000) % i64::from(PRIME));
            fails(fx.sum_part_url(0), "impossible result: bin 0 counts")
        }),
        case("sum parts agreeing on a negative client count", Collect, |fx| {
            for s in 0..2 {
                fx.rewrite_sum_part(s, |p, _| p.total_individual_clients = -1);
            }
            fails(fx.sum_part_url(1), "impossible result: total_individual_clients is -1")
        }),
        // --- Names and keys: traversal and odd characters ---
        case("intake --aggregation ../escape", Cli("intake {server0} ../escape"), |_| {
            fails("\"../escape\"", "is not a valid name")
        }),
        case(
            "intake --aggregation with a traversal, --batch",
            Cli("intake {server0} bad-input/../bad-input --batch {target}"),
            |_| fails("\"bad-input/../bad-input\"", "is not a valid name"),
        ),
        case("aggregate --aggregation /etc", Cli("aggregate {server0} /etc {window}"), |_| {
            fails("\"/etc\"", "is not a valid name")
        }),
        case("collect --aggregation \"a b\\nc\"", Cli("collect {portal} {odd} {window}"), |_| {
            fails("\"a b\\nc\"", "is not a valid name")
        }),
        case("ingest --aggregation ..", Cli("ingest {ingestor} .. --bins 3"), |fx| {
            fx.write_input("1,0,0\n");
            fails("\"..\"", "is not a valid name")
        }),
        case("store keys: .., absolute, backslash, control, empty", Direct, |fx| {
            let bad = ["../server0-own/x", "/etc/passwd", "a/../../b", "a\\b", "a\u{7}", "a//", ""];
            let store = fx.ing(0);
            let mut outcomes = vec![store.list("../").map(|_| ()).map_err(|e| e.to_string())];
            for key in bad {
                outcomes.push(store.get(key).map(|_| ()).map_err(|e| e.to_string()));
                outcomes.push(store.put(key).map(|_| ()).map_err(|e| e.to_string()));
                outcomes.push(store.head(key).map(|_| ()).map_err(|e| e.to_string()));
                outcomes.push(store.create_new(key, b"x").map(|_| ()).map_err(|e| e.to_string()));
            }
            let refused =
                |o: &Result<_, String>| matches!(o, Err(e) if e.contains("bad object key"));
            fx.direct = Some(match outcomes.iter().all(refused) {
                true => Err(format!("all {} refused, e.g. {}", outcomes.len(), err(&outcomes[1]))),
                false => Ok(format!("not all refused: {outcomes:?}")),
            });
            fails("\"../server0-own/x\"", "bad object key")
        }),
        case("planted objects with odd keys are not taken for batches", Intake(0), |fx| {
            let sig = fx.get(fx.ing(0), &fx.names().signature);
            let (date, uuid) = (fx.target.date_path(), fx.target.uuid);
            for odd in [
                format!("{AGG}/{date}/{}.batch.sig", uuid.to_string().to_uppercase()),
                format!("{AGG}/{date}/x{uuid}.batch.sig"),
                format!("{AGG}/{date}/sub/{}.batch.sig", Uuid::new_v4()),
                format!("{AGG}/2026/1/2/3/4/{}.batch.sig", Uuid::new_v4()),
                format!("{AGG}/{date}/{} .batch.sig", Uuid::new_v4()),
            ] {
                assert!(validate_key(&odd).is_ok());
                fx.put(fx.ing(0), &odd, &sig);
            }
            accepted("only canonical batch keys are listed as batches")
        }),
        // --- The command line: a bad batch among good ones, bad arguments and reports ---
        case("divvi intake: one garbage header among good batches",
            Cli("intake {server0} bad-input"), |fx| {
            fx.replace_header(&garbage(64));
            fails(fx.header_url(), "not an Avro object container file")
        }),
        case("divvi intake: every packet refused (server 1's packets in server 0's bucket)",
            Cli("intake {server0} bad-input"), |fx| {
            let theirs = fx.packets(1);
            fx.rewrite_ingestion(0, |_, packets| *packets = theirs);
            fails(fx.header_url(), "every one of its 4 packets was refused (4 x unknown encryption key id \"server1-packet\" (e.g. ")
        }),
        case("intake --batch of a UUID the aggregation does not hold",
            Cli("intake {server0} bad-input --batch {nil}"), |_| {
            fails(Uuid::nil().to_string(), "no ingestion batch")
        }),
        case("collect --run 5 (no such late run)",
            Cli("collect {portal} bad-input {window} --run 5"), |fx| {
            let late = fx.sum_part_id(0).names().signature.replace(".sum_0", "-late5.sum_0");
            fails(fx.url(fx.sums(0), &late), "no such object")
        }),
        case(
            "aggregate --start after --end",
            Cli("aggregate {server0} bad-input --start 202611250000 --end 202611240000"),
            |_| fails("window end 2026-11-24 00:00:00 UTC", "is before its start"),
        ),
        case("divvi ingest --bins 0", Cli("ingest {ingestor} bad-input --bins 0"), |fx| {
            fx.write_input("\n");
            fails("bins", "must be between 1 and 65536, got 0")
        }),
        case("divvi ingest --bins 10^12",
            Cli("ingest {ingestor} bad-input --bins 1000000000000"), |fx| {
            fx.write_input("\n");
            fails("bins", "must be between 1 and 65536, got 1000000000000")
        }),
        case("divvi ingest: a malformed report line",
            Cli("ingest {ingestor} bad-input --bins 3 --batch-size 1"), |fx| {
            fx.write_input("1,0,0\n0,1,0\n0,x,1\n1,1,1\n");
            fails(format!("{}:3", fx.input().display()), "\"x\" is not an integer")
        }),
        case("divvi ingest: a report of the wrong length",
            Cli("ingest {ingestor} bad-input --bins 3"), |fx| {
            fx.write_input("1,0,0\n1,0\n");
            fails(format!("{}:2", fx.input().display()), "has 2 entries, expected 3")
        }),
        // --- bounded inputs (issue 16 item 7) ---
        case("ingest --batch-size 0",
            Cli("ingest {ingestor} bad-input --bins 3 --batch-size 0"), |fx| {
            fx.write_input("1,0,0\n");
            fails("--batch-size", "must be at least 1, got 0")
        }),
        case("ingest --epsilon NaN", Cli("ingest {ingestor} bad-input --bins 3 --epsilon NaN"), |fx| {
            fx.write_input("1,0,0\n");
            fails("--epsilon", "must be a finite number >= 0, got NaN")
        }),
        case("ingest --epsilon inf", Cli("ingest {ingestor} bad-input --bins 3 --epsilon inf"), |fx| {
            fx.write_input("1,0,0\n");
            fails("--epsilon", "must be a finite number >= 0, got inf")
        }),
        case("ingest --epsilon -1", Cli("ingest {ingestor} bad-input --bins 3 --epsilon -1"), |fx| {
            fx.write_input("1,0,0\n");
            fails("--epsilon", "must be a finite number >= 0, got -1")
        }),
        case("ingest --input - (standard input) without --format",
            Cli("ingest {ingestor} bad-input --bins 3 --input -"), |_| {
            fails("--input -", "needs --format csv or --format jsonl")
        }),
        case("ingest --input - with --journal (stdin cannot be read again)",
            Cli("ingest {ingestor} bad-input --bins 3 --input - --format csv --journal {journal}"),
            |_| fails("--journal", "standard input cannot be read again"),
        ),
        // --- configs refused at load (issue 16 item 3) ---
        case("server: DAP HPKE key is the other server's", Cli("check {server1}"), |fx| {
            fx.with_dap_task();
            fx.refused(Server1, "server1-hpke.key", "server0-hpke.key", "dap.hpke_key: its public key is not the task's helper_hpke_config.public_key")
        }),
        case("server: DAP verify key of 16 bytes", Cli("check {server0}"), |fx| {
            let verify = fx.with_dap_task().join("keys/verify.key");
            use base64::Engine as _;
            let short = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([9u8; 16]);
            std::fs::write(verify, short).unwrap();
            fails(fx.config(Server0), "dap.verify_key: verify key: a dap-18 task's key is 32 bytes (Prio3 VERIFY_KEY_SIZE), got 16")
        }),
        case("portal: a server's DAP HPKE key as the collector key",
            Cli("check {portal} --as portal"), |fx| {
            fx.with_dap_task();
            fx.refused(Portal, "collector-hpke.key", "server0-hpke.key", "dap.collector_hpke_key: its public key is not the task's collector_hpke_config.public_key")
        }),
        case("ingestor: a key in its [dap] section", Cli("check {ingestor} --as ingestor"), |fx| {
            fx.with_dap_task();
            fx.refused(Ingestor, "[dap]\n", "[dap]\nverify_key = { file = \"keys/verify.key\" }\n", "unknown field `verify_key`")
        }),
        case("ingestor: both servers' ingestion one folder (./x/ vs x)",
            Cli("check {ingestor} --as ingestor"), |fx| {
            fx.refused(Ingestor, "\"buckets/server1-ingestion\"", "\"./buckets/server0-ingestion/\"", "servers[server_index = 0].ingestion and servers[server_index = 1].ingestion are the same location")
        }),
        case("ingestor: both servers' ingestion one folder (file://, %-escaped)",
            Cli("ingest {ingestor} bad-input --bins 3"), |fx| {
            fx.write_input("1,0,0\n");
            let url = format!("\"file://{}/buckets/server0%2Dingestion\"", fx.d.paths.dir.display());
            fx.refused(Ingestor, "\"buckets/server1-ingestion\"", &url, "are the same location")
        }),
        case("server: own is its ingestion location", Cli("check {server0}"), |fx| {
            fx.refused(Server0, "own = \"buckets/server0-own\"", "own = \"buckets/server0-ingestion\"", "locations.ingestion (written by the ingestor) and locations.own")
        }),
        case("server: own is its ingestion location (divvi aggregate)",
            Cli("aggregate {server0} bad-input {window}"), |fx| {
            fx.refused(Server0, "own = \"buckets/server0-own\"", "own = \"buckets/server0-ingestion\"", "locations.ingestion (written by the ingestor) and locations.own")
        }),
        case("server: peer_outbox is its own peer_inbox", Cli("check {server1}"), |fx| {
            fx.refused(Server1, "\"buckets/server0-peer-inbox\"", "\"buckets/server1-peer-inbox\"", "locations.peer_inbox (written by the peer) and locations.peer_outbox")
        }),
        case("server: own and sum_parts one S3 prefix (p vs p/)", Cli("check {server0}"), |fx| {
            fx.edit_config(Server0, "\"buckets/server0-own\"", "\"s3://shared/p\"");
            fx.refused(Server0, "\"buckets/server0-sum-parts\"", "\"s3://shared/p/\"", "locations.own (this server's own records, written and read by it alone) and locations.sum_parts (read by the portal) are the same location, s3://shared/p/")
        }),
        case("server: two [[packet_keys]] with one id", Cli("check {server0}"), |fx| {
            let twice = "[[packet_keys]]\nid = \"server0-packet\"\nscheme = \"hpke\"\n\n\
                [packet_keys.secret]\nfile = \"keys/server0-packet.key\"\n\n[stash_key]";
            fx.refused(Server0, "[stash_key]", twice, "packet_keys: two entries with id \"server0-packet\"")
        }),
        case("server: two trust.ingestors with one id", Cli("check {server0}"), |fx| {
            let other = fx.d.servers[1].signing_key.verifying_key().to_base64();
            let entry = format!("[[trust.ingestors]]\nid = \"ingestor-signing\"\npublic_key = \"{other}\"\n\n[[trust.peer]]");
            fx.refused(Server0, "[[trust.peer]]", &entry, "trust.ingestors: two entries with id \"ingestor-signing\"")
        }),
        case("server: two trust.peer with one id", Cli("check {server0}"), |fx| {
            let other = fx.d.ingestor.signing_key.verifying_key().to_base64();
            let entry = format!("[[trust.peer]]\nid = \"server1-signing\"\npublic_key = \"{other}\"\n\n[limits]");
            fx.refused(Server0, "[limits]", &entry, "trust.peer: two entries with id \"server1-signing\"")
        }),
        case("server: the ingestor's key trusted as the peer's", Cli("check {server0}"), |fx| {
            let peer = fx.d.servers[1].signing_key.verifying_key().to_base64();
            let ingestor = fx.d.ingestor.signing_key.verifying_key().to_base64();
            fx.refused(Server0, &peer, &ingestor, "trust.ingestors \"ingestor-signing\" and trust.peer \"server1-signing\" are the same public key")
        }),
        case("server: its own key trusted as the peer's (divvi aggregate)",
            Cli("aggregate {server0} bad-input {window}"), |fx| {
            let peer = fx.d.servers[1].signing_key.verifying_key().to_base64();
            let own = fx.d.servers[0].signing_key.verifying_key().to_base64();
            fx.refused(Server0, &peer, &own, "trust.peer \"server1-signing\" is this server's own signing key")
        }),
        case("portal: a server's signing_keys with one id twice", Cli("check {portal} --as portal"), |fx| {
            let other = fx.d.servers[1].signing_key.verifying_key().to_base64();
            let entry = format!("[[servers.signing_keys]]\nid = \"server0-signing\"\npublic_key = \"{other}\"\n\n[[servers]]");
            fx.refused(Portal, "[[servers]]\nserver_index = 1", &format!("{entry}\nserver_index = 1"), "servers[server_index = 0].signing_keys: two entries with id \"server0-signing\"")
        }),
        case("portal: one server listed twice (divvi collect)",
            Cli("collect {portal} bad-input {window}"), |fx| {
            fx.refused(Portal, "server_index = 1", "server_index = 0", "two [[servers]] entries with server_index = 0")
        }),
        case("portal: both servers' sum parts from one location", Cli("check {portal} --as portal"), |fx| {
            fx.refused(Portal, "\"buckets/server1-sum-parts\"", "\"buckets/server0-sum-parts/\"", "sum_parts are the same location with the same instance")
        }),
        case("portal: one signing key trusted for both servers", Cli("check {portal} --as portal"), |fx| {
            let key0 = fx.d.servers[0].signing_key.verifying_key().to_base64();
            let key1 = fx.d.servers[1].signing_key.verifying_key().to_base64();
            fx.refused(Portal, &key1, &key0, "are the same public key")
        }),
        case("location s3:/bucket (one slash)", Cli("check {server0}"), |fx| {
            fx.refused(Server0, "\"buckets/server0-sum-parts\"", "\"s3:/bucket\"", "locations.sum_parts: location \"s3:/bucket\" starts with \"s3:\"")
        }),
        case("location s3:bucket", Cli("check {server1}"), |fx| {
            fx.refused(Server1, "\"buckets/server1-own\"", "\"s3:bucket\"", "locations.own: location \"s3:bucket\" starts with \"s3:\", which is neither s3:// nor file://")
        }),
        case("location S3://bucket (capital S)", Cli("check {ingestor} --as ingestor"), |fx| {
            fx.refused(Ingestor, "\"buckets/server1-ingestion\"", "\"S3://bucket\"", "servers[server_index = 1].ingestion: location \"S3://bucket\"")
        }),
        case("location file:/x and http://host/x", Cli("check {portal} --as portal"), |fx| {
            fx.edit_config(Portal, "\"buckets/server1-sum-parts\"", "\"file:/x\"");
            fx.refused(Portal, "\"buckets/portal-results\"", "\"http://host/x\"", "servers[server_index = 1].sum_parts: location \"file:/x\" starts with \"file:\"")
        }),
        case("location http://host/x", Cli("check {server0}"), |fx| {
            fx.refused(Server0, "\"buckets/server0-peer-inbox\"", "\"http://host/x\"", "a location is s3://bucket/prefix, file:///absolute/folder, or a folder path")
        }),
        case("location file:// URL with a bad % escape", Cli("check {server0}"), |fx| {
            fx.refused(Server0, "\"buckets/server0-own\"", "\"file:///tmp/own%zz\"", "locations.own: location file:///tmp/own%zz: bad percent escape")
        }),
        case("secret pasted inline as a string", Cli("check {server0}"), |fx| {
            let key = fx.key_text("server0-signing.key");
            fx.refused(Server0, "[signing_key.secret]\nfile = \"keys/server0-signing.key\"", &format!("secret = \"{key}\""), "a secret must be { file = ... } or { env = ... }; never inline")
        }),
        case("secret file name that is key text", Cli("check {server0}"), |fx| {
            let key = fx.key_text("server0-packet.key");
            fx.refused(Server0, "\"keys/server0-packet.key\"", &format!("\"{key}\""), "packet_keys[0].secret: the secret's file name looks like key material")
        }),
        case("server key file open to others (0644)", Cli("check {server0}"), |fx| {
            let path = fx.set_key_mode("server0-stash.key", 0o644);
            fails(path, "is mode 644, open to group or others; a server's keys must be owner-only: chmod 600")
        }),
        case("server key file open to its group (0640, divvi intake)",
            Cli("intake {server1} bad-input --batch {target}"), |fx| {
            let path = fx.set_key_mode("server1-signing.key", 0o640);
            fails(path, "chmod 600")
        }),
        case("ingestor key file open to others (0644): a warning", Cli("check {ingestor} --as ingestor"), |fx| {
            fx.set_key_mode("ingestor-signing.key", 0o644);
            accepted("the ingestor's own key: a warning, not a refusal (tests/secrets.rs checks it)")
        }),
        // --- nothing skipped in silence (issue 16 item 6) ---
        case("divvi intake: a batch under an unpadded date is reported, not taken",
            Cli("intake {server0} bad-input"), |fx| {
            let sig = fx.get(fx.ing(0), &fx.names().signature);
            let odd = format!("{AGG}/2026/1/2/3/4/{}.batch.sig", Uuid::new_v4());
            fx.put(fx.ing(0), &odd, &sig);
            warns(fx.url(fx.ing(0), &odd), "looks like a batch object but its key is not canonical")
        }),
        case("divvi intake: a batch under an upper-case UUID is reported, not taken",
            Cli("intake {server0} bad-input"), |fx| {
            let upper = fx.names().signature.replace(
                &fx.target.uuid.to_string(),
                &fx.target.uuid.to_string().to_uppercase(),
            );
            let sig = fx.get(fx.ing(0), &fx.names().signature);
            fx.put(fx.ing(0), &upper, &sig);
            warns(fx.url(fx.ing(0), &upper), "not taken for a batch")
        }),
        case("divvi intake: an aggregation with no batches names the known ones",
            Cli("intake {server0} no-such-aggregation"), |fx| {
            warns(
                fx.url(fx.ing(0), "no-such-aggregation/"),
                "no batches of aggregation no-such-aggregation in file://",
            )
        }),
        case("divvi status: an aggregation with no batches names the known ones",
            Cli("status {server0} bad-in"), |fx| {
            warns(fx.url(fx.ing(0), "bad-in/"), "known aggregations there: bad-input")
        }),
        case("divvi status: a missing ingestion folder is reported",
            Cli("status {server0} bad-input"), |fx| {
            let root = fx.url(fx.ing(0), "");
            std::fs::remove_dir_all(root.strip_prefix("file://").unwrap()).unwrap();
            warns(root, "does not exist: nothing to read there; is the path right?")
        }),
        case("divvi aggregate: a missing peer inbox folder is reported",
            Cli("aggregate {server0} bad-input --pending"), |fx| {
            let inbox = fx.d.servers[0].peer_inbox.describe("");
            std::fs::remove_dir_all(inbox.strip_prefix("file://").unwrap()).unwrap();
            warns(inbox, "location peer_inbox")
        }),
        case("aggregate --start/--end over 31 days without --force",
            Cli("aggregate {server0} bad-input --start 202601010000 --end 202603010000"), |_| {
            fails("window --start 2026-01-01 00:00:00 UTC", "spans 59 days, over the bound of 31 days")
        }),
        case("collect --start/--end over 31 days without --force",
            Cli("collect {portal} bad-input --start 202601010000 --end 202602020000"), |_| {
            fails("--end 2026-02-02 00:00:00 UTC", "pass --force if it is meant")
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Cases, expectations, outcomes
// ---------------------------------------------------------------------------------------

/// Whose config a case edits.
#[derive(Clone, Copy)]
enum Party {
    Server0,
    Server1,
    Ingestor,
    Portal,
}
use Party::*;

#[derive(Clone, Copy, Debug)]
enum Stage {
    Intake(usize),
    Aggregate(usize),
    Collect,
    /// The `divvi` binary: `"command config aggregation more..."` (`check` takes no
    /// aggregation). `--config` and `--aggregation` (and for ingest `--input`, unless
    /// given) are added; `{server0}`, `{server1}`, `{portal}`, `{ingestor}`, `{target}`,
    /// `{nil}`, `{odd}` and `{journal}` are filled in, and `{window}` becomes
    /// `--start … --end …` for the fixture's window.
    Cli(&'static str),
    /// Calls the case makes itself; it leaves the result in `Fx::direct`.
    Direct,
}

impl Stage {
    /// How many stages run before this one: 0 nothing, 1 intake, 2 intake and aggregate.
    fn depth(self) -> u8 {
        match self {
            Intake(_) | Direct => 0,
            Aggregate(_) => 1,
            Collect => 2,
            Cli(spec) if spec.starts_with("aggregate") => 1,
            Cli(spec) if spec.starts_with("collect") => 2,
            Cli(_) => 0,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Intake(s) => write!(f, "intake {s}"),
            Aggregate(s) => write!(f, "aggregate {s}"),
            Collect => write!(f, "collect"),
            Cli(spec) => write!(f, "divvi {}", spec.split(' ').next().unwrap_or("")),
            Direct => write!(f, "store"),
        }
    }
}

enum Expect {
    Fails {
        object: String,
        reason: String,
    },
    Invalid {
        uuid: Uuid,
        reason: String,
        /// Whether the UUID is also counted (its first copy): a packet counts at most once.
        counted: bool,
    },
    Accepted {
        why: &'static str,
        /// For collect: the histogram it must publish.
        histogram: Option<Vec<u64>>,
    },
    Warns {
        object: String,
        reason: String,
    },
}

fn fails(object: impl Into<String>, reason: impl Into<String>) -> Expect {
    Expect::Fails {
        object: object.into(),
        reason: reason.into(),
    }
}

fn invalid(uuid: Uuid, reason: &str) -> Expect {
    Expect::Invalid {
        uuid,
        reason: reason.into(),
        counted: false,
    }
}

/// A UUID listed invalid (a later copy) and also counted once (its first copy).
fn invalid_after_counted(uuid: Uuid, reason: &str) -> Expect {
    Expect::Invalid {
        uuid,
        reason: reason.into(),
        counted: true,
    }
}

/// The command succeeds and warns about `object` for `reason`.
fn warns(object: impl Into<String>, reason: impl Into<String>) -> Expect {
    Expect::Warns {
        object: object.into(),
        reason: reason.into(),
    }
}

fn accepted(why: &'static str) -> Expect {
    Expect::Accepted {
        why,
        histogram: None,
    }
}

struct Case {
    name: &'static str,
    scheme: PacketScheme,
    stage: Stage,
    /// Spoils the fresh deployment; returns what must happen.
    build: fn(&mut Fx) -> Expect,
    /// A known gap: the case asserts today's behaviour, and this says what is missing.
    gap: Option<&'static str>,
}

fn case(name: &'static str, stage: Stage, build: fn(&mut Fx) -> Expect) -> Case {
    Case {
        name,
        scheme: PacketScheme::Hpke,
        stage,
        build,
        gap: None,
    }
}

/// What the stage did.
enum Ran {
    Intake {
        target: Result<IntakeReport, String>,
        /// The other pending batches, each taken on its own.
        others: Vec<Result<IntakeReport, String>>,
    },
    Aggregate(Result<AggregateReport, String>),
    Collect(Result<collect::CollectResult, String>),
    Cli {
        ok: bool,
        stderr: String,
    },
    Direct(Result<String, String>),
}

impl Ran {
    fn error(&self) -> Option<&str> {
        match self {
            Ran::Intake { target, .. } => target.as_ref().err(),
            Ran::Aggregate(r) => r.as_ref().err(),
            Ran::Collect(r) => r.as_ref().err(),
            Ran::Cli { ok, stderr } => (!ok).then_some(stderr),
            Ran::Direct(r) => r.as_ref().err(),
        }
        .map(String::as_str)
    }

    /// Packets refused, and whether every packet was accounted for (counted or refused).
    fn refused(&self) -> Option<(&[Rejected], bool)> {
        match self {
            Ran::Intake { target: Ok(r), .. } => Some((
                &r.rejected,
                r.packets == r.verified + r.rejected.len() as u64,
            )),
            Ran::Aggregate(Ok(r)) => {
                Some((&r.invalid, r.packets == r.valid + r.invalid.len() as u64))
            }
            Ran::Collect(Ok(_)) | Ran::Cli { ok: true, .. } | Ran::Direct(Ok(_)) => {
                Some((&[], true))
            }
            _ => None,
        }
    }
}

/// Marks an error that was a caught panic.
const PANIC: &str = "PANICKED: ";

/// Runs `f`, turning an error or a panic into its message.
fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(panic) => {
            let text = (panic.downcast_ref::<String>().cloned())
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("{PANIC}{}", text.unwrap_or_default()))
        }
    }
}

/// Runs one case: a fresh deployment, the stages before, the spoiling, the stage, the
/// checks. Ok(what happened) or Err(how it missed its expectation).
fn run_case(case: &Case) -> Result<String, String> {
    let mut fx = Fx::new(case.scheme);
    fx.prepare(case.stage);
    let expect = (case.build)(&mut fx);
    let before = fx.files();
    let ran = fx.run(case.stage);
    let new: Vec<String> = fx.files().difference(&before).cloned().collect();
    check(&fx, case.stage, &expect, &ran, &new)
}

fn check(
    fx: &Fx,
    stage: Stage,
    expect: &Expect,
    ran: &Ran,
    new: &[String],
) -> Result<String, String> {
    if let Some(e) = ran.error().filter(|e| e.contains(PANIC)) {
        return Err(format!("panicked: {e}"));
    }
    if let Some(temp) = new.iter().find(|f| f.contains(".divvi-tmp-")) {
        return Err(format!("left a temporary file: {temp}"));
    }
    match expect {
        Expect::Fails { object, reason } => {
            let Some(error) = ran.error() else {
                let detail = match ran {
                    Ran::Direct(Ok(d)) => d.as_str(),
                    _ => "",
                };
                return Err(format!("the stage succeeded {detail}"));
            };
            if !error.contains(object.as_str()) {
                return Err(format!("the error does not name {object:?}: {error}"));
            }
            if !error.contains(reason.as_str()) {
                return Err(format!("the error does not say {reason:?}: {error}"));
            }
            let target = fx.target.uuid.to_string();
            let outputs = [".sum_", ".invalid_uuid_", ".result."];
            let written: Vec<&String> = (new.iter())
                .filter(|f| f.contains(&target) || outputs.iter().any(|o| f.contains(o)))
                .collect();
            if !written.is_empty() {
                return Err(format!("a failed stage wrote {written:?}"));
            }
            fx.check_good_batch_processed(stage, ran, new)?;
            Ok(format!("fails: {}", first_line(error)))
        }
        Expect::Invalid {
            uuid,
            reason,
            counted,
        } => {
            if let Some(e) = ran.error() {
                return Err(format!("the stage failed: {e}"));
            }
            let Some((refused, all_accounted)) = ran.refused() else {
                return Err("no report".into());
            };
            let listed = refused.iter().filter(|r| r.uuid == *uuid);
            let Some(r) = listed.clone().find(|r| r.reason.contains(reason.as_str())) else {
                return Err(format!(
                    "{uuid} is not listed invalid for {reason:?}: {refused:?}"
                ));
            };
            if !all_accounted {
                return Err("a packet was neither counted nor listed".into());
            }
            if let Ran::Aggregate(Ok(report)) = ran {
                if report.counted.contains(uuid) != *counted {
                    return Err(format!("{uuid} counted: {}", !counted));
                }
            }
            fx.check_output_written(stage, new)?;
            fx.check_good_batch_processed(stage, ran, new)?;
            Ok(format!("invalid: {uuid} {}", r.reason))
        }
        Expect::Accepted { why, histogram } => {
            if let Some(e) = ran.error() {
                return Err(format!("the stage failed: {e}"));
            }
            match ran.refused() {
                Some(([], true)) => {}
                other => return Err(format!("something was refused: {:?}", other.map(|o| o.0))),
            }
            if let (Some(want), Ran::Collect(Ok(result))) = (histogram, ran) {
                if &result.histogram != want {
                    return Err(format!("histogram {:?}, not {want:?}", result.histogram));
                }
            }
            fx.check_output_written(stage, new)?;
            Ok(format!("accepted: {why}"))
        }
        Expect::Warns { object, reason } => {
            let Ran::Cli { ok: true, stderr } = ran else {
                return Err(format!("the command failed: {:?}", ran.error()));
            };
            let warned = |line: &&str| {
                line.contains("WARN")
                    && line.contains(object.as_str())
                    && line.contains(reason.as_str())
            };
            let Some(line) = stderr.lines().find(warned) else {
                return Err(format!(
                    "no warning names {object:?} and says {reason:?}: {stderr}"
                ));
            };
            fx.check_good_batch_processed(stage, ran, new)?;
            Ok(format!("warns: {}", line.trim()))
        }
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut end = line.len().min(150);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// Each case is a test of its own, named after it, so `cargo test --test bad_input --
/// <part of a name>` runs just the cases that match.
fn main() -> std::process::ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    // Each case has its own deployment, and most of its time is spent waiting for files
    // to be synced to disk: run more at a time than there are cores, unless told.
    args.test_threads.get_or_insert(8);
    let cases = cases();
    let mut trials = table_checks(&cases);
    trials.extend(cases.into_iter().map(trial));
    libtest_mimic::run(&args, trials).exit_code()
}

/// Checks of the table itself, as tests of their own.
fn table_checks(cases: &[Case]) -> Vec<Trial> {
    let names: Vec<&'static str> = cases.iter().map(|c| c.name).collect();
    let count = names.len();
    vec![
        Trial::test("the table: case names are unique", move || {
            let mut seen = BTreeSet::new();
            let twice: Vec<_> = names.into_iter().filter(|n| !seen.insert(*n)).collect();
            match twice.is_empty() {
                true => Ok(()),
                false => Err(format!("case names used twice: {twice:?}").into()),
            }
        }),
        Trial::test("the table: at least 40 cases", move || match count >= 40 {
            true => Ok(()),
            false => Err(format!("only {count} cases").into()),
        }),
    ]
}

fn trial(case: Case) -> Trial {
    let kind = if case.gap.is_some() { "gap" } else { "" };
    Trial::test(case.name, move || run_and_print(&case)).with_kind(kind)
}

/// Runs a case and prints its outcome line (ok, GAP or MISSED, with what happened), as
/// the harness prints only pass or fail.
fn run_and_print(case: &Case) -> Result<(), Failed> {
    let result = guarded(|| Ok(run_case(case))).and_then(|r| r);
    let mark = match (&result, case.gap) {
        (Err(_), _) => "MISSED",
        (Ok(_), Some(_)) => "GAP",
        (Ok(_), None) => "ok",
    };
    let (Ok(detail) | Err(detail)) = &result;
    let mut line = format!(
        "{mark:<6} {:<15} {}: {}\n",
        case.stage.to_string(),
        case.name,
        first_line(detail)
    );
    if let Some(note) = case.gap {
        line.push_str(&format!("{:<6} known gap: {note}\n", ""));
    }
    // One write, straight to stderr: lines of cases running in parallel do not mix.
    let _ = std::io::stderr().write_all(line.as_bytes());
    result.map(|_| ()).map_err(Failed::from)
}

// ---------------------------------------------------------------------------------------
// The fixture: a deployment with a good and a target batch, and ways to spoil them
// ---------------------------------------------------------------------------------------

struct Fx {
    d: Deployment,
    window: Window,
    time: chrono::DateTime<chrono::Utc>,
    good: BatchId,
    target: BatchId,
    /// The target's packets, (server 0's, server 1's) per report, as ingested.
    pairs: Vec<[DataSharePacket; 2]>,
    prio: Prio2Bins,
    direct: Option<Result<String, String>>,
}

fn ingest_pairs(
    d: &Deployment,
    time: chrono::DateTime<chrono::Utc>,
    pairs: &[[DataSharePacket; 2]],
) -> BatchId {
    let mut b = IngestionBatch::new(&d.ingestor, AGG, time).unwrap();
    for p in pairs {
        b.append(p).unwrap();
    }
    b.finish(BINS, 1.0).unwrap()
}

impl Fx {
    fn new(scheme: PacketScheme) -> Fx {
        let d = deployment(scheme);
        let (time, window) = now_window();
        let maker = PacketMaker::new(&d.ingestor, BINS).unwrap();
        let make = |ms: &[[u32; BINS]]| -> Vec<[DataSharePacket; 2]> {
            ms.iter().map(|m| maker.make(m).unwrap()).collect()
        };
        let good = ingest_pairs(&d, time, &make(&GOOD));
        let pairs = make(&TARGET);
        let target = ingest_pairs(&d, time, &pairs);
        Fx {
            d,
            window,
            time,
            good,
            target,
            pairs,
            prio: Prio2Bins::new(BINS as i64).unwrap(),
            direct: None,
        }
    }

    /// Runs the stages before `stage`.
    fn prepare(&self, stage: Stage) {
        if stage.depth() >= 1 {
            for s in &self.d.servers {
                for id in [&self.good, &self.target] {
                    intake::intake(s, id, &no_tick).unwrap();
                }
            }
        }
        if stage.depth() >= 2 {
            for s in &self.d.servers {
                aggregate::aggregate(s, AGG, &self.window, &no_tick).unwrap();
            }
        }
    }

    fn run(&self, stage: Stage) -> Ran {
        match stage {
            Intake(s) => {
                // As `divvi intake` does: every pending batch, one by one (and the target,
                // even if it is not complete enough to be listed).
                let server = &self.d.servers[s];
                let mut ids = intake::pending_batches(server, AGG).unwrap();
                if !ids.contains(&self.target) {
                    ids.push(self.target.clone());
                }
                let (mut target, mut others) = (None, Vec::new());
                for id in ids {
                    let r = guarded(|| intake::intake(server, &id, &no_tick));
                    match id == self.target {
                        true => target = Some(r),
                        false => others.push(r),
                    }
                }
                let target = target.unwrap();
                Ran::Intake { target, others }
            }
            Aggregate(s) => Ran::Aggregate(guarded(|| {
                aggregate::aggregate(&self.d.servers[s], AGG, &self.window, &no_tick)
            })),
            Collect => Ran::Collect(guarded(|| {
                collect::collect(&self.d.portal, AGG, &self.window)
            })),
            Cli(spec) => {
                let args = self.cli_args(spec);
                let out = common::divvi(&args.iter().map(String::as_str).collect::<Vec<_>>());
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                let stderr = match stderr.contains("panicked at") {
                    true => format!("{PANIC}{stderr}"),
                    false => stderr,
                };
                // Nothing to do (3) and waiting (4) are outcomes, not failures.
                Ran::Cli {
                    ok: matches!(out.status.code(), Some(0 | 3 | 4)),
                    stderr,
                }
            }
            Direct => Ran::Direct(self.direct.clone().expect("the case sets fx.direct")),
        }
    }

    fn cli_args(&self, spec: &str) -> Vec<String> {
        let mut words = spec.split(' ');
        let mut word = || self.fill(words.next().unwrap());
        let (command, config) = (word(), word());
        let mut args = vec![command.clone(), "--config".into(), config];
        if command != "check" {
            args.extend(["--aggregation".into(), word()]);
        }
        if command == "ingest" && !spec.contains("--input") {
            args.extend(["--input".into(), self.input().display().to_string()]);
        }
        let start = self.window.start.format("%Y%m%d%H%M").to_string();
        for w in words {
            match w {
                "{window}" => args.extend(["--start", &start, "--end", &start].map(String::from)),
                _ => args.push(self.fill(w)),
            }
        }
        args
    }

    fn fill(&self, word: &str) -> String {
        let p = &self.d.paths;
        let path = |p: &Path| p.display().to_string();
        match word {
            "{server0}" => path(&p.servers[0]),
            "{server1}" => path(&p.servers[1]),
            "{portal}" => path(&p.portal),
            "{ingestor}" => path(&p.ingestor),
            "{target}" => self.target.uuid.to_string(),
            "{nil}" => Uuid::nil().to_string(),
            "{odd}" => "a b\nc".into(),
            "{journal}" => path(&self.d.dir.path().join("journal.json")),
            _ => word.into(),
        }
    }

    /// Every file under the deployment's buckets, relative.
    fn files(&self) -> BTreeSet<String> {
        fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.insert(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let root = self.d.paths.dir.join("buckets");
        let mut out = BTreeSet::new();
        walk(&root, &root, &mut out);
        out
    }

    /// Intake takes batches one by one: a bad one must not stop the good one.
    fn check_good_batch_processed(
        &self,
        stage: Stage,
        ran: &Ran,
        new: &[String],
    ) -> Result<(), String> {
        let validated = |s: usize| {
            let key = self
                .good
                .names(BatchKind::Validation(ServerIndex::BOTH[s]))
                .signature;
            self.d.servers[s].own.head(&key).unwrap().is_some()
        };
        let ok = match (stage, ran) {
            (Intake(s), Ran::Intake { others, .. }) => {
                validated(s) && others.iter().all(|r| r.is_ok())
            }
            (Cli(spec), _)
                if spec.starts_with("intake {server0} bad-input") && !spec.contains("--batch") =>
            {
                let good = format!("{}.validity_0.sig", self.good.uuid);
                new.iter().any(|f| f.ends_with(&good))
            }
            _ => true,
        };
        match ok {
            true => Ok(()),
            false => Err(format!("the good batch was not validated: {new:?}")),
        }
    }

    /// A stage that succeeded wrote its output.
    fn check_output_written(&self, stage: Stage, new: &[String]) -> Result<(), String> {
        let wanted = match stage {
            Intake(s) => format!("{}.validity_{s}.sig", self.target.uuid),
            Aggregate(s) => format!(".sum_{s}.sig"),
            Collect => ".result.json".into(),
            Cli(_) | Direct => return Ok(()),
        };
        match new.iter().any(|f| f.ends_with(&wanted)) {
            true => Ok(()),
            false => Err(format!("no {wanted} written: {new:?}")),
        }
    }

    // --- objects ---

    fn ing(&self, s: usize) -> &dyn ObjectStore {
        self.d.servers[s].ingestion.as_ref()
    }

    fn sums(&self, s: usize) -> &dyn ObjectStore {
        self.d.portal.servers[s].sum_parts.as_ref()
    }

    /// The target's ingestion objects.
    fn names(&self) -> ObjectNames {
        self.target.names(BatchKind::Ingestion)
    }

    fn url(&self, store: &dyn ObjectStore, key: &str) -> String {
        store.describe(key)
    }

    fn header_url(&self) -> String {
        self.url(self.ing(0), &self.names().header)
    }

    fn packets_url(&self) -> String {
        self.url(self.ing(0), &self.names().packets)
    }

    fn sig_url(&self) -> String {
        self.url(self.ing(0), &self.names().signature)
    }

    fn get(&self, store: &dyn ObjectStore, key: &str) -> Vec<u8> {
        get_bytes(store, key, 1 << 24).unwrap()
    }

    fn put(&self, store: &dyn ObjectStore, key: &str, bytes: &[u8]) {
        put_bytes(store, key, bytes).unwrap();
    }

    fn size(&self, store: &dyn ObjectStore, key: &str) -> u64 {
        store.head(key).unwrap().unwrap()
    }

    fn edit(&self, store: &dyn ObjectStore, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = self.get(store, key);
        f(&mut bytes);
        self.put(store, key, &bytes);
    }

    fn remove(&self, store: &dyn ObjectStore, key: &str) {
        let path = store.describe(key);
        std::fs::remove_file(path.strip_prefix("file://").unwrap()).unwrap();
    }

    // --- the deployment's configs and key files ---

    fn config(&self, party: Party) -> String {
        let p = &self.d.paths;
        let path = match party {
            Server0 => &p.servers[0],
            Server1 => &p.servers[1],
            Ingestor => &p.ingestor,
            Portal => &p.portal,
        };
        path.display().to_string()
    }

    /// Replaces the first `from` in a party's config (which must hold it) with `to`.
    fn edit_config(&self, party: Party, from: &str, to: &str) {
        let path = self.config(party);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{path} lacks {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    fn key_path(&self, name: &str) -> PathBuf {
        self.d.paths.dir.join("keys").join(name)
    }

    fn key_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.key_path(name))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Edits a party's config as `edit_config` does; its load must fail naming the config
    /// and saying `reason`.
    fn refused(&self, party: Party, from: &str, to: &str, reason: &str) -> Expect {
        self.edit_config(party, from, to);
        fails(self.config(party), reason)
    }

    /// Gives every party's config a `[dap]` section of a fresh DAP task (made by keygen in
    /// a folder beside the deployment, named by absolute paths); returns that folder.
    fn with_dap_task(&self) -> PathBuf {
        let dap = self.d.dir.path().join("dap-task");
        let options = divvi::keygen::DapTaskOptions {
            dap_version: Default::default(),
            vdaf: "histogram:4".parse().unwrap(),
            time_precision: 3600,
            min_batch_size: 1,
            leader_endpoint: "https://leader.invalid/".into(),
            helper_endpoint: "https://helper.invalid/".into(),
            dp: None,
        };
        let made = divvi::keygen::keygen_with_dap(
            &dap,
            divvi::crypto::PacketScheme::Hpke,
            "test",
            &Default::default(),
            Default::default(),
            Some(&options),
        )
        .unwrap();
        let abs = dap.display().to_string();
        for (party, from) in [
            (Server0, &made.servers[0]),
            (Server1, &made.servers[1]),
            (Ingestor, &made.ingestor),
            (Portal, &made.portal),
        ] {
            let text = std::fs::read_to_string(from).unwrap();
            let section = &text[text.find("\n[dap]").unwrap()..]
                .replace("\"task.json\"", &format!("\"{abs}/task.json\""))
                .replace("\"keys/", &format!("\"{abs}/keys/"));
            let path = self.config(party);
            let mut own = std::fs::read_to_string(&path).unwrap();
            own.push_str(section);
            std::fs::write(&path, own).unwrap();
        }
        dap
    }

    /// Sets a key file's mode; returns its path as errors name it.
    fn set_key_mode(&self, name: &str, mode: u32) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.key_path(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    }

    fn input(&self) -> PathBuf {
        self.d.dir.path().join("reports.csv")
    }

    fn write_input(&self, text: &str) {
        std::fs::write(self.input(), text).unwrap();
    }

    fn largest_ingestion_object(&self, s: usize) -> u64 {
        let keys = [&self.good, &self.target].map(|id| id.names(BatchKind::Ingestion));
        let keys = keys
            .iter()
            .flat_map(|n| [&n.header, &n.packets, &n.signature]);
        keys.map(|k| self.size(self.ing(s), k)).max().unwrap()
    }

    // --- the target's ingestion batch ---

    fn uuid(&self, k: usize) -> Uuid {
        self.pairs[k][0].uuid
    }

    fn header_bytes(&self, s: usize) -> Vec<u8> {
        self.get(self.ing(s), &self.names().header)
    }

    fn ingestion_header(&self, s: usize) -> IngestionHeader {
        wire::decode_single(&self.header_bytes(s)).unwrap()
    }

    fn packet_file(&self, s: usize) -> Vec<u8> {
        self.get(self.ing(s), &self.names().packets)
    }

    /// Server 0's signature record of the target.
    fn signature(&self) -> BatchSignature {
        wire::decode_single(&self.get(self.ing(0), &self.names().signature)).unwrap()
    }

    fn packets(&self, s: usize) -> Vec<DataSharePacket> {
        self.pairs.iter().map(|p| p[s].clone()).collect()
    }

    /// Rewrites the target's batch for server `s` after `edit` (digest recomputed, signed
    /// by the ingestor).
    fn rewrite_ingestion(
        &self,
        s: usize,
        edit: impl FnOnce(&mut IngestionHeader, &mut Vec<DataSharePacket>),
    ) {
        let (mut header, mut packets) = (self.ingestion_header(s), self.packets(s));
        edit(&mut header, &mut packets);
        let store = self.ing(s);
        let mut w = BatchWriter::three_object(store, self.names(), PacketDigest::Sha256).unwrap();
        for p in &packets {
            w.append(p).unwrap();
        }
        let header = |digest| IngestionHeader {
            packet_file_digest: digest,
            ..header
        };
        w.finish(header, &self.d.ingestor.signing_key, &[store])
            .unwrap();
    }

    /// Server 0's header of the target changed by `edit`, re-signed.
    fn set_header(&self, edit: impl FnOnce(&mut IngestionHeader)) {
        self.rewrite_ingestion(0, |h, _| edit(h));
    }

    /// The target rewritten for both servers, and validated again by both.
    fn rewrite_ingestion_both(
        &self,
        edit: impl Fn(usize, &mut IngestionHeader, &mut Vec<DataSharePacket>),
    ) {
        for s in 0..2 {
            self.rewrite_ingestion(s, |h, p| edit(s, h, p));
        }
        for s in 0..2 {
            self.redo_intake(s);
        }
    }

    /// Spoils server `s`'s packet `k` of the target; returns its UUID.
    fn spoil(&self, s: usize, k: usize, f: impl FnOnce(&mut DataSharePacket)) -> Uuid {
        self.rewrite_ingestion(s, |_, p| f(&mut p[k]));
        self.pairs[k][s].uuid
    }

    /// A valid leader share of a fresh report, to spoil.
    fn leader_share(&self) -> Vec<u8> {
        self.prio.shard(&[0, 1, 0]).unwrap().0
    }

    fn seal(&self, s: usize, uuid: Uuid, plaintext: &[u8]) -> Vec<u8> {
        self.d.ingestor.targets[s]
            .key
            .seal(plaintext, uuid.as_bytes())
            .unwrap()
    }

    /// Replaces server `s`'s packet `k` of the target by `plaintext`, sealed to server `s`.
    fn reseal(&self, s: usize, k: usize, plaintext: &[u8]) -> Uuid {
        let payload = self.seal(s, self.pairs[k][s].uuid, plaintext);
        self.spoil(s, k, |p| p.encrypted_payload = payload)
    }

    /// A valid packet pair for `measurement` under a chosen UUID (sealed with it).
    fn pair_with_uuid(&self, measurement: &[u32], uuid: Uuid) -> [DataSharePacket; 2] {
        let (leader, helper) = self.prio.shard(measurement).unwrap();
        let packet = |s: usize, share: &[u8]| DataSharePacket {
            uuid,
            encrypted_payload: self.seal(s, uuid, share),
            ..self.pairs[0][s].clone()
        };
        [packet(0, &leader), packet(1, &helper)]
    }

    /// Writes server 0's target objects from bytes: the header signed by `key`.
    fn write_raw_ingestion(&self, header: &[u8], packets: Option<&[u8]>, key: &SigningKey) {
        let names = self.names();
        self.put(self.ing(0), &names.header, header);
        if let Some(p) = packets {
            self.put(self.ing(0), &names.packets, p);
        }
        let sig = signature_record(header, key);
        self.put(
            self.ing(0),
            &names.signature,
            &wire::encode_single(&sig).unwrap(),
        );
    }

    /// Server 0's header of the target replaced by `bytes`, signed by the ingestor.
    fn replace_header(&self, bytes: &[u8]) {
        self.write_raw_ingestion(bytes, None, &self.d.ingestor.signing_key);
    }

    /// Server 0's packet file replaced by `bytes`, with a signed header of its digest.
    fn replace_packet_file(&self, bytes: &[u8]) {
        let h = IngestionHeader {
            packet_file_digest: sha256(bytes).to_vec(),
            ..self.ingestion_header(0)
        };
        let header = wire::encode_single(&h).unwrap();
        self.write_raw_ingestion(&header, Some(bytes), &self.d.ingestor.signing_key);
    }

    /// A batch added to the window and validated by both servers.
    fn add_batch(&self, pairs: &[[DataSharePacket; 2]]) -> BatchId {
        let id = ingest_pairs(&self.d, self.time, pairs);
        for s in &self.d.servers {
            intake::intake(s, &id, &no_tick).unwrap();
        }
        id
    }

    /// Takes the good batch out of the window (without its signatures it is no batch).
    fn drop_good(&self) {
        for s in 0..2 {
            self.remove(
                self.ing(s),
                &self.good.names(BatchKind::Ingestion).signature,
            );
        }
    }

    fn redo_intake(&self, s: usize) {
        intake::intake(&self.d.servers[s], &self.target, &no_tick).unwrap();
    }

    // --- validations and stashes ---

    /// Server 1's validation of the target, in server 0's peer inbox.
    fn peer_sig_key(&self) -> String {
        self.target
            .names(BatchKind::Validation(ServerIndex::One))
            .signature
    }

    fn peer_validation_url(&self) -> String {
        self.url(self.d.servers[0].peer_inbox.as_ref(), &self.peer_sig_key())
    }

    fn own_validation_url(&self) -> String {
        let key = self
            .target
            .names(BatchKind::Validation(ServerIndex::Zero))
            .signature;
        self.url(self.d.servers[0].own.as_ref(), &key)
    }

    fn stash_url(&self) -> String {
        let key = self.target.stash_name(ServerIndex::Zero);
        self.url(self.d.servers[0].own.as_ref(), &key)
    }

    /// Rewrites `author`'s validation of the target where server `reader` reads it (its
    /// own location, or its peer inbox), signed by the author.
    fn rewrite_validation(
        &self,
        reader: usize,
        author: usize,
        edit: impl FnOnce(&mut ValidityHeader, &mut Vec<ValidityPacket>),
    ) {
        let r = &self.d.servers[reader];
        let (store, trust) = match author == reader {
            true => (r.own.as_ref(), &r.own_trust),
            false => (r.peer_inbox.as_ref(), &r.peer_trust),
        };
        let names = self
            .target
            .names(BatchKind::Validation(ServerIndex::BOTH[author]));
        let batch = open_batch::<ValidityHeader>(store, &names, trust, u64::MAX).unwrap();
        let mut header = batch.header.clone();
        let mut packets: Vec<ValidityPacket> =
            batch.packets().unwrap().map(Result::unwrap).collect();
        edit(&mut header, &mut packets);
        let mut w = BatchWriter::single_object(names, PacketDigest::Sha256).unwrap();
        for p in &packets {
            w.append(p).unwrap();
        }
        let header = |digest| ValidityHeader {
            packet_file_digest: digest,
            ..header
        };
        w.finish(header, &self.d.servers[author].signing_key, &[store])
            .unwrap();
    }

    // --- sum parts ---

    fn sum_part_id(&self, s: usize) -> SumPartId {
        SumPartId {
            instance: self.d.portal.servers[s].instance.clone(),
            aggregation: AGG.into(),
            window: self.window,
            run: 0,
            server: ServerIndex::BOTH[s],
        }
    }

    fn sum_part_url(&self, s: usize) -> String {
        self.url(self.sums(s), &self.sum_part_id(s).names().header)
    }

    /// Rewrites server `s`'s sum part after `edit` (digest recomputed, signed by server `s`).
    fn rewrite_sum_part(&self, s: usize, edit: impl FnOnce(&mut SumPart, &mut Vec<Uuid>)) {
        let part = collect::read_sum_part(&self.d.portal.servers[s], &self.sum_part_id(s)).unwrap();
        let (mut record, mut invalid) = (part.record, part.invalid);
        edit(&mut record, &mut invalid);
        let list: Vec<InvalidPacket> = invalid.iter().map(|&uuid| InvalidPacket { uuid }).collect();
        let list = match list.is_empty() {
            true => Vec::new(),
            false => wire::encode_all(&list).unwrap(),
        };
        record.packet_file_digest = sha256(&list).to_vec();
        self.write_sum_part(s, &record, &list);
    }

    /// Writes server `s`'s sum part objects: `record` (keeping the binding divvi wrote
    /// into its header, if any), the invalid file, the signature.
    fn write_sum_part(&self, s: usize, record: &SumPart, invalid_file: &[u8]) {
        let names = self.sum_part_id(s).names();
        let (_, binding) =
            decode_sum_part::<divvi::wire::SumPart>(&self.get(self.sums(s), &names.header))
                .unwrap();
        let header = match binding {
            Some(b) => encode_sum_part(record, &b).unwrap(),
            None => wire::encode_single(record).unwrap(),
        };
        self.put(self.sums(s), &names.packets, invalid_file);
        self.put(self.sums(s), &names.header, &header);
        let sig = signature_record(&header, &self.d.servers[s].signing_key);
        self.put(
            self.sums(s),
            &names.signature,
            &wire::encode_single(&sig).unwrap(),
        );
    }
}

impl Fx {
    fn late_sum_part_id(&self, s: usize, run: u32) -> SumPartId {
        SumPartId {
            run,
            ..self.sum_part_id(s)
        }
    }

    /// Copies server `s`'s sum part objects, as they are, to another part's names.
    fn copy_sum_part(&self, s: usize, from: &SumPartId, to: &SumPartId) {
        self.copy_objects(self.sums(s), &from.names(), self.sums(s), &to.names());
    }

    fn copy_objects(
        &self,
        from_store: &dyn ObjectStore,
        from: &ObjectNames,
        to_store: &dyn ObjectStore,
        to: &ObjectNames,
    ) {
        for (a, b) in [
            (&from.packets, &to.packets),
            (&from.header, &to.header),
            (&from.signature, &to.signature),
        ] {
            self.put(to_store, b, &self.get(from_store, a));
        }
    }
}

/// Collects late run `run` of the fixture's window.
fn collect_late(fx: &Fx, run: u32) -> Result<String, String> {
    guarded(|| collect::collect_run(&fx.d.portal, AGG, &fx.window, run)).map(|_| String::new())
}

fn signature_record(header: &[u8], key: &SigningKey) -> BatchSignature {
    BatchSignature {
        batch_header_signature: key.sign(header).unwrap(),
        key_identifier: key.key_id().to_string(),
        batch_header: None,
        packets: None,
    }
}

fn validity_header_of(h: &IngestionHeader) -> ValidityHeader {
    ValidityHeader {
        batch_uuid: h.batch_uuid,
        name: h.name.clone(),
        bins: h.bins,
        epsilon: h.epsilon,
        prime: h.prime,
        number_of_servers: h.number_of_servers,
        hamming_weight: h.hamming_weight,
        packet_file_digest: h.packet_file_digest.clone(),
    }
}

fn err(outcome: &Result<(), String>) -> &str {
    outcome.as_ref().err().map_or("", String::as_str)
}

/// Deterministic junk (xorshift).
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `bytes` with the first occurrence of `from` replaced by `to` (same length, so the
/// container's length prefixes still hold).
fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = (bytes.windows(from.len()).position(|w| w == from)).expect("the pattern occurs");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// An Avro long: zig-zag, then base-128 varint.
fn avro_long(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A packet file whose one block claims `count` records in `size` bytes, holding 8 bytes.
fn container_with_block(count: i64, size: i64) -> Vec<u8> {
    let mut file = wire::encode_all::<DataSharePacket>(&[]).unwrap();
    let sync = file[file.len() - 16..].to_vec();
    file.extend(avro_long(count));
    file.extend(avro_long(size));
    file.extend([0u8; 8]);
    file.extend(sync);
    file
}
