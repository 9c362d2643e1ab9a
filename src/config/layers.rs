//! The layers (defaults, file, environment, flags), where each key came from, and the problems
//! found in them, reported all at once.

use super::*;

/// Where a setting's value came from, for messages and `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// One file of the embedded defaults, by its path in the repository (`config/job.toml`).
    Default(&'static str),
    /// A `--config` file (given, or found in a given directory).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag (`--set` or a named flag).
    Flag(String),
    /// The `settings` of a job submitted to the daemon.
    Request,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default(path) => write!(f, "{path}"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(flag) => write!(f, "command-line {flag}"),
            Origin::Request => write!(f, "the job's settings"),
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
    /// `--config PATH`: a TOML file, or a directory whose `*.toml` files are read in name order.
    pub file: Option<PathBuf>,
    /// Environment variables (normally `std::env::vars()`; tests pass their own).
    pub env: HashMap<String, String>,
    /// Command-line overrides, in order.
    pub overrides: Vec<Override>,
    /// Typed values from a daemon job's `settings` (`"faults.inject": ["…"]` needs a list, which
    /// a `--set` string cannot be); applied last.
    pub request: Vec<(String, Value)>,
}

impl Layers {
    /// Layers from the process environment plus the given file and overrides.
    pub fn from_process(file: Option<PathBuf>, overrides: Vec<Override>) -> Layers {
        let env = std::env::vars().filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__"))).collect();
        Layers { file, env, overrides, request: Vec::new() }
    }
}

fn default_source(file: &DefaultFile) -> File<config::FileSourceString, FileFormat> {
    File::from_str(file.text, FileFormat::Toml)
}

/// Every known key (dotted) with its default value.
pub(super) type Known = BTreeMap<String, Value>;

/// Every key of the embedded defaults with its default value, and the file that sets it.
pub(super) fn default_keys() -> Result<(Known, BTreeMap<String, Origin>), ConfigErrors> {
    let mut known = BTreeMap::new();
    let mut origins = BTreeMap::new();
    for file in &DEFAULT_FILES {
        for (key, value) in flatten(&collect(default_source(file))?) {
            origins.insert(key.clone(), Origin::Default(file.path));
            known.insert(key, value);
        }
    }
    Ok((known, origins))
}

/// The files `--config PATH` stands for: the file itself, or the `*.toml` files of a directory in
/// name order (as Vector reads a config directory), so that overrides can be split by concern
/// like the defaults.
pub(super) fn config_files(path: &Path) -> Result<Vec<PathBuf>, ConfigIssue> {
    let issue = |problem: String| ConfigIssue {
        key: "--config".into(),
        value: path.display().to_string(),
        origin: "command line".into(),
        problem,
    };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(issue(
            "no such file or directory; give a TOML file with keys as in config/*.toml, or a directory of such files"
                .into(),
        ));
    }
    let listing = |e: std::io::Error| issue(format!("cannot list the directory: {e}"));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(listing)? {
        let file = entry.map_err(listing)?.path();
        if file.extension().is_some_and(|e| e == "toml") && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(issue(
            "the directory holds no *.toml file; put the overrides in files such as pipeline.toml".into(),
        ));
    }
    Ok(files)
}

/// Records the keys of every `--config` file. A key set in two files of one directory is an
/// error: which value wins would depend on the files' names, which nobody reads as an order.
pub(super) fn record_files(
    files: &[PathBuf],
    known: &BTreeMap<String, Value>,
    origins: &mut BTreeMap<String, Origin>,
    issues: &mut Vec<ConfigIssue>,
) {
    let mut set_in: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for path in files {
        let map = match file_layer(path) {
            Ok(map) => map,
            Err(issue) => {
                issues.push(issue);
                continue;
            }
        };
        for (key, value) in flatten(&map) {
            match set_in.get(&key) {
                Some(first) => issues.push(ConfigIssue {
                    key: key.clone(),
                    value: value.to_string(),
                    origin: Origin::File(path.clone()).to_string(),
                    problem: format!(
                        "also set in {}; set each key in one file of the directory",
                        first.display()
                    ),
                }),
                None => {
                    set_in.insert(key, path);
                }
            }
        }
        record_layer(&map, known, origins, issues, |_| Origin::File(path.clone()));
    }
}

