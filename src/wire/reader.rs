//! Streaming reader of a container file holding one record type.

use super::guard::Guard;
use super::header::read_header;
use super::slot::ErrorSlot;
use super::{writer_schema, Record, WireError};
use apache_avro::{error::Details, Reader, Schema};
use std::io::Read;
use std::marker::PhantomData;

/// Streaming reader of a container file holding records of type `R`.
///
/// Checks that the writer schema is `org.abetterinternet.prio.v1.<R::NAME>` and resolves
/// against our schema when the writer's differs. Holds one data block in memory at a time
/// (twice: the checked copy and apache-avro's). The iterator ends after the first error
/// that comes from the container (bad data or I/O); a record whose fields do not convert
/// is reported and reading goes on.
pub struct RecordReader<R: Record, T: Read> {
    inner: Reader<'static, Guard<T>>,
    slot: ErrorSlot,
    _record: PhantomData<fn() -> R>,
}

impl<R: Record, T: Read> RecordReader<R, T> {
    /// Reads the file header; fails if it is not a container of `R` records.
    pub fn new(mut input: T) -> Result<Self, WireError> {
        let header = read_header(&mut input)?;
        let wrong = |found: String| WireError::WrongRecord {
            expected: R::NAME,
            found,
        };
        // Checked before apache-avro parses anything: a foreign schema never reaches it.
        let declared = writer_schema::record_name(&header.schema).map_err(wrong)?;
        let found = declared.name;
        if !declared.ours || found != R::NAME {
            return Err(wrong(found));
        }
        writer_schema::vet_names(&header.schema).map_err(WireError::NotAvro)?;
        let writer =
            Schema::parse(&header.schema).map_err(|e| WireError::NotAvro(e.to_string()))?;
        writer_schema::check_supported(&writer)
            .map_err(|why| wrong(format!("{found} with an unsupported schema ({why})")))?;

        let slot = ErrorSlot::default();
        let guard = Guard::new(input, header.raw, writer, header.marker, slot.clone());
        let inner = Reader::with_schema(R::schema(), guard).map_err(|e| match slot.take() {
            Some(ours) => ours,
            None => WireError::NotAvro(e.to_string()),
        })?;
        Ok(Self {
            inner,
            slot,
            _record: PhantomData,
        })
    }

    fn data_error(&self, error: apache_avro::Error) -> WireError {
        if let Some(ours) = self.slot.take() {
            return ours;
        }
        match error.details() {
            // apache-avro parses uuids while decoding, before our field checks see them.
            Details::ConvertStrToUuid(_) | Details::ConvertSliceToUuid(_) => WireError::BadField {
                record: R::NAME,
                field: uuid_field(R::schema()),
                reason: error.to_string(),
            },
            _ => WireError::Malformed(error.to_string()),
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
