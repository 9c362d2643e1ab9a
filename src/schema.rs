//! The header check: is this a weather export, and where are the columns we need?
//!
//! Runs on the first line before any data is analysed, so a wrong URL (an HTML error page), a
//! binary file or a renamed column fails at once with a message showing what was found, instead of
//! producing thousands of rejected rows.

use serde::{Deserialize, Serialize};

use crate::chunk::Chunker;
use crate::error::{preview, DataError};

/// `[columns]`: which header names hold the fields the analyses need. Here rather than in
/// `config`, so that the parser and the schema depend on no configuration machinery.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Columns {
    /// `dd/mm/yyyy` column.
    pub date: String,
    /// `HH:MM` column.
    pub time: String,
    /// Outside Temperature.
    pub outside: String,
    /// Hi Temperature.
    pub hi: String,
    /// Low Temperature.
    pub low: String,
}

impl Default for Columns {
    /// The column names of a Davis WeatherLink export, as in `config/analyses.toml` (tested).
    fn default() -> Columns {
        Columns {
            date: "Date".into(),
            time: "Time".into(),
            outside: "Outside Temperature".into(),
            hi: "Hi Temperature".into(),
            low: "Low Temperature".into(),
        }
    }
}

/// Positions of the analysed columns in each row, and how many fields a row must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Number of header fields; every data row must have exactly this many.
    pub fields: usize,
    /// Index of the date column.
    pub date: usize,
    /// Index of the time column.
    pub time: usize,
    /// Index of the outside temperature column.
    pub outside: usize,
    /// Index of the hi temperature column.
    pub hi: usize,
    /// Index of the low temperature column.
    pub low: usize,
    /// Normalised header names, in order.
    pub names: Vec<String>,
}

impl Schema {
    /// Human name of the column at `index`, for reject reasons.
    pub fn name(&self, index: usize) -> &str {
        self.names.get(index).map_or("?", String::as_str)
    }

    /// The highest index the parser needs, to stop splitting a row early.
    pub fn last_needed(&self) -> usize {
        self.date.max(self.time).max(self.outside).max(self.hi).max(self.low)
    }
}

/// Trims and collapses runs of whitespace, so `Temp Humidity Index   ` and `Inside  Temperature`
/// match their plain spellings.
pub fn normalize(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Strips a UTF-8 byte-order mark, which some exporters put before the header.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Checks that the start of the input looks like CSV text at all, before trusting its first line.
pub fn sniff(start: &[u8]) -> Result<(), DataError> {
    let head = &start[..start.len().min(1024)];
    let binary = head.iter().filter(|&&b| b == 0 || (b < 0x20 && !b"\r\n\t".contains(&b))).count();
    if binary > 0 || std::str::from_utf8(head).is_err() && !valid_utf8_prefix(head) {
        return Err(DataError::NotCsv { kind: "binary data", preview: preview(head, 48) });
    }
    let text = String::from_utf8_lossy(head).trim_start().to_ascii_lowercase();
    if text.starts_with('<') || text.contains("<html") || text.contains("<!doctype") {
        return Err(DataError::NotCsv { kind: "an HTML page", preview: preview(head, 80) });
    }
    Ok(())
}

/// True when the only UTF-8 problem is a multi-byte character cut at the end of the sample.
fn valid_utf8_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// Reads the header line (without its line ending) and locates the required columns.
pub fn parse_header(line: &[u8], line_no: u64, columns: &Columns) -> Result<Schema, DataError> {
    let line = strip_bom(line);
    let names = split_header(line);
    let wanted = [&columns.date, &columns.time, &columns.outside, &columns.hi, &columns.low];
    let find = |want: &str| {
        let want = normalize(want);
        names.iter().position(|n| n.eq_ignore_ascii_case(&want))
    };
    let found: Vec<Option<usize>> = wanted.iter().map(|w| find(w)).collect();
    let missing: Vec<String> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(w, _)| format!("`{}`", normalize(w)))
        .collect();
    if !missing.is_empty() {
        return Err(DataError::MissingColumns {
            line: line_no,
            missing: missing.join(", "),
            expected: wanted.iter().map(|w| normalize(w)).collect::<Vec<_>>().join(", "),
            found: if names.iter().all(String::is_empty) {
                format!("(nothing) — first bytes {}", preview(line, 60))
            } else {
                names.join(", ")
            },
        });
    }
    let at = |i: usize| found[i].expect("checked above");
    Ok(Schema { fields: names.len(), date: at(0), time: at(1), outside: at(2), hi: at(3), low: at(4), names })
}

