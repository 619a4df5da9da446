//! Which signing keys are trusted, by key identifier.

use std::collections::HashMap;

use super::{CryptoError, VerifyingKey};

/// Keys trusted to sign some kind of object, by key identifier.
#[derive(Clone, Debug, Default)]
pub struct TrustSet {
    keys: HashMap<String, VerifyingKey>,
    /// Keys whose trust has ended, with the time it ended (as configured): named in the
    /// error instead of "unknown".
    expired: HashMap<String, String>,
}

impl TrustSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` under `key_id`, replacing any key already under that id.
    pub fn insert(&mut self, key_id: &str, key: VerifyingKey) {
        self.keys.insert(key_id.to_owned(), key);
    }

    /// Remembers that `key_id` was trusted until `not_after`, now past.
    pub fn insert_expired(&mut self, key_id: &str, not_after: &str) {
        self.keys.remove(key_id);
        self.expired.insert(key_id.to_owned(), not_after.to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted key identifiers, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// UnknownKeyId if the id is not trusted, BadSignature if it does not verify.
    pub fn verify(
        &self,
        key_id: &str,
        message: &[u8],
        signature_der: &[u8],
    ) -> Result<(), CryptoError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| match self.expired.get(key_id) {
                Some(not_after) => CryptoError::ExpiredKey {
                    key_id: key_id.to_owned(),
                    not_after: not_after.clone(),
                },
                None => CryptoError::UnknownKeyId(key_id.to_owned()),
            })?;
        key.verify(message, signature_der)
            .map_err(|_| CryptoError::BadSignature {
                key_id: key_id.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    #[test]
    fn unknown_id_and_wrong_key_are_told_apart() {
        let (a, _) = SigningKey::generate("a").unwrap();
        let (b, _) = SigningKey::generate("b").unwrap();
        let mut trust = TrustSet::new();
        assert!(trust.is_empty());
        trust.insert("a", a.verifying_key());
        // "b" is trusted under b's id but holds a's public key: a wrong key.
        trust.insert("b", a.verifying_key());
        assert!(!trust.is_empty());

        let sig = b.sign(b"msg").unwrap();
        match trust.verify("b", b"msg", &sig) {
            Err(CryptoError::BadSignature { key_id }) => assert_eq!(key_id, "b"),
            other => panic!("expected BadSignature, got {other:?}"),
        }
        match trust.verify("c", b"msg", &sig) {
            Err(CryptoError::UnknownKeyId(id)) => assert_eq!(id, "c"),
            other => panic!("expected UnknownKeyId, got {other:?}"),
        }
        trust.verify("a", b"msg", &a.sign(b"msg").unwrap()).unwrap();
        // A key whose trust ended is named with the time it ended, not as unknown.
        let mut ended = trust.clone();
        ended.insert_expired("a", "2026-01-01T00:00:00Z");
        match ended.verify("a", b"msg", &a.sign(b"msg").unwrap()) {
            Err(CryptoError::ExpiredKey { key_id, not_after }) => {
                assert_eq!(
                    (key_id.as_str(), not_after.as_str()),
                    ("a", "2026-01-01T00:00:00Z")
                )
            }
            other => panic!("expected ExpiredKey, got {other:?}"),
        }
        assert!(matches!(
            trust.verify("a", b"msg", b"\x30\x00"),
            Err(CryptoError::BadSignature { .. })
        ));
    }
}
