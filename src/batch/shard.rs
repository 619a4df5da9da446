//! How pending work is split deterministically between workers (`--shard i/N`,
//! Kubernetes Indexed Jobs): by batch, so intake and the heavy-hitters passes share one
//! rule.

use super::BatchId;
use anyhow::{anyhow, bail, Result};

/// One worker's part of the pending work: batches whose UUID is `index` mod `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `i/N`, with 0 <= i < N.
    pub fn parse(text: &str) -> Result<Shard> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| anyhow!("shard {text:?} is not i/N"))?;
        let (index, count): (u32, u32) = (
            i.trim()
                .parse()
                .map_err(|_| anyhow!("shard index {i:?} is not a number"))?,
            n.trim()
                .parse()
                .map_err(|_| anyhow!("shard count {n:?} is not a number"))?,
        );
        if count == 0 || index >= count {
            bail!("shard {text:?}: need 0 <= i < N");
        }
        Ok(Shard { index, count })
    }

    /// From a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` and the count in
    /// `DIVVI_SHARD_COUNT` (set it to the Job's `completions`). None outside such a Job.
    pub fn from_env() -> Result<Option<Shard>> {
        let Ok(index) = std::env::var("JOB_COMPLETION_INDEX") else {
            return Ok(None);
        };
        let count = std::env::var("DIVVI_SHARD_COUNT").map_err(|_| {
            anyhow!(
                "JOB_COMPLETION_INDEX is set but DIVVI_SHARD_COUNT (the Job's completions) is not"
            )
        })?;
        Shard::parse(&format!("{index}/{count}")).map(Some)
    }

    /// Whether this worker owns a batch. Stable across workers and runs.
    pub fn owns(&self, id: &BatchId) -> bool {
        id.uuid.as_u128() % u128::from(self.count) == u128::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
