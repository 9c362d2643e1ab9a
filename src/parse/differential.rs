//! The differential check of the fast parser against the reference, in one place.
//!
//! Not part of wxflow's API (hidden from the docs). It lives in the library rather than in a test
//! file so that `tests/differential.rs` and the cargo-fuzz target in `fuzz/` (a separate crate)
//! share one comparison (the fuzzer's [`check_shipping`] is [`check`] without the other kernels'
//! full parses), and so that an input the fuzzer saved replays in `cargo test` as the fuzzer read
//! it ([`decode_case`]), there checked with every kernel.

use super::fast::{classify_scalar, parse_chunk_with, Kernel};
use super::{parse_chunk, parse_chunk_reference, Parsed};
use crate::schema::Columns;
use crate::schema::{parse_header, Schema};

/// Headers whose analysed columns sit in different places, so the fast path's field slots, its
/// early stop after the last analysed field and its "last field runs to the line end" case are
/// all exercised: the real export (17 columns), a short one, one whose last column is analysed,
/// and one with only the five analysed columns in reverse order.
pub const HEADERS: [&str; 4] = [
    crate::gen::HEADER,
    "Date,Time,Outside Temperature,Hi Temperature,Low Temperature,Wind Direction",
    "Wind,Time,Hi Temperature,Date,Outside Temperature,Low Temperature",
    "Low Temperature,Hi Temperature,Outside Temperature,Time,Date",
];

/// The schemas of [`HEADERS`], in that order; the checks pick one by index.
pub fn schemas() -> Vec<Schema> {
    let cols = Columns::default();
    HEADERS.iter().map(|h| parse_header(h.as_bytes(), 1, &cols).expect("a valid test header")).collect()
}

/// Cuts `data` at `cuts` (any order, clamped to the data, duplicates ignored) and parses every
/// piece with the reference, with [`parse_chunk`] (the kernel this CPU ships, [`Kernel::best`])
/// and with every other kernel the CPU runs; panics with both results unless all agree exactly on
/// readings, rejects (line numbers, reasons, raw text), blank and line counts. Line numbers
/// continue across pieces, as the pipeline numbers its chunks. Also checks every kernel's block
/// masks against the byte loop's for every whole 64-byte block of `data`, and
/// `lines == readings + rejects + blank`.
pub fn check(schema: &Schema, data: &[u8], cuts: &[usize], first_line: u64) {
    check_kernels(schema, data, cuts, first_line, true);
}

/// [`check`] with the full parse by [`parse_chunk`] only (the other kernels' block masks are still
/// all compared): what the cargo-fuzz target runs, so that its executions go to the parser as it
/// ships. The kernels share the line loop and differ only in how blocks are classified, which
/// the mask comparison covers; `tests/differential.rs` still parses with every kernel.
pub fn check_shipping(schema: &Schema, data: &[u8], cuts: &[usize], first_line: u64) {
    check_kernels(schema, data, cuts, first_line, false);
}

fn check_kernels(schema: &Schema, data: &[u8], cuts: &[usize], first_line: u64, every_kernel: bool) {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    let (mut from, mut line) = (0usize, first_line);
    for (i, &to) in points.iter().enumerate() {
        let piece = &data[from..to];
        let at_end = i + 1 == points.len();
        let want = parse_chunk_reference(piece, line, schema, at_end);
        let counted = want.readings.len() as u64 + want.rejects.len() as u64 + want.blank;
        assert_eq!(want.lines, counted, "reference: lines != readings + rejects + blank on {piece:?}");
        assert_same("parse_chunk", &want, &parse_chunk(piece, line, schema, at_end), piece);
        for kernel in Kernel::all_available().into_iter().filter(|&k| every_kernel && k != Kernel::best()) {
            let got = parse_chunk_with(kernel, piece, line, schema, at_end);
            assert_same(&format!("the {kernel:?} kernel"), &want, &got, piece);
        }
        line += want.lines;
        from = to;
    }
    let kernels = Kernel::all_available();
    for block in data.chunks_exact(64) {
        let block: &[u8; 64] = block.try_into().expect("a 64-byte block");
        for &kernel in &kernels {
            let masks = kernel.classify(block);
            assert_eq!(masks, Some(classify_scalar(block)), "{kernel:?} block masks differ on {block:?}");
        }
    }
}

