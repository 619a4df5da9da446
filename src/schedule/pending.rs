//! Intake's pending work: ingestion batches in a lookback window that have no validation
//! yet, incomplete batches (an object still missing), and how pending work is split
//! deterministically between workers (`--shard i/N`, Kubernetes Indexed Jobs).

use crate::batch::{truncate_to_minute, BatchId, BatchKind, Shard};
use crate::config::Server;
use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;

/// A batch some of whose objects are still missing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incomplete {
    pub batch: String,
    pub missing: Vec<String>,
    pub age_minutes: i64,
    /// Incomplete for longer than the configured limit: someone should look.
    pub overdue: bool,
}

/// The ingestion batches of a lookback window: complete ones, and incomplete ones.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub complete: Vec<BatchId>,
    pub incomplete: Vec<Incomplete>,
}

/// Lists an aggregation's ingestion batches whose time lies within `lookback` before
/// `now`, one listing per hour prefix (cheap on object stores).
pub fn scan_ingestion(
    server: &Server,
    aggregation: &str,
    lookback: TimeDelta,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Scan> {
    let now = truncate_to_minute(now);
    scan_ingestion_between(
        server,
        aggregation,
        now - lookback,
        now,
        incomplete_after,
        now,
    )
}

/// Lists an aggregation's ingestion batches whose minute lies in `[from, to]`; ages (for
/// `incomplete_after`) are counted to `now`.
pub fn scan_ingestion_between(
    server: &Server,
    aggregation: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Scan> {
    crate::batch::validate_name("aggregation", aggregation).map_err(anyhow::Error::msg)?;
    let (from, to) = (truncate_to_minute(from), truncate_to_minute(to));
    // Objects seen per batch stem: (header, packets, signature).
    let mut seen: BTreeMap<BatchId, [bool; 3]> = BTreeMap::new();
    let mut hour = from - TimeDelta::minutes(i64::from(chrono::Timelike::minute(&from)));
    while hour <= to {
        let prefix = format!("{aggregation}/{}/", hour.format("%Y/%m/%d/%H"));
        for key in server.ingestion.list(&prefix)? {
            let (stem, slot) = if let Some(s) = key.strip_suffix(".batch.sig") {
                (s, 2)
            } else if let Some(s) = key.strip_suffix(".batch.avro") {
                (s, 1)
            } else if let Some(s) = key.strip_suffix(".batch") {
                (s, 0)
            } else {
                continue;
            };
            let Some(id) =
                BatchId::from_signature_key(&format!("{stem}.batch.sig"), BatchKind::Ingestion)
            else {
                continue;
            };
            if id.time < from || id.time > to {
                continue;
            }
            seen.entry(id).or_default()[slot] = true;
        }
        hour += TimeDelta::hours(1);
    }
    let mut scan = Scan::default();
    for (id, [header, packets, signature]) in seen {
        // A signature without header or packets is the single-object form: complete.
        if signature {
            scan.complete.push(id);
            continue;
        }
        let names = id.names(BatchKind::Ingestion);
        let mut missing = vec![names.signature];
        if !header {
            missing.push(names.header);
        }
        if !packets {
            missing.push(names.packets);
        }
        let age = now - id.time;
        scan.incomplete.push(Incomplete {
            batch: id.to_string(),
            missing,
            age_minutes: age.num_minutes(),
            overdue: age >= incomplete_after,
        });
    }
    Ok(scan)
}

/// This worker's pending intake work: complete batches of the window whose validation by
/// this server is not written yet and that its shard owns; plus the incomplete batches.
pub fn pending_intake(
    server: &Server,
    aggregation: &str,
    lookback: TimeDelta,
    incomplete_after: TimeDelta,
    shard: Shard,
    now: DateTime<Utc>,
) -> Result<(Vec<BatchId>, Vec<Incomplete>)> {
    let scan = scan_ingestion(server, aggregation, lookback, incomplete_after, now)?;
    let mut pending = Vec::new();
    for id in scan.complete.into_iter().filter(|id| shard.owns(id)) {
        let own = id.names(BatchKind::Validation(server.index)).signature;
        if server.own.head(&own)?.is_none() {
            pending.push(id);
        }
    }
    Ok((pending, scan.incomplete))
}

/// Parses durations like `90m`, `36h`, `7d`.
pub fn parse_duration(text: &str) -> Result<TimeDelta> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| anyhow!("duration {text:?}: expected a number and m, h or d"))?;
    match unit {
        "m" => Ok(TimeDelta::minutes(n)),
        "h" => Ok(TimeDelta::hours(n)),
        "d" => Ok(TimeDelta::days(n)),
        _ => bail!("duration {text:?}: unit must be m, h or d"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_batches() {
        assert!(Shard::parse("2/4").is_ok());
        for bad in ["4/4", "1/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let ids: Vec<BatchId> = (0..200)
            .map(|_| BatchId::new("a", Utc::now(), uuid::Uuid::new_v4()).unwrap())
            .collect();
        for id in &ids {
            let owners = (0..4)
                .filter(|&i| Shard { index: i, count: 4 }.owns(id))
                .count();
            assert_eq!(owners, 1);
            assert!(Shard::ALL.owns(id));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_duration("36h").unwrap(), TimeDelta::hours(36));
        assert_eq!(parse_duration("7d").unwrap(), TimeDelta::days(7));
        for bad in ["", "h", "5s", "-3h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
