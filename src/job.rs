//! One job from plan to written reports, shared by `wxflow run` and the daemon so both run exactly
//! the same path: load the checkpoint, run the pipeline under supervision (restarting from the
//! last checkpoint), write the reports and remove the checkpoint. Printing stays with the callers.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::actors::supervisor::{SharedSupervisor, Supervisor};
use crate::config::Plan;
use crate::durable::store::Store;
use crate::durable::{settings_changes, Snapshot};
use crate::error::{Error, OutputError};
use crate::output::OutputDir;
use crate::pipeline::Hooks;
use crate::plots;
use crate::report::{self, Outcome};
use crate::source::SourceSpec;

/// How a caller runs a job: whether to start over or overwrite, and how it watches and steers
/// the pipeline.
#[derive(Debug, Clone)]
pub struct JobControl {
    /// Discard any checkpoint first (`--fresh`).
    pub fresh: bool,
    /// Overwrite results already in the output directory (`--force`).
    pub force: bool,
    /// Progress, stop requests and the shared in-flight bound.
    pub hooks: Hooks,
    /// The job's restart record, when the caller wants to read it while the job runs (the
    /// daemon); `None` makes one from the plan's `[supervision]`.
    pub record: Option<SharedSupervisor>,
}

/// A completed job: where its reports are and what it found.
#[derive(Debug)]
pub struct Done {
    /// The output directory, reports written.
    pub out: OutputDir,
    /// Figures and counts (as in `summary.json`).
    pub outcome: Outcome,
}

/// Runs `plan` to completion: resumes from a fitting checkpoint, restarts the pipeline after
/// actor failures as `[supervision]` allows, writes the reports and clears the checkpoint.
pub fn execute(plan: &Plan, control: &JobControl) -> Result<Done, Error> {
    for fault in plan.faults.armed.armed() {
        tracing::warn!("fault armed: {fault} (a deliberate failure for drills; remove --fault / faults.inject for real runs)");
    }
    let store = Store::new(plan.checkpoint.dir.clone());
    if control.fresh {
        clear_checkpoint(&store)?;
    }
    let resume = if plan.checkpoint.enabled { load_checkpoint(plan, &store)? } else { None };
    let out = OutputDir::prepare(&plan.out, control.force || resume.is_some())?;
    if let Some(s) = &resume {
        let text = format!(
            "resuming from byte {}, line {}, {} rows already done (run {}; checkpoint in {})",
            s.position.byte,
            s.position.line,
            s.rows.processed,
            s.runs + 1,
            store.dir().display()
        );
        tracing::info!("{text}");
        eprintln!("wxflow: {text}");
    }
    let hooks = &control.hooks;
    let history = resume.as_ref().map_or((Default::default(), 0), |s| (s.restarts.clone(), s.retries));
    let supervisor = control
        .record
        .clone()
        .unwrap_or_else(|| Arc::new(Mutex::new(Supervisor::new(plan.supervision.clone()))));
    supervisor.lock().unwrap_or_else(|e| e.into_inner()).add_history(&history.0, history.1);
    // An in-process restart continues this run: it is not another run, and where this run
    // resumed from stays what it was.
    let (resumed, runs_before) =
        (resume.as_ref().map(Snapshot::resumed), resume.as_ref().map_or(0, |s| s.runs));
    let mut resume = resume;
    let mut outcome = loop {
        match crate::pipeline::run_blocking(plan, &out, hooks, resume.take(), &supervisor) {
            Err(Error::ActorFailed { actor, detail }) => {
                let delay = supervisor.lock().unwrap_or_else(|e| e.into_inner()).failed(actor, &detail)?;
                if plan.source == SourceSpec::Stdin {
                    return Err(Error::ActorFailed {
                        actor,
                        detail: format!(
                            "{detail}; standard input cannot be read again, so the {actor} actor cannot be restarted"
                        ),
                    });
                }
                std::thread::sleep(delay);
                resume = if plan.checkpoint.enabled { load_checkpoint(plan, &store)? } else { None };
                if let Some(s) = resume.as_mut() {
                    s.runs = runs_before;
                }
                let from = resume.as_ref().map_or(0, |s| s.position.byte);
                let text = format!(
                    "the {actor} actor failed ({detail}); restarting the pipeline from byte {from} after {} ms",
                    delay.as_millis()
                );
                tracing::warn!("{text}");
                eprintln!("wxflow: {text}");
            }
            other => break other?,
        }
    };
    let record = supervisor.lock().unwrap_or_else(|e| e.into_inner());
    (outcome.restarts, outcome.retries, outcome.resumed) = (record.counts(), record.retries(), resumed);
    drop(record);
    write_reports(&out, &outcome, plan)?;
    clear_checkpoint(&store)?;
    Ok(Done { out, outcome })
}

