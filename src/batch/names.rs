//! Batch identity and the object names of the ENPA layout.

use crate::vdaf::ServerIndex;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use uuid::Uuid;

/// Checks an aggregation or instance name: it becomes part of object keys, so only
/// `[A-Za-z0-9._-]`, not starting with `.`, at most 200 characters.
pub fn validate_name(what: &str, name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 200 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(format!(
            "{what} {name:?} is not a valid name (1-200 characters of A-Z a-z 0-9 . _ -, not starting with '.')"
        ));
    }
    Ok(())
}

/// Drops seconds and below: batch times and windows have minute precision.
pub fn truncate_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp() - i64::from(t.second());
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

const DATE_PATH: &str = "%Y/%m/%d/%H/%M";
const WINDOW_TIME: &str = "%Y%m%d%H%M";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId {
    pub aggregation: String,
    pub time: DateTime<Utc>,
    pub uuid: Uuid,
}

/// Which kind of batch: what the ingestor wrote, or a server's validation of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Ingestion,
    Validation(ServerIndex),
}

impl BatchKind {
    fn extension(self) -> String {
        match self {
            BatchKind::Ingestion => "batch".into(),
            BatchKind::Validation(s) => format!("validity_{s}"),
        }
    }
}

/// The three object keys of a batch (header, packet file, signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNames {
    pub header: String,
    pub packets: String,
    pub signature: String,
}

impl ObjectNames {
    fn from_header(header: String, packets: String) -> Self {
        ObjectNames {
            signature: format!("{header}.sig"),
            header,
            packets,
        }
    }
}

impl BatchId {
    pub fn new(aggregation: &str, time: DateTime<Utc>, uuid: Uuid) -> Result<Self, String> {
        validate_name("aggregation", aggregation)?;
        Ok(BatchId {
            aggregation: aggregation.to_string(),
            time: truncate_to_minute(time),
            uuid,
        })
    }

    pub fn date_path(&self) -> String {
        self.time.format(DATE_PATH).to_string()
    }

    pub fn names(&self, kind: BatchKind) -> ObjectNames {
        let header = format!(
            "{}/{}/{}.{}",
            self.aggregation,
            self.date_path(),
            self.uuid,
            kind.extension()
        );
        ObjectNames::from_header(header.clone(), format!("{header}.avro"))
    }

    /// Key of this server's share stash for the batch (in its own location).
    pub fn stash_name(&self, server: ServerIndex) -> String {
        format!(
            "{}/{}/{}.shares_{server}",
            self.aggregation,
            self.date_path(),
            self.uuid
        )
    }

    /// Parses the signature key of a batch of `kind` (`agg/Y/m/d/H/M/uuid.ext.sig`);
    /// None for any other key.
    pub fn from_signature_key(key: &str, kind: BatchKind) -> Option<BatchId> {
        let suffix = format!(".{}.sig", kind.extension());
        let stem = key.strip_suffix(&suffix)?;
        let mut parts = stem.rsplitn(7, '/');
        let uuid = Uuid::parse_str(parts.next()?).ok()?;
        let minute = parts.next()?;
        let hour = parts.next()?;
        let day = parts.next()?;
        let month = parts.next()?;
        let year = parts.next()?;
        let aggregation = parts.next()?;
        let date = format!("{year}/{month}/{day}/{hour}/{minute}");
        let time = NaiveDateTime::parse_from_str(&date, DATE_PATH)
            .ok()?
            .and_utc();
        let id = BatchId::new(aggregation, time, uuid).ok()?;
        // Only canonical keys: the round trip must give the same key back.
        (id.names(kind).signature == key).then_some(id)
    }
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.aggregation, self.date_path(), self.uuid)
    }
}

