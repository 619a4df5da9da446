//! Nothing is skipped in silence: what a stage would otherwise pass over without a word.
//! A location it reads that does not exist, an aggregation with no objects at all, objects
//! that look like batches under keys that are not canonical (never taken for batches), and
//! batches older than the lookback that were never validated or summed. Each is a
//! `Skipped`: intake and aggregate log it as a warning, `divvi status` shows it.

use crate::batch::{validate_name, BatchId, BatchKind};
use crate::config::Server;
use crate::store::ObjectStore;
use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// At most this many names are listed in one report (known aggregations, old batches).
const NAMES_SHOWN: usize = 10;

pub const MISSING_LOCATION: &str = "missing_location";
pub const UNKNOWN_AGGREGATION: &str = "unknown_aggregation";
pub const NON_CANONICAL_KEY: &str = "non_canonical_key";
pub const OLDER_THAN_LOOKBACK: &str = "older_than_lookback";
/// Every kind of `Skipped`.
pub const KINDS: [&str; 4] = [
    MISSING_LOCATION,
    UNKNOWN_AGGREGATION,
    NON_CANONICAL_KEY,
    OLDER_THAN_LOOKBACK,
];

/// One thing passed over, the object or location it concerns, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// One of `KINDS`.
    pub kind: &'static str,
    /// The location or object (`file://…`, `s3://…`).
    pub object: String,
    pub reason: String,
}

impl Skipped {
    pub fn warn(&self) {
        tracing::warn!(kind = self.kind, object = %self.object, "{}", self.reason);
    }
}

/// Logs each as a warning.
pub fn warn_all(skipped: &[Skipped]) {
    skipped.iter().for_each(Skipped::warn);
}

/// An aggregation's ingestion objects, listed once: its complete batches under canonical
/// keys, and what was passed over on the way.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// Complete ingestion batches (the signature is written last), sorted.
    pub batches: Vec<BatchId>,
    /// Batches with a header or packet file but no signature (yet), sorted.
    pub incomplete: Vec<BatchId>,
    pub skipped: Vec<Skipped>,
}

/// Lists the whole aggregation in the ingestion location (every date, since a batch under
/// a non-canonical date is outside any hour prefix), after checking the locations read.
pub fn survey(server: &Server, aggregation: &str) -> Result<Survey> {
    validate_name("aggregation", aggregation).map_err(|e| anyhow!(e))?;
    let mut survey = Survey {
        skipped: missing_locations(server)?,
        ..Default::default()
    };
    if !server.ingestion.exists()? {
        return Ok(survey);
    }
    let keys = server.ingestion.list(&format!("{aggregation}/"))?;
    if keys.is_empty() {
        survey
            .skipped
            .push(unknown_aggregation(server.ingestion.as_ref(), aggregation)?);
    }
    let sorted = ingestion_keys(server.ingestion.as_ref(), &keys);
    survey.batches = sorted.complete;
    survey.incomplete = sorted.incomplete;
    survey.skipped.extend(sorted.odd);
    Ok(survey)
}

/// The locations a server's stages read (ingestion, peer_inbox, own) that do not exist.
/// Not fatal: on a fresh deployment a folder may simply not be created yet.
pub fn missing_locations(server: &Server) -> Result<Vec<Skipped>> {
    let read = [
        ("ingestion", server.ingestion.as_ref()),
        ("peer_inbox", server.peer_inbox.as_ref()),
        ("own", server.own.as_ref()),
    ];
    let mut missing = Vec::new();
    for (name, store) in read {
        if !store.exists()? {
            let object = store.describe("");
            missing.push(Skipped {
                kind: MISSING_LOCATION,
                reason: format!(
                    "location {name} {object} does not exist: nothing to read there; is the path right?"
                ),
                object,
            });
        }
    }
    Ok(missing)
}

