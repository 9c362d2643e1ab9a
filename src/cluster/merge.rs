//! The merge of a job's range partials into the result of one pass: the functional core of
//! cluster mode, with no I/O but the writer it is given.
//!
//! Ranges are merged in order. Row counts add up; the analysis states merge (each is a mergeable
//! state, so any cut gives the one-pass result); line numbers become absolute: range 0 counted
//! from the line after the header, and each later range from a placeholder base, so the merge
//! shifts each range's numbers by the lines of the ranges before it.

use std::collections::BTreeMap;

use crate::actors::checkpoint::States;
use crate::durable::partial::RangePartial;
use crate::parse::Reject;
use crate::report::{PipelineStats, RowCounts};
use crate::tasks::Analysis;

use super::layout::Layout;

/// Reject examples kept for messages, as many as `wxflow run` keeps.
const EXAMPLES: usize = 5;

/// Why partials cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// A range is missing or present twice.
    #[error("range {index} of {count} is {problem}")]
    Ranges {
        /// Range number.
        index: u32,
        /// Ranges in the job.
        count: u32,
        /// "missing" or "present twice".
        problem: &'static str,
    },
    /// Two neighbouring ranges do not meet: the source changed between their reads.
    #[error("range {index} ends at byte {end} but range {next} begins at byte {start}: the source changed while the job ran; submit it again")]
    Gap {
        /// Earlier range.
        index: u32,
        /// Its end.
        end: u64,
        /// Later range.
        next: u32,
        /// Its start.
        start: u64,
    },
    /// A node read another source or used other settings.
    #[error("range {index} (node {node}) was processed with {what}; give every node the same configuration and submit the job again")]
    Mismatch {
        /// Range number.
        index: u32,
        /// Node.
        node: String,
        /// What differs.
        what: String,
    },
    /// A range's rejects could not be read back.
    #[error("range {index}'s rejects are damaged: {detail}")]
    Rejects {
        /// Range number.
        index: u32,
        /// The CSV error.
        detail: String,
    },
}

/// A job's merged result, before reports are written.
#[derive(Debug)]
pub struct Merged {
    /// The merged analysis states.
    pub states: States,
    /// Row counts of the whole source, leading blank lines included.
    pub rows: RowCounts,
    /// Pipeline figures summed over ranges (the largest in-flight count of any range).
    pub stats: PipelineStats,
    /// Fetch retries over all ranges.
    pub retries: u64,
    /// Actor restarts over all ranges.
    pub restarts: BTreeMap<String, u64>,
    /// The first rejects, with absolute line numbers.
    pub examples: Vec<Reject>,
    /// Per range, what to add to its line numbers to make them absolute.
    pub shifts: Vec<i128>,
}

/// Merges the partials of every range of `layout` (in any order), checking that they tile the
/// source and were made from the same source and `settings`; `empty` are fresh states.
pub fn merge(
    layout: &Layout,
    settings: &BTreeMap<String, String>,
    empty: States,
    parts: &[RangePartial],
) -> Result<Merged, MergeError> {
    let mut parts: Vec<&RangePartial> = parts.iter().collect();
    parts.sort_by_key(|p| p.index);
    check_ranges(layout, settings, &parts)?;
    let mut m = Merged {
        states: empty,
        rows: RowCounts { read: layout.leading_blank, blank: layout.leading_blank, ..RowCounts::default() },
        stats: PipelineStats::default(),
        retries: 0,
        restarts: BTreeMap::new(),
        examples: Vec::new(),
        shifts: Vec::with_capacity(parts.len()),
    };
    m.stats.bytes = layout.body_start.unwrap_or(0); // the header and blank lines before it
    let mut next_line = parts.first().map_or(1, |p| p.line_base);
    for p in parts {
        let shift = i128::from(next_line) - i128::from(p.line_base);
        next_line += p.lines;
        m.shifts.push(shift);
        add_rows(&mut m.rows, &p.snapshot.rows);
        add_stats(&mut m.stats, &p.stats);
        m.retries += p.snapshot.retries;
        for (actor, n) in &p.restarts {
            *m.restarts.entry(actor.clone()).or_default() += n;
        }
        if m.examples.len() < EXAMPLES {
            let more = rejects(p).map_err(|detail| MergeError::Rejects { index: p.index, detail })?;
            m.examples.extend(more.into_iter().take(EXAMPLES - m.examples.len()).map(|mut r| {
                r.line = (i128::from(r.line) + shift) as u64;
                r
            }));
        }
        let s = &p.snapshot;
        m.states.hottest.merge(s.hottest.clone());
        m.states.window.merge(s.window.clone());
        m.states.forecast.merge(s.forecast.clone());
    }
    Ok(m)
}

