//! The fast path of [`super::parse_chunk`]: one pass over the chunk finds every comma, line break
//! and quote together, 64 bytes at a time, as bit masks.
//!
//! The reference parser scans each byte twice (once for the line break, once for commas) and
//! loops over every byte. Here a block of 64 bytes becomes three 64-bit masks (SSE2 compares on
//! x86_64, a byte loop elsewhere); a line's first commas are taken from the mask bit by bit, the
//! rest are counted with one `popcount`, and only the five analysed fields are decoded.
//!
//! **Identical results by construction.** A line is decoded here only if it has no quote and
//! exactly `fields - 1` commas (so it is not blank either); each field goes through a fast decoder
//! for the usual spelling (`dd/mm/yyyy`, `HH:MM`, `-12.3`, `991`) or else through the reference decoder
//! itself. When anything fails, the line is handed to the reference [`LineParser`], which produces
//! the reading or the reject with its exact reason. The fast decoders therefore only have to be
//! right when they succeed, and `tests/differential.rs` checks exactly that against the reference.

use super::{is_blank, parse_date, parse_time, reject, LineParser, Parsed, Reading, DATE_CACHE_START};
use crate::date::Day;
use crate::schema::Schema;
use crate::tenths::Tenths;

/// Block size of the scan: one bit per byte in a `u64` mask.
const BLOCK: usize = 64;

/// Most comma positions a line keeps: schemas whose analysed fields lie further right go to the
/// reference parser whole (a fixed array lets the compiler drop the bounds checks).
const MAX_CUTS: usize = 64;

/// How the 64-byte blocks are classified; both give the same masks (see the tests), the choice
/// exists so that the portable one is tested on machines that use the vector one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Byte loop: every platform.
    Scalar,
    /// SSE2 compares (x86_64 baseline); the scalar loop on other targets.
    Simd,
}

/// One bit per byte of a block: which bytes are commas, line breaks, quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Masks {
    /// `,` positions.
    pub comma: u64,
    /// `\n` positions.
    pub newline: u64,
    /// `"` positions.
    pub quote: u64,
}

/// Classifies a block with a byte loop: the portable kernel and the oracle for the vector one.
pub fn classify_scalar(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b',' => m.comma |= bit,
            b'\n' => m.newline |= bit,
            b'"' => m.quote |= bit,
            _ => {}
        }
    }
    m
}

/// Classifies a block with SSE2: four 16-byte compares per character, `movemask` to bits.
#[cfg(target_arch = "x86_64")]
pub fn classify_simd(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut m = Masks::default();
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always available on
    // this target. Each `_mm_loadu_si128` reads 16 bytes at offset 0, 16, 32 or 48 of a 64-byte
    // array (in bounds), and the unaligned load has no alignment requirement.
    unsafe {
        let (comma, newline, quote) =
            (_mm_set1_epi8(b',' as i8), _mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'"' as i8));
        for i in 0..BLOCK / 16 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast::<__m128i>());
            let bits = |c| u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, c)) as u16) << (16 * i);
            m.comma |= bits(comma);
            m.newline |= bits(newline);
            m.quote |= bits(quote);
        }
    }
    m
}

/// The portable kernel stands in for SSE2 off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub fn classify_simd(block: &[u8; BLOCK]) -> Masks {
    classify_scalar(block)
}

/// Parses `data` like [`super::parse_chunk_reference`], with the given block kernel.
pub fn parse_chunk_with(
    kernel: Kernel,
    data: &[u8],
    first_line: u64,
    schema: &Schema,
    at_end: bool,
) -> Parsed {
    parse_chunk_into(kernel, data, first_line, schema, at_end, Vec::new())
}

/// [`parse_chunk_with`], filling `readings` (cleared first) rather than a new vector.
pub fn parse_chunk_into(
    kernel: Kernel,
    data: &[u8],
    first_line: u64,
    schema: &Schema,
    at_end: bool,
    mut readings: Vec<Reading>,
) -> Parsed {
    if schema.fields < 2 || schema.last_needed() >= MAX_CUTS {
        return super::parse_chunk_reference(data, first_line, schema, at_end);
    }
    readings.clear();
    readings.reserve(data.len() / 64 + 1);
    let mut scan = Scan::new(data, first_line, schema, at_end, readings);
    match kernel {
        Kernel::Scalar => scan.run(classify_scalar),
        Kernel::Simd => scan.run(classify_simd),
    }
    scan.parsed
}

/// The state of one pass over a chunk: where the current line starts, its commas so far.
struct Scan<'d, 's> {
    data: &'d [u8],
    schema: &'s Schema,
    at_end: bool,
    parsed: Parsed,
    line_no: u64,
    line_start: usize,
    /// Commas seen in the current line.
    commas: usize,
    /// Positions of the current line's commas number `0..=last_needed`.
    cuts: [usize; MAX_CUTS],
    /// The current line contains a quote: the reference parser takes it.
    quoted: bool,
    last_needed: usize,
    last_date: ([u8; 10], Day),
    fallback: LineParser<'s>,
}

