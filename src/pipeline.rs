//! One job from source to reports: starts the actors, waits for the input to drain, collects the
//! final states and checks the row accounting.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Addr, Arbiter, MailboxError};

use crate::actors::backpressure::Gate;
use crate::actors::checkpoint::{
    Checkpoint, CheckpointReport, Durability, FinishCheckpoint, JobFacts, Start, States,
};
use crate::actors::fetcher::{Fetch, FetchFrom, FetchReport, FetchSetup, Fetcher};
use crate::actors::parsers::ParsePool;
use crate::actors::replay::ReplaySource;
use crate::actors::router::Router;
use crate::actors::supervisor::{Failures, SharedSupervisor};
use crate::actors::task::{TaskActor, TaskState, TaskWiring};
use crate::config::Plan;
use crate::durable::store::Store;
use crate::durable::{Position, Snapshot};
use crate::error::{DataError, Error};
use crate::output::OutputDir;
use crate::progress::{self, Progress};
use crate::report::{Outcome, PipelineStats};
use crate::source::{OpenOptions, ResumeFrom};
use crate::tasks::forecast::Forecast;
use crate::tasks::hottest::Hottest;
use crate::tasks::window::Window;

/// Runs a job to completion on a fresh actix system, from the start or from a checkpoint; blocks
/// the calling thread.
pub fn run_blocking(
    plan: &Plan,
    out: &OutputDir,
    hooks: &Hooks,
    resume: Option<Snapshot>,
    supervisor: &SharedSupervisor,
) -> Result<Outcome, Error> {
    let mut parts = run_parts_blocking(plan, out, hooks, Extent { resume, until: None }, supervisor)?;
    let outcome = outcome(plan, &mut parts);
    check_rows(plan, &parts.checkpoint.examples, &parts.checkpoint.rejects_path, &outcome)?;
    tracing::debug!(rows = outcome.rows.processed, secs = outcome.elapsed_secs, "job finished");
    Ok(outcome)
}

/// Runs one piece of a source (a cluster worker's byte range) and answers its raw partial states
/// and counts, without the whole-job checks (a piece may hold no rows at all); blocks the calling
/// thread.
pub fn run_parts_blocking(
    plan: &Plan,
    out: &OutputDir,
    hooks: &Hooks,
    extent: Extent,
    supervisor: &SharedSupervisor,
) -> Result<Parts, Error> {
    if let Some(system) = &hooks.system {
        return run_on_arbiter(system, plan, out, hooks, extent, supervisor);
    }
    let system = actix::System::new();
    system.block_on(run_parts(plan, out, hooks, extent, supervisor))
}

/// Where a run reads: from the start or a checkpoint's position, to the end or to a byte.
#[derive(Debug, Clone, Default)]
pub struct Extent {
    /// Continue from this snapshot (its position, header, counts and states); `None` starts at
    /// byte 0 and reads the header.
    pub resume: Option<Snapshot>,
    /// Stop before this byte (a line start), or read to the end.
    pub until: Option<u64>,
}

/// What one run produced before any whole-job check: the checkpoint actor's final accounting and
/// states, what the fetcher saw, and how the pipeline behaved.
#[derive(Debug)]
pub struct Parts {
    /// Final row counts, states, rejects file and examples.
    pub checkpoint: CheckpointReport,
    /// Bytes, chunks, leading blank lines and the schema.
    pub fetched: FetchReport,
    /// Back-pressure figures.
    pub stats: PipelineStats,
    /// Seconds the run took.
    pub elapsed_secs: f64,
}

/// Runs one attempt on a fresh arbiter of `system` (the daemon's) and stops that arbiter after
/// it, so that, as with a fresh system per attempt, nothing of a failed attempt outlives it.
fn run_on_arbiter(
    system: &actix::System,
    plan: &Plan,
    out: &OutputDir,
    hooks: &Hooks,
    extent: Extent,
    supervisor: &SharedSupervisor,
) -> Result<Parts, Error> {
    actix::System::set_current(system.clone());
    let arbiter = Arbiter::new();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (plan, out, hooks, supervisor) = (plan.clone(), out.clone(), hooks.clone(), supervisor.clone());
    arbiter.spawn_fn(move || {
        actix::spawn(async move {
            let _ = tx.send(run_parts(&plan, &out, &hooks, extent, &supervisor).await);
        });
    });
    let result = rx.recv().unwrap_or_else(|_| {
        Err(Error::Internal("the job's arbiter stopped before the pipeline answered".into()))
    });
    arbiter.stop();
    let _ = arbiter.join();
    result
}

