//! Keys per party: `keygen --party P` makes only P's secrets, in P's own folder, and a
//! public manifest to hand to the others; `keygen --import MANIFEST` wires another party
//! in. P's config is written once every manifest it needs is imported, and rewritten at
//! each later import (a peer's new key, for rotation).
//!
//! The folder of party P:
//! - `keys/`: P's secrets (owner-only files), and for a server the verify key it agrees
//!   on with its peer;
//! - `P.manifest.json`: P's manifest (public);
//! - `party.toml`: what keygen decided for P (instance, own locations, limits); public;
//! - `peers/Q.manifest.json`: the manifests imported, as they were received;
//! - `P.toml` and, for a DAP task, `task.json`: once complete.
//!
//! The DAP task comes together from the manifests: the portal's brings the task's
//! parameters and the collector's HPKE config, each server's its own HPKE config. The two
//! servers never send the verify key: each publishes an X25519 key and both derive the
//! same verify key from their agreement and the task id.

use super::manifest::{
    self, Manifest, Party, PublishedDap, PublishedLocations, PublishedPacketKey,
};
use super::{write_config, write_secret, DapTaskOptions, Layout};
use crate::config::dap::{IngestorDapConfig, PortalDapConfig, ServerDapConfig};
use crate::config::*;
use crate::crypto::{PacketPrivateKey, PacketScheme, SigningKey, StashKey};
use crate::dap::secrets::hpke_private_key_text;
use crate::dap::{HpkeKeypair, Task, TaskId, VerifyKey, VerifyKeyAgreement};
use crate::ids::ServerIndex;
use crate::store::LocationConfig;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What keygen decided for a party, kept in its folder for the imports that follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Draft {
    pub(super) party: Party,
    instance: String,
    /// The signing key this party signs with, of those its manifest lists (the first
    /// until `keygen --use-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) signing_key: Option<String>,
    /// Keys retired so far (their ids are never given again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) retired_keys: Vec<String>,
    /// A server's limits (min_clients and the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    /// A server's own locations (ingestion, own, peer_inbox, sum_parts); the portal's
    /// results.
    locations: BTreeMap<String, LocationConfig>,
    /// Reach the others' S3 locations with this party's own AWS profile
    /// (`ingestor`, `server0-to-server1`, `portal`).
    #[serde(default)]
    profiles: bool,
}

const DRAFT: &str = "party.toml";
const PEERS: &str = "peers";
const TASK: &str = "task.json";
const VERIFY_KEY: &str = "keys/verify.key";

/// What `keygen --party` was asked.
pub struct PartyOptions<'a> {
    pub party: Party,
    pub scheme: PacketScheme,
    pub instance: &'a str,
    pub layout: &'a Layout,
    pub limits: Limits,
    /// The portal's: the DAP task it collects (its id and parameters).
    pub dap: Option<&'a DapTaskOptions>,
}

/// What a party's folder holds after keygen or an import.
#[derive(Debug, Clone, Serialize)]
pub struct PartyState {
    pub party: Party,
    pub dir: PathBuf,
    pub manifest: PathBuf,
    /// The manifest's SHA-256, for the others to compare before they import it.
    pub fingerprint: String,
    /// The config, once every manifest it needs is imported.
    pub config: Option<PathBuf>,
    /// The manifests still to import.
    pub missing: Vec<Party>,
    /// The DAP task, once assembled.
    pub task: Option<PathBuf>,
}

pub(super) fn secret(name: &str) -> SecretSource {
    SecretSource {
        file: Some(PathBuf::from("keys").join(format!("{name}.key"))),
        env: None,
    }
}

pub(super) fn secret_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("keys").join(format!("{name}.key"))
}

/// HPKE config ids: as `keygen` gives them, so a ciphertext's id shows whose key it is.
fn hpke_config_id(party: Party) -> u8 {
    match party {
        Party::Server0 => super::LEADER_CONFIG_ID,
        Party::Server1 => super::HELPER_CONFIG_ID,
        _ => super::COLLECTOR_CONFIG_ID,
    }
}

