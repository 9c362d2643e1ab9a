//! The scheduler: the registry, the FIFO queue and the running jobs behind one lock. At most
//! `daemon.max_concurrent_jobs` run at once, each on its own thread through [`crate::job::execute`]
//! (the path `wxflow run` takes), sharing one in-flight bound (`daemon.in_flight_total`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::sync::{watch, Semaphore};

use super::registry::{now, JobRecord, Registry, State};
use super::{security, Refusal};
use crate::actors::supervisor::{SharedSupervisor, Supervisor};
use crate::cluster::coordinator::{ClusterJob, Coordinated};
use crate::cluster::{Cluster, Host};
use crate::config::{self, DaemonPlan, Layers, Override, Plan};
use crate::error::Error;
use crate::job::{self, JobControl};
use crate::pipeline::Hooks;
use crate::progress::{Display, Progress};

/// The configuration file as last validated, in `daemon.state_dir`: jobs are planned from this
/// copy, so an edited file takes effect only once a reload has accepted it.
const CONFIG_SNAPSHOT: &str = "config.toml";

/// Keys a job may not set: the daemon decides where a job reads, writes and checkpoints.
const RESERVED: [&str; 3] = ["job.source", "job.out", "checkpoint.dir"];

/// A job submission, as the API receives it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// URL or local path under `daemon.input_roots`.
    pub source: String,
    /// Output name under `daemon.output_root`.
    pub output: String,
    /// Settings as `"section.key": value`, like `--set`.
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// A running job's handles.
struct Running {
    stop: watch::Sender<Option<i32>>,
    progress: Arc<Progress>,
    record: SharedSupervisor,
    cancel: bool,
    checkpoint: PathBuf,
    sample: (Instant, u64, u64, f64, f64),
}

struct Inner {
    registry: Registry,
    queue: VecDeque<String>,
    running: HashMap<String, Running>,
    stopping: bool,
}

/// The daemon's job state, shared by the API, the signal handler and the job threads.
pub struct Scheduler {
    inner: Mutex<Inner>,
    /// The validated `[daemon]` section in force.
    limits: Mutex<DaemonPlan>,
    config_file: Option<PathBuf>,
    output_root: PathBuf,
    shared_gate: Arc<Semaphore>,
    system: std::sync::OnceLock<actix::System>,
    /// Counters for `/metrics`.
    pub metrics: super::metrics::Metrics,
    /// This node's cluster membership, when `cluster.nats_url` is set.
    cluster: std::sync::OnceLock<Arc<Cluster>>,
}

