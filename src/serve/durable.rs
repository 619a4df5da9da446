//! Group commit over the journal: uploads hand their payloads to one writer thread,
//! which appends every payload waiting at that moment and fsyncs once for all of them,
//! then answers each. Under load an fsync is shared by many uploads, so the rate is
//! bounded by the disk's fsyncs per second times the group size, not by one fsync per
//! upload. The queue is bounded: when it is full, `submit` says so at once (the server
//! answers 503 with Retry-After) rather than letting memory grow.
//!
//! The writer seals the open segment when it reaches `max_bytes` or has been open for
//! `max_age`, and hands the sealed segment to whoever flushes segments into batches.

use super::backlog::SealedSender;
use super::segments::{Journal, JournalError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When the writer seals a segment.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// Payloads one group may gather: a bound on what one fsync covers and on the memory
/// held while it runs.
const MAX_GROUP_BYTES: usize = 8 << 20;

/// The answer an upload waits for: durable, or why not.
pub type Durable = Result<(), String>;

/// The queue is full: the journal is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

pub struct DurableLog {
    sender: Option<SyncSender<(Vec<u8>, tokio::sync::oneshot::Sender<Durable>)>>,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
    commits: Arc<AtomicU64>,
}

impl DurableLog {
    /// Starts the writer on `journal`; sealed segments go to `sealed`. At most `queue`
    /// payloads wait at once.
    pub fn start(
        mut journal: Journal,
        rotation: Rotation,
        queue: usize,
        sealed: SealedSender,
    ) -> std::io::Result<Self> {
        let (sender, receiver) =
            mpsc::sync_channel::<(Vec<u8>, tokio::sync::oneshot::Sender<Durable>)>(queue);
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                let mut opened: Option<Instant> = None;
                loop {
                    let wait = match opened {
                        Some(at) => rotation.max_age.saturating_sub(at.elapsed()),
                        None => Duration::from_secs(3600),
                    };
                    let first = match receiver.recv_timeout(wait) {
                        Ok(request) => request,
                        Err(RecvTimeoutError::Timeout) => {
                            // Old enough: sealed even if small, so reports reach the
                            // servers within `max_age` of their upload.
                            seal_and_hand_over(&mut journal, &sealed)?;
                            opened = None;
                            continue;
                        }
                        // Every sender is gone: shutting down; seal what is there.
                        Err(RecvTimeoutError::Disconnected) => {
                            return seal_and_hand_over(&mut journal, &sealed);
                        }
                    };
                    let mut group = vec![first];
                    let mut bytes = group[0].0.len();
                    while bytes < MAX_GROUP_BYTES {
                        match receiver.try_recv() {
                            Ok(request) => {
                                bytes += request.0.len();
                                group.push(request);
                            }
                            Err(_) => break,
                        }
                    }
                    let payloads: Vec<&[u8]> = group.iter().map(|(p, _)| p.as_slice()).collect();
                    let outcome = journal.append(&payloads).map_err(|e| e.to_string());
                    counted.fetch_add(1, Ordering::Relaxed);
                    opened.get_or_insert_with(Instant::now);
                    for (_, answer) in group {
                        let _ = answer.send(outcome.clone());
                    }
                    let old = opened.is_some_and(|at| at.elapsed() >= rotation.max_age);
                    if journal.open_bytes() >= rotation.max_bytes || old {
                        seal_and_hand_over(&mut journal, &sealed)?;
                        opened = None;
                    }
                }
            })?;
        Ok(DurableLog {
            sender: Some(sender),
            thread: Some(thread),
            commits,
        })
    }

    /// Queues a payload; the receiver answers once it is durable. Err(Busy) when the
    /// queue is full.
    pub fn submit(
        &self,
        payload: Vec<u8>,
    ) -> Result<tokio::sync::oneshot::Receiver<Durable>, Busy> {
        let (answer, durable) = tokio::sync::oneshot::channel();
        let sender = self.sender.as_ref().ok_or(Busy)?;
        match sender.try_send((payload, answer)) {
            Ok(()) => Ok(durable),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Fsyncs so far (each covering one group of payloads).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Stops taking payloads, writes those queued, seals the open segment and waits for
    /// the writer.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.shut()
    }

    fn shut(&mut self) -> Result<(), JournalError> {
        drop(self.sender.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(JournalError::Damaged {
                path: "journal writer".into(),
                reason: "the writer thread panicked".into(),
            }),
            None => Ok(()),
        }
    }
}

