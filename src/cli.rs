//! The command line: `wxflow [run]`, `wxflow config check`, `wxflow gen`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Override;

/// Streams a weather-station CSV export through an actor pipeline into three reports.
#[derive(Debug, Parser)]
#[command(name = "wxflow", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; without a subcommand, `run` with the configured defaults.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run` when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a CSV from a URL, a file or stdin and write the reports.
    Run(RunArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write deterministic synthetic station data in the real export's layout.
    Gen(GenArgs),
    /// Run the local daemon: an HTTP API that runs submitted jobs (see the README's daemon section).
    Daemon(ClientArgs),
    /// Submit a job to the running daemon.
    Submit(SubmitArgs),
    /// List the daemon's jobs.
    Jobs(ClientArgs),
    /// Show one job of the daemon (--watch: until it finishes, with a progress bar).
    Status(StatusArgs),
    /// Cancel a job of the daemon (its checkpoint is kept).
    Cancel(JobArgs),
    /// Resume a failed or cancelled job of the daemon from its checkpoint.
    Resume(JobArgs),
}

/// Options of the daemon and of every client command: the configuration that names the daemon.
#[derive(Debug, Args, Clone, Default)]
pub struct ClientArgs {
    /// TOML file (or a directory of them) with the daemon section (daemon.listen, daemon.state_dir, …) and job defaults, as for `run`.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// `wxflow submit`.
#[derive(Debug, Args, Clone)]
pub struct SubmitArgs {
    /// http(s):// URL, or a file under the daemon's input_roots.
    pub source: String,
    /// Output name under the daemon's output_root.
    #[arg(long, value_name = "NAME")]
    pub output: String,
    /// A job setting, e.g. --set window.days=7 (repeatable); list values are written as JSON lists.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Daemon configuration.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Commands about one job.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// The job id, as `wxflow submit` or `wxflow jobs` shows it.
    pub id: String,
    /// Daemon configuration.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `wxflow status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// The job.
    #[command(flatten)]
    pub job: JobArgs,
    /// Follow the job with a progress bar until it finishes.
    #[arg(long)]
    pub watch: bool,
}

/// `wxflow config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved configuration with each value's origin, or every validation error.
    Check(ConfigArgs),
}

/// Options that shape the configuration, shared by `run` and `config check`.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// TOML file overriding the defaults of config/*.toml (any subset of their keys), or a directory of such files read in name order.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Override any key, e.g. --set window.days=7 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Input: http(s):// URL, file path, or - for stdin [job.source].
    #[arg(long, value_name = "URL|PATH|-")]
    pub source: Option<String>,
    /// Output directory [job.out].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Reference month YYYY-MM [job.reference_month].
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
    /// Target chunk size, e.g. 64KiB or 4MiB [pipeline.chunk_size].
    #[arg(long, value_name = "SIZE")]
    pub chunk_size: Option<String>,
    /// Parse worker threads [pipeline.parse_workers].
    #[arg(long, value_name = "N")]
    pub workers: Option<String>,
    /// Most chunks in flight (the memory bound) [pipeline.in_flight].
    #[arg(long, value_name = "N")]
    pub in_flight: Option<String>,
    /// Download an HTTP source over N ranged connections at once [pipeline.connections].
    #[arg(long, value_name = "N")]
    pub connections: Option<String>,
    /// trace|debug|info|warn|error [log.level].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// pretty|json [log.format].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// auto|bar|log|off [log.progress].
    #[arg(long, value_name = "MODE")]
    pub progress: Option<String>,
}

impl ConfigArgs {
    /// Named flags and `--set` pairs as configuration overrides (named flags win over `--set`).
    pub fn overrides(&self) -> Vec<Override> {
        let mut out: Vec<Override> = self
            .set
            .iter()
            .map(|(k, v)| Override { key: k.clone(), value: v.clone(), flag: "--set".into() })
            .collect();
        let named = [
            ("job.source", "--source", self.source.clone()),
            ("job.out", "--out", self.out.as_ref().map(|p| p.display().to_string())),
            ("job.reference_month", "--month", self.month.clone()),
            ("pipeline.chunk_size", "--chunk-size", self.chunk_size.clone()),
            ("pipeline.parse_workers", "--workers", self.workers.clone()),
            ("pipeline.in_flight", "--in-flight", self.in_flight.clone()),
            ("pipeline.connections", "--connections", self.connections.clone()),
            ("log.level", "--log-level", self.log_level.clone()),
            ("log.format", "--log-format", self.log_format.clone()),
            ("log.progress", "--progress", self.progress.clone()),
        ];
        for (key, flag, value) in named {
            if let Some(value) = value {
                out.push(Override { key: key.into(), value, flag: flag.into() });
            }
        }
        out
    }
}

/// `wxflow run`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Configuration options.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Overwrite results already in the output directory.
    #[arg(long)]
    pub force: bool,
    /// Discard any checkpoint of an interrupted run and start from the beginning.
    #[arg(long)]
    pub fresh: bool,
    /// Arm a deliberate fault, e.g. --fault abort@12 (repeatable; see the README's fault drills).
    #[arg(long = "fault", value_name = "SPEC", value_parser = crate::faults::Fault::parse)]
    pub faults: Vec<crate::faults::Fault>,
}

/// `wxflow gen`.
#[derive(Debug, Args, Clone)]
pub struct GenArgs {
    /// Output file, or - for stdout.
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,
    /// First day, YYYY-MM-DD.
    #[arg(long, default_value = "2006-06-01")]
    pub start: String,
    /// Number of days to generate (default 30 unless --rows or --size is given).
    #[arg(long, conflicts_with_all = ["rows", "size"])]
    pub days: Option<u32>,
    /// Number of good rows to generate.
    #[arg(long, conflicts_with = "size")]
    pub rows: Option<u64>,
    /// Approximate output size, e.g. 100MiB or 1GiB.
    #[arg(long)]
    pub size: Option<String>,
    /// Random seed: same options and seed, same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write CRLF line endings, like the station's server.
    #[arg(long)]
    pub crlf: bool,
    /// Number of empty lines to scatter through the body.
    #[arg(long, default_value_t = 0)]
    pub blank_lines: u64,
    /// Number of deliberately bad rows to scatter through the body.
    #[arg(long, default_value_t = 0)]
    pub bad_rows: u64,
}

fn parse_set(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE (e.g. --set pipeline.chunk_size=4MiB)"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{text}` has an empty key"));
    }
    Ok((key.to_string(), value.to_string()))
}
