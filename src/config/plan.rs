//! The validated, typed plan a job runs with, per concern: job, pipeline, analyses, checkpoints,
//! supervision and faults.

use super::*;

/// The resolved configuration: raw settings for display, their origins, and the validated plan.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Settings after all layers.
    pub settings: Settings,
    /// Layer of each dotted key.
    pub origins: BTreeMap<String, Origin>,
    /// Typed, validated values.
    pub plan: Plan,
}

/// Validated, typed settings: what the job actually runs with.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The input.
    pub source: SourceSpec,
    /// Output directory.
    pub out: PathBuf,
    /// Reference month M.
    pub month: Month,
    /// Allowed rejected fraction.
    pub max_reject_ratio: f64,
    /// Draw hottest.svg, window.svg and forecast.svg beside the reports.
    pub plots: bool,
    /// Pipeline knobs.
    pub pipeline: PipelinePlan,
    /// Column names.
    pub columns: Columns,
    /// Hottest parameters.
    pub hottest: HottestParams,
    /// Window parameters.
    pub window: WindowParams,
    /// Forecast parameters.
    pub forecast: ForecastParams,
    /// Logging.
    pub log: LogSettings,
    /// Checkpoints.
    pub checkpoint: CheckpointPlan,
    /// Restart policy.
    pub supervision: SupervisionPlan,
    /// Fault injection.
    pub faults: FaultPlan,
    /// The daemon's settings (used by `wxflow daemon` and the client commands).
    pub daemon: DaemonPlan,
    /// Cluster mode, when `cluster.nats_url` is set.
    pub cluster: Option<ClusterPlan>,
}

/// Validated restart policy.
#[derive(Debug, Clone)]
pub struct SupervisionPlan {
    /// Restarts allowed within `within`.
    pub max_restarts: u32,
    /// The intensity window.
    pub within: Duration,
    /// First restart delay.
    pub backoff_initial: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
    /// Growth per restart (≥ 1).
    pub multiplier: f64,
    /// Random spread (0 to 1).
    pub jitter: f64,
}

/// Validated checkpoint settings.
#[derive(Debug, Clone)]
pub struct CheckpointPlan {
    /// Write checkpoints (and resume from them).
    pub enabled: bool,
    /// Chunks per checkpoint interval (≥ 1).
    pub every_chunks: u64,
    /// Longest time between checkpoints while chunks arrive.
    pub every_secs: Duration,
    /// Resolved folder.
    pub dir: PathBuf,
}

impl Plan {
    /// Every setting that changes results, as canonical text, so that a checkpoint made under
    /// other settings is refused with the keys that differ (chunking and parallelism never change
    /// a result, so they are not here).
    pub fn result_settings(&self) -> BTreeMap<String, String> {
        let w = &self.window;
        let f = &self.forecast;
        let c = &self.columns;
        let pairs = [
            ("job.reference_month", self.month.to_string()),
            ("columns.date", c.date.clone()),
            ("columns.time", c.time.clone()),
            ("columns.outside", c.outside.clone()),
            ("columns.hi", c.hi.clone()),
            ("columns.low", c.low.clone()),
            ("hottest.top_days", self.hottest.top_days.to_string()),
            ("window.first_day", w.first.dmy().to_string()),
            ("window.last_day", w.last.dmy().to_string()),
            ("window.hi_band", format!("{:?}", w.hi_band())),
            ("window.low_band", format!("{:?}", w.low_band())),
            ("forecast.method", f.method.name().to_string()),
            ("forecast.base", format!("{:?}", f.base)),
            ("forecast.decimals", f.decimals.to_string()),
            ("pipeline.max_line", self.pipeline.max_line.to_string()),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Validated pipeline knobs in the units the code uses.
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// Target chunk size in bytes (≥ 1).
    pub chunk_size: usize,
    /// Parse threads (≥ 1).
    pub parse_workers: usize,
    /// Chunks in flight (≥ 1).
    pub in_flight: usize,
    /// Longest line in bytes.
    pub max_line: usize,
    /// HTTP connect timeout.
    pub connect_timeout: Duration,
    /// HTTP read timeout.
    pub read_timeout: Duration,
    /// Retries of a failed read.
    pub fetch_retries: u32,
    /// Parallel ranged HTTP connections (1 = one download).
    pub connections: usize,
    /// Read local files by mapping them (no copy) rather than with `read`.
    pub map_files: bool,
    /// First delay before a retry.
    pub retry_backoff: Duration,
}

/// Validated fault injection.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Armed faults.
    pub armed: crate::faults::Faults,
}
