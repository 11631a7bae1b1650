//! Recurring time windows in an IANA time zone.
//!
//! A window opens at `start` local time on each listed day and closes at `end`
//! (on the next day when `end` is not after `start`). Local times are turned into
//! instants day by day, so daylight-saving changes shift the window with the
//! wall clock: an opening inside a skipped hour happens when the clock resumes,
//! an ambiguous one (the repeated hour) at its first occurrence.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use thiserror::Error;

use crate::api::{TimeWindow, Weekday};

/// A half-open span of time `[start, end)`.
pub type Interval = (DateTime<Utc>, DateTime<Utc>);

/// A time window that does not make sense.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WindowError {
    /// The time zone is not in the IANA database.
    #[error("timeWindow.timezone {0:?} is not an IANA time zone (for example \"Europe/Berlin\" or \"UTC\")")]
    UnknownZone(String),
    /// A time of day is not HH:MM.
    #[error("timeWindow.{field} {value:?} is not a time of day \"HH:MM\"")]
    BadTime {
        /// `start` or `end`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// Start equals end.
    #[error("timeWindow.start and timeWindow.end are both {0:?}: the window would be empty")]
    Empty(String),
}

/// A validated time window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    tz: Tz,
    start: NaiveTime,
    end: NaiveTime,
    /// Monday first.
    days: [bool; 7],
}

impl TryFrom<&TimeWindow> for Window {
    type Error = WindowError;

    fn try_from(w: &TimeWindow) -> Result<Self, WindowError> {
        let tz: Tz = w
            .timezone
            .parse()
            .map_err(|_| WindowError::UnknownZone(w.timezone.clone()))?;
        let time = |field: &'static str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| WindowError::BadTime {
                field,
                value: value.to_string(),
            })
        };
        let start = time("start", &w.start)?;
        let end = time("end", &w.end)?;
        if start == end {
            return Err(WindowError::Empty(w.start.clone()));
        }
        let mut days = [w.days.is_empty(); 7];
        for d in &w.days {
            days[weekday_index(*d)] = true;
        }
        Ok(Window { tz, start, end, days })
    }
}

fn weekday_index(d: Weekday) -> usize {
    match d {
        Weekday::Mon => 0,
        Weekday::Tue => 1,
        Weekday::Wed => 2,
        Weekday::Thu => 3,
        Weekday::Fri => 4,
        Weekday::Sat => 5,
        Weekday::Sun => 6,
    }
}

