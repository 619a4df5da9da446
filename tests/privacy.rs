//! Privacy limits: a floor of valid clients per sum part, replayed packets refused across
//! runs of an aggregation, and no batch summed twice.

mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use divvi::batch::{truncate_to_minute, BatchId, Window};
use divvi::crypto::PacketScheme;
use divvi::runs::{
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
    let mut b = IngestionBatch::new(&d.ingestor, agg, time).unwrap();
    for p in pairs {
        b.append(p).unwrap();
    }
    let id = b.finish(3, 1.0).unwrap();
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
