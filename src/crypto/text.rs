//! Base64 text forms of keys.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::CryptoError;

/// Standard alphabet; padding optional on input, because hand-edited configs drop it.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes trimmed base64 text. The error names `what` but never echoes the text,
/// since the text may be a private key.
pub(crate) fn decode(what: &str, text: &str) -> Result<Vec<u8>, CryptoError> {
    LENIENT
        .decode(text.trim())
        .map_err(|_| CryptoError::bad_key(what, "not valid base64"))
}

/// Canonical (padded, standard alphabet) base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
