//! Streaming writer of a container file holding one record type.

use super::slot::ErrorSlot;
use super::write_tap::WriteTap;
use super::{Record, WireError};
use apache_avro::Writer;
use std::io::Write;
use std::marker::PhantomData;

/// Bytes per data block before it is written out; the sync interval Java Avro uses.
pub(super) const BLOCK_SIZE: usize = 64_000;

/// Streaming writer of a container file (codec null, our schema) of `R` records.
///
/// Call [`RecordWriter::finish`]: dropping the writer instead leaves the last block
/// to apache-avro's best-effort flush, which ignores errors.
pub struct RecordWriter<R: Record, W: Write> {
    inner: Writer<'static, WriteTap<W>>,
    slot: ErrorSlot,
    _record: PhantomData<fn(&R)>,
}

impl<R: Record, W: Write> RecordWriter<R, W> {
    /// Starts a file; the header goes out with the first block (or in `finish`).
    pub fn new(out: W) -> Result<Self, WireError> {
        let slot = ErrorSlot::default();
        let inner = Writer::builder()
            .schema(R::schema())
            .writer(WriteTap::new(out, slot.clone()))
            .block_size(BLOCK_SIZE)
            .build();
        Ok(Self {
            inner,
            slot,
            _record: PhantomData,
        })
    }

    pub fn append(&mut self, record: &R) -> Result<(), WireError> {
        record
            .append_to(&mut self.inner)
            .map(drop)
            .map_err(|e| write_error::<R>(&self.slot, e))
    }

    /// Writes the last block (and the header, for an empty file), flushes, returns the sink.
    pub fn finish(self) -> Result<W, WireError> {
        let slot = self.slot;
        let tap = self
            .inner
            .into_inner()
            .map_err(|e| write_error::<R>(&slot, e))?;
        Ok(tap.into_inner()?)
    }
}

fn write_error<R: Record>(slot: &ErrorSlot, error: apache_avro::Error) -> WireError {
    match slot.take() {
        Some(ours) => ours,
        None => WireError::Encode {
            record: R::NAME,
            source: error,
        },
    }
}
