//! Every signature divvi writes or checks: a `BatchSignature` record over the exact bytes
//! of a header file (batches, validations, sum parts), or over a decision's JSON carried
//! inline (manifests, exclusions). One place signs and one place checks, so every signed
//! object means the same thing by "signed".

use super::BatchError;
use crate::crypto::{SigningKey, TrustSet};
use crate::wire::{self, BatchSignature};

/// The signature record over `content` by `key`, for the three-object form (the content
/// is its own object, not carried inside). `object` names the content in errors.
pub fn signature_over(
    content: &[u8],
    key: &SigningKey,
    object: &str,
) -> Result<BatchSignature, BatchError> {
    let signature = key.sign(content).map_err(|source| BatchError::Signature {
        object: object.to_string(),
        source,
    })?;
    Ok(BatchSignature {
        batch_header_signature: signature,
        key_identifier: key.key_id().to_string(),
        batch_header: None,
        packets: None,
    })
}

/// Checks that `signature` is over `content` by a key of `trust`.
pub fn check_signature(
    signature: &BatchSignature,
    content: &[u8],
    trust: &TrustSet,
    object: &str,
) -> Result<(), BatchError> {
    trust
        .verify(
            &signature.key_identifier,
            content,
            &signature.batch_header_signature,
        )
        .map_err(|source| BatchError::Signature {
            object: object.to_string(),
            source,
        })
}

/// A signed decision: `value` as JSON inline in a signature record, one object, so it
/// appears whole or not at all.
pub fn sign_json<T: serde::Serialize>(
    value: &T,
    key: &SigningKey,
    object: &str,
) -> Result<Vec<u8>, BatchError> {
    let other = |reason: String| BatchError::Other {
        object: object.to_string(),
        reason,
    };
    let json = serde_json::to_vec(value).map_err(|e| other(e.to_string()))?;
    let mut record = signature_over(&json, key, object)?;
    record.batch_header = Some(json);
    wire::encode_single(&record).map_err(|source| BatchError::Wire {
        object: object.to_string(),
        source,
    })
}

/// The decision a signed object holds, once its signature checks out against `trust`.
pub fn verify_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    trust: &TrustSet,
    object: &str,
) -> Result<T, BatchError> {
    let other = |reason: String| BatchError::Other {
        object: object.to_string(),
        reason,
    };
    let record: BatchSignature = wire::decode_single(bytes).map_err(|source| BatchError::Wire {
        object: object.to_string(),
        source,
    })?;
    let json = record
        .batch_header
        .as_deref()
        .ok_or_else(|| other("no inline content".into()))?;
    check_signature(&record, json, trust, object)?;
    serde_json::from_slice(json).map_err(|e| other(format!("content: {e}")))
}
