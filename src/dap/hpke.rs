//! Sealing and opening DAP input shares (D09 §4.4.2, D18 §4.4.2.1, §4.5.3.3): HPKE base
//! mode, X25519-HKDF-SHA256 / HKDF-SHA256 / AES-128-GCM, info = "dap-18 input share" (or
//! "dap-09 input share") ‖ 0x01 (client) ‖ receiver role, AAD = [`InputShareAad`]. The HPKE itself is the one in
//! `crate::crypto::hpke_x25519`; this file only adds DAP's framing.

use crate::crypto::hpke_x25519::{HpkePrivateKey, HpkePublicKey, ENC_LEN};

use super::messages::{
    HpkeCiphertext, HpkeCiphertextRef, InputShareAad, PlaintextInputShare, Report, WireError,
};
use super::task::{DapVersion, HpkeConfig, Task};

/// An aggregator (D18 §4.1 `Role`): the receiver of an input share, the sender of an
/// aggregate share.
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

/// `"dap-18 input share" ‖ 0x01 ‖ role` (DAP-09: `"dap-09 input share" ‖ ...`).
pub fn input_share_info(version: DapVersion, receiver: Role) -> Vec<u8> {
    let mut info = format!("{} input share", version.label()).into_bytes();
    info.push(CLIENT_ROLE);
    info.push(receiver.code());
    info
}

/// What a ciphertext holds, for errors: DAP seals input shares and aggregate shares.
pub(super) const INPUT_SHARE: &str = "input share";
pub(super) const AGGREGATE_SHARE: &str = "aggregate share";

/// Sealing or opening failed; the message names the role, the share and the reason,
/// never a key.
#[derive(Debug, thiserror::Error)]
pub enum HpkeError {
    #[error("{role} HPKE config: {reason}")]
    BadConfig { role: &'static str, reason: String },
    #[error("{role} {share}: ciphertext is for HPKE config {got}, this key is config {want}")]
    UnknownConfigId {
        role: &'static str,
        share: &'static str,
        got: u8,
        want: u8,
    },
    #[error("{role} {share}: {source}")]
    Crypto {
        role: &'static str,
        share: &'static str,
        source: crate::crypto::CryptoError,
    },
    #[error("{role} {share}: {source}")]
    Wire {
        role: &'static str,
        share: &'static str,
        source: WireError,
    },
}

/// The error for a message that does not encode or decode, naming the share.
pub(super) fn wire_error(
    (role, share): (&'static str, &'static str),
) -> impl Fn(WireError) -> HpkeError + Copy {
    move |source| HpkeError::Wire {
        role,
        share,
        source,
    }
}

/// Seals `plaintext` to `config`, the HPKE config of `recipient`, under DAP's `info` and
/// `aad`; `role` (the share's sender or receiver) and `share` name the ciphertext in errors.
pub(super) fn seal_to(
    (config, recipient): (&HpkeConfig, &'static str),
    (role, share): (&'static str, &'static str),
    info: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<HpkeCiphertext, HpkeError> {
    let key = HpkePublicKey::from_bytes(&config.public_key).map_err(|e| HpkeError::BadConfig {
        role: recipient,
        reason: format!("{e} (sealing the {role} {share})"),
    })?;
    let (enc, payload) =
        key.seal_with_info(info, plaintext, aad)
            .map_err(|source| HpkeError::Crypto {
                role,
                share,
                source,
            })?;
    Ok(HpkeCiphertext {
        config_id: config.id,
        enc: enc.to_vec(),
        payload,
    })
}

/// Seals `payload` (a VDAF input share) for `receiver` under its HPKE config.
pub fn seal_input_share(
    config: &HpkeConfig,
    receiver: Role,
    payload: &[u8],
    aad: &InputShareAad,
) -> Result<HpkeCiphertext, HpkeError> {
    let names = (receiver.name(), INPUT_SHARE);
    let wire = wire_error(names);
    let plaintext = PlaintextInputShare {
        payload: payload.to_vec(),
    }
    .to_bytes()
    .map_err(wire)?;
    let info = input_share_info(aad.version, receiver);
    let aad = aad.to_bytes().map_err(wire)?;
    let recipient = (config, receiver.name());
    seal_to(recipient, names, &info, &plaintext, &aad)
}

/// An aggregator's (or collector's) HPKE key pair and its public config.
pub struct HpkeKeypair {
    config: HpkeConfig,
    private: HpkePrivateKey,
}

impl HpkeKeypair {
    /// A fresh X25519 key pair under config id `id`.
    pub fn generate(id: u8) -> Result<Self, HpkeError> {
        let (private, _) = HpkePrivateKey::generate().map_err(|e| HpkeError::BadConfig {
            role: "new",
            reason: e.to_string(),
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

    /// Opens a ciphertext sealed to this key under DAP's `info` and `aad`, refusing one
    /// for another config id; `role` and `share` only name the ciphertext in errors.
    pub(super) fn open_sealed(
        &self,
        (role, share): (&'static str, &'static str),
        info: &[u8],
        ciphertext: HpkeCiphertextRef,
        aad: &[u8],
    ) -> Result<Vec<u8>, HpkeError> {
        if ciphertext.config_id != self.config.id {
            return Err(HpkeError::UnknownConfigId {
                role,
                share,
                got: ciphertext.config_id,
                want: self.config.id,
            });
        }
        let crypto = |source| HpkeError::Crypto {
            role,
            share,
            source,
        };
        if ciphertext.enc.len() != ENC_LEN {
            return Err(crypto(crate::crypto::CryptoError::DecryptFailed));
        }
        self.private
            .open_with_info(info, ciphertext.enc, ciphertext.payload, aad)
            .map_err(crypto)
    }

    /// Opens an input share sealed to `receiver` and returns the VDAF input share
    /// (the payload of the PlaintextInputShare; extensions are refused).
    pub fn open_input_share<'c>(
        &self,
        receiver: Role,
        ciphertext: impl Into<HpkeCiphertextRef<'c>>,
        aad: &InputShareAad,
    ) -> Result<Vec<u8>, HpkeError> {
        let (mut plaintext, start) = self.open_input_share_in_place(receiver, ciphertext, aad)?;
        plaintext.drain(..start);
        Ok(plaintext)
    }

    /// As [`Self::open_input_share`], without moving the payload: the plaintext, and
    /// where its payload starts (it runs to the end). For a server opening tens of KB
    /// per report.
    pub fn open_input_share_in_place<'c>(
        &self,
        receiver: Role,
        ciphertext: impl Into<HpkeCiphertextRef<'c>>,
        aad: &InputShareAad,
    ) -> Result<(Vec<u8>, usize), HpkeError> {
        let names = (receiver.name(), INPUT_SHARE);
        let wire = wire_error(names);
        let info = input_share_info(aad.version, receiver);
        let aad = aad.to_bytes().map_err(wire)?;
        let plaintext = self.open_sealed(names, &info, ciphertext.into(), &aad)?;
        let start = PlaintextInputShare::payload_offset(&plaintext).map_err(wire)?;
        Ok((plaintext, start))
    }

    /// Opens `receiver`'s input share of `report` under `task` (builds the AAD).
    pub fn open_report_share(
        &self,
        task: &Task,
        receiver: Role,
        report: &Report,
    ) -> Result<Vec<u8>, HpkeError> {
        let task_binding = task.aad_task_binding();
        let aad = InputShareAad {
            version: task.version(),
            task_id: task.task_id(),
            task_binding: &task_binding,
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
