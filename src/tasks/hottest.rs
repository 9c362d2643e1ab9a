//! Analysis 1: the hottest time of each day.
//!
//! Per day, the maximum Outside Temperature and the earliest time it occurs. From those: the mean
//! hottest time per calendar month, the most common hottest time(s), and the top days by maximum.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::date::{Day, Month};
use crate::parse::Reading;
use crate::tasks::Analysis;
use crate::tenths::Tenths;

/// Parameters of the hottest-time report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HottestParams {
    /// Length of the top-days list.
    pub top_days: usize,
}

/// A day's maximum and the earliest minute it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayMax {
    /// Highest Outside Temperature of the day.
    pub max: Tenths,
    /// Earliest minute of the day at which `max` was read.
    pub minute: u16,
}

impl DayMax {
    /// Keeps the higher value; on a tie the earlier time. Commutative and associative, which is
    /// what makes the state mergeable.
    fn combine(self, other: DayMax) -> DayMax {
        match self.max.cmp(&other.max) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => DayMax { max: self.max, minute: self.minute.min(other.minute) },
        }
    }
}

/// A reading's value and time as one number whose maximum is [`DayMax::combine`]'s choice: the
/// higher value, then the earlier minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RunKey(i64);

impl RunKey {
    fn of(r: &Reading) -> RunKey {
        RunKey((i64::from(r.outside.0) << 16) + i64::from(u16::MAX - r.minute))
    }

    fn day_max(self) -> DayMax {
        DayMax { max: Tenths((self.0 >> 16) as i32), minute: u16::MAX - (self.0 & 0xffff) as u16 }
    }
}

/// Days per storage block: 64 days of 8 bytes, one small allocation per two months.
const BLOCK: i32 = 64;

/// Running state: one [`DayMax`] per day seen.
///
/// A station exports consecutive days, so days are kept in dense blocks of `BLOCK` (64) slots rather
/// than one map node each: about 8 bytes per day instead of about 24, which keeps memory nearly
/// flat even at a century of data per gigabyte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hottest {
    blocks: BTreeMap<i32, Box<[Packed; BLOCK as usize]>>,
}

/// The serialized form of [`Hottest`]: `(block number, slots)` pairs in block order, each
/// block's 64 packed slots as 256 little-endian bytes.
///
/// A checkpoint holds the whole state, which grows with the days seen (1.6 MB at 4 GiB of
/// input), and it is written on the thread the fetcher and router share. As a list of `u32` lists
/// (postcard varints, after two clones through `serde(into)`) it took up to 4.7 ms per
/// checkpoint, 12% of a 4 GiB run's wall time; as bytes it is a copy, block by block, with no
/// copy of the whole state in between.
type HottestWire = Vec<(i32, serde_bytes::ByteBuf)>;

/// Bytes of one serialized block.
const BLOCK_BYTES: usize = BLOCK as usize * 4;

impl Serialize for Hottest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.blocks.iter().map(|(&number, slots)| {
            let mut bytes = [0u8; BLOCK_BYTES];
            for (out, slot) in bytes.chunks_exact_mut(4).zip(slots.iter()) {
                out.copy_from_slice(&slot.0.to_le_bytes());
            }
            (number, serde_bytes::ByteArray::new(bytes))
        }))
    }
}

impl<'de> Deserialize<'de> for Hottest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Hottest, D::Error> {
        let wire = HottestWire::deserialize(deserializer)?;
        Hottest::from_wire(wire.iter().map(|(number, bytes)| (*number, bytes.as_slice())))
            .map_err(serde::de::Error::custom)
    }
}

impl Hottest {
    /// Rebuilds the state from its serialized form, rejecting what `insert` could never have
    /// produced, so a damaged or foreign checkpoint fails loudly instead of yielding a state whose
    /// reports are silently wrong.
    fn from_wire<'a>(wire: impl Iterator<Item = (i32, &'a [u8])>) -> Result<Hottest, String> {
        let mut blocks = BTreeMap::new();
        for (block, bytes) in wire {
            if bytes.len() != BLOCK_BYTES {
                return Err(format!(
                    "hottest block {block} has {} bytes of slots, expected {BLOCK_BYTES}",
                    bytes.len()
                ));
            }
            let mut packed = Box::new([Packed::EMPTY; BLOCK as usize]);
            for (slot, word) in packed.iter_mut().zip(bytes.chunks_exact(4)) {
                *slot = Packed(u32::from_le_bytes(word.try_into().expect("chunks of 4 bytes")));
            }
            if let Some(bad) = packed.iter().find(|p| p.unpack().is_some_and(|d| d.minute >= 1440)) {
                return Err(format!("hottest block {block} holds an impossible minute {}", bad.0 & 0x7ff));
            }
            if blocks.insert(block, packed).is_some() {
                return Err(format!("hottest block {block} appears twice"));
            }
        }
        Ok(Hottest { blocks })
    }
}

