//! `divvi keygen`: every key of a new deployment and a matching, working set of config
//! files for the ingestor, server 0, server 1 and the portal, with local folders as buckets.

use crate::config::dap::{IngestorDapConfig, PortalDapConfig, ServerDapConfig};
use crate::config::*;
use crate::crypto::{PacketPrivateKey, PacketScheme, SigningKey, StashKey};
use crate::ids::ServerIndex;
use crate::store::{LocationConfig, LocationSettings};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod manifest;
pub mod party;
mod party_config;
pub mod rotate;

/// The config files keygen writes, by party.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub dir: PathBuf,
    pub ingestor: PathBuf,
    pub servers: [PathBuf; 2],
    pub portal: PathBuf,
}

impl Deployment {
    /// The config files keygen writes into `dir`.
    pub fn in_folder(dir: &Path) -> Deployment {
        Deployment {
            dir: dir.to_path_buf(),
            ingestor: dir.join("ingestor.toml"),
            servers: [dir.join("server0.toml"), dir.join("server1.toml")],
            portal: dir.join("portal.toml"),
        }
    }
}

/// Writes a secret readable by its owner only.
pub fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating secret file {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .with_context(|| format!("writing secret file {}", path.display()))
}

fn write_config<T: serde::Serialize>(path: &Path, what: &str, config: &T) -> Result<()> {
    let body = toml::to_string_pretty(config)?;
    let text = format!(
        "# divvi {what} configuration, written by `divvi keygen`.\n\
         # Relative paths are relative to this file's folder.\n\n{body}"
    );
    // Whole or not at all: keygen --import rewrites a config that jobs may be reading.
    crate::files::write_atomically(path, text.as_bytes())
}

/// Where the deployment's locations live.
#[derive(Debug, Clone, Default)]
pub enum Layout {
    /// Folders under `buckets/` beside the configs.
    #[default]
    Local,
    /// One bucket per location on an S3-compatible store.
    S3(S3Layout),
}

#[derive(Debug, Clone, Default)]
pub struct S3Layout {
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    /// Prepended to every bucket name (`{prefix}server0-ingestion`).
    pub bucket_prefix: String,
    /// Give each party's locations its own AWS profile (`ingestor`, `server0`,
    /// `server0-to-server1` for the peer's inbox, `portal`, ...) instead of the default chain.
    pub profiles: bool,
}

impl Layout {
    pub(crate) fn location(&self, name: &str, party: &str) -> LocationConfig {
        match self {
            Layout::Local => LocationConfig::Url(format!("buckets/{name}")),
            Layout::S3(s3) => LocationConfig::Detailed(LocationSettings {
                url: format!("s3://{}{name}", s3.bucket_prefix),
                region: Some(s3.region.clone()),
                endpoint: s3.endpoint.clone(),
                path_style: s3.path_style,
                profile: s3.profiles.then(|| party.to_string()),
                role_arn: None,
            }),
        }
    }

    /// The bucket names an S3 layout uses (to create them, or grant access).
    pub fn bucket_names(&self) -> Vec<String> {
        let prefix = match self {
            Layout::Local => "",
            Layout::S3(s3) => s3.bucket_prefix.as_str(),
        };
        [
            "server0-ingestion",
            "server0-own",
            "server0-peer-inbox",
            "server1-ingestion",
            "server1-own",
            "server1-peer-inbox",
            "server0-sum-parts",
            "server1-sum-parts",
            "portal-results",
        ]
        .iter()
        .map(|n| format!("{prefix}{n}"))
        .collect()
    }
}

/// Creates `dir` (which must not exist or be empty) holding `keys/` and four configs.
pub fn keygen(
    dir: &Path,
    scheme: PacketScheme,
    instance: &str,
    layout: &Layout,
    limits: Limits,
) -> Result<Deployment> {
    keygen_with_dap(dir, scheme, instance, layout, limits, None)
}

