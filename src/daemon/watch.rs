//! Watched sources (`[[daemon.watch]]`): each entry is checked every `interval_secs`; when its
//! version (HTTP: ETag, Last-Modified and Content-Length from a HEAD request; a file: size and
//! modification time) has not been processed yet, a job is submitted with the output
//! `<output>/<version tag>`, an 8-hex-digit CRC-32 of the version, so every source version keeps
//! its own results and an unchanged source (even across daemon restarts) is never run again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::scheduler::{Scheduler, Submission};
use super::security;
use crate::source::SourceSpec;

/// How often the watcher looks for entries that are due.
const TICK: Duration = Duration::from_millis(250);

/// Runs the watcher on the current actix system until the daemon stops; entries come from the
/// configuration in force, so a reload changes them.
pub async fn run(scheduler: Arc<Scheduler>) {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client builds");
    let mut due: HashMap<(String, String), Instant> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if scheduler.stopping() {
            return;
        }
        for entry in scheduler.limits().watch {
            let key = (entry.source.clone(), entry.output.clone());
            if due.get(&key).is_some_and(|at| Instant::now() < *at) {
                continue;
            }
            due.insert(key, Instant::now() + entry.interval);
            check(&scheduler, &http, &entry.source, &entry.output).await;
        }
    }
}

/// Submits a job for this entry if its current version has no job yet.
async fn check(scheduler: &Arc<Scheduler>, http: &reqwest::Client, source: &str, output: &str) {
    let version = match version(scheduler, http, source).await {
        Ok(version) => version,
        Err(e) => {
            tracing::warn!(source, "watch: cannot check the source: {e}; trying again next interval");
            return;
        }
    };
    let output = format!("{output}/{:08x}", crc32fast::hash(version.as_bytes()));
    if scheduler.has_output(&output) {
        return;
    }
    tracing::info!(source, output = %output, "watch: new source version ({version}); submitting a job");
    let submission = Submission { source: source.to_string(), output, settings: Default::default() };
    let s = scheduler.clone();
    match actix_web::rt::task::spawn_blocking(move || s.submit(submission)).await {
        Ok(Ok(_)) => {}
        Ok(Err(refusal)) => {
            tracing::warn!(source, "watch: the job was refused: {refusal}; trying again next interval")
        }
        Err(e) => tracing::warn!(source, "watch: submitting failed: {e}"),
    }
}

/// What identifies the source's current content, as text.
async fn version(scheduler: &Scheduler, http: &reqwest::Client, source: &str) -> Result<String, String> {
    let checked = security::source(source, &scheduler.limits().input_roots).map_err(|r| r.to_string())?;
    match SourceSpec::parse(&checked)? {
        SourceSpec::Http(url) => {
            let resp = http.head(&url).send().await.map_err(|e| crate::source::error_chain(&e))?;
            if !resp.status().is_success() {
                return Err(format!("HEAD {url} answered {}", resp.status()));
            }
            let header =
                |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let (etag, modified, length) =
                (header("etag"), header("last-modified"), header("content-length"));
            if etag.is_empty() && modified.is_empty() && length.is_empty() {
                return Err(format!(
                    "{url} sends no ETag, Last-Modified or Content-Length, so changes cannot be seen"
                ));
            }
            Ok(format!("etag={etag};last-modified={modified};length={length}"))
        }
        SourceSpec::File(path) => {
            let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            Ok(format!("size={};mtime_ns={mtime}", meta.len()))
        }
        SourceSpec::Stdin => Err("standard input cannot be watched".into()),
    }
}
