//! Layered configuration: defaults, file, environment, command line.
//!
//! Settings are read with the `config` crate in four layers (later wins): the embedded
//! `config/default.toml`, an optional `--config FILE`, `WXFLOW__SECTION__KEY` environment
//! variables and command-line flags. Each key remembers the layer it came from, so that every
//! validation message can say where a bad value was set. Validation collects every problem at once
//! and turns the raw settings into a [`Plan`] of typed values the job uses.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Map, Value, ValueKind};
use serde::{Deserialize, Serialize};

use crate::date::Month;
use crate::source::SourceSpec;
use crate::tasks::forecast::{ForecastMethod, ForecastParams};
use crate::tasks::hottest::HottestParams;
use crate::tasks::window::WindowParams;
use crate::tenths::Tenths;

/// The defaults, compiled in so the binary behaves the same from any working directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "WXFLOW";

/// Raw settings as written in `config/default.toml`; see that file for each key's meaning.
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
}

impl Settings {
    /// The built-in defaults of `config/default.toml`, without any other layer.
    pub fn defaults() -> Settings {
        toml::from_str(DEFAULT_TOML).expect("config/default.toml matches Settings (tested)")
    }
}

impl Default for Columns {
    /// The column names of a Davis WeatherLink export, as in `config/default.toml`.
    fn default() -> Columns {
        Settings::defaults().columns
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
}

/// `[columns]`: which header names hold the fields the analyses need.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Columns {
    /// `dd/mm/yyyy` column.
    pub date: String,
    /// `HH:MM` column.
    pub time: String,
    /// Outside Temperature.
    pub outside: String,
    /// Hi Temperature.
    pub hi: String,
    /// Low Temperature.
    pub low: String,
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
    /// Task actor to slow down, or `none`.
    pub slow_task: String,
    /// Delay per chunk.
    pub slow_task_delay_ms: u64,
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

/// Parses `1048576`, `64KiB`, `1MiB`, `2GiB`, `4MB`, `10kb` into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Where a setting's value came from, for messages and `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The embedded defaults.
    Default,
    /// A `--config` file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag (`--set` or a named flag).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "config/default.toml"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(flag) => write!(f, "command-line {flag}"),
        }
    }
}

/// A command-line override: a dotted key, its value, and the flag that set it.
#[derive(Debug, Clone)]
pub struct Override {
    /// e.g. `pipeline.chunk_size`.
    pub key: String,
    /// The value as typed.
    pub value: String,
    /// e.g. `--chunk-size` or `--set`.
    pub flag: String,
}

/// Everything besides the defaults that can shape the configuration.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// Environment variables (normally `std::env::vars()`; tests pass their own).
    pub env: HashMap<String, String>,
    /// Command-line overrides, in order.
    pub overrides: Vec<Override>,
}

impl Layers {
    /// Layers from the process environment plus the given file and overrides.
    pub fn from_process(file: Option<PathBuf>, overrides: Vec<Override>) -> Layers {
        let env = std::env::vars().filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__"))).collect();
        Layers { file, env, overrides }
    }
}

/// One configuration problem: which key, what value, from where, and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    /// Dotted key, or the file name for problems with a whole file.
    pub key: String,
    /// The offending value as text ("" when not applicable).
    pub value: String,
    /// Where it was set.
    pub origin: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{} (from {}): {}", self.key, self.origin, self.problem)
        } else {
            write!(f, "{} = {} (from {}): {}", self.key, self.value, self.origin, self.problem)
        }
    }
}

/// All problems found in one configuration, reported together so users fix them in one go.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "invalid configuration ({n} problem{}):", if n == 1 { "" } else { "s" })?;
        for issue in &self.0 {
            writeln!(f, "  - {issue}")?;
        }
        write!(f, "hint: `wxflow config check` shows every key, its value and where it came from")
    }
}

impl std::error::Error for ConfigErrors {}

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
    /// First delay before a retry.
    pub retry_backoff: Duration,
}

/// Which task actor a fault targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Hottest times.
    Hottest,
    /// Temperature-band window.
    Window,
    /// Forecast.
    Forecast,
}

