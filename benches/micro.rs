//! Per-packet costs of the servers' work: opening a sealed share, computing a verifier
//! share (intake), decoding an output share (aggregate), deciding validity and adding.
//! Together they are the floor of what a server spends on one packet, before any I/O.
//!
//! Run with `cargo bench --bench micro`; ids read `open/<scheme>/<share>`,
//! `verify/<server>/bins<n>`, `output/<server>/bins<n>`, `decide_accumulate/bins<n>`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use divvi::crypto::{PacketPrivateKey, PacketScheme};
use divvi::ids::ServerIndex;
use divvi::vdaf::{is_valid, Accumulator, Prio2Bins};

const BINS: [usize; 3] = [16, 256, 2048];

/// A query point of the kind intake draws; it is not a root of unity of any domain here.
const R_PIT: i64 = 998_314_904;

/// The pipeline binds the packet's 16 UUID bytes as AAD; a fixed value costs the same.
const AAD: [u8; 16] = *b"0123456789abcdef";

/// Shards one valid one-hot measurement, so every share is what a real device sends.
fn shard(bins: usize) -> (Prio2Bins, Vec<u8>, Vec<u8>) {
    let prio = Prio2Bins::new(bins as i64).expect("bins in range");
    let mut measurement = vec![0u32; bins];
    measurement[bins / 2] = 1;
    let (leader, helper) = prio.shard(&measurement).expect("shard");
    assert_eq!(leader.len(), prio.leader_share_len());
    // The helper's share is a seed whose size does not depend on bins; `open` relies on it.
    assert_eq!(helper.len(), 32);
    (prio, leader, helper)
}

/// Few samples for the 2048-bin cases: they take up to milliseconds per iteration and the
/// whole run must stay within minutes on two cores.
fn size_for(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, bins: usize) {
    group.sample_size(if bins >= 2048 { 30 } else { 100 });
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn server_name(server: ServerIndex) -> &'static str {
    if server.is_leader() {
        "leader"
    } else {
        "helper"
    }
}

fn open(c: &mut Criterion) {
    // One helper case suffices: its plaintext is the same 32-byte seed at every bins.
    let (_, _, helper) = shard(BINS[0]);
    for scheme in [PacketScheme::Ecies, PacketScheme::Hpke] {
        let (key, _) = PacketPrivateKey::generate(scheme).expect("generate key");
        let public = key.public_key();
        let mut group = configure(c, &format!("open/{scheme}"));
        let mut cases: Vec<(String, Vec<u8>)> = BINS
            .iter()
            .map(|&bins| (format!("bins{bins}"), shard(bins).1))
            .collect();
        cases.push(("helper".to_owned(), helper.clone()));
        for (id, plaintext) in &cases {
            let payload = public.seal(plaintext, &AAD).expect("seal");
            // A benchmark of a failing open would measure the wrong thing.
            assert_eq!(&key.open(&payload, &AAD).expect("open"), plaintext);
            group.sample_size(100);
            group.bench_function(id.as_str(), |b| {
                b.iter(|| key.open(black_box(&payload), black_box(&AAD)))
            });
        }
        group.finish();
    }
}

fn verify(c: &mut Criterion) {
    for server in ServerIndex::BOTH {
        let mut group = configure(c, &format!("verify/{}", server_name(server)));
        for bins in BINS {
            let (prio, leader, helper) = shard(bins);
            let share = if server.is_leader() { leader } else { helper };
            size_for(&mut group, bins);
            group.bench_function(format!("bins{bins}"), |b| {
                b.iter(|| {
                    prio.verifier_share(server, black_box(&share), black_box(R_PIT))
                        .expect("verifier share")
                })
            });
        }
        group.finish();
    }
}

fn output(c: &mut Criterion) {
    for server in ServerIndex::BOTH {
        let mut group = configure(c, &format!("output/{}", server_name(server)));
        for bins in BINS {
            let (prio, leader, helper) = shard(bins);
            let share = if server.is_leader() { leader } else { helper };
            size_for(&mut group, bins);
            group.bench_function(format!("bins{bins}"), |b| {
                b.iter(|| {
                    prio.output_share(server, black_box(&share))
                        .expect("output share")
                })
            });
        }
        group.finish();
    }
}

fn decide_accumulate(c: &mut Criterion) {
    let mut group = configure(c, "decide_accumulate");
    for bins in BINS {
        let (prio, leader, helper) = shard(bins);
        let v0 = prio
            .verifier_share(ServerIndex::Zero, &leader, R_PIT)
            .expect("leader verifier share");
        let v1 = prio
            .verifier_share(ServerIndex::One, &helper, R_PIT)
            .expect("helper verifier share");
        // Only valid packets reach the accumulator, so the bench must take that branch.
        assert!(is_valid(&v0, &v1));
        let out = prio
            .output_share(ServerIndex::Zero, &leader)
            .expect("output share");
        let mut acc = Accumulator::new(bins);
        group.sample_size(100);
        group.bench_function(format!("bins{bins}"), |b| {
            b.iter(|| {
                if is_valid(black_box(&v0), black_box(&v1)) {
                    acc.add(black_box(&out)).expect("add");
                }
            })
        });
        black_box(acc.count());
    }
    group.finish();
}

criterion_group!(benches, open, verify, output, decide_accumulate);
criterion_main!(benches);
