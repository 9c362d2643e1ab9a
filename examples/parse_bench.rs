//! Parser-only benchmark: how fast each parser turns an export into readings, without the
//! pipeline around it, so variants can be compared by wall time or by `callgrind` instruction
//! counts (repeatable while other work runs on the machine).
//!
//! ```sh
//! cargo build --release --example parse_bench
//! target/release/examples/parse_bench fast FILE [ROUNDS]   # or: avx512, avx2, sse2, scalar, reference
//! valgrind --tool=callgrind target/release/examples/parse_bench fast FILE 1
//! ```
//!
//! The file is read into memory once and cut into line-aligned chunks of 1 MiB (the default chunk
//! size); the header is taken from the first line.

use std::time::Instant;

use wxflow::parse::fast::{parse_chunk_into, Kernel};
use wxflow::parse::{parse_chunk_reference, Parsed};
use wxflow::schema::parse_header;
use wxflow::schema::Columns;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: parse_bench fast|avx512|avx2|sse2|scalar|reference FILE [ROUNDS]";
    let (which, path) = (args.get(1).expect(usage), args.get(2).expect(usage));
    let rounds: u32 = args.get(3).map_or(1, |r| r.parse().expect(usage));
    let data = std::fs::read(path).expect("readable file");
    let header_end = memchr::memchr(b'\n', &data).expect("a header line");
    let header = data[..header_end].strip_suffix(b"\r").unwrap_or(&data[..header_end]);
    let schema = parse_header(header, 1, &Columns::default()).expect("a weather export");
    let body = &data[header_end + 1..];
    let chunks = cut(body, 1 << 20);
    let mut best = f64::MAX;
    let mut rows = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        rows = 0;
        let mut line = 2;
        // The fast parsers fill one vector over and over, as the pipeline's workers do, so that
        // page faults on fresh vectors are not what is measured.
        let mut spare = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let at_end = i + 1 == chunks.len();
            let mut into =
                |kernel| parse_chunk_into(kernel, chunk, line, &schema, at_end, std::mem::take(&mut spare));
            let parsed: Parsed = match which.as_str() {
                "fast" => into(Kernel::best()),
                "avx2" => into(Kernel::Avx2),
                "avx512" => into(Kernel::Avx512),
                "sse2" => into(Kernel::Simd),
                "scalar" => into(Kernel::Scalar),
                "reference" => parse_chunk_reference(chunk, line, &schema, at_end),
                _ => panic!("{usage}"),
            };
            line += parsed.lines;
            rows += parsed.readings.len();
            spare = parsed.readings;
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    let mib = body.len() as f64 / f64::from(1 << 20);
    println!(
        "{which}: {rows} readings, {mib:.0} MiB, best of {rounds}: {best:.3} s, {:.0} MiB/s",
        mib / best
    );
}

/// Line-aligned chunks of about `target` bytes.
fn cut(mut body: &[u8], target: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    while !body.is_empty() {
        let end = if body.len() <= target {
            body.len()
        } else {
            memchr::memrchr(b'\n', &body[..target]).map_or(body.len(), |p| p + 1)
        };
        chunks.push(&body[..end]);
        body = &body[end..];
    }
    chunks
}
