//! divvi against files the original ENPA aggregator wrote (shared/interop/enpa-v1-sample).

mod common;

use common::fixture;
use divvi::batch::{open_batch, parse_time, BatchId, BatchKind, SumPartId, Window};
use divvi::config::*;
use divvi::crypto::{PacketScheme, SigningKey, TrustSet};
use divvi::ids::ServerIndex;
use divvi::stages::{aggregate, collect, intake, no_tick};
use divvi::store::{LocalStore, ObjectStore};
use divvi::wire::{decode_all, decode_single, SumPart, ValidityHeader, ValidityPacket};
use std::path::Path;

// Test keys published with the fixture (its README); never used for anything real.
const INGESTOR_SIGNING: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggoa08rQR90Asvhy5bWIgFBDeGaO8FnVEF3PVpNVmDGChRANCAAQ2mZfm4UC73PkWsYz3Uub6UTIAFQCPGxouP1O1PlmntOpfLYdvyZDCuenAzv1oCfyToolNArNjwo/+harNn1fs";
const PHA_SIGNING: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1BQjH71U37XLfWqe+/xP8iUrMiHpmUtbj3UfDkhFIrShRANCAAQgqHcxxwTVx1IXimcRv5TQyYZh+ShDM6XZqJonoP1m52oN0aLID1hJSrfKJrnqdgmHmaT4eXNNf4C5+g1HZt+u";
const FACIL_SIGNING: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeSa+S+tmLupnAEyFKdVuKB99y09YEqW41+8pwP4cTkahRANCAASy7FHcLGnRudVHWga/j2k9nQ3lMvuGE01Q7DEyjyCuuw9YmB3dHvYcRUnxVRI/nF5LvneGim0dC7F1fuRAPeXI";
const PHA_PACKET: &str = "BIl6j+J6dYttxALdjISDv6ZI4/VWVEhUzaS05LgrsfswmbLOgNt9HUC2E0w+9RqZx3XMkdEHBHfNuCSMpOwofVSq3TfyKwn0NrftKisKKVSaTOt5seJ67P5QL4hxgPWvxw==";
const FACIL_PACKET: &str = "BNNOqoU54GPo+1gTPv+hCgA9U2ZCKd76yOMrWa1xTWgeb4LhFLMQIQoRwDVaW64g/WTdcxT4rDULoycUNFB60LER6hPEHg/ObBnRPV1rwS3nj9Bj0tbjVPPyL9p8QW8B+w==";

const AGGREGATION: &str = "test-aggregation";
const BATCH: &str = "ba097344-2b4e-45db-a002-c83f4a9adc63";

fn public(id: &str, pkcs8: &str) -> PublicKeyConfig {
    PublicKeyConfig {
        id: id.into(),
        public_key: SigningKey::from_pkcs8_base64(id, pkcs8)
            .unwrap()
            .verifying_key()
            .to_base64(),
        not_after: None,
    }
}

fn batch_id() -> BatchId {
    BatchId::new(
        AGGREGATION,
        parse_time("2021/04/13/19/17").unwrap(),
        BATCH.parse().unwrap(),
    )
    .unwrap()
}

fn window() -> Window {
    let t = parse_time("202104131917").unwrap();
    Window::new(t, t).unwrap()
}