/// Writes every range's rejects, in range order and with absolute line numbers, after the
/// `line,reason,raw` header: the `rejects.csv` one pass writes.
pub fn write_rejects(
    out: &mut dyn std::io::Write,
    parts: &[RangePartial],
    shifts: &[i128],
) -> Result<(), MergeError> {
    let mut csv = csv::Writer::from_writer(out);
    let fail = |index: u32| move |e: csv::Error| MergeError::Rejects { index, detail: e.to_string() };
    csv.write_record(["line", "reason", "raw"]).map_err(fail(0))?;
    let mut parts: Vec<&RangePartial> = parts.iter().collect();
    parts.sort_by_key(|p| p.index);
    for (p, shift) in parts.into_iter().zip(shifts) {
        for r in rejects(p).map_err(|detail| MergeError::Rejects { index: p.index, detail })? {
            let line = ((i128::from(r.line)) + shift).to_string();
            csv.write_record([line.as_str(), &r.reason, &r.raw]).map_err(fail(p.index))?;
        }
    }
    csv.flush().map_err(|e| MergeError::Rejects { index: 0, detail: e.to_string() })
}

/// A range's rejects as stored (numbered from its base).
fn rejects(p: &RangePartial) -> Result<Vec<Reject>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(p.rejects.as_slice());
    reader
        .records()
        .map(|r| {
            let r = r.map_err(|e| e.to_string())?;
            let line = r.get(0).and_then(|l| l.parse().ok()).ok_or("a record without a line number")?;
            Ok(Reject { line, reason: r.get(1).unwrap_or("").into(), raw: r.get(2).unwrap_or("").into() })
        })
        .collect()
}

fn check_ranges(
    layout: &Layout,
    settings: &BTreeMap<String, String>,
    parts: &[&RangePartial],
) -> Result<(), MergeError> {
    for k in 0..layout.count {
        let found = parts.iter().filter(|p| p.index == k).count();
        if found != 1 {
            let problem = if found == 0 { "missing" } else { "present twice" };
            return Err(MergeError::Ranges { index: k, count: layout.count, problem });
        }
    }
    if let Some(extra) = parts.iter().find(|p| p.index >= layout.count) {
        return Err(MergeError::Ranges {
            index: extra.index,
            count: layout.count,
            problem: "beyond the job",
        });
    }
    for p in parts {
        let mismatch = |what: String| MergeError::Mismatch { index: p.index, node: p.node.clone(), what };
        let changes = layout.identity.changes(&p.snapshot.source);
        if !changes.is_empty() {
            return Err(mismatch(format!("another source ({})", changes.join(", "))));
        }
        let changes = crate::durable::settings_changes(settings, &p.snapshot.settings);
        if !changes.is_empty() {
            return Err(mismatch(format!("other settings ({})", changes.join("; "))));
        }
    }
    for w in parts.windows(2) {
        if w[0].end != w[1].start {
            return Err(MergeError::Gap {
                index: w[0].index,
                end: w[0].end,
                next: w[1].index,
                start: w[1].start,
            });
        }
    }
    Ok(())
}

fn add_rows(total: &mut RowCounts, r: &RowCounts) {
    total.read += r.read;
    total.processed += r.processed;
    total.rejected += r.rejected;
    total.blank += r.blank;
}

