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
embedded!(DAP_INGESTION_HEADER, "DapIngestionHeader.avsc");
embedded!(DAP_REPORT_SHARE, "DapReportShare.avsc");
embedded!(DAP_SUM_PART, "DapSumPart.avsc");
embedded!(DAP_VALIDATION_HEADER, "DapValidationHeader.avsc");
embedded!(DAP_VERIFIER_SHARE, "DapVerifierShare.avsc");
embedded!(POPLAR1_ROUND_HEADER, "Poplar1RoundHeader.avsc");
