//! Batch signing keys: ECDSA P-256 with SHA-256, DER (ASN.1) signatures, as ENPA used.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::text;
use super::{CryptoError, VerifyingKey};

/// A private batch signing key with its identifier (the `key_identifier` written
/// next to each signature).
pub struct SigningKey {
    key_id: String,
    pair: EcdsaKeyPair,
    // Derived once so `verifying_key` cannot fail.
    public: VerifyingKey,
}

impl SigningKey {
    /// Parses base64 PKCS#8 DER, the form ENPA exchanged signing keys in.
    pub fn from_pkcs8_base64(key_id: &str, text: &str) -> Result<Self, CryptoError> {
        let der = text::decode("signing key", text)?;
        Self::from_pkcs8_der(key_id, &der)
    }

    /// A fresh key and its base64 PKCS#8 text.
    pub fn generate(key_id: &str) -> Result<(Self, String), CryptoError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| CryptoError::RandomFailed)?;
        let key = Self::from_pkcs8_der(key_id, doc.as_ref())?;
        Ok((key, text::encode(doc.as_ref())))
    }

    fn from_pkcs8_der(key_id: &str, der: &[u8]) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|e| {
            CryptoError::bad_key("signing key", format!("not a P-256 PKCS#8 key ({e})"))
        })?;
        let public = VerifyingKey::from_der_or_point(pair.public_key().as_ref())?;
        Ok(SigningKey {
            key_id: key_id.to_owned(),
            pair,
            public,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// DER `Ecdsa-Sig-Value` over SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| CryptoError::SigningFailed)?;
        Ok(sig.as_ref().to_vec())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.public.clone()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_and_signs() {
        let (key, text) = SigningKey::generate("k1").unwrap();
        let again = SigningKey::from_pkcs8_base64("k1", &format!("  {text}\n")).unwrap();
        assert_eq!(key.verifying_key(), again.verifying_key());
        let sig = key.sign(b"header bytes").unwrap();
        assert!(
            (68..=72).contains(&sig.len()),
            "DER signature length {}",
            sig.len()
        );
        again.verifying_key().verify(b"header bytes", &sig).unwrap();
        assert!(again.verifying_key().verify(b"header bytez", &sig).is_err());
    }

    #[test]
    fn rejects_garbage_without_echoing_it() {
        let err = SigningKey::from_pkcs8_base64("k", "c2VjcmV0LWJ5dGVz").unwrap_err();
        assert!(matches!(err, CryptoError::BadKey { .. }));
        assert!(!err.to_string().contains("c2VjcmV0"));
        assert!(SigningKey::from_pkcs8_base64("k", "not base64!").is_err());
    }

    #[test]
    fn debug_shows_no_private_material() {
        let (key, text) = SigningKey::generate("dbg").unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("dbg"));
        assert!(!shown.contains(&text[40..60]));
    }
}
