//! One job from source to reports: starts the actors, waits for the input to drain, collects the
//! final states and checks the row accounting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter, MailboxError};

use crate::actors::backpressure::Gate;
use crate::actors::checkpoint::{Checkpoint, CheckpointReport, FinishCheckpoint};
use crate::actors::fetcher::{Fetch, FetchReport, Fetcher};
use crate::actors::parsers::ParsePool;
use crate::actors::router::Router;
use crate::actors::task::{Finish, TaskActor};
use crate::config::{Plan, TaskKind};
use crate::error::{DataError, Error};
use crate::output::OutputDir;
use crate::progress::{self, Progress};
use crate::report::{Outcome, PipelineStats};
use crate::source::OpenOptions;
use crate::tasks::forecast::Forecast;
use crate::tasks::hottest::Hottest;
use crate::tasks::window::Window;
use crate::tasks::Analysis;

/// Runs a job to completion on a fresh actix system; blocks the calling thread.
pub fn run_blocking(plan: &Plan, out: &OutputDir, display: progress::Display) -> Result<Outcome, Error> {
    let system = actix::System::new();
    system.block_on(run(plan, out, display))
}

/// The actors of one job.
struct Topology {
    arbiters: Vec<Arbiter>,
    hottest: Addr<TaskActor<Hottest>>,
    window: Addr<TaskActor<Window>>,
    forecast: Addr<TaskActor<Forecast>>,
    checkpoint: Addr<Checkpoint>,
    router: Addr<Router>,
}

/// Runs a job inside an actix system.
pub async fn run(plan: &Plan, out: &OutputDir, display: progress::Display) -> Result<Outcome, Error> {
    let started = Instant::now();
    let span = tracing::info_span!("job", source = %plan.source.describe());
    let _enter = span.enter();
    let progress = Progress::new();
    let _reporter = progress::start(progress.clone(), display);
    let gate = Gate::new(plan.pipeline.in_flight);
    let topology = start_actors(plan, out, progress.clone())?;
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<Error>(1);
    let pool = ParsePool::start(
        plan.pipeline.parse_workers,
        plan.pipeline.in_flight,
        topology.router.clone(),
        fatal_tx,
    );
    let fetcher = start_fetcher(plan, gate.clone(), progress).start();

    let fetched = tokio::select! {
        r = fetcher.send(Fetch { jobs: pool.sender() }) => r.map_err(|e| lost("fetcher", e))?,
        Some(e) = fatal_rx.recv() => Err(e),
    };
    let fetched = match fetched {
        Ok(f) => f,
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
    let outcome = collect(plan, &topology, &fetched, &gate, started).await;
    topology.stop();
    let outcome = outcome?;
    check_rows(plan, &outcome.0, &outcome.1)?;
    tracing::debug!(rows = outcome.1.rows.processed, secs = outcome.1.elapsed_secs, "job finished");
    Ok(outcome.1)
}

fn start_fetcher(plan: &Plan, gate: Arc<Gate>, progress: Arc<Progress>) -> Fetcher {
    let p = &plan.pipeline;
    let open = OpenOptions {
        block_size: p.chunk_size.clamp(64 << 10, 64 << 20),
        connect_timeout: p.connect_timeout,
        read_timeout: p.read_timeout,
    };
    Fetcher::new(plan.source.clone(), open, (p.chunk_size, p.max_line), plan.columns.clone(), gate, progress)
}

fn start_actors(plan: &Plan, out: &OutputDir, progress: Arc<Progress>) -> Result<Topology, Error> {
    let delay = |kind: TaskKind| plan.faults.slow_task.filter(|(k, _)| *k == kind).map(|(_, d)| d);
    let arbiters: Vec<Arbiter> = (0..3).map(|_| Arbiter::new()).collect();
    let hottest = start_task(&arbiters[0], "hottest", Hottest::default(), delay(TaskKind::Hottest));
    let window =
        start_task(&arbiters[1], "window", Window::new(plan.window.clone()), delay(TaskKind::Window));
    let forecast =
        start_task(&arbiters[2], "forecast", Forecast::new(plan.forecast.clone()), delay(TaskKind::Forecast));
    let checkpoint = Checkpoint::new(out.rejects()?, 0, progress).start();
    let router = Router::new(
        vec![hottest.clone().recipient(), window.clone().recipient(), forecast.clone().recipient()],
        checkpoint.clone().recipient(),
    )
    .start();
    Ok(Topology { arbiters, hottest, window, forecast, checkpoint, router })
}

fn start_task<A: Analysis + Unpin>(
    arbiter: &Arbiter,
    name: &'static str,
    state: A,
    delay: Option<Duration>,
) -> Addr<TaskActor<A>> {
    TaskActor::start_in_arbiter(&arbiter.handle(), move |_| TaskActor::new(name, state, delay))
}

impl Topology {
    fn stop(self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

fn lost(actor: &str, e: MailboxError) -> Error {
    Error::Internal(format!("the {actor} actor stopped before answering ({e})"))
}

async fn finish<A: Analysis + Unpin>(addr: &Addr<TaskActor<A>>, name: &str) -> Result<A, Error> {
    addr.send(Finish::new())
        .await
        .map_err(|e| lost(name, e))?
        .ok_or_else(|| Error::Internal(format!("the {name} task was asked for its result twice")))
}

async fn collect(
    plan: &Plan,
    t: &Topology,
    fetched: &FetchReport,
    gate: &Gate,
    started: Instant,
) -> Result<(CheckpointReport, Outcome), Error> {
    let hottest = finish(&t.hottest, "hottest").await?;
    let window = finish(&t.window, "window").await?;
    let forecast = finish(&t.forecast, "forecast").await?;
    let mut cp = t.checkpoint.send(FinishCheckpoint).await.map_err(|e| lost("checkpoint", e))??;
    cp.rows.read += fetched.leading_blank;
    cp.rows.blank += fetched.leading_blank;
    let p = &plan.pipeline;
    let outcome = Outcome {
        source: plan.source.describe(),
        rows: cp.rows,
        hottest: hottest.report(&plan.hottest),
        window: window.report(),
        forecast: forecast.report(),
        method: plan.forecast.method.name(),
        pipeline: PipelineStats {
            bytes: fetched.bytes,
            chunks: fetched.chunks,
            chunk_size: p.chunk_size,
            parse_workers: p.parse_workers,
            in_flight_bound: gate.bound(),
            max_in_flight: gate.max_in_flight(),
            fetcher_stalls: gate.stalls(),
        },
        elapsed_secs: started.elapsed().as_secs_f64(),
    };
    Ok((cp, outcome))
}

/// Enforces the accounting invariant, "there is data", and `job.max_reject_ratio`.
fn check_rows(plan: &Plan, cp: &CheckpointReport, o: &Outcome) -> Result<(), Error> {
    let r = o.rows;
    if r.read != r.processed + r.rejected + r.blank {
        return Err(Error::Internal(format!("row accounting does not add up: {r:?}")));
    }
    if r.processed + r.rejected == 0 {
        return Err(DataError::HeaderOnly { bytes: o.pipeline.bytes }.into());
    }
    let ratio = r.rejected as f64 / (r.processed + r.rejected) as f64;
    if ratio > plan.max_reject_ratio {
        let examples = cp
            .examples
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
            rejects: cp.rejects_path.display().to_string(),
        }
        .into());
    }
    Ok(())
}