/// Makes party `o.party`'s secrets and manifest in `dir` (new or empty).
pub fn keygen_party(dir: &Path, o: &PartyOptions) -> Result<PartyState> {
    crate::batch::validate_name("instance", o.instance).map_err(|e| anyhow!(e))?;
    if o.dap.is_some() && o.party != Party::Portal {
        bail!("the DAP task is the portal's to define (keygen --party portal --vdaf ...); the others take it from the portal's manifest");
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; keygen writes into a fresh folder",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("creating {}", dir.join("keys").display()))?;
    let me = o.party.name();
    let signing_id = format!("{me}-signing");
    let (signing, pkcs8) = SigningKey::generate(&signing_id)?;
    write_secret(&secret_path(dir, &signing_id), &pkcs8)?;
    let mut manifest = Manifest {
        divvi_manifest: manifest::FORMAT,
        party: o.party,
        instance: o.instance.to_string(),
        signing_keys: vec![PublicKeyConfig {
            id: signing_id,
            public_key: signing.verifying_key().to_base64(),
            not_after: None,
        }],
        packet_keys: Vec::new(),
        locations: None,
        dap: None,
    };
    let mut draft = Draft {
        party: o.party,
        instance: o.instance.to_string(),
        signing_key: None,
        retired_keys: Vec::new(),
        limits: None,
        locations: BTreeMap::new(),
        profiles: matches!(o.layout, Layout::S3(s3) if s3.profiles),
    };
    if o.party.server_index().is_some() {
        let packet_id = format!("{me}-packet");
        let (packet, text) = PacketPrivateKey::generate(o.scheme)?;
        write_secret(&secret_path(dir, &packet_id), &text)?;
        manifest.packet_keys.push(PublishedPacketKey {
            id: packet_id,
            scheme: o.scheme,
            public_key: packet.public_key().to_text(),
        });
        write_secret(
            &secret_path(dir, &format!("{me}-stash")),
            &StashKey::generate()?.1,
        )?;
        let hpke = HpkeKeypair::generate(hpke_config_id(o.party))?;
        write_secret(
            &secret_path(dir, &format!("{me}-hpke")),
            &hpke_private_key_text(&hpke),
        )?;
        let agreement = VerifyKeyAgreement::generate()?;
        write_secret(
            &secret_path(dir, &format!("{me}-agreement")),
            &agreement.to_text()?,
        )?;
        manifest.dap = Some(PublishedDap {
            hpke_config: hpke.config().to_json(),
            verify_key_agreement: Some(agreement.public_text()?),
            task: None,
        });
        for name in ["ingestion", "own", "peer_inbox", "sum_parts"] {
            let bucket = format!("{me}-{}", name.replace('_', "-"));
            draft
                .locations
                .insert(name.to_string(), o.layout.location(&bucket, me));
        }
        let published = |name: &str| published_location(dir, &draft.locations[name]);
        manifest.locations = Some(PublishedLocations {
            ingestion: published("ingestion")?,
            peer_inbox: published("peer_inbox")?,
            sum_parts: published("sum_parts")?,
        });
        draft.limits = Some(o.limits);
    }
    if o.party == Party::Portal {
        let collector = HpkeKeypair::generate(super::COLLECTOR_CONFIG_ID)?;
        write_secret(
            &secret_path(dir, "collector-hpke"),
            &hpke_private_key_text(&collector),
        )?;
        manifest.dap = Some(PublishedDap {
            hpke_config: collector.config().to_json(),
            verify_key_agreement: None,
            task: o.dap.map(|d| task_template(d, &collector)).transpose()?,
        });
        draft
            .locations
            .insert("results".into(), o.layout.location("portal-results", me));
    }
    std::fs::create_dir_all(dir.join(PEERS))?;
    save_draft(dir, &draft)?;
    save_own_manifest(dir, &manifest)?;
    state(dir)
}

pub(super) fn save_draft(dir: &Path, draft: &Draft) -> Result<()> {
    let text = toml::to_string_pretty(draft)?;
    let header = format!(
        "# What `divvi keygen --party` decided for {}; `keygen --import` reads it.\n\n",
        draft.party
    );
    crate::files::write_atomically(&dir.join(DRAFT), format!("{header}{text}").as_bytes())
}

pub(super) fn save_own_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    crate::files::write_atomically(
        &dir.join(manifest::file_name(manifest.party)),
        manifest.to_text().as_bytes(),
    )
}

/// A location as another party reaches it: a local folder by its absolute path (the
/// others' configs live elsewhere), an S3 bucket without this party's AWS profile.
fn published_location(dir: &Path, location: &LocationConfig) -> Result<LocationConfig> {
    Ok(match location {
        LocationConfig::Url(path) if !path.contains("://") => {
            let dir = std::path::absolute(dir)
                .with_context(|| format!("the absolute path of {}", dir.display()))?;
            LocationConfig::Url(dir.join(path).display().to_string())
        }
        LocationConfig::Detailed(s) => {
            let mut s = s.clone();
            s.profile = None;
            LocationConfig::Detailed(s)
        }
        other => other.clone(),
    })
}