/// A `DayMax` in 4 bytes: tenths (21 bits, two's complement; [`Tenths`] values stay within
/// ±1,000,000) above the minute (11 bits). `EMPTY` (minute 2047, impossible) marks a day not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed(u32);

impl Packed {
    const EMPTY: Packed = Packed(u32::MAX);

    fn pack(d: DayMax) -> Packed {
        Packed(((d.max.0 as u32) << 11) | u32::from(d.minute))
    }

    fn unpack(self) -> Option<DayMax> {
        (self != Packed::EMPTY)
            .then_some(DayMax { max: Tenths((self.0 as i32) >> 11), minute: (self.0 & 0x7ff) as u16 })
    }
}

impl Analysis for Hottest {
    fn absorb(&mut self, readings: &[Reading]) {
        // Readings of one day are usually adjacent: fold runs locally, touch the map once per run.
        // Within a run the fold is a plain maximum of a key (a conditional move, no branch on the
        // temperatures, which a branch predictor cannot guess).
        let Some(first) = readings.first() else { return };
        let (mut day, mut best) = (first.day, RunKey::of(first));
        for r in &readings[1..] {
            let key = RunKey::of(r);
            if r.day == day {
                best = best.max(key);
            } else {
                self.insert(day, best.day_max());
                (day, best) = (r.day, key);
            }
        }
        self.insert(day, best.day_max());
    }

    fn merge(&mut self, other: Self) {
        for (day, best) in other.iter() {
            self.insert(day, best);
        }
    }
}

impl Hottest {
    fn insert(&mut self, day: Day, best: DayMax) {
        let (block, slot) = (day.0.div_euclid(BLOCK), day.0.rem_euclid(BLOCK) as usize);
        let entry =
            &mut self.blocks.entry(block).or_insert_with(|| Box::new([Packed::EMPTY; BLOCK as usize]))[slot];
        *entry = Packed::pack(entry.unpack().map_or(best, |d| d.combine(best)));
    }

    /// Per-day maxima, in date order.
    pub fn iter(&self) -> impl Iterator<Item = (Day, DayMax)> + Clone + '_ {
        self.blocks.iter().flat_map(|(&block, slots)| {
            slots
                .iter()
                .enumerate()
                .filter_map(move |(i, p)| p.unpack().map(|d| (Day(block * BLOCK + i as i32), d)))
        })
    }

    /// The maximum of one day, if the day was seen.
    pub fn day(&self, day: Day) -> Option<DayMax> {
        self.blocks.get(&day.0.div_euclid(BLOCK)).and_then(|b| b[day.0.rem_euclid(BLOCK) as usize].unpack())
    }

    /// The final report, in one pass over the days in date order: the month changes only at a
    /// month's end and the minutes are counted in an array. (Four passes with a date conversion
    /// and a map update per day took 9 ms at a century of days, 2% of a 1 GiB run's wall time,
    /// on one core while the other idled.)
    pub fn report(&self, params: &HottestParams) -> HottestReport {
        let mut days = 0;
        let mut months = Months::default();
        let mut counts = [0u32; 2048]; // a packed minute has 11 bits
        let mut top = Top::new(params.top_days);
        for (day, best) in self.iter() {
            days += 1;
            months.add(day, best.minute);
            counts[usize::from(best.minute)] += 1;
            top.offer(day, best);
        }
        HottestReport { days, monthly: months.finish(), most_common: most_common(&counts), top: top.finish() }
    }
}

/// Per-month sums of hottest times, fed days in date order.
#[derive(Default)]
struct Months {
    done: Vec<MonthMean>,
    /// The current month, the first day after it, and its seconds and days so far.
    current: Option<(Month, Day, u64, u32)>,
}