/// How a caller watches and steers a run, so that the CLI and the daemon drive the same pipeline:
/// the CLI shows progress and stops on SIGINT/SIGTERM; the daemon reads progress for its API,
/// stops a job on cancel or shutdown, and bounds the chunks in flight across all its jobs.
#[derive(Debug, Clone)]
pub struct Hooks {
    /// How progress is shown on the terminal.
    pub display: progress::Display,
    /// Counters the caller reads; `None` makes fresh ones per run. When given, they are set to
    /// the resume point at the start of each run, so they stay absolute across restarts.
    pub progress: Option<Arc<Progress>>,
    /// Stop requests (`Some(signal)`): the graceful stop that checkpoints. `None` listens for
    /// SIGINT and SIGTERM instead.
    pub stop: Option<tokio::sync::watch::Receiver<Option<i32>>>,
    /// A bound on chunks in flight shared with other jobs (each chunk also holds one of its
    /// permits), or `None` for this job's own bound only.
    pub shared_gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Run each attempt on a fresh arbiter of this actix system (the daemon's, which also serves
    /// its HTTP API), or `None` for a fresh system per attempt (`wxflow run`).
    pub system: Option<actix::System>,
}

impl Hooks {
    /// What `wxflow run` uses: the given display, fresh counters, signals, no shared bound, a
    /// fresh actix system per attempt.
    pub fn cli(display: progress::Display) -> Hooks {
        Hooks { display, progress: None, stop: None, shared_gate: None, system: None }
    }
}

/// The actors of one job.
struct Topology {
    arbiters: Vec<Arbiter>,
    checkpoint: Addr<Checkpoint>,
    router: Addr<Router>,
    supervisor: SharedSupervisor,
}

/// Runs a job (or a piece of one) inside an actix system, up to its final states.
async fn run_parts(
    plan: &Plan,
    out: &OutputDir,
    hooks: &Hooks,
    Extent { resume, until }: Extent,
    supervisor: &SharedSupervisor,
) -> Result<Parts, Error> {
    let started = Instant::now();
    let span = tracing::info_span!("job", source = %plan.source.describe());
    let _enter = span.enter();
    tracing::debug!(actix_system = actix::System::current().id(), "pipeline starts");
    let progress = match &hooks.progress {
        Some(p) => {
            p.restart_at(
                resume.as_ref().map_or((0, 0, 0), |s| (s.position.byte, s.rows.processed, s.rows.rejected)),
            );
            p.clone()
        }
        None => Progress::new(),
    };
    let _reporter = progress::start(progress.clone(), hooks.display);
    let gate = Gate::with_shared(plan.pipeline.in_flight, hooks.shared_gate.clone());
    let facts = Arc::new(JobFacts::default());
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<Error>(1);
    let faults = Arc::new(plan.faults.armed.clone());
    let wiring =
        Wiring { faults: faults.clone(), failures: fatal_tx.clone(), supervisor: supervisor.clone() };
    let topology = start_actors(plan, out, progress.clone(), facts.clone(), resume.as_ref(), wiring)?;
    let pool = ParsePool::start(
        plan.pipeline.parse_workers,
        plan.pipeline.in_flight,
        topology.router.clone(),
        fatal_tx,
        faults,
    );
    let stop_rx = match &hooks.stop {
        Some(stop) => stop.clone(),
        None => {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(None);
            listen_for_signals(stop_tx);
            stop_rx
        }
    };
    let fetcher =
        start_fetcher(plan, gate.clone(), progress, &topology, facts, (resume, until), stop_rx).start();

    let fetched = tokio::select! {
        r = fetcher.send(Fetch { jobs: pool.sender() }) => r.map_err(|e| lost("fetcher", e))?,
        Some(e) = fatal_rx.recv() => Err(e),
    };
    let fetched = match fetched {
        Ok(f) => f,
        Err(Error::Interrupted { signal, .. }) => {
            return stop_gracefully(plan, topology, pool, &gate, signal).await
        }
        Err(e) => {
            topology.stop();
            return Err(e);
        }
    };
    tokio::select! {
        () = gate.drain() => {}
        Some(e) = fatal_rx.recv() => {
            topology.stop();
            return Err(e);
        }
    }
    pool.shutdown();
    let checkpoint = topology.checkpoint.send(FinishCheckpoint).await.map_err(|e| lost("checkpoint", e));
    topology.stop();
    let stats = PipelineStats {
        bytes: fetched.bytes,
        chunks: fetched.chunks,
        chunk_size: plan.pipeline.chunk_size,
        parse_workers: plan.pipeline.parse_workers,
        in_flight_bound: gate.bound(),
        max_in_flight: gate.max_in_flight(),
        fetcher_stalls: gate.stalls(),
    };
    Ok(Parts { checkpoint: checkpoint??, fetched, stats, elapsed_secs: started.elapsed().as_secs_f64() })
}

fn start_fetcher(
    plan: &Plan,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
    topology: &Topology,
    facts: Arc<JobFacts>,
    (resume, until): (Option<Snapshot>, Option<u64>),
    stop: tokio::sync::watch::Receiver<Option<i32>>,
) -> Fetcher {
    let p = &plan.pipeline;
    let resume = resume.map(|s| FetchFrom {
        from: ResumeFrom {
            offset: s.position.byte,
            until,
            expect: s.source,
            dir: plan.checkpoint.dir.display().to_string(),
        },
        position: s.position,
        header: s.header,
        leading_blank: s.leading_blank,
    });
    let setup = FetchSetup {
        spec: plan.source.clone(),
        open: open_options(plan),
        sizes: (p.chunk_size, p.max_line),
        columns: plan.columns.clone(),
        epochs: (plan.checkpoint.every_chunks, plan.checkpoint.every_secs),
        closes: topology.router.clone().recipient(),
        facts,
        faults: plan.faults.armed.clone(),
        resume,
        retries: (p.fetch_retries, p.retry_backoff),
        supervisor: topology.supervisor.clone(),
        stop,
    };
    Fetcher::new(setup, gate, progress)
}

/// Turns SIGINT and SIGTERM into a stop request for the fetcher, until dropped.
fn listen_for_signals(stop: tokio::sync::watch::Sender<Option<i32>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        tracing::warn!("cannot listen for SIGINT/SIGTERM; a signal will stop the run without a checkpoint");
        return;
    };
    actix::spawn(async move {
        let signal = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        let _ = stop.send(Some(signal));
    });
}

