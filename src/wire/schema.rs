//! The embedded `.avsc` schemas, parsed once on first use.

use apache_avro::Schema;
use std::sync::LazyLock;

/// Avro namespace of every ENPA v1 record.
pub(crate) const NAMESPACE: &str = "org.abetterinternet.prio.v1";

// The texts are compiled in, so a parse failure is a build defect (a unit test covers it).
fn parse(text: &str) -> Schema {
    Schema::parse_str(text).expect("embedded ENPA schema must parse")
}

macro_rules! embedded {
    ($static:ident, $file:literal) => {
        pub(crate) static $static: LazyLock<Schema> =
            LazyLock::new(|| parse(include_str!(concat!("../../schemas/", $file))));
    };
}

embedded!(INGESTION_HEADER, "PrioIngestionHeader.avsc");
embedded!(DATA_SHARE_PACKET, "PrioDataSharePacket.avsc");
embedded!(VALIDITY_HEADER, "PrioValidityHeader.avsc");
embedded!(VALIDITY_PACKET, "PrioValidityPacket.avsc");
embedded!(SUM_PART, "PrioSumPart.avsc");
embedded!(INVALID_PACKET, "PrioInvalidPacket.avsc");
embedded!(BATCH_SIGNATURE, "PrioBatchSignature.avsc");

/// True if `schema` is the record `org.abetterinternet.prio.v1.<name>`.
pub(crate) fn is_record_named(schema: &Schema, name: &str) -> bool {
    match schema {
        Schema::Record(record) => {
            record.name.name == name && record.name.namespace.as_deref() == Some(NAMESPACE)
        }
        _ => false,
    }
}

/// Human-readable name of a container's writer schema, for error messages and `record_name`.
/// Our own records are named without the namespace; anything else keeps its full name.
pub(crate) fn describe(schema: &Schema) -> Result<String, String> {
    match schema {
        Schema::Record(record) if record.name.namespace.as_deref() == Some(NAMESPACE) => {
            Ok(record.name.name.clone())
        }
        Schema::Record(record) => Ok(record.name.fullname(None)),
        other => Err(format!(
            "{:?} values",
            apache_avro::schema::SchemaKind::from(other)
        )),
    }
}
