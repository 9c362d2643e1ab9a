//! Turning final analysis states into the text reports and `summary.json`.
//!
//! Pure formatting: no I/O, so the exact report text is unit-testable.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use crate::date::Day;
use crate::tasks::hottest::{DayMax, Hottest, MonthMean};

use crate::date::{hhmm, hhmmss};
use crate::tasks::forecast::ForecastLine;
use crate::tasks::hottest::HottestReport;
use crate::tasks::window::Hit;

/// Row accounting: `read == processed + rejected + blank`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Where a resumed run continued from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Resumed {
    /// Byte offset of the checkpoint.
    #[serde(rename = "from_byte")]
    pub byte: u64,
    /// Line number of the first line read.
    #[serde(rename = "from_line")]
    pub line: u64,
    /// Rows already processed before this run.
    #[serde(rename = "rows_done")]
    pub rows: u64,
    /// Runs it took, this one included.
    pub runs: u32,
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
    /// Where this run resumed from, if it did.
    pub resumed: Option<Resumed>,
    /// Checkpoints written by this run.
    pub checkpoints: u64,
    /// Times the source was reopened after a failed read.
    pub retries: u64,
    /// Pipeline restarts per failed actor, zeros included.
    pub restarts: std::collections::BTreeMap<String, u64>,
    /// Each day's maximum and hottest time (for `hottest.svg`): the analysis state itself, 4 bytes
    /// a day, walked in date order by [`Hottest::iter`] rather than copied out.
    pub daily: Hottest,
    /// Every window-day reading's Hi and Low Temperature in time order (for `window.svg`).
    pub window_hi_low: Vec<crate::tasks::window::HiLow>,
    /// The window days' Outside Temperature readings in time order (for `forecast.svg`).
    pub window_outside: Vec<crate::plots::Sample>,
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
///
/// A borrowed, typed view serialized straight to the file: the monthly list can hold thousands of
/// months, and building a JSON tree for it first would be the largest allocation of the job.
#[derive(Serialize)]
pub struct Summary<'a> {
    source: &'a str,
    rows: RowCounts,
    hottest: HottestSummary<'a>,
    window: Count,
    forecast: ForecastSummary,
    pipeline: PipelineStats,
    resumed: Option<Resumed>,
    checkpoints: u64,
    retries: u64,
    restarts: &'a std::collections::BTreeMap<String, u64>,
    elapsed_secs: f64,
}

#[derive(Serialize)]
struct HottestSummary<'a> {
    days: usize,
    #[serde(serialize_with = "monthly")]
    monthly: &'a [MonthMean],
    most_common: MostCommonSummary,
    #[serde(serialize_with = "top")]
    top: &'a [(Day, DayMax)],
}

#[derive(Serialize)]
struct MostCommonSummary {
    times: Vec<String>,
    days: u32,
}

#[derive(Serialize)]
struct Count {
    readings: usize,
}

#[derive(Serialize)]
struct ForecastSummary {
    readings: usize,
    method: &'static str,
}

fn monthly<S: Serializer>(months: &&[MonthMean], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(months.iter().map(|m| {
        serde_json::json!({"month": m.month.to_string(), "mean_time": hhmmss(m.mean_second), "days": m.days})
    }))
}

fn top<S: Serializer>(top: &&[(Day, DayMax)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(top.iter().map(|(day, best)| {
        serde_json::json!({"date": day.iso(), "time": hhmm(best.minute), "value": best.max.as_f64()})
    }))
}

/// The summary of an outcome, ready to serialize.
pub fn summary(o: &Outcome) -> Summary<'_> {
    let h = &o.hottest;
    Summary {
        source: &o.source,
        rows: o.rows,
        hottest: HottestSummary {
            days: h.days,
            monthly: &h.monthly,
            most_common: MostCommonSummary {
                times: h.most_common.minutes.iter().map(|&m| hhmm(m)).collect(),
                days: h.most_common.days,
            },
            top: &h.top,
        },
        window: Count { readings: o.window.len() },
        forecast: ForecastSummary { readings: o.forecast.len(), method: o.method },
        pipeline: o.pipeline,
        resumed: o.resumed,
        checkpoints: o.checkpoints,
        retries: o.retries,
        restarts: &o.restarts,
        elapsed_secs: (o.elapsed_secs * 1000.0).round() / 1000.0,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