/// Validated fault injection.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Slow task actor and its per-chunk delay.
    pub slow_task: Option<(TaskKind, Duration)>,
    /// Armed faults.
    pub armed: crate::faults::Faults,
}

/// Resolves all layers and validates them, collecting every problem.
pub fn resolve(layers: &Layers) -> Result<Resolved, ConfigErrors> {
    let known = flatten(&collect(default_source())?);
    let mut issues = Vec::new();
    let mut origins: BTreeMap<String, Origin> = known.keys().map(|k| (k.clone(), Origin::Default)).collect();

    if let Some(path) = &layers.file {
        match file_layer(path) {
            Ok(map) => record_layer(&map, &known, &mut origins, &mut issues, |_| Origin::File(path.clone())),
            Err(issue) => issues.push(issue),
        }
    }
    let env = collect(env_source(&layers.env))?;
    record_layer(&env, &known, &mut origins, &mut issues, |key| Origin::Env(env_var_name(key)));
    for o in &layers.overrides {
        check_override_key(o, &known, &mut origins, &mut issues);
    }
    // Unknown keys were reported above (deserialization ignores them), so the checks below can
    // add every other problem to the same list.
    if issues.iter().any(|i| i.key == "--config") {
        return Err(ConfigErrors(issues)); // the merged build would only repeat the file's error
    }
    let built = build(layers).and_then(|c| {
        c.try_deserialize::<Settings>().map_err(|e| ConfigErrors(vec![type_issue(&e, &origins)]))
    });
    let settings = match built {
        Ok(settings) => settings,
        Err(ConfigErrors(more)) => {
            issues.extend(more);
            return Err(ConfigErrors(issues));
        }
    };
    match validate(&settings, &origins) {
        Ok(plan) if issues.is_empty() => Ok(Resolved { settings, origins, plan }),
        Ok(_) => Err(ConfigErrors(issues)),
        Err(ConfigErrors(more)) => {
            issues.extend(more);
            Err(ConfigErrors(issues))
        }
    }
}

fn default_source() -> File<config::FileSourceString, FileFormat> {
    File::from_str(DEFAULT_TOML, FileFormat::Toml)
}

fn env_source(env: &HashMap<String, String>) -> Environment {
    Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.clone().into_iter().collect()))
}

fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_ascii_uppercase())
}

fn build(layers: &Layers) -> Result<Config, ConfigErrors> {
    let mut builder = Config::builder().add_source(default_source());
    if let Some(path) = &layers.file {
        builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
    }
    builder = builder.add_source(env_source(&layers.env));
    for o in &layers.overrides {
        builder = builder
            .set_override(o.key.as_str(), o.value.clone())
            .map_err(|e| whole_issue(&o.flag, e.to_string()))?;
    }
    builder.build().map_err(|e| whole_issue("configuration", e.to_string()))
}

fn collect<S: config::Source + Send + Sync + 'static>(source: S) -> Result<Map<String, Value>, ConfigErrors> {
    Config::builder()
        .add_source(source)
        .build()
        .and_then(|c| c.try_deserialize::<Map<String, Value>>())
        .map_err(|e| whole_issue("configuration", e.to_string()))
}

fn file_layer(path: &std::path::Path) -> Result<Map<String, Value>, ConfigIssue> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(ConfigIssue {
            key: "--config".into(),
            value: shown,
            origin: "command line".into(),
            problem: "no such file; give the path of a TOML file with keys as in config/default.toml".into(),
        });
    }
    collect(File::from(path).format(FileFormat::Toml)).map_err(|e| ConfigIssue {
        key: "--config".into(),
        value: shown,
        origin: "command line".into(),
        problem: format!(
            "not valid TOML: {}",
            e.0.iter().map(|i| i.problem.clone()).collect::<Vec<_>>().join("; ")
        ),
    })
}

fn whole_issue(origin: &str, problem: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigIssue {
        key: origin.to_string(),
        value: String::new(),
        origin: origin.to_string(),
        problem,
    }])
}