/// After a stop request: lets the chunks in flight finish, waits for the checkpoint of everything
/// processed, and reports where it stands.
async fn stop_gracefully(
    plan: &Plan,
    topology: Topology,
    pool: ParsePool,
    gate: &Gate,
    signal: i32,
) -> Result<Parts, Error> {
    gate.drain().await;
    pool.shutdown();
    let report = topology.checkpoint.send(FinishCheckpoint).await.map_err(|e| lost("checkpoint", e));
    topology.stop();
    let report = report??;
    let saved = if plan.checkpoint.enabled {
        format!("the checkpoint in {} covers everything up to it;", plan.checkpoint.dir.display())
    } else {
        "checkpoints are disabled (checkpoint.enabled = false), so nothing was saved;".to_string()
    };
    Err(Error::Interrupted { signal, byte: report.watermark, saved })
}

/// How sources are opened: by the fetcher, and again by a restarted task actor's replay.
pub fn open_options(plan: &Plan) -> OpenOptions {
    let p = &plan.pipeline;
    OpenOptions {
        block_size: p.chunk_size.clamp(64 << 10, 64 << 20),
        connect_timeout: p.connect_timeout,
        read_timeout: p.read_timeout,
        connections: p.connections,
        map_files: p.map_files,
    }
}

/// What every actor of a job shares for failures.
struct Wiring {
    faults: Arc<crate::faults::Faults>,
    failures: Failures,
    supervisor: SharedSupervisor,
}

fn start_actors(
    plan: &Plan,
    out: &OutputDir,
    progress: Arc<Progress>,
    facts: Arc<JobFacts>,
    resume: Option<&Snapshot>,
    Wiring { faults, failures, supervisor }: Wiring,
) -> Result<Topology, Error> {
    let (start, writer) = match resume {
        Some(s) => (
            Start {
                position: s.position,
                rows: s.rows,
                states: States {
                    hottest: s.hottest.clone(),
                    window: s.window.clone(),
                    forecast: s.forecast.clone(),
                },
            },
            // A piece of a cluster job starts from a snapshot with no rejects file yet.
            if s.rejects_len == 0 { out.rejects()? } else { out.rejects_resume(s.rejects_len)? },
        ),
        None => (
            Start {
                position: Position { byte: 0, chunk: 0, line: 1 },
                rows: Default::default(),
                states: empty_states(plan),
            },
            out.rejects()?,
        ),
    };
    let durability = Durability {
        store: Store::new(plan.checkpoint.dir.clone()),
        enabled: plan.checkpoint.enabled,
        settings: plan.result_settings(),
        runs_before: resume.map_or(0, |s| s.runs),
        checkpoints_before: resume.map_or(0, |s| s.checkpoints),
        facts: facts.clone(),
        faults: faults.clone(),
        failures: failures.clone(),
        supervisor: supervisor.clone(),
    };
    let replay = Arc::new(ReplaySource {
        spec: plan.source.clone(),
        open: open_options(plan),
        facts,
        dir: plan.checkpoint.dir.display().to_string(),
    });
    let checkpoint = Checkpoint::new(writer, start, progress, durability).start();
    let sink = checkpoint.clone().recipient();
    let empty = empty_states(plan);
    let arbiters: Vec<Arbiter> = (0..3).map(|_| Arbiter::new()).collect();
    let wiring = || TaskWiring {
        sink: sink.clone(),
        faults: faults.clone(),
        failures: failures.clone(),
        supervisor: supervisor.clone(),
        replay: replay.clone(),
    };
    let hottest = start_task(&arbiters[0], "hottest", empty.hottest, wiring());
    let window = start_task(&arbiters[1], "window", empty.window, wiring());
    let forecast = start_task(&arbiters[2], "forecast", empty.forecast, wiring());
    let router = Router::new(
        vec![
            (hottest.clone().recipient(), hottest.recipient()),
            (window.clone().recipient(), window.recipient()),
            (forecast.clone().recipient(), forecast.recipient()),
        ],
        (checkpoint.clone().recipient(), checkpoint.clone().recipient()),
        faults,
        failures,
    )
    .start();
    Ok(Topology { arbiters, checkpoint, router, supervisor })
}

