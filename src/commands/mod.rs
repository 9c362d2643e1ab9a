//! One file per subcommand (as xsv does), between parsed arguments and `main`'s exit code:
//! `run`, `config check`, `gen`, `daemon`, and the client commands `submit`, `jobs`, `status`,
//! `cancel`, `resume` (which talk to a running daemon through [`crate::client`]).

mod cancel;
mod config_check;
mod daemon;
mod gen;
mod jobs;
mod resume;
mod run;
mod status;
mod submit;

use crate::cli::{Cli, Command, ConfigArgs, ConfigCommand};
use crate::config::{self, Layers, Plan, Resolved};
use crate::error::Error;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        None => run::run(&cli.run),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Config(ConfigCommand::Check(args))) => config_check::config_check(&args),
        Some(Command::Gen(args)) => gen::gen(&args),
        Some(Command::Daemon(args)) => daemon::daemon(&args),
        Some(Command::Submit(args)) => submit::submit(&args),
        Some(Command::Jobs(args)) => jobs::jobs(&args),
        Some(Command::Status(args)) => status::status(&args),
        Some(Command::Cancel(args)) => cancel::cancel(&args),
        Some(Command::Resume(args)) => resume::resume(&args),
    }
}

/// The configuration layers of the process (defaults, file, environment, flags), validated.
fn resolve(args: &ConfigArgs) -> Result<Resolved, Error> {
    Ok(config::resolve(&Layers::from_process(args.config.clone(), args.overrides()))?)
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
