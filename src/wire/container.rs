//! Streaming reader and writer of Avro object container files holding one record type.

use super::io_tap::{IoSlot, ReadTap, WriteTap};
use super::{schema, Record, WireError};
use apache_avro::{error::Details, Reader, Schema, Writer};
use std::io::{Read, Write};
use std::marker::PhantomData;

/// Bytes per data block before it is written out; the sync interval Java Avro uses.
const BLOCK_SIZE: usize = 64_000;

/// Streaming reader of a container file holding records of type `R`.
///
/// Checks that the writer schema is `org.abetterinternet.prio.v1.<R::NAME>` and resolves
/// against our schema when the writer's differs. Holds one data block in memory at a time.
/// After a malformed block the iterator ends (apache-avro stops at the first decode error).
pub struct RecordReader<R: Record, T: Read> {
    inner: Reader<'static, ReadTap<T>>,
    slot: IoSlot,
    _record: PhantomData<fn() -> R>,
}

impl<R: Record, T: Read> RecordReader<R, T> {
    /// Reads the file header; fails if it is not a container of `R` records.
    pub fn new(input: T) -> Result<Self, WireError> {
        let slot = IoSlot::default();
        let inner =
            Reader::with_schema(R::schema(), ReadTap::new(input, slot.clone())).map_err(|e| {
                match slot.take() {
                    Some(io) => WireError::Io(io),
                    None => WireError::NotAvro(e.to_string()),
                }
            })?;
        let writer = inner.writer_schema();
        if !schema::is_record_named(writer, R::NAME) {
            let (Ok(found) | Err(found)) = schema::describe(writer);
            return Err(WireError::WrongRecord {
                expected: R::NAME,
                found,
            });
        }
        Ok(Self {
            inner,
            slot,
            _record: PhantomData,
        })
    }

    fn data_error(&self, error: apache_avro::Error) -> WireError {
        if let Some(io) = self.slot.take() {
            return WireError::Io(io);
        }
        match error.details() {
            // apache-avro parses uuids while decoding, before our field checks see them.
            Details::ConvertStrToUuid(_) | Details::ConvertSliceToUuid(_) => WireError::BadField {
                record: R::NAME,
                field: uuid_field(R::schema()),
                reason: error.to_string(),
            },
            _ => WireError::Decode(error),
        }
    }
}

impl<R: Record, T: Read> Iterator for RecordReader<R, T> {
    type Item = Result<R, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(item.map_err(|e| self.data_error(e)).and_then(R::from_avro))
    }
}

/// The name of the (single) uuid-typed field of one of our schemas, for error messages.
fn uuid_field(schema: &'static Schema) -> &'static str {
    let Schema::Record(record) = schema else {
        return "?";
    };
    record
        .fields
        .iter()
        .find(|f| match &f.schema {
            Schema::Uuid => true,
            Schema::Array(array) => matches!(*array.items, Schema::Uuid),
            _ => false,
        })
        .map_or("?", |f| f.name.as_str())
}

/// Streaming writer of a container file (codec null, our schema) of `R` records.
///
/// Call [`RecordWriter::finish`]: dropping the writer instead leaves the last block
/// to apache-avro's best-effort flush, which ignores errors.
pub struct RecordWriter<R: Record, W: Write> {
    inner: Writer<'static, WriteTap<W>>,
    slot: IoSlot,
    _record: PhantomData<fn(&R)>,
}

impl<R: Record, W: Write> RecordWriter<R, W> {
    /// Starts a file; the header is written with the first block (or by `finish`).
    pub fn new(out: W) -> Result<Self, WireError> {
        let slot = IoSlot::default();
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
        self.inner
            .append_value_ref(&record.to_avro())
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

fn write_error<R: Record>(slot: &IoSlot, error: apache_avro::Error) -> WireError {
    match slot.take() {
        Some(io) => WireError::Io(io),
        None => WireError::Encode {
            record: R::NAME,
            source: error,
        },
    }
}