/// Removes the checkpoint (`--fresh`, or the job completed).
pub fn clear_checkpoint(store: &Store) -> Result<(), Error> {
    store.clear().map_err(|source| OutputError::Write { path: store.dir().to_path_buf(), source }.into())
}

/// The checkpoint of an interrupted run that this run can continue, or `None` to start fresh.
/// Refuses (with what to do) when one exists that cannot be used: other settings, standard input,
/// or every copy corrupt.
pub fn load_checkpoint(plan: &Plan, store: &Store) -> Result<Option<Snapshot>, Error> {
    let dir = store.dir().display().to_string();
    let loaded = match store.load() {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Ok(None),
        Err(e) => return Err(Error::Resume(e.to_string())),
    };
    if let Some(warning) = &loaded.warning {
        tracing::warn!("{warning}");
        eprintln!("warning: {warning}");
    }
    let s = loaded.snapshot;
    if plan.source == SourceSpec::Stdin {
        return Err(Error::Resume(format!(
            "a checkpoint of an interrupted run is in {dir} (byte {}), but the source is standard input, which \
             cannot be re-read from a byte offset, so it cannot be resumed; rerun with --fresh to start over, \
             or pass the data as a file or URL",
            s.position.byte
        )));
    }
    let changes = settings_changes(&s.settings, &plan.result_settings());
    if !changes.is_empty() {
        return Err(Error::Resume(format!(
            "the checkpoint in {dir} was made with other settings that change results ({}); rerun with the \
             same settings to resume, or with --fresh to start over",
            changes.join("; ")
        )));
    }
    Ok(Some(s))
}

/// The reports and plots, `summary.json` last so that its presence means the set is complete.
///
/// The files that grow with the input (`hottest.svg`, a point per day, and `task1.txt`, a line
/// per month) are written by this thread while another writes the window's and the forecast's:
/// after the pipeline a run is single-threaded, and one file after the other (drawing, writing,
/// fsyncing) kept one core busy and the other idle for about 15 ms at 1 GiB, 3% of the run. The
/// large ones stay on this thread because they reuse what the pipeline freed here, where another
/// thread allocates in a malloc arena of its own: a thread per file added 3.6 MiB to a 4 GiB
/// run's peak RSS.
pub fn write_reports(out: &OutputDir, o: &Outcome, plan: &Plan) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let small = scope.spawn(|| write_the_small_ones(out, o, plan));
        let large = write_the_large_ones(out, o, plan);
        joined(small).and(large)
    })?;
    out.write_with("summary.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &report::summary(o)).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    Ok(())
}

/// `hottest.svg` and `task1.txt`, which grow with the days of the input.
fn write_the_large_ones(out: &OutputDir, o: &Outcome, plan: &Plan) -> Result<(), Error> {
    if plan.plots {
        out.write("hottest.svg", plots::hottest(o.daily.iter(), &o.hottest.monthly)?.as_bytes())?;
    }
    Ok(out.write("task1.txt", report::task1(&o.hottest).as_bytes())?)
}

/// The files whose size does not grow with the input: the window's and the forecast's.
fn write_the_small_ones(out: &OutputDir, o: &Outcome, plan: &Plan) -> Result<(), Error> {
    out.write("task2.txt", report::task2(&o.window).as_bytes())?;
    out.write("task3.txt", report::task3(&o.forecast).as_bytes())?;
    if plan.plots {
        out.write("window.svg", plots::window(&o.window, &o.window_hi_low, &plan.window)?.as_bytes())?;
        out.write("forecast.svg", plots::forecast(&o.window_outside, &forecast_lines(o))?.as_bytes())?;
    }
    Ok(())
}

/// What a scoped thread returned; its panic, if it panicked, goes on in the caller.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The forecast lines as `forecast.svg` draws them (see [`crate::plots`]).
fn forecast_lines(o: &Outcome) -> Vec<(crate::date::Day, u16, Option<f64>)> {
    o.forecast.iter().map(|l| (l.day, l.minute, l.value.parse::<f64>().ok())).collect()
}