impl<'d, 's> Scan<'d, 's> {
    fn new(
        data: &'d [u8],
        first_line: u64,
        schema: &'s Schema,
        at_end: bool,
        readings: Vec<Reading>,
    ) -> Scan<'d, 's> {
        let last_needed = schema.last_needed();
        Scan {
            data,
            schema,
            at_end,
            parsed: Parsed { readings, ..Parsed::default() },
            line_no: first_line,
            line_start: 0,
            commas: 0,
            cuts: [0; MAX_CUTS],
            quoted: false,
            last_needed,
            last_date: DATE_CACHE_START,
            fallback: LineParser::new(schema, true),
        }
    }

    /// Walks the chunk block by block; the last partial block is padded with zeros (no zero byte
    /// is a separator), and a final unterminated line is finished at the end.
    #[inline(always)]
    fn run(&mut self, classify: impl Fn(&[u8; BLOCK]) -> Masks) {
        let data = self.data;
        let mut blocks = data.chunks_exact(BLOCK);
        let mut base = 0;
        for block in blocks.by_ref() {
            let block: &[u8; BLOCK] = block.try_into().expect("chunks_exact gives whole blocks");
            self.block(base, classify(block));
            base += BLOCK;
        }
        let tail = blocks.remainder();
        if !tail.is_empty() {
            let mut padded = [0u8; BLOCK];
            padded[..tail.len()].copy_from_slice(tail);
            self.block(base, classify(&padded));
        }
        if self.line_start < data.len() {
            self.end_line(data.len(), false);
        }
    }

    /// Consumes one block's masks: commas go to the current line, each line break ends it.
    #[inline(always)]
    fn block(&mut self, base: usize, m: Masks) {
        let (mut commas, mut newlines, mut quotes) = (m.comma, m.newline, m.quote);
        loop {
            // The bits before the next line break (all of them if there is none), with no branch.
            let before = newlines.wrapping_sub(1) & !newlines;
            self.take_commas(base, commas & before);
            self.quoted |= quotes & before != 0;
            if newlines == 0 {
                return;
            }
            self.end_line(base + newlines.trailing_zeros() as usize, true);
            // Drop this line's bits: everything up to and including its line break.
            let through = newlines ^ newlines.wrapping_sub(1);
            commas &= !through;
            quotes &= !through;
            newlines &= newlines - 1;
        }
    }

    /// Adds a block's commas of the current line: the positions of those up to `last_needed`, the
    /// count of all.
    #[inline(always)]
    fn take_commas(&mut self, base: usize, mut mine: u64) {
        let mut n = self.commas;
        while mine != 0 && n <= self.last_needed {
            self.cuts[n % MAX_CUTS] = base + mine.trailing_zeros() as usize;
            n += 1;
            mine &= mine - 1;
        }
        self.commas = n + mine.count_ones() as usize;
    }

    /// Finishes the line that ends at `end` (its `\n`, or the end of the data).
    fn end_line(&mut self, end: usize, terminated: bool) {
        let start = self.line_start;
        let mut stop = end;
        if stop > start && self.data[stop - 1] == b'\r' {
            stop -= 1;
        }
        self.parsed.lines += 1;
        let simple = !self.quoted && self.commas + 1 == self.schema.fields;
        match simple.then(|| self.decode(start, stop)).flatten() {
            Some(reading) => self.parsed.readings.push(reading),
            None => self.slow(start, stop, terminated),
        }
        self.line_no += 1;
        self.line_start = end + 1;
        self.commas = 0;
        self.quoted = false;
    }

    /// The reference path for one line: blank lines, odd lines and every reject.
    #[cold]
    fn slow(&mut self, start: usize, stop: usize, terminated: bool) {
        let line = &self.data[start..stop];
        if is_blank(line) {
            self.parsed.blank += 1;
            return;
        }
        match self.fallback.parse(line, self.line_no) {
            Ok(reading) => self.parsed.readings.push(reading),
            Err(reason) => {
                let truncated = !terminated && self.at_end;
                self.parsed.rejects.push(reject(line, self.line_no, reason, truncated));
            }
        }
    }