fn add_stats(total: &mut PipelineStats, s: &PipelineStats) {
    total.bytes += s.bytes;
    total.chunks += s.chunks;
    total.chunk_size = s.chunk_size;
    total.parse_workers = s.parse_workers;
    total.in_flight_bound = s.in_flight_bound;
    total.max_in_flight = total.max_in_flight.max(s.max_in_flight);
    total.fetcher_stalls += s.fetcher_stalls;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::Month;
    use crate::durable::{Position, Snapshot, SourceIdentity, FORMAT_VERSION};
    use crate::tasks::forecast::{Forecast, ForecastMethod, ForecastParams};
    use crate::tasks::hottest::Hottest;
    use crate::tasks::window::{Window, WindowParams};
    use crate::tenths::Tenths;

    fn empty() -> States {
        let month = Month { year: 2006, month: 6 };
        States {
            hottest: Hottest::default(),
            window: Window::new(WindowParams::new(month, 9, Tenths(223), Tenths(10), Tenths(103), Tenths(2))),
            forecast: Forecast::new(ForecastParams::new(month, 9, Tenths(250), ForecastMethod::Offset, 2)),
        }
    }

    fn identity() -> SourceIdentity {
        SourceIdentity {
            location: "/x.csv".into(),
            size: Some(100),
            etag: None,
            last_modified: None,
            mtime_ns: Some(1),
        }
    }

    fn layout(count: u32) -> Layout {
        Layout {
            identity: identity(),
            header: b"Date,Time".to_vec(),
            leading_blank: 2,
            body_start: Some(10),
            range_bytes: 30,
            count,
        }
    }

    /// A partial of `lines` lines (one of them rejected at relative line `bad`).
    fn part(index: u32, start: u64, end: u64, base: u64, lines: u64, bad: u64) -> RangePartial {
        let e = empty();
        let rows = RowCounts { read: lines, processed: lines - 1, rejected: 1, blank: 0 };
        RangePartial {
            index,
            start,
            end,
            line_base: base,
            lines,
            node: format!("n{index}"),
            snapshot: Snapshot {
                version: FORMAT_VERSION,
                source: identity(),
                settings: [("k".to_string(), "v".to_string())].into(),
                position: Position { byte: end, chunk: 1, line: base + lines },
                rows,
                rejects_len: 0,
                header: b"Date,Time".to_vec(),
                leading_blank: 0,
                runs: 0,
                checkpoints: 0,
                restarts: BTreeMap::new(),
                retries: index as u64,
                hottest: e.hottest,
                window: e.window,
                forecast: e.forecast,
            },
            rejects: format!("{},bad value,\"x,y\"\n", base + bad).into_bytes(),
            stats: PipelineStats { bytes: end - start, chunks: 1, ..PipelineStats::default() },
            restarts: [("window".to_string(), 1)].into(),
            elapsed_secs: 0.1,
        }
    }

    fn settings() -> BTreeMap<String, String> {
        [("k".to_string(), "v".to_string())].into()
    }

    #[test]
    fn line_numbers_become_absolute_and_counts_add_up() {
        // Two blank lines and the header are lines 1-3; range 0 counts from line 4.
        let parts =
            vec![part(2, 70, 100, 2 << 40, 4, 0), part(0, 10, 40, 4, 5, 2), part(1, 40, 70, 1 << 40, 3, 1)];
        let m = merge(&layout(3), &settings(), empty(), &parts).unwrap();
        assert_eq!(m.shifts, vec![0, 9 - (1i128 << 40), 12 - (2i128 << 40)]);
        assert_eq!(m.rows, RowCounts { read: 14, processed: 9, rejected: 3, blank: 2 });
        assert_eq!((m.stats.bytes, m.stats.chunks, m.retries), (100, 3, 3));
        assert_eq!(m.restarts["window"], 3);
        assert_eq!(m.examples.iter().map(|r| r.line).collect::<Vec<_>>(), vec![6, 10, 12]);
        let mut out = Vec::new();
        write_rejects(&mut out, &parts, &m.shifts).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "line,reason,raw\n6,bad value,\"x,y\"\n10,bad value,\"x,y\"\n12,bad value,\"x,y\"\n"
        );
    }

    #[test]
    fn missing_doubled_gapped_or_foreign_ranges_are_refused() {
        let ok = [part(0, 10, 40, 4, 5, 2), part(1, 40, 100, 1 << 40, 3, 1)];
        assert!(merge(&layout(2), &settings(), empty(), &ok).is_ok());
        let e = merge(&layout(2), &settings(), empty(), &ok[..1]).unwrap_err();
        assert_eq!(e, MergeError::Ranges { index: 1, count: 2, problem: "missing" });
        let twice = [ok[0].clone(), ok[0].clone(), ok[1].clone()];
        assert!(merge(&layout(2), &settings(), empty(), &twice)
            .unwrap_err()
            .to_string()
            .contains("present twice"));
        let gap = [ok[0].clone(), part(1, 41, 100, 1 << 40, 3, 1)];
        assert!(merge(&layout(2), &settings(), empty(), &gap)
            .unwrap_err()
            .to_string()
            .contains("source changed"));
        let mut other = ok.clone();
        other[1].snapshot.settings.insert("k".into(), "w".into());
        let text = merge(&layout(2), &settings(), empty(), &other).unwrap_err().to_string();
        assert!(text.contains("node n1") && text.contains("k: v -> w"), "{text}");
        other[1].snapshot.settings = settings();
        other[1].snapshot.source.mtime_ns = Some(2);
        assert!(merge(&layout(2), &settings(), empty(), &other)
            .unwrap_err()
            .to_string()
            .contains("another source"));
    }
}
