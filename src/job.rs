//! One job from plan to written reports, shared by `wxflow run` and the daemon so both run exactly
//! the same path: load the checkpoint, run the pipeline under supervision (restarting from the
//! last checkpoint), write the reports and remove the checkpoint. Printing stays with the callers.

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
/// Each file is rendered, written and fsynced on a thread of its own (`summary.json` is rendered
/// beside them and written after them): after the pipeline a run is single-threaded, and drawing
/// the plots (the hottest one has a point per day), rendering the summary and the eight fsyncs one
/// after the other kept one core busy and the other idle for about 15 ms at 1 GiB, 3% of the run.
pub fn write_reports(out: &OutputDir, o: &Outcome, plan: &Plan) -> Result<(), Error> {
    type Render<'a> = Box<dyn FnOnce() -> Result<String, Error> + Send + 'a>;
    let mut files: Vec<(&str, Render)> = Vec::new();
    if plan.plots {
        files.push(("hottest.svg", Box::new(|| Ok(plots::hottest(&o.daily, &o.hottest.monthly)?))));
        files
            .push(("window.svg", Box::new(|| Ok(plots::window(&o.window, &o.window_hi_low, &plan.window)?))));
        files
            .push(("forecast.svg", Box::new(|| Ok(plots::forecast(&o.window_outside, &forecast_lines(o))?))));
    }
    files.push(("task1.txt", Box::new(|| Ok(report::task1(&o.hottest)))));
    files.push(("task2.txt", Box::new(|| Ok(report::task2(&o.window)))));
    files.push(("task3.txt", Box::new(|| Ok(report::task3(&o.forecast)))));
    std::thread::scope(|scope| {
        let summary = scope.spawn(|| {
            let mut json = serde_json::to_vec_pretty(&report::summary(o)).map_err(std::io::Error::other)?;
            json.push(b'\n');
            Ok::<_, std::io::Error>(json)
        });
        let writers: Vec<_> = files
            .into_iter()
            .map(|(name, render)| scope.spawn(move || Ok::<_, Error>(out.write(name, render()?.as_bytes())?)))
            .collect();
        // Every thread is joined before the first error is returned.
        let written: Vec<_> = writers.into_iter().map(joined).collect();
        let summary = joined(summary);
        written.into_iter().collect::<Result<(), Error>>()?;
        let summary =
            summary.map_err(|e| OutputError::Write { path: out.path("summary.json"), source: e })?;
        Ok(out.write("summary.json", &summary)?)
    })
}

/// What a scoped thread returned; its panic, if it panicked, goes on in the caller.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The forecast lines as `forecast.svg` draws them (see [`crate::plots`]).
fn forecast_lines(o: &Outcome) -> Vec<(crate::date::Day, u16, Option<f64>)> {
    o.forecast.iter().map(|l| (l.day, l.minute, l.value.parse::<f64>().ok())).collect()
}