pub(super) fn env_source(env: &HashMap<String, String>) -> Environment {
    Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.clone().into_iter().collect()))
}

pub(super) fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Merges the layers: the defaults, the `--config` files (as [`config_files`] listed them), the
/// environment, the flags and a job's settings.
pub(super) fn build(files: &[PathBuf], layers: &Layers) -> Result<Config, ConfigErrors> {
    let mut builder = Config::builder();
    for file in &DEFAULT_FILES {
        builder = builder.add_source(default_source(file));
    }
    for file in files {
        builder = builder.add_source(File::from(file.as_path()).format(FileFormat::Toml));
    }
    builder = builder.add_source(env_source(&layers.env));
    for o in &layers.overrides {
        builder = builder
            .set_override(o.key.as_str(), o.value.clone())
            .map_err(|e| whole_issue(&o.flag, e.to_string()))?;
    }
    for (key, value) in &layers.request {
        builder = builder
            .set_override(key.as_str(), value.clone())
            .map_err(|e| whole_issue("the job's settings", e.to_string()))?;
    }
    builder.build().map_err(|e| whole_issue("configuration", e.to_string()))
}

pub(super) fn collect<S: config::Source + Send + Sync + 'static>(
    source: S,
) -> Result<Map<String, Value>, ConfigErrors> {
    Config::builder()
        .add_source(source)
        .build()
        .and_then(|c| c.try_deserialize::<Map<String, Value>>())
        .map_err(|e| whole_issue("configuration", e.to_string()))
}

pub(super) fn file_layer(path: &Path) -> Result<Map<String, Value>, ConfigIssue> {
    let shown = path.display().to_string();
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

pub(super) fn whole_issue(origin: &str, problem: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigIssue {
        key: origin.to_string(),
        value: String::new(),
        origin: origin.to_string(),
        problem,
    }])
}

/// Flattens nested tables into dotted keys.
pub(super) fn flatten(map: &Map<String, Value>) -> BTreeMap<String, Value> {
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

pub(super) fn record_layer(
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

pub(super) fn check_override_key(
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

/// Keys that existed once, with what replaced them, so an old config file gets a fix, not a guess.
const REMOVED: [(&str, &str); 2] = [
    (
        "faults.slow_task",
        "it was replaced by the fault `slow:ACTOR:MS`, e.g. faults.inject = [\"slow:window:10\"]",
    ),
    (
        "faults.slow_task_delay_ms",
        "it was replaced by the fault `slow:ACTOR:MS`, e.g. faults.inject = [\"slow:window:10\"]",
    ),
];

pub(super) fn unknown_key(
    key: &str,
    value: &str,
    origin: &str,
    known: &BTreeMap<String, Value>,
) -> ConfigIssue {
    let section = key.split('.').next().unwrap_or("");
    let siblings: Vec<&str> =
        known.keys().filter(|k| k.split('.').next() == Some(section)).map(String::as_str).collect();
    let hint = match closest(key, known.keys().map(String::as_str)) {
        _ if REMOVED.iter().any(|(k, _)| *k == key) => {
            REMOVED.iter().find(|(k, _)| *k == key).map(|(_, h)| h.to_string()).unwrap_or_default()
        }
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

pub(super) fn section_names(known: &BTreeMap<String, Value>) -> Vec<String> {
    let mut names: Vec<String> =
        known.keys().filter_map(|k| k.split('.').next().map(str::to_string)).collect();
    names.dedup();
    names
}

/// The known key nearest to `key` by edit distance, if it is close enough to be a typo.
pub(super) fn closest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known.map(|k| (edit_distance(key, k), k)).filter(|(d, _)| *d <= 3).min().map(|(_, k)| k)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

pub(super) fn type_issue(e: &config::ConfigError, origins: &BTreeMap<String, Origin>) -> ConfigIssue {
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