impl Scheduler {
    /// Opens the registry and queues what was queued or running when the daemon last stopped.
    pub fn open(plan: &DaemonPlan, config_file: Option<PathBuf>) -> Result<Arc<Scheduler>, Error> {
        let usage = |what: &str, e: std::io::Error| Error::Usage(format!("{what}: {e}"));
        let output_root = security::canonical_dir(&plan.output_root).map_err(|e| {
            usage(&format!("cannot create daemon.output_root {}", plan.output_root.display()), e)
        })?;
        let input_roots = canonical_roots(&plan.input_roots).map_err(Error::Usage)?;
        let mut registry = Registry::open(&plan.state_dir).map_err(|e| Error::Usage(e.to_string()))?;
        let mut pending: Vec<&mut JobRecord> =
            registry.jobs.iter_mut().filter(|j| !j.state.is_final()).collect();
        pending.sort_by_key(|j| (j.state != State::Running, j.started.unwrap_or(0), j.seq));
        let queue: VecDeque<String> = pending.iter().map(|j| j.id.clone()).collect();
        for job in pending {
            job.state = State::Queued; // running ones resume from their checkpoints when they start
        }
        if !queue.is_empty() {
            tracing::info!(
                "{} job(s) from before the restart are queued again (running ones first)",
                queue.len()
            );
        }
        if let Some(file) = &config_file {
            snapshot_config(&plan.state_dir, file).map_err(|r| Error::Usage(r.to_string()))?;
        }
        let scheduler = Arc::new(Scheduler {
            inner: Mutex::new(Inner { registry, queue, running: HashMap::new(), stopping: false }),
            limits: Mutex::new(DaemonPlan { input_roots, ..plan.clone() }),
            config_file,
            output_root,
            shared_gate: Arc::new(Semaphore::new(plan.in_flight_total)),
            system: std::sync::OnceLock::new(),
            metrics: super::metrics::Metrics::new(),
            cluster: std::sync::OnceLock::new(),
        });
        Ok(scheduler)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the queued jobs (those from before a restart first), once the API is up; jobs run
    /// on arbiters of `system`, the actix system that serves the API.
    pub fn start_queued(self: &Arc<Self>, system: actix::System) {
        let _ = self.system.set(system);
        self.schedule(&mut self.lock());
    }

    /// Joins the cluster of `plan` (connecting to its NATS server): from then on this daemon
    /// pulls range work, and coordinates the jobs it accepts through the cluster.
    pub fn join_cluster(self: &Arc<Self>, plan: crate::config::ClusterPlan) -> Result<(), Error> {
        let host = Arc::new(DaemonHost { scheduler: Arc::downgrade(self) });
        let cluster = Cluster::join(plan, host)?;
        let _ = self.cluster.set(cluster);
        Ok(())
    }

    /// This node's cluster membership, if any.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// The `[daemon]` limits in force.
    pub fn limits(&self) -> DaemonPlan {
        self.limits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the daemon is shutting down (`/readyz`).
    pub fn stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Checks and queues a job; answers its view.
    pub fn submit(self: &Arc<Self>, s: Submission) -> Result<Value, Refusal> {
        let limits = self.limits();
        let (source, dir) = self.check(&limits, &s)?;
        let mut inner = self.lock();
        admit(&inner, &limits)?;
        if let Some(other) = inner.registry.jobs.iter().find(|j| j.output == s.output && !j.state.is_final())
        {
            let detail = format!("job {} writes to {:?}; choose another output name", other.id, s.output);
            return Err(Refusal::new(409, "output in use", detail));
        }
        if std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
            let detail = format!("{} already holds files; choose another output name", dir.display());
            return Err(Refusal::new(409, "output not empty", detail));
        }
        security::create_output(&self.output_root, &dir)?;
        let (id, seq) = inner.registry.next_id();
        // Cluster-wide ids: every node numbers its own jobs.
        let id = match self.cluster() {
            Some(c) => format!("{}-{id}", c.plan.node_id),
            None => id,
        };
        inner.registry.jobs.push(JobRecord::queued(id.clone(), seq, source, s.output, s.settings));
        save(&inner)?;
        inner.queue.push_back(id.clone());
        tracing::info!(job = %id, "queued");
        self.schedule(&mut inner);
        Ok(view(&mut inner, &id).expect("just added"))
    }

    /// Checks a submission's source, output name and settings, reporting every problem at once;
    /// answers the checked source and the output folder (not created yet).
    fn check(&self, limits: &DaemonPlan, s: &Submission) -> Result<(String, PathBuf), Refusal> {
        let mut problems = Vec::new();
        let mut note =
            |refusal: Refusal| problems.push(refusal.detail.as_str().unwrap_or_default().to_string());
        let source = security::source(&s.source, &limits.input_roots).map_err(&mut note).ok();
        let dir = security::output_dir(&self.output_root, &s.output).map_err(&mut note).ok();
        let placeholder = (String::from("http://127.0.0.1/"), self.output_root.join("unnamed"));
        let (plan_source, plan_dir) =
            (source.clone().unwrap_or(placeholder.0), dir.clone().unwrap_or(placeholder.1));
        if let Err(more) = self.plan_for(&plan_source, &plan_dir, &s.settings) {
            problems.extend(more);
        }
        match (source, dir) {
            (Some(source), Some(dir)) if problems.is_empty() => Ok((source, dir)),
            _ => Err(Refusal { status: 400, error: "invalid job".into(), detail: json!(problems) }),
        }
    }

    /// The plan a job runs with: the daemon's configuration layers plus the job's settings.
    fn plan_for(
        &self,
        source: &str,
        dir: &std::path::Path,
        settings: &Map<String, Value>,
    ) -> Result<Plan, Vec<String>> {
        let mut problems = Vec::new();
        let mut request = Vec::new();
        for (key, value) in settings {
            if RESERVED.contains(&key.as_str()) {
                problems.push(format!(
                    "{key}: set by the daemon (from the request's source and output), not by settings"
                ));
            } else if let Some(v) = to_config(value) {
                request.push((key.clone(), v));
            } else {
                problems.push(format!("{key} = {value}: must be a string, number, boolean or list of them"));
            }
        }
        let set = |key: &str, value: String| Override { key: key.into(), value, flag: "daemon".into() };
        let overrides = vec![
            set("job.source", source.to_string()),
            set("job.out", dir.display().to_string()),
            set("checkpoint.dir", String::new()),
        ];
        let file = self.config_file.as_ref().map(|_| self.limits().state_dir.join(CONFIG_SNAPSHOT));
        let mut layers = Layers::from_process(file, overrides);
        layers.request = request;
        match config::resolve(&layers) {
            Ok(r) if problems.is_empty() => {
                if r.plan.faults.armed.armed().iter().any(|f| matches!(f, crate::faults::Fault::Abort { .. }))
                {
                    return Err(vec!["faults.inject: abort@N would abort the whole daemon and every job in it; use panic:ACTOR@N".into()]);
                }
                let mut plan = r.plan;
                // A mapped file truncated mid-job raises SIGBUS, which ends the process: here, the
                // daemon and every job in it. Its jobs read files with `read`.
                plan.pipeline.map_files = false;
                Ok(plan)
            }
            Ok(_) => Err(problems),
            Err(errors) => {
                problems.extend(errors.0.iter().map(|i| i.to_string()));
                Err(problems)
            }
        }
    }

    /// Whether any job (in any state) writes to `output`, or its folder already exists.
    pub fn has_output(&self, output: &str) -> bool {
        self.lock().registry.jobs.iter().any(|j| j.output == output) || self.output_root.join(output).exists()
    }

    /// Views of every job, oldest first.
    pub fn list(&self) -> Value {
        let mut inner = self.lock();
        let ids: Vec<String> = inner.registry.jobs.iter().map(|j| j.id.clone()).collect();
        Value::Array(ids.iter().filter_map(|id| view(&mut inner, id)).collect())
    }

    /// One job's view.
    pub fn get(&self, id: &str) -> Result<Value, Refusal> {
        if let Some(found) = view(&mut self.lock(), id) {
            return Ok(found);
        }
        // Accepted by another node of the cluster: its shared record answers.
        self.cluster().and_then(|c| c.record(id)).ok_or_else(|| not_found(id))
    }

    /// A job's output folder, and whether it succeeded.
    pub fn output_of(&self, id: &str) -> Result<(PathBuf, State), Refusal> {
        let inner = self.lock();
        let job = inner.registry.get(id).ok_or_else(|| not_found(id))?;
        Ok((self.output_root.join(&job.output), job.state))
    }

    /// Cancels a job: a queued one at once, a running one by a graceful stop that checkpoints.
    pub fn cancel(&self, id: &str) -> Result<Value, Refusal> {
        let mut inner = self.lock();
        let state = inner.registry.get(id).ok_or_else(|| not_found(id))?.state;
        match state {
            State::Queued => {
                inner.queue.retain(|q| q != id);
                let job = inner.registry.get_mut(id).expect("checked");
                job.state = State::Cancelled;
                job.finished = Some(now());
                save(&inner)?;
            }
            State::Running => {
                let running = inner.running.get_mut(id).expect("running jobs have handles");
                running.cancel = true;
                let _ = running.stop.send(Some(15));
            }
            done => {
                return Err(Refusal::new(409, "already finished", format!("job {id} is {}", done.name())));
            }
        }
        Ok(view(&mut inner, id).expect("exists"))
    }

    /// Queues a failed or cancelled job again; it continues from its checkpoint.
    pub fn resume(self: &Arc<Self>, id: &str) -> Result<Value, Refusal> {
        let limits = self.limits();
        let mut inner = self.lock();
        let state = inner.registry.get(id).ok_or_else(|| not_found(id))?.state;
        if !matches!(state, State::Failed | State::Cancelled) {
            return Err(Refusal::new(
                409,
                "cannot resume",
                format!("job {id} is {}; only failed or cancelled jobs resume", state.name()),
            ));
        }
        admit(&inner, &limits)?;
        let job = inner.registry.get_mut(id).expect("checked");
        job.state = State::Queued;
        job.error = None;
        job.exit_code = None;
        job.finished = None;
        save(&inner)?;
        inner.queue.push_back(id.to_string());
        self.schedule(&mut inner);
        Ok(view(&mut inner, id).expect("exists"))
    }

    /// Starts queued jobs while slots are free.
    fn schedule(self: &Arc<Self>, inner: &mut Inner) {
        let max = self.limits().max_concurrent_jobs;
        while !inner.stopping && inner.running.len() < max {
            let Some(id) = inner.queue.pop_front() else { break };
            self.start(inner, &id);
        }
    }

    fn start(self: &Arc<Self>, inner: &mut Inner, id: &str) {
        let job = inner.registry.get(id).expect("queued jobs exist").clone();
        let dir = self.output_root.join(&job.output);
        let plan = match self.plan_for(&job.source, &dir, &job.settings) {
            Ok(plan) => plan,
            Err(problems) => {
                let why = format!("the configuration no longer accepts this job: {}", problems.join("; "));
                return fail_to_start(inner, id, why);
            }
        };
        let (stop, stop_rx) = watch::channel(None);
        let progress = Progress::new();
        let hooks = Hooks {
            display: Display::Off,
            progress: Some(progress.clone()),
            stop: Some(stop_rx),
            shared_gate: Some(self.shared_gate.clone()),
            system: self.system.get().cloned(),
        };
        let restarts = Arc::new(Mutex::new(Supervisor::new(plan.supervision.clone())));
        let control = JobControl { fresh: false, force: true, hooks, record: Some(restarts.clone()) };
        let record = inner.registry.get_mut(id).expect("exists");
        record.state = State::Running;
        record.started = Some(now());
        record.error = None;
        record.exit_code = None;
        let _ = save(inner);
        let checkpoint = plan.checkpoint.dir.join("checkpoint.bin");
        let sample = (Instant::now(), 0, 0, 0.0, 0.0);
        inner.running.insert(
            id.to_string(),
            Running { stop, progress, record: restarts, cancel: false, checkpoint, sample },
        );
        tracing::info!(job = %id, source = %job.source, "started");
        let (me, id) = (self.clone(), id.to_string());
        let cluster = self.cluster().cloned().map(|c| {
            let shared = ClusterJob {
                id: id.clone(),
                source: job.source.clone(),
                output: job.output.clone(),
                settings: job.settings.clone(),
                created: job.created,
            };
            (c, shared)
        });
        let spawned = std::thread::Builder::new().name(format!("job-{id}")).spawn({
            let id = id.clone();
            move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cluster {
                    Some((c, shared)) => {
                        let (progress, stop) = (control.hooks.progress.clone(), control.hooks.stop.clone());
                        c.coordinate(shared, &plan, progress.unwrap_or_else(Progress::new), stop)
                    }
                    None => job::execute(&plan, &control).map(Coordinated::Done),
                }))
                .unwrap_or_else(|p| Err(Error::Internal(crate::actors::supervisor::panic_text(p.as_ref()))));
                me.finished(&id, result);
            }
        });
        if let Err(e) = spawned {
            inner.running.remove(&id);
            fail_to_start(inner, &id, format!("cannot start a thread for the job: {e}"));
        }
    }

    /// Records how a job ended and starts the next ones.
    fn finished(self: &Arc<Self>, id: &str, result: Result<Coordinated, Error>) {
        let mut inner = self.lock();
        let Some(running) = inner.running.remove(id) else { return };
        let stopping = inner.stopping;
        let (bytes, total, rows, rejected) = running.progress.read();
        let (restarts, here) = {
            let record = running.record.lock().unwrap_or_else(|e| e.into_inner());
            (record.counts(), record.counts_here())
        };
        self.metrics.actor_restarts(&here);
        let job = inner.registry.get_mut(id).expect("running jobs exist");
        (job.bytes, job.total_bytes, job.rows, job.rejected, job.restarts) =
            (bytes, total, rows, rejected, restarts);
        match result {
            Ok(Coordinated::Elsewhere(_)) if stopping => {
                tracing::info!(job = %id, "left to the cluster for shutdown; another node finishes it");
                let _ = save(&inner);
                return;
            }
            Ok(Coordinated::Elsewhere(record)) => {
                job.state = match record.state.as_str() {
                    "succeeded" => State::Succeeded,
                    "cancelled" => State::Cancelled,
                    _ => State::Failed,
                };
                (job.rows, job.rejected, job.bytes, job.total_bytes) = (
                    record.progress.rows,
                    record.rejected,
                    record.progress.bytes,
                    record.progress.total_bytes,
                );
                (job.error, job.exit_code) = (record.error.clone(), record.exit_code);
                tracing::info!(job = %id, node = %record.cluster.coordinator, "finished on another node");
            }
            Ok(Coordinated::Done(done)) => {
                let o = &done.outcome;
                job.state = State::Succeeded;
                job.rejected = o.rows.rejected;
                job.rows = o.rows.processed;
                self.metrics.job_succeeded(o);
                tracing::info!(job = %id, rows = o.rows.processed, "succeeded");
            }
            Err(Error::Interrupted { byte, .. }) if stopping && !running.cancel => {
                tracing::info!(job = %id, byte, "checkpointed for shutdown; resumes when the daemon starts again");
                let _ = save(&inner);
                return;
            }
            Err(Error::Interrupted { byte, .. }) => {
                job.state = State::Cancelled;
                job.error = Some(format!("cancelled at byte {byte}; the checkpoint is kept: POST /v1/jobs/{id}/resume continues it"));
            }
            Err(e) => {
                job.state = State::Failed;
                job.exit_code = Some(e.exit_code() as u8);
                job.error = Some(e.to_string());
                tracing::warn!(job = %id, "failed: {e}");
            }
        }
        job.finished = Some(now());
        inner.registry.prune(self.limits().keep_finished_jobs);
        let _ = save(&inner);
        self.schedule(&mut inner);
    }

    /// Stops accepting jobs and checkpoints the running ones; waits for them at most `timeout`.
    /// Returns how many were still running then.
    pub fn shutdown(&self, timeout: Duration) -> usize {
        {
            let mut inner = self.lock();
            inner.stopping = true;
            for running in inner.running.values() {
                let _ = running.stop.send(Some(15));
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.lock().running.len();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Re-reads the configuration file (SIGHUP, `POST /v1/reload`): an invalid file is refused
    /// and the old one kept; otherwise the limits, input roots and job defaults apply to jobs
    /// started from now on. Where to listen, the token and the folders need a restart.
    pub fn reload(self: &Arc<Self>) -> Result<Value, Refusal> {
        let Some(file) = &self.config_file else {
            return Err(Refusal::new(409, "nothing to reload", "the daemon was started without --config"));
        };
        let old = self.limits();
        let candidate = old.state_dir.join(format!("{CONFIG_SNAPSHOT}.candidate"));
        std::fs::copy(file, &candidate).map_err(|e| {
            Refusal::bad_request("cannot read the configuration", format!("{}: {e}", file.display()))
        })?;
        let resolved = config::resolve(&Layers::from_process(Some(candidate.clone()), Vec::new()));
        let _ = std::fs::remove_file(&candidate);
        let new = resolved
            .map_err(|e| Refusal {
                status: 400,
                error: "invalid configuration; the old one stays in force".into(),
                detail: json!(e
                    .0
                    .iter()
                    .map(|i| i
                        .to_string()
                        .replace(&candidate.display().to_string(), &file.display().to_string()))
                    .collect::<Vec<_>>()),
            })?
            .plan
            .daemon;
        let input_roots = canonical_roots(&new.input_roots)
            .map_err(|e| Refusal::bad_request("invalid configuration; the old one stays in force", e))?;
        snapshot_config(&old.state_dir, file)?;
        let mut restart = Vec::new();
        for (key, changed) in [
            ("daemon.listen", new.listen != old.listen),
            ("daemon.auth_token", new.auth_token != old.auth_token),
            ("daemon.state_dir", new.state_dir != old.state_dir),
            ("daemon.output_root", new.output_root != old.output_root),
        ] {
            if changed {
                restart.push(key);
            }
        }
        self.resize_gate(old.in_flight_total, new.in_flight_total);
        let applied = DaemonPlan {
            listen: old.listen,
            auth_token: old.auth_token.clone(),
            state_dir: old.state_dir.clone(),
            output_root: old.output_root.clone(),
            input_roots,
            ..new
        };
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = applied.clone();
        tracing::info!("configuration reloaded from {}", file.display());
        if !restart.is_empty() {
            tracing::warn!("changes to {} apply only after a restart", restart.join(", "));
        }
        self.schedule(&mut self.lock());
        Ok(json!({
            "reloaded": file.display().to_string(),
            "max_concurrent_jobs": applied.max_concurrent_jobs,
            "max_queued_jobs": applied.max_queued_jobs,
            "in_flight_total": applied.in_flight_total,
            "restart_needed": restart,
        }))
    }

    /// Changes the shared in-flight bound: adds permits, or takes them out of circulation as
    /// chunks in flight return them.
    fn resize_gate(&self, old: usize, new: usize) {
        if new > old {
            self.shared_gate.add_permits(new - old);
        } else if new < old {
            let gone = self.shared_gate.forget_permits(old - new);
            let rest = (old - new - gone) as u32;
            if rest > 0 {
                let gate = self.shared_gate.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().build();
                    if let Ok(rt) = runtime {
                        if let Ok(permits) = rt.block_on(gate.acquire_many_owned(rest)) {
                            permits.forget();
                        }
                    }
                });
            }
        }
    }

    /// Jobs per state, chunks in flight across jobs, and each running job's checkpoint age.
    pub fn gauges(&self) -> super::metrics::Gauges {
        let inner = self.lock();
        let mut jobs: Vec<(&'static str, i64)> = State::ALL.iter().map(|s| (s.name(), 0)).collect();
        for j in &inner.registry.jobs {
            if let Some(slot) = jobs.iter_mut().find(|(n, _)| *n == j.state.name()) {
                slot.1 += 1;
            }
        }
        let total = self.limits().in_flight_total;
        let in_flight = total.saturating_sub(self.shared_gate.available_permits()) as i64;
        let ages = inner
            .running
            .iter()
            .filter_map(|(id, r)| {
                let modified = std::fs::metadata(&r.checkpoint).and_then(|m| m.modified()).ok()?;
                Some((id.clone(), modified.elapsed().map_or(0.0, |d| d.as_secs_f64())))
            })
            .collect();
        let cluster = self.cluster().map(|c| c.metrics.gather()).unwrap_or_default();
        super::metrics::Gauges { jobs, in_flight, checkpoint_ages: ages, cluster }
    }
}

/// Copies the configuration file to `state_dir` atomically: the version jobs are planned from.
fn snapshot_config(state_dir: &std::path::Path, file: &std::path::Path) -> Result<(), Refusal> {
    let bytes = std::fs::read(file).map_err(|e| {
        Refusal::bad_request("cannot read the configuration", format!("{}: {e}", file.display()))
    })?;
    let keep = |e: String| Refusal::internal("cannot keep the configuration", e);
    std::fs::create_dir_all(state_dir).map_err(|e| keep(format!("{}: {e}", state_dir.display())))?;
    super::registry::write_atomic(state_dir, CONFIG_SNAPSHOT, &bytes).map_err(|e| keep(e.to_string()))
}

/// Each input root, canonical (they must exist).
fn canonical_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    roots
        .iter()
        .map(|r| {
            r.canonicalize().map_err(|e| {
                format!(
                    "daemon.input_roots: {} cannot be used ({e}); create it or remove it from the list",
                    r.display()
                )
            })
        })
        .collect()
}

