//! Adapters between the caller's reader/writer and apache-avro.
//!
//! apache-avro wraps I/O failures in its own error type; the taps keep the original
//! `io::Error` so callers can tell a failing disk or network (retry) from bad data (reject).
//! The write tap also fixes two behaviours of apache-avro's `Writer`: it uses `write`
//! without checking for short writes, and it flushes the sink after every block.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

/// Slot for the first I/O error seen by a tap; shared with the reader/writer that owns it.
#[derive(Clone, Default)]
pub(crate) struct IoSlot(Arc<Mutex<Option<io::Error>>>);

impl IoSlot {
    /// Keeps `error` and returns a stand-in (io::Error is not Clone) for apache-avro.
    fn keep(&self, error: io::Error) -> io::Error {
        // Interrupted is retried by the std helpers apache-avro uses; not a failure.
        if error.kind() == io::ErrorKind::Interrupted {
            return error;
        }
        let stand_in = io::Error::new(error.kind(), error.to_string());
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(error);
        }
        stand_in
    }

    /// The I/O error that caused the current failure, if any.
    pub(crate) fn take(&self) -> Option<io::Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

pub(crate) struct ReadTap<T> {
    inner: T,
    slot: IoSlot,
}

impl<T: Read> ReadTap<T> {
    pub(crate) fn new(inner: T, slot: IoSlot) -> Self {
        Self { inner, slot }
    }
}

impl<T: Read> Read for ReadTap<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| self.slot.keep(e))
    }
}

pub(crate) struct WriteTap<W> {
    inner: W,
    slot: IoSlot,
}

impl<W: Write> WriteTap<W> {
    pub(crate) fn new(inner: W, slot: IoSlot) -> Self {
        Self { inner, slot }
    }

    /// Flushes the sink for real and hands it back.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for WriteTap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => Err(self.slot.keep(e)),
        }
    }

    // Per-block flushes would force e.g. an upload part per 64 KiB; `finish` flushes once.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
