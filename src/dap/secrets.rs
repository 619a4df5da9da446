//! The secrets of a DAP task, kept apart from the public task file: each aggregator's and
//! the collector's HPKE private key, and the verify key the two aggregators share. Text
//! form of each: base64url without padding of the raw bytes, one line (the task file's
//! encoding). Parse errors name the key, never its text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::hpke::HpkeKeypair;
use super::task::HpkeConfig;

use super::task::DapVersion;

/// Prio3's VERIFY_KEY_SIZE in VDAF-18 (§7: 32 bytes, as XofTurboShake128's seed); a
/// DAP-09 task's VDAF-08 takes 16 ([`DapVersion::verify_key_len`]).
pub const VERIFY_KEY_LEN: usize = 32;

/// A DAP task's secret that could not be decoded; names it and the reason, never the text.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct SecretError {
    what: &'static str,
    reason: String,
}

fn decode(what: &'static str, text: &str) -> Result<Vec<u8>, SecretError> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| SecretError {
            what,
            reason: "not base64url without padding (the text is not shown)".into(),
        })
}

/// The verify key both aggregators of a task hold (and no one else): as many bytes as
/// the task's VDAF draft takes.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyKey(Vec<u8>);

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyKey(..)")
    }
}

impl VerifyKey {
    /// Fresh random bytes, as many as `version`'s Prio3 takes.
    pub fn generate(version: DapVersion) -> Result<Self, SecretError> {
        let mut key = vec![0u8; version.verify_key_len()];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| SecretError {
            what: "verify key",
            reason: "no randomness".into(),
        })?;
        Ok(VerifyKey(key))
    }

    /// A key for a task of `version` from its text; the wrong length is an error.
    pub fn from_text(version: DapVersion, text: &str) -> Result<Self, SecretError> {
        let bytes = decode("verify key", text)?;
        let want = version.verify_key_len();
        if bytes.len() != want {
            return Err(SecretError {
                what: "verify key",
                reason: format!(
                    "a {} task's key is {want} bytes (Prio3 VERIFY_KEY_SIZE), got {}",
                    version.label(),
                    bytes.len()
                ),
            });
        }
        Ok(VerifyKey(bytes))
    }

    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A server's X25519 key for agreeing on the verify key with its peer when each server
/// makes its own keys (`keygen --party`): each publishes the public half, and both derive
/// the same verify key from the Diffie-Hellman secret and the task id, so the verify key
/// itself never travels.
pub struct VerifyKeyAgreement(aws_lc_rs::agreement::PrivateKey);

impl std::fmt::Debug for VerifyKeyAgreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyKeyAgreement(..)")
    }
}

/// What the agreement's key-derivation step binds the verify key to, besides the task id.
const VERIFY_KEY_AGREEMENT_LABEL: &[u8] = b"divvi verify key agreement v1";

impl VerifyKeyAgreement {
    pub fn generate() -> Result<Self, SecretError> {
        aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::X25519)
            .map(VerifyKeyAgreement)
            .map_err(|_| agreement_error("no randomness"))
    }

    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        let bytes = decode("verify key agreement key", text)?;
        aws_lc_rs::agreement::PrivateKey::from_private_key(&aws_lc_rs::agreement::X25519, &bytes)
            .map(VerifyKeyAgreement)
            .map_err(|_| agreement_error("not an X25519 private key (the text is not shown)"))
    }

    pub fn to_text(&self) -> Result<String, SecretError> {
        use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
        let seed: Curve25519SeedBin = self
            .0
            .as_be_bytes()
            .map_err(|_| agreement_error("the key cannot be written out"))?;
        Ok(URL_SAFE_NO_PAD.encode(seed.as_ref()))
    }

    /// The public half, as a manifest carries it (base64url).
    pub fn public_text(&self) -> Result<String, SecretError> {
        let public = self
            .0
            .compute_public_key()
            .map_err(|_| agreement_error("no public key"))?;
        Ok(URL_SAFE_NO_PAD.encode(public.as_ref()))
    }

    /// The verify key of task `task_id` (of draft `version`) both servers derive: HKDF-SHA256
    /// of the X25519 secret with this server's key and the peer's public half, salted with
    /// a label and the task id, so each task gets its own key.
    pub fn verify_key(
        &self,
        peer_public_text: &str,
        version: DapVersion,
        task_id: &[u8],
    ) -> Result<VerifyKey, SecretError> {
        use aws_lc_rs::{agreement, hkdf};
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let peer = decode("the peer's verify key agreement key", peer_public_text)?;
        let mut key = vec![0u8; version.verify_key_len()];
        let salt = [VERIFY_KEY_AGREEMENT_LABEL, task_id].concat();
        agreement::agree(
            &self.0,
            agreement::UnparsedPublicKey::new(&agreement::X25519, &peer),
            agreement_error("the peer's public key is not an X25519 key"),
            |secret| {
                hkdf::Salt::new(hkdf::HKDF_SHA256, &salt)
                    .extract(secret)
                    .expand(&[version.label().as_bytes()], Len(key.len()))
                    .and_then(|okm| okm.fill(&mut key))
                    .map_err(|_| agreement_error("key derivation failed"))
            },
        )?;
        Ok(VerifyKey(key))
    }
}