/// Marks a job that could not start as failed, saying why.
fn fail_to_start(inner: &mut Inner, id: &str, why: String) {
    tracing::warn!(job = %id, "cannot start: {why}");
    let job = inner.registry.get_mut(id).expect("queued jobs exist");
    job.state = State::Failed;
    job.error = Some(why);
    job.finished = Some(now());
    let _ = save(inner);
}

/// Refuses new work while stopping (503) or when the queue is full (429).
fn admit(inner: &Inner, limits: &DaemonPlan) -> Result<(), Refusal> {
    if inner.stopping {
        return Err(Refusal::new(
            503,
            "shutting down",
            "the daemon is stopping; submit again once it is back",
        ));
    }
    if inner.queue.len() >= limits.max_queued_jobs {
        let detail = format!(
            "{} jobs are queued, daemon.max_queued_jobs allows {}; retry later",
            inner.queue.len(),
            limits.max_queued_jobs
        );
        return Err(Refusal::new(429, "queue full", detail));
    }
    Ok(())
}

fn save(inner: &Inner) -> Result<(), Refusal> {
    inner.registry.save().map_err(|e| {
        tracing::error!("{e}");
        Refusal::internal("cannot save the job registry", e.to_string())
    })
}

fn not_found(id: &str) -> Refusal {
    Refusal::new(404, "no such job", format!("no job has id {id:?}; GET /v1/jobs lists them"))
}

