//! The two signed objects of a heavy-hitters traversal, read and written here only.
//!
//! - A **pass query**, the portal's: which Poplar1 pass (level and candidate prefixes,
//!   VDAF-18's aggregation parameter) to run next over a window's reports, and the
//!   threshold the portal reveals counts by. The portal writes one into each server's
//!   sum-parts location: `{instance}/{aggregation}/{window}.pass{k}.query`.
//! - A **pass sum part**, each server's answer: its share of the per-prefix counts,
//!   sealed to the collector, with the report count, DAP's checksum over the counted
//!   report ids and the reports found invalid: `{…}.pass{k}.sum_{server}`.
//!
//! Both are signed JSON objects created once and never replaced; each names its
//! aggregation, window and pass inside the signed content, so one copied under another
//! name is refused. Byte strings are base64url, as task files carry them.

use super::{sign_json, verify_json, BatchError, Window};
use crate::crypto::{SigningKey, TrustSet};
use crate::ids::ServerIndex;
use crate::store::{get_bytes, ObjectStore};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A query is a few KB (its prefixes); a sum part lists invalid reports, so it may be
/// larger, but not unboundedly.
const MAX_QUERY_BYTES: u64 = 16 << 20;
const MAX_PASS_SUM_BYTES: u64 = 256 << 20;

/// One pass of one traversal: the window's reports of an aggregation, pass `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassId {
    pub instance: String,
    pub aggregation: String,
    pub window: Window,
    pub index: u32,
}

impl PassId {
    fn stem(&self) -> String {
        format!(
            "{}/{}/{}.pass{}",
            self.instance,
            self.aggregation,
            self.window.name(),
            self.index
        )
    }

    /// Key of the portal's query for this pass (in each server's sum-parts location).
    pub fn query_name(&self) -> String {
        format!("{}.query", self.stem())
    }

    /// Key of `server`'s sum part of this pass (in its sum-parts location).
    pub fn sum_name(&self, server: ServerIndex) -> String {
        format!("{}.sum_{server}", self.stem())
    }
}

impl std::fmt::Display for PassId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} pass {}",
            self.aggregation,
            self.window.name(),
            self.index
        )
    }
}

/// What a query asks of the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassQuery {
    pub task_id: [u8; 32],
    /// The pass, encoded (VDAF-18's Poplar1 aggregation parameter).
    pub pass: Vec<u8>,
    /// Prefix counts below this are not revealed; servers refuse one below their
    /// `min_clients`.
    pub threshold: u64,
}

#[derive(Serialize, Deserialize)]
struct QueryJson {
    aggregation: String,
    window: String,
    index: u32,
    task_id: String,
    pass: String,
    threshold: u64,
}

/// One report a server could not count in a pass, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidReport {
    /// The ingestion batch that carried it, as displayed (a report id may come twice).
    pub batch: String,
    pub report_id: uuid::Uuid,
    pub reason: String,
}

/// A server's share of a pass's per-prefix counts and what it was taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassSumPart {
    pub task_id: [u8; 32],
    pub pass: Vec<u8>,
    /// The ingestion batches whose reports were evaluated, as displayed.
    pub batches: Vec<String>,
    pub report_count: u64,
    /// DAP's checksum over the counted report ids.
    pub checksum: [u8; 32],
    pub invalid: Vec<InvalidReport>,
    /// The aggregate share, HPKE-sealed to the collector (DAP-18's encryption).
    pub collector_config_id: u8,
    pub enc: Vec<u8>,
    pub payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SumJson {
    aggregation: String,
    window: String,
    index: u32,
    server: u8,
    task_id: String,
    pass: String,
    batches: Vec<String>,
    report_count: u64,
    checksum: String,
    invalid: Vec<InvalidReport>,
    collector_config_id: u8,
    enc: String,
    payload: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64<const N: usize>(text: &str, field: &str, object: &str) -> Result<Vec<u8>, BatchError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| BatchError::Other {
            object: object.to_string(),
            reason: format!("{field} is not base64url"),
        })?;
    if N > 0 && bytes.len() != N {
        return Err(BatchError::Other {
            object: object.to_string(),
            reason: format!("{field} is {} bytes, expected {N}", bytes.len()),
        });
    }
    Ok(bytes)
}

