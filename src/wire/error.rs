//! Errors of the wire layer.

/// Everything that can go wrong reading or writing ENPA Avro files.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes are not an Avro object container file (bad magic, unreadable header, ...).
    #[error("not an Avro object container file: {0}")]
    NotAvro(String),

    /// The container holds a different record type than the caller asked for.
    #[error("expected a {expected} file, found {found}")]
    WrongRecord {
        expected: &'static str,
        found: String,
    },

    /// A value (or a container's schema) that should be a record is something else.
    #[error("expected an Avro record, found {0}")]
    NotARecord(String),

    /// A file meant to hold exactly one record holds another number of them.
    #[error("expected exactly one {record} record, found {found}")]
    RecordCount { record: &'static str, found: usize },

    /// A field is missing, of the wrong type, or out of range.
    #[error("bad field {record}.{field}: {reason}")]
    BadField {
        record: &'static str,
        field: &'static str,
        reason: String,
    },

    /// The container's data blocks are malformed or truncated.
    #[error("malformed Avro data: {0}")]
    Malformed(String),

    /// A record could not be encoded against its schema.
    #[error("cannot encode {record}: {source}")]
    Encode {
        record: &'static str,
        source: apache_avro::Error,
    },

    /// The underlying reader or writer failed (distinct from bad data, so callers can retry).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