/// Flattens nested tables into dotted keys.
fn flatten(map: &Map<String, Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        match &v.kind {
            ValueKind::Table(inner) => {
                for (ik, iv) in flatten(inner) {
                    out.insert(format!("{k}.{ik}"), iv);
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn record_layer(
    map: &Map<String, Value>,
    known: &BTreeMap<String, Value>,
    origins: &mut BTreeMap<String, Origin>,
    issues: &mut Vec<ConfigIssue>,
    origin_of: impl Fn(&str) -> Origin,
) {
    for (key, value) in flatten(map) {
        let origin = origin_of(&key);
        if known.contains_key(&key) {
            origins.insert(key, origin);
        } else {
            issues.push(unknown_key(&key, &value.to_string(), &origin.to_string(), known));
        }
    }
}

fn check_override_key(
    o: &Override,
    known: &BTreeMap<String, Value>,
    origins: &mut BTreeMap<String, Origin>,
    issues: &mut Vec<ConfigIssue>,
) {
    let origin = Origin::Flag(o.flag.clone());
    if known.contains_key(&o.key) {
        origins.insert(o.key.clone(), origin);
    } else {
        issues.push(unknown_key(&o.key, &o.value, &origin.to_string(), known));
    }
}

fn unknown_key(key: &str, value: &str, origin: &str, known: &BTreeMap<String, Value>) -> ConfigIssue {
    let section = key.split('.').next().unwrap_or("");
    let siblings: Vec<&str> =
        known.keys().filter(|k| k.split('.').next() == Some(section)).map(String::as_str).collect();
    let hint = match closest(key, known.keys().map(String::as_str)) {
        Some(best) => format!("did you mean `{best}`?"),
        None if siblings.is_empty() => format!("sections are {}", section_names(known).join(", ")),
        None => format!("keys in [{section}] are {}", siblings.join(", ")),
    };
    ConfigIssue {
        key: key.to_string(),
        value: value.to_string(),
        origin: origin.to_string(),
        problem: format!("unknown key; {hint}"),
    }
}

fn section_names(known: &BTreeMap<String, Value>) -> Vec<String> {
    let mut names: Vec<String> =
        known.keys().filter_map(|k| k.split('.').next().map(str::to_string)).collect();
    names.dedup();
    names
}

/// The known key nearest to `key` by edit distance, if it is close enough to be a typo.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known.map(|k| (edit_distance(key, k), k)).filter(|(d, _)| *d <= 3).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn type_issue(e: &config::ConfigError, origins: &BTreeMap<String, Origin>) -> ConfigIssue {
    let text = e.to_string();
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("configuration")
        .to_string();
    let origin = origins.get(&key).map_or("configuration".to_string(), Origin::to_string);
    ConfigIssue { key, value: String::new(), origin, problem: text }
}

/// Collects validation problems with the origin of each key.
struct Validator<'a> {
    origins: &'a BTreeMap<String, Origin>,
    issues: Vec<ConfigIssue>,
}

impl Validator<'_> {
    fn fail(&mut self, key: &str, value: impl fmt::Display, problem: impl Into<String>) {
        let origin = self.origins.get(key).map_or("defaults".to_string(), Origin::to_string);
        self.issues.push(ConfigIssue {
            key: key.to_string(),
            value: value.to_string(),
            origin,
            problem: problem.into(),
        });
    }

    fn count(&mut self, key: &str, value: u64, min: u64, max: u64) -> usize {
        if value < min || value > max {
            self.fail(key, value, format!("must be a whole number from {min} to {max}"));
        }
        value.clamp(min, max) as usize
    }

    fn size(&mut self, key: &str, value: &ByteSize, min: u64, max: u64) -> usize {
        match parse_size(&value.0) {
            Some(n) if (min..=max).contains(&n) => n as usize,
            Some(_) => {
                self.fail(
                    key,
                    &value.0,
                    format!("must be from {min} bytes to {max} bytes (units: B, KiB, MiB, GiB, KB, MB, GB)"),
                );
                min as usize
            }
            None => {
                self.fail(key, &value.0, "must be a byte size such as 65536, \"64KiB\" or \"1MiB\"");
                min as usize
            }
        }
    }

    fn tenths(&mut self, key: &str, value: f64, non_negative: bool) -> Tenths {
        match Tenths::from_f64(value) {
            Some(t) if non_negative && t.0 < 0 => {
                self.fail(key, value, "must be 0 or more");
                Tenths(0)
            }
            Some(t) => t,
            None => {
                self.fail(
                    key,
                    value,
                    "must have at most one decimal place (values are compared exactly in tenths)",
                );
                Tenths(0)
            }
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, value: &str, options: &[(&str, T)]) -> Option<T> {
        let found = options.iter().find(|(name, _)| name.eq_ignore_ascii_case(value.trim()));
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            self.fail(key, format!("{value:?}"), format!("must be one of {}", names.join(", ")));
        }
        found.map(|(_, v)| *v)
    }
}

fn validate(s: &Settings, origins: &BTreeMap<String, Origin>) -> Result<Plan, ConfigErrors> {
    let mut v = Validator { origins, issues: Vec::new() };
    let source = SourceSpec::parse(&s.job.source).unwrap_or_else(|problem| {
        v.fail("job.source", format!("{:?}", s.job.source), problem);
        SourceSpec::Stdin
    });
    if s.job.out.trim().is_empty() {
        v.fail("job.out", "\"\"", "must name a directory");
    }
    let month = Month::parse(&s.job.reference_month).unwrap_or_else(|| {
        v.fail(
            "job.reference_month",
            format!("{:?}", s.job.reference_month),
            "must be a month as YYYY-MM, e.g. \"2006-06\"",
        );
        Month { year: 2006, month: 6 }
    });
    let ratio = s.job.max_reject_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        v.fail("job.max_reject_ratio", ratio, "must be a fraction from 0 to 1 (0.01 = 1%)");
    }
    let pipeline = PipelinePlan {
        chunk_size: v.size("pipeline.chunk_size", &s.pipeline.chunk_size, 1, 1 << 30),
        parse_workers: v.count("pipeline.parse_workers", s.pipeline.parse_workers, 1, 256),
        in_flight: v.count("pipeline.in_flight", s.pipeline.in_flight, 1, 4096),
        max_line: v.size("pipeline.max_line", &s.pipeline.max_line, 64, 1 << 30),
        connect_timeout: Duration::from_secs(v.count(
            "pipeline.connect_timeout_secs",
            s.pipeline.connect_timeout_secs,
            1,
            3600,
        ) as u64),
        read_timeout: Duration::from_secs(v.count(
            "pipeline.read_timeout_secs",
            s.pipeline.read_timeout_secs,
            1,
            3600,
        ) as u64),
        fetch_retries: v.count("pipeline.fetch_retries", s.pipeline.fetch_retries, 0, 100) as u32,
        retry_backoff: Duration::from_millis(v.count(
            "pipeline.retry_backoff_ms",
            s.pipeline.retry_backoff_ms,
            1,
            600_000,
        ) as u64),
    };
    check_columns(&mut v, &s.columns);
    let hottest = HottestParams { top_days: v.count("hottest.top_days", s.hottest.top_days, 1, 100_000) };
    let days = v.count("window.days", s.window.days, 1, 28) as u32;
    let window = WindowParams::new(
        month,
        days,
        v.tenths("window.hi_center", s.window.hi_center, false),
        v.tenths("window.hi_tolerance", s.window.hi_tolerance, true),
        v.tenths("window.low_center", s.window.low_center, false),
        v.tenths("window.low_tolerance", s.window.low_tolerance, true),
    );
    let method = v
        .choice(
            "forecast.method",
            &s.forecast.method,
            &[("offset", ForecastMethod::Offset), ("proportional", ForecastMethod::Proportional)],
        )
        .unwrap_or(ForecastMethod::Offset);
    let forecast = ForecastParams::new(
        month,
        days,
        v.tenths("forecast.base", s.forecast.base, false),
        method,
        v.count("forecast.decimals", s.forecast.decimals, 0, 6) as u32,
    );
    check_log(&mut v, &s.log);
    let faults = fault_plan(&mut v, &s.faults);
    let out = PathBuf::from(&s.job.out);
    let sv = &s.supervision;
    if !(1.0..=100.0).contains(&sv.backoff_multiplier) {
        v.fail("supervision.backoff_multiplier", sv.backoff_multiplier, "must be from 1.0 to 100.0");
    }
    if !(0.0..=1.0).contains(&sv.jitter) {
        v.fail("supervision.jitter", sv.jitter, "must be a fraction from 0 to 1");
    }
    let supervision = SupervisionPlan {
        max_restarts: v.count("supervision.max_restarts", sv.max_restarts, 0, 1000) as u32,
        within: Duration::from_secs(v.count("supervision.within_secs", sv.within_secs, 1, 86_400) as u64),
        backoff_initial: Duration::from_millis(v.count(
            "supervision.backoff_initial_ms",
            sv.backoff_initial_ms,
            0,
            600_000,
        ) as u64),
        backoff_max: Duration::from_millis(v.count(
            "supervision.backoff_max_ms",
            sv.backoff_max_ms,
            0,
            3_600_000,
        ) as u64),
        multiplier: sv.backoff_multiplier.clamp(1.0, 100.0),
        jitter: sv.jitter.clamp(0.0, 1.0),
    };
    let checkpoint = CheckpointPlan {
        enabled: s.checkpoint.enabled,
        every_chunks: v.count("checkpoint.every_chunks", s.checkpoint.every_chunks, 1, 1 << 30) as u64,
        every_secs: Duration::from_secs(
            v.count("checkpoint.every_secs", s.checkpoint.every_secs, 1, 86_400) as u64
        ),
        dir: match s.checkpoint.dir.trim() {
            "" => out.join(".wxflow-checkpoint"),
            dir => PathBuf::from(dir),
        },
    };
    if !v.issues.is_empty() {
        return Err(ConfigErrors(v.issues));
    }
    Ok(Plan {
        source,
        out,
        month,
        max_reject_ratio: ratio,
        pipeline,
        columns: s.columns.clone(),
        hottest,
        window,
        forecast,
        log: s.log.clone(),
        checkpoint,
        supervision,
        faults,
    })
}

