//! Cryptography of the ENPA pipeline: ECDSA batch signatures, SHA-256 file digests,
//! packet payload encryption (legacy ENPA ECIES, or HPKE), and the server's own stash key.

mod digest;
mod ecies;
mod error;
mod hpke_open;
pub(crate) mod hpke_x25519;
mod packet;
mod scheme;
mod signing;
mod stash_key;
mod text;
mod trust;
mod verifying;

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod packet_tests;

pub use digest::{sha256, DigestStream, HashingReader, HashingWriter, PacketDigest, Sha256Stream};
pub use error::CryptoError;
pub use packet::{min_payload_len, PacketPrivateKey, PacketPublicKey};
pub use scheme::PacketScheme;
pub use signing::SigningKey;
pub use stash_key::{FrameSealer, StashKey};
pub use trust::TrustSet;
pub use verifying::VerifyingKey;
