//! Typed access to the fields of a decoded record `Value`.
//!
//! Accepts every representation apache-avro may hand us for a field: `Uuid` or `String`
//! for uuids, `TimestampMillis` or `Long` for times, unions or bare values for optionals,
//! and narrower numeric types (Avro promotion). Anything else is a `BadField` error.

use super::WireError;
use apache_avro::{schema::SchemaKind, types::Value};
use uuid::Uuid;

/// The fields of one record, taken out one by one.
pub(crate) struct Fields {
    record: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    pub(crate) fn new(record: &'static str, value: Value) -> Result<Self, WireError> {
        match value {
            Value::Record(fields) => Ok(Self { record, fields }),
            other => Err(WireError::NotARecord(kind(&other))),
        }
    }

    /// Takes field `name`, expected at `index` (our schema's order); falls back to a search
    /// because a value resolved by name may come in the writer's order.
    fn take(&mut self, index: usize, name: &'static str) -> Result<Field, WireError> {
        let at = match self.fields.get(index) {
            Some((n, _)) if n == name => Some(index),
            _ => self.fields.iter().position(|(n, _)| n == name),
        };
        let value = at
            .and_then(|i| self.fields.get_mut(i))
            .map(|(_, v)| std::mem::replace(v, Value::Null));
        match value {
            Some(value) => Ok(Field {
                record: self.record,
                name,
                value,
            }),
            None => Err(bad(self.record, name, "missing".to_string())),
        }
    }

    pub(crate) fn uuid(&mut self, i: usize, name: &'static str) -> Result<Uuid, WireError> {
        self.take(i, name)?.uuid()
    }

    pub(crate) fn uuids(&mut self, i: usize, name: &'static str) -> Result<Vec<Uuid>, WireError> {
        let field = self.take(i, name)?;
        field.array()?.map(|item| item.uuid()).collect()
    }

    pub(crate) fn string(&mut self, i: usize, name: &'static str) -> Result<String, WireError> {
        self.take(i, name)?.string()
    }

    pub(crate) fn opt_string(
        &mut self,
        i: usize,
        name: &'static str,
    ) -> Result<Option<String>, WireError> {
        self.take(i, name)?
            .optional()
            .map(Field::string)
            .transpose()
    }

    pub(crate) fn int(&mut self, i: usize, name: &'static str) -> Result<i32, WireError> {
        self.take(i, name)?.int()
    }

    pub(crate) fn opt_int(
        &mut self,
        i: usize,
        name: &'static str,
    ) -> Result<Option<i32>, WireError> {
        self.take(i, name)?.optional().map(Field::int).transpose()
    }

    pub(crate) fn long(&mut self, i: usize, name: &'static str) -> Result<i64, WireError> {
        self.take(i, name)?.long()
    }

    pub(crate) fn longs(&mut self, i: usize, name: &'static str) -> Result<Vec<i64>, WireError> {
        let field = self.take(i, name)?;
        field.array()?.map(|item| item.long()).collect()
    }

    pub(crate) fn millis(&mut self, i: usize, name: &'static str) -> Result<i64, WireError> {
        self.take(i, name)?.millis()
    }

    pub(crate) fn double(&mut self, i: usize, name: &'static str) -> Result<f64, WireError> {
        self.take(i, name)?.double()
    }

    pub(crate) fn bytes(&mut self, i: usize, name: &'static str) -> Result<Vec<u8>, WireError> {
        self.take(i, name)?.bytes()
    }

    pub(crate) fn opt_bytes(
        &mut self,
        i: usize,
        name: &'static str,
    ) -> Result<Option<Vec<u8>>, WireError> {
        self.take(i, name)?.optional().map(Field::bytes).transpose()
    }
}

/// One field's value, with the names needed for a useful error.
struct Field {
    record: &'static str,
    name: &'static str,
    value: Value,
}

impl Field {
    fn wrong(&self, expected: &str) -> WireError {
        bad(
            self.record,
            self.name,
            format!("expected {expected}, found {}", kind(&self.value)),
        )
    }

    /// `None` for null (bare or in a union), otherwise the inner value.
    fn optional(self) -> Option<Field> {
        let Field {
            record,
            name,
            value,
        } = self;
        let value = match value {
            Value::Union(_, inner) => *inner,
            value => value,
        };
        match value {
            Value::Null => None,
            value => Some(Field {
                record,
                name,
                value,
            }),
        }
    }

    fn array(self) -> Result<impl Iterator<Item = Field>, WireError> {
        let (record, name) = (self.record, self.name);
        match self.value {
            Value::Array(items) => Ok(items.into_iter().map(move |value| Field {
                record,
                name,
                value,
            })),
            _ => Err(self.wrong("array")),
        }
    }

    fn uuid(self) -> Result<Uuid, WireError> {
        match self.value {
            Value::Uuid(u) => Ok(u),
            // apache-avro leaves the logical type off when the writer schema lacks it.
            Value::String(ref s) => Uuid::parse_str(s).map_err(|e| {
                // Only a prefix: the string comes from outside and may be huge.
                let shown: String = s.chars().take(40).collect();
                bad(
                    self.record,
                    self.name,
                    format!("not a uuid ({shown:?}): {e}"),
                )
            }),
            _ => Err(self.wrong("uuid")),
        }
    }

    fn string(self) -> Result<String, WireError> {
        match self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong("string")),
        }
    }

    fn int(self) -> Result<i32, WireError> {
        match self.value {
            Value::Int(i) => Ok(i),
            Value::Long(l) => i32::try_from(l)
                .map_err(|_| bad(self.record, self.name, format!("{l} out of int range"))),
            _ => Err(self.wrong("int")),
        }
    }

    fn long(self) -> Result<i64, WireError> {
        match self.value {
            Value::Long(l) => Ok(l),
            Value::Int(i) => Ok(i64::from(i)),
            _ => Err(self.wrong("long")),
        }
    }

    fn millis(self) -> Result<i64, WireError> {
        match self.value {
            Value::TimestampMillis(t) => Ok(t),
            _ => self.long(),
        }
    }

    fn double(self) -> Result<f64, WireError> {
        match self.value {
            Value::Double(d) => Ok(d),
            Value::Float(f) => Ok(f64::from(f)),
            Value::Int(i) => Ok(f64::from(i)),
            // Avro's long-to-double promotion; precision loss is what the spec prescribes.
            #[allow(clippy::cast_precision_loss)]
            Value::Long(l) => Ok(l as f64),
            _ => Err(self.wrong("double")),
        }
    }

    fn bytes(self) -> Result<Vec<u8>, WireError> {
        match self.value {
            Value::Bytes(b) | Value::Fixed(_, b) => Ok(b),
            _ => Err(self.wrong("bytes")),
        }
    }
}

fn bad(record: &'static str, field: &'static str, reason: String) -> WireError {
    WireError::BadField {
        record,
        field,
        reason,
    }
}

/// The kind of a value, never its contents (a payload may be megabytes).
pub(crate) fn kind(value: &Value) -> String {
    format!("{:?}", SchemaKind::from(value))
}