fn check_columns(v: &mut Validator<'_>, c: &Columns) {
    let named = [
        ("columns.date", &c.date),
        ("columns.time", &c.time),
        ("columns.outside", &c.outside),
        ("columns.hi", &c.hi),
        ("columns.low", &c.low),
    ];
    for (key, name) in named {
        if name.trim().is_empty() {
            v.fail(key, "\"\"", "must name a header column");
        }
    }
}

fn check_log(v: &mut Validator<'_>, log: &LogSettings) {
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        v.fail(
            "log.level",
            format!("{:?}", log.level),
            "must be trace, debug, info, warn, error or a tracing filter such as \"wxflow=debug\"",
        );
    }
    v.choice("log.format", &log.format, &[("pretty", ()), ("json", ())]);
    v.choice("log.progress", &log.progress, &[("auto", ()), ("bar", ()), ("log", ()), ("off", ())]);
    v.count("log.progress_interval_secs", log.progress_interval_secs, 1, 86_400);
}

fn fault_plan(v: &mut Validator<'_>, f: &FaultSettings) -> FaultPlan {
    let kinds = [
        ("none", None),
        ("hottest", Some(TaskKind::Hottest)),
        ("window", Some(TaskKind::Window)),
        ("forecast", Some(TaskKind::Forecast)),
    ];
    let kind = v.choice("faults.slow_task", &f.slow_task, &kinds).flatten();
    let delay =
        Duration::from_millis(v.count("faults.slow_task_delay_ms", f.slow_task_delay_ms, 0, 60_000) as u64);
    let mut armed = Vec::new();
    for (i, spec) in f.inject.iter().enumerate() {
        match crate::faults::Fault::parse(spec) {
            Ok(fault) => armed.push(fault),
            Err(problem) => v.fail("faults.inject", format!("[{i}] {spec:?}"), problem),
        }
    }
    FaultPlan { slow_task: kind.map(|k| (k, delay)), armed: crate::faults::Faults::new(armed) }
}

