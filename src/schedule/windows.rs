//! Scheduled windows: a period cuts time into windows aligned to the Unix epoch in UTC
//! (a 1d period gives calendar days, 1h gives clock hours), each `[start, end]` at minute
//! precision, end included.

use crate::batch::{truncate_to_minute, Window};
use anyhow::{bail, Result};
use chrono::{DateTime, TimeDelta, Utc};

/// The window of `period` that contains `t`.
pub fn window_of(t: DateTime<Utc>, period: TimeDelta) -> Result<Window> {
    let minutes = period.num_minutes();
    if minutes <= 0 {
        bail!("the aggregation period must be at least a minute");
    }
    let t_minutes = truncate_to_minute(t).timestamp().div_euclid(60);
    let start_minutes = t_minutes - t_minutes.rem_euclid(minutes);
    let start = DateTime::from_timestamp(start_minutes * 60, 0)
        .ok_or_else(|| anyhow::anyhow!("time {t} is out of range"))?;
    let end = start + TimeDelta::minutes(minutes - 1);
    Window::new(start, end).map_err(anyhow::Error::msg)
}

/// Windows that closed at least `grace` before `now`: the most recent one, and any
/// earlier one ending within `lookback` of now. Oldest first.
pub fn closed_windows(
    now: DateTime<Utc>,
    period: TimeDelta,
    grace: TimeDelta,
    lookback: TimeDelta,
) -> Result<Vec<Window>> {
    if grace < TimeDelta::zero() || lookback < TimeDelta::zero() {
        bail!("grace and lookback cannot be negative");
    }
    // The window holding `now - grace - period` is the last whose end lies a whole
    // `grace` in the past (its end minute is included: closed once the next begins).
    let latest = window_of(now - grace - period, period)?;
    let mut windows = vec![latest];
    loop {
        let previous = window_of(windows[windows.len() - 1].start - period, period)?;
        if previous.end < now - lookback {
            break;
        }
        windows.push(previous);
    }
    windows.reverse();
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_time;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn windows_align_to_the_period() {
        let w = window_of(t("202611241337"), TimeDelta::days(1)).unwrap();
        assert_eq!(w.name(), "202611240000-202611242359");
        let w = window_of(t("202611241337"), TimeDelta::hours(1)).unwrap();
        assert_eq!(w.name(), "202611241300-202611241359");
        let w = window_of(t("202611241337"), TimeDelta::minutes(15)).unwrap();
        assert_eq!(w.name(), "202611241330-202611241344");
        assert!(window_of(t("202611241337"), TimeDelta::zero()).is_err());
    }

    #[test]
    fn the_latest_window_closed_a_grace_ago() {
        let day = TimeDelta::days(1);
        let names = |now, grace, lookback| -> Vec<String> {
            closed_windows(t(now), day, grace, lookback)
                .unwrap()
                .iter()
                .map(|w| w.name())
                .collect()
        };
        // 05:59 with 6h grace: yesterday closed 5h59m ago, not yet; the day before.
        assert_eq!(
            names("202611240559", TimeDelta::hours(6), TimeDelta::zero()),
            ["202611220000-202611222359"]
        );
        // 06:00: yesterday's window closed exactly 6h ago.
        assert_eq!(
            names("202611240600", TimeDelta::hours(6), TimeDelta::zero()),
            ["202611230000-202611232359"]
        );
        // A 3-day lookback adds the windows ending within it, oldest first.
        assert_eq!(
            names("202611240600", TimeDelta::hours(6), TimeDelta::days(3)),
            [
                "202611210000-202611212359",
                "202611220000-202611222359",
                "202611230000-202611232359"
            ]
        );
    }
}
