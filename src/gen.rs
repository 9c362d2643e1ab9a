//! Deterministic synthetic WeatherLink exports.
//!
//! Tests and benchmarks need inputs of any size (a few rows up to several GiB) in exactly the
//! layout the station server produces, including the blank lines and broken rows that real
//! exports contain, without shipping large fixtures.
//!
//! # Stability
//!
//! The output is a pure function of [`GenOptions`]: the same options give byte-identical output
//! on every platform and are intended to stay identical across versions of this crate. To make
//! that possible the generator uses only integer arithmetic (a hand-written splitmix64 PRNG and
//! hand-written tables for the seasonal and daily temperature curves); no floating point and no
//! libm is involved anywhere.

use crate::date::{days_in_month, Day};
use std::io::{self, Write};

/// The export's exact header line (without line ending), so that generated files are accepted by
/// anything that accepts the real ones, trailing and doubled spaces included.
pub const HEADER: &str = "Date,Time,Temp Humidity Index   ,Outside Temperature,WindChill,Hi Temperature,Low Temperature,Outside Humidity,DewPoint,WindSpeed,Hi,Wind Direction,Rain,Barometer,Inside  Temperature,Inside  Humidity,ArchivePeriod";

/// When to stop generating, so callers can ask for a calendar span, a row count or a file size
/// depending on whether they test logic or measure throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenLimit {
    /// Stop after this many whole days (144 good readings each).
    Days(u32),
    /// Stop after this many good readings.
    Rows(u64),
    /// Stop once the output reaches this many bytes; the line that crosses the limit is finished.
    Bytes(u64),
}

/// Everything that determines a generated file, so that a file can be reproduced from a handful
/// of numbers instead of being stored.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// First day; its readings start at 00:00, as in a fresh export.
    pub start: Day,
    /// When to stop: a calendar span for logic tests, a size for throughput runs.
    pub limit: GenLimit,
    /// Seed for the weather; different seeds give different, equally plausible files.
    pub seed: u64,
    /// Use `"\r\n"` line endings, as the station server's original files do.
    pub crlf: bool,
    /// Empty lines scattered through the body, to exercise the reader's blank-line handling.
    pub blank_lines: u64,
    /// Deliberately broken rows scattered through the body in addition to the good readings,
    /// to exercise rejection and error reporting.
    pub bad_rows: u64,
}

impl Default for GenOptions {
    /// One clean month of June 2006, the period the original exports cover.
    fn default() -> Self {
        GenOptions {
            start: Day::from_ymd(2006, 6, 1).expect("valid date"),
            limit: GenLimit::Days(30),
            seed: 1,
            crlf: false,
            blank_lines: 0,
            bad_rows: 0,
        }
    }
}

/// What was written, so callers can check their pipeline's counts against the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Good readings written: what a correct reader must accept.
    pub rows: u64,
    /// Empty lines written: what a correct reader must skip without complaint.
    pub blank: u64,
    /// Broken rows written: what a correct reader must reject.
    pub bad: u64,
    /// Total bytes written, header and line endings included, for throughput figures.
    pub bytes: u64,
}

/// Writes a synthetic export described by `opts` to `out`, so tests and benchmarks get realistic
/// input of any size without fixtures.
///
/// Output is written in large blocks, so `out` need not be buffered. The lines after the header
/// number exactly `rows + blank + bad` of the returned stats. Blank and bad lines are spread
/// evenly over the expected body; any that do not fit before the limit (for instance because the
/// body is shorter than the number requested) are appended at the end, so their counts are
/// always exact, even if that takes the output past a [`GenLimit::Bytes`] limit.
pub fn generate<W: Write>(opts: &GenOptions, out: W) -> io::Result<GenStats> {
    Generator::new(opts, out).run()
}

/// Bytes collected before each write to the sink.
const BLOCK: usize = 1 << 20;

/// Rough length of a good row, used to spread blank and bad lines under a byte limit.
const TYPICAL_ROW_BYTES: u64 = 72;

/// Readings per day at the 10-minute archive period.
const PER_DAY: u64 = 144;

/// Daily mean temperature on the 1st of each month (tenths of °C), January to next January.
const SEASON_MEAN: [i32; 13] = [40, 38, 45, 60, 85, 115, 140, 148, 135, 110, 75, 50, 40];

