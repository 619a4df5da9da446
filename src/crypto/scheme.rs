//! Names of the packet encryption schemes.

use std::fmt;
use std::str::FromStr;

use super::CryptoError;

/// How packet payloads are sealed to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketScheme {
    /// Legacy ENPA ECIES (P-256, X9.63 KDF, AES-128-GCM with a 16-byte nonce).
    Ecies,
    /// RFC 9180 HPKE (X25519, HKDF-SHA256, AES-128-GCM).
    Hpke,
}

impl PacketScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            PacketScheme::Ecies => "ecies",
            PacketScheme::Hpke => "hpke",
        }
    }
}

impl fmt::Display for PacketScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PacketScheme {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ecies" => Ok(PacketScheme::Ecies),
            "hpke" => Ok(PacketScheme::Hpke),
            _ => Err(CryptoError::UnknownScheme(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [PacketScheme::Ecies, PacketScheme::Hpke] {
            assert_eq!(s.to_string().parse::<PacketScheme>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<PacketScheme>(&json).unwrap(), s);
        }
        assert!(matches!(
            "rsa".parse::<PacketScheme>(),
            Err(CryptoError::UnknownScheme(_))
        ));
    }
}
