//! Party configuration: one TOML file per party. Relative paths (locations and secret
//! files) are taken relative to the config file's folder. Secrets come from a file or an
//! environment variable, never from the file itself or the command line.

use crate::crypto::{
    PacketPrivateKey, PacketPublicKey, PacketScheme, SigningKey, StashKey, TrustSet, VerifyingKey,
};
use crate::store::{open_location, LocationConfig, ObjectStore};
use crate::vdaf::ServerIndex;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a secret comes from: `file = "keys/x.key"` or `env = "VAR_NAME"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

impl SecretSource {
    /// The secret's text. Errors name the source, never the content.
    pub fn read(&self, base: &Path) -> Result<String> {
        match (&self.file, &self.env) {
            (Some(file), None) => {
                let path = base.join(file);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim().to_string())
                    .with_context(|| format!("reading secret file {}", path.display()))
            }
            (None, Some(var)) => std::env::var(var)
                .map(|s| s.trim().to_string())
                .map_err(|_| anyhow!("environment variable {var} (a secret) is not set")),
            _ => bail!("a secret needs exactly one of `file` or `env`"),
        }
    }
}

/// A party's own signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    pub id: String,
    pub secret: SecretSource,
}

impl SigningKeyConfig {
    pub fn load(&self, base: &Path) -> Result<SigningKey> {
        let text = self.secret.read(base)?;
        SigningKey::from_pkcs8_base64(&self.id, &text)
            .with_context(|| format!("loading signing key {}", self.id))
    }
}

/// A trusted public signing key (base64 SPKI or raw point).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    pub id: String,
    pub public_key: String,
}

pub fn trust_set(keys: &[PublicKeyConfig], what: &str) -> Result<TrustSet> {
    let mut set = TrustSet::new();
    for k in keys {
        let key = VerifyingKey::from_base64(&k.public_key)
            .with_context(|| format!("{what} key {}", k.id))?;
        set.insert(&k.id, key);
    }
    Ok(set)
}

/// A server's packet decryption key (several may be configured, for rotation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketKeyConfig {
    pub id: String,
    pub scheme: PacketScheme,
    pub secret: SecretSource,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLocations {
    /// Ingestion batches for this server, written by the ingestor.
    pub ingestion: LocationConfig,
    /// This server's own storage: its validation batches.
    pub own: LocationConfig,
    /// Validation batches the peer writes for this server.
    pub peer_inbox: LocationConfig,
    /// The peer's inbox, where this server writes its validation batches.
    pub peer_outbox: LocationConfig,
    /// Where sum parts go (the portal's bucket).
    pub sum_parts: LocationConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTrustConfig {
    pub ingestors: Vec<PublicKeyConfig>,
    pub peer: Vec<PublicKeyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub server_index: ServerIndex,
    /// Prefix of this deployment's sum parts (`{instance}/{aggregation}/...`).
    pub instance: String,
    pub locations: ServerLocations,
    pub signing_key: SigningKeyConfig,
    pub packet_keys: Vec<PacketKeyConfig>,
    /// The server's own key for what intake keeps for aggregate (the share stash).
    /// Without it aggregate opens every packet again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stash_key: Option<SecretSource>,
    pub trust: ServerTrustConfig,
    #[serde(default)]
    pub limits: Limits,
    /// Server 1 only: whether server 0 signs a manifest of each run's batches into this
    /// server's inbox (divvi does). Set it to false beside the original ENPA aggregator
    /// as server 0, which writes none: this server then decides its runs itself, as the
    /// original does (every batch of the window both validations cover).
    #[serde(
        default = "peer_writes_manifests_default",
        skip_serializing_if = "is_true"
    )]
    pub peer_writes_manifests: bool,
}

fn peer_writes_manifests_default() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// What a server refuses, for privacy and for its own safety.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A run with fewer valid clients writes no sum part (the reason is reported).
    pub min_clients: u64,
    /// Any object larger than this is refused before it is read (checked by size first).
    pub max_object_bytes: u64,
    /// How far apart in batch time two copies of one share are still caught (intake
    /// compares a batch's shares with those of batches this close). At least the
    /// aggregate lookback plus the period: 72 h + 1 d by default.
    pub replay_horizon_hours: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_clients: 100,
            max_object_bytes: 64 << 30,
            replay_horizon_hours: 96,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestorServerConfig {
    pub server_index: ServerIndex,
    pub ingestion: LocationConfig,
    pub packet_key_id: String,
    pub packet_scheme: PacketScheme,
    pub packet_public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestorConfig {
    pub signing_key: SigningKeyConfig,
    pub servers: Vec<IngestorServerConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalServerConfig {
    pub server_index: ServerIndex,
    pub instance: String,
    pub sum_parts: LocationConfig,
    pub signing_keys: Vec<PublicKeyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    pub servers: Vec<PortalServerConfig>,
    /// Where results (JSON and CSV) are written.
    pub results: LocationConfig,
}

/// Reads a TOML config; returns it with the folder relative paths are taken from.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(T, PathBuf)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let config =
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    Ok((config, base))
}

fn location(text: &LocationConfig, base: &Path, what: &str) -> Result<Box<dyn ObjectStore>> {
    open_location(text, base).map_err(|e| anyhow!("{what} location: {e}"))
}

/// A server with its stores opened and its keys loaded.
pub struct Server {
    pub index: ServerIndex,
    pub instance: String,
    pub ingestion: Box<dyn ObjectStore>,
    pub own: Box<dyn ObjectStore>,
    pub peer_inbox: Box<dyn ObjectStore>,
    pub peer_outbox: Box<dyn ObjectStore>,
    pub sum_parts: Box<dyn ObjectStore>,
    pub signing_key: SigningKey,
    /// Packet keys by id, in configured order (keyless packets try each in turn).
    pub packet_keys: Vec<(String, PacketPrivateKey)>,
    pub ingestor_trust: TrustSet,
    pub peer_trust: TrustSet,
    /// This server's own public key, to verify its own validation batches.
    pub own_trust: TrustSet,
    pub stash_key: Option<StashKey>,
    pub limits: Limits,
    /// Whether this server decides which batches its runs sum: server 0 always; server 1
    /// only beside a server 0 that writes no manifests (the original ENPA aggregator).
    pub decides_runs: bool,
}

impl Server {
    /// Where this server's run decisions (manifests) are, and whose key signs them.
    pub fn decisions(&self) -> (&dyn ObjectStore, &TrustSet) {
        if self.decides_runs {
            (self.own.as_ref(), &self.own_trust)
        } else {
            (self.peer_inbox.as_ref(), &self.peer_trust)
        }
    }
}

impl Server {
    /// The same server with every location counting its bytes into `counters`.
    pub fn metered(self, counters: &std::sync::Arc<crate::store::ByteCounters>) -> Self {
        use crate::store::Metered;
        Server {
            ingestion: Metered::wrap(self.ingestion, counters),
            own: Metered::wrap(self.own, counters),
            peer_inbox: Metered::wrap(self.peer_inbox, counters),
            peer_outbox: Metered::wrap(self.peer_outbox, counters),
            sum_parts: Metered::wrap(self.sum_parts, counters),
            ..self
        }
    }

    /// The locations this server's stages write to.
    pub fn written_locations(&self) -> [&dyn ObjectStore; 3] {
        [
            self.own.as_ref(),
            self.peer_outbox.as_ref(),
            self.sum_parts.as_ref(),
        ]
    }

    pub fn load(path: &Path) -> Result<Self> {
        let (c, base): (ServerConfig, _) = read_config(path)?;
        Self::from_config(&c, &base)
            .with_context(|| format!("loading server config {}", path.display()))
    }

    pub fn from_config(c: &ServerConfig, base: &Path) -> Result<Self> {
        crate::batch::validate_name("instance", &c.instance).map_err(|e| anyhow!(e))?;
        let signing_key = c.signing_key.load(base)?;
        let mut own_trust = TrustSet::new();
        own_trust.insert(signing_key.key_id(), signing_key.verifying_key());
        if c.packet_keys.is_empty() {
            bail!("no packet_keys configured");
        }
        if c.server_index == ServerIndex::Zero && !c.peer_writes_manifests {
            bail!(
                "peer_writes_manifests = false is for server 1 only: server 0 writes the manifests"
            );
        }
        let mut packet_keys = Vec::new();
        for k in &c.packet_keys {
            let text = k.secret.read(base)?;
            let key = PacketPrivateKey::from_text(k.scheme, &text)
                .with_context(|| format!("loading packet key {}", k.id))?;
            packet_keys.push((k.id.clone(), key));
        }
        Ok(Server {
            index: c.server_index,
            instance: c.instance.clone(),
            ingestion: location(&c.locations.ingestion, base, "ingestion")?,
            own: location(&c.locations.own, base, "own")?,
            peer_inbox: location(&c.locations.peer_inbox, base, "peer_inbox")?,
            peer_outbox: location(&c.locations.peer_outbox, base, "peer_outbox")?,
            sum_parts: location(&c.locations.sum_parts, base, "sum_parts")?,
            signing_key,
            packet_keys,
            ingestor_trust: trust_set(&c.trust.ingestors, "ingestor")?,
            peer_trust: trust_set(&c.trust.peer, "peer")?,
            own_trust,
            stash_key: match &c.stash_key {
                Some(source) => {
                    Some(StashKey::from_text(&source.read(base)?).context("loading stash key")?)
                }
                None => None,
            },
            limits: c.limits,
            decides_runs: c.server_index == ServerIndex::Zero || !c.peer_writes_manifests,
        })
    }
}

/// The ingestor's view of one server: where its batches go and how packets are sealed.
pub struct IngestTarget {
    pub store: Box<dyn ObjectStore>,
    pub key_id: String,
    pub key: PacketPublicKey,
}

pub struct Ingestor {
    pub signing_key: SigningKey,
    /// Indexed by server: [server 0, server 1].
    pub targets: [IngestTarget; 2],
}

impl Ingestor {
    pub fn load(path: &Path) -> Result<Self> {
        let (c, base): (IngestorConfig, _) = read_config(path)?;
        Self::from_config(&c, &base)
            .with_context(|| format!("loading ingestor config {}", path.display()))
    }

    pub fn from_config(c: &IngestorConfig, base: &Path) -> Result<Self> {
        let target = |index: ServerIndex| -> Result<IngestTarget> {
            let mut found = c.servers.iter().filter(|s| s.server_index == index);
            let s = found
                .next()
                .ok_or_else(|| anyhow!("no [[servers]] entry with server_index = {index}"))?;
            if found.next().is_some() {
                bail!("two [[servers]] entries with server_index = {index}");
            }
            Ok(IngestTarget {
                store: location(&s.ingestion, base, "ingestion")?,
                key_id: s.packet_key_id.clone(),
                key: PacketPublicKey::from_text(s.packet_scheme, &s.packet_public_key)
                    .with_context(|| format!("packet key {}", s.packet_key_id))?,
            })
        };
        Ok(Ingestor {
            signing_key: c.signing_key.load(base)?,
            targets: [target(ServerIndex::Zero)?, target(ServerIndex::One)?],
        })
    }
}

pub struct PortalServer {
    pub instance: String,
    pub sum_parts: Box<dyn ObjectStore>,
    pub trust: TrustSet,
}

pub struct Portal {
    /// Indexed by server.
    pub servers: [PortalServer; 2],
    pub results: Box<dyn ObjectStore>,
}

impl Portal {
    pub fn load(path: &Path) -> Result<Self> {
        let (c, base): (PortalConfig, _) = read_config(path)?;
        Self::from_config(&c, &base)
            .with_context(|| format!("loading portal config {}", path.display()))
    }

    pub fn from_config(c: &PortalConfig, base: &Path) -> Result<Self> {
        let server = |index: ServerIndex| -> Result<PortalServer> {
            let s = c
                .servers
                .iter()
                .find(|s| s.server_index == index)
                .ok_or_else(|| anyhow!("no [[servers]] entry with server_index = {index}"))?;
            crate::batch::validate_name("instance", &s.instance).map_err(|e| anyhow!(e))?;
            Ok(PortalServer {
                instance: s.instance.clone(),
                sum_parts: location(&s.sum_parts, base, "sum_parts")?,
                trust: trust_set(&s.signing_keys, "server signing")?,
            })
        };
        Ok(Portal {
            servers: [server(ServerIndex::Zero)?, server(ServerIndex::One)?],
            results: location(&c.results, base, "results")?,
        })
    }
}