/// Half the typical day-night range on the 1st of each month (tenths of °C).
const SEASON_AMP: [i32; 13] = [22, 25, 32, 40, 45, 48, 47, 44, 38, 32, 25, 22, 22];

/// Shape of the day (per mille of the half range) at each hour: coldest at 05:00, warmest 15:00.
const DIURNAL: [i32; 24] = [
    -600, -720, -820, -900, -960, -1000, -950, -800, -580, -320, -50, 220, 480, 700, 880, 1000, 960, 820,
    600, 350, 120, -90, -280, -450,
];

/// The sixteen compass points in the export's spelling, clockwise from north.
const COMPASS: [&[u8]; 16] = [
    b"N", b"NNE", b"NE", b"ENE", b"E", b"ESE", b"SE", b"SSE", b"S", b"SSW", b"SW", b"WSW", b"W", b"WNW",
    b"NW", b"NNW",
];

/// Direction index meaning "no direction" (`---`).
const CALM: u8 = 16;

/// splitmix64 with a cache of unused bits, so several small draws share one 64-bit step.
struct Rng {
    state: u64,
    bits: u64,
    left: u32,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng { state: seed, bits: 0, left: 0 }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A value in `0..n` for `n <= 65536`, from 16 fresh bits (bias is far below visibility).
    fn below(&mut self, n: u32) -> i32 {
        if self.left == 0 {
            self.bits = self.next_u64();
            self.left = 4;
        }
        let sixteen = (self.bits & 0xFFFF) as u32;
        self.bits >>= 16;
        self.left -= 1;
        ((sixteen * n) >> 16) as i32
    }

    /// A value in `lo..=hi`.
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + self.below((hi - lo + 1) as u32)
    }
}

/// The splitmix64 finaliser, also used to derive independent streams from the seed.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Weather that holds for a whole day; consecutive days are blended so midnight has no jumps.
#[derive(Clone, Copy)]
struct DayParams {
    mean: i32,
    amp: i32,
    offset: i32,
    hum: i32,
    wind: i32,
    dir: i32,
    rain_per_mille: i32,
    baro: i32,
    inside: i32,
}

impl DayParams {
    /// Parameters for `day`, derived statelessly from the seed so tomorrow can be looked up early.
    fn for_day(seed: u64, day: Day) -> DayParams {
        let key = (i64::from(day.0) as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let mut r = Rng::new(mix64(seed ^ key ^ 0x5EA5_0A11));
        let (mean, amp) = season(day);
        let prevailing = r.below(10) < 7;
        DayParams {
            mean,
            amp: amp * r.range(60, 130) / 100,
            offset: r.range(0, 45) + r.range(0, 45) - 45,
            hum: r.range(62, 90),
            wind: r.range(1, 12),
            dir: if prevailing { 10 + r.range(-2, 2) } else { r.below(16) },
            rain_per_mille: if r.below(100) < 45 { r.range(50, 300) } else { 0 },
            baro: r.range(9_880, 10_320),
            inside: r.range(-10, 10),
        }
    }
}

/// Seasonal daily mean and half range for `day`, interpolated between the 1sts of the months.
fn season(day: Day) -> (i32, i32) {
    let (year, month, dom) = day.ymd();
    let m = month as usize - 1;
    let len = days_in_month(year, month) as i32;
    let pos = dom as i32 - 1;
    let lerp = |t: &[i32; 13]| t[m] + (t[m + 1] - t[m]) * pos / len;
    (lerp(&SEASON_MEAN), lerp(&SEASON_AMP))
}

/// Shape of the day at `minute`, in per mille of the half range.
fn diurnal(minute: u16) -> i32 {
    let h = usize::from(minute / 60);
    let f = i32::from(minute % 60);
    DIURNAL[h] + (DIURNAL[(h + 1) % 24] - DIURNAL[h]) * f / 60
}

/// Linear blend from `a` at midnight to `b` at the next midnight.
fn blend(a: i32, b: i32, minute: u16) -> i32 {
    a + (b - a) * i32::from(minute) / 1440
}

/// One 10-minute archive record; temperatures, dew point, rain and pressure in tenths.
#[derive(Clone, Copy)]
struct Reading {
    date: [u8; 10],
    minute: u16,
    temp: i32,
    hi: i32,
    lo: i32,
    hum: i32,
    wind: i32,
    gust: i32,
    dir: u8,
    rain: i32,
    baro: i32,
    in_temp: i32,
    in_hum: i32,
}

/// Produces consecutive readings, day after day.
struct Weather {
    seed: u64,
    day: Day,
    date: [u8; 10],
    minute: u16,
    today: DayParams,
    tomorrow: DayParams,
    rng: Rng,
}

impl Weather {
    fn new(start: Day, seed: u64) -> Weather {
        Weather {
            seed,
            day: start,
            date: dmy_bytes(start),
            minute: 0,
            today: DayParams::for_day(seed, start),
            tomorrow: DayParams::for_day(seed, start.plus(1)),
            rng: Rng::new(mix64(seed ^ 0x0BAD_5EED)),
        }
    }

