//! The raw settings, one struct per section of the `config/*.toml` defaults, as the `config` crate
//! deserializes them; [`super::validate`] turns them into a typed [`super::Plan`].

use super::*;

/// Raw settings as written in `config/*.toml`; see those files for each key's meaning.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    /// What to read and where to write.
    pub job: JobSettings,
    /// Chunking, parallelism and back-pressure.
    pub pipeline: PipelineSettings,
    /// Header names of the analysed columns.
    pub columns: Columns,
    /// Hottest-time report.
    pub hottest: HottestSettings,
    /// Temperature-band window report.
    pub window: WindowSettings,
    /// Next-month forecast report.
    pub forecast: ForecastSettings,
    /// Logging and progress.
    pub log: LogSettings,
    /// Durable checkpoints.
    pub checkpoint: CheckpointSettings,
    /// Restart policy.
    pub supervision: SupervisionSettings,
    /// Deliberate faults for drills.
    pub faults: FaultSettings,
    /// The local daemon (`wxflow daemon`) and its clients.
    pub daemon: DaemonSettings,
    /// Cluster mode: daemons sharing work through NATS JetStream.
    pub cluster: ClusterSettings,
}

impl Settings {
    /// The built-in defaults of `config/*.toml`, without any other layer.
    pub fn defaults() -> Settings {
        let text: String = DEFAULT_FILES.iter().map(|f| f.text).collect::<Vec<_>>().join("\n");
        toml::from_str(&text).expect("config/*.toml together match Settings (tested)")
    }
}

/// `[job]`: the input, the output and the tolerance for bad rows.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JobSettings {
    /// URL, path or `-`.
    pub source: String,
    /// Output directory.
    pub out: String,
    /// `YYYY-MM`.
    pub reference_month: String,
    /// Fraction of rows that may be rejected.
    pub max_reject_ratio: f64,
    /// Whether to write the SVG plots.
    pub plots: bool,
}

/// `[pipeline]`: the knobs that trade memory for speed.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PipelineSettings {
    /// Target chunk size.
    pub chunk_size: ByteSize,
    /// Parse threads.
    pub parse_workers: u64,
    /// Chunks in flight.
    pub in_flight: u64,
    /// Longest accepted line.
    pub max_line: ByteSize,
    /// HTTP connect timeout.
    pub connect_timeout_secs: u64,
    /// HTTP read timeout.
    pub read_timeout_secs: u64,
    /// Retries of a failed read.
    pub fetch_retries: u64,
    /// First delay before a retry.
    pub retry_backoff_ms: u64,
    /// Parallel ranged HTTP connections.
    pub connections: u64,
    /// Map local files instead of reading them.
    pub map_files: bool,
}

/// `[hottest]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HottestSettings {
    /// Length of the top-days list.
    pub top_days: u64,
}

/// `[window]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WindowSettings {
    /// Window length in days.
    pub days: u64,
    /// Hi Temperature band centre.
    pub hi_center: f64,
    /// Hi Temperature band half-width.
    pub hi_tolerance: f64,
    /// Low Temperature band centre.
    pub low_center: f64,
    /// Low Temperature band half-width.
    pub low_tolerance: f64,
}

/// `[forecast]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ForecastSettings {
    /// `offset` or `proportional`.
    pub method: String,
    /// Base temperature.
    pub base: f64,
    /// Decimal places of the output.
    pub decimals: u64,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogSettings {
    /// tracing filter.
    pub level: String,
    /// `pretty` or `json`.
    pub format: String,
    /// `auto`, `bar`, `log`, `off`.
    pub progress: String,
    /// Seconds between progress lines.
    pub progress_interval_secs: u64,
}

/// `[checkpoint]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CheckpointSettings {
    /// Write checkpoints at all.
    pub enabled: bool,
    /// Chunks between checkpoints.
    pub every_chunks: u64,
    /// Seconds between checkpoints at most (while chunks arrive).
    pub every_secs: u64,
    /// Folder; empty = `.wxflow-checkpoint` inside the output directory.
    pub dir: String,
}

/// `[supervision]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SupervisionSettings {
    /// Restarts allowed within `within_secs`.
    pub max_restarts: u64,
    /// The intensity window.
    pub within_secs: u64,
    /// First restart delay.
    pub backoff_initial_ms: u64,
    /// Longest restart delay.
    pub backoff_max_ms: u64,
    /// Growth of the delay per restart.
    pub backoff_multiplier: f64,
    /// Random spread of the delay, as a fraction.
    pub jitter: f64,
}

/// `[faults]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FaultSettings {
    /// Armed fault specs, see [`crate::faults`].
    pub inject: Vec<String>,
}

/// A byte count written as an integer or as text with a unit (`64KiB`, `1MiB`, `4MB`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(into = "String")]
pub struct ByteSize(pub String);

impl From<ByteSize> for String {
    fn from(b: ByteSize) -> String {
        b.0
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        Ok(ByteSize(match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string(),
            Raw::Text(s) => s,
        }))
    }
}