/// Seals the open segment, if any, and hands it to the flusher (gone only when the
/// server is ending, which flushes what the journal holds at its next start).
fn seal_and_hand_over(journal: &mut Journal, sealed: &SealedSender) -> Result<(), JournalError> {
    if let Some(path) = journal.seal()? {
        sealed.hand_over(path);
    }
    Ok(())
}

impl Drop for DurableLog {
    fn drop(&mut self) {
        if let Err(e) = self.shut() {
            tracing::error!("journal writer: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::backlog::{sealed_queue, SealedReceiver};
    use crate::serve::segments::read_sealed;

    fn start(dir: &std::path::Path, rotation: Rotation) -> (DurableLog, SealedReceiver) {
        let (journal, old) = Journal::open(dir).unwrap();
        assert!(old.is_empty());
        let (sealed, segments, _) = sealed_queue();
        (
            DurableLog::start(journal, rotation, 64, sealed).unwrap(),
            segments,
        )
    }

    #[test]
    fn every_acknowledged_payload_is_in_a_sealed_segment_once() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            max_bytes: 2_000,
            max_age: Duration::from_secs(60),
        };
        let (log, segments) = start(dir.path(), rotation);
        let log = Arc::new(log);
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        let answer = loop {
                            match log.submit(vec![w, i, 7, 7, 7]) {
                                Ok(answer) => break answer,
                                Err(Busy) => std::thread::sleep(Duration::from_millis(1)),
                            }
                        };
                        answer.blocking_recv().unwrap().unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        let commits = log.commits();
        Arc::into_inner(log).unwrap().close().unwrap();
        let mut seen = Vec::new();
        for segment in std::iter::from_fn(|| segments.next()) {
            seen.extend(read_sealed(&segment).unwrap());
        }
        assert_eq!(seen.len(), 200, "each once");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 200);
        // Each writer's payloads come back in the order it sent them.
        for w in 0..4u8 {
            let order: Vec<u8> = seen.iter().filter(|p| p[0] == w).map(|p| p[1]).collect();
            assert_eq!(order, (0..50).collect::<Vec<u8>>());
        }
        assert!(commits <= 200 && commits > 0, "{commits}");
    }

    #[test]
    fn a_quiet_journal_is_sealed_after_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            max_bytes: u64::MAX,
            max_age: Duration::from_millis(50),
        };
        let (log, segments) = start(dir.path(), rotation);
        log.submit(b"lonely".to_vec())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        let segment = segments.next_within(Duration::from_secs(10)).unwrap();
        assert_eq!(read_sealed(&segment).unwrap(), [b"lonely".to_vec()]);
        log.close().unwrap();
    }

    #[test]
    fn a_full_queue_says_busy_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let (sealed, _segments, _) = sealed_queue();
        let rotation = Rotation {
            max_bytes: u64::MAX,
            max_age: Duration::from_secs(60),
        };
        let log = DurableLog::start(journal, rotation, 1, sealed).unwrap();
        // Far more submissions than the queue holds, faster than fsyncs: some are refused.
        let results: Vec<_> = (0..1000).map(|i| log.submit(vec![i as u8; 100])).collect();
        assert!(results.iter().any(|r| r.is_err()), "never busy");
        for answer in results.into_iter().flatten() {
            answer.blocking_recv().unwrap().unwrap();
        }
        log.close().unwrap();
    }
}