/// Writes a key file owner-only, as a server requires.
fn write_key(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A server configured with the fixture's keys; secrets come from files in `dir`.
fn fixture_server(index: ServerIndex, dir: &Path, own: &Path, peer_inbox: &Path) -> Server {
    let (me, signing, packet_key_id, packet, peer) = match index {
        ServerIndex::Zero => (
            "pha",
            PHA_SIGNING,
            "pha-fake-key-1",
            PHA_PACKET,
            public("facil-signing-key", FACIL_SIGNING),
        ),
        ServerIndex::One => (
            "facil",
            FACIL_SIGNING,
            "facil-key",
            FACIL_PACKET,
            public("pha-signing-key", PHA_SIGNING),
        ),
    };
    write_key(&dir.join("signing.key"), signing);
    write_key(&dir.join("packet.key"), packet);
    let f = fixture();
    let config = ServerConfig {
        server_index: index,
        instance: "local-test".into(),
        locations: ServerLocations {
            ingestion: f.join(format!("{me}-out")).display().to_string().into(),
            own: own.display().to_string().into(),
            peer_inbox: peer_inbox.display().to_string().into(),
            peer_outbox: dir.join("outbox").display().to_string().into(),
            sum_parts: dir.join("sum-parts").display().to_string().into(),
        },
        signing_key: SigningKeyConfig {
            id: format!("{me}-signing-key"),
            secret: SecretSource {
                file: Some("signing.key".into()),
                env: None,
            },
        },
        packet_keys: vec![PacketKeyConfig {
            id: packet_key_id.into(),
            scheme: PacketScheme::Ecies,
            secret: SecretSource {
                file: Some("packet.key".into()),
                env: None,
            },
        }],
        // The original kept no stash: aggregate opens the packets again.
        stash_key: None,
        trust: ServerTrustConfig {
            ingestors: vec![public("signing-key-1", INGESTOR_SIGNING)],
            peer: vec![peer],
            portal: Vec::new(),
        },
        // The fixture has 10 clients; the original had no floor.
        limits: Limits {
            min_clients: 1,
            ..Default::default()
        },
        // The original server 0 writes no run manifests: server 1 decides its runs.
        peer_writes_manifests: index == ServerIndex::Zero,
        dap: None,
    };
    Server::from_config(&config, dir).unwrap()
}

fn validity_packets(path: &Path) -> Vec<ValidityPacket> {
    decode_all(&std::fs::read(path).unwrap()).unwrap()
}

fn fixture_validity(index: ServerIndex) -> std::path::PathBuf {
    // Server N's validation is in the peer's peer-validation folder.
    let folder = match index {
        ServerIndex::Zero => "facil-peer-validation",
        ServerIndex::One => "pha-peer-validation",
    };
    fixture()
        .join(folder)
        .join(batch_id().names(BatchKind::Validation(index)).packets)
}

#[test]
fn intake_reproduces_the_original_verifier_shares() {
    for index in ServerIndex::BOTH {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        let server = fixture_server(index, dir.path(), &own, &dir.path().join("inbox"));
        let report = intake::intake(&server, &batch_id(), &no_tick).unwrap();
        assert_eq!((report.packets, report.verified), (10, 10));
        assert!(report.rejected.is_empty());

        // Ours, read back through the batch reader (single-object form, signed by us).
        let names = batch_id().names(BatchKind::Validation(index));
        let ours =
            open_batch::<ValidityHeader>(server.own.as_ref(), &names, &server.own_trust, u64::MAX)
                .unwrap();
        let mine: Vec<ValidityPacket> = ours.packets().unwrap().collect::<Result<_, _>>().unwrap();
        let original = validity_packets(&fixture_validity(index));
        assert_eq!(mine, original, "server {index} verifier shares");
        // The peer receives the same object.
        let peer_copy = LocalStore::new(dir.path().join("outbox"));
        assert!(peer_copy.head(&names.signature).unwrap().is_some());
    }
    // The README's spot check of the first packet.
    let first0 = &validity_packets(&fixture_validity(ServerIndex::Zero))[0];
    assert_eq!(
        (first0.f_r, first0.g_r, first0.h_r),
        (93581437, 3239014267, 2490300021)
    );
}

#[test]
fn aggregate_of_the_fixture_writes_the_original_sums() {
    for index in ServerIndex::BOTH {
        let (me, peer_folder) = match index {
            ServerIndex::Zero => ("pha", "pha-peer-validation"),
            ServerIndex::One => ("facil", "facil-peer-validation"),
        };
        let dir = tempfile::tempdir().unwrap();
        // Own validation: the original's copy of this server's validation batch.
        let own = dir.path().join("own");
        let names = batch_id().names(BatchKind::Validation(index));
        for key in [&names.header, &names.packets, &names.signature] {
            let to = own.join(key);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(
                fixture_validity(index)
                    .parent()
                    .unwrap()
                    .join(Path::new(key).file_name().unwrap()),
                to,
            )
            .unwrap();
        }
        let server = fixture_server(index, dir.path(), &own, &fixture().join(peer_folder));
        let report = aggregate::aggregate(&server, AGGREGATION, &window(), &no_tick).unwrap();
        assert_eq!(report.valid, 10);
        assert!(report.invalid.is_empty());

        let part = SumPartId {
            instance: "local-test".into(),
            aggregation: AGGREGATION.into(),
            window: window(),
            run: 0,
            server: index,
        };
        let n = part.names();
        let ours: SumPart =
            decode_single(&std::fs::read(dir.path().join("sum-parts").join(&n.header)).unwrap())
                .unwrap();
        let original: SumPart = decode_single(
            &std::fs::read(fixture().join(format!("{me}-sum-parts")).join(&n.header)).unwrap(),
        )
        .unwrap();
        assert_eq!(ours, original, "server {index} sum part record");
        // Invalid-UUID file: empty, like the original's.
        assert_eq!(
            std::fs::read(dir.path().join("sum-parts").join(&n.packets))
                .unwrap()
                .len(),
            0
        );
    }
}

#[test]
fn collect_of_the_original_sum_parts() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let portal = PortalConfig {
        servers: vec![
            PortalServerConfig {
                server_index: ServerIndex::Zero,
                instance: "local-test".into(),
                sum_parts: f.join("pha-sum-parts").display().to_string().into(),
                signing_keys: vec![public("pha-signing-key", PHA_SIGNING)],
            },
            PortalServerConfig {
                server_index: ServerIndex::One,
                instance: "local-test".into(),
                sum_parts: f.join("facil-sum-parts").display().to_string().into(),
                signing_keys: vec![public("facil-signing-key", FACIL_SIGNING)],
            },
        ],
        results: dir.path().join("results").display().to_string().into(),
        signing_key: None,
        dap: None,
    };
    let portal = Portal::from_config(&portal, dir.path()).unwrap();
    let result = collect::collect(&portal, AGGREGATION, &window()).unwrap();
    assert_eq!(result.histogram, vec![5, 4, 5, 8, 7, 4, 5, 4, 6, 5]);
    assert_eq!(result.total_individual_clients, 10);
    let csv = std::fs::read_to_string(
        dir.path()
            .join("results/test-aggregation/202104131917-202104131917.result.csv"),
    )
    .unwrap();
    assert!(csv.starts_with("bin,count\n0,5\n1,4\n"), "{csv}");
}

