//! The whole pipeline against ground truth, and invalid packets rejected and listed.

mod common;

use common::*;
use divvi::crypto::PacketScheme;
use divvi::demo::{run_demo, DemoOptions, DemoVdaf, NoProgress};
use divvi::stages::ingest::{IngestionBatch, PacketMaker};
use divvi::stages::{aggregate, collect, intake, no_tick};
use divvi::vdaf::Prio2Bins;
use divvi::wire::DataSharePacket;
use std::collections::BTreeSet;
use uuid::Uuid;

fn ground_truth(bins: usize, reports: usize, batch_size: usize, scheme: PacketScheme) {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        heavy: Default::default(),
        dir: dir.path().join("demo"),
        reports,
        vdaf: DemoVdaf::Prio2 { bins },
        batch_size,
        invalid: 3,
        scheme,
        layout: Default::default(),
    };
    let report = run_demo(&options, &NoProgress).unwrap();
    assert_eq!(report.result, report.truth, "bins {bins} {scheme}");
    assert_eq!(report.invalid_found, 3);
    assert_eq!(report.clients as usize, reports - 3);
    assert!(report.matches());
    // Several batches were written for each server.
    let batches = std::fs::read_dir(dir.path().join("demo/buckets"))
        .unwrap()
        .count();
    assert!(batches >= 5, "buckets: {batches}");
}

#[test]
fn ground_truth_bins_1() {
    for scheme in [PacketScheme::Ecies, PacketScheme::Hpke] {
        ground_truth(1, 300, 100, scheme);
    }
}

#[test]
fn ground_truth_bins_16() {
    for scheme in [PacketScheme::Ecies, PacketScheme::Hpke] {
        ground_truth(16, 1000, 300, scheme);
    }
}

#[test]
fn ground_truth_bins_256() {
    for scheme in [PacketScheme::Ecies, PacketScheme::Hpke] {
        ground_truth(256, 200, 70, scheme);
    }
}

#[test]
fn ground_truth_bins_2048() {
    for scheme in [PacketScheme::Ecies, PacketScheme::Hpke] {
        ground_truth(2048, 60, 25, scheme);
    }
}

/// Builds a packet pair by hand so one part can be spoiled.
fn pair_with(
    d: &Deployment,
    prio: &Prio2Bins,
    measurement: &[u32],
    spoil_leader: impl FnOnce(&mut Vec<u8>),
) -> [DataSharePacket; 2] {
    let (mut leader, helper) = prio.shard(measurement).unwrap();
    spoil_leader(&mut leader);
    let uuid = Uuid::new_v4();
    let maker = PacketMaker::new(&d.ingestor, prio.bins()).unwrap();
    let r_pit = maker.random_r_pit();
    let seal = |n: usize, share: &[u8]| DataSharePacket {
        uuid,
        encrypted_payload: d.ingestor.targets[n]
            .key
            .seal(share, uuid.as_bytes())
            .unwrap(),
        encryption_key_id: Some(d.ingestor.targets[n].key_id.clone()),
        r_pit,
        version_configuration: None,
        device_nonce: None,
    };
    [seal(0, &leader), seal(1, &helper)]
}