    /// The next reading in time order.
    fn next_reading(&mut self) -> Reading {
        if self.minute == 1440 {
            self.day = self.day.plus(1);
            self.date = dmy_bytes(self.day);
            self.minute = 0;
            self.today = self.tomorrow;
            self.tomorrow = DayParams::for_day(self.seed, self.day.plus(1));
        }
        let reading = self.reading_at(self.minute);
        self.minute += 10;
        reading
    }

    fn reading_at(&mut self, minute: u16) -> Reading {
        let (a, b) = (self.today, self.tomorrow);
        let shape = diurnal(minute);
        let base = blend(a.mean + a.offset, b.mean + b.offset, minute);
        let temp = base + shape * blend(a.amp, b.amp, minute) / 1000 + self.rng.range(-2, 2);
        let raining = self.rng.below(1000) < a.rain_per_mille;
        let hum = blend(a.hum, b.hum, minute) - shape * 15 / 1000 + self.rng.range(-2, 2);
        let hum = (hum + if raining { 8 } else { 0 }).clamp(30, 100);
        let (wind, gust, dir) = self.wind(a, shape);
        Reading {
            date: self.date,
            minute,
            temp,
            hi: temp + self.rng.range(0, 4),
            lo: temp - self.rng.range(0, 4),
            hum,
            wind,
            gust,
            dir,
            rain: if raining { 2 * self.rng.range(1, 3) } else { 0 },
            baro: (blend(a.baro, b.baro, minute) + self.rng.range(-1, 1)).clamp(9_800, 10_400),
            in_temp: 200 + a.inside + shape * 12 / 1000 + self.rng.range(-1, 1),
            in_hum: (40 + (hum - 70) / 4 + self.rng.range(-1, 1)).clamp(30, 60),
        }
    }