#[test]
fn every_original_signature_verifies() {
    let mut trust = TrustSet::new();
    for (id, key) in [
        ("signing-key-1", INGESTOR_SIGNING),
        ("pha-signing-key", PHA_SIGNING),
        ("facil-signing-key", FACIL_SIGNING),
    ] {
        trust.insert(
            id,
            SigningKey::from_pkcs8_base64(id, key)
                .unwrap()
                .verifying_key(),
        );
    }
    let mut checked = 0;
    let f = fixture();
    for folder in [
        "pha-out",
        "facil-out",
        "pha-peer-validation",
        "facil-peer-validation",
        "pha-sum-parts",
        "facil-sum-parts",
    ] {
        let store = LocalStore::new(f.join(folder));
        for key in store
            .list("")
            .unwrap()
            .into_iter()
            .filter(|k| k.ends_with(".sig"))
        {
            let out = divvi::inspect::inspect(&f.join(folder).join(&key), Some(&trust), 3).unwrap();
            assert_eq!(
                out["signature"]["verdict"], "valid",
                "{folder}/{key}: {out}"
            );
            assert_eq!(out["digest"]["verdict"], "matches", "{folder}/{key}: {out}");
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
    // And a wrong key is refused.
    let mut wrong = TrustSet::new();
    wrong.insert(
        "signing-key-1",
        SigningKey::from_pkcs8_base64("x", PHA_SIGNING)
            .unwrap()
            .verifying_key(),
    );
    let key = batch_id().names(BatchKind::Ingestion).signature;
    let out = divvi::inspect::inspect(&f.join("pha-out").join(key), Some(&wrong), 1).unwrap();
    assert_eq!(out["signature"]["verdict"], "INVALID");
}

/// Writes the fixture's validation by server 0 into `dir` with the first packet's f_r
/// changed (so its proof fails on both servers), signed again with the PHA's key.
fn spoiled_validity_0(dir: &Path) -> uuid::Uuid {
    let index = ServerIndex::Zero;
    let names = batch_id().names(BatchKind::Validation(index));
    let from = fixture_validity(index);
    let from = from.parent().unwrap();
    let read = |key: &str| std::fs::read(from.join(Path::new(key).file_name().unwrap())).unwrap();
    let mut header: ValidityHeader = decode_single(&read(&names.header)).unwrap();
    let mut packets: Vec<ValidityPacket> = decode_all(&read(&names.packets)).unwrap();
    packets[0].f_r = (packets[0].f_r + 1) % i64::from(divvi::vdaf::PRIME);
    let packet_file = divvi::wire::encode_all(&packets).unwrap();
    header.packet_file_digest = divvi::crypto::sha256(&packet_file).to_vec();
    let header_file = divvi::wire::encode_single(&header).unwrap();
    let key = SigningKey::from_pkcs8_base64("pha-signing-key", PHA_SIGNING).unwrap();
    let signature = divvi::wire::BatchSignature {
        batch_header_signature: key.sign(&header_file).unwrap(),
        key_identifier: "pha-signing-key".into(),
        batch_header: None,
        packets: None,
    };
    for (name, bytes) in [
        (&names.packets, packet_file),
        (&names.header, header_file),
        (
            &names.signature,
            divvi::wire::encode_single(&signature).unwrap(),
        ),
    ] {
        let to = dir.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    packets[0].uuid
}

/// Copies the fixture's validation by `index` (three objects) under `dir`.
fn copy_fixture_validity(index: ServerIndex, dir: &Path) {
    let names = batch_id().names(BatchKind::Validation(index));
    let from = fixture_validity(index);
    for key in [&names.header, &names.packets, &names.signature] {
        let to = dir.join(key);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let name = Path::new(key).file_name().unwrap();
        std::fs::copy(from.parent().unwrap().join(name), to).unwrap();
    }
}

/// A sum part as the original aggregator writes it: the bare record, no divvi binding,
/// signed with the fixture's key of that server.
fn rewrite_in_original_form(sum_parts: &Path, index: ServerIndex) {
    let names = fixture_sum_part(index).names();
    let path = sum_parts.join(&names.header);
    let record: SumPart = decode_single(&std::fs::read(&path).unwrap()).unwrap();
    let header_file = divvi::wire::encode_single(&record).unwrap();
    let (id, pkcs8) = match index {
        ServerIndex::Zero => ("pha-signing-key", PHA_SIGNING),
        ServerIndex::One => ("facil-signing-key", FACIL_SIGNING),
    };
    let key = SigningKey::from_pkcs8_base64(id, pkcs8).unwrap();
    let signature = divvi::wire::BatchSignature {
        batch_header_signature: key.sign(&header_file).unwrap(),
        key_identifier: id.into(),
        batch_header: None,
        packets: None,
    };
    std::fs::write(&path, header_file).unwrap();
    let sig = divvi::wire::encode_single(&signature).unwrap();
    std::fs::write(sum_parts.join(&names.signature), sig).unwrap();
}

fn fixture_sum_part(index: ServerIndex) -> SumPartId {
    SumPartId {
        instance: "local-test".into(),
        aggregation: AGGREGATION.into(),
        window: window(),
        run: 0,
        server: index,
    }
}

fn fixture_portal(dir: &Path, sum_parts: [&Path; 2]) -> Portal {
    let server = |index: ServerIndex, id: &str, pkcs8: &str| PortalServerConfig {
        server_index: index,
        instance: "local-test".into(),
        sum_parts: sum_parts[usize::from(index.number())]
            .display()
            .to_string()
            .into(),
        signing_keys: vec![public(id, pkcs8)],
    };
    let config = PortalConfig {
        servers: vec![
            server(ServerIndex::Zero, "pha-signing-key", PHA_SIGNING),
            server(ServerIndex::One, "facil-signing-key", FACIL_SIGNING),
        ],
        results: dir.join("results").display().to_string().into(),
        signing_key: None,
        dap: None,
    };
    Portal::from_config(&config, dir).unwrap()
}

/// The original counts in `total_individual_clients` every packet it judged by its
/// proof, valid or not (its aggregation loop counts a packet once both validation
/// packets are found, before looking at the verdict); packets without both validations
/// are listed invalid and not counted. divvi writes the same number there, so with a
/// failed proof a divvi sum part still combines with one in the original's form, and the
/// count of valid clients travels in divvi's binding.
#[test]
fn a_failed_proof_counts_as_the_original_counts_it_and_mixed_parts_combine() {
    let dir = tempfile::tempdir().unwrap();
    let spoiled = dir.path().join("spoiled-validity-0");
    let bad = spoiled_validity_0(&spoiled);
    let intact_1 = dir.path().join("validity-1");
    copy_fixture_validity(ServerIndex::One, &intact_1);
    let mut sum_parts = Vec::new();
    for index in ServerIndex::BOTH {
        let home = dir.path().join(format!("server{index}"));
        std::fs::create_dir_all(&home).unwrap();
        // Server 0's own validation is the spoiled one, and server 1 receives it.
        let (own, peer) = match index {
            ServerIndex::Zero => (&spoiled, &intact_1),
            ServerIndex::One => (&intact_1, &spoiled),
        };
        let server = fixture_server(index, &home, own, peer);
        let report = aggregate::aggregate(&server, AGGREGATION, &window(), &no_tick).unwrap();
        assert_eq!((report.valid, report.judged), (9, 10), "server {index}");
        assert_eq!(report.invalid.len(), 1);
        assert_eq!(report.invalid[0].uuid, bad);
        let names = fixture_sum_part(index).names();
        let part = home.join("sum-parts");
        let record: SumPart =
            decode_single(&std::fs::read(part.join(&names.header)).unwrap()).unwrap();
        assert_eq!(record.total_individual_clients, 10, "server {index}");
        sum_parts.push(part);
    }
    // The original as server 0 beside divvi as server 1, and the reverse.
    let full = [5u64, 4, 5, 8, 7, 4, 5, 4, 6, 5];
    for original in ServerIndex::BOTH {
        let pair = tempfile::tempdir().unwrap();
        let parts: Vec<std::path::PathBuf> = (0..2)
            .map(|s| {
                let to = pair.path().join(format!("parts{s}"));
                copy_tree(&sum_parts[s], &to);
                to
            })
            .collect();
        rewrite_in_original_form(&parts[usize::from(original.number())], original);
        let portal = fixture_portal(pair.path(), [&parts[0], &parts[1]]);
        let result = collect::collect(&portal, AGGREGATION, &window()).unwrap();
        assert_eq!(result.total_individual_clients, 10);
        assert_eq!(result.valid_clients, Some(9));
        assert_eq!(result.invalid_packets, 1);
        // One client fewer: each bin lost 0 or 1, and some bin lost one.
        let lost: Vec<u64> = full
            .iter()
            .zip(&result.histogram)
            .map(|(f, r)| f - r)
            .collect();
        assert!(
            lost.iter().all(|&l| l <= 1) && lost.contains(&1),
            "{lost:?}"
        );
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::create_dir_all(to).unwrap();
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// divvi as server 1 beside the original as server 0, which writes no run manifest: with
/// `peer_writes_manifests = false` it decides the run itself from the batches both
/// validations cover, as the original does, and writes the original's sum part; as a
/// follower of manifests it would wait for one forever.
#[test]
fn server_1_follows_an_original_server_0_that_writes_no_manifest() {
    use divvi::schedule::{execute_run, RunId, RunOutcome};
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("own");
    copy_fixture_validity(ServerIndex::One, &own);
    let peer_inbox = fixture().join("facil-peer-validation");
    let mut server = fixture_server(ServerIndex::One, dir.path(), &own, &peer_inbox);
    let run = RunId::new(AGGREGATION, window(), 0).unwrap();
    let now = chrono::Utc::now();
    let hours = chrono::TimeDelta::hours(2);

    // Following manifests, it waits for one the original never writes.
    server.decides_runs = false;
    match execute_run(&server, &run, hours, now, &no_tick).unwrap() {
        RunOutcome::Waiting { missing } => {
            assert!(missing[0].contains("manifest"), "{missing:?}")
        }
        other => panic!("expected to wait for a manifest: {other:?}"),
    }

    server.decides_runs = true;
    let RunOutcome::Done { report, .. } = execute_run(&server, &run, hours, now, &no_tick).unwrap()
    else {
        panic!("the run did not finish");
    };
    assert_eq!((report.valid, report.judged), (10, 10));
    let names = fixture_sum_part(ServerIndex::One).names();
    let ours: SumPart =
        decode_single(&std::fs::read(dir.path().join("sum-parts").join(&names.header)).unwrap())
            .unwrap();
    let original: SumPart = decode_single(
        &std::fs::read(fixture().join("facil-sum-parts").join(&names.header)).unwrap(),
    )
    .unwrap();
    assert_eq!(ours, original);
    // Its decision stays its own: nothing is written into the original's inbox.
    assert!(!dir.path().join("outbox").exists());
    // A rerun follows its own decision again.
    let again = execute_run(&server, &run, hours, now, &no_tick).unwrap();
    assert!(matches!(again, RunOutcome::Done { .. }), "{again:?}");
}
