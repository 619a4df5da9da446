//! Party configuration: one TOML file per party. Relative paths (locations and secret
//! files) are taken relative to the config file's folder. Secrets come from a file or an
//! environment variable, never from the file itself or the command line.

use crate::crypto::{
    PacketPrivateKey, PacketPublicKey, PacketScheme, SigningKey, StashKey, TrustSet, VerifyingKey,
};
use crate::ids::ServerIndex;
use crate::store::{open_location, LocationConfig, ObjectStore};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod checks;
pub mod dap;
mod parse_error;

pub use checks::KeyFileCheck;
use checks::{
    check_key_file_mode, looks_like_key_material, refuse_duplicate_ids, refuse_key_in_two_roles,
    refuse_mixed_up_portal_servers, refuse_shared_ingestion, refuse_shared_server_locations,
    server_field, the_server_entry,
};

/// Where a secret comes from: `file = "keys/x.key"` or `env = "VAR_NAME"`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecretSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// A secret's table as written; a string in its place is refused by `SecretSource`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretSourceTable {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    env: Option<String>,
}

/// Why a secret written as a string is refused (the string is likely the key itself).
const INLINE_SECRET: &str =
    "a secret must be { file = ... } or { env = ... }; never inline (the text is not shown)";

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretSourceVisitor)
    }
}

/// Takes a secret's table, and refuses a string without quoting it.
struct SecretSourceVisitor;

impl<'de> serde::de::Visitor<'de> for SecretSourceVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table { file = ... } or { env = ... }")
    }

    fn visit_str<E: serde::de::Error>(self, _inline: &str) -> Result<SecretSource, E> {
        Err(E::custom(INLINE_SECRET))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
        let table =
            SecretSourceTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(SecretSource {
            file: table.file,
            env: table.env,
        })
    }
}

impl SecretSource {
    /// The secret's text. Errors name the source, never the content; `check` says what a
    /// key file open to group or others draws.
    pub fn read(&self, base: &Path, check: KeyFileCheck) -> Result<String> {
        match (&self.file, &self.env) {
            (Some(file), None) => read_secret_file(base, file, check),
            (None, Some(var)) if looks_like_key_material(var) => bail!(
                "the secret's variable name looks like key material (not shown); give the \
                 name of an environment variable that holds the key"
            ),
            (None, Some(var)) => std::env::var(var)
                .map(|s| s.trim().to_string())
                .map_err(|_| anyhow!("environment variable {var} (a secret) is not set")),
            _ => bail!("a secret needs exactly one of `file` or `env`"),
        }
    }
}

/// Reads a secret file, after refusing a name that is a key pasted in its place (without
/// showing it) and checking the file's mode.
fn read_secret_file(base: &Path, file: &Path, check: KeyFileCheck) -> Result<String> {
    let path = base.join(file);
    if !path.exists() && looks_like_key_material(&file.to_string_lossy()) {
        bail!(
            "the secret's file name looks like key material (not shown), and no such file \
             exists; put the key in a file and give its path"
        );
    }
    check_key_file_mode(&path, check)?;
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .with_context(|| format!("reading secret file {}", path.display()))
}

/// A party's own signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    pub id: String,
    pub secret: SecretSource,
}

impl SigningKeyConfig {
    pub fn load(&self, base: &Path, check: KeyFileCheck) -> Result<SigningKey> {
        let text = self
            .secret
            .read(base, check)
            .context("signing_key.secret")?;
        SigningKey::from_pkcs8_base64(&self.id, &text)
            .with_context(|| format!("loading signing key {}", self.id))
    }
}

/// A trusted public signing key (base64 SPKI or raw point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    pub id: String,
    pub public_key: String,
    /// The end of the key's trust (RFC 3339), as its party announced when it moved to a
    /// new key: after it, what the key signs is refused, with or without a new import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// The trusted keys of the config field `field`; two with one id are refused.