    /// Field `index` of the current line, which has exactly `fields - 1` commas and ends at
    /// `stop` (line ending removed).
    #[inline(always)]
    fn field(&self, index: usize, stop: usize) -> &'d [u8] {
        let from = if index == 0 { self.line_start } else { self.cuts[(index - 1) % MAX_CUTS] + 1 };
        let to = if index < self.commas { self.cuts[index % MAX_CUTS] } else { stop };
        &self.data[from..to]
    }

    /// Decodes the five analysed fields, or `None` if any of them is not valid.
    #[inline(always)]
    fn decode(&mut self, _start: usize, stop: usize) -> Option<Reading> {
        let s = self.schema;
        let day = self.date(self.field(s.date, stop))?;
        Some(Reading {
            line: self.line_no,
            day,
            minute: time(self.field(s.time, stop))?,
            outside: tenths(self.field(s.outside, stop))?,
            hi: tenths(self.field(s.hi, stop))?,
            low: tenths(self.field(s.low, stop))?,
        })
    }

    /// The day of a date field; consecutive rows share their date, so the last one is kept.
    #[inline(always)]
    fn date(&mut self, bytes: &[u8]) -> Option<Day> {
        let key: Option<[u8; 10]> = bytes.try_into().ok();
        match key {
            Some(key) if key == self.last_date.0 => Some(self.last_date.1),
            Some(key) => {
                let day = parse_date(&key)?;
                self.last_date = (key, day);
                Some(day)
            }
            None => parse_date(bytes),
        }
    }
}

/// `HH:MM` read directly; any other spelling goes to the reference [`parse_time`].
#[inline(always)]
fn time(bytes: &[u8]) -> Option<u16> {
    if let &[h1, h2, b':', m1, m2] = bytes {
        let d = [h1, h2, m1, m2].map(|b| b.wrapping_sub(b'0'));
        if d.iter().all(|&x| x < 10) {
            let (h, m) = (u16::from(d[0]) * 10 + u16::from(d[1]), u16::from(d[2]) * 10 + u16::from(d[3]));
            return (h < 24 && m < 60).then_some(h * 60 + m);
        }
    }
    parse_time(bytes)
}

/// `-?d{1,3}.d` or `-?d{1,3}` read directly; any other spelling goes to the reference
/// [`Tenths::parse`].
#[inline(always)]
fn tenths(bytes: &[u8]) -> Option<Tenths> {
    match usual_tenths(bytes) {
        Some(value) => Some(Tenths(value)),
        None => Tenths::parse(bytes).ok(),
    }
}

/// The value of `-?d{1,3}.d` or `-?d{1,3}` in tenths, one pattern per length (no loop), or `None`
/// for any other spelling.
#[inline(always)]
fn usual_tenths(bytes: &[u8]) -> Option<i32> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    let value = match *digits {
        [a, b'.', f] => digit(a)? * 10 + digit(f)?,
        [a, b, b'.', f] => digit(a)? * 100 + digit(b)? * 10 + digit(f)?,
        [a] => digit(a)? * 10,
        [a, b] => digit(a)? * 100 + digit(b)? * 10,
        [a, b, c, b'.', f] => digit(a)? * 1000 + digit(b)? * 100 + digit(c)? * 10 + digit(f)?,
        [a, b, c] => digit(a)? * 1000 + digit(b)? * 100 + digit(c)? * 10,
        _ => return None,
    };
    Some(if negative { -value } else { value })
}

/// The value of an ASCII digit.
#[inline(always)]
fn digit(b: u8) -> Option<i32> {
    let d = b.wrapping_sub(b'0');
    (d < 10).then_some(i32::from(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_kernels_classify_alike() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let mut block = [0u8; BLOCK];
            for b in block.iter_mut() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                *b = b",\n\"\r0a"[(seed >> 33) as usize % 6].wrapping_add(if seed >> 60 == 0 {
                    128
                } else {
                    0
                });
            }
            assert_eq!(classify_simd(&block), classify_scalar(&block));
        }
        let all: [u8; BLOCK] = [b','; BLOCK];
        assert_eq!(classify_simd(&all).comma, u64::MAX);
    }

    #[test]
    fn fast_decoders_agree_with_the_reference_where_they_succeed() {
        for t in ["00:00", "23:59", "24:00", "12:60", "9:05", "1a:00", " 12:00"] {
            assert_eq!(time(t.as_bytes()), parse_time(t.as_bytes()), "{t}");
        }
        for n in [
            "1", "-1", "123", "1234", "1.", "-7.", "1.a", "12a", "-0", "-0.0", "0.0", "999.9", "-12.3", "12",
            "1.25", "+1.0", "-.5", "1000.0", "", "-", ".5", "12.", "1.2.3", "-123.4", "123.4", "-1234",
            "--1", "0.", "9.9", "99", "999", "-999.9", " 1.2", "1.2 ", "1e3", "1-2", "-1.-", "1..", "..1",
            "-12.3.",
        ] {
            assert_eq!(tenths(n.as_bytes()), Tenths::parse(n.as_bytes()).ok(), "{n}");
        }
    }
}