fn assert_same(name: &str, want: &Parsed, got: &Parsed, piece: &[u8]) {
    if want != got {
        panic!(
            "{name} differs from the reference on {:?}\nreference: {want:#?}\n{name}: {got:#?}",
            String::from_utf8_lossy(piece)
        );
    }
}

/// The most chunk lengths one fuzz input can choose.
pub const MAX_CUTS: usize = 7;

/// One fuzz input, decoded: which schema, where to cut, and the bytes to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case<'a> {
    /// Index into [`schemas`].
    pub schema: usize,
    /// Cut points (running sums of the chosen chunk lengths), for [`check`].
    pub cuts: Vec<usize>,
    /// The document.
    pub data: &'a [u8],
}

/// Reads a fuzz input so that the fuzzer controls the chunking as well as the bytes.
///
/// Byte 0 picks the schema (`b % 4`) and the number of chunk lengths `n` (`b / 4 % 8`); the next
/// `2n` bytes are `n` little-endian `u16` chunk lengths; the rest is the document. An input too
/// short for its lengths has an empty document. Every byte string is a valid input.
pub fn decode_case(input: &[u8]) -> Case<'_> {
    let Some((&first, rest)) = input.split_first() else {
        return Case { schema: 0, cuts: Vec::new(), data: &[] };
    };
    let schema = usize::from(first) % HEADERS.len();
    let n = usize::from(first) / HEADERS.len() % (MAX_CUTS + 1);
    let (lengths, data) = rest.split_at(rest.len().min(2 * n));
    let mut at = 0usize;
    let cuts = lengths
        .chunks_exact(2)
        .map(|l| {
            at += usize::from(u16::from_le_bytes([l[0], l[1]]));
            at
        })
        .collect();
    Case { schema, cuts, data }
}

/// The inverse of [`decode_case`], to write seed inputs: `lengths` beyond [`MAX_CUTS`] are
/// dropped, `schema` is taken modulo the number of schemas.
pub fn encode_case(schema: usize, lengths: &[u16], data: &[u8]) -> Vec<u8> {
    let lengths = &lengths[..lengths.len().min(MAX_CUTS)];
    let mut out = vec![(schema % HEADERS.len() + HEADERS.len() * lengths.len()) as u8];
    for l in lengths {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// One fuzz execution: decodes `input` ([`decode_case`]) and checks it with [`check_shipping`],
/// first line number 2 (the line after the header). `schemas` must be [`schemas()`]; it is
/// passed in so that a fuzz loop builds it once.
pub fn check_input(schemas: &[Schema], input: &[u8]) {
    let case = decode_case(input);
    check_shipping(&schemas[case.schema], case.data, &case.cuts, 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_gives_the_case_back() {
        let input = encode_case(2, &[3, 0, 700], b"a,b\n");
        assert_eq!(decode_case(&input), Case { schema: 2, cuts: vec![3, 3, 703], data: b"a,b\n" });
        assert_eq!(decode_case(&encode_case(1, &[], b"x")), Case { schema: 1, cuts: vec![], data: b"x" });
    }

    #[test]
    fn any_bytes_decode() {
        assert_eq!(decode_case(b""), Case { schema: 0, cuts: vec![], data: b"" });
        // Byte 0 asks for 7 lengths (14 bytes) but only 3 follow: no document.
        assert_eq!(decode_case(&[31, 1, 0, 5]).data, b"");
        assert_eq!(schemas().len(), HEADERS.len());
    }
}