    /// Speed, gust and direction index; about 8% of readings are calm with no direction.
    fn wind(&mut self, a: DayParams, shape: i32) -> (i32, i32, u8) {
        if self.rng.below(25) < 2 {
            return (0, self.rng.range(0, 2), CALM);
        }
        let speed = (a.wind + shape * 3 / 1000 + self.rng.range(-2, 2)).max(0);
        let gust = speed + self.rng.below(speed as u32 / 2 + 3);
        let dir = (a.dir + self.rng.range(-2, 2)).rem_euclid(16) as u8;
        (speed, gust, dir)
    }
}

/// `dd/mm/yyyy` for `day`, computed once per day rather than per row (years wrap modulo 10000).
fn dmy_bytes(day: Day) -> [u8; 10] {
    let (y, m, d) = day.ymd();
    let y = y.rem_euclid(10_000) as u32;
    let mut s = *b"00/00/0000";
    s[0..2].copy_from_slice(&two_digits(d));
    s[3..5].copy_from_slice(&two_digits(m));
    s[6..8].copy_from_slice(&two_digits(y / 100));
    s[8..10].copy_from_slice(&two_digits(y % 100));
    s
}

fn two_digits(v: u32) -> [u8; 2] {
    [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]
}

/// Appends an unsigned integer in decimal.
fn push_uint(buf: &mut Vec<u8>, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Appends a value held in tenths the way the export does: `16`, `9.3`, `-2.5`, `-0.4`.
fn push_tenths(buf: &mut Vec<u8>, v: i32) {
    if v < 0 {
        buf.push(b'-');
    }
    let a = v.unsigned_abs();
    push_uint(buf, a / 10);
    if !a.is_multiple_of(10) {
        buf.push(b'.');
        buf.push(b'0' + (a % 10) as u8);
    }
}

/// The ways a generated row can be broken, cycled in this order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Defect {
    None,
    /// Cut after nine fields.
    Truncated,
    /// A date that does not exist; the flag picks between two spellings.
    BadDate(bool),
    /// An hour and minute out of range.
    BadTime,
    /// Outside Temperature is not a number.
    BadTemp,
    /// Hi Temperature is not a number.
    BadHi,
}

impl Defect {
    /// The defect for the `n`th bad row (0-based).
    fn nth(n: u64) -> Defect {
        match n % 5 {
            0 => Defect::Truncated,
            1 => Defect::BadDate(n / 5 % 2 == 1),
            2 => Defect::BadTime,
            3 => Defect::BadTemp,
            _ => Defect::BadHi,
        }
    }
}

/// Appends one row (without line ending), broken as `defect` says.
fn push_row(buf: &mut Vec<u8>, r: &Reading, defect: Defect) {
    match defect {
        Defect::BadDate(false) => push_bad_date(buf, b"31/06/", &r.date),
        Defect::BadDate(true) => push_bad_date(buf, b"45/13/", &r.date),
        _ => buf.extend_from_slice(&r.date),
    }
    if defect == Defect::BadTime {
        buf.extend_from_slice(b",25:70,");
    } else {
        let m = u32::from(r.minute);
        buf.extend_from_slice(&[b',', b'0' + (m / 600) as u8, b'0' + (m / 60 % 10) as u8, b':']);
        buf.extend_from_slice(&[b'0' + (m % 60 / 10) as u8, b'0' + (m % 10) as u8, b',']);
    }
    push_temperatures(buf, r, defect);
    if defect != Defect::Truncated {
        push_rest(buf, r);
    }
}

fn push_bad_date(buf: &mut Vec<u8>, day_month: &[u8], date: &[u8; 10]) {
    buf.extend_from_slice(day_month);
    buf.extend_from_slice(&date[6..]);
}

/// Temp Humidity Index through DewPoint (fields 3 to 9).
fn push_temperatures(buf: &mut Vec<u8>, r: &Reading, defect: Defect) {
    push_tenths(buf, heat_index(r.temp, r.hum));
    buf.push(b',');
    if defect == Defect::BadTemp {
        buf.extend_from_slice(b"abc");
    } else {
        push_tenths(buf, r.temp);
    }
    buf.push(b',');
    push_tenths(buf, wind_chill(r.temp, r.wind));
    buf.push(b',');
    if defect == Defect::BadHi {
        buf.extend_from_slice(b"hot");
    } else {
        push_tenths(buf, r.hi);
    }
    buf.push(b',');
    push_tenths(buf, r.lo);
    buf.push(b',');
    push_uint(buf, r.hum as u32);
    buf.push(b',');
    push_tenths(buf, r.temp - (100 - r.hum) * 2);
}

/// WindSpeed through ArchivePeriod (fields 10 to 17).
fn push_rest(buf: &mut Vec<u8>, r: &Reading) {
    buf.push(b',');
    push_uint(buf, r.wind as u32);
    buf.push(b',');
    push_uint(buf, r.gust as u32);
    buf.push(b',');
    buf.extend_from_slice(COMPASS.get(usize::from(r.dir)).copied().unwrap_or(b"---"));
    buf.push(b',');
    push_tenths(buf, r.rain);
    buf.push(b',');
    push_tenths(buf, r.baro);
    buf.push(b',');
    push_tenths(buf, r.in_temp);
    buf.push(b',');
    push_uint(buf, r.in_hum as u32);
    buf.extend_from_slice(b",10");
}

/// Equal to the temperature except on warm, humid readings.
fn heat_index(temp: i32, hum: i32) -> i32 {
    temp + ((temp - 200) * (hum - 40)).max(0) / 200
}

/// Below the temperature only when it is cool and windy.
fn wind_chill(temp: i32, wind: i32) -> i32 {
    if temp <= 100 && wind >= 3 {
        temp - (wind - 2) * (110 - temp) / 25
    } else {
        temp
    }
}

/// Where the blank and bad lines go: extra `j` of `total` follows good row
/// `(j + 1) * expected / (total + 1)`, and the bad ones are spread evenly among the extras.
struct Extras {
    expected: u64,
    total: u64,
    bad: u64,
    done: u64,
    next_at: u64,
}

/// One scattered line.
enum Extra {
    Blank,
    Bad(Defect),
}

impl Extras {
    fn new(expected: u64, blank: u64, bad: u64) -> Extras {
        let mut e = Extras { expected, total: blank + bad, bad, done: 0, next_at: 0 };
        e.next_at = e.position(0);
        e
    }

