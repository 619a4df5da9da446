//! A party's public manifest: what `keygen --party` hands to the other parties so they
//! can wire it in (`keygen --import`). Public keys, key ids and the locations the others
//! reach; never a secret. Identified by its SHA-256 fingerprint, which the parties
//! compare over a channel they already trust before importing.

use crate::config::PublicKeyConfig;
use crate::crypto::PacketScheme;
use crate::store::LocationConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// The four parties of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Ingestor,
    Server0,
    Server1,
    Portal,
}

impl Party {
    pub const ALL: [Party; 4] = [
        Party::Ingestor,
        Party::Server0,
        Party::Server1,
        Party::Portal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Party::Ingestor => "ingestor",
            Party::Server0 => "server0",
            Party::Server1 => "server1",
            Party::Portal => "portal",
        }
    }

    /// Server 0 or 1, by index.
    pub fn server(index: usize) -> Party {
        if index == 0 {
            Party::Server0
        } else {
            Party::Server1
        }
    }

    /// The server index of server 0 or 1.
    pub fn server_index(self) -> Option<usize> {
        match self {
            Party::Server0 => Some(0),
            Party::Server1 => Some(1),
            _ => None,
        }
    }

    /// The manifests this party's config is made from: the ingestor and each server need
    /// every other party (the portal's for the DAP task and its query key); the portal
    /// needs the servers only.
    pub fn needs(self) -> Vec<Party> {
        match self {
            Party::Portal => vec![Party::Server0, Party::Server1],
            me => Party::ALL.into_iter().filter(|&p| p != me).collect(),
        }
    }
}

impl std::str::FromStr for Party {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Party::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("{s:?} is not a party: ingestor, server0, server1 or portal"))
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A server's packet key as the ingestor seals ENPA packets to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedPacketKey {
    pub id: String,
    pub scheme: PacketScheme,
    pub public_key: String,
}

/// Where the others reach a server: the ingestor writes its batches to `ingestion`, the
/// peer its validation batches to `peer_inbox`, and the portal reads sum parts (and
/// writes heavy-hitters queries) in `sum_parts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedLocations {
    pub ingestion: LocationConfig,
    pub peer_inbox: LocationConfig,
    pub sum_parts: LocationConfig,
}

/// A party's part of the DAP task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedDap {
    /// A server's HPKE config (the leader's or the helper's), or the collector's: as the
    /// task file writes one.
    pub hpke_config: serde_json::Value,
    /// A server's public half of its verify-key agreement key (base64url X25519).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_key_agreement: Option<String>,
    /// The portal's: the task file without the two aggregators' HPKE configs, which the
    /// servers' manifests bring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The format's version ([`FORMAT`]).
    pub divvi_manifest: u32,
    pub party: Party,
    /// The deployment's name (the first part of sum-part names); the same for all.
    pub instance: String,
    /// Keys that verify what this party signs, newest last.
    pub signing_keys: Vec<PublicKeyConfig>,
    /// A server's packet keys, newest last (the ingestor seals to the newest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packet_keys: Vec<PublishedPacketKey>,
    /// A server's locations the others reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<PublishedLocations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dap: Option<PublishedDap>,
}

impl Manifest {
    /// The text a manifest file holds (pretty JSON and a newline).
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a manifest's text; `source` names it in errors.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .with_context(|| format!("manifest {source}: not a divvi manifest"))?;
        if m.divvi_manifest != FORMAT {
            bail!(
                "manifest {source}: format {} (this divvi reads format {FORMAT})",
                m.divvi_manifest
            );
        }
        if m.signing_keys.is_empty() {
            bail!("manifest {source}: {} publishes no signing key", m.party);
        }
        if m.party.server_index().is_some() && (m.packet_keys.is_empty() || m.locations.is_none()) {
            bail!("manifest {source}: a server's manifest needs its packet keys and locations");
        }
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<(Manifest, String)> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading manifest {}", path.display()))?;
        Ok((
            Manifest::parse(&path.display().to_string(), &bytes)?,
            fingerprint(&bytes),
        ))
    }
}

/// The SHA-256 of a manifest's bytes, in hex: what the parties compare out of band.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The file name a party's manifest goes by.
pub fn file_name(party: Party) -> String {
    format!("{party}.manifest.json")
}
