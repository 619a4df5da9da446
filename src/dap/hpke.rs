//! Sealing and opening DAP-18 input shares (D18 §4.4.2.1, §4.5.3.3): HPKE base mode,
//! X25519-HKDF-SHA256 / HKDF-SHA256 / AES-128-GCM, info = "dap-18 input share" ‖ 0x01
//! (client) ‖ receiver role, AAD = [`InputShareAad`]. The HPKE itself is the one in
//! `crate::crypto::hpke_x25519`; this file only adds DAP's framing.

use crate::crypto::hpke_x25519::{HpkePrivateKey, HpkePublicKey, ENC_LEN};

use super::messages::{HpkeCiphertext, InputShareAad, PlaintextInputShare, Report, WireError};
use super::task::{HpkeConfig, Task};

/// The aggregator an input share is sealed to (D18 §4.1 `Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Helper,
}

impl Role {
    pub fn code(self) -> u8 {
        match self {
            Role::Leader => 0x02,
            Role::Helper => 0x03,
        }
    }
    /// Index of this aggregator's input share (and its VDAF aggregator id).
    pub fn agg_id(self) -> usize {
        match self {
            Role::Leader => 0,
            Role::Helper => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Helper => "helper",
        }
    }
}

const CLIENT_ROLE: u8 = 0x01;
const INPUT_SHARE_LABEL: &[u8] = b"dap-18 input share";

/// `"dap-18 input share" ‖ 0x01 ‖ role`.
pub fn input_share_info(receiver: Role) -> Vec<u8> {
    let mut info = INPUT_SHARE_LABEL.to_vec();
    info.push(CLIENT_ROLE);
    info.push(receiver.code());
    info
}

/// Sealing or opening failed; the message names the share and the reason, never a key.
#[derive(Debug, thiserror::Error)]
pub enum HpkeError {
    #[error("{role} HPKE config: {reason}")]
    BadConfig { role: &'static str, reason: String },
    #[error("{role} input share: ciphertext is for HPKE config {got}, this key is config {want}")]
    UnknownConfigId {
        role: &'static str,
        got: u8,
        want: u8,
    },
    #[error("{role} input share: {source}")]
    Crypto {
        role: &'static str,
        source: crate::crypto::CryptoError,
    },
    #[error("{role} input share: {source}")]
    Wire {
        role: &'static str,
        source: WireError,
    },
}

/// Seals `payload` (a VDAF input share) for `receiver` under its HPKE config.
pub fn seal_input_share(
    config: &HpkeConfig,
    receiver: Role,
    payload: &[u8],
    aad: &InputShareAad,
) -> Result<HpkeCiphertext, HpkeError> {
    let role = receiver.name();
    let wire = |source| HpkeError::Wire { role, source };
    let key = HpkePublicKey::from_bytes(&config.public_key).map_err(|e| HpkeError::BadConfig {
        role,
        reason: e.to_string(),
    })?;
    let plaintext = PlaintextInputShare {
        payload: payload.to_vec(),
    }
    .to_bytes()
    .map_err(wire)?;
    let aad = aad.to_bytes().map_err(wire)?;
    let (enc, ciphertext) = key
        .seal_with_info(&input_share_info(receiver), &plaintext, &aad)
        .map_err(|source| HpkeError::Crypto { role, source })?;
    Ok(HpkeCiphertext {
        config_id: config.id,
        enc: enc.to_vec(),
        payload: ciphertext,
    })
}

/// An aggregator's (or collector's) HPKE key pair and its public config.
pub struct HpkeKeypair {
    config: HpkeConfig,
    private: HpkePrivateKey,
}

impl HpkeKeypair {
    /// A fresh X25519 key pair under config id `id`.
    pub fn generate(id: u8) -> Result<Self, HpkeError> {
        let (private, _) = HpkePrivateKey::generate().map_err(|source| HpkeError::Crypto {
            role: "new",
            source,
        })?;
        Ok(Self::from_key(id, private))
    }

    /// A key pair from a raw 32-byte X25519 private key.
    pub fn from_private_key(id: u8, bytes: &[u8]) -> Result<Self, HpkeError> {
        let private = HpkePrivateKey::from_bytes(bytes).map_err(|e| HpkeError::BadConfig {
            role: "own",
            reason: e.to_string(),
        })?;
        Ok(Self::from_key(id, private))
    }

    fn from_key(id: u8, private: HpkePrivateKey) -> Self {
        let public = private.public_key().as_bytes().to_vec();
        HpkeKeypair {
            config: HpkeConfig::x25519(id, public),
            private,
        }
    }

    pub fn config(&self) -> &HpkeConfig {
        &self.config
    }

    /// The raw X25519 private key, for keygen's key file (see `dap::secrets`). There is
    /// deliberately no Debug on this type, so it cannot reach a log by accident.
    pub fn private_key_bytes(&self) -> [u8; 32] {
        self.private.to_bytes()
    }

    /// Opens an input share sealed to `receiver` and returns the VDAF input share
    /// (the payload of the PlaintextInputShare; extensions are refused).
    pub fn open_input_share(
        &self,
        receiver: Role,
        ciphertext: &HpkeCiphertext,
        aad: &InputShareAad,
    ) -> Result<Vec<u8>, HpkeError> {
        let role = receiver.name();
        if ciphertext.config_id != self.config.id {
            return Err(HpkeError::UnknownConfigId {
                role,
                got: ciphertext.config_id,
                want: self.config.id,
            });
        }
        if ciphertext.enc.len() != ENC_LEN {
            return Err(HpkeError::Crypto {
                role,
                source: crate::crypto::CryptoError::DecryptFailed,
            });
        }
        let aad = aad
            .to_bytes()
            .map_err(|source| HpkeError::Wire { role, source })?;
        let plaintext = self
            .private
            .open_with_info(
                &input_share_info(receiver),
                &ciphertext.enc,
                &ciphertext.payload,
                &aad,
            )
            .map_err(|source| HpkeError::Crypto { role, source })?;
        let share = PlaintextInputShare::from_bytes(&plaintext)
            .map_err(|source| HpkeError::Wire { role, source })?;
        Ok(share.payload)
    }

    /// Opens `receiver`'s input share of `report` under `task` (builds the AAD).
    pub fn open_report_share(
        &self,
        task: &Task,
        receiver: Role,
        report: &Report,
    ) -> Result<Vec<u8>, HpkeError> {
        let task_configuration = task.task_configuration();
        let aad = InputShareAad {
            task_id: task.task_id(),
            task_configuration: &task_configuration,
            metadata: &report.metadata,
            public_share: &report.public_share,
        };
        let ciphertext = match receiver {
            Role::Leader => &report.leader_encrypted_input_share,
            Role::Helper => &report.helper_encrypted_input_share,
        };
        self.open_input_share(receiver, ciphertext, &aad)
    }
}
