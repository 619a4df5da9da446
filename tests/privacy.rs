//! Privacy limits: a floor of valid clients per sum part, replayed packets refused across
//! runs of an aggregation, and no batch summed twice.

mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use divvi::batch::{truncate_to_minute, BatchId, Window};
use divvi::crypto::PacketScheme;
use divvi::schedule::{
    execute_run, status, Manifest, RunId, RunOutcome, SignedManifest, StatusOptions,
};
use divvi::stages::ingest::{IngestionBatch, PacketMaker};
use divvi::stages::{collect, intake, no_tick};
use divvi::store::put_bytes;
use divvi::wire::DataSharePacket;

const HOUR: TimeDelta = TimeDelta::hours(1);

fn minutes_ago(m: i64) -> (chrono::DateTime<Utc>, Window) {
    let t = truncate_to_minute(Utc::now()) - TimeDelta::minutes(m);
    (t, Window::new(t, t).unwrap())
}

fn batch(
    d: &Deployment,
    agg: &str,
    time: chrono::DateTime<Utc>,
    pairs: &[[DataSharePacket; 2]],
) -> BatchId {
    let id = ingest_only(d, agg, time, pairs);
    for s in &d.servers {
        intake::intake(s, &id, &no_tick).unwrap();
    }
    id
}

fn run_both(d: &Deployment, run: &RunId) -> [divvi::stages::aggregate::AggregateReport; 2] {
    [0, 1].map(
        |i| match execute_run(&d.servers[i], run, HOUR, Utc::now(), &no_tick).unwrap() {
            RunOutcome::Done { report, .. } => report,
            other => panic!("server {i}: {other:?}"),
        },
    )
}

#[test]
fn a_run_below_the_client_floor_writes_no_sum_part_and_says_why() {
    let mut d = deployment(PacketScheme::Ecies);
    for s in &mut d.servers {
        s.limits.min_clients = 5;
    }
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let (time, window) = minutes_ago(3);
    let pairs: Vec<_> = (0..4).map(|_| maker.make(&[1, 0, 0]).unwrap()).collect();
    batch(&d, "floor", time, &pairs);
    let run = RunId::new("floor", window, 0).unwrap();
    let err = format!(
        "{:#}",
        execute_run(&d.servers[0], &run, HOUR, Utc::now(), &no_tick).unwrap_err()
    );
    assert!(
        err.contains("4 valid clients")
            && err.contains("minimum of 5")
            && err.contains("no sum part"),
        "{err}"
    );
    assert!(
        d.servers[0].sum_parts.list("").unwrap().is_empty(),
        "no sum part written"
    );
    let options = StatusOptions {
        period: TimeDelta::minutes(1),
        grace: TimeDelta::zero(),
        lookback: TimeDelta::minutes(10),
        incomplete_after: HOUR,
        now: Utc::now(),
    };
    let w = status(&d.servers[0], "floor", &options)
        .unwrap()
        .into_iter()
        .find(|w| w.window == window.name())
        .unwrap();
    assert_eq!(w.state, "failed");
    assert!(w.runs[0].error.as_deref().unwrap().contains("minimum of 5"));

    // With the floor lowered to the four clients there are, the same run completes.
    for s in &mut d.servers {
        s.limits.min_clients = 4;
    }
    run_both(&d, &run);
    assert_eq!(
        collect::collect(&d.portal, "floor", &window)
            .unwrap()
            .histogram,
        vec![4, 0, 0]
    );
}

