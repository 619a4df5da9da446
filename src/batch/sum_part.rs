//! A sum part's header file: the ENPA `PrioSumPart` record, and what divvi binds to it.
//!
//! The ENPA record names the aggregation and the window but not the run, the instance or
//! the server, and its `total_individual_clients` counts packets whose proof failed (as
//! the original aggregator counts them). divvi writes those facts into the container
//! file's user metadata: the signature over the header file covers them, and Avro
//! readers (the original's among them) ignore them. A sum part without them was written
//! by the original, which has no late runs.

use crate::vdaf::ServerIndex;
use crate::wire::{self, SumPart};

const INSTANCE: &str = "divvi.instance";
const RUN: &str = "divvi.run";
const SERVER: &str = "divvi.server";
const VALID_CLIENTS: &str = "divvi.valid_clients";

/// The run a divvi sum part belongs to, and its count of valid clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumPartBinding {
    pub instance: String,
    /// 0 for a window's regular run; k >= 1 for its k-th late run.
    pub run: u32,
    pub server: ServerIndex,
    /// Packets whose proof passed and that were counted (`total_individual_clients`
    /// also counts those whose proof failed).
    pub valid_clients: u64,
}

/// The header file of a sum part: the record, with the binding in its metadata.
pub fn encode_sum_part(record: &SumPart, binding: &SumPartBinding) -> Result<Vec<u8>, String> {
    let metadata = [
        (INSTANCE, binding.instance.as_bytes().to_vec()),
        (RUN, binding.run.to_string().into_bytes()),
        (SERVER, binding.server.number().to_string().into_bytes()),
        (
            VALID_CLIENTS,
            binding.valid_clients.to_string().into_bytes(),
        ),
    ];
    wire::encode_single_with_metadata(record, &metadata).map_err(|e| e.to_string())
}

/// The record of a sum part's header file and, if divvi wrote it, its binding. Metadata
/// that names some of the binding's fields but not all, or does not parse, is refused.
pub fn decode_sum_part(bytes: &[u8]) -> Result<(SumPart, Option<SumPartBinding>), String> {
    let (record, metadata) =
        wire::decode_single_with_metadata::<SumPart>(bytes).map_err(|e| e.to_string())?;
    let ours: Vec<&(String, Vec<u8>)> = metadata
        .iter()
        .filter(|(k, _)| k.starts_with("divvi."))
        .collect();
    if ours.is_empty() {
        return Ok((record, None));
    }
    let field = |key: &str| -> Result<String, String> {
        let mut values = ours.iter().filter(|(k, _)| k == key);
        let (Some((_, value)), None) = (values.next(), values.next()) else {
            return Err(format!("metadata {key} missing or repeated"));
        };
        String::from_utf8(value.clone()).map_err(|_| format!("metadata {key} is not UTF-8"))
    };
    let number = |key: &str| -> Result<u64, String> {
        field(key)?
            .parse::<u64>()
            .map_err(|_| format!("metadata {key} is not a count"))
    };
    let run = u32::try_from(number(RUN)?).map_err(|_| format!("metadata {RUN} out of range"))?;
    let server = u8::try_from(number(SERVER)?)
        .ok()
        .and_then(|n| ServerIndex::try_from(n).ok())
        .ok_or_else(|| format!("metadata {SERVER} is not 0 or 1"))?;
    let binding = SumPartBinding {
        instance: field(INSTANCE)?,
        run,
        server,
        valid_clients: number(VALID_CLIENTS)?,
    };
    Ok((record, Some(binding)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SumPart {
        SumPart {
            batch_uuids: vec![uuid::Uuid::nil()],
            name: "agg".into(),
            bins: 2,
            epsilon: 1.0,
            prime: 4293918721,
            number_of_servers: 2,
            hamming_weight: None,
            sum: vec![1, 2],
            aggregation_start_time: 0,
            aggregation_end_time: 60_000,
            packet_file_digest: vec![0; 32],
            total_individual_clients: 3,
        }
    }

    #[test]
    fn the_binding_round_trips_and_leaves_the_record_alone() {
        let binding = SumPartBinding {
            instance: "pha".into(),
            run: 2,
            server: ServerIndex::One,
            valid_clients: 2,
        };
        let bytes = encode_sum_part(&record(), &binding).unwrap();
        assert_eq!(decode_sum_part(&bytes).unwrap(), (record(), Some(binding)));
        // A plain Avro reader sees the same record.
        assert_eq!(wire::decode_single::<SumPart>(&bytes).unwrap(), record());
    }

    #[test]
    fn a_part_without_the_binding_is_the_originals() {
        let bytes = wire::encode_single(&record()).unwrap();
        assert_eq!(decode_sum_part(&bytes).unwrap(), (record(), None));
    }

    #[test]
    fn a_partial_binding_is_refused() {
        let metadata = [(RUN, b"1".to_vec())];
        let bytes = wire::encode_single_with_metadata(&record(), &metadata).unwrap();
        let err = decode_sum_part(&bytes).unwrap_err();
        assert!(err.contains("missing or repeated"), "{err}");
    }
}