fn agreement_error(reason: &str) -> SecretError {
    SecretError {
        what: "verify key agreement",
        reason: reason.into(),
    }
}

/// The text form of a key pair's private key (for keygen to write to a secret file).
pub fn hpke_private_key_text(keypair: &HpkeKeypair) -> String {
    URL_SAFE_NO_PAD.encode(keypair.private_key_bytes())
}

/// A key pair from its private key's text, under the id of `config` (the task's config
/// for this party). Whether the public halves match is the caller's check.
pub fn hpke_keypair_from_text(config: &HpkeConfig, text: &str) -> Result<HpkeKeypair, SecretError> {
    let bytes = decode("HPKE private key", text)?;
    HpkeKeypair::from_private_key(config.id, &bytes).map_err(|e| SecretError {
        what: "HPKE private key",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_servers_agree_on_a_verify_key_of_the_task_and_no_one_else_does() {
        let (a, b, c) = (
            VerifyKeyAgreement::generate().unwrap(),
            VerifyKeyAgreement::generate().unwrap(),
            VerifyKeyAgreement::generate().unwrap(),
        );
        let task = [9u8; 32];
        let key = |me: &VerifyKeyAgreement, peer: &VerifyKeyAgreement, task: &[u8]| {
            me.verify_key(&peer.public_text().unwrap(), DapVersion::Dap18, task)
                .unwrap()
        };
        let ab = key(&a, &b, &task);
        assert_eq!(ab, key(&b, &a, &task));
        assert_eq!(ab.as_bytes().len(), VERIFY_KEY_LEN);
        assert_ne!(ab, key(&a, &c, &task), "another peer");
        assert_ne!(ab, key(&a, &b, &[8u8; 32]), "another task");
        let dap09 = a
            .verify_key(&b.public_text().unwrap(), DapVersion::Dap09, &task)
            .unwrap();
        assert_eq!(dap09.as_bytes().len(), DapVersion::Dap09.verify_key_len());
        // The private key survives its text form.
        let again = VerifyKeyAgreement::from_text(&a.to_text().unwrap()).unwrap();
        assert_eq!(again.public_text().unwrap(), a.public_text().unwrap());
        assert!(a.verify_key("AAAA", DapVersion::Dap18, &task).is_err());
        assert!(VerifyKeyAgreement::from_text("AAAA").is_err());
    }

    #[test]
    fn verify_key_round_trips_and_refuses_other_lengths() {
        let k = VerifyKey::generate(DapVersion::Dap18).unwrap();
        assert_eq!(
            VerifyKey::from_text(DapVersion::Dap18, &k.to_text()).unwrap(),
            k
        );
        // A DAP-09 task's key is 16 bytes, and a 32-byte one is refused for it.
        let k09 = VerifyKey::generate(DapVersion::Dap09).unwrap();
        assert_eq!(k09.as_bytes().len(), 16);
        assert!(VerifyKey::from_text(DapVersion::Dap09, &k.to_text()).is_err());
        assert_eq!(format!("{k:?}"), "VerifyKey(..)");
        let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
        let e = VerifyKey::from_text(DapVersion::Dap18, &short)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is 32 bytes") && e.contains("got 16"), "{e}");
        let e = VerifyKey::from_text(DapVersion::Dap18, "not*base64")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("not*base64"), "{e}");
    }

    #[test]
    fn hpke_private_key_text_round_trips() {
        let k = HpkeKeypair::generate(3).unwrap();
        let back = hpke_keypair_from_text(k.config(), &hpke_private_key_text(&k)).unwrap();
        assert_eq!(back.config(), k.config());
    }
}