#[test]
fn a_packet_replayed_into_a_later_window_is_refused_by_both_servers() {
    let d = deployment(PacketScheme::Hpke);
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let first: Vec<_> = (0..3).map(|_| maker.make(&[0, 1, 0]).unwrap()).collect();
    let (t1, w1) = minutes_ago(5);
    batch(&d, "replay", t1, &first);
    run_both(&d, &RunId::new("replay", w1, 0).unwrap());

    // A later batch carries one of those packets again, beside a fresh one.
    let (t2, w2) = minutes_ago(3);
    let fresh = maker.make(&[0, 0, 1]).unwrap();
    batch(&d, "replay", t2, &[first[1].clone(), fresh]);
    let reports = run_both(&d, &RunId::new("replay", w2, 0).unwrap());
    for r in &reports {
        assert_eq!(r.valid, 1);
        assert_eq!(r.invalid.len(), 1);
        assert_eq!(r.invalid[0].uuid, first[1][0].uuid);
        assert!(
            r.invalid[0].reason.contains("replayed"),
            "{}",
            r.invalid[0].reason
        );
    }
    let result = collect::collect(&d.portal, "replay", &w2).unwrap();
    assert_eq!(result.histogram, vec![0, 0, 1]);
    assert_eq!(result.invalid_packets, 1);
}

#[test]
fn no_batch_is_summed_twice_even_by_an_overlapping_window() {
    let d = deployment(PacketScheme::Ecies);
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let (t1, w1) = minutes_ago(5);
    let pairs: Vec<_> = (0..2).map(|_| maker.make(&[1, 0, 0]).unwrap()).collect();
    let id = batch(&d, "twice", t1, &pairs);
    let run1 = RunId::new("twice", w1, 0).unwrap();
    run_both(&d, &run1);

    // A wider window over the same minute: server 0 finds nothing new to sum.
    let wide = Window::new(t1 - TimeDelta::minutes(1), t1 + TimeDelta::minutes(1)).unwrap();
    let run2 = RunId::new("twice", wide, 0).unwrap();
    assert!(matches!(
        execute_run(&d.servers[0], &run2, HOUR, Utc::now(), &no_tick).unwrap(),
        RunOutcome::NothingReady { .. }
    ));
    // A manifest naming the batch again (signed with server 0's key, as a faulty or
    // hostile server 0 could) is refused by server 1.
    let forged = Manifest::new(
        &run2,
        std::slice::from_ref(&id),
        std::slice::from_ref(&run1),
    );
    let signed = SignedManifest::sign(forged, &d.servers[0].signing_key).unwrap();
    put_bytes(
        d.servers[0].peer_outbox.as_ref(),
        &run2.manifest_key(),
        &signed.bytes,
    )
    .unwrap();
    let err = format!(
        "{:#}",
        execute_run(&d.servers[1], &run2, HOUR, Utc::now(), &no_tick).unwrap_err()
    );
    assert!(
        err.contains(&id.to_string())
            && err.contains("already summed")
            && err.contains(&run1.name()),
        "{err}"
    );
}

/// The pair with new packet UUIDs (one per report, the same on both servers) and the
/// same ciphertexts: what an ingestor that copies real packets can make.
fn rewrapped(pair: &[DataSharePacket; 2]) -> [DataSharePacket; 2] {
    let uuid = uuid::Uuid::new_v4();
    pair.clone().map(|mut p| {
        p.uuid = uuid;
        p
    })
}

/// Writes a batch without running intake.
fn ingest_only(
    d: &Deployment,
    agg: &str,
    time: chrono::DateTime<Utc>,
    pairs: &[[DataSharePacket; 2]],
) -> BatchId {
    let mut b = IngestionBatch::new(&d.ingestor, agg, time).unwrap();
    for p in pairs {
        b.append(p).unwrap();
    }
    b.finish(3, 1.0).unwrap()
}

fn invalid_uuids(report: &divvi::stages::aggregate::AggregateReport) -> Vec<uuid::Uuid> {
    let mut uuids: Vec<_> = report.invalid.iter().map(|r| r.uuid).collect();
    uuids.sort();
    uuids
}

