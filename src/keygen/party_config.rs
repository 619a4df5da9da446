//! A party's config, made from what `keygen --party` decided for it and the manifests
//! it imported: the ingestor's targets, a server's locations, trust and DAP section (with
//! the verify key it agrees on with its peer), the portal's servers; and the DAP task the
//! manifests make together.

use super::manifest::{Manifest, Party, PublishedLocations};
use super::party::{own_manifest, peers, secret, secret_path, Draft, DRAFT, TASK};
use super::{write_config, write_secret};
use crate::config::dap::{IngestorDapConfig, PortalDapConfig, ServerDapConfig};
use crate::config::*;
use crate::dap::{Task, VerifyKey, VerifyKeyAgreement};
use crate::ids::ServerIndex;
use crate::store::LocationConfig;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a server keeps the verify key it agreed on, in its folder.
const VERIFY_KEY: &str = "keys/verify.key";

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
                server_index: ServerIndex::BOTH[n],
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
                server_index: ServerIndex::BOTH[n],
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
        server_index: ServerIndex::BOTH[n],
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
