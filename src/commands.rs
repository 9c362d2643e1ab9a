//! What each subcommand does, between parsed arguments and `main`'s exit code.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::actors::supervisor::Supervisor;
use crate::cli::{Cli, Command, ConfigArgs, ConfigCommand, GenArgs, RunArgs};
use crate::config::{self, Layers, Plan, Resolved};
use crate::date::{hhmmss, Day};
use crate::durable::store::Store;
use crate::durable::{settings_changes, Snapshot};
use crate::error::{Error, OutputError};
use crate::gen::{generate, GenLimit, GenOptions};
use crate::output::OutputDir;
use crate::progress::Display;
use crate::report::{self, Outcome};
use crate::source::SourceSpec;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        None => run(&cli.run),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Config(ConfigCommand::Check(args))) => config_check(&args),
        Some(Command::Gen(args)) => gen(&args),
    }
}

fn resolve(args: &ConfigArgs) -> Result<Resolved, Error> {
    Ok(config::resolve(&Layers::from_process(args.config.clone(), args.overrides()))?)
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
    for fault in plan.faults.armed.armed() {
        tracing::warn!("fault armed: {fault} (a deliberate failure for drills; remove --fault / faults.inject for real runs)");
    }
    let store = Store::new(plan.checkpoint.dir.clone());
    if args.fresh {
        clear_checkpoint(&store)?;
    }
    let resume = if plan.checkpoint.enabled { load_checkpoint(plan, &store)? } else { None };
    let out = OutputDir::prepare(&plan.out, args.force || resume.is_some())?;
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
    let interval = std::time::Duration::from_secs(plan.log.progress_interval_secs);
    let display = Display::choose(&plan.log.progress, interval);
    let history = resume.as_ref().map_or((Default::default(), 0), |s| (s.restarts.clone(), s.retries));
    let supervisor =
        Arc::new(Mutex::new(Supervisor::new(plan.supervision.clone()).with_history(&history.0, history.1)));
    // An in-process restart continues this run: it is not another run, and where this run
    // resumed from stays what it was.
    let (resumed, runs_before) =
        (resume.as_ref().map(Snapshot::resumed), resume.as_ref().map_or(0, |s| s.runs));
    let mut resume = resume;
    let mut outcome = loop {
        match crate::pipeline::run_blocking(plan, &out, display, resume.take(), &supervisor) {
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
    write_reports(&out, &outcome)?;
    clear_checkpoint(&store)?;
    print_summary(plan, &out, &outcome);
    Ok(())
}

/// Removes the checkpoint (`--fresh`, or the job completed).
fn clear_checkpoint(store: &Store) -> Result<(), Error> {
    store.clear().map_err(|source| OutputError::Write { path: store.dir().to_path_buf(), source }.into())
}

/// The checkpoint of an interrupted run that this run can continue, or `None` to start fresh.
/// Refuses (with what to do) when one exists that cannot be used: other settings, standard input,
/// or every copy corrupt.
fn load_checkpoint(plan: &Plan, store: &Store) -> Result<Option<Snapshot>, Error> {
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

fn write_reports(out: &OutputDir, o: &Outcome) -> Result<(), Error> {
    out.write("task1.txt", report::task1(&o.hottest).as_bytes())?;
    out.write("task2.txt", report::task2(&o.window).as_bytes())?;
    out.write("task3.txt", report::task3(&o.forecast).as_bytes())?;
    out.write_with("summary.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &report::summary(o)).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
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

fn init_logging(plan: &Plan) {
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
