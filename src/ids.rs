//! Who and what is who: the small identity types every layer names (the server's
//! index, a batch, a window, a run, a sum part), at the bottom so that no import has to
//! point upward. Where their objects live is `batch`'s and `runs`' business.

use anyhow::anyhow;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use uuid::Uuid;

/// Sets and maps keyed by report id (ENPA packet UUID, DAP report id). Clients choose the
/// ids, so the hash is keyed (a random seed per map: ids cannot be made to collide), and
/// fast: std's SipHash on these maps was ~13% of aggregate's time for small reports.
pub type ReportIdSet = foldhash::HashSet<Uuid>;
/// See [`ReportIdSet`].
pub type ReportIdMap<V> = foldhash::HashMap<Uuid, V>;

/// Which of the two servers: 0 holds the leader share (PHA), 1 the helper seed (facilitator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ServerIndex {
    Zero,
    One,
}

impl ServerIndex {
    pub fn number(self) -> u8 {
        match self {
            ServerIndex::Zero => 0,
            ServerIndex::One => 1,
        }
    }
    pub fn peer(self) -> Self {
        match self {
            ServerIndex::Zero => ServerIndex::One,
            ServerIndex::One => ServerIndex::Zero,
        }
    }
    pub fn is_leader(self) -> bool {
        self == ServerIndex::Zero
    }
    pub const BOTH: [ServerIndex; 2] = [ServerIndex::Zero, ServerIndex::One];
}

impl TryFrom<u8> for ServerIndex {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            0 => Ok(ServerIndex::Zero),
            1 => Ok(ServerIndex::One),
            _ => Err(format!("server index must be 0 or 1, got {n}")),
        }
    }
}

impl From<ServerIndex> for u8 {
    fn from(s: ServerIndex) -> u8 {
        s.number()
    }
}

impl std::fmt::Display for ServerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}

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

pub(crate) const DATE_PATH: &str = "%Y/%m/%d/%H/%M";
pub(crate) const WINDOW_TIME: &str = "%Y%m%d%H%M";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId {
    pub aggregation: String,
    pub time: DateTime<Utc>,
    pub uuid: Uuid,
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
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.aggregation, self.date_path(), self.uuid)
    }
}

/// An aggregation window: batches whose minute lies in `[start, end]`, both ends
/// included, as the original's sum parts name them (`202104131917-202104131917` covers
/// the batches of 19:17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

    /// The end as an exclusive bound: `end` names the window's last minute, included.
    pub fn end_exclusive(&self) -> DateTime<Utc> {
        self.end + chrono::TimeDelta::minutes(1)
    }

    /// `202104131917-202104131917`
    pub fn name(&self) -> String {
        format!(
            "{}-{}",
            self.start.format(WINDOW_TIME),
            self.end.format(WINDOW_TIME)
        )
    }

    /// The window [`Window::name`] gives `name`, if `name` is one (canonical only).
    pub fn parse_name(name: &str) -> Option<Window> {
        let (start, end) = name.split_once('-')?;
        let time = |t: &str| {
            NaiveDateTime::parse_from_str(t, WINDOW_TIME)
                .ok()
                .map(|t| t.and_utc())
        };
        Window::new(time(start)?, time(end)?)
            .ok()
            .filter(|w| w.name() == name)
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

/// One aggregation run: a window's regular run (0) or its k-th run of late batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId {
    pub aggregation: String,
    pub window: Window,
    pub run: u32,
}

impl RunId {
    pub fn new(aggregation: &str, window: Window, run: u32) -> anyhow::Result<Self> {
        validate_name("aggregation", aggregation).map_err(|e| anyhow!(e))?;
        Ok(RunId {
            aggregation: aggregation.to_string(),
            window,
            run,
        })
    }

    /// `202611230000-202611232359` or `202611230000-202611232359-late1`.
    pub fn name(&self) -> String {
        run_name(&self.window, self.run)
    }

    /// The sum part `server` (of `instance`) writes for this run.
    pub fn sum_part(&self, instance: &str, server: ServerIndex) -> SumPartId {
        SumPartId {
            instance: instance.to_string(),
            aggregation: self.aggregation.clone(),
            window: self.window,
            run: self.run,
            server,
        }
    }

    /// The window and run [`run_name`] gives `name`, if `name` is one (canonical only).
    pub fn parse_name(name: &str) -> Option<(Window, u32)> {
        let (window, run) = match name.get(25..) {
            Some("") => (name, 0),
            Some(late) => (&name[..25], late.strip_prefix("-late")?.parse().ok()?),
            None => return None,
        };
        let window = Window::parse_name(window)?;
        (run_name(&window, run) == name).then_some((window, run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_parse_back_and_nothing_else_does() {
        let window = Window::new(
            parse_time("202611230000").unwrap(),
            parse_time("202611232359").unwrap(),
        )
        .unwrap();
        for run in [0, 1, 12] {
            let name = run_name(&window, run);
            assert_eq!(RunId::parse_name(&name), Some((window, run)), "{name}");
        }
        for bad in [
            "",
            "202611230000-202611232359-late",
            "202611230000-202611232359-late0",
            "202611230000-202611232359-late01",
            "202611230000-202611232359x",
            "202611232359-202611230000",
            "202611230000-2026112323590",
            "20261123000-202611232359",
            "202611230000-202611232359.pass0",
            "2026112300é0-202611232359",
        ] {
            assert_eq!(RunId::parse_name(bad), None, "{bad}");
        }
    }
}
