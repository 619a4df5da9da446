//! A server's privacy-budget ledger for a DP task, and the noise of each release.
//!
//! Every release (a run's sum part, a heavy-hitters pass's) claims one entry before its
//! noise is drawn: `dp-ledger/{aggregation}/{k:06}.json` in the server's own storage,
//! created only if absent, so two workers can never both take entry k and a release
//! beyond the task's budget is refused before anything is written. A release claimed
//! before (a rerun) keeps its entry and spends nothing more; its noise comes from a seed
//! derived from the stash key and the release's name, so a rerun adds the same noise.

use crate::config::Server;
use crate::dap::dp::{DpStrategy, Epsilon};
use crate::store::{get_bytes, ObjectStore};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One entry: which release spent what.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    release: String,
    epsilon: String,
}

/// A budget exceeded: the release is refused, and nothing of it is written.
#[derive(Debug, thiserror::Error)]
#[error("{release}: differential privacy budget of task {aggregation} exhausted: {spent} of {budget} spent, and this release would spend {epsilon} more; nothing released")]
pub struct BudgetExhausted {
    pub aggregation: String,
    pub release: String,
    pub spent: String,
    pub budget: String,
    pub epsilon: String,
}

/// Entries are small; this bounds a read.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;
/// An attempt lost to a concurrent claim of the same entry is retried this often.
const CLAIM_ATTEMPTS: usize = 16;

fn prefix(aggregation: &str) -> String {
    format!("dp-ledger/{aggregation}/")
}

/// What the ledger holds so far: each entry's key and content, in order.
fn entries(store: &dyn ObjectStore, aggregation: &str) -> Result<Vec<(String, Entry)>> {
    let mut keys = store.list(&prefix(aggregation))?;
    keys.sort();
    keys.into_iter()
        .filter(|k| k.ends_with(".json"))
        .map(|key| {
            let bytes = get_bytes(store, &key, MAX_ENTRY_BYTES)?;
            let entry = serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not a ledger entry", store.describe(&key)))?;
            Ok((key, entry))
        })
        .collect()
}

/// Claims `release` in the ledger of `aggregation` (once), refusing it beyond the budget.
/// Returns what the task has spent with it.
pub fn claim(
    store: &dyn ObjectStore,
    aggregation: &str,
    release: &str,
    dp: &DpStrategy,
) -> Result<Epsilon> {
    for _ in 0..CLAIM_ATTEMPTS {
        let ledger = entries(store, aggregation)?;
        let mut spent: Option<Epsilon> = None;
        for (key, entry) in &ledger {
            let e = Epsilon::parse(&entry.epsilon)
                .map_err(|e| anyhow!("{}: {e}", store.describe(key)))?;
            spent = Some(match spent {
                Some(s) => s
                    .checked_add(e)
                    .ok_or_else(|| anyhow!("ledger sum overflows"))?,
                None => e,
            });
        }
        if ledger.iter().any(|(_, e)| e.release == release) {
            return spent.ok_or_else(|| anyhow!("an empty ledger holds {release}"));
        }
        let epsilon = dp.epsilon();
        let after = match spent {
            Some(s) => s
                .checked_add(epsilon)
                .ok_or_else(|| anyhow!("ledger sum overflows"))?,
            None => epsilon,
        };
        if let Some(budget) = dp.budget() {
            if !after.at_most(budget) {
                return Err(BudgetExhausted {
                    aggregation: aggregation.to_string(),
                    release: release.to_string(),
                    spent: spent.map_or("0".into(), |s| s.to_string()),
                    budget: budget.to_string(),
                    epsilon: epsilon.to_string(),
                }
                .into());
            }
        }
        let key = format!("{}{:06}.json", prefix(aggregation), ledger.len());
        let entry = Entry {
            release: release.to_string(),
            epsilon: epsilon.to_string(),
        };
        if store.create_new(&key, &serde_json::to_vec(&entry)?)? {
            return Ok(after);
        }
        // Another worker took entry k first: read the ledger again.
    }
    bail!("{release}: the DP ledger of {aggregation} kept changing under this claim")
}

/// The noise of `release` (n values) for a server of a DP task, claimed in its ledger
/// first; None for a task without DP.
pub fn release_noise(
    server: &Server,
    aggregation: &str,
    release: &str,
    n: usize,
) -> Result<Option<Vec<i64>>> {
    let Some(dap) = &server.dap else {
        return Ok(None);
    };
    let Some(dp) = &dap.task.params().dp else {
        return Ok(None);
    };
    let Some(stash_key) = &server.stash_key else {
        bail!("task {aggregation} adds DP noise, whose seed comes from the server's stash_key: the config has none");
    };
    claim(server.own.as_ref(), aggregation, release, dp)?;
    let seed = stash_key.derive_seed(b"divvi dp noise v1", release.as_bytes());
    dp.noise(dap.task.vdaf(), n, &seed)
        .map(Some)
        .map_err(|e| anyhow!("{release}: drawing DP noise: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn strategy(epsilon: &str, budget: Option<&str>) -> DpStrategy {
        DpStrategy::DiscreteLaplace {
            epsilon: Epsilon::parse(epsilon).unwrap(),
            budget: budget.map(|b| Epsilon::parse(b).unwrap()),
        }
    }

    #[test]
    fn releases_are_claimed_once_and_refused_beyond_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let dp = strategy("1/2", Some("1"));
        let spent = |r| claim(&store, "t", r, &dp).map(|e| e.to_string());
        assert_eq!(spent("w1").unwrap(), "1/2");
        assert_eq!(spent("w1").unwrap(), "1/2", "a rerun spends nothing");
        assert_eq!(spent("w2").unwrap(), "1");
        let refused = spent("w3").unwrap_err();
        let text = format!("{refused:#}");
        assert!(refused.is::<BudgetExhausted>(), "{text}");
        assert!(
            text.contains("w3") && text.contains("1 of 1 spent"),
            "{text}"
        );
        // Released ones still rerun.
        assert_eq!(spent("w2").unwrap(), "1");
        assert_eq!(
            std::fs::read_dir(dir.path().join("dp-ledger/t"))
                .unwrap()
                .count(),
            2
        );
        // Without a budget, nothing is refused, and all is counted.
        let free = strategy("1/2", None);
        assert_eq!(claim(&store, "t", "w3", &free).unwrap().to_string(), "3/2");
    }

    #[test]
    fn concurrent_claims_take_distinct_entries() {
        let dir = tempfile::tempdir().unwrap();
        let dp = strategy("1", Some("8"));
        std::thread::scope(|s| {
            for i in 0..8 {
                let (dir, dp) = (dir.path(), &dp);
                s.spawn(move || claim(&LocalStore::new(dir), "t", &format!("r{i}"), dp).unwrap());
            }
        });
        let store = LocalStore::new(dir.path());
        let mut releases: Vec<String> = entries(&store, "t")
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.release)
            .collect();
        releases.sort();
        assert_eq!(
            releases,
            (0..8).map(|i| format!("r{i}")).collect::<Vec<_>>()
        );
        assert!(
            claim(&store, "t", "r8", &dp).is_err(),
            "the ninth is over budget"
        );
    }
}
