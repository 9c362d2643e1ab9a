//! The three analyses, as pure mergeable states.
//!
//! Each analysis folds readings into a state and can merge two states; merging partial states
//! gives the same result as one pass over all readings, whatever the chunk boundaries or the order
//! chunks arrive in. No I/O, no actors: the actor shell only moves chunks to these states.

pub mod forecast;
pub mod hottest;
pub mod window;

use crate::date::Day;
use crate::parse::Reading;

/// A fold over readings that can be split and merged freely.
pub trait Analysis: Send + 'static {
    /// Folds a batch of readings (any subset of the input, in any order) into the state.
    fn absorb(&mut self, readings: &[Reading]);

    /// The first and last day whose readings can change the state, if not every day: the window
    /// and the forecast read 9 days of an input that may cover decades.
    fn days(&self) -> Option<(Day, Day)> {
        None
    }

    /// [`Analysis::absorb`], or nothing if `span` (the batch's days) shows that none of its
    /// readings lies in [`Analysis::days`]: a chunk outside the window costs no pass over it.
    fn absorb_within(&mut self, readings: &[Reading], span: Option<DaySpan>) {
        let miss = match (self.days(), span) {
            (Some((first, last)), Some(span)) => span.last < first || span.first > last,
            _ => false,
        };
        if !miss {
            self.absorb(readings);
        }
    }

    /// Merges another partial state of the same analysis into this one.
    fn merge(&mut self, other: Self)
    where
        Self: Sized;
}

/// The earliest and latest day among a batch of readings: found once per chunk (by the parse
/// worker), so that each analysis that reads only some days can skip the chunk unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySpan {
    /// Earliest day.
    pub first: Day,
    /// Latest day.
    pub last: Day,
}

impl DaySpan {
    /// The span of `readings`; `None` if there are none.
    pub fn of(readings: &[Reading]) -> Option<DaySpan> {
        let day = readings.first()?.day.0;
        let (first, last) =
            readings.iter().fold((day, day), |(lo, hi), r| (lo.min(r.day.0), hi.max(r.day.0)));
        Some(DaySpan { first: Day(first), last: Day(last) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenths::Tenths;

    fn on(day: i32) -> Reading {
        Reading { line: 2, day: Day(day), minute: 0, outside: Tenths(0), hi: Tenths(0), low: Tenths(0) }
    }

    /// Counts the batches it reads, and reads only days 10 to 12.
    struct Days(u32);

    impl Analysis for Days {
        fn absorb(&mut self, _: &[Reading]) {
            self.0 += 1;
        }
        fn days(&self) -> Option<(Day, Day)> {
            Some((Day(10), Day(12)))
        }
        fn merge(&mut self, other: Self) {
            self.0 += other.0;
        }
    }

    #[test]
    fn a_batch_is_skipped_only_when_its_days_miss_the_analysiss_days() {
        assert_eq!(DaySpan::of(&[]), None);
        assert_eq!(DaySpan::of(&[on(7), on(3), on(9)]), Some(DaySpan { first: Day(3), last: Day(9) }));
        let read = |batch: &[Reading]| {
            let mut a = Days(0);
            a.absorb_within(batch, DaySpan::of(batch));
            a.0
        };
        for (batch, reads) in [
            (vec![on(9)], 0),
            (vec![on(13), on(20)], 0),
            (vec![on(9), on(10)], 1),
            (vec![on(12)], 1),
            (vec![on(13), on(2)], 1), // the span 2..13 covers the days: read (and filtered by absorb)
            (vec![], 1),              // no span known: read
        ] {
            assert_eq!(read(&batch), reads, "{batch:?}");
        }
    }
}
