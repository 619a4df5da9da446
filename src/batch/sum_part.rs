//! A sum part's header file: the ENPA `PrioSumPart` record (or, for a DAP task, the
//! `DapSumPart` record), and what divvi binds to it. Both kinds are written and read
//! here, by the same code.
//!
//! The ENPA record names the aggregation and the window but not the run, the instance or
//! the server, and its `total_individual_clients` counts packets whose proof failed (as
//! the original aggregator counts them). divvi writes those facts into the container
//! file's user metadata: the signature over the header file covers them, and Avro
//! readers (the original's among them) ignore them. A sum part without them was written
//! by the original, which has no late runs.

use super::{hex, BatchError, MAX_HEADER_BYTES, MAX_SIGNATURE_BYTES};
use crate::crypto::{sha256, SigningKey, TrustSet};
use crate::ids::{ServerIndex, SumPartId};
use crate::store::{get_bytes, put_bytes, ObjectStore};
use crate::wire::{self, BatchSignature, InvalidPacket, SumPart};

/// A record that heads a sum part: its digest is of the part's invalid-report file.
pub trait SumPartRecord: super::BatchHeader {
    fn set_packet_file_digest(&mut self, digest: Vec<u8>);
}

impl SumPartRecord for SumPart {
    fn set_packet_file_digest(&mut self, digest: Vec<u8>) {
        self.packet_file_digest = digest;
    }
}

impl SumPartRecord for wire::DapSumPart {
    fn set_packet_file_digest(&mut self, digest: Vec<u8>) {
        self.packet_file_digest = digest;
    }
}
use uuid::Uuid;

/// Invalid-UUID files hold 16-byte UUIDs (~40 bytes a record); this bounds a read.
const MAX_INVALID_FILE_BYTES: u64 = 1 << 30;

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
pub fn encode_sum_part<R: SumPartRecord>(
    record: &R,
    binding: &SumPartBinding,
) -> Result<Vec<u8>, String> {
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
pub fn decode_sum_part<R: SumPartRecord>(
    bytes: &[u8],
) -> Result<(R, Option<SumPartBinding>), String> {
    let (record, metadata) =
        wire::decode_single_with_metadata::<R>(bytes).map_err(|e| e.to_string())?;
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

/// A sum part read back: its signature and its invalid-UUID file's digest checked.
#[derive(Debug, Clone)]
pub struct VerifiedSumPart<R = SumPart> {
    pub record: R,
    /// Its run, instance, server and valid clients; None if the original aggregator
    /// wrote it.
    pub binding: Option<SumPartBinding>,
    pub invalid: Vec<Uuid>,
    /// The header object, for messages.
    pub object: String,
}

/// Writes a sum part's three objects under `id`'s names: the invalid-UUID file (empty
/// when none, as the original writes it), the header (the record, whose
/// `packet_file_digest` is set here, with the binding), and the signature last, so a
/// reader never takes a part that is not whole. Returns the header object's description.
pub fn write_sum_part<R: SumPartRecord>(
    store: &dyn ObjectStore,
    id: &SumPartId,
    mut record: R,
    binding: &SumPartBinding,
    invalid: &[Uuid],
    key: &SigningKey,
) -> Result<String, BatchError> {
    let names = id.names();
    let object = store.describe(&names.header);
    let wire_error = |object: String| move |source| BatchError::Wire { object, source };
    let invalid_bytes = match invalid.is_empty() {
        true => Vec::new(),
        false => {
            let records: Vec<InvalidPacket> =
                invalid.iter().map(|&uuid| InvalidPacket { uuid }).collect();
            wire::encode_all(&records).map_err(wire_error(store.describe(&names.packets)))?
        }
    };
    record.set_packet_file_digest(sha256(&invalid_bytes).to_vec());
    let header_bytes = encode_sum_part(&record, binding).map_err(|reason| BatchError::Other {
        object: object.clone(),
        reason,
    })?;
    let signature = super::signature_over(&header_bytes, key, &object)?;
    let signature_bytes =
        wire::encode_single(&signature).map_err(wire_error(store.describe(&names.signature)))?;
    put_bytes(store, &names.packets, &invalid_bytes)?;
    put_bytes(store, &names.header, &header_bytes)?;
    put_bytes(store, &names.signature, &signature_bytes)?;
    Ok(object)
}

/// Reads the sum part named by `id`: its signature checked against `trust`, its header
/// decoded (record and binding), its invalid-UUID file checked against the header's
/// digest. Whether it is the part asked for is the caller's to judge. A missing part is
/// the store's not-found error for its signature object.
pub fn read_sum_part<R: SumPartRecord>(
    store: &dyn ObjectStore,
    id: &SumPartId,
    trust: &TrustSet,
) -> Result<VerifiedSumPart<R>, BatchError> {
    let names = id.names();
    let object = store.describe(&names.header);
    let sig_bytes = get_bytes(store, &names.signature, MAX_SIGNATURE_BYTES)?;
    let mut sig: BatchSignature =
        wire::decode_single(&sig_bytes).map_err(|source| BatchError::Wire {
            object: store.describe(&names.signature),
            source,
        })?;
    let header_bytes = match sig.batch_header.take() {
        Some(inline) => inline,
        None => get_bytes(store, &names.header, MAX_HEADER_BYTES)?,
    };
    super::check_signature(&sig, &header_bytes, trust, &object)?;
    let (record, binding) =
        decode_sum_part::<R>(&header_bytes).map_err(|reason| BatchError::Other {
            object: object.clone(),
            reason,
        })?;
    let invalid_bytes = match sig.packets {
        Some(inline) => inline,
        None => get_bytes(store, &names.packets, MAX_INVALID_FILE_BYTES)?,
    };
    let digest = sha256(&invalid_bytes);
    if digest[..] != record.packet_file_digest()[..] {
        return Err(BatchError::Other {
            object: store.describe(&names.packets),
            reason: format!(
                "digest {} does not match the sum part's {}",
                hex(&digest),
                hex(record.packet_file_digest())
            ),
        });
    }
    let invalid = match invalid_bytes.is_empty() {
        true => Vec::new(),
        false => wire::decode_all::<InvalidPacket>(&invalid_bytes)
            .map_err(|source| BatchError::Wire {
                object: store.describe(&names.packets),
                source,
            })?
            .into_iter()
            .map(|p| p.uuid)
            .collect(),
    };
    Ok(VerifiedSumPart {
        record,
        binding,
        invalid,
        object,
    })
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
        let err = decode_sum_part::<SumPart>(&bytes).unwrap_err();
        assert!(err.contains("missing or repeated"), "{err}");
    }
}