/// [`keygen`], and with `dap` also a DAP-18 task: `task.json` and its secrets under
/// `keys/`, named in each party's `[dap]` section.
pub fn keygen_with_dap(
    dir: &Path,
    scheme: PacketScheme,
    instance: &str,
    layout: &Layout,
    limits: Limits,
    dap: Option<&DapTaskOptions>,
) -> Result<Deployment> {
    crate::batch::validate_name("instance", instance).map_err(|e| anyhow::anyhow!(e))?;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; keygen writes into a fresh folder",
            dir.display()
        );
    }
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;

    let signing = |name: &str| -> Result<(SigningKeyConfig, PublicKeyConfig)> {
        let id = format!("{name}-signing");
        let (key, pkcs8) = SigningKey::generate(&id)?;
        let file = PathBuf::from("keys").join(format!("{id}.key"));
        write_secret(&dir.join(&file), &pkcs8)?;
        Ok((
            SigningKeyConfig {
                id: id.clone(),
                secret: SecretSource {
                    file: Some(file),
                    env: None,
                },
            },
            PublicKeyConfig {
                id,
                public_key: key.verifying_key().to_base64(),
                not_after: None,
            },
        ))
    };
    let dap = match dap {
        Some(options) => Some(write_dap_task(dir, options)?),
        None => None,
    };
    let (ingestor_key, ingestor_pub) = signing("ingestor")?;
    let (s0_key, s0_pub) = signing("server0")?;
    let (s1_key, s1_pub) = signing("server1")?;
    let (portal_key, portal_pub) = signing("portal")?;

    let mut packet_public = Vec::new();
    let mut packet_private = Vec::new();
    for n in 0..2 {
        let id = format!("server{n}-packet");
        let (key, text) = PacketPrivateKey::generate(scheme)?;
        let file = PathBuf::from("keys").join(format!("{id}.key"));
        write_secret(&dir.join(&file), &text)?;
        packet_public.push((id.clone(), key.public_key().to_text()));
        packet_private.push(PacketKeyConfig {
            id,
            scheme,
            secret: SecretSource {
                file: Some(file),
                env: None,
            },
        });
    }

    let mut stash_keys = Vec::new();
    for n in 0..2 {
        let (_, text) = StashKey::generate()?;
        let file = PathBuf::from("keys").join(format!("server{n}-stash.key"));
        write_secret(&dir.join(&file), &text)?;
        stash_keys.push(SecretSource {
            file: Some(file),
            env: None,
        });
    }

    // `party` is who reaches the location: with S3 profiles, each party has its own.
    let bucket = |name: &str, party: &str| layout.location(name, party);
    // Each server's sum parts are its own; the portal only reads them.
    let sum_parts = |n: usize, party: &str| bucket(&format!("server{n}-sum-parts"), party);
    let server_config = |n: usize| {
        let me = format!("server{n}");
        let peer = format!("server{}", 1 - n);
        ServerConfig {
            server_index: ServerIndex::BOTH[n],
            instance: instance.to_string(),
            locations: ServerLocations {
                ingestion: bucket(&format!("{me}-ingestion"), &me),
                own: bucket(&format!("{me}-own"), &me),
                peer_inbox: bucket(&format!("{me}-peer-inbox"), &me),
                // The peer's inbox, reached with the credentials the peer granted.
                peer_outbox: bucket(&format!("{peer}-peer-inbox"), &format!("{me}-to-{peer}")),
                sum_parts: sum_parts(n, &me),
            },
            signing_key: if n == 0 {
                s0_key.clone()
            } else {
                s1_key.clone()
            },
            packet_keys: vec![packet_private[n].clone()],
            stash_key: Some(stash_keys[n].clone()),
            trust: ServerTrustConfig {
                ingestors: vec![ingestor_pub.clone()],
                peer: vec![if n == 0 {
                    s1_pub.clone()
                } else {
                    s0_pub.clone()
                }],
                portal: vec![portal_pub.clone()],
            },
            limits,
            peer_writes_manifests: true,
            dap: dap.as_ref().map(|d| d.servers[n].clone()),
        }
    };
    let ingestor = IngestorConfig {
        signing_key: ingestor_key,
        servers: (0..2)
            .map(|n| IngestorServerConfig {
                server_index: ServerIndex::BOTH[n],
                ingestion: bucket(&format!("server{n}-ingestion"), "ingestor"),
                packet_key_id: packet_public[n].0.clone(),
                packet_scheme: scheme,
                packet_public_key: packet_public[n].1.clone(),
            })
            .collect(),
        dap: dap.as_ref().map(|d| d.ingestor.clone()),
    };
    let portal = PortalConfig {
        servers: vec![
            PortalServerConfig {
                server_index: ServerIndex::Zero,
                instance: instance.to_string(),
                sum_parts: sum_parts(0, "portal"),
                signing_keys: vec![s0_pub.clone()],
            },
            PortalServerConfig {
                server_index: ServerIndex::One,
                instance: instance.to_string(),
                sum_parts: sum_parts(1, "portal"),
                signing_keys: vec![s1_pub.clone()],
            },
        ],
        results: bucket("portal-results", "portal"),
        signing_key: Some(portal_key),
        dap: dap.as_ref().map(|d| d.portal.clone()),
    };
    let d = Deployment::in_folder(dir);
    write_config(&d.ingestor, "ingestor", &ingestor)?;
    write_config(&d.servers[0], "server 0 (PHA)", &server_config(0))?;
    write_config(&d.servers[1], "server 1 (facilitator)", &server_config(1))?;
    write_config(&d.portal, "portal", &portal)?;
    Ok(d)
}