pub fn trust_set(keys: &[PublicKeyConfig], field: &str) -> Result<TrustSet> {
    refuse_duplicate_ids(field, keys.iter().map(|k| k.id.as_str()))?;
    let mut set = TrustSet::new();
    let now = chrono::Utc::now();
    for k in keys {
        let key = VerifyingKey::from_base64(&k.public_key)
            .with_context(|| format!("{field} key {}", k.id))?;
        match &k.not_after {
            Some(text) => {
                let end = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
                    anyhow!(
                        "{field} key {}: not_after {text:?} is not an RFC 3339 time: {e}",
                        k.id
                    )
                })?;
                if now >= end {
                    set.insert_expired(&k.id, text);
                } else {
                    set.insert(&k.id, key);
                }
            }
            None => set.insert(&k.id, key),
        }
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
    /// The portal's keys: it signs the heavy-hitters pass queries (Poplar1 tasks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portal: Vec<PublicKeyConfig>,
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
    /// The DAP-18 task this server aggregates, with its own HPKE key and the verify key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dap: Option<dap::ServerDapConfig>,
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
    /// The DAP-18 task's public file (the ingestor holds none of its secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dap: Option<dap::IngestorDapConfig>,
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
    /// Signs the heavy-hitters pass queries the portal writes to the servers (Poplar1
    /// tasks); not needed otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKeyConfig>,
    /// The DAP-18 task whose results this portal collects, with the collector's HPKE key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dap: Option<dap::PortalDapConfig>,
}

/// Reads a TOML config; returns it with the folder relative paths are taken from. A parse
/// error names the file, line, column and field, never the text (it may hold a key).
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(T, PathBuf)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let config =
        toml::from_str(&text).map_err(|e| anyhow!(parse_error::describe(path, &text, e)))?;
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

/// Opens the location of the config field `field`; errors name the field.
fn location(text: &LocationConfig, base: &Path, field: &str) -> Result<Box<dyn ObjectStore>> {
    open_location(text, base).map_err(|e| anyhow!("{field}: {e}"))
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
    /// The portal's keys, to verify its heavy-hitters pass queries.
    pub portal_trust: TrustSet,
    pub stash_key: Option<StashKey>,
    pub limits: Limits,
    /// Whether this server decides which batches its runs sum: server 0 always; server 1
    /// only beside a server 0 that writes no manifests (the original ENPA aggregator).
    pub decides_runs: bool,
    /// The DAP-18 task, when the config has a `[dap]` section.
    pub dap: Option<dap::ServerDap>,
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
        check_server_config(c, base)?;
        let signing_key = c.signing_key.load(base, KeyFileCheck::Refuse)?;
        let ingestor_trust = trust_set(&c.trust.ingestors, "trust.ingestors")?;
        let peer_trust = trust_set(&c.trust.peer, "trust.peer")?;
        let portal_trust = trust_set(&c.trust.portal, "trust.portal")?;
        refuse_key_in_two_roles(
            &c.trust.ingestors,
            &c.trust.peer,
            &signing_key.verifying_key(),
        )?;
        let mut own_trust = TrustSet::new();
        own_trust.insert(signing_key.key_id(), signing_key.verifying_key());
        let mut packet_keys = Vec::new();
        for (n, k) in c.packet_keys.iter().enumerate() {
            let text = k
                .secret
                .read(base, KeyFileCheck::Refuse)
                .with_context(|| format!("packet_keys[{n}].secret"))?;
            let key = PacketPrivateKey::from_text(k.scheme, &text)
                .with_context(|| format!("loading packet key {}", k.id))?;
            packet_keys.push((k.id.clone(), key));
        }
        Ok(Server {
            index: c.server_index,
            instance: c.instance.clone(),
            ingestion: location(&c.locations.ingestion, base, "locations.ingestion")?,
            own: location(&c.locations.own, base, "locations.own")?,
            peer_inbox: location(&c.locations.peer_inbox, base, "locations.peer_inbox")?,
            peer_outbox: location(&c.locations.peer_outbox, base, "locations.peer_outbox")?,
            sum_parts: location(&c.locations.sum_parts, base, "locations.sum_parts")?,
            signing_key,
            packet_keys,
            ingestor_trust,
            peer_trust,
            own_trust,
            portal_trust,
            stash_key: match &c.stash_key {
                Some(source) => Some(load_stash_key(source, base)?),
                None => None,
            },
            limits: c.limits,
            decides_runs: c.server_index == ServerIndex::Zero || !c.peer_writes_manifests,
            dap: match &c.dap {
                Some(d) => Some(d.load(base, c.server_index == ServerIndex::Zero)?),
                None => None,
            },
        })
    }
}

/// What a server config is refused for before any key or location is touched.
fn check_server_config(c: &ServerConfig, base: &Path) -> Result<()> {
    crate::batch::validate_name("instance", &c.instance).map_err(|e| anyhow!(e))?;
    if c.packet_keys.is_empty() {
        bail!("no packet_keys configured");
    }
    if c.server_index == ServerIndex::Zero && !c.peer_writes_manifests {
        bail!("peer_writes_manifests = false is for server 1 only: server 0 writes the manifests");
    }
    refuse_duplicate_ids("packet_keys", c.packet_keys.iter().map(|k| k.id.as_str()))?;
    refuse_shared_server_locations(&c.locations, base)
}

