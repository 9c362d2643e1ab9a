//! `wxflow daemon`: a local service that runs jobs submitted over HTTP through the same pipeline
//! as `wxflow run`, keeps them in a durable registry, and shows what it is doing.
//!
//! [`api`] (actix-web routes) → [`scheduler`] (queue, running jobs, one lock) → [`crate::job`]
//! on a thread per running job; [`registry`] persists jobs atomically, [`security`] confines
//! sources and outputs, [`metrics`] serves Prometheus text, [`dashboard`] renders the pages.

pub mod api;
pub mod dashboard;
pub mod metrics;
pub mod registry;
pub mod scheduler;
pub mod security;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::{DaemonPlan, Plan};
use crate::error::{Error, OutputError};
use scheduler::Scheduler;

/// File in `daemon.state_dir` holding the address actually bound, for clients and tests.
pub const ADDR_FILE: &str = "daemon.addr";

/// A request the daemon refuses or cannot serve: an HTTP status and a JSON body
/// `{"error": "...", "detail": ...}` saying what is wrong and what to do.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Short category.
    pub error: String,
    /// What exactly, and how to fix it (text or a list of problems).
    pub detail: Value,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.detail)
    }
}

impl Refusal {
    /// A refusal with a text detail.
    pub fn new(status: u16, error: &str, detail: impl Into<String>) -> Refusal {
        Refusal { status, error: error.into(), detail: Value::String(detail.into()) }
    }

    /// A 400.
    pub fn bad_request(error: &str, detail: impl Into<String>) -> Refusal {
        Refusal::new(400, error, detail)
    }

    /// A 500.
    pub fn internal(error: &str, detail: impl Into<String>) -> Refusal {
        Refusal::new(500, error, detail)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": self.error, "detail": self.detail})
    }
}

/// Runs the daemon until SIGINT or SIGTERM; then checkpoints running jobs and returns within
/// `daemon.shutdown_timeout_secs`.
pub fn serve(plan: &Plan, config_file: Option<PathBuf>) -> Result<(), Error> {
    let d = &plan.daemon;
    security::check_listen(d.listen, d.auth_token.as_deref()).map_err(Error::Usage)?;
    let _lock = lock_state_dir(&d.state_dir)?;
    let scheduler = Scheduler::open(d, config_file)?;
    if let Some(cluster) = &plan.cluster {
        eprintln!(
            "wxflow daemon: joining cluster {:?} as node {} through {}",
            cluster.name, cluster.node_id, cluster.nats_url
        );
        scheduler.join_cluster(cluster.clone())?;
    }
    let system = actix_web::rt::System::new();
    system.block_on(run(scheduler, d.clone()))
}

/// Holds `<state_dir>/daemon.lock` for the daemon's lifetime, so that two daemons never share
/// (and corrupt) one registry.
fn lock_state_dir(dir: &std::path::Path) -> Result<std::fs::File, Error> {
    let path = dir.join("daemon.lock");
    let io = |source| Error::Output(OutputError::Write { path: path.clone(), source });
    std::fs::create_dir_all(dir).map_err(io)?;
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Usage(format!(
            "another wxflow daemon is running with daemon.state_dir {} (it holds {}); stop it first or give this one \
             another state_dir",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

async fn run(scheduler: Arc<Scheduler>, d: DaemonPlan) -> Result<(), Error> {
    let signals = Signals::listen(); // before anything runs, so no SIGTERM is missed
    let server = api::server(scheduler.clone(), &d)?;
    let addr =
        server.addrs.first().copied().ok_or_else(|| Error::Internal("the server bound no address".into()))?;
    registry::write_atomic(&d.state_dir, ADDR_FILE, addr.to_string().as_bytes()).map_err(|e| {
        Error::Output(OutputError::Write {
            path: d.state_dir.join(ADDR_FILE),
            source: std::io::Error::other(e.to_string()),
        })
    })?;
    tracing::info!(actix_system = actix::System::current().id(), "listening on http://{addr}");
    eprintln!("wxflow daemon: listening on http://{addr} (state in {})", d.state_dir.display());
    scheduler.start_queued(actix::System::current());
    let handle = server.server.handle();
    let serving = actix_web::rt::spawn(server.server);
    let watcher = actix_web::rt::spawn(watch::run(scheduler.clone()));
    let signal = signals.wait(&scheduler).await;
    tracing::info!("{signal}: stopping; running jobs are checkpointed");
    eprintln!(
        "wxflow daemon: {signal}: checkpointing running jobs (at most {} s)",
        d.shutdown_timeout.as_secs()
    );
    if let Some(cluster) = scheduler.cluster() {
        cluster.leave(); // ranges in progress go back to the queue; jobs are left to other nodes
    }
    let (timeout, sched) = (d.shutdown_timeout, scheduler.clone());
    let left = actix_web::rt::task::spawn_blocking(move || sched.shutdown(timeout)).await.unwrap_or(0);
    if left > 0 {
        tracing::warn!(
            "{left} job(s) did not finish checkpointing in time; they resume from their last checkpoint"
        );
    }
    watcher.abort();
    let _ = std::fs::remove_file(d.state_dir.join(ADDR_FILE));
    handle.stop(false).await;
    let _ = serving.await;
    eprintln!("wxflow daemon: stopped");
    Ok(())
}

/// The signals the daemon handles: SIGINT and SIGTERM stop it, SIGHUP reloads its configuration.
struct Signals(Option<[tokio::signal::unix::Signal; 3]>);

impl Signals {
    /// Starts listening (the default actions no longer apply).
    fn listen() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        {
            (Ok(int), Ok(term), Ok(hup)) => Signals(Some([int, term, hup])),
            _ => {
                tracing::warn!("cannot listen for SIGINT/SIGTERM/SIGHUP; stop the daemon with SIGKILL");
                Signals(None)
            }
        }
    }

    /// Reloads the configuration on each SIGHUP; resolves with the name of the first SIGINT or
    /// SIGTERM.
    async fn wait(self, scheduler: &Arc<Scheduler>) -> &'static str {
        let Some([mut int, mut term, mut hup]) = self.0 else { return std::future::pending().await };
        loop {
            tokio::select! {
                _ = int.recv() => return "SIGINT",
                _ = term.recv() => return "SIGTERM",
                _ = hup.recv() => {
                    let s = scheduler.clone();
                    match actix_web::rt::task::spawn_blocking(move || s.reload()).await {
                        Ok(Ok(answer)) => tracing::info!("SIGHUP: reloaded: {answer}"),
                        Ok(Err(refusal)) => tracing::error!("SIGHUP: {refusal}"),
                        Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
                    }
                }
            }
        }
    }
}
