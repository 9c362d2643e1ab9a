//! `wxflow run`: one job through the pipeline, with progress on the terminal and a summary.

use crate::cli::RunArgs;
use crate::config::Plan;
use crate::date::hhmmss;
use crate::error::Error;
use crate::job::{self, JobControl};
use crate::output::OutputDir;
use crate::pipeline::Hooks;
use crate::progress::Display;
use crate::report::Outcome;

use super::{init_logging, resolve};

/// Runs the job the flags and configuration describe and prints where the reports are.
pub fn run(args: &RunArgs) -> Result<(), Error> {
    let mut resolved = resolve(&args.config)?;
    resolved.plan.faults.armed.extend(args.faults.iter().copied());
    let plan = &resolved.plan;
    init_logging(plan);
    let interval = std::time::Duration::from_secs(plan.log.progress_interval_secs);
    let display = Display::choose(&plan.log.progress, interval);
    let control =
        JobControl { fresh: args.fresh, force: args.force, hooks: Hooks::cli(display), record: None };
    let done = job::execute(plan, &control)?;
    print_summary(plan, &done.out, &done.outcome);
    Ok(())
}

fn print_summary(plan: &Plan, out: &OutputDir, o: &Outcome) {
    let r = o.rows;
    let month = o.hottest.monthly.iter().find(|m| m.month == plan.month);
    let mean = month.map_or("no data".into(), |m| {
        format!("mean hottest time {} over {} days", hhmmss(m.mean_second), m.days)
    });
    println!(
        "wxflow: {} rows processed, {} rejected, {} blank ({} lines) from {} in {:.2}s",
        r.processed, r.rejected, r.blank, r.read, o.source, o.elapsed_secs
    );
    println!(
        "  {}  hottest times over {} days; {}: {mean}",
        out.path("task1.txt").display(),
        o.hottest.days,
        plan.month
    );
    println!("  {}  {} window readings", out.path("task2.txt").display(), o.window.len());
    println!("  {}  {} forecast readings ({})", out.path("task3.txt").display(), o.forecast.len(), o.method);
    println!("  {}  counts and figures", out.path("summary.json").display());
    if o.forecast.is_empty() {
        let (first, last) = (plan.window.first, plan.window.last);
        eprintln!(
            "warning: the input has no readings in the window {} to {} (reference month {}), so task2.txt and \
             task3.txt are empty; choose a month the data covers with --month YYYY-MM",
            first.dmy(),
            last.dmy(),
            plan.month
        );
    }
    if r.rejected > 0 {
        eprintln!(
            "warning: {} row(s) rejected; line numbers and reasons are in {}",
            r.rejected,
            out.path("rejects.csv").display()
        );
    }
}
