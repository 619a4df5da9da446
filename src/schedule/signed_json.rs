//! Signed decisions (manifests, exclusions): JSON inline in a `BatchSignature`, the
//! single-object form, so a decision appears whole or not at all.

use crate::crypto::{SigningKey, TrustSet};
use crate::wire::{self, BatchSignature};
use anyhow::{anyhow, Context, Result};

/// The signed object holding `value` as JSON.
pub fn sign_json<T: serde::Serialize>(value: &T, key: &SigningKey) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(value)?;
    let signature = BatchSignature {
        batch_header_signature: key.sign(&json)?,
        key_identifier: key.key_id().to_string(),
        batch_header: Some(json),
        packets: None,
    };
    Ok(wire::encode_single(&signature)?)
}

/// The value a signed object holds, once its signature checks out against `trust`.
pub fn verify_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    trust: &TrustSet,
    object: &str,
) -> Result<T> {
    let signature: BatchSignature = wire::decode_single(bytes).context(object.to_string())?;
    let json = signature
        .batch_header
        .as_deref()
        .ok_or_else(|| anyhow!("{object}: no inline content"))?;
    trust
        .verify(
            &signature.key_identifier,
            json,
            &signature.batch_header_signature,
        )
        .with_context(|| format!("{object}: signature check failed"))?;
    serde_json::from_slice(json).with_context(|| format!("{object}: content"))
}