/// What `keygen --vdaf` puts in the DAP task beyond its keys.
#[derive(Debug, Clone)]
pub struct DapTaskOptions {
    pub dap_version: crate::dap::task::DapVersion,
    pub vdaf: crate::dap::VdafConfig,
    pub time_precision: u64,
    pub min_batch_size: u64,
    pub leader_endpoint: String,
    pub helper_endpoint: String,
    /// Differential privacy the task carries (poplar1 only so far).
    pub dp: Option<crate::dap::dp::DpStrategy>,
}

impl DapTaskOptions {
    /// The task of these options with id `task_id` and the HPKE configs of the leader,
    /// the helper and the collector, checked.
    pub fn task(
        &self,
        task_id: crate::dap::TaskId,
        [leader, helper, collector]: [&crate::dap::HpkeConfig; 3],
    ) -> Result<crate::dap::Task> {
        Ok(crate::dap::Task::new(crate::dap::TaskParams {
            dap_version: self.dap_version,
            task_id,
            task_info: b"divvi".to_vec(),
            leader_aggregator_endpoint: self.leader_endpoint.clone(),
            helper_aggregator_endpoint: self.helper_endpoint.clone(),
            time_precision: self.time_precision,
            min_batch_size: self.min_batch_size,
            batch_mode: crate::dap::task::BatchMode::TimeInterval,
            vdaf: self.vdaf.clone(),
            leader_hpke_config: leader.clone(),
            helper_hpke_config: helper.clone(),
            collector_hpke_config: collector.clone(),
            dp: self.dp,
        })?)
    }
}

/// Each party's `[dap]` section for a task keygen wrote.
struct DapSections {
    servers: [ServerDapConfig; 2],
    ingestor: IngestorDapConfig,
    portal: PortalDapConfig,
}

/// Config ids of the task's HPKE configs. Distinct, so a ciphertext's config id alone
/// shows whose key it was sealed to.
const LEADER_CONFIG_ID: u8 = 1;
const HELPER_CONFIG_ID: u8 = 2;
const COLLECTOR_CONFIG_ID: u8 = 3;

/// Writes `task.json` (public) and the task's secrets under `keys/`: each server's and the
/// collector's HPKE private key and the servers' shared verify key. The task id is 32
/// random bytes, independent of the verify key (Divvi Up derives it from a 16-byte verify
/// key by SHA-256; Prio3's verify key is 32 bytes here, and a random id ties nothing
/// public to a secret).
fn write_dap_task(dir: &Path, o: &DapTaskOptions) -> Result<DapSections> {
    use crate::dap::secrets::hpke_private_key_text;
    use crate::dap::{HpkeKeypair, TaskId, VerifyKey};
    let secret_file = |name: &str, text: &str| -> Result<SecretSource> {
        let file = PathBuf::from("keys").join(name);
        write_secret(&dir.join(&file), text)?;
        Ok(SecretSource {
            file: Some(file),
            env: None,
        })
    };
    let keypair = |id| HpkeKeypair::generate(id).context("generating a DAP HPKE key");
    let leader = keypair(LEADER_CONFIG_ID)?;
    let helper = keypair(HELPER_CONFIG_ID)?;
    let collector = keypair(COLLECTOR_CONFIG_ID)?;
    let verify_key = VerifyKey::generate(o.dap_version)?;
    let task = o.task(
        TaskId::random()?,
        [leader.config(), helper.config(), collector.config()],
    )?;
    let task_file = PathBuf::from("task.json");
    std::fs::write(dir.join(&task_file), task.to_json())
        .with_context(|| format!("writing {}", dir.join(&task_file).display()))?;
    let verify = secret_file("verify.key", &verify_key.to_text())?;
    let server = |n: usize, keypair: &HpkeKeypair| -> Result<ServerDapConfig> {
        Ok(ServerDapConfig {
            task: task_file.clone(),
            hpke_key: secret_file(
                &format!("server{n}-hpke.key"),
                &hpke_private_key_text(keypair),
            )?,
            verify_key: verify.clone(),
        })
    };
    Ok(DapSections {
        servers: [server(0, &leader)?, server(1, &helper)?],
        ingestor: IngestorDapConfig {
            task: task_file.clone(),
        },
        portal: PortalDapConfig {
            task: task_file.clone(),
            collector_hpke_key: secret_file(
                "collector-hpke.key",
                &hpke_private_key_text(&collector),
            )?,
        },
    })
}
