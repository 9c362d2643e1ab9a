//! `/metrics`: Prometheus counters fed from each finished job's summary (so they match the
//! summaries), and gauges read from the scheduler at scrape time.

use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::faults::ACTORS;
use crate::report::Outcome;

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    rows: IntCounter,
    bytes: IntCounter,
    rejected: IntCounter,
    restarts: IntCounterVec,
    jobs: IntGaugeVec,
    in_flight: IntGauge,
    checkpoint_age: GaugeVec,
}

/// What the scheduler knows at scrape time.
pub struct Gauges {
    /// Jobs per state name.
    pub jobs: Vec<(&'static str, i64)>,
    /// Chunks in flight across all jobs.
    pub in_flight: i64,
    /// Seconds since each running job's last checkpoint, by job id.
    pub checkpoint_ages: Vec<(String, f64)>,
    /// The cluster's per-node counters (ranges, redeliveries, takeovers, merge time), if any.
    pub cluster: Vec<prometheus::proto::MetricFamily>,
}

impl Metrics {
    /// Registers every metric (restart counters start at 0 for every actor).
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let m = Metrics {
            rows: counter(
                "wxflow_rows_processed_total",
                "Rows processed by succeeded jobs (summary.json rows.processed)",
            ),
            bytes: counter(
                "wxflow_bytes_read_total",
                "Bytes read by succeeded jobs (summary.json pipeline.bytes)",
            ),
            rejected: counter(
                "wxflow_rows_rejected_total",
                "Rows rejected by succeeded jobs (summary.json rows.rejected)",
            ),
            restarts: IntCounterVec::new(
                Opts::new("wxflow_actor_restarts_total", "Pipeline restarts after an actor failed, by actor"),
                &["actor"],
            )
            .expect("valid metric"),
            jobs: IntGaugeVec::new(
                Opts::new("wxflow_jobs", "Jobs known to the daemon, by state"),
                &["state"],
            )
            .expect("valid metric"),
            in_flight: IntGauge::new("wxflow_chunks_in_flight", "Chunks in flight across all running jobs")
                .expect("valid metric"),
            checkpoint_age: GaugeVec::new(
                Opts::new("wxflow_checkpoint_age_seconds", "Seconds since a running job's last checkpoint"),
                &["job"],
            )
            .expect("valid metric"),
            registry,
        };
        let r = &m.registry;
        for c in [&m.rows, &m.bytes, &m.rejected] {
            r.register(Box::new(c.clone())).expect("registered once");
        }
        r.register(Box::new(m.restarts.clone())).expect("registered once");
        r.register(Box::new(m.jobs.clone())).expect("registered once");
        r.register(Box::new(m.in_flight.clone())).expect("registered once");
        r.register(Box::new(m.checkpoint_age.clone())).expect("registered once");
        for actor in ACTORS {
            m.restarts.with_label_values(&[actor]).inc_by(0);
        }
        m
    }

    /// Adds a succeeded job's summary.
    pub fn job_succeeded(&self, o: &Outcome) {
        self.rows.inc_by(o.rows.processed);
        self.bytes.inc_by(o.pipeline.bytes);
        self.rejected.inc_by(o.rows.rejected);
    }

    /// Adds the restarts one execution of a job made in this daemon, however it ended.
    pub fn actor_restarts(&self, restarts: &std::collections::BTreeMap<String, u64>) {
        for (actor, n) in restarts {
            self.restarts.with_label_values(&[actor.as_str()]).inc_by(*n);
        }
    }

    /// The text exposition format, gauges set from `g`.
    pub fn render(&self, g: Gauges) -> String {
        for (state, n) in g.jobs {
            self.jobs.with_label_values(&[state]).set(n);
        }
        self.in_flight.set(g.in_flight);
        self.checkpoint_age.reset();
        for (job, age) in g.checkpoint_ages {
            self.checkpoint_age.with_label_values(&[job.as_str()]).set(age);
        }
        let mut out = Vec::new();
        let mut families = self.registry.gather();
        families.extend(g.cluster);
        TextEncoder::new().encode(&families, &mut out).expect("text encoding does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