#[test]
fn invalid_packets_are_rejected_and_listed_while_the_rest_are_summed() {
    for scheme in [PacketScheme::Ecies, PacketScheme::Hpke] {
        let mut d = deployment(scheme);
        let bins = 8;
        let prio = Prio2Bins::new(bins as i64).unwrap();
        let maker = PacketMaker::new(&d.ingestor, bins).unwrap();
        let (time, window) = now_window();
        let mut truth = vec![0u64; bins];
        let mut spoiled = BTreeSet::new();
        let mut batch = IngestionBatch::new(&d.ingestor, "invalid-test", time).unwrap();
        for i in 0..40 {
            let m: Vec<u32> = (0..bins).map(|b| u32::from((i + b) % 3 == 0)).collect();
            let pair = match i {
                // A measurement with a 2: the proof fails.
                3 => {
                    let mut bad = m.clone();
                    bad[1] = 2;
                    maker.make(&bad).unwrap()
                }
                // A tampered leader share: one field element changed after sharding.
                7 => pair_with(&d, &prio, &m, |leader| leader[0] ^= 1),
                // A flipped ciphertext byte in server 0's packet.
                11 => {
                    let mut p = maker.make(&m).unwrap();
                    p[0].encrypted_payload[70] ^= 0x40;
                    p
                }
                // An unknown key id on server 1's packet.
                13 => {
                    let mut p = maker.make(&m).unwrap();
                    p[1].encryption_key_id = Some("no-such-key".into());
                    p
                }
                // r_pit out of range, on both (the ingestor sends the same r_pit).
                17 => {
                    let mut p = maker.make(&m).unwrap();
                    p.iter_mut().for_each(|x| x.r_pit = 1 << 33);
                    p
                }
                _ => {
                    truth
                        .iter_mut()
                        .zip(&m)
                        .for_each(|(t, &v)| *t += u64::from(v));
                    batch.append(&maker.make(&m).unwrap()).unwrap();
                    continue;
                }
            };
            spoiled.insert(pair[0].uuid);
            batch.append(&pair).unwrap();
        }
        batch.finish(bins, 1.0).unwrap();

        let (intakes, aggs, result) = run_servers(&d, "invalid-test", &window);
        assert_eq!(result.histogram, truth);
        // As the original counts: the 35 valid and the 2 whose proof failed (3 and 7);
        // the 3 left out at intake (11, 13, 17) have no verifier share on one side.
        assert_eq!(result.total_individual_clients, 37);
        assert_eq!(result.valid_clients, Some(35));
        assert_eq!(result.invalid_packets, 5);
        for a in &aggs {
            let listed: BTreeSet<Uuid> = a.invalid.iter().map(|r| r.uuid).collect();
            assert_eq!(
                listed, spoiled,
                "server aggregate lists exactly the spoiled packets"
            );
        }
        // Intake left out what it could not open or decode, naming each packet.
        let reasons: Vec<String> = intakes
            .iter()
            .flat_map(|r| r.rejected.iter().map(|x| x.reason.clone()))
            .collect();
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("unknown encryption key id")),
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|r| r.contains("decrypt")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("r_pit")), "{reasons:?}");
        // Proof failures are decided in aggregate.
        let agg_reasons: Vec<&str> = aggs[0].invalid.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            agg_reasons
                .iter()
                .filter(|r| r.contains("proof check failed"))
                .count(),
            2,
            "{agg_reasons:?}"
        );

        // Without the stash, aggregate opens the packets again and reaches the same sum part.
        for (server, with_stash) in d.servers.iter_mut().zip(&aggs) {
            server.stash_key = None;
            let again = aggregate::aggregate(server, "invalid-test", &window, &no_tick).unwrap();
            assert_eq!(again.sum, with_stash.sum);
            let uuids = |a: &aggregate::AggregateReport| {
                a.invalid.iter().map(|r| r.uuid).collect::<BTreeSet<_>>()
            };
            assert_eq!(uuids(&again), uuids(with_stash));
        }
        assert_eq!(
            collect::collect(&d.portal, "invalid-test", &window)
                .unwrap()
                .histogram,
            truth
        );
    }
}

#[test]
fn tampered_packet_file_fails_the_batch_and_writes_nothing() {
    let d = deployment(PacketScheme::Hpke);
    let (time, _) = now_window();
    let maker = PacketMaker::new(&d.ingestor, 4).unwrap();
    let mut batch = IngestionBatch::new(&d.ingestor, "digest-test", time).unwrap();
    for _ in 0..5 {
        batch.append(&maker.make(&[1, 0, 0, 1]).unwrap()).unwrap();
    }
    let id = batch.finish(4, 1.0).unwrap();
    let names = id.names(divvi::batch::BatchKind::Ingestion);
    let path = d
        .paths
        .dir
        .join("buckets/server0-ingestion")
        .join(&names.packets);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err =
        divvi::stages::intake::intake(&d.servers[0], &id, &divvi::stages::no_tick).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&names.packets)
            && (msg.contains("digest") || msg.contains("Avro") || msg.contains("avro")),
        "{msg}"
    );
    let own = d.servers[0].own.list("").unwrap();
    let outbox = d.servers[0].peer_outbox.list("").unwrap();
    assert!(
        own.is_empty() && outbox.is_empty(),
        "nothing written: {own:?} {outbox:?}"
    );
}

#[test]
fn collect_refuses_sum_parts_that_disagree_and_names_the_difference() {
    let d = deployment(PacketScheme::Ecies);
    let (time, window) = now_window();
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let write_batch = |n: usize| {
        let mut b = IngestionBatch::new(&d.ingestor, "agree", time).unwrap();
        for _ in 0..n {
            b.append(&maker.make(&[0, 1, 0]).unwrap()).unwrap();
        }
        b.finish(3, 1.0).unwrap()
    };
    write_batch(4);
    let (_, _, result) = run_servers(&d, "agree", &window);
    assert_eq!(result.histogram, vec![0, 4, 0]);

    // A late batch: validated by both, but only server 0 aggregates the window again.
    let late = write_batch(2);
    for s in &d.servers {
        intake::intake(s, &late, &no_tick).unwrap();
    }
    aggregate::aggregate(&d.servers[0], "agree", &window, &no_tick).unwrap();
    let err = collect::collect(&d.portal, "agree", &window)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("different batches") && err.contains(&late.uuid.to_string()),
        "{err}"
    );
    assert!(err.contains("total_individual_clients 6 vs 4"), "{err}");
    // Once server 1 catches up, they agree again.
    aggregate::aggregate(&d.servers[1], "agree", &window, &no_tick).unwrap();
    assert_eq!(
        collect::collect(&d.portal, "agree", &window)
            .unwrap()
            .histogram,
        vec![0, 6, 0]
    );
}

