//! Analysis 2: readings in the window whose temperatures fall in a band.
//!
//! Every reading in the first days of the reference month whose Hi Temperature is within
//! `hi_center ± hi_tolerance` or whose Low Temperature is within `low_center ± low_tolerance`,
//! bounds inclusive, compared exactly in tenths; each reading once, in time order.

use serde::{Deserialize, Serialize};

use crate::date::{Day, Month};
use crate::parse::Reading;
use crate::tasks::Analysis;
use crate::tenths::Tenths;

/// The window's days and bands, in tenths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowParams {
    /// First day of the window.
    pub first: Day,
    /// Last day of the window (inclusive).
    pub last: Day,
    hi: (Tenths, Tenths),
    low: (Tenths, Tenths),
}

impl WindowParams {
    /// The window of the first `days` days of `month` with the two bands.
    pub fn new(
        month: Month,
        days: u32,
        hi_center: Tenths,
        hi_tol: Tenths,
        low_center: Tenths,
        low_tol: Tenths,
    ) -> WindowParams {
        let first = month.first_day();
        WindowParams {
            first,
            last: first.plus(days as i32 - 1),
            hi: (Tenths(hi_center.0 - hi_tol.0), Tenths(hi_center.0 + hi_tol.0)),
            low: (Tenths(low_center.0 - low_tol.0), Tenths(low_center.0 + low_tol.0)),
        }
    }

    /// Inclusive Hi Temperature band.
    pub fn hi_band(&self) -> (Tenths, Tenths) {
        self.hi
    }

    /// Inclusive Low Temperature band.
    pub fn low_band(&self) -> (Tenths, Tenths) {
        self.low
    }

    /// True when `day` is one of the window's days.
    pub fn contains(&self, day: Day) -> bool {
        self.first <= day && day <= self.last
    }
}

/// A matching reading and which band(s) it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The reading.
    pub reading: Reading,
    /// Hi Temperature was in its band.
    pub by_hi: bool,
    /// Low Temperature was in its band.
    pub by_low: bool,
}

/// One window-day reading's Hi and Low Temperatures, as `window.svg` draws them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiLow {
    /// The day.
    pub day: Day,
    /// Minute of the day.
    pub minute: u16,
    /// Input line, to keep equal times in input order.
    pub line: u64,
    /// Hi Temperature.
    pub hi: Tenths,
    /// Low Temperature.
    pub low: Tenths,
}

/// Running state: the matching readings seen so far, and every window-day reading's Hi and Low
/// for the plot (at most the window's days of readings, so bounded like the forecast's state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    params: WindowParams,
    hits: Vec<Hit>,
    all: Vec<HiLow>,
}

impl Window {
    /// An empty state for these parameters.
    pub fn new(params: WindowParams) -> Window {
        Window { params, hits: Vec::new(), all: Vec::new() }
    }

    /// Every window-day reading's Hi and Low in time order (then input order), for `window.svg`.
    pub fn readings(&self) -> Vec<HiLow> {
        let mut all = self.all.clone();
        all.sort_unstable_by_key(|r| (r.day, r.minute, r.line));
        all
    }

    /// Matching readings in time order (then input order), each once.
    pub fn report(&self) -> Vec<Hit> {
        let mut hits = self.hits.clone();
        hits.sort_by_key(|h| (h.reading.day, h.reading.minute, h.reading.line));
        hits
    }
}

fn within(x: Tenths, (lo, hi): (Tenths, Tenths)) -> bool {
    lo <= x && x <= hi
}

impl Analysis for Window {
    fn absorb(&mut self, readings: &[Reading]) {
        let p = &self.params;
        for r in readings.iter().filter(|r| p.contains(r.day)) {
            self.all.push(HiLow { day: r.day, minute: r.minute, line: r.line, hi: r.hi, low: r.low });
            let (by_hi, by_low) = (within(r.hi, p.hi), within(r.low, p.low));
            if by_hi || by_low {
                self.hits.push(Hit { reading: *r, by_hi, by_low });
            }
        }
    }

    fn days(&self) -> Option<(Day, Day)> {
        Some((self.params.first, self.params.last))
    }

    fn merge(&mut self, other: Self) {
        self.hits.extend(other.hits);
        self.all.extend(other.all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> WindowParams {
        WindowParams::new(Month { year: 2006, month: 6 }, 9, Tenths(223), Tenths(10), Tenths(103), Tenths(2))
    }

    fn r(line: u64, day: u32, minute: u16, hi: i32, low: i32) -> Reading {
        let day = Day::from_ymd(2006, if day == 0 { 5 } else { 6 }, if day == 0 { 31 } else { day }).unwrap();
        Reading { line, day, minute, outside: Tenths(0), hi: Tenths(hi), low: Tenths(low) }
    }

    #[test]
    fn every_window_day_reading_is_kept_for_the_plot_in_time_order_whatever_the_merge_order() {
        let (mut a, mut b) = (Window::new(params()), Window::new(params()));
        a.absorb(&[r(3, 2, 60, 150, 90), r(1, 0, 0, 150, 90)]); // 31/05 is not a window day
        b.absorb(&[r(2, 1, 30, 140, 80)]);
        b.merge(a);
        let kept: Vec<(u64, i32)> = b.readings().iter().map(|h| (h.line, h.hi.0)).collect();
        assert_eq!(kept, vec![(2, 140), (3, 150)]);
    }

    #[test]
    fn inclusive_bounds_exact_in_tenths() {
        let mut w = Window::new(params());
        w.absorb(&[
            r(1, 1, 0, 213, 0),    // hi lower bound
            r(2, 1, 10, 233, 0),   // hi upper bound
            r(3, 1, 20, 212, 0),   // just outside
            r(4, 1, 30, 0, 101),   // low lower bound: the float trap
            r(5, 1, 40, 0, 105),   // low upper bound
            r(6, 1, 50, 0, 106),   // just outside
            r(7, 1, 60, 220, 103), // both bands: listed once
        ]);
        let lines: Vec<u64> = w.report().iter().map(|h| h.reading.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 5, 7]);
        assert!(w.report()[4].by_hi && w.report()[4].by_low);
    }

    #[test]
    fn only_window_days_in_time_order() {
        let mut w = Window::new(params());
        w.absorb(&[r(9, 10, 0, 223, 0), r(8, 9, 600, 223, 0), r(7, 0, 0, 223, 0)]);
        w.absorb(&[r(2, 1, 5, 223, 0), r(1, 9, 0, 223, 0)]);
        let lines: Vec<u64> = w.report().iter().map(|h| h.reading.line).collect();
        assert_eq!(lines, vec![2, 1, 8]);
    }
}
