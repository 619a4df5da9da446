//! A server's own symmetric key for what it keeps for itself between intake and
//! aggregate (the share stash). Each file gets its own AES-256-GCM key, derived with
//! HKDF-SHA256 from the stash key, a random per-file salt and the file's context, so
//! frame nonces can simply count frames.

use super::text;
use super::CryptoError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

const KEY_LEN: usize = 32;

/// The stash key (secret). Text form: base64 of 32 random bytes.
pub struct StashKey([u8; KEY_LEN]);

impl std::fmt::Debug for StashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StashKey(..)")
    }
}

impl StashKey {
    pub fn from_text(text: &str) -> Result<Self, CryptoError> {
        let bytes = text::decode("stash key", text)?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::bad_key("stash key", "must be 32 bytes"))?;
        Ok(StashKey(key))
    }

    pub fn generate() -> Result<(Self, String), CryptoError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| CryptoError::RandomFailed)?;
        Ok((StashKey(key), text::encode(&key)))
    }

    /// A fresh random salt for a new file.
    pub fn new_salt() -> Result<[u8; 32], CryptoError> {
        let mut salt = [0u8; 32];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| CryptoError::RandomFailed)?;
        Ok(salt)
    }

    /// A secret seed for `purpose`, bound to `binder` (HMAC-SHA256 under the stash key):
    /// the same on every rerun, unknown to anyone without the key. Differential privacy
    /// draws a release's noise from it, so a rerun cannot draw new noise.
    pub fn derive_seed(&self, purpose: &[u8], binder: &[u8]) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let mut context = aws_lc_rs::hmac::Context::with_key(&key);
        context.update(&(purpose.len() as u64).to_be_bytes());
        context.update(purpose);
        context.update(binder);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(context.sign().as_ref());
        seed
    }

    /// The sealer of one file: `context` names what the file is for (batch, server,
    /// digest of its source), so a file cannot be passed off as another's.
    pub fn file_sealer(&self, salt: &[u8; 32], context: &[u8]) -> Result<FrameSealer, CryptoError> {
        let prk = Salt::new(HKDF_SHA256, salt).extract(&self.0);
        let info = [b"divvi stash v1".as_slice(), context];
        let mut key = [0u8; 32];
        prk.expand(&info, &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key))
            .map_err(|_| CryptoError::bad_key("stash key", "key derivation failed"))?;
        let unbound = UnboundKey::new(&AES_256_GCM, &key)
            .map_err(|_| CryptoError::bad_key("stash key", "cipher setup failed"))?;
        Ok(FrameSealer {
            key: LessSafeKey::new(unbound),
        })
    }
}

/// Seals and opens the numbered frames of one file. The frame number is the nonce and
/// `last` is bound as associated data, so frames cannot be reordered, dropped or cut off.
pub struct FrameSealer {
    key: LessSafeKey,
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl FrameSealer {
    /// Seals `buffer` in place, appending the tag (reserve 16 bytes to avoid a copy).
    pub fn seal_in_place(
        &self,
        index: u64,
        last: bool,
        buffer: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.key
            .seal_in_place_append_tag(nonce(index), Aad::from([u8::from(last)]), buffer)
            .map_err(|_| CryptoError::EncryptFailed)
    }

    pub fn open(
        &self,
        index: u64,
        last: bool,
        mut sealed: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        let len = self
            .key
            .open_in_place(nonce(index), Aad::from([u8::from(last)]), &mut sealed)
            .map_err(|_| CryptoError::DecryptFailed)?
            .len();
        sealed.truncate(len);
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_open_only_in_place() {
        let (key, text) = StashKey::generate().unwrap();
        let again = StashKey::from_text(&text).unwrap();
        let salt = StashKey::new_salt().unwrap();
        let s = key.file_sealer(&salt, b"batch-1").unwrap();
        let mut sealed = b"hello".to_vec();
        s.seal_in_place(3, false, &mut sealed).unwrap();
        let o = again.file_sealer(&salt, b"batch-1").unwrap();
        assert_eq!(o.open(3, false, sealed.clone()).unwrap(), b"hello");
        assert!(o.open(4, false, sealed.clone()).is_err(), "moved frame");
        assert!(o.open(3, true, sealed.clone()).is_err(), "last flag");
        let other = key.file_sealer(&salt, b"batch-2").unwrap();
        assert!(other.open(3, false, sealed).is_err(), "other context");
        assert_eq!(format!("{key:?}"), "StashKey(..)");
        assert!(StashKey::from_text("AAAA").is_err());
    }
}