/// A published location as `who` reaches it: with `who`'s own AWS profile if this party
/// uses per-party profiles.
fn reached_by(location: &LocationConfig, who: &str, profiles: bool) -> LocationConfig {
    match location {
        LocationConfig::Detailed(s) if profiles => {
            let mut s = s.clone();
            s.profile = Some(who.to_string());
            LocationConfig::Detailed(s)
        }
        other => other.clone(),
    }
}

/// The portal's task parameters as a task file without the aggregators' HPKE configs.
/// Built through [`Task`] (with the collector's config standing in for the two that
/// come later) so every parameter is checked now, then those two are taken out.
fn task_template(o: &DapTaskOptions, collector: &HpkeKeypair) -> Result<serde_json::Value> {
    let c = collector.config();
    let task = o.task(TaskId::random()?, [c, c, c])?;
    let mut value: serde_json::Value = serde_json::from_str(&task.to_json())?;
    if let Some(fields) = value.as_object_mut() {
        fields.remove("leader_hpke_config");
        fields.remove("helper_hpke_config");
    }
    Ok(value)
}

/// Imports a manifest into the folder of a party made by `keygen --party`: checks it
/// (its fingerprint against `expected`, when given), keeps it under `peers/`, and writes
/// the party's config if nothing else is missing.
pub fn import(
    dir: &Path,
    source: &str,
    bytes: &[u8],
    expected: Option<&str>,
) -> Result<PartyState> {
    let draft = load_draft(dir)?;
    let theirs = Manifest::parse(source, bytes)?;
    let fingerprint = manifest::fingerprint(bytes);
    if let Some(expected) = expected {
        if !expected.trim().eq_ignore_ascii_case(&fingerprint) {
            bail!(
                "manifest {source}: its SHA-256 is {fingerprint}, not the {expected} you were given; not imported"
            );
        }
    }
    if theirs.party == draft.party {
        bail!(
            "manifest {source} is {}'s own; import the others' manifests",
            theirs.party
        );
    }
    if theirs.instance != draft.instance {
        bail!(
            "manifest {source}: {} is of instance {:?}, this party of {:?}",
            theirs.party,
            theirs.instance,
            draft.instance
        );
    }
    let path = dir.join(PEERS).join(manifest::file_name(theirs.party));
    crate::files::write_atomically(&path, bytes)?;
    render(dir, &draft)?;
    state(dir)
}

pub(super) fn load_draft(dir: &Path) -> Result<Draft> {
    let path = dir.join(DRAFT);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: --import goes into a folder `keygen --party` made",
            path.display()
        )
    })?;
    toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
}

pub(super) fn own_manifest(dir: &Path, party: Party) -> Result<Manifest> {
    Ok(Manifest::load(&dir.join(manifest::file_name(party)))?.0)
}

/// The manifests imported so far, by party.
fn peers(dir: &Path) -> Result<BTreeMap<Party, Manifest>> {
    let mut found = BTreeMap::new();
    for party in Party::ALL {
        let path = dir.join(PEERS).join(manifest::file_name(party));
        if path.exists() {
            found.insert(party, Manifest::load(&path)?.0);
        }
    }
    Ok(found)
}

/// Where a party's folder stands.
pub fn state(dir: &Path) -> Result<PartyState> {
    let draft = load_draft(dir)?;
    let manifest_path = dir.join(manifest::file_name(draft.party));
    let bytes = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let have = peers(dir)?;
    let config = dir.join(format!("{}.toml", draft.party));
    Ok(PartyState {
        party: draft.party,
        dir: dir.to_path_buf(),
        manifest: manifest_path,
        fingerprint: manifest::fingerprint(&bytes),
        missing: draft
            .party
            .needs()
            .into_iter()
            .filter(|p| !have.contains_key(p))
            .collect(),
        config: config.exists().then_some(config),
        task: dir.join(TASK).exists().then(|| dir.join(TASK)),
    })
}

/// Writes the party's config (and the task, and a server's verify key) once every
/// manifest it needs is there.
pub(super) fn render(dir: &Path, draft: &Draft) -> Result<()> {
    let have = peers(dir)?;
    if draft.party.needs().iter().any(|p| !have.contains_key(p)) {
        return Ok(());
    }
    let mine = own_manifest(dir, draft.party)?;
    let task = assemble_task(dir, &mine, &have)?;
    let path = dir.join(format!("{}.toml", draft.party));
    let signing = own_signing_key(draft, &mine)?;
    match draft.party {
        Party::Ingestor => write_config(
            &path,
            "ingestor",
            &ingestor_config(draft, signing, &have, &task)?,
        ),
        Party::Portal => write_config(
            &path,
            "portal",
            &portal_config(draft, signing, &have, &task)?,
        ),
        server => write_config(
            &path,
            &format!("{server}"),
            &server_config(dir, draft, (signing, &mine), &have, &task)?,
        ),
    }
}

