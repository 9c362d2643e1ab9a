//! Parsing a chunk of lines into readings, or rejects with reasons.
//!
//! This is the hot path. [`parse_chunk`] runs the one-pass block scanner in [`fast`]; the scalar
//! parser here ([`parse_chunk_reference`], [`LineParser`]) is the reference it is proven against
//! (`tests/differential.rs`, `just fuzz`) and what it hands every odd line to. In both, only the
//! five needed fields are decoded, straight into integers (day number, minute of day, tenths), and
//! nothing is allocated per row except for rejected rows. Lines with quotes are rare in these
//! exports and go through the `csv` crate so quoting is still honoured.

use crate::date::Day;
use crate::schema::Schema;
use crate::tenths::{Tenths, TenthsError};

#[doc(hidden)]
pub mod differential;
pub mod fast;

/// One accepted row, reduced to what the analyses use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    /// Input line number, to order equal timestamps by file order and to trace results back.
    pub line: u64,
    /// Calendar day.
    pub day: Day,
    /// Minute of the day, 0 to 1439.
    pub minute: u16,
    /// Outside Temperature.
    pub outside: Tenths,
    /// Hi Temperature.
    pub hi: Tenths,
    /// Low Temperature.
    pub low: Tenths,
}

/// A row that could not be used, and why; written to `rejects.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Input line number.
    pub line: u64,
    /// What was wrong, naming the field and value.
    pub reason: String,
    /// The line as read (invalid UTF-8 replaced), without its line ending.
    pub raw: String,
}

/// The outcome of parsing one chunk. `lines == readings + rejects + blank`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Accepted rows in input order.
    pub readings: Vec<Reading>,
    /// Rejected rows in input order.
    pub rejects: Vec<Reject>,
    /// Empty or whitespace-only lines.
    pub blank: u64,
    /// All lines in the chunk.
    pub lines: u64,
}

/// Parses every line of `data`, whose first line is number `first_line`.
///
/// `at_end` says the chunk is the last of the input, so a final line without a line ending can be
/// reported as possibly truncated. Runs the fast scanner ([`fast`]); the result is identical to
/// [`parse_chunk_reference`] for every input.
pub fn parse_chunk(data: &[u8], first_line: u64, schema: &Schema, at_end: bool) -> Parsed {
    fast::parse_chunk_with(fast::Kernel::best(), data, first_line, schema, at_end)
}

/// [`parse_chunk`], filling `readings` (cleared first) instead of a new vector: the parse workers
/// pass one that went round before ([`crate::recycle`]), so its pages are not faulted in again.
pub fn parse_chunk_into(
    data: &[u8],
    first_line: u64,
    schema: &Schema,
    at_end: bool,
    readings: Vec<Reading>,
) -> Parsed {
    fast::parse_chunk_into(fast::Kernel::best(), data, first_line, schema, at_end, readings)
}

