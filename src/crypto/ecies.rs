//! Legacy ENPA packet encryption ("ECIES"), byte-exact with what ENPA devices sent:
//! payload = ephemeral P-256 point (65, uncompressed) || AES-128-GCM ciphertext || tag (16).
//! Z = x-coordinate of ECDH; SHA256(Z || 00 00 00 01 || ephemeral point) gives the
//! AES key (bytes 0..16) and a 16-byte GCM nonce (bytes 16..32). No associated data.

use aes_gcm::aead::consts::U16;
use aes_gcm::aes::Aes128;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, ECDH_P256};
use aws_lc_rs::encoding::AsBigEndian;

use super::digest::Sha256Stream;
use super::CryptoError;

pub(crate) const POINT_LEN: usize = 65;
const SCALAR_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Ephemeral point + GCM tag.
pub(crate) const OVERHEAD: usize = POINT_LEN + TAG_LEN;
/// Text form of a private key: public point || big-endian scalar.
pub(crate) const PRIVATE_LEN: usize = POINT_LEN + SCALAR_LEN;

/// ENPA's 16-byte GCM nonce rules out the 12-byte-only AEAD of aws-lc-rs.
type Cipher = AesGcm<Aes128, U16>;

/// A recipient's static key, parsed once so each open is one ECDH, one hash and one
/// AES-GCM pass.
pub(crate) struct EciesPrivateKey {
    secret: PrivateKey,
    public: EciesPublicKey,
}

/// A recipient's public point (uncompressed, validated on the curve).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct EciesPublicKey {
    point: [u8; POINT_LEN],
}

impl EciesPrivateKey {
    /// Parses the 97-byte ENPA form and checks that point and scalar belong together.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        const WHAT: &str = "ECIES private key";
        if bytes.len() != PRIVATE_LEN {
            return Err(CryptoError::bad_key(
                WHAT,
                format!(
                    "expected {PRIVATE_LEN} bytes (point || scalar), got {}",
                    bytes.len()
                ),
            ));
        }
        let (point, scalar) = bytes.split_at(POINT_LEN);
        let secret = PrivateKey::from_private_key(&ECDH_P256, scalar)
            .map_err(|_| CryptoError::bad_key(WHAT, "scalar is not a valid P-256 private key"))?;
        let public = public_of(&secret)?;
        if public.point[..] != *point {
            return Err(CryptoError::bad_key(
                WHAT,
                "public point does not match the scalar",
            ));
        }
        Ok(EciesPrivateKey { secret, public })
    }

    /// A fresh key and its 97-byte ENPA form.
    pub(crate) fn generate() -> Result<(Self, Vec<u8>), CryptoError> {
        let secret = PrivateKey::generate(&ECDH_P256).map_err(|_| CryptoError::RandomFailed)?;
        let public = public_of(&secret)?;
        let scalar = AsBigEndian::<aws_lc_rs::encoding::EcPrivateKeyBin>::as_be_bytes(&secret)
            .map_err(|_| CryptoError::bad_key("ECIES private key", "cannot export scalar"))?;
        let mut bytes = Vec::with_capacity(PRIVATE_LEN);
        bytes.extend_from_slice(&public.point);
        bytes.extend_from_slice(scalar.as_ref());
        Ok((EciesPrivateKey { secret, public }, bytes))
    }

    pub(crate) fn public_key(&self) -> &EciesPublicKey {
        &self.public
    }

    pub(crate) fn open(&self, payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if payload.len() < OVERHEAD {
            return Err(CryptoError::PayloadTooShort {
                len: payload.len(),
                min: OVERHEAD,
            });
        }
        let (ephemeral, sealed) = payload.split_at(POINT_LEN);
        // Only the uncompressed form is ENPA; aws-lc would accept others too.
        if ephemeral[0] != 0x04 {
            return Err(CryptoError::DecryptFailed);
        }
        let (key, nonce) = agreement::agree(
            &self.secret,
            UnparsedPublicKey::new(&ECDH_P256, ephemeral),
            CryptoError::DecryptFailed,
            |z| Ok(kdf(z, ephemeral)),
        )?;
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| CryptoError::DecryptFailed)?;
        let mut plaintext = ciphertext.to_vec();
        Cipher::new(&key.into())
            .decrypt_inout_detached(
                &nonce.into(),
                &[],
                plaintext.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| CryptoError::DecryptFailed)?;
        Ok(plaintext)
    }
}

impl EciesPublicKey {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        const WHAT: &str = "ECIES public key";
        let point: [u8; POINT_LEN] = bytes.try_into().map_err(|_| {
            CryptoError::bad_key(
                WHAT,
                format!("expected a {POINT_LEN}-byte point, got {}", bytes.len()),
            )
        })?;
        let on_curve =
            agreement::ParsedPublicKey::try_from(UnparsedPublicKey::new(&ECDH_P256, &point[..]))
                .is_ok();
        if point[0] != 0x04 || !on_curve {
            return Err(CryptoError::bad_key(
                WHAT,
                "not an uncompressed P-256 point",
            ));
        }
        Ok(EciesPublicKey { point })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.point
    }

    pub(crate) fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let ephemeral = PrivateKey::generate(&ECDH_P256).map_err(|_| CryptoError::RandomFailed)?;
        let ephemeral_point = public_of(&ephemeral)?;
        let (key, nonce) = agreement::agree(
            &ephemeral,
            UnparsedPublicKey::new(&ECDH_P256, &self.point[..]),
            CryptoError::EncryptFailed,
            |z| Ok(kdf(z, &ephemeral_point.point)),
        )?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.extend_from_slice(&ephemeral_point.point);
        out.extend_from_slice(plaintext);
        let tag = Cipher::new(&key.into())
            .encrypt_inout_detached(&nonce.into(), &[], (&mut out[POINT_LEN..]).into())
            .map_err(|_| CryptoError::EncryptFailed)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }
}

fn public_of(secret: &PrivateKey) -> Result<EciesPublicKey, CryptoError> {
    let public = secret
        .compute_public_key()
        .map_err(|_| CryptoError::bad_key("ECIES private key", "cannot derive public point"))?;
    let point = public
        .as_ref()
        .try_into()
        .map_err(|_| CryptoError::bad_key("ECIES private key", "unexpected public point size"))?;
    Ok(EciesPublicKey { point })
}

/// ANSI X9.63 KDF with SHA-256, one block: (AES key, GCM nonce).
fn kdf(z: &[u8], ephemeral_point: &[u8]) -> ([u8; 16], [u8; 16]) {
    let mut h = Sha256Stream::new();
    h.update(z);
    h.update(&1u32.to_be_bytes());
    h.update(ephemeral_point);
    let block = h.finish();
    let mut key = [0u8; 16];
    let mut nonce = [0u8; 16];
    key.copy_from_slice(&block[..16]);
    nonce.copy_from_slice(&block[16..]);
    (key, nonce)
}