    fn position(&self, j: u64) -> u64 {
        let p = u128::from(j + 1) * u128::from(self.expected) / u128::from(self.total + 1);
        (p as u64).max(1)
    }

    fn remaining(&self) -> bool {
        self.done < self.total
    }

    /// The next extra if it is due after `rows` good rows (or unconditionally with `force`).
    fn take(&mut self, rows: u64, force: bool) -> Option<Extra> {
        if !self.remaining() || (!force && rows < self.next_at) {
            return None;
        }
        let j = u128::from(self.done);
        let (bad, total) = (u128::from(self.bad), u128::from(self.total));
        let bad_before = j * bad / total;
        let is_bad = (j + 1) * bad / total > bad_before;
        self.done += 1;
        self.next_at = self.position(self.done);
        Some(if is_bad { Extra::Bad(Defect::nth(bad_before as u64)) } else { Extra::Blank })
    }
}

/// Ties the weather, the layout and the block buffer together.
struct Generator<W: Write> {
    out: W,
    buf: Vec<u8>,
    flushed: u64,
    eol: &'static [u8],
    limit: GenLimit,
    weather: Weather,
    extras: Extras,
    last: Reading,
    stats: GenStats,
}

impl<W: Write> Generator<W> {
    fn new(opts: &GenOptions, out: W) -> Generator<W> {
        let eol: &'static [u8] = if opts.crlf { b"\r\n" } else { b"\n" };
        // Bad rows before the first good one copy a reading the stream never uses.
        let last = Weather::new(opts.start, !opts.seed).next_reading();
        Generator {
            out,
            buf: Vec::with_capacity(BLOCK + 4096),
            flushed: 0,
            eol,
            limit: opts.limit,
            weather: Weather::new(opts.start, opts.seed),
            extras: Extras::new(expected_rows(opts), opts.blank_lines, opts.bad_rows),
            last,
            stats: GenStats::default(),
        }
    }

    fn run(mut self) -> io::Result<GenStats> {
        self.buf.extend_from_slice(HEADER.as_bytes());
        self.buf.extend_from_slice(self.eol);
        while !self.done() {
            self.last = self.weather.next_reading();
            push_row(&mut self.buf, &self.last, Defect::None);
            self.end_line()?;
            self.stats.rows += 1;
            while let Some(extra) = self.extras.take(self.stats.rows, false) {
                self.push_extra(extra)?;
            }
        }
        while let Some(extra) = self.extras.take(self.stats.rows, true) {
            self.push_extra(extra)?;
        }
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        self.stats.bytes = self.flushed + self.buf.len() as u64;
        Ok(self.stats)
    }

    fn done(&self) -> bool {
        match self.limit {
            GenLimit::Days(d) => self.stats.rows >= u64::from(d) * PER_DAY,
            GenLimit::Rows(n) => self.stats.rows >= n,
            GenLimit::Bytes(n) => self.flushed + self.buf.len() as u64 >= n,
        }
    }

    fn push_extra(&mut self, extra: Extra) -> io::Result<()> {
        match extra {
            Extra::Blank => self.stats.blank += 1,
            Extra::Bad(defect) => {
                push_row(&mut self.buf, &self.last, defect);
                self.stats.bad += 1;
            }
        }
        self.end_line()
    }