/// The reference parser: a line at a time, splitting each on commas with a byte loop.
///
/// Kept simple on purpose: it is the oracle the fast path is tested and fuzzed against, and the
/// fast path hands it every line it does not decode itself. Same contract as [`parse_chunk`].
pub fn parse_chunk_reference(data: &[u8], first_line: u64, schema: &Schema, at_end: bool) -> Parsed {
    let mut parsed = Parsed { readings: Vec::with_capacity(data.len() / 64 + 1), ..Parsed::default() };
    let mut parser = LineParser::new(schema, memchr::memchr(b'"', data).is_some());
    let mut line_no = first_line;
    let mut rest = data;
    while !rest.is_empty() {
        let (line, terminated, next) = match memchr::memchr(b'\n', rest) {
            Some(pos) => (&rest[..pos], true, &rest[pos + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        parsed.lines += 1;
        if is_blank(line) {
            parsed.blank += 1;
        } else {
            match parser.parse(line, line_no) {
                Ok(reading) => parsed.readings.push(reading),
                Err(reason) => parsed.rejects.push(reject(line, line_no, reason, !terminated && at_end)),
            }
        }
        line_no += 1;
        rest = next;
    }
    parsed
}

fn reject(line: &[u8], line_no: u64, reason: String, truncated: bool) -> Reject {
    let reason = if truncated {
        format!("{reason} (last line has no line ending: the input may be truncated)")
    } else {
        reason
    };
    Reject { line: line_no, reason, raw: String::from_utf8_lossy(line).into_owned() }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Marks a header position the analyses do not use.
const UNUSED: u8 = u8::MAX;

/// What the one-entry date caches (here and in [`fast`]) start with: a real date and its day,
/// so the cache only ever maps a key to what [`parse_date`] gives for it. (It used to start as
/// ten zero bytes and day 0, so a date field of ten NUL bytes was accepted as 1 January 1970;
/// found by the cargo-fuzz target, see `tests/data/fuzz-regressions/`.)
const DATE_CACHE_START: ([u8; 10], Day) = (*b"01/01/1970", Day(0));

/// Parses lines of one schema, reusing what it learnt from the previous line.
///
/// `slots[i]` says which of the five analysed fields column `i` is, so splitting a line is one
/// table look-up per field; consecutive rows share their date, so the last date is remembered.
pub struct LineParser<'a> {
    schema: &'a Schema,
    slots: Vec<u8>,
    last_needed: usize,
    quotes: bool,
    last_date: ([u8; 10], Day),
}

impl<'a> LineParser<'a> {
    /// A parser for `schema`; `quotes` says some lines may contain quotes (slower path).
    pub fn new(schema: &'a Schema, quotes: bool) -> LineParser<'a> {
        let mut slots = vec![UNUSED; schema.fields];
        for (slot, index) in
            [schema.date, schema.time, schema.outside, schema.hi, schema.low].into_iter().enumerate()
        {
            slots[index] = slot as u8;
        }
        LineParser { schema, slots, last_needed: schema.last_needed(), quotes, last_date: DATE_CACHE_START }
    }

    /// Parses one line without its line ending.
    pub fn parse(&mut self, line: &[u8], line_no: u64) -> Result<Reading, String> {
        if self.quotes && memchr::memchr(b'"', line).is_some() {
            return parse_quoted(line, line_no, self.schema);
        }
        let mut fields: [&[u8]; 5] = [&[]; 5];
        let (mut count, mut start) = (0usize, 0usize);
        for (i, &b) in line.iter().enumerate() {
            if b != b',' {
                continue;
            }
            if let Some(&slot) = self.slots.get(count).filter(|&&s| s != UNUSED) {
                fields[slot as usize] = &line[start..i];
            }
            count += 1;
            start = i + 1;
            if count > self.last_needed {
                // Every analysed field is found: only the remaining commas still matter.
                count += line[start..].iter().filter(|&&b| b == b',').count();
                break;
            }
        }
        if count <= self.last_needed {
            if let Some(&slot) = self.slots.get(count).filter(|&&s| s != UNUSED) {
                fields[slot as usize] = &line[start..];
            }
        }
        count += 1;
        if count != self.schema.fields {
            return Err(format!("expected {} fields, found {count}", self.schema.fields));
        }
        let day = self.date(fields[0])?;
        decode(day, fields, line_no, self.schema)
    }

    fn date(&mut self, bytes: &[u8]) -> Result<Day, String> {
        let key: Option<[u8; 10]> = bytes.try_into().ok();
        if let Some(key) = key {
            if key == self.last_date.0 {
                return Ok(self.last_date.1);
            }
        }
        let day = parse_date(bytes).ok_or_else(|| {
            bad_field(self.schema, self.schema.date, bytes, "is not a valid dd/mm/yyyy date")
        })?;
        if let Some(key) = key {
            self.last_date = (key, day);
        }
        Ok(day)
    }
}

fn parse_quoted(line: &[u8], line_no: u64, schema: &Schema) -> Result<Reading, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err("empty record".into()),
        Err(e) => return Err(format!("malformed CSV quoting: {e}")),
    }
    if record.len() != schema.fields {
        return Err(format!("expected {} fields, found {}", schema.fields, record.len()));
    }
    let get = |i: usize| record.get(i).unwrap_or_default();
    let fields = [get(schema.date), get(schema.time), get(schema.outside), get(schema.hi), get(schema.low)];
    let day = parse_date(fields[0])
        .ok_or_else(|| bad_field(schema, schema.date, fields[0], "is not a valid dd/mm/yyyy date"))?;
    decode(day, fields, line_no, schema)
}

fn decode(day: Day, fields: [&[u8]; 5], line_no: u64, schema: &Schema) -> Result<Reading, String> {
    let [_, time, outside, hi, low] = fields;
    let minute =
        parse_time(time).ok_or_else(|| bad_field(schema, schema.time, time, "is not a valid HH:MM time"))?;
    let number = |bytes: &[u8], index: usize| {
        Tenths::parse(bytes).map_err(|e: TenthsError| bad_field(schema, index, bytes, &e.to_string()))
    };
    Ok(Reading {
        line: line_no,
        day,
        minute,
        outside: number(outside, schema.outside)?,
        hi: number(hi, schema.hi)?,
        low: number(low, schema.low)?,
    })
}

fn bad_field(schema: &Schema, index: usize, value: &[u8], problem: &str) -> String {
    format!("{} `{}` {problem}", schema.name(index), String::from_utf8_lossy(value))
}

/// Parses `dd/mm/yyyy` (one- or two-digit day and month) into a day number.
pub fn parse_date(bytes: &[u8]) -> Option<Day> {
    let bytes = crate::tenths::trim_spaces(bytes);
    let mut parts = bytes.splitn(3, |&b| b == b'/');
    let d = small_number(parts.next()?, 1, 2)?;
    let m = small_number(parts.next()?, 1, 2)?;
    let y = small_number(parts.next()?, 4, 4)?;
    Day::from_ymd(y as i32, m, d)
}

/// Parses `HH:MM` into a minute of the day.
pub fn parse_time(bytes: &[u8]) -> Option<u16> {
    let bytes = crate::tenths::trim_spaces(bytes);
    let colon = memchr::memchr(b':', bytes)?;
    let h = small_number(&bytes[..colon], 1, 2)?;
    let m = small_number(&bytes[colon + 1..], 2, 2)?;
    (h < 24 && m < 60).then(|| (h * 60 + m) as u16)
}

fn small_number(bytes: &[u8], min_len: usize, max_len: usize) -> Option<u32> {
    if bytes.len() < min_len || bytes.len() > max_len {
        return None;
    }
    bytes.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{parse_header, Columns};

    fn schema() -> Schema {
        let cols = Columns::default();
        parse_header(b"Date,Time,Outside Temperature,Hi Temperature,Low Temperature,Wind Direction", 1, &cols)
            .unwrap()
    }

    #[test]
    fn parses_rows_blank_lines_and_crlf() {
        let data = b"01/06/2006,00:00,9.3,9.7,9.1,NNW\r\n\r\n  \n2/6/2006,13:05,-1,0,-2.5,---\n";
        let p = parse_chunk(data, 2, &schema(), true);
        assert_eq!((p.lines, p.blank, p.rejects.len()), (4, 2, 0));
        assert_eq!(
            p.readings[0],
            Reading {
                line: 2,
                day: Day::from_ymd(2006, 6, 1).unwrap(),
                minute: 0,
                outside: Tenths(93),
                hi: Tenths(97),
                low: Tenths(91)
            }
        );
        assert_eq!(p.readings[1].line, 5);
        assert_eq!(p.readings[1].minute, 13 * 60 + 5);
        assert_eq!(p.readings[1].low, Tenths(-25));
    }

    #[test]
    fn the_date_caches_start_with_a_true_pair() {
        assert_eq!(parse_date(&DATE_CACHE_START.0), Some(DATE_CACHE_START.1));
    }

    /// Ten NUL bytes (as a crashed write leaves) once matched the caches' initial key and were
    /// read as 1 January 1970; both parsers must reject them, first row of a chunk or not.
    #[test]
    fn a_date_of_ten_zero_bytes_is_rejected() {
        let nul_row = b"\0\0\0\0\0\0\0\0\0\0,00:00,1,1,1,N\n";
        let after_a_row = [&b"01/06/2006,00:00,1,1,1,N\n"[..], nul_row].concat();
        for data in [&nul_row[..], &after_a_row] {
            for p in [parse_chunk(data, 2, &schema(), true), parse_chunk_reference(data, 2, &schema(), true)]
            {
                assert_eq!(p.rejects.len(), 1, "{p:?}");
                assert!(p.rejects[0].reason.starts_with("Date `"), "{p:?}");
            }
        }
    }

    #[test]
    fn rejects_name_line_field_and_value() {
        let data = b"31/06/2006,00:00,1,1,1,N\n01/06/2006,25:70,1,1,1,N\n01/06/2006,00:10,abc,1,1,N\n01/06/2006,00:10,1\n01/06/2006,00:10,1,1";
        let p = parse_chunk(data, 10, &schema(), true);
        let reasons: Vec<(u64, &str)> = p.rejects.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            vec![
                (10, "Date `31/06/2006` is not a valid dd/mm/yyyy date"),
                (11, "Time `25:70` is not a valid HH:MM time"),
                (12, "Outside Temperature `abc` is not a number"),
                (13, "expected 6 fields, found 3"),
                (14, "expected 6 fields, found 4 (last line has no line ending: the input may be truncated)"),
            ]
        );
        assert_eq!(p.rejects[3].raw, "01/06/2006,00:10,1");
    }

    #[test]
    fn quoted_lines_use_the_csv_parser() {
        let p = parse_chunk(b"\"01/06/2006\",\"10:00\",\"12.5\",13,12,\"N, gusty\"\n", 2, &schema(), true);
        assert_eq!(p.rejects, vec![]);
        assert_eq!(p.readings[0].outside, Tenths(125));
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date(b"29/02/2008"), Day::from_ymd(2008, 2, 29));
        assert_eq!(parse_date(b"29/02/2006"), None);
        assert_eq!(parse_date(b"01/06/06"), None);
        assert_eq!(parse_date(b"01-06-2006"), None);
        assert_eq!(parse_time(b"23:59"), Some(1439));
        assert_eq!(parse_time(b"9:05"), Some(545));
        assert_eq!(parse_time(b"24:00"), None);
        assert_eq!(parse_time(b"12:5"), None);
    }
}
