//! The floor intake's rate is measured against: what the per-packet work alone (open,
//! verifier share, kept share, fingerprint) costs, without the reading, recording and
//! writing intake adds. A benchmark times it three ways: on one core with the others
//! idle, on every core at once, and inside intake's own run ([`FloorClock`]).

use super::judges::{ingestion_kind, DapJudge, IngestionKind, Prio2Judge, ReportJudge};
use crate::batch::BatchId;
use crate::config::Server;
use anyhow::Result;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many threads judge the sample at once, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct FloorProbe {
    /// Packets from the start of the batch, judged over and over.
    pub sample: usize,
    /// A fraction of a second is too short a sample on a shared machine.
    pub min_seconds: f64,
    /// 1: one core, the others idle. The machine's core count: what those cores reach
    /// doing nothing but this work, which on a machine whose cores slow each other down
    /// (a shared cache, a clock that drops when every core is busy) is less than the
    /// core count times one core alone.
    pub threads: usize,
}

/// One core's time per packet for the per-packet work, judging the probe's sample on
/// `threads` threads at once (each walks the sample from its own offset): the mean over
/// the threads of each one's time per packet. None for an empty batch.
pub fn per_packet_floor(
    server: &Server,
    id: &BatchId,
    probe: FloorProbe,
) -> Result<Option<Duration>> {
    match ingestion_kind(server, id)? {
        IngestionKind::Prio2 => floor_of::<Prio2Judge>(server, id, probe),
        IngestionKind::Dap => floor_of::<DapJudge>(server, id, probe),
    }
}

fn floor_of<'s, J: ReportJudge<'s>>(
    server: &'s Server,
    id: &BatchId,
    probe: FloorProbe,
) -> Result<Option<Duration>> {
    let (batch, judge, _) = J::open(server, id)?;
    let packets = batch.packets::<J::Report>()?.next_chunk(probe.sample)?;
    // A few packets first, so caches and the allocator are warm as in a long run.
    let (warm, timed) = packets.split_at(packets.len().min(32));
    warm.iter().for_each(|p| drop(judge.verify(p)));
    if timed.is_empty() {
        return Ok(None);
    }
    Ok(Some(time_per_item(timed, probe, |p| drop(judge.verify(p)))))
}

/// One core's time per item of `work`, done over and over on `probe.threads` threads at
/// once (each walks `items` from its own offset) for at least `probe.min_seconds`: the
/// mean over the threads of each one's time per item. `items` should not be empty.
fn time_per_item<T: Sync>(items: &[T], probe: FloorProbe, work: impl Fn(&T) + Sync) -> Duration {
    let threads = probe.threads.max(1);
    // Every thread stops when the first has run its time, so that all of them are busy
    // for all of the measured time (a pass over the sample takes over a second at 2,048
    // buckets: stopping only at a pass's end would leave one core idle for part of it).
    let stop = AtomicBool::new(false);
    let per_thread: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (work, stop) = (&work, &stop);
                let offset = t * items.len() / threads;
                scope.spawn(move || {
                    let (start, mut done) = (Instant::now(), 0u32);
                    for item in items.iter().cycle().skip(offset) {
                        work(item);
                        done += 1;
                        if stop.load(Ordering::Relaxed)
                            || start.elapsed().as_secs_f64() >= probe.min_seconds
                        {
                            break;
                        }
                    }
                    stop.store(true, Ordering::Relaxed);
                    start.elapsed() / done.max(1)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    per_thread.iter().sum::<Duration>() / threads as u32
}

/// The CPU time intake's threads spend in the per-packet work, the very call
/// [`per_packet_floor`] times, summed over every thread. A benchmark sets intake's rate
/// against it to learn how much of the cores' time went to that work in the same seconds,
/// whatever the machine's speed then (it drifts from one second to the next here).
/// Reading a thread's CPU clock costs a system call per packet, so only a benchmark
/// hands intake one.
#[derive(Debug, Default)]
pub struct FloorClock {
    nanos: AtomicU64,
}

impl FloorClock {
    pub(super) fn time<T>(&self, work: impl FnOnce() -> T) -> T {
        let before = crate::process::thread_cpu_nanos();
        let result = work();
        let spent = crate::process::thread_cpu_nanos().saturating_sub(before);
        self.nanos.fetch_add(spent, Ordering::Relaxed);
        result
    }

    /// The time summed since the last take, and a fresh start.
    pub fn take(&self) -> Duration {
        Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn every_thread_works_until_the_time_is_up() {
        let seen = Mutex::new(HashSet::new());
        let probe = FloorProbe {
            sample: 5,
            min_seconds: 0.05,
            threads: 3,
        };
        let started = Instant::now();
        let per_item = time_per_item(&[1u64, 2, 3, 4, 5], probe, |_| {
            seen.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(Duration::from_millis(1));
        });
        assert_eq!(seen.into_inner().unwrap().len(), 3);
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Each item sleeps 1 ms: one thread's time per item is about that, not a third.
        assert!(per_item >= Duration::from_millis(1), "{per_item:?}");
    }
}