    /// Terminates the current line and hands a full block to the sink.
    fn end_line(&mut self) -> io::Result<()> {
        self.buf.extend_from_slice(self.eol);
        if self.buf.len() >= BLOCK {
            self.out.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Good rows the body is expected to hold, for spreading the blank and bad lines.
fn expected_rows(opts: &GenOptions) -> u64 {
    match opts.limit {
        GenLimit::Days(d) => u64::from(d) * PER_DAY,
        GenLimit::Rows(n) => n,
        GenLimit::Bytes(n) => {
            let eol = if opts.crlf { 2 } else { 1 };
            let body = n.saturating_sub(HEADER.len() as u64 + eol);
            let row = TYPICAL_ROW_BYTES + eol;
            let extras = opts.blank_lines.saturating_mul(eol) + opts.bad_rows.saturating_mul(row);
            body.saturating_sub(extras) / row
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(opts: &GenOptions) -> (Vec<u8>, GenStats) {
        let mut out = Vec::new();
        let stats = generate(opts, &mut out).unwrap();
        assert_eq!(stats.bytes, out.len() as u64);
        (out, stats)
    }

    fn opts(limit: GenLimit) -> GenOptions {
        GenOptions { limit, ..GenOptions::default() }
    }

    fn body_lines(out: &[u8]) -> Vec<&str> {
        let text = std::str::from_utf8(out).unwrap();
        let mut lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.pop(), Some(""), "output ends with a line ending");
        lines.drain(1..).map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
    }

    /// Tenths from a number with at most one decimal, or `None`.
    fn tenths(field: &str) -> Option<i32> {
        let (neg, digits) = match field.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, field),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) if f.len() == 1 && f != "0" => (w, f),
            Some(_) => return None,
            None => (digits, "0"),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || !all_digits(frac) || (neg && whole == "0" && frac == "0") {
            return None;
        }
        let v = whole.parse::<i32>().ok()? * 10 + frac.parse::<i32>().ok()?;
        Some(if neg { -v } else { v })
    }

    fn parse_date(f: &str) -> Option<Day> {
        let p: Vec<&str> = f.split('/').collect();
        if p.len() != 3 || p[0].len() != 2 || p[1].len() != 2 || p[2].len() != 4 {
            return None;
        }
        Day::from_ymd(p[2].parse().ok()?, p[1].parse().ok()?, p[0].parse().ok()?)
    }

    fn parse_time(f: &str) -> Option<u32> {
        let (h, m) = f.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (f.len() == 5 && h < 24 && m < 60).then_some(h * 60 + m)
    }

    /// How a line is broken (1 to 5, as in the brief), or 0 for a good row.
    fn classify(line: &str) -> u8 {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 17 {
            return 1;
        }
        if parse_date(f[0]).is_none() {
            return 2;
        }
        if parse_time(f[1]).is_none() {
            return 3;
        }
        if tenths(f[3]).is_none() {
            return 4;
        }
        if tenths(f[5]).is_none() {
            return 5;
        }
        0
    }

    /// Checks a good row fully and returns its timestamp in minutes since the epoch.
    fn check_good(line: &str) -> i64 {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 17, "{line}");
        let numeric = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16];
        let v: Vec<i32> = numeric.iter().map(|&i| tenths(f[i]).expect(line)).collect();
        let (temp, hi, lo) = (v[1], v[3], v[4]);
        assert!(lo <= temp && temp <= hi, "{line}");
        assert!((-150..=300).contains(&temp), "{line}");
        assert!((300..=1000).contains(&v[5]) && v[5] % 10 == 0, "humidity {line}");
        assert!(v[6] <= temp, "dew point {line}");
        assert!((9_800..=10_400).contains(&v[10]), "barometer {line}");
        assert!(v[7] >= 0 && v[8] >= v[7], "wind {line}");
        assert_eq!(f[16], "10");
        assert!(f[11] == "---" || COMPASS.contains(&f[11].as_bytes()), "{line}");
        let day = parse_date(f[0]).expect(line);
        i64::from(day.0) * 1440 + i64::from(parse_time(f[1]).expect(line))
    }

    #[test]
    fn header_is_exact() {
        let (out, _) = render(&opts(GenLimit::Rows(1)));
        let first = out.split(|&b| b == b'\n').next().unwrap();
        assert_eq!(first, HEADER.as_bytes());
        assert!(HEADER.contains("Temp Humidity Index   ,"));
        assert!(HEADER.contains("Inside  Temperature,Inside  Humidity,ArchivePeriod"));
        assert_eq!(HEADER.split(',').count(), 17);
    }