impl Months {
    fn add(&mut self, day: Day, minute: u16) {
        match &mut self.current {
            Some((_, end, seconds, days)) if day < *end => {
                *seconds += u64::from(minute) * 60;
                *days += 1;
            }
            _ => {
                self.close();
                let month = day.month();
                self.current = Some((month, month.next().first_day(), u64::from(minute) * 60, 1));
            }
        }
    }

    fn close(&mut self) {
        if let Some((month, _, seconds, days)) = self.current.take() {
            let mean_second = crate::tenths::div_round(i128::from(seconds), i128::from(days)) as u32;
            self.done.push(MonthMean { month, mean_second, days });
        }
    }

    fn finish(mut self) -> Vec<MonthMean> {
        self.close();
        self.done
    }
}

/// Every minute tied for the most days (in time order), from per-minute day counts.
fn most_common(counts: &[u32]) -> MostCommon {
    let days = counts.iter().copied().max().unwrap_or(0);
    let minutes = match days {
        0 => Vec::new(),
        _ => (0..counts.len()).filter(|&m| counts[m] == days).map(|m| m as u16).collect(),
    };
    MostCommon { minutes, days }
}

/// The `n` hottest days (ties: earlier date), keeping only `n` candidates, fed in date order.
struct Top {
    n: usize,
    kept: Vec<(Day, DayMax)>,
}

impl Top {
    fn new(n: usize) -> Top {
        Top { n, kept: Vec::with_capacity(n + 1) }
    }

    fn rank(&(day, best): &(Day, DayMax)) -> (std::cmp::Reverse<Tenths>, Day) {
        (std::cmp::Reverse(best.max), day)
    }

    fn offer(&mut self, day: Day, best: DayMax) {
        let candidate = (day, best);
        // Most days are not hotter than the n-th kept one: one comparison.
        if self.kept.len() == self.n
            && self.kept.last().is_none_or(|last| Top::rank(last) < Top::rank(&candidate))
        {
            return;
        }
        let at = self.kept.partition_point(|kept| Top::rank(kept) < Top::rank(&candidate));
        if at < self.n {
            self.kept.insert(at, candidate);
            self.kept.truncate(self.n);
        }
    }

    /// The kept days in date order.
    fn finish(mut self) -> Vec<(Day, DayMax)> {
        self.kept.sort_by_key(|(day, _)| *day);
        self.kept
    }
}

/// Mean hottest time of one calendar month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthMean {
    /// The month.
    pub month: Month,
    /// Mean of the days' hottest times, in seconds since midnight, rounded to the second.
    pub mean_second: u32,
    /// Days of this month in the input.
    pub days: u32,
}

/// The most common hottest time(s): every time tied for the highest count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MostCommon {
    /// Minutes of the day, ascending.
    pub minutes: Vec<u16>,
    /// How many days each of them was the hottest time.
    pub days: u32,
}

