//! divvi's modern packet encryption: RFC 9180 HPKE, base mode, single-shot, with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-128-GCM.
//! payload = encapsulated key (32) || ciphertext || tag (16).
//! Sealing is the `hpke` crate's; opening, the servers' per-report cost, is
//! [`X25519Receiver`]'s, on aws-lc.

use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeS, Serializable};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::hpke_open::X25519Receiver;
use super::CryptoError;

type Kem = X25519HkdfSha256;
type SecretKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;

/// Binds every payload to this use, so a key shared with another protocol cannot
/// be tricked into opening its ciphertexts.
const INFO: &[u8] = b"divvi enpa-v1 prio2 packet";
pub(crate) use super::hpke_open::KEY_LEN;
pub(crate) const ENC_LEN: usize = 32;
const TAG_LEN: usize = 16;
pub(crate) const OVERHEAD: usize = ENC_LEN + TAG_LEN;

pub(crate) struct HpkePrivateKey {
    secret: SecretKey,
    public: HpkePublicKey,
    receiver: X25519Receiver,
}

#[derive(Clone)]
pub(crate) struct HpkePublicKey {
    key: PublicKey,
    bytes: [u8; KEY_LEN],
}

impl HpkePrivateKey {
    /// Any 32 bytes are a valid X25519 key (they are clamped on use).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let secret = SecretKey::from_bytes(bytes).map_err(|_| {
            CryptoError::bad_key(
                "HPKE private key",
                format!("expected {KEY_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        let public = HpkePublicKey::from_key(Kem::sk_to_pk(&secret));
        let receiver = X25519Receiver::new(bytes, public.bytes)?;
        Ok(HpkePrivateKey {
            secret,
            public,
            receiver,
        })
    }

    /// The 32 raw bytes (secret: for writing a key file, never for display).
    pub(crate) fn to_bytes(&self) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    /// A fresh key and its 32-byte (clamped) form.
    pub(crate) fn generate() -> Result<(Self, Vec<u8>), CryptoError> {
        let mut raw = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| CryptoError::RandomFailed)?;
        let key = Self::from_bytes(&raw)?;
        // Export the clamped form so the text is canonical.
        let bytes = key.secret.to_bytes().to_vec();
        Ok((key, bytes))
    }

    pub(crate) fn public_key(&self) -> &HpkePublicKey {
        &self.public
    }

    pub(crate) fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if payload.len() < OVERHEAD {
            return Err(CryptoError::PayloadTooShort {
                len: payload.len(),
                min: OVERHEAD,
            });
        }
        let (enc, ciphertext) = payload.split_at(ENC_LEN);
        self.open_with_info(INFO, enc, ciphertext, aad)
    }

    /// Opens a ciphertext whose encapsulated key travels apart from it (DAP's
    /// `HpkeCiphertext`), under a caller-chosen `info` that names the use.
    pub(crate) fn open_with_info(
        &self,
        info: &[u8],
        enc: &[u8],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.receiver.open(info, enc, ciphertext, aad)
    }
}

impl HpkePublicKey {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let key = PublicKey::from_bytes(bytes).map_err(|_| {
            CryptoError::bad_key(
                "HPKE public key",
                format!("expected {KEY_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: PublicKey) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&key.to_bytes());
        HpkePublicKey { key, bytes }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (enc, ciphertext) = self.seal_with_info(INFO, plaintext, aad)?;
        let mut out = Vec::with_capacity(ENC_LEN + ciphertext.len());
        out.extend_from_slice(&enc);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Seals under a caller-chosen `info`; returns the encapsulated key and the
    /// ciphertext (with tag) apart, as DAP's `HpkeCiphertext` carries them.
    pub(crate) fn seal_with_info(
        &self,
        info: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<([u8; ENC_LEN], Vec<u8>), CryptoError> {
        // Seed a CSPRNG from the OS per call: hpke's own OS-RNG path panics on failure.
        let mut seed = [0u8; 32];
        aws_lc_rs::rand::fill(&mut seed).map_err(|_| CryptoError::RandomFailed)?;
        let mut rng = StdRng::from_seed(seed);
        let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<AesGcm128, HkdfSha256, Kem>(
            &OpModeS::Base,
            &self.key,
            info,
            plaintext,
            aad,
            &mut rng,
        )
        .map_err(|_| CryptoError::EncryptFailed)?;
        let mut enc_bytes = [0u8; ENC_LEN];
        enc_bytes.copy_from_slice(&enc.to_bytes());
        Ok((enc_bytes, ciphertext))
    }
}
