//! The sink adapter under apache-avro's `Writer`.
//!
//! Fixes two behaviours of that writer: it calls `write` without checking for short
//! writes, and it flushes the sink after every block. Keeps I/O errors (see `slot`).

use super::{slot::ErrorSlot, WireError};
use std::io::{self, Write};

pub(crate) struct WriteTap<W> {
    inner: W,
    slot: ErrorSlot,
}

impl<W: Write> WriteTap<W> {
    pub(crate) fn new(inner: W, slot: ErrorSlot) -> Self {
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
            Err(e) => Err(self.slot.keep(WireError::Io(e))),
        }
    }

    // A per-block flush could force e.g. an upload part per block; `finish` flushes once.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