/// The DAP task, if the portal defines one: its template with the servers' HPKE configs,
/// written to `task.json` (a task already there must be the same: the task's keys do not
/// change under its clients).
fn assemble_task(
    dir: &Path,
    mine: &Manifest,
    have: &BTreeMap<Party, Manifest>,
) -> Result<Option<Task>> {
    let manifest_of = |p: Party| {
        if p == mine.party {
            Some(mine)
        } else {
            have.get(&p)
        }
    };
    let dap_of = |p: Party| manifest_of(p).and_then(|m| m.dap.as_ref());
    let Some(template) = dap_of(Party::Portal).and_then(|d| d.task.clone()) else {
        return Ok(None);
    };
    let mut fields = template
        .as_object()
        .cloned()
        .ok_or_else(|| anyhow!("the portal's manifest: its task is not a JSON object"))?;
    for (server, field) in [
        (Party::Server0, "leader_hpke_config"),
        (Party::Server1, "helper_hpke_config"),
    ] {
        let config = dap_of(server)
            .map(|d| d.hpke_config.clone())
            .ok_or_else(|| {
                anyhow!(
                    "{server}'s manifest has no DAP HPKE config, and the portal's defines a task"
                )
            })?;
        fields.insert(field.to_string(), config);
    }
    let text = serde_json::Value::Object(fields).to_string();
    let task = Task::from_json(&text).context("the task the manifests make")?;
    let path = dir.join(TASK);
    match std::fs::read_to_string(&path) {
        Ok(existing) if Task::from_json(&existing).ok().as_ref() != Some(&task) => bail!(
            "{} exists and differs from the task the manifests now make: a task's HPKE configs and parameters do not change under its clients",
            path.display()
        ),
        Ok(_) => {}
        Err(_) => crate::files::write_atomically(&path, task.to_json().as_bytes())?,
    }
    Ok(Some(task))
}

/// Server `n`'s imported manifest and the locations it publishes.
fn server_manifest(
    have: &BTreeMap<Party, Manifest>,
    n: usize,
) -> Result<(&Manifest, &PublishedLocations)> {
    let party = Party::server(n);
    let m = have
        .get(&party)
        .ok_or_else(|| anyhow!("{party}'s manifest is not imported"))?;
    let locations = m
        .locations
        .as_ref()
        .ok_or_else(|| anyhow!("{party}'s manifest publishes no locations"))?;
    Ok((m, locations))
}

fn task_file(task: &Option<Task>) -> Option<PathBuf> {
    task.as_ref().map(|_| PathBuf::from(TASK))
}

