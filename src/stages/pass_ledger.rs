//! Heavy hitters' privacy rule, kept per batch on each server. A Poplar1 report may be
//! evaluated again only deeper in the tree and at extensions of the last pass's prefixes
//! (VDAF-18's aggregation-parameter validity): evaluated at two unrelated sets of prefixes
//! it could reveal more than the counts. So before a server evaluates a batch at a pass
//! it records the pass in its own location, and it refuses a pass the recorded ones do
//! not allow, whatever the portal asks. Passes are numbered from 0 in the order they are
//! run; asking the same pass again (a rerun after a kill) is allowed and records nothing.
//! A report belongs to one batch (replays across batches are refused at the first pass,
//! as for Prio3), so a batch's record is each of its reports'.

use crate::batch::{create_pass_record, read_pass_record, BatchId};
use crate::config::Server;
use crate::crypto::{SigningKey, TrustSet};
use crate::dap::poplar1::Pass;
use crate::ids::ServerIndex;
use crate::store::ObjectStore;
use anyhow::{anyhow, bail, Result};

/// One server's pass records: where they live and the key that signs them.
pub struct PassLedger<'a> {
    pub store: &'a dyn ObjectStore,
    pub trust: &'a TrustSet,
    pub key: &'a SigningKey,
    pub server: ServerIndex,
}

/// Whether a pass is new for the batch or was recorded before (a rerun).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    First,
    Again,
}

impl<'a> PassLedger<'a> {
    /// The ledger in the server's own location, signed with its key.
    pub fn of(server: &'a Server) -> Self {
        PassLedger {
            store: server.own.as_ref(),
            trust: &server.own_trust,
            key: &server.signing_key,
            server: server.index,
        }
    }

    /// The passes recorded for the batch, in order.
    pub fn passes(&self, id: &BatchId) -> Result<Vec<Pass>> {
        let mut passes = Vec::new();
        for index in 0.. {
            match self.read(id, index)? {
                Some(pass) => passes.push(pass),
                None => return Ok(passes),
            }
        }
        Ok(passes)
    }

    /// Records pass `index` of the batch before it is evaluated, or says why it may not be.
    pub fn admit(&self, id: &BatchId, index: u32, pass: &Pass) -> Result<Admitted> {
        let mut earlier = Vec::new();
        for k in 0..index {
            let recorded = self.read(id, k)?.ok_or_else(|| {
                anyhow!(
                    "{id}: pass {index} asked of server {}, which never ran pass {k} on this batch (passes run in order)",
                    self.server
                )
            })?;
            earlier.push(recorded);
        }
        if let Some(recorded) = self.read(id, index)? {
            return self.same_as(id, index, &recorded, pass);
        }
        if !pass.may_follow(&earlier) {
            let last = earlier
                .last()
                .map_or_else(String::new, |p| format!(" after level {}", p.level()));
            bail!(
                "{id}: pass {index} (level {}, {} prefixes) may not follow the passes server {} ran{last}: each pass must go deeper and extend the last pass's prefixes, or the reports could reveal more than their counts",
                pass.level(),
                pass.len(),
                self.server
            );
        }
        let encoded = pass.encode().map_err(|e| anyhow!("{id}: {e}"))?;
        if create_pass_record(self.store, id, self.server, index, &encoded, self.key)? {
            return Ok(Admitted::First);
        }
        // Another worker recorded it first: it must be this very pass.
        let recorded = self
            .read(id, index)?
            .ok_or_else(|| anyhow!("{id}: pass {index}'s record vanished"))?;
        self.same_as(id, index, &recorded, pass)
    }

    fn same_as(&self, id: &BatchId, index: u32, recorded: &Pass, pass: &Pass) -> Result<Admitted> {
        if recorded == pass {
            return Ok(Admitted::Again);
        }
        bail!(
            "{id}: pass {index} was run by server {} at level {} ({} prefixes); it cannot be run again at level {} ({} prefixes): a report is evaluated once per pass",
            self.server,
            recorded.level(),
            recorded.len(),
            pass.level(),
            pass.len()
        )
    }

