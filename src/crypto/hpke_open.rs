//! RFC 9180 HPKE receiver, base mode, single-shot open, for the one suite divvi uses:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, on aws-lc's primitives. A server
//! opens one ciphertext per report, and this costs a third of the `hpke` crate's open
//! (criterion, `prio3/count/intake/leader`, all but the open being small: 85 µs with
//! the `hpke` crate, 27 µs with this). Sealing stays with the `hpke` crate, so every
//! test that seals and opens checks one implementation against the other.

use aws_lc_rs::{aead, agreement, hkdf, hmac};

use super::CryptoError;

pub(crate) const KEY_LEN: usize = 32;
/// `suite_id` of the KEM: "KEM" || I2OSP(kem_id = 0x0020, 2).
const KEM_SUITE: &[u8] = b"KEM\x00\x20";
/// `suite_id` of the whole scheme: "HPKE" || kem_id || kdf_id (0x0001) || aead_id (0x0001).
const HPKE_SUITE: &[u8] = b"HPKE\x00\x20\x00\x01\x00\x01";
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// AES-128-GCM's key and nonce lengths (Nk, Nn).
const NK: usize = 16;
const NN: usize = 12;

/// A recipient's X25519 key, ready to open.
pub(crate) struct X25519Receiver {
    private: agreement::PrivateKey,
    /// pkRm, part of the KEM context.
    public: [u8; KEY_LEN],
}

impl X25519Receiver {
    /// `secret` is the raw X25519 private key (clamped on use), `public` its public key.
    pub(crate) fn new(secret: &[u8], public: [u8; KEY_LEN]) -> Result<Self, CryptoError> {
        let private =
            agreement::PrivateKey::from_private_key(&agreement::X25519, secret).map_err(|_| {
                CryptoError::bad_key(
                    "HPKE private key",
                    format!("expected {KEY_LEN} bytes, got {}", secret.len()),
                )
            })?;
        Ok(X25519Receiver { private, public })
    }

    /// Opens `ciphertext` (with its tag) sealed to this key with encapsulated key `enc`,
    /// under `info` and `aad`. Any mismatch is one error: which part failed is no one's
    /// business.
    pub(crate) fn open(
        &self,
        info: &[u8],
        enc: &[u8],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let shared_secret = self.decap(enc)?;
        let (key, base_nonce) = key_schedule(&shared_secret, info)?;
        let key = aead::UnboundKey::new(&aead::AES_128_GCM, &key)
            .map_err(|_| CryptoError::DecryptFailed)?;
        // Single-shot: sequence number 0, so the nonce is the base nonce itself.
        let nonce = aead::Nonce::assume_unique_for_key(base_nonce);
        let mut in_out = ciphertext.to_vec();
        let len = aead::LessSafeKey::new(key)
            .open_in_place(nonce, aead::Aad::from(aad), &mut in_out)
            .map_err(|_| CryptoError::DecryptFailed)?
            .len();
        in_out.truncate(len);
        Ok(in_out)
    }

    /// DHKEM's Decap: the shared secret of `enc` and this key.
    fn decap(&self, enc: &[u8]) -> Result<[u8; 32], CryptoError> {
        if enc.len() != KEY_LEN {
            return Err(CryptoError::DecryptFailed);
        }
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, enc);
        let dh: [u8; 32] =
            agreement::agree(&self.private, peer, CryptoError::DecryptFailed, |dh| {
                dh.try_into().map_err(|_| CryptoError::DecryptFailed)
            })?;
        // RFC 9180 7.1.4: an all-zero result (a small-order point) must be refused.
        if dh == [0u8; 32] {
            return Err(CryptoError::DecryptFailed);
        }
        let mut kem_context = [0u8; 2 * KEY_LEN];
        kem_context[..KEY_LEN].copy_from_slice(enc);
        kem_context[KEY_LEN..].copy_from_slice(&self.public);
        let eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", &dh);
        labeled_expand(KEM_SUITE, &eae_prk, b"shared_secret", &kem_context)
    }
}

/// The base-mode key schedule (no PSK): the AEAD key and base nonce.
fn key_schedule(shared_secret: &[u8], info: &[u8]) -> Result<([u8; NK], [u8; NN]), CryptoError> {
    let psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", info);
    let mut context = [0u8; 1 + 2 * 32];
    // context[0] = mode_base = 0.
    context[1..33].copy_from_slice(&psk_id_hash);
    context[33..].copy_from_slice(&info_hash);
    let secret = labeled_extract(HPKE_SUITE, shared_secret, b"secret", b"");
    Ok((
        labeled_expand(HPKE_SUITE, &secret, b"key", &context)?,
        labeled_expand(HPKE_SUITE, &secret, b"base_nonce", &context)?,
    ))
}

/// LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" || suite_id || label
/// || ikm). Extract is HMAC-SHA256 keyed by the salt (an empty salt is the same key as
/// 32 zero bytes, as HKDF's default).
fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, salt));
    for part in [VERSION_LABEL, suite, label, ikm] {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" ||
/// suite_id || label || info, L).
fn labeled_expand<const L: usize>(
    suite: &[u8],
    prk: &[u8; 32],
    label: &[u8],
    info: &[u8],
) -> Result<[u8; L], CryptoError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let length = u16::try_from(L)
        .map_err(|_| CryptoError::DecryptFailed)?
        .to_be_bytes();
    let parts: [&[u8]; 5] = [&length, VERSION_LABEL, suite, label, info];
    let mut out = [0u8; L];
    hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk)
        .expand(&parts, Len(L))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| CryptoError::DecryptFailed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hpke_x25519::HpkePrivateKey;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9180 Appendix A.1.1 (this suite, base mode), its first encryption.
    struct Rfc9180A11;
    impl Rfc9180A11 {
        const SK_RM: &str = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
        const PK_RM: &str = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
        const ENC: &str = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
        const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
        const SHARED_SECRET: &str =
            "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc";
        const KEY: &str = "4531685d41d65f03dc48f6b8302c05b0";
        const BASE_NONCE: &str = "56d890e5accaaf011cff4b7d";
        const AAD: &str = "436f756e742d30";
        const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
        const CT: &str = "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a";

        fn receiver() -> X25519Receiver {
            let public: [u8; 32] = hex(Self::PK_RM).try_into().unwrap();
            X25519Receiver::new(&hex(Self::SK_RM), public).unwrap()
        }
    }

    #[test]
    fn rfc_9180_a_1_1_every_step() {
        let v = Rfc9180A11::receiver();
        let shared = v.decap(&hex(Rfc9180A11::ENC)).unwrap();
        assert_eq!(shared.to_vec(), hex(Rfc9180A11::SHARED_SECRET));
        let (key, nonce) = key_schedule(&shared, &hex(Rfc9180A11::INFO)).unwrap();
        assert_eq!(key.to_vec(), hex(Rfc9180A11::KEY));
        assert_eq!(nonce.to_vec(), hex(Rfc9180A11::BASE_NONCE));
        let opened = v
            .open(
                &hex(Rfc9180A11::INFO),
                &hex(Rfc9180A11::ENC),
                &hex(Rfc9180A11::CT),
                &hex(Rfc9180A11::AAD),
            )
            .unwrap();
        assert_eq!(opened, hex(Rfc9180A11::PT));
    }

    #[test]
    fn rfc_9180_a_1_1_refuses_any_changed_part() {
        let v = Rfc9180A11::receiver();
        let parts = [
            Rfc9180A11::INFO,
            Rfc9180A11::ENC,
            Rfc9180A11::CT,
            Rfc9180A11::AAD,
        ];
        for changed in 0..parts.len() {
            let mut p: Vec<Vec<u8>> = parts.iter().map(|s| hex(s)).collect();
            p[changed][0] ^= 1;
            assert!(
                matches!(
                    v.open(&p[0], &p[1], &p[2], &p[3]),
                    Err(CryptoError::DecryptFailed)
                ),
                "part {changed}"
            );
        }
    }

    #[test]
    fn opens_what_the_hpke_crate_seals_and_nothing_else() {
        for len in [0usize, 1, 15, 16, 17, 1000, 40_000] {
            let (key, _) = HpkePrivateKey::generate().unwrap();
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let info = format!("info {len}");
            let (enc, ct) = key
                .public_key()
                .seal_with_info(info.as_bytes(), &plaintext, b"aad")
                .unwrap();
            let opened = key
                .open_with_info(info.as_bytes(), &enc, &ct, b"aad")
                .unwrap();
            assert_eq!(opened, plaintext, "{len} bytes");
            // Another key, another info or aad, a short enc or a cut tag: refused.
            let (other, _) = HpkePrivateKey::generate().unwrap();
            assert!(other
                .open_with_info(info.as_bytes(), &enc, &ct, b"aad")
                .is_err());
            assert!(key.open_with_info(b"other", &enc, &ct, b"aad").is_err());
            assert!(key.open_with_info(info.as_bytes(), &enc, &ct, b"").is_err());
            assert!(key
                .open_with_info(info.as_bytes(), &enc[..31], &ct, b"aad")
                .is_err());
            assert!(key
                .open_with_info(info.as_bytes(), &enc, &ct[..ct.len() - 1], b"aad")
                .is_err());
        }
    }

    #[test]
    fn a_small_order_encapsulated_key_is_refused() {
        let v = Rfc9180A11::receiver();
        // u = 0 and u = 1 are small-order points: X25519 gives all zeros.
        for u in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert!(matches!(v.decap(&u), Err(CryptoError::DecryptFailed)));
        }
    }
}
