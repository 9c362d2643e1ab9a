//! Differential tests: the fast parser must give exactly what the reference parser gives.
//!
//! [`wxflow::parse::parse_chunk`] (the one-pass block scanner) and
//! [`wxflow::parse::parse_chunk_reference`] (the simple line
//! parser) are fed the same bytes, cut at arbitrary points, and must return identical readings,
//! rejects (line numbers, reasons, raw text), blank and line counts, and never panic. Both block
//! kernels (SSE2 and the portable byte loop) are checked.
//!
//! Inputs come from two sources: arbitrary bytes (proptest, so failures shrink) and a grammar of
//! realistic lines (valid rows, padded and odd spellings, bad numbers and dates, wrong field
//! counts, quotes, CR in odd places, blank lines, a missing final newline) mutated at random. The
//! CI cases are bounded to a few seconds; `just fuzz` runs the same checks for millions of
//! executions (the `#[ignore]`d `fuzz_differential`, configured by `WXFLOW_FUZZ_EXECS` and
//! `WXFLOW_FUZZ_SEED`). Inputs the fuzzing found interesting are kept in `regression_cases`, and
//! the minimized corpus of the cargo-fuzz target (`fuzz/`, `just fuzz-cargo`) in
//! `tests/data/fuzz-regressions/`, replayed by `fuzz_regressions_parse_identically`. The comparison
//! itself ([`check`]) lives in `wxflow::parse::differential`, shared with the fuzz target.

use proptest::prelude::*;

use wxflow::parse::differential::{check, decode_case, schemas};
use wxflow::schema::Columns;
use wxflow::schema::{parse_header, Schema};

// ---------------------------------------------------------------------------------------------
// The realistic-line grammar, driven by a seeded splitmix64 so the long fuzz is cheap per case.

/// splitmix64: tiny, fast, and reproducible from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const DATES: &[&str] = &[
    "01/06/2006",
    "31/05/2006",
    "29/02/2008",
    "29/02/2006",
    "31/06/2006",
    "1/6/2006",
    " 01/06/2006",
    "01/06/06",
    "01-06-2006",
    "",
    "45/13/2006",
    "01/06/20066",
    "0a/06/2006",
    "00/01/2000",
    "31/12/9999",
];
const TIMES: &[&str] =
    &["00:00", "23:59", "13:05", "9:05", "24:00", "12:60", "12:5", "", " 10:10", "1:1", "ab:cd", "10:10 "];
const NUMBERS: &[&str] = &[
    "11.6",
    "-2.5",
    "0.0",
    "-0.0",
    "999.9",
    "-999.9",
    "16",
    "7.",
    ".5",
    "+1.0",
    "1.25",
    "10.10",
    "",
    "---",
    "abc",
    "-",
    ".",
    " 7.0 ",
    "1e5",
    "99999999999",
    "1000.0",
    "-12.3",
    "0.1\t",
    "1..2",
];
const OTHER: &[&str] = &["88", "9.2", "ESE", "---", "0", "990.4", "", "N, gusty", "x"];

/// One line (without line ending) for `schema`: usually a valid row, often with one field odd.
fn line(rng: &mut Rng, schema: &Schema) -> Vec<u8> {
    match rng.below(20) {
        0 => return Vec::new(),
        1 => return rng.pick(&[" ", "\t", "\r", " \r", "\x0c"]).as_bytes().to_vec(),
        _ => {}
    }
    let mut fields: Vec<String> = (0..schema.fields)
        .map(|i| {
            let odd = rng.below(12) == 0;
            let pick = |rng: &mut Rng, list: &[&str], good: usize| {
                if odd {
                    rng.pick(list).to_string()
                } else {
                    list[rng.below(good)].to_string()
                }
            };
            if i == schema.date {
                pick(rng, DATES, 3)
            } else if i == schema.time {
                pick(rng, TIMES, 3)
            } else if [schema.outside, schema.hi, schema.low].contains(&i) {
                pick(rng, NUMBERS, 6)
            } else {
                rng.pick(OTHER).to_string()
            }
        })
        .collect();
    match rng.below(16) {
        0 => drop(fields.pop()),
        1 => fields.push("extra".into()),
        2 => {
            let i = rng.below(fields.len());
            fields[i] = format!("\"{}\"", fields[i]);
        }
        3 => {
            let i = rng.below(fields.len());
            fields[i].push('"');
        }
        4 => {
            let i = rng.below(fields.len());
            fields[i].push('\r');
        }
        _ => {}
    }
    fields.join(",").into_bytes()
}

