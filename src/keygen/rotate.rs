//! Key rotation for a party made by `keygen --party`, in three steps with an overlap:
//!
//! 1. `--new-key signing|packet`: a new key beside the old; the manifest lists both (the
//!    newest last). A server decrypts with both packet keys at once; a signer still signs
//!    with the old key. The others import the manifest: they trust both signing keys, and
//!    the ingestor seals to the newest packet key.
//! 2. `--use-key ID` (signing keys): sign with the new key, once the others trust it.
//! 3. `--retire-key ID`: after the overlap (every batch signed or sealed with the old key
//!    processed), the old key leaves the manifest and its secret file is deleted; the
//!    others import the manifest and stop trusting it.
//!
//! DAP HPKE keys are not rotated here: the task pins them, and a task's keys do not change
//! under its clients (a new key means a new task).

use super::manifest::{Manifest, PublishedPacketKey};
use super::party::{
    load_draft, own_manifest, save_draft, save_own_manifest, secret_path, state, PartyState,
};
use super::party_config::render;
use super::write_secret;
use crate::config::PublicKeyConfig;
use crate::crypto::{PacketPrivateKey, SigningKey};
use anyhow::{bail, Result};
use std::path::Path;

/// Which kind of key `--new-key` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// The key this party signs its batches, sum parts or queries with.
    Signing,
    /// A server's key the ingestor seals ENPA packets to.
    Packet,
}

/// Step 1: a new key of `kind` beside the current ones. Returns its id.
pub fn new_key(dir: &Path, kind: KeyKind) -> Result<(String, PartyState)> {
    let draft = load_draft(dir)?;
    let mut mine = own_manifest(dir, draft.party)?;
    let stem = match kind {
        KeyKind::Signing => format!("{}-signing", draft.party),
        KeyKind::Packet => format!("{}-packet", draft.party),
    };
    let id = next_id(&mine, &draft.retired_keys, &stem);
    match kind {
        KeyKind::Signing => {
            let (key, pkcs8) = SigningKey::generate(&id)?;
            write_secret(&secret_path(dir, &id), &pkcs8)?;
            mine.signing_keys.push(PublicKeyConfig {
                id: id.clone(),
                public_key: key.verifying_key().to_base64(),
                not_after: None,
            });
        }
        KeyKind::Packet => {
            let Some(scheme) = mine.packet_keys.last().map(|k| k.scheme) else {
                bail!("{} has no packet keys: only servers do", draft.party);
            };
            let (key, text) = PacketPrivateKey::generate(scheme)?;
            write_secret(&secret_path(dir, &id), &text)?;
            mine.packet_keys.push(PublishedPacketKey {
                id: id.clone(),
                scheme,
                public_key: key.public_key().to_text(),
            });
        }
    }
    save_own_manifest(dir, &mine)?;
    render(dir, &draft)?;
    Ok((id, state(dir)?))
}

/// `stem-2`, `stem-3`, ...: the first id no key of this party has had, listed or retired
/// (an id is never reused: a batch sealed to a retired key must not meet its namesake).
fn next_id(mine: &Manifest, retired: &[String], stem: &str) -> String {
    let taken = |id: &str| {
        mine.signing_keys.iter().any(|k| k.id == id)
            || mine.packet_keys.iter().any(|k| k.id == id)
            || retired.iter().any(|r| r == id)
    };
    (2u32..)
        .map(|n| format!("{stem}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or_else(|| format!("{stem}-{}", uuid::Uuid::new_v4().simple()))
}

/// Step 2: sign with `id`, one of this party's published signing keys. The key signed
/// with until now stays trusted for `overlap` more (its `not_after` in the manifest):
/// after that the others refuse what it signs even if they never import again.
pub fn use_key(dir: &Path, id: &str, overlap: chrono::Duration) -> Result<PartyState> {
    let mut draft = load_draft(dir)?;
    let mut mine = own_manifest(dir, draft.party)?;
    if !mine.signing_keys.iter().any(|k| k.id == id) {
        bail!(
            "{id} is not one of {}'s signing keys ({})",
            draft.party,
            ids(mine.signing_keys.iter().map(|k| k.id.as_str()))
        );
    }
    let before = draft
        .signing_key
        .clone()
        .or_else(|| mine.signing_keys.first().map(|k| k.id.clone()));
    let not_after =
        (chrono::Utc::now() + overlap).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for key in &mut mine.signing_keys {
        if key.id == id {
            key.not_after = None;
        } else if before.as_deref() == Some(key.id.as_str()) && key.not_after.is_none() {
            key.not_after = Some(not_after.clone());
        }
    }
    draft.signing_key = Some(id.to_string());
    save_draft(dir, &draft)?;
    save_own_manifest(dir, &mine)?;
    render(dir, &draft)?;
    state(dir)
}

/// Step 3: `id` leaves the manifest and its secret is deleted. The key signed with, and
/// the last key of a kind, are refused.
pub fn retire_key(dir: &Path, id: &str) -> Result<PartyState> {
    let mut draft = load_draft(dir)?;
    let mut mine = own_manifest(dir, draft.party)?;
    let active = draft
        .signing_key
        .clone()
        .or_else(|| mine.signing_keys.first().map(|k| k.id.clone()));
    if active.as_deref() == Some(id) {
        bail!(
            "{id} is the key {} signs with: --use-key another first",
            draft.party
        );
    }
    let (signing, packet) = (mine.signing_keys.len(), mine.packet_keys.len());
    mine.signing_keys.retain(|k| k.id != id);
    mine.packet_keys.retain(|k| k.id != id);
    if (signing, packet) == (mine.signing_keys.len(), mine.packet_keys.len()) {
        bail!("{id} is not one of {}'s keys", draft.party);
    }
    if packet > 0 && mine.packet_keys.is_empty() {
        bail!(
            "{id} is {}'s last packet key: make its successor first (--new-key packet)",
            draft.party
        );
    }
    draft.retired_keys.push(id.to_string());
    save_draft(dir, &draft)?;
    save_own_manifest(dir, &mine)?;
    render(dir, &draft)?;
    let secret = secret_path(dir, id);
    std::fs::remove_file(&secret).map_err(|e| {
        anyhow::anyhow!("deleting the retired key's file {}: {e}", secret.display())
    })?;
    state(dir)
}

fn ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.collect::<Vec<_>>().join(", ")
}