fn split_header(line: &[u8]) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => record.iter().map(|f| normalize(&String::from_utf8_lossy(f))).collect(),
        _ => Vec::new(),
    }
}

/// The search for the header at the start of an input: skips blank lines, checks that the bytes
/// look like CSV, and parses the first non-blank line. The fetcher runs it on the blocks it reads;
/// a cluster coordinator runs it to learn the header it hands to every range.
#[derive(Debug, Default)]
pub struct HeaderSearch {
    /// The first bytes have been checked by [`sniff`].
    pub sniffed: bool,
    /// Blank lines seen before the header.
    pub leading_blank: u64,
}

impl HeaderSearch {
    /// Takes lines from `chunker` until the header: `Some((schema, header line))` once found,
    /// `None` if more bytes are needed; at `eof` without a data row, the error `wxflow run` gives
    /// (empty input, header only).
    pub fn step(
        &mut self,
        chunker: &mut Chunker,
        eof: bool,
        columns: &Columns,
    ) -> Result<Option<(Schema, Vec<u8>)>, DataError> {
        if !self.sniffed && (chunker.buffered() >= 1024 || eof || chunker.has_line()) {
            sniff(chunker.peek())?;
            self.sniffed = true;
        }
        while let Some(line) = chunker.take_line()? {
            let text = trim_line_end(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                self.leading_blank += 1;
                continue;
            }
            let schema = parse_header(text, chunker.line() - 1, columns)?;
            return Ok(Some((schema, text.to_vec())));
        }
        if !eof {
            return Ok(None);
        }
        // The input ended inside its first non-blank line: that line is the header.
        let line_no = chunker.line();
        let rest = chunker.finish().map(|c| c.data).unwrap_or_default();
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Err(DataError::Empty { expected: expected_columns(columns) });
        }
        parse_header(trim_line_end(&rest), line_no, columns)?;
        Err(DataError::HeaderOnly { bytes: rest.len() as u64 })
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn expected_columns(c: &Columns) -> String {
    [&c.date, &c.time, &c.outside, &c.hi, &c.low].map(|s| s.as_str()).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = b"Date,Time,Temp Humidity Index   ,Outside Temperature,WindChill,Hi Temperature,Low Temperature,Outside Humidity,DewPoint,WindSpeed,Hi,Wind Direction,Rain,Barometer,Inside  Temperature,Inside  Humidity,ArchivePeriod";

    #[test]
    fn real_header_with_odd_spacing_and_bom() {
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(REAL);
        let s = parse_header(&with_bom, 1, &Columns::default()).unwrap();
        assert_eq!((s.fields, s.date, s.time, s.outside, s.hi, s.low), (17, 0, 1, 3, 5, 6));
        assert_eq!(s.names[2], "Temp Humidity Index");
        assert_eq!(s.names[14], "Inside Temperature");
    }

    #[test]
    fn missing_column_lists_expected_and_found() {
        let err = parse_header(b"Date,Time,Temp Out,Hi Temperature", 1, &Columns::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks required column(s) `Outside Temperature`, `Low Temperature`"), "{err}");
        assert!(err.contains("found:    Date, Time, Temp Out, Hi Temperature"), "{err}");
    }

    #[test]
    fn sniff_spots_html_and_binary() {
        let html = sniff(b"<!DOCTYPE html><html><body>404</body></html>").unwrap_err().to_string();
        assert!(html.contains("looks like an HTML page"), "{html}");
        let bin = sniff(b"\x89PNG\r\n\x1a\n\0\0").unwrap_err().to_string();
        assert!(bin.contains("binary data") && bin.contains("\\x89PNG"), "{bin}");
        assert!(sniff(REAL).is_ok());
        assert!(sniff("Date,Temp °C\n".as_bytes()).is_ok());
    }
}