/// A whole input: lines with LF or CRLF (or stray CRs), maybe no final line ending, then a few
/// random byte edits; plus cut points anywhere.
fn document(rng: &mut Rng, schema: &Schema) -> (Vec<u8>, Vec<usize>) {
    let mut data = Vec::new();
    let crlf = rng.below(2) == 0;
    for _ in 0..rng.below(40) {
        data.extend_from_slice(&line(rng, schema));
        data.extend_from_slice(match rng.below(30) {
            0 => b"\r\r\n",
            1 => b"\n\r",
            _ if crlf => b"\r\n",
            _ => b"\n",
        });
    }
    if rng.below(3) == 0 {
        while data.last().is_some_and(|b| b"\r\n".contains(b)) {
            data.pop();
        }
    }
    for _ in 0..rng.below(4) {
        if data.is_empty() {
            break;
        }
        let i = rng.below(data.len());
        data[i] = *b",\n\r\"0. -/:\x00\xff".get(rng.below(14)).unwrap_or(&(rng.next() as u8));
    }
    let cuts = (0..rng.below(5)).map(|_| rng.below(data.len() + 1)).collect();
    (data, cuts)
}

/// One execution of the grammar fuzzer.
fn run_seed(seed: u64, schemas: &[Schema]) {
    let mut rng = Rng(seed);
    let schema = &schemas[rng.below(schemas.len())];
    let (data, cuts) = document(&mut rng, schema);
    check(schema, &data, &cuts, 2 + rng.below(1000) as u64);
}

// ---------------------------------------------------------------------------------------------
// CI: bounded property tests.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes, biased towards the characters that matter, arbitrary cuts.
    #[test]
    fn arbitrary_bytes_parse_identically(
        data in prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(b",,,,\n\n\r\"0123456789./:- ".to_vec())],
            0..400,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
        which in 0usize..wxflow::parse::differential::HEADERS.len(),
        first_line in 1u64..10_000,
    ) {
        let schemas = schemas();
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        check(&schemas[which], &data, &cuts, first_line);
    }

    /// Realistic documents from the grammar, cut anywhere.
    #[test]
    fn realistic_documents_parse_identically(seed in any::<u64>()) {
        run_seed(seed, &schemas());
    }
}

/// Generated exports (the shape of the benchmark input) cut at every block-boundary offset near
/// a 64-byte edge, so lines straddling blocks in every position are covered.
#[test]
fn generated_exports_parse_identically_at_every_offset() {
    use wxflow::date::Day;
    use wxflow::gen::{generate, GenLimit, GenOptions};
    let schemas = schemas();
    for crlf in [false, true] {
        let opts = GenOptions {
            start: Day::from_ymd(2006, 5, 30).unwrap(),
            limit: GenLimit::Days(2),
            seed: 5,
            crlf,
            blank_lines: 9,
            bad_rows: 9,
        };
        let mut bytes = Vec::new();
        generate(&opts, &mut bytes).unwrap();
        let body = &bytes[bytes.iter().position(|&b| b == b'\n').unwrap() + 1..];
        for skip in 0..130 {
            check(&schemas[0], &body[skip..], &[], 2);
        }
        check(&schemas[0], body, &[1000, 5000, 5001, 9000], 2);
    }
}

/// The real June 2006 export, when the shared data folder has it (as `tests/real_file.rs`), cut
/// at several chunk sizes.
#[test]
fn the_real_file_parses_identically() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cowdenbeath-200606.csv");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = bytes[..header_end].strip_suffix(b"\r").unwrap_or(&bytes[..header_end]);
    let schema = parse_header(header, 1, &Columns::default()).unwrap();
    let body = &bytes[header_end + 1..];
    for step in [63, 64, 1000, 65_536, usize::MAX] {
        let cuts: Vec<usize> =
            (1..).map(|i: usize| i.saturating_mul(step)).take_while(|&c| c < body.len()).collect();
        check(&schema, body, &cuts, 2);
    }
}