/// A JSON value as a configuration value (objects and nulls have no meaning as a setting).
fn to_config(v: &Value) -> Option<::config::Value> {
    Some(match v {
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(items) => items.iter().map(to_config).collect::<Option<Vec<_>>>()?.into(),
        Value::Null | Value::Object(_) => return None,
    })
}

/// The API's view of a job, with live progress for a running one.
fn view(inner: &mut Inner, id: &str) -> Option<Value> {
    let job = inner.registry.get(id)?.clone();
    let (bytes, total, rows, rate, eta, restarts, rejected) = match inner.running.get_mut(id) {
        Some(r) => {
            let (bytes, total, rows, rejected) = r.progress.read();
            let restarts = r.record.lock().unwrap_or_else(|e| e.into_inner()).counts();
            let (at, b0, r0, mut rate_rows, mut rate_bytes) = r.sample;
            let secs = at.elapsed().as_secs_f64();
            if secs >= 1.0 {
                rate_rows = rows.saturating_sub(r0) as f64 / secs;
                rate_bytes = bytes.saturating_sub(b0) as f64 / secs;
                r.sample = (Instant::now(), bytes, rows, rate_rows, rate_bytes);
            }
            let eta =
                (total > bytes && rate_bytes > 0.0).then(|| ((total - bytes) as f64 / rate_bytes).round());
            (bytes, total, rows, rate_rows.round(), eta, restarts, rejected)
        }
        None => (job.bytes, job.total_bytes, job.rows, 0.0, None, job.restarts.clone(), job.rejected),
    };
    Some(json!({
        "id": job.id,
        "source": job.source,
        "output": job.output,
        "state": job.state.name(),
        "progress": {"bytes": bytes, "total_bytes": total, "rows": rows, "rows_per_sec": rate, "eta_secs": eta},
        "restarts": restarts,
        "rejected": rejected,
        "error": job.error,
        "exit_code": job.exit_code,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
    }))
}