/// ECIES packets carry no binding to their UUID, so a copied ciphertext opens under a new
/// one. Copies in the same batch, in another batch of the window and in a later window
/// (within the horizon) are each listed invalid as replays by both servers, and every
/// report counts once.
#[test]
fn a_share_copied_under_new_uuids_counts_once_on_both_servers() {
    let d = deployment(PacketScheme::Ecies);
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let (t1, w1) = minutes_ago(6);
    let real: Vec<_> = (0..6)
        .map(|i| maker.make(&[1, u32::from(i < 2), 0]).unwrap())
        .collect();
    // The first batch holds the six real reports and a copy of report 0.
    let mut first = real.clone();
    first.push(rewrapped(&real[0]));
    batch(&d, "rewrap", t1, &first);
    // A second batch of the window: copies of reports 1 and 2, and one real report.
    let fresh = maker.make(&[0, 0, 1]).unwrap();
    let second = [rewrapped(&real[1]), rewrapped(&real[2]), fresh];
    let second_id = ingest_only(&d, "rewrap", t1, &second);
    for s in &d.servers {
        let report = intake::intake(s, &second_id, &no_tick).unwrap();
        let reasons: Vec<&str> = report.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        for (r, original) in report.rejected.iter().zip([&real[1], &real[2]]) {
            let said = format!("replayed: the same share as packet {}", original[0].uuid);
            assert!(r.reason.starts_with(&said), "{}", r.reason);
        }
    }
    let copies: Vec<uuid::Uuid> = [first[6][0].uuid, second[0][0].uuid, second[1][0].uuid]
        .into_iter()
        .collect();

    let run = RunId::new("rewrap", w1, 0).unwrap();
    let reports = run_both(&d, &run);
    for (s, report) in reports.iter().enumerate() {
        let mut want = copies.clone();
        want.sort();
        assert_eq!(
            invalid_uuids(report),
            want,
            "server {s} lists the copies invalid"
        );
        assert_eq!(report.valid, 7, "server {s}");
    }
    let result = collect::collect(&d.portal, "rewrap", &w1).unwrap();
    assert_eq!(result.histogram, vec![6, 2, 1], "each real report once");

    // A later window, within the horizon: a copy of report 3 is refused there too.
    let (t2, w2) = minutes_ago(2);
    let later = [rewrapped(&real[3]), maker.make(&[0, 1, 1]).unwrap()];
    batch(&d, "rewrap", t2, &later);
    let reports = run_both(&d, &RunId::new("rewrap", w2, 0).unwrap());
    for report in &reports {
        assert_eq!(invalid_uuids(report), vec![later[0][0].uuid]);
        assert!(
            report.invalid[0].reason.contains("no own validation")
                || report.invalid[0].reason.contains("no peer validation")
                || report.invalid[0].reason.contains("left out at intake"),
            "{:?}",
            report.invalid
        );
    }
    assert_eq!(
        collect::collect(&d.portal, "rewrap", &w2)
            .unwrap()
            .histogram,
        vec![0, 1, 1]
    );
}

/// The two servers take the batch with the original and the batch with the copy in
/// opposite orders: each keeps the copy it met first, so each report is left out of one
/// validation and is invalid on both servers. A report lost, none counted twice, and the
/// two sum parts agree.
#[test]
fn copies_met_in_opposite_orders_are_invalid_on_both_servers() {
    let d = deployment(PacketScheme::Ecies);
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let (t, w) = minutes_ago(4);
    let real: Vec<_> = (0..4).map(|_| maker.make(&[1, 0, 0]).unwrap()).collect();
    let original = ingest_only(&d, "order", t, &real);
    let copied = rewrapped(&real[0]);
    let copy = ingest_only(
        &d,
        "order",
        t,
        &[copied.clone(), maker.make(&[0, 1, 0]).unwrap()],
    );
    for id in [&original, &copy] {
        intake::intake(&d.servers[0], id, &no_tick).unwrap();
    }
    for id in [&copy, &original] {
        intake::intake(&d.servers[1], id, &no_tick).unwrap();
    }
    let reports = run_both(&d, &RunId::new("order", w, 0).unwrap());
    let lost = [real[0][0].uuid, copied[0].uuid];
    for report in &reports {
        let mut want = lost.to_vec();
        want.sort();
        assert_eq!(invalid_uuids(report), want);
    }
    let result = collect::collect(&d.portal, "order", &w).unwrap();
    assert_eq!(result.histogram, vec![3, 1, 0]);
}
