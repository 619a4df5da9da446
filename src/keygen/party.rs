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
use super::{write_secret, DapTaskOptions, Layout};
use crate::config::*;
use crate::crypto::{PacketPrivateKey, PacketScheme, SigningKey, StashKey};
use crate::dap::secrets::hpke_private_key_text;
use crate::dap::{HpkeKeypair, TaskId, VerifyKeyAgreement};
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
    pub(super) instance: String,
    /// The signing key this party signs with, of those its manifest lists (the first
    /// until `keygen --use-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) signing_key: Option<String>,
    /// Keys retired so far (their ids are never given again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) retired_keys: Vec<String>,
    /// A server's limits (min_clients and the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) limits: Option<Limits>,
    /// A server's own locations (ingestion, own, peer_inbox, sum_parts); the portal's
    /// results.
    pub(super) locations: BTreeMap<String, LocationConfig>,
    /// Reach the others' S3 locations with this party's own AWS profile
    /// (`ingestor`, `server0-to-server1`, `portal`).
    #[serde(default)]
    pub(super) profiles: bool,
}

pub(super) const DRAFT: &str = "party.toml";
const PEERS: &str = "peers";
pub(super) const TASK: &str = "task.json";

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
    let previous = std::fs::read(&path).ok();
    crate::files::write_atomically(&path, bytes)?;
    if let Err(e) = super::party_config::render(dir, &draft) {
        // A manifest the config cannot be made with is not kept: the folder stays as it was.
        match previous {
            Some(old) => crate::files::write_atomically(&path, &old)?,
            None => std::fs::remove_file(&path)
                .with_context(|| format!("removing {}", path.display()))?,
        }
        return Err(e.context(format!("manifest {source}: not imported")));
    }
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
pub(super) fn peers(dir: &Path) -> Result<BTreeMap<Party, Manifest>> {
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
