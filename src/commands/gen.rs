//! `wxflow gen`: deterministic synthetic station data in the real export's layout.

use std::io::Write;
use std::path::Path;

use crate::cli::GenArgs;
use crate::config;
use crate::date::Day;
use crate::error::{Error, OutputError};
use crate::gen::{generate, GenLimit, GenOptions};

/// Writes the data to a file or stdout and says what it wrote on stderr.
pub fn gen(args: &GenArgs) -> Result<(), Error> {
    let opts = gen_options(args)?;
    let stats = if args.out == Path::new("-") {
        generate(&opts, std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .map_err(|source| OutputError::Write { path: args.out.clone(), source })?;
        generate(&opts, file)
    }
    .map_err(|source| OutputError::Write { path: args.out.clone(), source })?;
    let _ = writeln!(
        std::io::stderr(),
        "wxflow gen: {} rows, {} blank lines, {} bad rows, {} bytes",
        stats.rows,
        stats.blank,
        stats.bad,
        stats.bytes
    );
    Ok(())
}

fn gen_options(args: &GenArgs) -> Result<GenOptions, Error> {
    let start = parse_iso(&args.start).ok_or_else(|| {
        Error::Usage(format!("--start {}: expected a date as YYYY-MM-DD, e.g. 2006-06-01", args.start))
    })?;
    let limit =
        match (args.days, args.rows, &args.size) {
            (_, _, Some(size)) => GenLimit::Bytes(config::parse_size(size).ok_or_else(|| {
                Error::Usage(format!("--size {size}: expected a size such as 100MiB or 1GiB"))
            })?),
            (_, Some(rows), None) => GenLimit::Rows(rows),
            (days, None, None) => GenLimit::Days(days.unwrap_or(30)),
        };
    Ok(GenOptions {
        start,
        limit,
        seed: args.seed,
        crlf: args.crlf,
        blank_lines: args.blank_lines,
        bad_rows: args.bad_rows,
    })
}

fn parse_iso(text: &str) -> Option<Day> {
    let mut parts = text.trim().splitn(3, '-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Day::from_ymd(y, m, d)
}
