//! One record's bytes decoded field by field with our schema, for the records read by
//! the million (DAP report and verifier shares): no `Value` tree, no field-name strings,
//! one copy per bytes field. Used only on a datum the guard has already walked with a
//! writer schema equal to ours, so lengths are backed by bytes; every check still holds.

use super::{varint, WireError};

/// The fields of one record's datum, taken in schema order.
pub(crate) struct Datum<'a> {
    record: &'static str,
    data: &'a [u8],
}

impl<'a> Datum<'a> {
    pub(crate) fn new(record: &'static str, data: &'a [u8]) -> Self {
        Datum { record, data }
    }

    pub(crate) fn long(&mut self, field: &'static str) -> Result<i64, WireError> {
        varint::take_long(&mut self.data).ok_or_else(|| self.bad(field, "truncated number"))
    }

    pub(crate) fn int(&mut self, field: &'static str) -> Result<i32, WireError> {
        let value = self.long(field)?;
        i32::try_from(value).map_err(|_| self.bad(field, &format!("{value} is not an Avro int")))
    }

    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let len = self.long(field)?;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|len| self.data.split_at_checked(len));
        let Some((bytes, rest)) = bytes else {
            return Err(self.bad(field, &format!("length {len} exceeds the data")));
        };
        self.data = rest;
        Ok(bytes.to_vec())
    }

    /// Every byte of the datum must belong to a field.
    pub(crate) fn end(self) -> Result<(), WireError> {
        match self.data.len() {
            0 => Ok(()),
            n => Err(WireError::Malformed(format!(
                "{n} bytes left after a {} record",
                self.record
            ))),
        }
    }

    fn bad(&self, field: &'static str, reason: &str) -> WireError {
        WireError::BadField {
            record: self.record,
            field,
            reason: reason.to_string(),
        }
    }
}
