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
/// (twice: the checked copy and apache-avro's; once for records decoded from their
/// datums, which skip apache-avro's values). The iterator ends after the first error
/// that comes from the container (bad data or I/O); a record whose fields do not convert
/// is reported and reading goes on.
pub struct RecordReader<R: Record, T: Read> {
    decoder: Decoder<T>,
    _record: PhantomData<fn() -> R>,
}

/// How records come out of the checked blocks.
enum Decoder<T: Read> {
    /// Through apache-avro's values, resolved against our schema if the writer's differs.
    Values {
        inner: Box<Reader<'static, Guard<T>>>,
        slot: ErrorSlot,
    },
    /// Written with exactly our schema, of a record that decodes its own datum
    /// ([`Record::from_datum`]): each record straight from the guard's checked block.
    Datums { guard: Box<Guard<T>>, ended: bool },
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
        // Equal canonical forms: the same fields, in the same order, of the same types,
        // so the datums are laid out as ours.
        let ours = R::FROM_DATUM && writer.canonical_form() == R::schema().canonical_form();
        let guard = Guard::new(input, header.raw, writer, header.marker, slot.clone());
        let decoder = match ours {
            true => Decoder::Datums {
                guard: Box::new(guard),
                ended: false,
            },
            false => {
                let inner =
                    Reader::with_schema(R::schema(), guard).map_err(|e| match slot.take() {
                        Some(ours) => ours,
                        None => WireError::NotAvro(e.to_string()),
                    })?;
                Decoder::Values {
                    inner: Box::new(inner),
                    slot,
                }
            }
        };
        Ok(Self {
            decoder,
            _record: PhantomData,
        })
    }
}

#[cfg(test)]
impl<R: Record, T: Read> RecordReader<R, T> {
    /// Whether records come straight from their datums (not through Avro values).
    pub(crate) fn reads_datums(&self) -> bool {
        matches!(self.decoder, Decoder::Datums { .. })
    }
}

fn data_error<R: Record>(slot: &ErrorSlot, error: apache_avro::Error) -> WireError {
    if let Some(ours) = slot.take() {
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

impl<R: Record, T: Read> Iterator for RecordReader<R, T> {
    type Item = Result<R, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.decoder {
            Decoder::Values { inner, slot } => {
                let item = inner.next()?;
                Some(
                    item.map_err(|e| data_error::<R>(slot, e))
                        .and_then(R::from_avro),
                )
            }
            Decoder::Datums { guard, ended } => loop {
                match guard.next_record() {
                    Some(Ok(datum)) => return Some(R::from_datum(datum)),
                    Some(Err(e)) => {
                        *ended = true;
                        return Some(Err(e));
                    }
                    None => {}
                }
                if *ended {
                    return None;
                }
                match guard.next_block() {
                    Ok(true) => {}
                    Ok(false) => *ended = true,
                    Err(e) => {
                        *ended = true;
                        return Some(Err(e));
                    }
                }
            },
        }
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