/// Fresh analysis states for this plan.
pub fn empty_states(plan: &Plan) -> States {
    States {
        hottest: Hottest::default(),
        window: Window::new(plan.window.clone()),
        forecast: Forecast::new(plan.forecast.clone()),
    }
}

fn start_task<A: TaskState>(
    arbiter: &Arbiter,
    name: &'static str,
    empty: A,
    wiring: TaskWiring,
) -> Addr<TaskActor<A>> {
    TaskActor::start_in_arbiter(&arbiter.handle(), move |_| TaskActor::new(name, empty, wiring))
}

impl Topology {
    /// Stops the task actors' threads and waits for them, so that nothing of this attempt is
    /// still running when a restarted pipeline starts.
    fn stop(self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        for arbiter in self.arbiters {
            let _ = arbiter.join();
        }
    }
}

fn lost(actor: &str, e: MailboxError) -> Error {
    Error::Internal(format!("the {actor} actor stopped before answering ({e})"))
}

/// The figures and reports of a finished run, before the whole-job checks. The final states move
/// into the outcome (`parts` keeps empty ones): the hottest state goes on to draw `hottest.svg`,
/// and a copy of it would be 4 bytes for every day the input spans.
pub fn outcome(plan: &Plan, parts: &mut Parts) -> Outcome {
    let states = std::mem::replace(&mut parts.checkpoint.states, empty_states(plan));
    let cp = &parts.checkpoint;
    let mut rows = cp.rows;
    rows.read += parts.fetched.leading_blank;
    rows.blank += parts.fetched.leading_blank;
    let mut o = outcome_of(plan, states, rows, parts.stats, parts.elapsed_secs);
    (o.checkpoints, o.retries) = (cp.checkpoints, parts.fetched.retries);
    o
}

/// The figures and reports of final states and counts (of one run, or of merged ranges).
pub fn outcome_of(
    plan: &Plan,
    states: States,
    rows: crate::report::RowCounts,
    stats: PipelineStats,
    elapsed_secs: f64,
) -> Outcome {
    let States { hottest, window, forecast } = states;
    Outcome {
        source: plan.source.describe(),
        rows,
        hottest: hottest.report(&plan.hottest),
        window: window.report(),
        forecast: forecast.report(),
        method: plan.forecast.method.name(),
        pipeline: stats,
        elapsed_secs,
        resumed: None, // the job knows where its run resumed (job::execute)
        checkpoints: 0,
        retries: 0,
        restarts: Default::default(),
        daily: hottest,
        window_outside: forecast.readings(),
        window_hi_low: window.readings(),
    }
}

/// Enforces the accounting invariant, "there is data", and `job.max_reject_ratio` (naming the
/// first rejects and where all of them are).
pub fn check_rows(
    plan: &Plan,
    examples: &[crate::parse::Reject],
    rejects_path: &std::path::Path,
    o: &Outcome,
) -> Result<(), Error> {
    let r = o.rows;
    if r.read != r.processed + r.rejected + r.blank {
        return Err(Error::Internal(format!("row accounting does not add up: {r:?}")));
    }
    if r.processed + r.rejected == 0 {
        return Err(DataError::HeaderOnly { bytes: o.pipeline.bytes }.into());
    }
    let ratio = r.rejected as f64 / (r.processed + r.rejected) as f64;
    if ratio > plan.max_reject_ratio {
        let examples = examples
            .iter()
            .map(|x| format!("  line {}: {}: {}", x.line, x.reason, x.raw))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(DataError::TooManyRejects {
            rejected: r.rejected,
            rows: r.processed + r.rejected,
            ratio: ratio * 100.0,
            max: plan.max_reject_ratio * 100.0,
            examples: format!("First rejected rows:\n{examples}"),
            rejects: rejects_path.display().to_string(),
        }
        .into());
    }
    Ok(())
}
