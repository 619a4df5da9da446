//! Header consistency checks shared by intake and aggregate.

use crate::batch::BatchId;
use crate::vdaf::{Prio2Bins, PRIME};
use crate::wire::{IngestionHeader, ValidityHeader};
use anyhow::{bail, Result};

/// What batches summed together must share: their Prio2 parameters and what the sum
/// part's header carries over from theirs.
#[derive(Debug, Clone, Copy)]
pub struct SumParameters {
    pub bins: i32,
    pub epsilon: f64,
    pub hamming_weight: Option<i32>,
}

impl SumParameters {
    pub fn of(h: &IngestionHeader) -> Self {
        SumParameters {
            bins: h.bins,
            epsilon: h.epsilon,
            hamming_weight: h.hamming_weight,
        }
    }
}

impl PartialEq for SumParameters {
    /// Epsilon by its bits: the sum part carries it exactly as declared.
    fn eq(&self, other: &Self) -> bool {
        (self.bins, self.epsilon.to_bits(), self.hamming_weight)
            == (other.bins, other.epsilon.to_bits(), other.hamming_weight)
    }
}

impl std::fmt::Display for SumParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bins {}, epsilon {}, hamming_weight {:?}",
            self.bins, self.epsilon, self.hamming_weight
        )
    }
}

/// The ingestion header must name the batch it is stored as, and the Prio2 parameters
/// divvi runs. Returns the Prio2 instance for its bins.
pub fn check_ingestion_header(
    id: &BatchId,
    h: &IngestionHeader,
    object: &str,
) -> Result<Prio2Bins> {
    if h.batch_uuid != id.uuid {
        bail!(
            "{object}: header batch_uuid {} differs from the object's {}",
            h.batch_uuid,
            id.uuid
        );
    }
    if h.name != id.aggregation {
        bail!(
            "{object}: header name {:?} differs from the aggregation {:?}",
            h.name,
            id.aggregation
        );
    }
    if h.prime != i64::from(PRIME) {
        bail!("{object}: prime {} is not {PRIME}", h.prime);
    }
    if h.number_of_servers != 2 {
        bail!(
            "{object}: number_of_servers {} is not 2",
            h.number_of_servers
        );
    }
    Prio2Bins::new(i64::from(h.bins)).map_err(|e| anyhow::anyhow!("{object}: {e}"))
}

/// A validation header must describe the same batch as the ingestion header.
pub fn check_validity_header(
    ing: &IngestionHeader,
    v: &ValidityHeader,
    object: &str,
) -> Result<()> {
    let mut diffs = Vec::new();
    if v.batch_uuid != ing.batch_uuid {
        diffs.push(format!("batch_uuid {} vs {}", v.batch_uuid, ing.batch_uuid));
    }
    if v.name != ing.name {
        diffs.push(format!("name {:?} vs {:?}", v.name, ing.name));
    }
    if v.bins != ing.bins {
        diffs.push(format!("bins {} vs {}", v.bins, ing.bins));
    }
    if v.epsilon.to_bits() != ing.epsilon.to_bits() {
        diffs.push(format!("epsilon {} vs {}", v.epsilon, ing.epsilon));
    }
    if v.prime != ing.prime {
        diffs.push(format!("prime {} vs {}", v.prime, ing.prime));
    }
    if v.number_of_servers != ing.number_of_servers {
        diffs.push(format!(
            "number_of_servers {} vs {}",
            v.number_of_servers, ing.number_of_servers
        ));
    }
    if v.hamming_weight != ing.hamming_weight {
        diffs.push(format!(
            "hamming_weight {:?} vs {:?}",
            v.hamming_weight, ing.hamming_weight
        ));
    }
    if !diffs.is_empty() {
        bail!(
            "{object}: validation header disagrees with the ingestion header: {}",
            diffs.join(", ")
        );
    }
    Ok(())
}
