//! Header consistency checks shared by intake and aggregate.

use crate::batch::BatchId;
use crate::vdaf::{Prio2Bins, PRIME};
use crate::wire::{IngestionHeader, ValidityHeader};
use anyhow::{bail, Result};

/// The ingestion header must name the batch it is stored as, and the Prio2 parameters
/// divvi runs. Returns the Prio2 instance for its bins.
pub fn check_ingestion_header(
    id: &BatchId,
    h: &IngestionHeader,
    object: &str,
) -> Result<Prio2Bins> {
    check_batch_names(id, h.batch_uuid, &h.name, object)?;
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

/// An ingestion header, of any task kind, must name the batch it is stored as.
pub fn check_batch_names(
    id: &BatchId,
    batch_uuid: uuid::Uuid,
    name: &str,
    object: &str,
) -> Result<()> {
    if batch_uuid != id.uuid {
        bail!(
            "{object}: header batch_uuid {batch_uuid} differs from the object's {}",
            id.uuid
        );
    }
    if name != id.aggregation {
        bail!(
            "{object}: header name {name:?} differs from the aggregation {:?}",
            id.aggregation
        );
    }
    Ok(())
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
    diffs.extend(v.parameters().differences(&ing.parameters()));
    if !diffs.is_empty() {
        bail!(
            "{object}: validation header disagrees with the ingestion header: {}",
            diffs.join(", ")
        );
    }
    Ok(())
}
