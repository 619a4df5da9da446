//! Errors of the crypto layer. Messages name what failed, never the secret involved.

/// Everything that can go wrong while signing, verifying, sealing or opening.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A key could not be parsed or is inconsistent. `reason` never quotes key bytes.
    #[error("invalid {what}: {reason}")]
    BadKey { what: String, reason: String },

    /// The signature does not verify under the key trusted for `key_id`
    /// (empty when a bare key was used).
    #[error("signature does not verify{}", under_key(.key_id))]
    BadSignature { key_id: String },

    /// No trusted key has this identifier.
    #[error("no trusted key with identifier {0:?}")]
    UnknownKeyId(String),

    /// The key was trusted until a time now past (its party rotated it).
    #[error("the key with identifier {key_id:?} was trusted until {not_after} (rotated out)")]
    ExpiredKey { key_id: String, not_after: String },

    /// A sealed payload is too short to even hold the scheme's overhead.
    #[error("encrypted payload of {len} bytes is shorter than the minimum {min}")]
    PayloadTooShort { len: usize, min: usize },

    /// Authentication failed: wrong key, wrong associated data or a damaged payload.
    #[error("could not decrypt payload (wrong key or corrupted data)")]
    DecryptFailed,

    /// Sealing failed inside the cipher or key agreement.
    #[error("could not encrypt payload")]
    EncryptFailed,

    /// The ECDSA signer reported an internal failure.
    #[error("could not sign message")]
    SigningFailed,

    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    RandomFailed,

    /// A packet encryption scheme name that is neither "ecies" nor "hpke".
    #[error("unknown packet encryption scheme {0:?} (expected \"ecies\" or \"hpke\")")]
    UnknownScheme(String),
}

impl CryptoError {
    /// Shorthand for [`CryptoError::BadKey`].
    pub(crate) fn bad_key(what: &str, reason: impl Into<String>) -> Self {
        CryptoError::BadKey {
            what: what.to_owned(),
            reason: reason.into(),
        }
    }
}

fn under_key(key_id: &str) -> String {
    if key_id.is_empty() {
        String::new()
    } else {
        format!(" under key {key_id:?}")
    }
}