/// Everything task1.txt and summary.json say about hottest times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HottestReport {
    /// Number of days in the input.
    pub days: usize,
    /// Per calendar month.
    pub monthly: Vec<MonthMean>,
    /// Most common hottest time(s).
    pub most_common: MostCommon,
    /// Top days by maximum (ties: earlier date), in date order.
    pub top: Vec<(Day, DayMax)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(day: u32, minute: u16, t: i32) -> Reading {
        let day = Day::from_ymd(2006, 6, day).unwrap();
        Reading { line: 0, day, minute, outside: Tenths(t), hi: Tenths(t), low: Tenths(t) }
    }

    #[test]
    fn folding_runs_equals_combining_reading_by_reading() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let readings: Vec<Reading> = (0..next(300))
                .map(|_| {
                    let t = next(41) as i32 - 20 + if next(50) == 0 { -999_999 } else { 0 };
                    r(1 + next(3) as u32, next(1440) as u16, t)
                })
                .collect();
            let mut one_by_one = Hottest::default();
            for r in &readings {
                one_by_one.insert(r.day, DayMax { max: r.outside, minute: r.minute });
            }
            let mut folded = Hottest::default();
            folded.absorb(&readings);
            assert_eq!(folded, one_by_one, "{readings:?}");
        }
    }

    #[test]
    fn earliest_time_of_the_maximum() {
        let mut h = Hottest::default();
        h.absorb(&[r(1, 600, 150), r(1, 800, 170), r(1, 700, 170), r(1, 900, 160)]);
        assert_eq!(h.day(Day::from_ymd(2006, 6, 1).unwrap()), Some(DayMax { max: Tenths(170), minute: 700 }));
        assert_eq!(h.day(Day::from_ymd(2006, 6, 2).unwrap()), None);
    }

    /// The one-pass report equals the plain computation: group the days by calendar month, count
    /// every minute, sort all days by (max descending, date) and keep the first `n`. Days are
    /// spread over gaps of up to a few years (months and years skipped, negative days), with few
    /// distinct values and minutes so that ties are common.
    #[test]
    fn one_pass_report_equals_grouping_and_sorting() {
        use proptest::prelude::*;
        let step = (prop_oneof![Just(1i32), 1i32..40, 300i32..900], 0u16..6, -3i32..4);
        let gaps = prop::collection::vec(step, 1..300);
        proptest!(ProptestConfig::with_cases(300), |(start in -30_000i32..30_000, gaps in gaps, n in 0usize..14)| {
            let mut h = Hottest::default();
            let mut d = start;
            for (gap, minute, t) in &gaps {
                d += gap;
                h.insert(Day(d), DayMax { max: Tenths(*t), minute: minute * 240 + 7 });
            }
            let all: Vec<(Day, DayMax)> = h.iter().collect();
            let mut months: BTreeMap<Month, (u64, u32)> = BTreeMap::new();
            let mut counts: BTreeMap<u16, u32> = BTreeMap::new();
            for (day, best) in &all {
                let m = months.entry(day.month()).or_default();
                (m.0, m.1) = (m.0 + u64::from(best.minute) * 60, m.1 + 1);
                *counts.entry(best.minute).or_default() += 1;
            }
            let monthly: Vec<MonthMean> = months
                .into_iter()
                .map(|(month, (s, k))| MonthMean {
                    month,
                    mean_second: crate::tenths::div_round(i128::from(s), i128::from(k)) as u32,
                    days: k,
                })
                .collect();
            let most = counts.values().copied().max().unwrap_or(0);
            let minutes: Vec<u16> = counts.iter().filter(|&(_, &c)| c == most).map(|(&m, _)| m).collect();
            let mut ranked = all.clone();
            ranked.sort_by_key(|(day, best)| (std::cmp::Reverse(best.max), *day));
            ranked.truncate(n);
            ranked.sort_by_key(|(day, _)| *day);
            let report = h.report(&HottestParams { top_days: n });
            prop_assert_eq!(report.days, all.len());
            prop_assert_eq!(report.monthly, monthly);
            prop_assert_eq!(report.most_common, MostCommon { minutes, days: most });
            prop_assert_eq!(report.top, ranked);
        });
    }

    #[test]
    fn an_empty_state_reports_nothing() {
        let report = Hottest::default().report(&HottestParams { top_days: 10 });
        assert_eq!((report.days, report.monthly.len(), report.top.len()), (0, 0, 0));
        assert_eq!(report.most_common, MostCommon { minutes: vec![], days: 0 });
    }

    #[test]
    fn report_by_hand() {
        let mut h = Hottest::default();
        // Day 1 hottest 13:00 (20.0), day 2 14:50 (21.0), day 3 13:00 (19.0), day 4 14:50 (22.0),
        // day 5 10:00 (20.0): 13:00 and 14:50 tie with 2 days each.
        h.absorb(&[r(1, 780, 200), r(2, 890, 210), r(3, 780, 190), r(4, 890, 220), r(5, 600, 200)]);
        h.absorb(&[r(1, 100, 100), r(5, 1000, 199)]);
        let rep = h.report(&HottestParams { top_days: 3 });
        // mean of 780, 890, 780, 890, 600 minutes = 788 minutes = 13:08:00
        assert_eq!(
            rep.monthly,
            vec![MonthMean { month: Month { year: 2006, month: 6 }, mean_second: 788 * 60, days: 5 }]
        );
        assert_eq!(rep.most_common, MostCommon { minutes: vec![780, 890], days: 2 });
        // top 3 by max: day 4 (22.0), day 2 (21.0), then days 1 and 5 tie at 20.0: day 1 wins.
        let top: Vec<u32> = rep.top.iter().map(|(d, _)| d.ymd().2).collect();
        assert_eq!(top, vec![1, 2, 4]);
    }

    #[test]
    fn blocks_span_negative_days_and_merge_in_any_order() {
        let at = |y, m, d, minute, t| Reading {
            line: 0,
            day: Day::from_ymd(y, m, d).unwrap(),
            minute,
            outside: Tenths(t),
            hi: Tenths(t),
            low: Tenths(t),
        };
        let all = [
            at(1969, 12, 31, 60, 10),
            at(1970, 1, 1, 70, 20),
            at(1970, 3, 6, 80, 30),
            at(1969, 12, 31, 50, 10),
        ];
        let mut one = Hottest::default();
        one.absorb(&all);
        let (mut a, mut b) = (Hottest::default(), Hottest::default());
        a.absorb(&all[2..]);
        b.absorb(&all[..2]);
        a.merge(b);
        assert_eq!(a, one);
        let days: Vec<(i32, u16)> = one.iter().map(|(d, m)| (d.0, m.minute)).collect();
        assert_eq!(days, vec![(-1, 50), (0, 70), (64, 80)]);
    }

    #[test]
    fn packing_round_trips_the_whole_range() {
        for max in [-1_000_000, -1, 0, 1, 223, 999_999, 1_000_000] {
            for minute in [0, 1, 779, 1439] {
                let d = DayMax { max: Tenths(max), minute };
                assert_eq!(Packed::pack(d).unpack(), Some(d));
            }
        }
        assert_eq!(Packed::EMPTY.unpack(), None);
    }

    /// A state with negative and far-apart days (blocks -1, 0, 1 and one 30 years on) and
    /// extreme values survives postcard, as one byte run of 4 bytes per slot.
    #[test]
    fn serialized_state_round_trips_as_raw_slots() {
        let mut h = Hottest::default();
        for (day, minute, t) in [(-1, 50, -1_000_000), (0, 1439, 1_000_000), (64, 0, 0), (11_000, 779, 223)] {
            h.insert(Day(day), DayMax { max: Tenths(t), minute });
        }
        let bytes = postcard::to_stdvec(&h).unwrap();
        assert_eq!(postcard::from_bytes::<Hottest>(&bytes).unwrap(), h);
        // Hand-counted: the pair count (1 byte), then per block its number (zigzag varint: -1, 0
        // and 1 take 1 byte, 171 takes 2), the slot byte count (256: 2 bytes) and 256 bytes.
        assert_eq!(bytes.len(), 1 + 3 * (1 + 2 + 256) + (2 + 2 + 256));
    }

    /// What `insert` could never produce is refused with a reason (postcard keeps only that
    /// decoding failed; the checkpoint's CRC catches damage before this), not read as a state.
    #[test]
    fn damaged_serialized_state_is_refused() {
        let empty = Packed::EMPTY.0.to_le_bytes().repeat(64);
        let impossible = [&1447u32.to_le_bytes()[..], &empty[4..]].concat(); // minute 1447 of day 0
        type Blocks = Vec<(i32, Vec<u8>)>;
        let cases: [(Blocks, &str); 3] = [
            (vec![(0, empty[..252].to_vec())], "hottest block 0 has 252 bytes of slots, expected 256"),
            (vec![(3, empty.clone()), (3, empty.clone())], "hottest block 3 appears twice"),
            (vec![(5, impossible)], "hottest block 5 holds an impossible minute 1447"),
        ];
        for (wire, reason) in cases {
            let blocks = wire.iter().map(|(n, b)| (*n, b.as_slice()));
            assert_eq!(Hottest::from_wire(blocks).unwrap_err(), reason);
            let wire: HottestWire =
                wire.into_iter().map(|(n, b)| (n, serde_bytes::ByteBuf::from(b))).collect();
            assert!(
                postcard::from_bytes::<Hottest>(&postcard::to_stdvec(&wire).unwrap()).is_err(),
                "{reason}"
            );
        }
        assert_eq!(Hottest::from_wire(std::iter::empty()), Ok(Hottest::default()));
    }

    #[test]
    fn mean_rounds_to_the_nearest_second() {
        let mut h = Hottest::default();
        h.absorb(&[r(1, 1, 0), r(2, 0, 0), r(3, 0, 0)]); // 60 s over 3 days = 20 s
        assert_eq!(h.report(&HottestParams { top_days: 1 }).monthly[0].mean_second, 20);
        h.absorb(&[r(4, 0, 0), r(5, 0, 0), r(6, 0, 0), r(7, 0, 0)]); // 60 s / 7 = 8.57 s -> 9 s
        assert_eq!(h.report(&HottestParams { top_days: 1 }).monthly[0].mean_second, 9);
    }
}
