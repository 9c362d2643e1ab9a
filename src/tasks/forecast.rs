//! Analysis 3: a forecast for the month after the reference month.
//!
//! For each window day d, mean_d is the mean Outside Temperature of all of d's readings; each
//! reading x at time t forecasts `base + (x − mean_d)` (or `base · x / mean_d`) for the same day of
//! month and time in month M+1. The mean is always over the whole day: the state keeps each window
//! day's sum, count and readings, and computes forecasts only when all input has been seen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::date::{Day, Month};
use crate::parse::Reading;
use crate::tasks::Analysis;
use crate::tenths::{format_ratio, Tenths};

/// How a reading and its day's mean become a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForecastMethod {
    /// `base + (x − mean)`.
    Offset,
    /// `base · x / mean`.
    Proportional,
}

impl ForecastMethod {
    /// The configuration spelling, also used in summary.json.
    pub fn name(self) -> &'static str {
        match self {
            ForecastMethod::Offset => "offset",
            ForecastMethod::Proportional => "proportional",
        }
    }
}

/// Which days feed the forecast and how values are computed and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastParams {
    /// First window day.
    pub first: Day,
    /// Number of window days.
    pub days: u32,
    /// First day of month M+1.
    pub target_first: Day,
    /// Base temperature.
    pub base: Tenths,
    /// Offset or proportional.
    pub method: ForecastMethod,
    /// Decimal places shown.
    pub decimals: u32,
}

impl ForecastParams {
    /// Parameters for the first `days` days of `month`.
    pub fn new(
        month: Month,
        days: u32,
        base: Tenths,
        method: ForecastMethod,
        decimals: u32,
    ) -> ForecastParams {
        ForecastParams {
            first: month.first_day(),
            days,
            target_first: month.next().first_day(),
            base,
            method,
            decimals,
        }
    }

    fn contains(&self, day: Day) -> bool {
        self.first <= day && day.0 < self.first.0 + self.days as i32
    }
}

/// One window day's readings: enough to compute its exact mean at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DayReadings {
    sum: i64,
    readings: Vec<(u16, u64, Tenths)>,
}

/// Running state: readings of each window day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    params: ForecastParams,
    days: BTreeMap<Day, DayReadings>,
}

/// One forecast line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastLine {
    /// Target day in month M+1.
    pub day: Day,
    /// Minute of the day.
    pub minute: u16,
    /// The value, formatted with the configured decimals, or `undefined` when a proportional
    /// forecast would divide by a zero mean.
    pub value: String,
}

impl Forecast {
    /// An empty state for these parameters.
    pub fn new(params: ForecastParams) -> Forecast {
        Forecast { params, days: BTreeMap::new() }
    }

    /// Forecast lines in target date and time order (then input order).
    pub fn report(&self) -> Vec<ForecastLine> {
        let mut out = Vec::new();
        for (day, d) in &self.days {
            let target = self.params.target_first.plus(day.0 - self.params.first.0);
            let mut readings = d.readings.clone();
            readings.sort_unstable_by_key(|&(minute, line, _)| (minute, line));
            let n = readings.len() as i128;
            for (minute, _, x) in readings {
                out.push(ForecastLine { day: target, minute, value: self.value(x, d.sum, n) });
            }
        }
        out
    }

    /// The window days' readings as `(day, minute, Outside Temperature)` in time order (then
    /// input order): what the forecast is made from, for `forecast.svg`.
    pub fn readings(&self) -> Vec<(Day, u16, Tenths)> {
        let mut out: Vec<(Day, u16, u64, Tenths)> = Vec::new();
        for (&day, d) in &self.days {
            out.extend(d.readings.iter().map(|&(minute, line, x)| (day, minute, line, x)));
        }
        out.sort_unstable_by_key(|&(day, minute, line, _)| (day, minute, line));
        out.into_iter().map(|(day, minute, _, x)| (day, minute, x)).collect()
    }

