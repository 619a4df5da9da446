//! The sealed segments waiting to become ingestion batches: a queue from the journal
//! writer (and an earlier run's leftovers) to the flusher, counted, so uploads can be
//! refused with 503 and readiness can fail while flushing to storage is behind, rather
//! than letting the journal fill the disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// A new queue: the end that hands segments over, the end that flushes them, and a view
/// of how many wait.
pub fn sealed_queue() -> (SealedSender, SealedReceiver, Backlog) {
    let (sender, receiver) = mpsc::channel();
    let pending = Arc::new(AtomicUsize::new(0));
    (
        SealedSender {
            sender,
            pending: Arc::clone(&pending),
        },
        SealedReceiver {
            receiver,
            pending: Arc::clone(&pending),
        },
        Backlog(pending),
    )
}

#[derive(Clone)]
pub struct SealedSender {
    sender: mpsc::Sender<PathBuf>,
    pending: Arc<AtomicUsize>,
}

impl SealedSender {
    /// Queues a sealed segment. If the flusher is gone (the server is ending), the
    /// segment stays on disk and the next start flushes it.
    pub fn hand_over(&self, segment: PathBuf) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(segment).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

pub struct SealedReceiver {
    receiver: mpsc::Receiver<PathBuf>,
    pending: Arc<AtomicUsize>,
}

impl SealedReceiver {
    /// The next segment, oldest first; None once every sender is gone and the queue is
    /// empty. Call [`SealedReceiver::flushed`] when it is in storage and removed.
    pub fn next(&self) -> Option<PathBuf> {
        self.receiver.recv().ok()
    }

    /// The next segment, waiting at most `wait` (tests).
    #[cfg(test)]
    pub fn next_within(&self, wait: std::time::Duration) -> Option<PathBuf> {
        self.receiver.recv_timeout(wait).ok()
    }

    pub fn flushed(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many sealed segments wait (handed over, not yet flushed and removed).
#[derive(Clone)]
pub struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    pub fn pending(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_counts_from_hand_over_until_flushed() {
        let (sender, receiver, backlog) = sealed_queue();
        sender.hand_over("a".into());
        sender.hand_over("b".into());
        assert_eq!(backlog.pending(), 2);
        assert_eq!(receiver.next(), Some(PathBuf::from("a")));
        assert_eq!(backlog.pending(), 2, "taken is not yet flushed");
        receiver.flushed();
        assert_eq!(backlog.pending(), 1);
        drop(sender);
        assert_eq!(receiver.next(), Some(PathBuf::from("b")));
        receiver.flushed();
        assert_eq!(receiver.next(), None);
        assert_eq!(backlog.pending(), 0);
    }

    #[test]
    fn a_segment_handed_to_no_flusher_is_not_counted() {
        let (sender, receiver, backlog) = sealed_queue();
        drop(receiver);
        sender.hand_over("a".into());
        assert_eq!(backlog.pending(), 0);
    }
}