/// What the daemon lends its cluster membership: job plans as this daemon makes them (its
/// configuration, input roots and job settings), and its actix system and in-flight bound.
struct DaemonHost {
    scheduler: std::sync::Weak<Scheduler>,
}

impl Host for DaemonHost {
    fn plan(
        &self,
        source: &str,
        out: &std::path::Path,
        settings: &Map<String, Value>,
    ) -> Result<Plan, String> {
        let s = self.scheduler.upgrade().ok_or("the daemon is stopping")?;
        let source = security::source(source, &s.limits().input_roots)
            .map_err(|r| r.detail.as_str().unwrap_or_default().to_string())?;
        s.plan_for(&source, out, settings).map_err(|problems| problems.join("; "))
    }

    fn hooks(&self) -> Hooks {
        let s = self.scheduler.upgrade();
        Hooks {
            display: Display::Off,
            progress: None,
            stop: None,
            shared_gate: s.as_ref().map(|s| s.shared_gate.clone()),
            system: s.as_ref().and_then(|s| s.system.get().cloned()),
        }
    }

    fn scratch(&self) -> PathBuf {
        self.scheduler.upgrade().map_or_else(std::env::temp_dir, |s| s.limits().state_dir.join("ranges"))
    }

    fn output_root(&self) -> PathBuf {
        self.scheduler.upgrade().map_or_else(std::env::temp_dir, |s| s.output_root.clone())
    }
}