    fn read(&self, id: &BatchId, index: u32) -> Result<Option<Pass>> {
        let Some(bytes) = read_pass_record(self.store, id, self.server, index, self.trust)? else {
            return Ok(None);
        };
        Pass::decode(&bytes).map(Some).map_err(|e| {
            anyhow!(
                "{}: {e}",
                self.store
                    .describe(&id.pass_record_name(self.server, index))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dap::poplar1::Prefix;
    use crate::store::LocalStore;

    fn bits(s: &str) -> Prefix {
        Prefix::from_bools(&s.chars().map(|c| c == '1').collect::<Vec<_>>())
    }

    fn pass(prefixes: &[&str]) -> Pass {
        Pass::new(prefixes.iter().map(|p| bits(p)).collect()).unwrap()
    }

    fn batch() -> BatchId {
        BatchId::new(
            "hh",
            crate::ids::parse_time("2026/12/04/10/00").unwrap(),
            uuid::Uuid::from_u128(7),
        )
        .unwrap()
    }

    /// A folder, server 0's signing key and the trust set holding it.
    struct Fixture {
        dir: tempfile::TempDir,
        store: LocalStore,
        key: SigningKey,
        trust: TrustSet,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (key, _) = SigningKey::generate("s0").unwrap();
        let mut trust = TrustSet::new();
        trust.insert("s0", key.verifying_key());
        Fixture {
            dir,
            store,
            key,
            trust,
        }
    }

    impl Fixture {
        fn ledger(&self) -> PassLedger<'_> {
            PassLedger {
                store: &self.store,
                trust: &self.trust,
                key: &self.key,
                server: ServerIndex::Zero,
            }
        }
    }

    #[test]
    fn passes_are_recorded_in_order_and_only_deeper_extending_ones_follow() {
        let f = fixture();
        let ledger = f.ledger();
        let id = batch();
        let first = pass(&["0", "1"]);
        assert_eq!(ledger.admit(&id, 0, &first).unwrap(), Admitted::First);
        // A rerun of the same pass changes nothing; another pass 0 is refused.
        assert_eq!(ledger.admit(&id, 0, &first).unwrap(), Admitted::Again);
        let err = ledger.admit(&id, 0, &pass(&["0"])).unwrap_err().to_string();
        assert!(err.contains("once per pass"), "{err}");
        // Pass 2 before pass 1: refused.
        let err = ledger
            .admit(&id, 2, &pass(&["100"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("never ran pass 1"), "{err}");
        // Pass 1 extends pass 0; then a pass not deeper, or not extending pass 1's
        // prefixes, is refused.
        let second = pass(&["10", "11"]);
        assert_eq!(ledger.admit(&id, 1, &second).unwrap(), Admitted::First);
        for bad in [pass(&["00"]), pass(&["1"]), pass(&["000"])] {
            let err = ledger.admit(&id, 2, &bad).unwrap_err().to_string();
            assert!(err.contains("may not follow"), "{err}");
        }
        assert_eq!(
            ledger.admit(&id, 2, &pass(&["1101"])).unwrap(),
            Admitted::First
        );
        assert_eq!(
            ledger.passes(&id).unwrap(),
            vec![first, second, pass(&["1101"])]
        );
        // The other server's ledger of the same batch is its own.
        let other = PassLedger {
            server: ServerIndex::One,
            ..ledger
        };
        assert!(other.passes(&id).unwrap().is_empty());
    }

    #[test]
    fn a_record_moved_or_signed_by_another_key_is_refused() {
        let f = fixture();
        let ledger = f.ledger();
        let id = batch();
        // Signed by a key of the trusted id that is not the trusted key.
        let (stranger, _) = SigningKey::generate("s0").unwrap();
        let forged = PassLedger {
            key: &stranger,
            ..ledger
        };
        forged.admit(&id, 0, &pass(&["0", "1"])).unwrap();
        let err = ledger.passes(&id).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
        // A genuine record of pass 0 copied in as pass 1.
        let f = fixture();
        let ledger = f.ledger();
        ledger.admit(&id, 0, &pass(&["0", "1"])).unwrap();
        let path = |index| {
            f.dir
                .path()
                .join(id.pass_record_name(ServerIndex::Zero, index))
        };
        std::fs::copy(path(0), path(1)).unwrap();
        let err = ledger.passes(&id).unwrap_err().to_string();
        assert!(err.contains("stored as pass 1"), "{err}");
    }
}