/// Renders the resolved settings as TOML, each key annotated with the layer it came from.
pub fn render(resolved: &Resolved) -> String {
    let value = toml::Value::try_from(&resolved.settings).expect("settings serialize to TOML");
    let mut out = String::new();
    let Some(sections) = value.as_table() else { return out };
    for (section, table) in sections {
        out.push_str(&format!("[{section}]\n"));
        for (key, v) in table.as_table().into_iter().flatten() {
            let dotted = format!("{section}.{key}");
            let origin = resolved.origins.get(&dotted).unwrap_or(&Origin::Default);
            out.push_str(&format!("{key} = {v}  # {origin}\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(sets: &[(&str, &str)]) -> Layers {
        Layers {
            overrides: sets
                .iter()
                .map(|(k, v)| Override { key: k.to_string(), value: v.to_string(), flag: "--set".into() })
                .collect(),
            ..Layers::default()
        }
    }

    #[test]
    fn embedded_defaults_parse() {
        assert_eq!(Columns::default().outside, "Outside Temperature");
        assert_eq!(Settings::defaults().window.days, 9);
    }

    #[test]
    fn defaults_resolve() {
        let r = resolve(&Layers::default()).unwrap();
        assert_eq!(r.plan.pipeline.chunk_size, 1 << 20);
        assert_eq!(r.plan.month, Month { year: 2006, month: 6 });
        assert_eq!(r.plan.window.hi_band(), (Tenths(213), Tenths(233)));
        assert_eq!(r.plan.window.low_band(), (Tenths(101), Tenths(105)));
    }

    #[test]
    fn layers_apply_in_order_and_record_origin() {
        let mut layers = with(&[("pipeline.in_flight", "3")]);
        layers.env.insert("WXFLOW__PIPELINE__IN_FLIGHT".into(), "5".into());
        layers.env.insert("WXFLOW__PIPELINE__PARSE_WORKERS".into(), "7".into());
        let r = resolve(&layers).unwrap();
        assert_eq!(r.plan.pipeline.in_flight, 3);
        assert_eq!(r.plan.pipeline.parse_workers, 7);
        assert_eq!(
            r.origins["pipeline.parse_workers"],
            Origin::Env("WXFLOW__PIPELINE__PARSE_WORKERS".into())
        );
        assert!(
            render(&r).contains("parse_workers = 7  # environment variable WXFLOW__PIPELINE__PARSE_WORKERS")
        );
    }

    #[test]
    fn every_problem_is_reported_with_key_value_and_origin() {
        let err = resolve(&with(&[
            ("pipeline.chunk_size", "0"),
            ("pipeline.parse_workers", "0"),
            ("job.reference_month", "June"),
            ("window.low_tolerance", "-0.2"),
            ("window.hi_center", "22.35"),
            ("job.source", "ftp://example.org/x.csv"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 6, "{text}");
        assert!(
            text.contains("pipeline.chunk_size = 0 (from command-line --set): must be from 1 bytes"),
            "{text}"
        );
        assert!(text.contains("job.reference_month = \"June\""), "{text}");
        assert!(text.contains("window.low_tolerance = -0.2"), "{text}");
        assert!(text.contains("at most one decimal place"), "{text}");
        assert!(text.contains("unsupported scheme"), "{text}");
    }

    #[test]
    fn unknown_keys_suggest_the_right_one() {
        let mut layers = with(&[("pipeline.chunk_sise", "4")]);
        layers.env.insert("WXFLOW__WINDOW__DAZE".into(), "4".into());
        let text = resolve(&layers).unwrap_err().to_string();
        assert!(text.contains("pipeline.chunk_sise = 4 (from command-line --set): unknown key; did you mean `pipeline.chunk_size`?"), "{text}");
        assert!(text.contains("window.daze = 4 (from environment variable WXFLOW__WINDOW__DAZE)"), "{text}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_together() {
        let err = resolve(&with(&[("window.dayz", "3"), ("pipeline.in_flight", "0")])).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert_eq!(err.0[0].key, "window.dayz");
        assert_eq!(err.0[1].key, "pipeline.in_flight");
    }

    #[test]
    fn type_errors_name_the_key() {
        let text = resolve(&with(&[("pipeline.parse_workers", "many")])).unwrap_err().to_string();
        assert!(text.contains("pipeline.parse_workers"), "{text}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("4MB"), Some(4_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("lots"), None);
    }
}