    #[test]
    fn deterministic_per_seed() {
        let o = GenOptions { blank_lines: 7, bad_rows: 9, ..opts(GenLimit::Days(3)) };
        assert_eq!(render(&o).0, render(&o).0);
        let other = GenOptions { seed: 2, ..o.clone() };
        assert_ne!(render(&o).0, render(&other).0);
    }

    /// Pins the exact bytes: changing them breaks reproducibility of recorded benchmarks.
    #[test]
    fn golden_output_is_stable() {
        let (out, _) = render(&opts(GenLimit::Rows(3)));
        let lines = body_lines(&out);
        assert_eq!(
            lines,
            [
                "01/06/2006,00:00,8.5,8.5,8.5,8.5,8.4,96,7.7,1,1,SW,0,1008.5,19.3,45,10",
                "01/06/2006,00:10,8.4,8.4,8.3,8.8,8.4,98,8,3,6,SW,0,1008.7,19.4,46,10",
                "01/06/2006,00:20,8.6,8.6,8.4,8.8,8.5,99,8.4,5,9,SSW,0,1008.5,19.4,46,10",
            ]
        );
        let o = GenOptions { crlf: true, blank_lines: 9, bad_rows: 11, ..opts(GenLimit::Days(40)) };
        let fnv = render(&o)
            .0
            .iter()
            .fold(0xCBF2_9CE4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3));
        assert_eq!(fnv, 14_061_231_998_918_712_243);
    }

    #[test]
    fn counts_add_up() {
        for (blank, bad) in [(0, 0), (3, 0), (0, 4), (10, 25), (500, 500)] {
            let o = GenOptions { blank_lines: blank, bad_rows: bad, ..opts(GenLimit::Days(2)) };
            let (out, stats) = render(&o);
            let lines = body_lines(&out);
            assert_eq!(stats.rows, 288);
            assert_eq!((stats.blank, stats.bad), (blank, bad));
            assert_eq!(lines.len() as u64, stats.rows + stats.blank + stats.bad);
            assert_eq!(lines.iter().filter(|l| l.is_empty()).count() as u64, blank);
            let broken = lines.iter().filter(|l| !l.is_empty() && classify(l) != 0).count();
            assert_eq!(broken as u64, bad);
        }
    }

    #[test]
    fn extras_are_spread_not_bunched() {
        let o = GenOptions { blank_lines: 4, bad_rows: 4, ..opts(GenLimit::Rows(900)) };
        let (out, _) = render(&o);
        let lines = body_lines(&out);
        let at: Vec<usize> = (0..lines.len()).filter(|&i| classify(lines[i]) != 0).collect();
        assert_eq!(at.len(), 8);
        assert!(at.windows(2).all(|w| w[1] - w[0] > 50), "{at:?}");
        assert!(at[0] > 50 && at[7] < lines.len() - 50, "{at:?}");
    }

    #[test]
    fn short_body_still_gets_every_extra() {
        let o = GenOptions { blank_lines: 6, bad_rows: 7, ..opts(GenLimit::Rows(3)) };
        let (out, stats) = render(&o);
        assert_eq!((stats.rows, stats.blank, stats.bad), (3, 6, 7));
        assert_eq!(body_lines(&out).len(), 16);
        let o = GenOptions { blank_lines: 2, bad_rows: 2, ..opts(GenLimit::Days(0)) };
        assert_eq!(body_lines(&render(&o).0).len(), 4);
    }