fn load_stash_key(source: &SecretSource, base: &Path) -> Result<StashKey> {
    let text = source
        .read(base, KeyFileCheck::Refuse)
        .context("stash_key")?;
    StashKey::from_text(&text).context("loading stash key")
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
    /// The DAP-18 task (public), when the config has a `[dap]` section.
    pub dap: Option<crate::dap::Task>,
}

impl Ingestor {
    pub fn load(path: &Path) -> Result<Self> {
        let (c, base): (IngestorConfig, _) = read_config(path)?;
        Self::from_config(&c, &base)
            .with_context(|| format!("loading ingestor config {}", path.display()))
    }

    pub fn from_config(c: &IngestorConfig, base: &Path) -> Result<Self> {
        let entry = |index| the_server_entry(&c.servers, index, |s| s.server_index);
        let servers = [entry(ServerIndex::Zero)?, entry(ServerIndex::One)?];
        refuse_shared_ingestion(servers, base)?;
        let target = |s: &IngestorServerConfig| -> Result<IngestTarget> {
            Ok(IngestTarget {
                store: location(
                    &s.ingestion,
                    base,
                    &server_field(s.server_index, "ingestion"),
                )?,
                key_id: s.packet_key_id.clone(),
                key: PacketPublicKey::from_text(s.packet_scheme, &s.packet_public_key)
                    .with_context(|| format!("packet key {}", s.packet_key_id))?,
            })
        };
        Ok(Ingestor {
            signing_key: c.signing_key.load(base, KeyFileCheck::Warn)?,
            targets: [target(servers[0])?, target(servers[1])?],
            dap: c.dap.as_ref().map(|d| d.load(base)).transpose()?,
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
    /// Signs heavy-hitters pass queries, when configured.
    pub signing_key: Option<SigningKey>,
    /// The DAP-18 task and the collector's key, when the config has a `[dap]` section.
    pub dap: Option<dap::CollectorDap>,
}

impl Portal {
    pub fn load(path: &Path) -> Result<Self> {
        let (c, base): (PortalConfig, _) = read_config(path)?;
        Self::from_config(&c, &base)
            .with_context(|| format!("loading portal config {}", path.display()))
    }

    pub fn from_config(c: &PortalConfig, base: &Path) -> Result<Self> {
        let entry = |index| the_server_entry(&c.servers, index, |s| s.server_index);
        let entries = [entry(ServerIndex::Zero)?, entry(ServerIndex::One)?];
        let server = |s: &PortalServerConfig| -> Result<PortalServer> {
            crate::batch::validate_name("instance", &s.instance).map_err(|e| anyhow!(e))?;
            let field = |name: &str| server_field(s.server_index, name);
            Ok(PortalServer {
                instance: s.instance.clone(),
                sum_parts: location(&s.sum_parts, base, &field("sum_parts"))?,
                trust: trust_set(&s.signing_keys, &field("signing_keys"))?,
            })
        };
        let servers = [server(entries[0])?, server(entries[1])?];
        refuse_mixed_up_portal_servers(entries, base)?;
        Ok(Portal {
            servers,
            results: location(&c.results, base, "results")?,
            signing_key: c
                .signing_key
                .as_ref()
                .map(|k| k.load(base, KeyFileCheck::Refuse))
                .transpose()?,
            dap: c.dap.as_ref().map(|d| d.load(base)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, not_after: Option<&str>) -> (PublicKeyConfig, SigningKey) {
        let (signing, _) = SigningKey::generate(id).expect("key");
        let config = PublicKeyConfig {
            id: id.into(),
            public_key: signing.verifying_key().to_base64(),
            not_after: not_after.map(str::to_string),
        };
        (config, signing)
    }

    #[test]
    fn a_trusted_key_past_its_not_after_is_refused_naming_when_its_trust_ended() {
        let (ended, old) = key("old", Some("2020-01-01T00:00:00Z"));
        let (current, new) = key("new", Some("2999-01-01T00:00:00Z"));
        let trust = trust_set(&[ended, current], "trust.ingestors").expect("trust");
        trust
            .verify("new", b"m", &new.sign(b"m").expect("sign"))
            .expect("still trusted");
        let e = trust
            .verify("old", b"m", &old.sign(b"m").expect("sign"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"old\"") && e.contains("2020-01-01T00:00:00Z"),
            "{e}"
        );

        let (bad, _) = key("odd", Some("next tuesday"));
        let e = format!("{:#}", trust_set(&[bad], "trust.peer").unwrap_err());
        assert!(
            e.contains("trust.peer key odd") && e.contains("RFC 3339"),
            "{e}"
        );
    }
}
