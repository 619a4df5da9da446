//! One report counts once, whatever it is wrapped in. An ingestor that copies a device's
//! packet into a new batch under a new packet UUID cannot open it, so the copy carries the
//! same share; intake remembers a fingerprint of every share it kept and leaves out of
//! its validation any share already kept under another UUID. Left out of one server's
//! validation, the copy is invalid on both servers: both reach the same verdict through
//! the validation batches they already exchange.
//!
//! What is remembered: per batch, a record in the server's own storage
//! (`{aggregation}/shares-seen/{Y/m/d/H/M}/{uuid}.seen_N`) of 32-byte entries
//! (fingerprint, packet UUID), sorted. A check streams the records of the batches within
//! the horizon of the batch's time, holding only the batch's own fingerprints in memory.
//!
//! Which copy is kept: a record is written before the check (so of two intakes racing,
//! at least one sees the other's record). A copy is refused if the batch holding the other
//! copy is validated already, or if neither is and the other batch sorts first (time,
//! then UUID). Both copies may be refused when a check races the other batch's commit:
//! a report lost, never one counted twice. Copies under the same UUID are left to the
//! UUID rules of aggregate, which already refuse them.

use crate::batch::{BatchId, BatchKind};
use crate::config::Server;
use crate::crypto::sha256;
use crate::store::put_bytes;
use anyhow::{Context, Result};
use chrono::TimeDelta;
use std::collections::HashMap;
use std::io::Read;
use uuid::Uuid;

/// A share's fingerprint: 16 bytes of SHA-256 (collisions between honest shares, which
/// are random, are out of reach).
pub type Fingerprint = [u8; 16];

const ENTRY: usize = 32;
const FOLDER: &str = "shares-seen";
/// Shares are uniformly random from their first bytes on; hashing a prefix keeps the cost
/// the same whatever the number of bins.
const HASHED_PREFIX: usize = 64;

pub fn fingerprint(share: &[u8]) -> Fingerprint {
    let mut input = Vec::with_capacity(32 + HASHED_PREFIX);
    input.extend_from_slice(b"divvi share fingerprint v1");
    input.extend_from_slice(&(share.len() as u64).to_be_bytes());
    input.extend_from_slice(&share[..share.len().min(HASHED_PREFIX)]);
    let digest = sha256(&input);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// A packet of this batch to leave out: its share was kept under another UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub uuid: Uuid,
    pub reason: String,
}

/// Notes that report `uuid` of a batch carries the share of `print`; refuses it as a
/// replay if another report of the batch carried that share first. The same report id
/// twice is not refused here: the steps after decide on report ids.
pub(crate) fn keep_share(
    kept: &mut HashMap<Fingerprint, Uuid>,
    print: Fingerprint,
    uuid: Uuid,
) -> Result<(), String> {
    match kept.entry(print) {
        std::collections::hash_map::Entry::Occupied(first) if *first.get() != uuid => Err(format!(
            "replayed: the same share as packet {} earlier in this batch",
            first.get()
        )),
        std::collections::hash_map::Entry::Occupied(_) => Ok(()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(uuid);
            Ok(())
        }
    }
}

fn record_key(id: &BatchId, server: &Server) -> String {
    format!(
        "{}/{FOLDER}/{}/{}.seen_{}",
        id.aggregation,
        id.date_path(),
        id.uuid,
        server.index
    )
}

/// The batch a record key names, if it is a canonical record key of this server.
fn batch_of_record(key: &str, server: &Server) -> Option<BatchId> {
    let stem = key.strip_suffix(&format!(".seen_{}", server.index))?;
    let (aggregation, rest) = stem.split_once(&format!("/{FOLDER}/"))?;
    let as_batch = format!("{aggregation}/{rest}");
    let id = BatchId::parse(&as_batch)?;
    (record_key(&id, server) == key).then_some(id)
}