    #[test]
    fn crlf_ends_every_line() {
        let o = GenOptions { crlf: true, blank_lines: 5, bad_rows: 5, ..opts(GenLimit::Days(1)) };
        let (out, stats) = render(&o);
        let text = std::str::from_utf8(&out).unwrap();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines.len() as u64, 1 + stats.rows + stats.blank + stats.bad);
        assert!(lines.iter().all(|l| l.ends_with("\r\n") && !l[..l.len() - 2].contains('\r')));
        let (plain, _) = render(&GenOptions { crlf: false, ..o });
        assert_eq!(text.replace("\r\n", "\n").as_bytes(), plain.as_slice());
    }

    #[test]
    fn bytes_limit_overshoots_by_less_than_a_row() {
        for limit in [0, 100, 250, 5_000, 123_457, 3_000_000] {
            let (out, stats) = render(&opts(GenLimit::Bytes(limit)));
            let header = HEADER.len() as u64 + 1;
            if limit <= header {
                assert_eq!((stats.bytes, stats.rows), (header, 0), "{limit}");
                continue;
            }
            let last_row = body_lines(&out).last().unwrap().len() as u64 + 1;
            assert!(stats.bytes >= limit, "{limit}: {}", stats.bytes);
            assert!(stats.bytes < limit + last_row, "{limit}: {}", stats.bytes);
        }
    }

    #[test]
    fn bytes_limit_spreads_extras() {
        let o = GenOptions { blank_lines: 50, bad_rows: 50, ..opts(GenLimit::Bytes(1 << 20)) };
        let (out, stats) = render(&o);
        assert_eq!((stats.blank, stats.bad), (50, 50));
        let lines = body_lines(&out);
        let tail = &lines[lines.len() - 10..];
        assert!(tail.iter().filter(|l| classify(l) != 0).count() <= 2, "{tail:?}");
    }

    #[test]
    fn good_rows_are_valid_and_consecutive() {
        let start = Day::from_ymd(2006, 1, 1).unwrap();
        let limit = GenLimit::Days(366);
        let o = GenOptions { start, blank_lines: 300, bad_rows: 300, ..opts(limit) };
        let (out, stats) = render(&o);
        let mut expect = i64::from(start.0) * 1440;
        let (mut min, mut max, mut calm) = (i32::MAX, i32::MIN, 0);
        for line in body_lines(&out) {
            if line.is_empty() || classify(line) != 0 {
                continue;
            }
            assert_eq!(check_good(line), expect, "{line}");
            expect += 10;
            let t = tenths(line.split(',').nth(3).unwrap()).unwrap();
            (min, max) = (min.min(t), max.max(t));
            calm += usize::from(line.contains(",---,"));
        }
        assert_eq!(stats.rows, 366 * 144);
        assert_eq!(expect, i64::from(start.0 + 366) * 1440);
        assert!(min < 0 && max > 200, "{min}..{max}");
        let share = calm * 1000 / stats.rows as usize;
        assert!((60..=100).contains(&share), "calm {share}");
    }

    #[test]
    fn summer_afternoons_are_warmer_than_nights() {
        let (out, _) = render(&opts(GenLimit::Days(30)));
        let (mut day, mut night) = (0i64, 0i64);
        for line in body_lines(&out) {
            let t = i64::from(tenths(line.split(',').nth(3).unwrap()).unwrap());
            assert!((0..=280).contains(&t), "{line}");
            match &line[11..13] {
                "15" => day += t,
                "04" => night += t,
                _ => {}
            }
        }
        assert!(day > night + 6 * 10 * 30 * 4, "{day} vs {night}");
    }

    #[test]
    fn five_bad_rows_are_one_of_each_kind() {
        let o = GenOptions { bad_rows: 5, ..opts(GenLimit::Days(1)) };
        let (out, _) = render(&o);
        let mut kinds: Vec<u8> = body_lines(&out).iter().map(|l| classify(l)).collect();
        kinds.retain(|&k| k != 0);
        kinds.sort_unstable();
        assert_eq!(kinds, [1, 2, 3, 4, 5]);
        let o = GenOptions { bad_rows: 5, ..opts(GenLimit::Rows(0)) };
        let mut kinds: Vec<u8> = body_lines(&render(&o).0).iter().map(|l| classify(l)).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn formats_tenths_like_the_export() {
        let cases = [(0, "0"), (160, "16"), (93, "9.3"), (-25, "-2.5"), (-4, "-0.4")];
        for (v, text) in cases {
            let mut buf = Vec::new();
            push_tenths(&mut buf, v);
            assert_eq!(buf, text.as_bytes());
        }
        let mut buf = Vec::new();
        push_uint(&mut buf, 4_294_967_295);
        assert_eq!(buf, b"4294967295");
    }
}
