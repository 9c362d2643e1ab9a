//! Turning final analysis states into the text reports and `summary.json`.
//!
//! Pure formatting: no I/O, so the exact report text is unit-testable.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::date::{hhmm, hhmmss};
use crate::tasks::forecast::ForecastLine;
use crate::tasks::hottest::HottestReport;
use crate::tasks::window::Hit;

/// Row accounting: `read == processed + rejected + blank`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    /// Lines after the header.
    pub read: u64,
    /// Rows parsed and analysed.
    pub processed: u64,
    /// Rows rejected (see rejects.csv).
    pub rejected: u64,
    /// Empty lines skipped.
    pub blank: u64,
}

/// How the pipeline behaved: the evidence that back-pressure held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PipelineStats {
    /// Bytes read from the source.
    pub bytes: u64,
    /// Chunks cut.
    pub chunks: u64,
    /// Configured target chunk size.
    pub chunk_size: usize,
    /// Parse threads.
    pub parse_workers: usize,
    /// Configured in-flight bound.
    pub in_flight_bound: usize,
    /// Most chunks in flight at once, as observed.
    pub max_in_flight: usize,
    /// Times the fetcher had to wait for a chunk to finish before cutting the next one.
    pub fetcher_stalls: u64,
}

/// Everything a finished job produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where the input came from.
    pub source: String,
    /// Row accounting.
    pub rows: RowCounts,
    /// Analysis 1.
    pub hottest: HottestReport,
    /// Analysis 2.
    pub window: Vec<Hit>,
    /// Analysis 3.
    pub forecast: Vec<ForecastLine>,
    /// Forecast method name.
    pub method: &'static str,
    /// Pipeline behaviour.
    pub pipeline: PipelineStats,
    /// Wall-clock seconds.
    pub elapsed_secs: f64,
}

/// `task1.txt`: the hottest-time report.
pub fn task1(h: &HottestReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Hottest time of day (Outside Temperature): per day, the maximum and the earliest time it occurs."
    );
    let _ = writeln!(s, "Days in input: {}\n", h.days);
    let _ = writeln!(s, "Mean hottest time per calendar month:");
    for m in &h.monthly {
        let _ = writeln!(
            s,
            "  {}  {}  ({} day{})",
            m.month,
            hhmmss(m.mean_second),
            m.days,
            plural(m.days as usize)
        );
    }
    let times: Vec<String> = h.most_common.minutes.iter().map(|&m| hhmm(m)).collect();
    let each = if times.len() > 1 { " each" } else { "" };
    let _ = writeln!(
        s,
        "\nMost common hottest time: {}  ({} day{}{each})",
        times.join(", "),
        h.most_common.days,
        plural(h.most_common.days as usize)
    );
    let _ = writeln!(s, "\nTop {} days by maximum (ties: earlier date), in date order:", h.top.len());
    for (day, best) in &h.top {
        let _ = writeln!(s, "  {} {} {}", day.dmy(), hhmm(best.minute), best.max);
    }
    s
}

/// `task2.txt`: one line per matching reading, beginning `dd/mm/yyyy HH:MM`.
pub fn task2(hits: &[Hit]) -> String {
    let mut s = String::with_capacity(hits.len() * 48);
    for h in hits {
        let r = &h.reading;
        let by = match (h.by_hi, h.by_low) {
            (true, true) => "hi+low",
            (true, false) => "hi",
            _ => "low",
        };
        let _ = writeln!(s, "{} {} hi={} low={} match={by}", r.day.dmy(), hhmm(r.minute), r.hi, r.low);
    }
    s
}

/// `task3.txt`: one line per forecast reading, `dd/mm/yyyy HH:MM value`.
pub fn task3(lines: &[ForecastLine]) -> String {
    let mut s = String::with_capacity(lines.len() * 24);
    for l in lines {
        let _ = writeln!(s, "{} {} {}", l.day.dmy(), hhmm(l.minute), l.value);
    }
    s
}

/// `summary.json`: counts, the hottest report and pipeline figures for machines to read.
pub fn summary(o: &Outcome) -> Value {
    let h = &o.hottest;
    json!({
        "source": o.source,
        "rows": o.rows,
        "hottest": {
            "days": h.days,
            "monthly": h.monthly.iter().map(|m| json!({
                "month": m.month.to_string(), "mean_time": hhmmss(m.mean_second), "days": m.days,
            })).collect::<Vec<_>>(),
            "most_common": {
                "times": h.most_common.minutes.iter().map(|&m| hhmm(m)).collect::<Vec<_>>(),
                "days": h.most_common.days,
            },
            "top": h.top.iter().map(|(day, best)| json!({
                "date": day.iso(), "time": hhmm(best.minute), "value": best.max.as_f64(),
            })).collect::<Vec<_>>(),
        },
        "window": { "readings": o.window.len() },
        "forecast": { "readings": o.forecast.len(), "method": o.method },
        "pipeline": o.pipeline,
        "elapsed_secs": (o.elapsed_secs * 1000.0).round() / 1000.0,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
