//! Calendar arithmetic on plain integers.
//!
//! Rows carry dates as a day number and times as a minute of the day so that the hot path compares
//! and groups integers instead of strings, and so that no allocation is needed per row.

use std::fmt;

/// A calendar day as the number of days since 1970-01-01 (proleptic Gregorian).
///
/// Integers make "same day", "next day" and "in the window" single comparisons on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Day(pub i32);

/// A calendar month, used for the per-month hottest-time report and the reference month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Calendar year, e.g. 2006.
    pub year: i32,
    /// Month of the year, 1 to 12.
    pub month: u32,
}

/// Days in `month` of `year`, so that parsing can reject `31/06/2006`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

impl Day {
    /// The day for a valid calendar date, or `None` when the date does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if month <= 2 { year - 1 } else { year } as i64;
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Day((era * 146_097 + doe - 719_468) as i32))
    }

    /// The (year, month, day) of this day, for formatting and month grouping.
    pub fn ymd(self) -> (i32, u32, u32) {
        // Howard Hinnant's civil_from_days.
        let z = self.0 as i64 + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
        (y, m, d)
    }

    /// The calendar month this day belongs to.
    pub fn month(self) -> Month {
        let (year, month, _) = self.ymd();
        Month { year, month }
    }

    /// The day `n` days later (or earlier for negative `n`).
    pub fn plus(self, n: i32) -> Day {
        Day(self.0 + n)
    }

    /// `dd/mm/yyyy`, the export's own date format, used in the text reports.
    pub fn dmy(self) -> DmyDisplay {
        DmyDisplay(self)
    }

    /// `yyyy-mm-dd`, the ISO format used in `summary.json`.
    pub fn iso(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Formats a [`Day`] as `dd/mm/yyyy` without allocating.
pub struct DmyDisplay(Day);

impl fmt::Display for DmyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.0.ymd();
        write!(f, "{d:02}/{m:02}/{y:04}")
    }
}

impl Month {
    /// Parses `YYYY-MM`, the format of the `job.reference_month` setting.
    pub fn parse(text: &str) -> Option<Month> {
        let (y, m) = text.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    /// The month after this one: the forecast's target month.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month { year: self.year, month: self.month + 1 }
        }
    }

    /// The first day of the month.
    pub fn first_day(self) -> Day {
        Day::from_ymd(self.year, self.month, 1).expect("month is valid by construction")
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Formats a minute of the day as `HH:MM`.
pub fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Formats a second of the day as `HH:MM:SS`.
pub fn hhmmss(second: u32) -> String {
    format!("{:02}:{:02}:{:02}", second / 3600, second / 60 % 60, second % 60)
}

/// Now, in Unix seconds: the timestamps of job records (the daemon's and the cluster's).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(Day::from_ymd(1970, 1, 1), Some(Day(0)));
        assert_eq!(Day::from_ymd(2006, 6, 1), Some(Day(13_300)));
        assert_eq!(Day(13_300).ymd(), (2006, 6, 1));
        assert_eq!(Day::from_ymd(2000, 2, 29).unwrap().plus(1).ymd(), (2000, 3, 1));
    }

    #[test]
    fn rejects_impossible_dates() {
        assert_eq!(Day::from_ymd(2006, 6, 31), None);
        assert_eq!(Day::from_ymd(1900, 2, 29), None);
        assert_eq!(Day::from_ymd(2006, 13, 1), None);
        assert_eq!(Day::from_ymd(2006, 1, 0), None);
    }

    #[test]
    fn round_trips_over_four_centuries() {
        for n in -200_000..200_000 {
            let (y, m, d) = Day(n).ymd();
            assert_eq!(Day::from_ymd(y, m, d), Some(Day(n)));
        }
    }

    #[test]
    fn formats() {
        let d = Day::from_ymd(2006, 7, 1).unwrap();
        assert_eq!(d.dmy().to_string(), "01/07/2006");
        assert_eq!(d.iso(), "2006-07-01");
        assert_eq!(hhmm(13 * 60 + 5), "13:05");
        assert_eq!(hhmmss(48_280), "13:24:40");
        assert_eq!(Month::parse("2006-12").unwrap().next().to_string(), "2007-01");
        assert_eq!(Month::parse("2006-6"), None);
    }
}
