//! The manifest: server 0's signed list of the batches a run sums. One object, the
//! single-object signature form (a `BatchSignature` with the manifest's JSON inline),
//! so it appears whole or not at all.

use super::{RunId, MAX_RUN_OBJECT_BYTES};
use crate::batch::BatchId;
use crate::batch::{sign_json, verify_json};
use crate::crypto::{SigningKey, TrustSet};
use crate::store::{get_bytes, ObjectStore};
use anyhow::{anyhow, bail, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub aggregation: String,
    /// The run's name: `{start}-{end}` or `{start}-{end}-late{k}`.
    pub run: String,
    /// Batches summed, `agg/Y/m/d/H/M/uuid`, in time then UUID order.
    pub batches: Vec<String>,
    /// Runs of the aggregation decided before this one: what it must not sum again.
    #[serde(default)]
    pub preceding: Vec<String>,
    /// 0 as first decided; k when decided again for the k-th time (a run refused for too
    /// few clients, with more batches ready since). The highest revision stands.
    #[serde(default)]
    pub revision: u32,
}

impl Manifest {
    pub fn new(run: &RunId, batches: &[BatchId], preceding: &[RunId]) -> Self {
        let mut ids = batches.to_vec();
        ids.sort();
        Manifest {
            aggregation: run.aggregation.clone(),
            run: run.name(),
            batches: ids.iter().map(ToString::to_string).collect(),
            preceding: preceding.iter().map(RunId::name).collect(),
            revision: 0,
        }
    }

    /// The same run decided again with `batches` added: its next revision.
    pub fn extended(&self, batches: &[BatchId]) -> Self {
        let mut all: Vec<String> = self.batches.clone();
        all.extend(batches.iter().map(ToString::to_string));
        all.sort();
        all.dedup();
        Manifest {
            batches: all,
            revision: self.revision + 1,
            ..self.clone()
        }
    }

    /// The listed batches, checked to belong to the run's aggregation and window.
    pub fn batch_ids(&self, run: &RunId) -> Result<Vec<BatchId>> {
        self.batches
            .iter()
            .map(|text| {
                let id = BatchId::parse(text)
                    .ok_or_else(|| anyhow!("manifest of {run} lists {text:?}, not a batch"))?;
                if id.aggregation != run.aggregation || !run.window.contains(id.time) {
                    bail!("manifest of {run} lists batch {id}, outside its aggregation or window");
                }
                Ok(id)
            })
            .collect()
    }
}

/// A manifest with the exact signed bytes it was read from or written as.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
}

impl SignedManifest {
    pub fn sign(manifest: Manifest, key: &SigningKey) -> Result<Self> {
        let what = format!("manifest of {} run {}", manifest.aggregation, manifest.run);
        let bytes = sign_json(&manifest, key, &what)?;
        Ok(SignedManifest { manifest, bytes })
    }

    /// Checks the signature against `trust` and that the manifest is the one for `run`.
    pub fn verify(bytes: Vec<u8>, trust: &TrustSet, run: &RunId, object: &str) -> Result<Self> {
        let manifest: Manifest = verify_json(&bytes, trust, &format!("{object} (manifest)"))?;
        if manifest.aggregation != run.aggregation || manifest.run != run.name() {
            bail!(
                "{object}: manifest is for {} run {}, not {run}",
                manifest.aggregation,
                manifest.run
            );
        }
        Ok(SignedManifest { manifest, bytes })
    }
}

/// Reads and verifies a run's manifest from a location, its latest revision; None if it
/// is not there.
pub fn read_manifest(
    store: &dyn ObjectStore,
    run: &RunId,
    trust: &TrustSet,
) -> Result<Option<SignedManifest>> {
    let mut latest = None;
    for revision in 0.. {
        let key = run.manifest_key_of(revision);
        if store.head(&key)?.is_none() {
            return Ok(latest);
        }
        let bytes = get_bytes(store, &key, MAX_RUN_OBJECT_BYTES)?;
        let object = store.describe(&key);
        let signed = SignedManifest::verify(bytes, trust, run, &object)?;
        if signed.manifest.revision != revision {
            bail!(
                "{object}: holds revision {} of the manifest, not {revision}",
                signed.manifest.revision
            );
        }
        latest = Some(signed);
    }
    Ok(latest)
}