fn fixed<const N: usize>(text: &str, field: &str, object: &str) -> Result<[u8; N], BatchError> {
    let bytes = unb64::<N>(text, field, object)?;
    let mut out = [0; N];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Refuses an object whose signed content names another pass than its key does.
fn check_names(
    id: &PassId,
    (aggregation, window, index): (&str, &str, u32),
    object: &str,
) -> Result<(), BatchError> {
    if aggregation != id.aggregation || window != id.window.name() || index != id.index {
        return Err(BatchError::Other {
            object: object.to_string(),
            reason: format!("it is of {aggregation}/{window} pass {index}, but stored as {id}"),
        });
    }
    Ok(())
}

/// The windows of `aggregation` whose traversal has begun (its pass-0 query is in
/// `store`), oldest first. Keys that only look like queries are passed over.
pub fn traversal_windows(
    store: &dyn ObjectStore,
    instance: &str,
    aggregation: &str,
) -> Result<Vec<Window>, BatchError> {
    let prefix = format!("{instance}/{aggregation}/");
    windows_in(&store.list(&prefix)?, &prefix)
}

/// Of [`traversal_windows`], those whose latest query `server` has not answered with its
/// sum part yet: the ones with work for it. From one listing, no object read.
pub fn unanswered_traversal_windows(
    store: &dyn ObjectStore,
    instance: &str,
    aggregation: &str,
    server: ServerIndex,
) -> Result<Vec<Window>, BatchError> {
    let prefix = format!("{instance}/{aggregation}/");
    let keys = store.list(&prefix)?;
    let present: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut unanswered = Vec::new();
    for window in windows_in(&keys, &prefix)? {
        let id = |index| PassId {
            instance: instance.to_string(),
            aggregation: aggregation.to_string(),
            window,
            index,
        };
        let latest = (0u32..)
            .take_while(|k| present.contains(id(*k).query_name().as_str()))
            .last();
        if let Some(k) = latest {
            if !present.contains(id(k).sum_name(server).as_str()) {
                unanswered.push(window);
            }
        }
    }
    Ok(unanswered)
}

/// The windows whose pass-0 query is among `keys` (listed under `prefix`), oldest first.
fn windows_in(keys: &[String], prefix: &str) -> Result<Vec<Window>, BatchError> {
    let mut windows = Vec::new();
    for key in keys {
        let Some(name) = key
            .strip_prefix(prefix)
            .and_then(|k| k.strip_suffix(".pass0.query"))
        else {
            continue;
        };
        if let Some(window) = Window::parse_name(name) {
            windows.push(window);
        }
    }
    windows.sort_by_key(|w| (w.start, w.end));
    Ok(windows)
}

/// Writes the query unless one exists: true if this call wrote it, false if a query was
/// already there (read it to compare).
pub fn create_pass_query(
    store: &dyn ObjectStore,
    id: &PassId,
    query: &PassQuery,
    key: &SigningKey,
) -> Result<bool, BatchError> {
    let name = id.query_name();
    let json = QueryJson {
        aggregation: id.aggregation.clone(),
        window: id.window.name(),
        index: id.index,
        task_id: b64(&query.task_id),
        pass: b64(&query.pass),
        threshold: query.threshold,
    };
    let bytes = sign_json(&json, key, &store.describe(&name))?;
    Ok(store.create_new(&name, &bytes)?)
}

/// The query for the pass, its signature checked against `trust` (the portal's keys);
/// None if there is none.
pub fn read_pass_query(
    store: &dyn ObjectStore,
    id: &PassId,
    trust: &TrustSet,
) -> Result<Option<PassQuery>, BatchError> {
    let name = id.query_name();
    if store.head(&name)?.is_none() {
        return Ok(None);
    }
    let object = store.describe(&name);
    let bytes = get_bytes(store, &name, MAX_QUERY_BYTES)?;
    let q: QueryJson = verify_json(&bytes, trust, &object)?;
    check_names(id, (&q.aggregation, &q.window, q.index), &object)?;
    Ok(Some(PassQuery {
        task_id: fixed::<32>(&q.task_id, "task_id", &object)?,
        pass: unb64::<0>(&q.pass, "pass", &object)?,
        threshold: q.threshold,
    }))
}

/// Writes `server`'s sum part of the pass unless one exists (true if this call wrote it).
pub fn create_pass_sum_part(
    store: &dyn ObjectStore,
    id: &PassId,
    server: ServerIndex,
    part: &PassSumPart,
    key: &SigningKey,
) -> Result<bool, BatchError> {
    let name = id.sum_name(server);
    let json = SumJson {
        aggregation: id.aggregation.clone(),
        window: id.window.name(),
        index: id.index,
        server: server.number(),
        task_id: b64(&part.task_id),
        pass: b64(&part.pass),
        batches: part.batches.clone(),
        report_count: part.report_count,
        checksum: b64(&part.checksum),
        invalid: part.invalid.clone(),
        collector_config_id: part.collector_config_id,
        enc: b64(&part.enc),
        payload: b64(&part.payload),
    };
    let bytes = sign_json(&json, key, &store.describe(&name))?;
    Ok(store.create_new(&name, &bytes)?)
}

/// `server`'s sum part of the pass, its signature checked against `trust`; None if it
/// is not written yet.
pub fn read_pass_sum_part(
    store: &dyn ObjectStore,
    id: &PassId,
    server: ServerIndex,
    trust: &TrustSet,
) -> Result<Option<PassSumPart>, BatchError> {
    let name = id.sum_name(server);
    if store.head(&name)?.is_none() {
        return Ok(None);
    }
    let object = store.describe(&name);
    let bytes = get_bytes(store, &name, MAX_PASS_SUM_BYTES)?;
    let s: SumJson = verify_json(&bytes, trust, &object)?;
    check_names(id, (&s.aggregation, &s.window, s.index), &object)?;
    if s.server != server.number() {
        return Err(BatchError::Other {
            object,
            reason: format!(
                "a sum part of server {}, stored as server {server}'s",
                s.server
            ),
        });
    }
    Ok(Some(PassSumPart {
        task_id: fixed::<32>(&s.task_id, "task_id", &object)?,
        pass: unb64::<0>(&s.pass, "pass", &object)?,
        batches: s.batches,
        report_count: s.report_count,
        checksum: fixed::<32>(&s.checksum, "checksum", &object)?,
        invalid: s.invalid,
        collector_config_id: s.collector_config_id,
        enc: unb64::<0>(&s.enc, "enc", &object)?,
        payload: unb64::<0>(&s.payload, "payload", &object)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::parse_time;
    use crate::store::LocalStore;

    fn id(index: u32) -> PassId {
        let t = parse_time("202612050000").unwrap();
        PassId {
            instance: "test".into(),
            aggregation: "hh".into(),
            window: Window::new(t, t + chrono::TimeDelta::minutes(59)).unwrap(),
            index,
        }
    }

    fn keys() -> (SigningKey, TrustSet) {
        let (key, _) = SigningKey::generate("portal-signing").unwrap();
        let mut trust = TrustSet::new();
        trust.insert(key.key_id(), key.verifying_key());
        (key, trust)
    }

    #[test]
    fn a_query_is_written_once_and_read_back_only_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (key, trust) = keys();
        let q = PassQuery {
            task_id: [7; 32],
            pass: vec![0, 3, 0, 0, 0, 1, 0xa0],
            threshold: 5,
        };
        assert!(create_pass_query(&store, &id(0), &q, &key).unwrap());
        assert!(!create_pass_query(&store, &id(0), &q, &key).unwrap());
        assert_eq!(read_pass_query(&store, &id(0), &trust).unwrap(), Some(q));
        assert_eq!(read_pass_query(&store, &id(1), &trust).unwrap(), None);
        // Copied under pass 1's name: refused.
        let bytes = std::fs::read(dir.path().join(id(0).query_name())).unwrap();
        store.create_new(&id(1).query_name(), &bytes).unwrap();
        let e = read_pass_query(&store, &id(1), &trust).unwrap_err();
        assert!(e.to_string().contains("stored as hh/"), "{e}");
        assert_eq!(
            traversal_windows(&store, "test", "hh").unwrap(),
            vec![id(0).window]
        );
        assert!(traversal_windows(&store, "test", "other")
            .unwrap()
            .is_empty());
        // Passes 0 and 1 asked (by the listing alone): unanswered until server 0's sum
        // part of pass 1 is in; server 1 has not answered either.
        let unanswered = |s| {
            unanswered_traversal_windows(&store, "test", "hh", s)
                .unwrap()
                .len()
        };
        assert_eq!(unanswered(ServerIndex::Zero), 1);
        store
            .create_new(&id(0).sum_name(ServerIndex::Zero), b"x")
            .unwrap();
        assert_eq!(unanswered(ServerIndex::Zero), 1, "pass 1 is the latest");
        store
            .create_new(&id(1).sum_name(ServerIndex::Zero), b"x")
            .unwrap();
        assert_eq!(unanswered(ServerIndex::Zero), 0);
        assert_eq!(unanswered(ServerIndex::One), 1);
        // Signed by another key: refused.
        let (_, other) = keys();
        assert!(read_pass_query(&store, &id(0), &other).is_err());
    }

    #[test]
    fn a_sum_part_round_trips_and_names_its_server() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (key, trust) = keys();
        let part = PassSumPart {
            task_id: [1; 32],
            pass: vec![0, 0, 0, 0, 0, 1, 0x80],
            batches: vec!["hh/2026/12/05/00/00/x".into()],
            report_count: 12,
            checksum: [9; 32],
            invalid: vec![InvalidReport {
                batch: "hh/2026/12/05/00/00/x".into(),
                report_id: uuid::Uuid::from_u128(3),
                reason: "proof".into(),
            }],
            collector_config_id: 4,
            enc: vec![1, 2],
            payload: vec![3, 4, 5],
        };
        let p = id(2);
        assert!(create_pass_sum_part(&store, &p, ServerIndex::One, &part, &key).unwrap());
        let read = read_pass_sum_part(&store, &p, ServerIndex::One, &trust).unwrap();
        assert_eq!(read, Some(part));
        assert_eq!(
            read_pass_sum_part(&store, &p, ServerIndex::Zero, &trust).unwrap(),
            None
        );
        let bytes = std::fs::read(dir.path().join(p.sum_name(ServerIndex::One))).unwrap();
        store
            .create_new(&p.sum_name(ServerIndex::Zero), &bytes)
            .unwrap();
        let e = read_pass_sum_part(&store, &p, ServerIndex::Zero, &trust).unwrap_err();
        assert!(e.to_string().contains("server 1"), "{e}");
    }
}
