//! Public batch-signature keys.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};

use super::text;
use super::CryptoError;

/// A public P-256 key that verifies DER ECDSA/SHA-256 signatures.
#[derive(Clone)]
pub struct VerifyingKey {
    // Canonical SPKI DER: what `to_base64` prints and what equality compares.
    spki: Vec<u8>,
    // Parsed once; verification then skips decoding the point.
    parsed: ParsedPublicKey,
}

const SEQUENCE_TAG: u8 = 0x30;
const UNCOMPRESSED_TAG: u8 = 0x04;

impl VerifyingKey {
    /// Accepts base64 of SPKI DER or of the raw 65-byte uncompressed point.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = text::decode("verifying key", text)?;
        Self::from_der_or_point(&bytes)
    }

    pub(crate) fn from_der_or_point(bytes: &[u8]) -> Result<Self, CryptoError> {
        // aws-lc would also take compressed points; ENPA only ever used these two forms.
        let is_spki = bytes.first() == Some(&SEQUENCE_TAG);
        let is_point = bytes.len() == 65 && bytes[0] == UNCOMPRESSED_TAG;
        if !is_spki && !is_point {
            return Err(CryptoError::bad_key(
                "verifying key",
                "expected SPKI DER or a 65-byte uncompressed P-256 point",
            ));
        }
        let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, bytes)
            .map_err(|e| CryptoError::bad_key("verifying key", format!("not a P-256 key ({e})")))?;
        let spki = parsed
            .as_der()
            .map_err(|_| CryptoError::bad_key("verifying key", "cannot encode as SPKI"))?
            .as_ref()
            .to_vec();
        Ok(VerifyingKey { spki, parsed })
    }

    /// Canonical text form: base64 of SPKI DER.
    pub fn to_base64(&self) -> String {
        text::encode(&self.spki)
    }

    /// Checks a DER signature over `message`. The error carries no key id; see
    /// [`super::TrustSet::verify`] for the named form.
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<(), CryptoError> {
        self.parsed
            .verify_sig(message, signature_der)
            .map_err(|_| CryptoError::BadSignature {
                key_id: String::new(),
            })
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for VerifyingKey {}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VerifyingKey")
            .field(&self.to_base64())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    #[test]
    fn accepts_spki_and_raw_point() {
        let (key, _) = SigningKey::generate("k").unwrap();
        let vk = key.verifying_key();
        let spki = text::decode("t", &vk.to_base64()).unwrap();
        // P-256 SPKI = 26-byte algorithm header + the 65-byte point.
        assert_eq!(spki.len(), 91);
        let point = &spki[26..];
        assert_eq!(point[0], UNCOMPRESSED_TAG);

        let from_point = VerifyingKey::from_base64(&text::encode(point)).unwrap();
        let from_spki = VerifyingKey::from_base64(&vk.to_base64()).unwrap();
        assert_eq!(from_point, vk);
        assert_eq!(from_spki, vk);
        assert_eq!(from_point.to_base64(), vk.to_base64());

        let sig = key.sign(b"m").unwrap();
        from_point.verify(b"m", &sig).unwrap();
    }

    #[test]
    fn rejects_bad_points() {
        let mut not_on_curve = [0u8; 65];
        not_on_curve[0] = UNCOMPRESSED_TAG;
        not_on_curve[64] = 1;
        for bad in [
            &not_on_curve[..],
            &[2u8; 33][..],
            &[0x30, 0x03, 1, 2, 3][..],
            &[][..],
        ] {
            let err = VerifyingKey::from_base64(&text::encode(bad)).unwrap_err();
            assert!(matches!(err, CryptoError::BadKey { .. }), "{err}");
        }
    }
}