/// An aggregation window: batches whose minute lies in `[start, end]`, both ends
/// included, as the original's sum parts name them (`202104131917-202104131917` covers
/// the batches of 19:17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        let (start, end) = (truncate_to_minute(start), truncate_to_minute(end));
        if end < start {
            return Err(format!("window end {end} is before its start {start}"));
        }
        Ok(Window { start, end })
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let t = truncate_to_minute(t);
        self.start <= t && t <= self.end
    }

    /// `202104131917-202104131917`
    pub fn name(&self) -> String {
        format!(
            "{}-{}",
            self.start.format(WINDOW_TIME),
            self.end.format(WINDOW_TIME)
        )
    }
}

/// Parses a time as `YYYYmmddHHMM`, `YYYY/mm/dd/HH/MM` or RFC 3339.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    for format in [WINDOW_TIME, DATE_PATH, "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("time {text:?} is not YYYYmmddHHMM, YYYY/mm/dd/HH/MM or RFC 3339"))
}

/// The three objects of a server's sum part for a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumPartId {
    pub instance: String,
    pub aggregation: String,
    pub window: Window,
    /// 0 for the window's regular run; k >= 1 for its k-th run of late batches.
    pub run: u32,
    pub server: ServerIndex,
}

/// A window's run as named in object keys: `{window}` for run 0, `{window}-late{k}` after.
pub fn run_name(window: &Window, run: u32) -> String {
    match run {
        0 => window.name(),
        k => format!("{}-late{k}", window.name()),
    }
}

impl SumPartId {
    pub fn names(&self) -> ObjectNames {
        let stem = format!(
            "{}/{}/{}",
            self.instance,
            self.aggregation,
            run_name(&self.window, self.run)
        );
        ObjectNames::from_header(
            format!("{stem}.sum_{}", self.server),
            format!("{stem}.invalid_uuid_{}.avro", self.server),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn fixture_id() -> BatchId {
        BatchId::new(
            "test-aggregation",
            parse_time("2021/04/13/19/17").unwrap(),
            Uuid::parse_str("ba097344-2b4e-45db-a002-c83f4a9adc63").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn names_match_the_enpa_layout() {
        let id = fixture_id();
        let n = id.names(BatchKind::Ingestion);
        assert_eq!(
            n.header,
            "test-aggregation/2021/04/13/19/17/ba097344-2b4e-45db-a002-c83f4a9adc63.batch"
        );
        assert_eq!(n.packets, format!("{}.avro", n.header));
        assert_eq!(n.signature, format!("{}.sig", n.header));
        let v = id.names(BatchKind::Validation(ServerIndex::One));
        assert!(v.header.ends_with(".validity_1"));
        assert_eq!(
            BatchId::from_signature_key(&n.signature, BatchKind::Ingestion),
            Some(id.clone())
        );
        assert_eq!(
            BatchId::from_signature_key(&v.signature, BatchKind::Ingestion),
            None
        );
        assert_eq!(
            BatchId::from_signature_key("x/2021/04/13/19/17/nope.batch.sig", BatchKind::Ingestion),
            None
        );
    }

    #[test]
    fn windows_include_both_ends() {
        let t = parse_time("202104131917").unwrap();
        let w = Window::new(t, t).unwrap();
        assert_eq!(w.name(), "202104131917-202104131917");
        assert!(w.contains(fixture_id().time));
        assert!(!w.contains(t + TimeDelta::minutes(1)));
        assert!(Window::new(t, t - TimeDelta::minutes(1)).is_err());
        let s = SumPartId {
            instance: "local-test".into(),
            aggregation: "test-aggregation".into(),
            window: w,
            run: 0,
            server: ServerIndex::Zero,
        };
        assert_eq!(
            s.names().header,
            "local-test/test-aggregation/202104131917-202104131917.sum_0"
        );
        assert_eq!(
            s.names().packets,
            "local-test/test-aggregation/202104131917-202104131917.invalid_uuid_0.avro"
        );
        let late = SumPartId { run: 2, ..s };
        assert_eq!(
            late.names().signature,
            "local-test/test-aggregation/202104131917-202104131917-late2.sum_0.sig"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("aggregation", "a-b_c.1").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(validate_name("aggregation", bad).is_err(), "{bad:?}");
        }
    }
}
