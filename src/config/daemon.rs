//! The `[daemon]` section: where the daemon listens, keeps its state and writes, what it may
//! read, and how many jobs and chunks it holds at once; validated like every other section.

use std::net::SocketAddr;

use super::validate::Validator;
use super::*;

/// `[daemon]` as written in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DaemonSettings {
    /// `HOST:PORT` to listen on.
    pub listen: String,
    /// Bearer token; empty = none.
    pub auth_token: String,
    /// Folder of the job registry.
    pub state_dir: String,
    /// Folder all outputs go under.
    pub output_root: String,
    /// Folders local sources may come from.
    pub input_roots: Vec<String>,
    /// Jobs running at once.
    pub max_concurrent_jobs: u64,
    /// Jobs waiting at most.
    pub max_queued_jobs: u64,
    /// Chunks in flight across all jobs.
    pub in_flight_total: u64,
    /// Largest request body.
    pub max_body_bytes: ByteSize,
    /// Longest graceful shutdown.
    pub shutdown_timeout_secs: u64,
    /// Finished jobs kept in the registry.
    pub keep_finished_jobs: u64,
    /// Watched sources.
    pub watch: Vec<WatchSettings>,
}

/// One `[[daemon.watch]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSettings {
    /// URL or path under `input_roots`.
    pub source: String,
    /// Output name under `output_root`.
    pub output: String,
    /// Seconds between checks.
    pub interval_secs: u64,
}

/// The validated `[daemon]` section.
#[derive(Debug, Clone)]
pub struct DaemonPlan {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Bearer token, if any.
    pub auth_token: Option<String>,
    /// Registry folder.
    pub state_dir: PathBuf,
    /// Output root.
    pub output_root: PathBuf,
    /// Allowed local source folders.
    pub input_roots: Vec<PathBuf>,
    /// Jobs running at once (≥ 1).
    pub max_concurrent_jobs: usize,
    /// Jobs waiting at most.
    pub max_queued_jobs: usize,
    /// Chunks in flight across all jobs (≥ 1).
    pub in_flight_total: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Longest graceful shutdown.
    pub shutdown_timeout: Duration,
    /// Finished jobs kept in the registry (the oldest are forgotten; their folders stay).
    pub keep_finished_jobs: usize,
    /// Watched sources.
    pub watch: Vec<WatchPlan>,
}

/// A validated watched source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    /// URL or path.
    pub source: String,
    /// Output name.
    pub output: String,
    /// Time between checks.
    pub interval: Duration,
}

/// Checks `[daemon]`, adding every problem to `v`.
pub(super) fn validate(v: &mut Validator<'_>, d: &DaemonSettings) -> DaemonPlan {
    let listen = d.listen.trim().parse::<SocketAddr>().unwrap_or_else(|_| {
        v.fail(
            "daemon.listen",
            format!("{:?}", d.listen),
            "must be HOST:PORT with an IP address, e.g. \"127.0.0.1:8640\" (port 0 picks a free port)",
        );
        SocketAddr::from(([127, 0, 0, 1], 8640))
    });
    let token = d.auth_token.trim();
    if !token.is_empty() && token.len() < 16 {
        v.fail(
            "daemon.auth_token",
            "(hidden)",
            "must be at least 16 characters (e.g. from `openssl rand -hex 32`), or \"\" for none",
        );
    }
    let dir = |v: &mut Validator<'_>, key: &str, value: &str| {
        if value.trim().is_empty() {
            v.fail(key, "\"\"", "must name a folder");
        }
        PathBuf::from(value.trim())
    };
    let state_dir = dir(v, "daemon.state_dir", &d.state_dir);
    let output_root = dir(v, "daemon.output_root", &d.output_root);
    let input_roots = d.input_roots.iter().map(|r| dir(v, "daemon.input_roots", r)).collect();
    let watch = d
        .watch
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if w.source.trim().is_empty() || w.output.trim().is_empty() {
                v.fail("daemon.watch", format!("[{i}]"), "needs a source and an output name");
            }
            WatchPlan {
                source: w.source.trim().to_string(),
                output: w.output.trim().to_string(),
                interval: Duration::from_secs(v.count(
                    "daemon.watch.interval_secs",
                    w.interval_secs,
                    1,
                    86_400 * 31,
                ) as u64),
            }
        })
        .collect();
    DaemonPlan {
        listen,
        auth_token: (!token.is_empty()).then(|| token.to_string()),
        state_dir,
        output_root,
        input_roots,
        max_concurrent_jobs: v.count("daemon.max_concurrent_jobs", d.max_concurrent_jobs, 1, 256),
        max_queued_jobs: v.count("daemon.max_queued_jobs", d.max_queued_jobs, 0, 100_000),
        in_flight_total: v.count("daemon.in_flight_total", d.in_flight_total, 1, 65_536),
        max_body_bytes: v.size("daemon.max_body_bytes", &d.max_body_bytes, 256, 64 << 20),
        shutdown_timeout: Duration::from_secs(v.count(
            "daemon.shutdown_timeout_secs",
            d.shutdown_timeout_secs,
            1,
            3600,
        ) as u64),
        keep_finished_jobs: v.count("daemon.keep_finished_jobs", d.keep_finished_jobs, 1, 1_000_000),
        watch,
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn with(sets: &[(&str, &str)]) -> Result<Resolved, ConfigErrors> {
        resolve(&super::super::with(sets))
    }

    #[test]
    fn defaults_listen_on_loopback_without_a_token() {
        let d = with(&[]).unwrap().plan.daemon;
        assert!(d.listen.ip().is_loopback());
        assert_eq!(d.auth_token, None);
        assert!(d.input_roots.is_empty());
        assert_eq!(d.max_concurrent_jobs, 2);
    }

    #[test]
    fn every_daemon_problem_is_reported() {
        let err = with(&[
            ("daemon.listen", "localhost"),
            ("daemon.max_concurrent_jobs", "0"),
            ("daemon.auth_token", "short"),
            ("daemon.max_body_bytes", "lots"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 4, "{text}");
        assert!(text.contains("daemon.listen = \"localhost\""), "{text}");
        assert!(!text.contains("short"), "a token is never echoed: {text}");
    }

    #[test]
    fn typed_request_settings_set_lists_and_name_their_origin() {
        let list = Value::from(vec!["panic:window@3".to_string()]);
        let layers = Layers { request: vec![("faults.inject".into(), list)], ..Layers::default() };
        let r = resolve(&layers).unwrap();
        assert_eq!(r.plan.faults.armed.armed().len(), 1);
        let bad = Layers { request: vec![("window.dayz".into(), 3.into())], ..Layers::default() };
        let text = resolve(&bad).unwrap_err().to_string();
        assert!(text.contains("window.dayz = 3 (from the job's settings): unknown key"), "{text}");
    }
}