/// Inputs that found (or would find) real mistakes while the fast path was written.
#[test]
fn regression_cases() {
    let schemas = schemas();
    let row = "01/06/2006,00:00,11.6,11.6,11.6,11.6,11.6,88,9.2,9,13,ESE,0,990.4,20.2,43,10";
    let cases: Vec<(usize, Vec<u8>)> = vec![
        // A quote after the last analysed field: the fast path must not decode the line.
        (0, format!("{row},\"x\"\n").into_bytes()),
        (0, row.replace(",ESE,", ",\"E,SE\",").into_bytes()),
        // The analysed last column runs to the line end; CR, CRCR, and no ending at all.
        (2, b"N,10:00,1.5,01/06/2006,1.0,0.5\r\n".to_vec()),
        (2, b"N,10:00,1.5,01/06/2006,1.0,0.5\r\r\n".to_vec()),
        (2, b"N,10:00,1.5,01/06/2006,1.0,0.5\r".to_vec()),
        (2, b"N,10:00,1.5,01/06/2006,1.0,".to_vec()),
        // Blank-looking lines, whitespace the reference calls blank (form feed), lone CR.
        (0, b"\r\n\x0c\n \r\n\r".to_vec()),
        // A row of exactly 64 bytes, so the line break is the first bit of the next block.
        (1, format!("{:0>64}\n01/06/2006,00:10,1,1,1,N\n", "").into_bytes()),
        (
            1,
            b"01/06/2006,00:00,9.3,9.7,9.1,".iter().chain([b'x'; 34].iter()).copied().chain(*b"\n").collect(),
        ),
        // Too many and too few commas, both after and before the analysed fields.
        (0, format!("{row},\n{row},,\n").into_bytes()),
        (0, b"01/06/2006,00:00\n,,,,,,,,,,,,,,,,\n".to_vec()),
        // Spellings only the reference decoders accept.
        (1, b" 1/6/2006 , 9:05 ,+1.0, .5 ,7.\n".to_vec()),
        (1, b"01/06/2006,00:00,-0.0,1000.0,9999.9\n".to_vec()),
        // Invalid UTF-8 in a rejected row.
        (1, b"01/06/2006,00:00,\xff,1,1,N\n".to_vec()),
    ];
    for (which, data) in cases {
        for cut in 0..=data.len() {
            check(&schemas[which], &data, &[cut], 2);
        }
    }
}

/// The cargo-fuzz target's minimized corpus (`tests/data/fuzz-regressions/`, see `just
/// fuzz-cargo`): each file replayed exactly as the fuzzer ran it (its schema and chunk lengths, read
/// by `decode_case`), then its document cut every 1, 7, 63, 64 and 65 bytes and not at all.
#[test]
fn fuzz_regressions_parse_identically() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let schemas = schemas();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let case = decode_case(&input);
        let schema = &schemas[case.schema];
        check(schema, case.data, &case.cuts, 2);
        for step in [1, 7, 63, 64, 65, usize::MAX] {
            let cuts: Vec<usize> =
                (1..).map(|i: usize| i.saturating_mul(step)).take_while(|&c| c < case.data.len()).collect();
            check(schema, case.data, &cuts, 2);
        }
        files += 1;
    }
    assert!(files > 0, "no regression inputs in {}", dir.display());
}

/// The long run behind `just fuzz`: `WXFLOW_FUZZ_EXECS` grammar executions from `WXFLOW_FUZZ_SEED`
/// (each also checks a run of arbitrary bytes derived from the same seed).
#[test]
#[ignore = "long: run through `just fuzz`"]
fn fuzz_differential() {
    let execs: u64 =
        std::env::var("WXFLOW_FUZZ_EXECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let seed: u64 = std::env::var("WXFLOW_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let schemas = schemas();
    let started = std::time::Instant::now();
    let mut bytes = 0u64;
    for i in 0..execs {
        let s = seed.wrapping_mul(0x1_0000_0000).wrapping_add(i);
        if i % 4 == 3 {
            let mut rng = Rng(s);
            let data: Vec<u8> = (0..rng.below(300))
                .map(|_| rng.next() as u8 & if rng.below(2) == 0 { 0x7f } else { 0xff })
                .collect();
            let cuts = [rng.below(data.len() + 1)];
            bytes += data.len() as u64;
            check(&schemas[rng.below(schemas.len())], &data, &cuts, 2);
        } else {
            run_seed(s, &schemas);
        }
        if i > 0 && i % 1_000_000 == 0 {
            eprintln!("fuzz: {i} executions, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    eprintln!(
        "fuzz: {execs} executions from seed {seed} in {:.1} s ({bytes} bytes of random input), no difference",
        started.elapsed().as_secs_f64()
    );
}
