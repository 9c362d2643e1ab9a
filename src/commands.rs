//! What each subcommand does, between parsed arguments and `main`'s exit code.

use std::io::Write;
use std::path::Path;

use crate::cli::{Cli, Command, ConfigArgs, ConfigCommand, GenArgs, RunArgs};
use crate::config::{self, Layers, Plan, Resolved};
use crate::date::{hhmmss, Day};
use crate::error::{Error, OutputError};
use crate::gen::{generate, GenLimit, GenOptions};
use crate::job::{self, JobControl};
use crate::output::OutputDir;
use crate::pipeline::Hooks;
use crate::progress::Display;
use crate::report::Outcome;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        None => run(&cli.run),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Config(ConfigCommand::Check(args))) => config_check(&args),
        Some(Command::Gen(args)) => gen(&args),
        Some(Command::Daemon(args)) => daemon(&args),
        Some(Command::Submit(args)) => crate::client::submit(&args),
        Some(Command::Jobs(args)) => crate::client::jobs(&args),
        Some(Command::Status(args)) => crate::client::status(&args),
        Some(Command::Cancel(args)) => crate::client::cancel(&args),
        Some(Command::Resume(args)) => crate::client::resume(&args),
    }
}

fn resolve(args: &ConfigArgs) -> Result<Resolved, Error> {
    Ok(config::resolve(&Layers::from_process(args.config.clone(), args.overrides()))?)
}

/// `wxflow daemon`: the configuration layers as for `run` (file and environment), then serve.
fn daemon(args: &crate::cli::ClientArgs) -> Result<(), Error> {
    let resolved = config::resolve(&Layers::from_process(args.config.clone(), Vec::new()))?;
    init_logging(&resolved.plan);
    crate::daemon::serve(&resolved.plan, args.config.clone())
}

fn config_check(args: &ConfigArgs) -> Result<(), Error> {
    let resolved = resolve(args)?;
    print!("{}", config::render(&resolved));
    Ok(())
}

fn run(args: &RunArgs) -> Result<(), Error> {
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

/// Sets up `tracing` on stderr as `log.level` and `log.format` say (once per process).
pub fn init_logging(plan: &Plan) {
    let filter = tracing_subscriber::EnvFilter::try_new(&plan.log.level).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if plan.log.format == "json" {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

fn gen(args: &GenArgs) -> Result<(), Error> {
    let opts = gen_options(args)?;
    let stats = if args.out == Path::new("-") {
        generate(&opts, std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .map_err(|source| OutputError::Write { path: args.out.clone(), source })?;
        generate(&opts, file)
    }
    .map_err(|source| OutputError::Write { path: args.out.clone(), source })?;
    let _ = writeln!(
        std::io::stderr(),
        "wxflow gen: {} rows, {} blank lines, {} bad rows, {} bytes",
        stats.rows,
        stats.blank,
        stats.bad,
        stats.bytes
    );
    Ok(())
}

fn gen_options(args: &GenArgs) -> Result<GenOptions, Error> {
    let start = parse_iso(&args.start).ok_or_else(|| {
        Error::Usage(format!("--start {}: expected a date as YYYY-MM-DD, e.g. 2006-06-01", args.start))
    })?;
    let limit =
        match (args.days, args.rows, &args.size) {
            (_, _, Some(size)) => GenLimit::Bytes(config::parse_size(size).ok_or_else(|| {
                Error::Usage(format!("--size {size}: expected a size such as 100MiB or 1GiB"))
            })?),
            (_, Some(rows), None) => GenLimit::Rows(rows),
            (days, None, None) => GenLimit::Days(days.unwrap_or(30)),
        };
    Ok(GenOptions {
        start,
        limit,
        seed: args.seed,
        crlf: args.crlf,
        blank_lines: args.blank_lines,
        bad_rows: args.bad_rows,
    })
}

fn parse_iso(text: &str) -> Option<Day> {
    let mut parts = text.trim().splitn(3, '-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Day::from_ymd(y, m, d)
}
