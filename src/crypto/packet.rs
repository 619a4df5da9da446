//! Packet payload keys of either scheme, behind one type so callers pick the scheme
//! by configuration only.

use std::fmt;

use super::ecies::{self, EciesPrivateKey, EciesPublicKey};
use super::hpke_x25519::{self, HpkePrivateKey, HpkePublicKey};
use super::text;
use super::{CryptoError, PacketScheme};

/// Minimum payload length for a scheme (ECIES 81; HPKE: 32-byte encapsulated key +
/// 16-byte tag = 48).
pub fn min_payload_len(scheme: PacketScheme) -> usize {
    match scheme {
        PacketScheme::Ecies => ecies::OVERHEAD,
        PacketScheme::Hpke => hpke_x25519::OVERHEAD,
    }
}

/// A server's packet decryption key, either scheme. Text forms:
///  ecies: base64 of 65-byte public point || 32-byte big-endian scalar (97 bytes),
///  exactly the ENPA form;
///  hpke: base64 of the 32-byte X25519 private key.
pub struct PacketPrivateKey(PrivateInner);

enum PrivateInner {
    Ecies(EciesPrivateKey),
    Hpke(HpkePrivateKey),
}

impl PacketPrivateKey {
    pub fn from_text(scheme: PacketScheme, text: &str) -> Result<Self, CryptoError> {
        let bytes = text::decode(private_what(scheme), text)?;
        Ok(PacketPrivateKey(match scheme {
            PacketScheme::Ecies => PrivateInner::Ecies(EciesPrivateKey::from_bytes(&bytes)?),
            PacketScheme::Hpke => PrivateInner::Hpke(HpkePrivateKey::from_bytes(&bytes)?),
        }))
    }

    /// A fresh key and its private text form.
    pub fn generate(scheme: PacketScheme) -> Result<(Self, String), CryptoError> {
        let (inner, bytes) = match scheme {
            PacketScheme::Ecies => {
                let (k, b) = EciesPrivateKey::generate()?;
                (PrivateInner::Ecies(k), b)
            }
            PacketScheme::Hpke => {
                let (k, b) = HpkePrivateKey::generate()?;
                (PrivateInner::Hpke(k), b)
            }
        };
        Ok((PacketPrivateKey(inner), text::encode(&bytes)))
    }

    pub fn scheme(&self) -> PacketScheme {
        match self.0 {
            PrivateInner::Ecies(_) => PacketScheme::Ecies,
            PrivateInner::Hpke(_) => PacketScheme::Hpke,
        }
    }

    pub fn public_key(&self) -> PacketPublicKey {
        PacketPublicKey(match &self.0 {
            PrivateInner::Ecies(k) => PublicInner::Ecies(k.public_key().clone()),
            PrivateInner::Hpke(k) => PublicInner::Hpke(k.public_key().clone()),
        })
    }

    /// Opens a sealed payload. `aad` is bound by HPKE only (legacy ECIES has no
    /// associated data and ignores it).
    pub fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            PrivateInner::Ecies(k) => k.open(payload),
            PrivateInner::Hpke(k) => k.open(payload, aad),
        }
    }
}

impl fmt::Debug for PacketPrivateKey {
    // Only the public half is shown; the secret never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketPrivateKey")
            .field("scheme", &self.scheme())
            .field("public", &self.public_key().to_text())
            .finish_non_exhaustive()
    }
}

/// A server's packet encryption (public) key.
#[derive(Clone)]
pub struct PacketPublicKey(PublicInner);

#[derive(Clone)]
enum PublicInner {
    Ecies(EciesPublicKey),
    Hpke(HpkePublicKey),
}

impl PacketPublicKey {
    /// ecies: base64 of the 65-byte point; hpke: base64 of the 32-byte X25519 key.
    pub fn from_text(scheme: PacketScheme, text: &str) -> Result<Self, CryptoError> {
        let what = match scheme {
            PacketScheme::Ecies => "ECIES public key",
            PacketScheme::Hpke => "HPKE public key",
        };
        let bytes = text::decode(what, text)?;
        Ok(PacketPublicKey(match scheme {
            PacketScheme::Ecies => PublicInner::Ecies(EciesPublicKey::from_bytes(&bytes)?),
            PacketScheme::Hpke => PublicInner::Hpke(HpkePublicKey::from_bytes(&bytes)?),
        }))
    }

    pub fn to_text(&self) -> String {
        text::encode(match &self.0 {
            PublicInner::Ecies(k) => k.as_bytes(),
            PublicInner::Hpke(k) => k.as_bytes(),
        })
    }

    pub fn scheme(&self) -> PacketScheme {
        match self.0 {
            PublicInner::Ecies(_) => PacketScheme::Ecies,
            PublicInner::Hpke(_) => PacketScheme::Hpke,
        }
    }

    /// Seals `plaintext`; `aad` is bound by HPKE only (ECIES ignores it, as in ENPA).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            PublicInner::Ecies(k) => k.seal(plaintext),
            PublicInner::Hpke(k) => k.seal(plaintext, aad),
        }
    }
}

impl PartialEq for PacketPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.scheme() == other.scheme() && self.to_text() == other.to_text()
    }
}

impl Eq for PacketPublicKey {}

impl fmt::Debug for PacketPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketPublicKey")
            .field("scheme", &self.scheme())
            .field("key", &self.to_text())
            .finish()
    }
}

fn private_what(scheme: PacketScheme) -> &'static str {
    match scheme {
        PacketScheme::Ecies => "ECIES private key",
        PacketScheme::Hpke => "HPKE private key",
    }
}
