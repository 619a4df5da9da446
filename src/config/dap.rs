//! The optional `[dap]` section of a party's config: the DAP-18 task it takes part in
//! (a public task file) and the task's secrets this party holds. Each party's section
//! admits only that party's secrets (unknown fields are refused), so an ingestor config
//! cannot carry a key that opens a report, nor a portal config the verify key.

use super::{KeyFileCheck, SecretSource};
use crate::dap::secrets::hpke_keypair_from_text;
use crate::dap::{HpkeConfig, HpkeKeypair, Role, Task, VerifyKey};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A server's `[dap]`: the task, its own HPKE key (server 0 is the leader, server 1 the
/// helper) and the verify key both servers share.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDapConfig {
    /// The task file (public JSON, relative to the config's folder).
    pub task: PathBuf,
    pub hpke_key: SecretSource,
    pub verify_key: SecretSource,
}

/// The portal's `[dap]`: the task and the collector's HPKE key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalDapConfig {
    pub task: PathBuf,
    pub collector_hpke_key: SecretSource,
}

/// The ingestor's `[dap]`: the task file only; the ingestor opens no report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestorDapConfig {
    pub task: PathBuf,
}

/// A server's DAP task with its secrets loaded and checked against the task.
pub struct ServerDap {
    pub task: Task,
    pub role: Role,
    pub hpke: HpkeKeypair,
    pub verify_key: VerifyKey,
}

/// The portal's DAP task with the collector key loaded and checked against the task.
pub struct CollectorDap {
    pub task: Task,
    pub hpke: HpkeKeypair,
}

fn load_task(base: &Path, file: &Path) -> Result<(Task, String)> {
    let path = base.join(file);
    let task = Task::load(&path).context("dap.task")?;
    Ok((task, path.display().to_string()))
}

/// Loads the HPKE key of `field` and refuses it unless its public key is the task's
/// `config_field` (a key of another party, or of another task).
fn load_hpke_key(
    source: &SecretSource,
    base: &Path,
    field: &str,
    config: &HpkeConfig,
    config_field: &str,
    task_path: &str,
) -> Result<HpkeKeypair> {
    let text = source
        .read(base, KeyFileCheck::Refuse)
        .context(field.to_string())?;
    let keypair = hpke_keypair_from_text(config, &text).with_context(|| field.to_string())?;
    if keypair.config().public_key != config.public_key {
        bail!(
            "{field}: its public key is not the task's {config_field}.public_key (task file \
             {task_path}); is it another party's key, or another task's?"
        );
    }
    Ok(keypair)
}

impl ServerDapConfig {
    /// `leader`: whether this is server 0 (the DAP leader) rather than server 1.
    pub fn load(&self, base: &Path, leader: bool) -> Result<ServerDap> {
        let (task, task_path) = load_task(base, &self.task)?;
        let (role, config, config_field) = if leader {
            (
                Role::Leader,
                &task.params().leader_hpke_config,
                "leader_hpke_config",
            )
        } else {
            (
                Role::Helper,
                &task.params().helper_hpke_config,
                "helper_hpke_config",
            )
        };
        let hpke = load_hpke_key(
            &self.hpke_key,
            base,
            "dap.hpke_key",
            config,
            config_field,
            &task_path,
        )?;
        let text = self
            .verify_key
            .read(base, KeyFileCheck::Refuse)
            .context("dap.verify_key")?;
        let verify_key = VerifyKey::from_text(task.version(), &text).context("dap.verify_key")?;
        Ok(ServerDap {
            task,
            role,
            hpke,
            verify_key,
        })
    }
}

impl PortalDapConfig {
    pub fn load(&self, base: &Path) -> Result<CollectorDap> {
        let (task, task_path) = load_task(base, &self.task)?;
        let hpke = load_hpke_key(
            &self.collector_hpke_key,
            base,
            "dap.collector_hpke_key",
            &task.params().collector_hpke_config,
            "collector_hpke_config",
            &task_path,
        )?;
        Ok(CollectorDap { task, hpke })
    }
}

impl IngestorDapConfig {
    pub fn load(&self, base: &Path) -> Result<Task> {
        Ok(load_task(base, &self.task)?.0)
    }
}