#[test]
fn a_batch_without_peer_validation_fails_aggregate_naming_it() {
    let d = deployment(PacketScheme::Hpke);
    let (time, window) = now_window();
    let maker = PacketMaker::new(&d.ingestor, 2).unwrap();
    let mut b = IngestionBatch::new(&d.ingestor, "missing", time).unwrap();
    b.append(&maker.make(&[1, 0]).unwrap()).unwrap();
    let id = b.finish(2, 1.0).unwrap();
    intake::intake(&d.servers[0], &id, &no_tick).unwrap();
    let err = format!(
        "{:#}",
        aggregate::aggregate(&d.servers[0], "missing", &window, &no_tick).unwrap_err()
    );
    assert!(
        err.contains(&id.uuid.to_string()) && err.contains("validity_1"),
        "{err}"
    );
    assert!(
        d.servers[0].sum_parts.list("").unwrap().is_empty(),
        "no sum part written"
    );
}

#[test]
fn duplicate_packet_uuids_in_a_batch_are_all_refused() {
    let d = deployment(PacketScheme::Ecies);
    let (time, window) = now_window();
    let maker = PacketMaker::new(&d.ingestor, 2).unwrap();
    let mut b = IngestionBatch::new(&d.ingestor, "dups", time).unwrap();
    let original = maker.make(&[1, 0]).unwrap();
    let mut copy = maker.make(&[0, 1]).unwrap();
    copy.iter_mut().for_each(|p| p.uuid = original[0].uuid);
    b.append(&original).unwrap();
    b.append(&maker.make(&[1, 1]).unwrap()).unwrap();
    b.append(&copy).unwrap();
    b.finish(2, 1.0).unwrap();
    let (_, aggs, result) = run_servers(&d, "dups", &window);
    assert_eq!(result.histogram, vec![1, 1]);
    assert_eq!(result.total_individual_clients, 1);
    let listed: Vec<Uuid> = aggs[0].invalid.iter().map(|r| r.uuid).collect();
    assert_eq!(listed, vec![original[0].uuid, original[0].uuid]);
}

#[test]
fn a_single_object_ingestion_batch_is_read_like_a_three_object_one() {
    use divvi::batch::{BatchId, BatchKind, BatchWriter};
    use divvi::crypto::PacketDigest;
    use divvi::wire::IngestionHeader;
    let d = deployment(PacketScheme::Ecies);
    let (time, window) = now_window();
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let id = BatchId::new("single", time, Uuid::new_v4()).unwrap();
    let names = id.names(BatchKind::Ingestion);
    let mut writers = [
        BatchWriter::<DataSharePacket>::single_object(names.clone(), PacketDigest::Sha256).unwrap(),
        BatchWriter::<DataSharePacket>::single_object(names.clone(), PacketDigest::Sha256).unwrap(),
    ];
    for m in [[1, 0, 0], [1, 1, 0], [0, 0, 1]] {
        let pair = maker.make(&m).unwrap();
        for (w, p) in writers.iter_mut().zip(&pair) {
            w.append(p).unwrap();
        }
    }
    for (w, target) in writers.into_iter().zip(&d.ingestor.targets) {
        let header = |digest| IngestionHeader {
            batch_uuid: id.uuid,
            name: "single".into(),
            bins: 3,
            epsilon: 0.5,
            prime: 4293918721,
            number_of_servers: 2,
            hamming_weight: None,
            batch_start_time: 0,
            batch_end_time: 0,
            packet_file_digest: digest,
        };
        w.finish(header, &d.ingestor.signing_key, &[target.store.as_ref()])
            .unwrap();
        // Only the signature object exists: header and packets are inline.
        assert_eq!(
            target.store.list("single/").unwrap(),
            vec![names.signature.clone()]
        );
    }
    let (_, _, result) = run_servers(&d, "single", &window);
    assert_eq!(result.histogram, vec![2, 1, 1]);
}

#[test]
fn a_damaged_stash_fails_aggregate_naming_it() {
    let d = deployment(PacketScheme::Ecies);
    let (time, window) = now_window();
    let maker = PacketMaker::new(&d.ingestor, 4).unwrap();
    let mut b = IngestionBatch::new(&d.ingestor, "stash", time).unwrap();
    for _ in 0..10 {
        b.append(&maker.make(&[0, 0, 1, 0]).unwrap()).unwrap();
    }
    let id = b.finish(4, 1.0).unwrap();
    for s in &d.servers {
        intake::intake(s, &id, &no_tick).unwrap();
    }
    let stash = d
        .paths
        .dir
        .join("buckets/server0-own")
        .join(id.stash_name(d.servers[0].index));
    let mut bytes = std::fs::read(&stash).unwrap();
    bytes[60] ^= 1;
    std::fs::write(&stash, bytes).unwrap();
    let err = format!(
        "{:#}",
        aggregate::aggregate(&d.servers[0], "stash", &window, &no_tick).unwrap_err()
    );
    assert!(
        err.contains(".shares_0") && err.contains("authenticate"),
        "{err}"
    );
    // Server 1's stash is intact.
    let ok = aggregate::aggregate(&d.servers[1], "stash", &window, &no_tick).unwrap();
    assert_eq!(ok.valid, 10);
}