impl Window {
    /// The instant a local wall-clock time happens in this zone.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => {
                // Inside a daylight-saving gap: the first minute that exists.
                (1..=24 * 60)
                    .find_map(
                        |m| match self.tz.from_local_datetime(&(local + Duration::minutes(m))) {
                            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                                Some(t.with_timezone(&Utc))
                            }
                            LocalResult::None => None,
                        },
                    )
                    .unwrap_or_else(|| Utc.from_utc_datetime(&local))
            }
        }
    }

    /// The window's occurrence that opens on local date `day`, if it opens that day.
    fn occurrence(&self, day: NaiveDate) -> Option<Interval> {
        if !self.days[day.weekday().num_days_from_monday() as usize] {
            return None;
        }
        let open = self.instant(day.and_time(self.start));
        let close_day = if self.end > self.start {
            day
        } else {
            day.succ_opt()?
        };
        let close = self.instant(close_day.and_time(self.end));
        (close > open).then_some((open, close))
    }

    /// The parts of `[from, to)` that lie inside the window, in order, merged.
    pub fn intervals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Interval> {
        let mut out: Vec<Interval> = Vec::new();
        if to <= from {
            return out;
        }
        // An occurrence that opened the day before can still be open at `from`.
        let Some(mut day) = from.with_timezone(&self.tz).date_naive().pred_opt() else {
            return out;
        };
        let last = to.with_timezone(&self.tz).date_naive();
        while day <= last {
            if let Some((open, close)) = self.occurrence(day) {
                let (a, b) = (open.max(from), close.min(to));
                if a < b {
                    match out.last_mut() {
                        Some(prev) if prev.1 >= a => prev.1 = prev.1.max(b),
                        _ => out.push((a, b)),
                    }
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        out
    }

    /// Whether `t` is inside the window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        !self.intervals(t, t + Duration::nanoseconds(1)).is_empty()
    }
}

/// The spans of `[from, to)` inside `window`, or the whole span without one.
pub fn access_intervals(window: Option<&Window>, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Interval> {
    match window {
        Some(w) => w.intervals(from, to),
        None if from < to => vec![(from, to)],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(tz: &str, start: &str, end: &str, days: &[Weekday]) -> Window {
        Window::try_from(&TimeWindow {
            timezone: tz.into(),
            start: start.into(),
            end: end.into(),
            days: days.to_vec(),
        })
        .unwrap()
    }

    use Weekday::*;

    #[test]
    fn business_hours_in_berlin() {
        let w = window("Europe/Berlin", "08:00", "20:00", &[Mon, Tue, Wed, Thu, Fri]);
        // Monday 2026-11-23, Berlin is UTC+1.
        assert!(!w.contains(t("2026-11-23T06:59:59Z")));
        assert!(w.contains(t("2026-11-23T07:00:00Z")));
        assert!(w.contains(t("2026-11-23T18:59:59Z")));
        assert!(!w.contains(t("2026-11-23T19:00:00Z")));
        // Saturday is closed.
        assert!(!w.contains(t("2026-11-28T10:00:00Z")));
        assert_eq!(
            w.intervals(t("2026-11-23T00:00:00Z"), t("2026-11-24T12:00:00Z")),
            vec![
                (t("2026-11-23T07:00:00Z"), t("2026-11-23T19:00:00Z")),
                (t("2026-11-24T07:00:00Z"), t("2026-11-24T12:00:00Z"))
            ]
        );
    }

    #[test]
    fn window_crossing_midnight_belongs_to_the_day_it_opens() {
        // Friday night maintenance 22:00-02:00 UTC: open Friday 22:00 until Saturday 02:00.
        let w = window("UTC", "22:00", "02:00", &[Fri]);
        assert!(w.contains(t("2026-11-27T23:30:00Z")));
        assert!(w.contains(t("2026-11-28T01:59:00Z")));
        assert!(!w.contains(t("2026-11-28T02:00:00Z")));
        assert!(
            !w.contains(t("2026-11-28T23:30:00Z")),
            "Saturday night is not listed"
        );
        assert!(
            !w.contains(t("2026-11-27T01:00:00Z")),
            "Thursday's night is not listed"
        );
    }

    #[test]
    fn consecutive_night_windows_merge() {
        let w = window("UTC", "18:00", "09:00", &[]);
        let iv = w.intervals(t("2026-11-23T00:00:00Z"), t("2026-11-25T00:00:00Z"));
        assert_eq!(
            iv,
            vec![
                (t("2026-11-23T00:00:00Z"), t("2026-11-23T09:00:00Z")),
                (t("2026-11-23T18:00:00Z"), t("2026-11-24T09:00:00Z")),
                (t("2026-11-24T18:00:00Z"), t("2026-11-25T00:00:00Z"))
            ]
        );
    }

    #[test]
    fn spring_forward_shortens_the_night_and_moves_utc_edges() {
        // Europe/Berlin springs forward on Sunday 2026-03-29 at 02:00 -> 03:00.
        let w = window("Europe/Berlin", "01:00", "06:00", &[Sun]);
        let iv = w.intervals(t("2026-03-28T00:00:00Z"), t("2026-03-30T00:00:00Z"));
        // 01:00 CET = 00:00 UTC; 06:00 CEST = 04:00 UTC: four real hours instead of five.
        assert_eq!(iv, vec![(t("2026-03-29T00:00:00Z"), t("2026-03-29T04:00:00Z"))]);
        // A window opening inside the skipped hour opens when the clock resumes.
        let w = window("Europe/Berlin", "02:30", "05:00", &[Sun]);
        let iv = w.intervals(t("2026-03-28T00:00:00Z"), t("2026-03-30T00:00:00Z"));
        assert_eq!(iv, vec![(t("2026-03-29T01:00:00Z"), t("2026-03-29T03:00:00Z"))]);
    }

    #[test]
    fn fall_back_lengthens_the_night() {
        // Europe/Berlin falls back on Sunday 2026-10-25 at 03:00 -> 02:00.
        let w = window("Europe/Berlin", "00:00", "06:00", &[Sun]);
        let iv = w.intervals(t("2026-10-24T00:00:00Z"), t("2026-10-26T00:00:00Z"));
        // 00:00 CEST = 22:00 UTC (Sat); 06:00 CET = 05:00 UTC: seven real hours.
        assert_eq!(iv, vec![(t("2026-10-24T22:00:00Z"), t("2026-10-25T05:00:00Z"))]);
        // An ambiguous opening (02:30 happens twice) uses the first occurrence.
        let w = window("Europe/Berlin", "02:30", "04:00", &[Sun]);
        let iv = w.intervals(t("2026-10-24T00:00:00Z"), t("2026-10-26T00:00:00Z"));
        assert_eq!(iv, vec![(t("2026-10-25T00:30:00Z"), t("2026-10-25T03:00:00Z"))]);
    }

    #[test]
    fn other_hemisphere_and_half_hour_zones() {
        let w = window("Asia/Kolkata", "09:00", "17:30", &[]);
        assert!(w.contains(t("2026-11-23T03:30:00Z")));
        assert!(!w.contains(t("2026-11-23T03:29:00Z")));
        assert!(!w.contains(t("2026-11-23T12:00:00Z")));
    }

    #[test]
    fn invalid_windows_name_the_field() {
        let bad = |tz: &str, start: &str, end: &str| {
            Window::try_from(&TimeWindow {
                timezone: tz.into(),
                start: start.into(),
                end: end.into(),
                days: vec![],
            })
            .unwrap_err()
            .to_string()
        };
        assert!(bad("Mars/Olympus", "08:00", "10:00").contains("not an IANA time zone"));
        assert!(bad("UTC", "8am", "10:00").contains("timeWindow.start"));
        assert!(bad("UTC", "08:00", "25:00").contains("timeWindow.end"));
        assert!(bad("UTC", "08:00", "08:00").contains("empty"));
    }
}