fn ingestor_config(
    draft: &Draft,
    signing_key: SigningKeyConfig,
    have: &BTreeMap<Party, Manifest>,
    task: &Option<Task>,
) -> Result<IngestorConfig> {
    let servers = (0..2)
        .map(|n| {
            let (m, locations) = server_manifest(have, n)?;
            // The newest packet key: a key published beside the old one is the one to use.
            let key = m
                .packet_keys
                .last()
                .ok_or_else(|| anyhow!("{}: no packet key", m.party))?;
            Ok(IngestorServerConfig {
                server_index: server_index(n),
                ingestion: reached_by(&locations.ingestion, "ingestor", draft.profiles),
                packet_key_id: key.id.clone(),
                packet_scheme: key.scheme,
                packet_public_key: key.public_key.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(IngestorConfig {
        signing_key,
        servers,
        dap: task_file(task).map(|task| IngestorDapConfig { task }),
    })
}

fn portal_config(
    draft: &Draft,
    signing_key: SigningKeyConfig,
    have: &BTreeMap<Party, Manifest>,
    task: &Option<Task>,
) -> Result<PortalConfig> {
    let servers = (0..2)
        .map(|n| {
            let (m, locations) = server_manifest(have, n)?;
            Ok(PortalServerConfig {
                server_index: server_index(n),
                instance: m.instance.clone(),
                sum_parts: reached_by(&locations.sum_parts, "portal", draft.profiles),
                signing_keys: m.signing_keys.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PortalConfig {
        servers,
        results: own_location(draft, "results")?,
        signing_key: Some(signing_key),
        dap: task_file(task).map(|task| PortalDapConfig {
            task,
            collector_hpke_key: secret("collector-hpke"),
        }),
    })
}

fn server_config(
    dir: &Path,
    draft: &Draft,
    (signing_key, mine): (SigningKeyConfig, &Manifest),
    have: &BTreeMap<Party, Manifest>,
    task: &Option<Task>,
) -> Result<ServerConfig> {
    let n = draft.party.server_index().unwrap_or(0);
    let me = draft.party.name();
    let (peer, peer_locations) = server_manifest(have, 1 - n)?;
    let dap = match task {
        Some(task) => {
            derive_verify_key(dir, draft.party, peer, task)?;
            Some(ServerDapConfig {
                task: PathBuf::from(TASK),
                hpke_key: secret(&format!("{me}-hpke")),
                verify_key: SecretSource {
                    file: Some(PathBuf::from(VERIFY_KEY)),
                    env: None,
                },
            })
        }
        None => None,
    };
    Ok(ServerConfig {
        server_index: server_index(n),
        instance: draft.instance.clone(),
        locations: ServerLocations {
            ingestion: own_location(draft, "ingestion")?,
            own: own_location(draft, "own")?,
            peer_inbox: own_location(draft, "peer_inbox")?,
            peer_outbox: reached_by(
                &peer_locations.peer_inbox,
                &format!("{me}-to-{}", peer.party),
                draft.profiles,
            ),
            sum_parts: own_location(draft, "sum_parts")?,
        },
        signing_key,
        // Every packet key it publishes: the newest for what the ingestor seals now, the
        // older ones until they are retired, for batches sealed before.
        packet_keys: mine
            .packet_keys
            .iter()
            .rev()
            .map(|k| PacketKeyConfig {
                id: k.id.clone(),
                scheme: k.scheme,
                secret: secret(&k.id),
            })
            .collect(),
        stash_key: Some(secret(&format!("{me}-stash"))),
        trust: ServerTrustConfig {
            ingestors: have[&Party::Ingestor].signing_keys.clone(),
            peer: peer.signing_keys.clone(),
            portal: have[&Party::Portal].signing_keys.clone(),
        },
        limits: draft.limits.unwrap_or_default(),
        peer_writes_manifests: true,
        dap,
    })
}

/// The verify key this server agrees on with `peer` for `task`, in `keys/verify.key`
/// (derived again at each import: the same key, or an error if it would change).
fn derive_verify_key(dir: &Path, me: Party, peer: &Manifest, task: &Task) -> Result<()> {
    let theirs = peer
        .dap
        .as_ref()
        .and_then(|d| d.verify_key_agreement.as_deref())
        .ok_or_else(|| anyhow!("{}'s manifest has no verify key agreement key", peer.party))?;
    let text = std::fs::read_to_string(secret_path(dir, &format!("{me}-agreement")))
        .with_context(|| format!("reading {me}'s verify key agreement key"))?;
    let key = VerifyKeyAgreement::from_text(&text)?.verify_key(
        theirs,
        task.version(),
        &task.task_id().0,
    )?;
    let path = dir.join(VERIFY_KEY);
    match std::fs::read_to_string(&path) {
        Ok(existing)
            if VerifyKey::from_text(task.version(), &existing)
                .ok()
                .as_ref()
                != Some(&key) =>
        {
            bail!(
                "{} holds another verify key than the one agreed with {}'s manifest now (the text is not shown)",
                path.display(),
                peer.party
            )
        }
        Ok(_) => Ok(()),
        Err(_) => write_secret(&path, &key.to_text()),
    }
}

/// The key this party signs with: the one `--use-key` chose, else the first published.
fn own_signing_key(draft: &Draft, mine: &Manifest) -> Result<SigningKeyConfig> {
    let id = match &draft.signing_key {
        Some(id) => id.clone(),
        None => mine
            .signing_keys
            .first()
            .map(|k| k.id.clone())
            .ok_or_else(|| anyhow!("{}'s manifest lists no signing key", draft.party))?,
    };
    Ok(SigningKeyConfig {
        secret: secret(&id),
        id,
    })
}

fn own_location(draft: &Draft, name: &str) -> Result<LocationConfig> {
    draft
        .locations
        .get(name)
        .cloned()
        .ok_or_else(|| anyhow!("{DRAFT}: no location {name}"))
}

fn server_index(n: usize) -> ServerIndex {
    if n == 0 {
        ServerIndex::Zero
    } else {
        ServerIndex::One
    }
}