    /// Exact value from integers: with sum and n in tenths, mean = sum / (10 n), so
    /// offset = (base·n + x·n − sum) / (10 n) and proportional = base·x·n / (10 · sum).
    fn value(&self, x: Tenths, sum: i64, n: i128) -> String {
        let (base, x, sum) = (i128::from(self.params.base.0), i128::from(x.0), i128::from(sum));
        let decimals = self.params.decimals;
        match self.params.method {
            ForecastMethod::Offset => format_ratio(base * n + x * n - sum, 10 * n, decimals),
            ForecastMethod::Proportional if sum == 0 => "undefined".to_string(),
            ForecastMethod::Proportional => {
                let (num, den) = (base * x * n, 10 * sum);
                if den < 0 {
                    format_ratio(-num, -den, decimals)
                } else {
                    format_ratio(num, den, decimals)
                }
            }
        }
    }
}

impl Analysis for Forecast {
    fn absorb(&mut self, readings: &[Reading]) {
        for r in readings.iter().filter(|r| self.params.contains(r.day)) {
            let d = self.days.entry(r.day).or_default();
            d.sum += i64::from(r.outside.0);
            d.readings.push((r.minute, r.line, r.outside));
        }
    }

    fn days(&self) -> Option<(Day, Day)> {
        // An empty window (0 days) gives an empty range: every batch is skipped, as none of its
        // readings would be kept.
        let p = &self.params;
        Some((p.first, Day(p.first.0 + p.days as i32 - 1)))
    }

    fn merge(&mut self, other: Self) {
        for (day, d) in other.days {
            let mine = self.days.entry(day).or_default();
            mine.sum += d.sum;
            mine.readings.extend(d.readings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(method: ForecastMethod) -> ForecastParams {
        ForecastParams::new(Month { year: 2006, month: 6 }, 9, Tenths(250), method, 2)
    }

    fn r(line: u64, day: u32, minute: u16, t: i32) -> Reading {
        let day = Day::from_ymd(2006, 6, day).unwrap();
        Reading { line, day, minute, outside: Tenths(t), hi: Tenths(t), low: Tenths(t) }
    }

    #[test]
    fn offset_by_hand() {
        // Day 1: 10.0, 11.0, 12.5 -> mean 11.1666…; 10.0 -> 25 + (10 - 11.1666) = 23.8333 -> 23.83
        let mut f = Forecast::new(params(ForecastMethod::Offset));
        f.absorb(&[r(3, 1, 20, 125), r(1, 1, 0, 100)]);
        f.absorb(&[r(2, 1, 10, 110), r(9, 10, 0, 500)]);
        let lines: Vec<String> =
            f.report().iter().map(|l| format!("{} {} {}", l.day.dmy(), l.minute, l.value)).collect();
        assert_eq!(lines, vec!["01/07/2006 0 23.83", "01/07/2006 10 24.83", "01/07/2006 20 26.33"]);
    }

    #[test]
    fn proportional_by_hand_and_zero_mean() {
        let mut f = Forecast::new(params(ForecastMethod::Proportional));
        f.absorb(&[r(1, 2, 0, 100), r(2, 2, 10, 300), r(3, 3, 0, -10), r(4, 3, 10, 10)]);
        let values: Vec<String> = f.report().into_iter().map(|l| l.value).collect();
        // Day 2 mean 20: 25·10/20 = 12.50, 25·30/20 = 37.50. Day 3 mean 0: undefined.
        assert_eq!(values, vec!["12.50", "37.50", "undefined", "undefined"]);
    }

    #[test]
    fn negative_mean_keeps_the_sign_right() {
        let mut f = Forecast::new(params(ForecastMethod::Proportional));
        f.absorb(&[r(1, 2, 0, -20), r(2, 2, 10, -40)]);
        let values: Vec<String> = f.report().into_iter().map(|l| l.value).collect();
        // mean -3.0: 25·(-2)/(-3) = 16.666… -> 16.67 ; 25·(-4)/(-3) = 33.33
        assert_eq!(values, vec!["16.67", "33.33"]);
    }
}