/// Writes this batch's record of the shares it keeps, then finds those kept by another
/// batch within `horizon` of its time that this batch must leave out.
pub fn record_and_check(
    server: &Server,
    id: &BatchId,
    kept: &HashMap<Fingerprint, Uuid>,
    horizon: TimeDelta,
) -> Result<Vec<Replay>> {
    let mut entries: Vec<(&Fingerprint, &Uuid)> = kept.iter().collect();
    entries.sort();
    let bytes: Vec<u8> = entries
        .iter()
        .flat_map(|(f, u)| f.iter().chain(u.as_bytes()).copied())
        .collect();
    put_bytes(server.own.as_ref(), &record_key(id, server), &bytes)?;

    let mut replays = Vec::new();
    for key in records_within(server, id, horizon)? {
        let Some(other) = batch_of_record(&key, server) else {
            continue;
        };
        if other == *id || (other.time - id.time).abs() > horizon {
            continue;
        }
        let shared = shared_shares(server, &key, kept)?;
        if shared.is_empty() || !keeps_its_copies(server, &other, id)? {
            continue;
        }
        for (mine, theirs) in shared {
            replays.push(Replay {
                uuid: mine,
                reason: format!("replayed: the same share as packet {theirs} of batch {other}"),
            });
        }
    }
    replays.sort_by_key(|r| r.uuid);
    replays.dedup_by_key(|r| r.uuid);
    Ok(replays)
}

/// Keys of the records of batches whose day is within `horizon` of the batch's time:
/// listed day by day, so the work does not grow with the aggregation's whole history.
fn records_within(server: &Server, id: &BatchId, horizon: TimeDelta) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut day = (id.time - horizon).date_naive();
    let last = (id.time + horizon).date_naive();
    while day <= last {
        let prefix = format!("{}/{FOLDER}/{}/", id.aggregation, day.format("%Y/%m/%d"));
        keys.extend(server.own.list(&prefix)?);
        day = match day.succ_opt() {
            Some(next) => next,
            None => break,
        };
    }
    Ok(keys)
}

/// Whether `other`'s copies win over `this` batch's: it is validated already, or neither
/// is and it sorts first.
fn keeps_its_copies(server: &Server, other: &BatchId, this: &BatchId) -> Result<bool> {
    let validated = other.names(BatchKind::Validation(server.index)).signature;
    Ok(server.own.head(&validated)?.is_some() || other < this)
}

/// (this batch's UUID, the other batch's UUID) of each share both keep under different
/// UUIDs, read from the other batch's record entry by entry.
fn shared_shares(
    server: &Server,
    key: &str,
    kept: &HashMap<Fingerprint, Uuid>,
) -> Result<Vec<(Uuid, Uuid)>> {
    let object = server.own.describe(key);
    let mut reader = std::io::BufReader::new(server.own.get(key)?);
    let mut shared = Vec::new();
    let mut entry = [0u8; ENTRY];
    loop {
        match read_entry(&mut reader, &mut entry).with_context(|| object.clone())? {
            false => return Ok(shared),
            true => {
                let (f, u) = entry.split_at(16);
                let fingerprint: Fingerprint = f.try_into()?;
                let theirs = Uuid::from_slice(u)?;
                match kept.get(&fingerprint) {
                    Some(&mine) if mine != theirs => shared.push((mine, theirs)),
                    _ => {}
                }
            }
        }
    }
}

/// Reads one entry; false at a clean end, an error for a partial entry.
fn read_entry(reader: &mut impl Read, entry: &mut [u8; ENTRY]) -> Result<bool> {
    let mut filled = 0;
    while filled < ENTRY {
        match reader.read(&mut entry[filled..])? {
            0 if filled == 0 => return Ok(false),
            0 => anyhow::bail!("a record of shares seen ends inside an entry"),
            n => filled += n,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_with_the_share_and_its_length() {
        let a = fingerprint(&[1u8; 100]);
        assert_eq!(a, fingerprint(&[1u8; 100]));
        assert_ne!(a, fingerprint(&[1u8; 101]));
        let mut b = [1u8; 100];
        b[0] = 2;
        assert_ne!(a, fingerprint(&b));
    }

    #[test]
    fn a_partial_entry_is_an_error() {
        let mut entry = [0u8; ENTRY];
        assert!(!read_entry(&mut &[][..], &mut entry).unwrap());
        assert!(read_entry(&mut &[0u8; 40][..], &mut entry).unwrap());
        let mut short = &[0u8; 8][..];
        assert!(read_entry(&mut short, &mut entry).is_err());
    }
}