fn unknown_aggregation(ingestion: &dyn ObjectStore, aggregation: &str) -> Result<Skipped> {
    let location = ingestion.describe("");
    let known = ingestion.top_level_names(NAMES_SHOWN + 1)?;
    let known = match known.len() {
        0 => "none, the location is empty".to_string(),
        n if n > NAMES_SHOWN => format!("{}, …", known[..NAMES_SHOWN].join(", ")),
        _ => known.join(", "),
    };
    Ok(Skipped {
        kind: UNKNOWN_AGGREGATION,
        reason: format!(
            "no batches of aggregation {aggregation} in {location}; known aggregations there: {known}"
        ),
        object: ingestion.describe(&format!("{aggregation}/")),
    })
}

/// Listed ingestion keys, sorted out.
#[derive(Debug, Clone, Default)]
pub struct IngestionKeys {
    /// Batches under canonical keys whose signature (written last) is there, sorted.
    pub complete: Vec<BatchId>,
    /// Batches under canonical keys with a header or packet file but no signature.
    pub incomplete: Vec<BatchId>,
    /// Batch objects (`.batch`, `.batch.avro`, `.batch.sig`) under any other key.
    pub odd: Vec<Skipped>,
}

/// Sorts listed ingestion keys out. Keys that do not look like batch objects at all are
/// left alone.
pub fn ingestion_keys(ingestion: &dyn ObjectStore, keys: &[String]) -> IngestionKeys {
    let mut signed: BTreeMap<BatchId, bool> = BTreeMap::new();
    let mut odd = Vec::new();
    for key in keys {
        let Some(stem) = batch_object_stem(key) else {
            continue;
        };
        match BatchId::from_signature_key(&format!("{stem}.batch.sig"), BatchKind::Ingestion) {
            Some(id) => *signed.entry(id).or_default() |= key.ends_with(".batch.sig"),
            None => odd.push(non_canonical(ingestion, key)),
        }
    }
    let (complete, incomplete) = signed.into_iter().partition(|(_, signed)| *signed);
    let ids = |batches: Vec<(BatchId, bool)>| batches.into_iter().map(|(id, _)| id).collect();
    IngestionKeys {
        complete: ids(complete),
        incomplete: ids(incomplete),
        odd,
    }
}

/// The key without its batch object extension, if it has one.
pub fn batch_object_stem(key: &str) -> Option<&str> {
    [".batch.sig", ".batch.avro", ".batch"]
        .iter()
        .find_map(|ext| key.strip_suffix(ext))
}

fn non_canonical(ingestion: &dyn ObjectStore, key: &str) -> Skipped {
    let object = ingestion.describe(key);
    Skipped {
        kind: NON_CANONICAL_KEY,
        reason: format!(
            "{object} looks like a batch object but its key is not canonical \
             ({{aggregation}}/YYYY/MM/DD/HH/MM/{{lower-case UUID}}.batch[.avro|.sig], zero-padded): \
             not taken for a batch; rename it if it is one"
        ),
        object,
    }
}

/// Intake: complete batches before `cutoff` (outside its lookback) that this server has
/// not validated, which `intake --pending` will never reach.
pub fn unvalidated_before(
    server: &Server,
    aggregation: &str,
    batches: &[BatchId],
    cutoff: DateTime<Utc>,
) -> Result<Option<Skipped>> {
    let kind = BatchKind::Validation(server.index);
    let validated = || -> Result<BTreeSet<String>> {
        Ok(server
            .own
            .list(&format!("{aggregation}/"))?
            .into_iter()
            .collect())
    };
    let left = left_before(batches, cutoff, validated, |id| id.names(kind).signature)?;
    Ok(older_than_lookback(
        server,
        aggregation,
        &left,
        cutoff,
        "have no validation by this server; intake --batch UUID (or a longer --lookback) validates them",
    ))
}

/// Aggregate and status: complete batches before `cutoff` (the first window of the
/// lookback) that no decided run lists, which `aggregate --pending` will never sum.
pub fn unsummed_before(
    server: &Server,
    aggregation: &str,
    batches: &[BatchId],
    cutoff: DateTime<Utc>,
) -> Result<Option<Skipped>> {
    let listed = || -> Result<BTreeSet<String>> {
        let (decided_in, _) = server.decisions();
        let runs = crate::schedule::list_manifests(decided_in, aggregation)?;
        Ok(crate::schedule::summed_by(server, &runs)?
            .into_keys()
            .collect())
    };
    let left = left_before(batches, cutoff, listed, ToString::to_string)?;
    Ok(older_than_lookback(
        server,
        aggregation,
        &left,
        cutoff,
        "are in no run; aggregate --start … --end … (or a longer --lookback) sums them",
    ))
}

/// Batches before `cutoff` still missing their signature: no scan within the lookback
/// watches them any more, so they would never be finished or reported again.
pub fn incomplete_before(
    server: &Server,
    aggregation: &str,
    incomplete: &[BatchId],
    cutoff: DateTime<Utc>,
) -> Option<Skipped> {
    let old: Vec<&BatchId> = incomplete.iter().filter(|id| id.time < cutoff).collect();
    older_than_lookback(
        server,
        aggregation,
        &old,
        cutoff,
        "are incomplete (no .batch.sig: the ingestor never finished them) and no longer watched; finish or remove them",
    )
}

/// The batches before `cutoff` whose `key` is not among what `done` lists (asked only
/// when there are such batches: it may read many objects).
fn left_before(
    batches: &[BatchId],
    cutoff: DateTime<Utc>,
    done: impl FnOnce() -> Result<BTreeSet<String>>,
    key: impl Fn(&BatchId) -> String,
) -> Result<Vec<&BatchId>> {
    let old: Vec<&BatchId> = batches.iter().filter(|id| id.time < cutoff).collect();
    if old.is_empty() {
        return Ok(old);
    }
    let done = done()?;
    Ok(old
        .into_iter()
        .filter(|id| !done.contains(&key(id)))
        .collect())
}

fn older_than_lookback(
    server: &Server,
    aggregation: &str,
    old: &[&BatchId],
    cutoff: DateTime<Utc>,
    what: &str,
) -> Option<Skipped> {
    if old.is_empty() {
        return None;
    }
    let shown: Vec<String> = old
        .iter()
        .take(NAMES_SHOWN)
        .map(ToString::to_string)
        .collect();
    let more = if old.len() > NAMES_SHOWN { ", …" } else { "" };
    Some(Skipped {
        kind: OLDER_THAN_LOOKBACK,
        object: server.ingestion.describe(&format!("{aggregation}/")),
        reason: format!(
            "{} ingestion batches of {aggregation} older than the lookback (before {cutoff}) {what}: {}{more}",
            old.len(),
            shown.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[test]
    fn only_canonical_batch_keys_are_batches_and_other_batch_objects_are_reported() {
        let store = LocalStore::new("/nowhere");
        let uuid = uuid::Uuid::new_v4();
        let upper = uuid.to_string().to_uppercase();
        let mut keys: Vec<String> = [
            format!("a/2026/01/02/03/04/{uuid}.batch"),
            format!("a/2026/01/02/03/04/{uuid}.batch.avro"),
            format!("a/2026/01/02/03/04/{uuid}.batch.sig"),
            format!("a/2026/1/2/3/4/{uuid}.batch.avro"),
            format!("a/2026/01/02/03/04/{upper}.batch.sig"),
            "a/notes.txt".to_string(),
        ]
        .into();
        let other = uuid::Uuid::new_v4();
        keys.push(format!("a/2026/01/02/03/05/{other}.batch"));
        let IngestionKeys {
            complete: batches,
            incomplete,
            odd,
        } = ingestion_keys(&store, &keys);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].uuid, uuid);
        assert_eq!(incomplete.len(), 1);
        assert_eq!(incomplete[0].uuid, other);
        let reported: Vec<&str> = odd.iter().map(|s| s.object.as_str()).collect();
        assert_eq!(reported.len(), 2, "{reported:?}");
        assert!(reported[0].ends_with(&keys[3]) && reported[1].ends_with(&keys[4]));
        assert!(odd.iter().all(|s| s.kind == "non_canonical_key"));
    }
}
