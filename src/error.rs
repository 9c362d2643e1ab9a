//! Typed errors and the exit codes they map to.
//!
//! Errors are values until `main`: every layer returns one of these, and only `main` turns it into
//! a message and an exit code. Each message says what was wrong, where, and how to fix it.

use std::path::PathBuf;

/// Process exit codes, documented in the README, so scripts can tell failures apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Job finished; reports written.
    Ok = 0,
    /// Bad command line or configuration: fix the invocation.
    Usage = 2,
    /// The input is not usable weather data: fix or choose the data.
    Data = 3,
    /// Reading the source or writing the outputs failed: network, file system, permissions.
    Io = 4,
    /// A bug or an actor that died: report it.
    Internal = 5,
    /// Supervision gave up: an actor failed more often than `[supervision]` allows.
    Supervision = 6,
    /// A client command found no daemon at the configured address: start `wxflow daemon`.
    NoDaemon = 7,
    /// Stopped by SIGINT (Ctrl-C) after writing a checkpoint: rerun to resume.
    Interrupted = 130,
    /// Stopped by SIGTERM after writing a checkpoint: rerun to resume.
    Terminated = 143,
}

impl ExitCode {
    /// The exit code with this number (as the daemon reports a failed job's), if there is one.
    pub fn from_number(n: u64) -> Option<ExitCode> {
        [
            ExitCode::Ok,
            ExitCode::Usage,
            ExitCode::Data,
            ExitCode::Io,
            ExitCode::Internal,
            ExitCode::Supervision,
            ExitCode::NoDaemon,
            ExitCode::Interrupted,
            ExitCode::Terminated,
        ]
        .into_iter()
        .find(|c| *c as u64 == n)
    }
}

/// Everything that can stop a job, grouped by who has to act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration (possibly several problems at once).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// Invalid use of the command line that clap cannot catch (e.g. results already present).
    #[error("{0}")]
    Usage(String),
    /// The input data cannot be analysed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The outputs could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A checkpoint exists that this run cannot continue from (other settings, standard input,
    /// corrupt files); the message says why and how to start over.
    #[error("{0}")]
    Resume(String),
    /// Stopped by a signal (2 = SIGINT, 15 = SIGTERM) after checkpointing what was processed.
    #[error("stopped by {} at byte {byte}; {saved} run the same command again to resume", if *.signal == 2 { "SIGINT" } else { "SIGTERM" })]
    Interrupted {
        /// The signal number.
        signal: i32,
        /// Byte up to which everything is processed and checkpointed.
        byte: u64,
        /// What was saved.
        saved: String,
    },
    /// An actor failed (a panic caught at its handler boundary); supervision restarts the pipeline.
    #[error("the {actor} actor failed: {detail}")]
    ActorFailed {
        /// Which actor (one of `faults::ACTORS`).
        actor: &'static str,
        /// The panic message.
        detail: String,
    },
    /// Restarts exceeded the policy; the checkpoint is intact.
    #[error("supervision gave up: {restarts} restarts within {within_secs} s exceed supervision.max_restarts ({max}); the last failure: the {actor} actor failed: {detail}.\nThe checkpoint is intact: fix the cause (or remove the --fault) and run the same command again to resume, or raise supervision.max_restarts")]
    GaveUp {
        /// The actor that failed last.
        actor: &'static str,
        /// Its failure.
        detail: String,
        /// Restarts counted in the window.
        restarts: u32,
        /// The policy's window.
        within_secs: u64,
        /// The policy's limit.
        max: u32,
    },
    /// A plot could not be drawn (a bug: plots are drawn from already validated reports).
    #[error("internal error: {0} (this is a bug in wxflow; please report it, or set job.plots = false)")]
    Plot(#[from] PlotError),
    /// Something that should not happen; the message says what.
    #[error("internal error: {0} (this is a bug in wxflow; please report it)")]
    Internal(String),
    /// The daemon cannot listen on its address.
    #[error("the daemon cannot listen on {addr} (daemon.listen): {source}; another program (or daemon) may use that port: choose another, or port 0 for any free one")]
    Listen {
        /// The address.
        addr: String,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// A client command could not reach the daemon.
    #[error("no wxflow daemon answers at {addr} ({detail}); start one with `wxflow daemon` (same --config), or check daemon.listen")]
    NoDaemon {
        /// The address tried.
        addr: String,
        /// Why the connection failed.
        detail: String,
    },
    /// A daemon job the client asked about failed; exits as `wxflow run` would have for it.
    #[error("job {id} failed: {message}")]
    JobFailed {
        /// The job.
        id: String,
        /// The job's error.
        message: String,
        /// The exit code of its failure.
        code: ExitCode,
    },
    /// The daemon refused or failed a client's request; the message is the daemon's.
    #[error("the daemon answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's `error` and `detail`.
        message: String,
    },
    /// A cluster job failed on another node (a range's worker) or in the merge; the message is
    /// the one `wxflow run` would have printed, with the exit code it would have given.
    #[error("{message}")]
    Remote {
        /// What failed, where.
        message: String,
        /// The exit code.
        code: ExitCode,
    },
    /// The cluster's NATS server failed a request.
    #[error("{0}; check that nats-server runs with JetStream (-js) at cluster.nats_url")]
    Nats(#[from] NatsError),
}

impl Error {
    /// The exit code for this error, so `main` does not need to know the variants' meaning.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_)
            | Error::Usage(_)
            | Error::Resume(_)
            | Error::Source(SourceError::Changed { .. })
            | Error::Output(OutputError::Exists { .. }) => ExitCode::Usage,
            Error::Data(_) => ExitCode::Data,
            Error::Source(_) | Error::Output(_) | Error::Listen { .. } => ExitCode::Io,
            Error::Internal(_) | Error::Plot(_) | Error::ActorFailed { .. } => ExitCode::Internal,
            Error::GaveUp { .. } => ExitCode::Supervision,
            Error::NoDaemon { .. } => ExitCode::NoDaemon,
            Error::JobFailed { code, .. } | Error::Remote { code, .. } => *code,
            Error::Nats(_) => ExitCode::Io,
            Error::Api { status, .. } if *status < 500 => ExitCode::Usage,
            Error::Api { .. } => ExitCode::Internal,
            Error::Interrupted { signal: 2, .. } => ExitCode::Interrupted,
            Error::Interrupted { .. } => ExitCode::Terminated,
        }
    }
}

/// A NATS or JetStream failure of cluster mode, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("NATS at {url}: {doing}: {detail}")]
pub struct NatsError {
    /// The server.
    pub url: String,
    /// What wxflow was doing.
    pub doing: String,
    /// The client's error.
    pub detail: String,
}

/// Problems with the content of the input.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Nothing at all was received.
    #[error("the input is empty: expected a CSV header line naming the columns {expected}; check the source path or URL")]
    Empty {
        /// Required columns, comma-separated.
        expected: String,
    },
    /// A header and no rows.
    #[error(
        "the input has a header but no data rows (read {bytes} bytes); check that the export covers a period"
    )]
    HeaderOnly {
        /// Bytes read.
        bytes: u64,
    },
    /// The body is HTML, binary or otherwise not a CSV export.
    #[error("the input is not a CSV weather export: it looks like {kind}. First bytes: {preview}\nhint: if this came from a URL, open it in a browser to see what the server returns")]
    NotCsv {
        /// What it looks like ("HTML", "binary data").
        kind: &'static str,
        /// Escaped first bytes.
        preview: String,
    },
    /// Required columns are absent from the header.
    #[error("the header (line {line}) lacks required column(s) {missing}.\n  expected: {expected}\n  found:    {found}\nhint: set the names under [columns] in the config (e.g. --set columns.outside=\"Temp Out\") if this station names them differently")]
    MissingColumns {
        /// Header line number.
        line: u64,
        /// Missing names, comma-separated.
        missing: String,
        /// All required names.
        expected: String,
        /// Names found, normalised.
        found: String,
    },
    /// A single line longer than the chunker will hold.
    #[error("{} is longer than {limit} bytes without a line break; this is not a line-based CSV export", line_at(*.line, *.byte))]
    LineTooLong {
        /// Line number, when it could be found (the chunks before it are numbered as they are
        /// parsed; see `actors::lines`).
        line: Option<u64>,
        /// Byte offset of the line start.
        byte: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// Too many rows were rejected for the result to be trusted.
    #[error("{rejected} of {rows} rows were rejected ({ratio:.2}%), more than job.max_reject_ratio allows ({max:.2}%).\n{examples}\nAll rejected rows with reasons: {rejects}\nhint: fix the data, or raise the limit with --set job.max_reject_ratio=<0..1>")]
    TooManyRejects {
        /// Rejected rows.
        rejected: u64,
        /// Processed + rejected rows.
        rows: u64,
        /// Observed ratio in percent.
        ratio: f64,
        /// Allowed ratio in percent.
        max: f64,
        /// The first few rejects, one per line.
        examples: String,
        /// Path of the rejects file.
        rejects: String,
    },
}

/// Problems reaching or reading the source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Local file could not be opened.
    #[error("cannot open {path}: {source}; check the path (relative paths are resolved from {cwd})")]
    Open {
        /// The path given.
        path: PathBuf,
        /// Current directory, to help with relative paths.
        cwd: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Reading failed part-way.
    #[error("reading {what} failed at byte {byte}: {detail}")]
    Read {
        /// Which source.
        what: String,
        /// Bytes read successfully before the failure.
        byte: u64,
        /// Underlying error text.
        detail: String,
    },
    /// The server answered with a non-success status.
    #[error("{url} answered HTTP {status}; check the URL (the data may not exist for that month)")]
    HttpStatus {
        /// URL requested.
        url: String,
        /// Status line.
        status: String,
    },
    /// The source is not the one the checkpoint was made from.
    #[error("{what} changed since the checkpoint in {dir} was written ({changes}); a checkpoint only fits the data it was made from: rerun with --fresh to start over")]
    Changed {
        /// Which source.
        what: String,
        /// The checkpoint folder.
        dir: String,
        /// What differs, e.g. `size 100 -> 120`.
        changes: String,
    },
    /// The source changed while a job was reading it: found when a retry or a cluster range
    /// reopened it and it no longer matched what the job started with.
    #[error("{what} changed while this job was reading it ({changes}): another program truncated or rewrote it; run again once it is complete")]
    ChangedDuringRun {
        /// Which source.
        what: String,
        /// What differs, e.g. `size 100 -> 120`.
        changes: String,
    },
    /// The server could not be reached.
    #[error("cannot fetch {url}: {detail}; check the address and your network, or download the file and pass its path")]
    Connect {
        /// URL requested.
        url: String,
        /// Underlying error chain.
        detail: String,
    },
}

/// Problems writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Results from an earlier run would be overwritten.
    #[error("output directory {dir} already holds results ({file}); pass --force to overwrite them or choose another --out")]
    Exists {
        /// The directory.
        dir: PathBuf,
        /// The first result file found.
        file: String,
    },
    /// A file system operation failed.
    #[error("cannot write {path}: {source}; check that the directory is writable and the disk has space")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Escapes the first bytes of a buffer for an error message: printable ASCII as is, the rest as
/// `\xNN`, so binary input is shown honestly instead of as mojibake.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if bytes.len() > max {
        out.push('…');
    }
    out
}

/// "line N (starting at byte B)", or "the line starting at byte B" when its number is unknown.
fn line_at(line: Option<u64>, byte: u64) -> String {
    match line {
        Some(line) => format!("line {line} (starting at byte {byte})"),
        None => format!("the line starting at byte {byte}"),
    }
}

/// One configuration problem: which key, what value, from where, and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    /// Dotted key, or the file name for problems with a whole file.
    pub key: String,
    /// The offending value as text ("" when not applicable).
    pub value: String,
    /// Where it was set.
    pub origin: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{} (from {}): {}", self.key, self.origin, self.problem)
        } else {
            write!(f, "{} = {} (from {}): {}", self.key, self.value, self.origin, self.problem)
        }
    }
}

/// All problems found in one configuration, reported together so users fix them in one go.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        writeln!(f, "invalid configuration ({n} problem{}):", if n == 1 { "" } else { "s" })?;
        for issue in &self.0 {
            writeln!(f, "  - {issue}")?;
        }
        write!(f, "hint: `wxflow config check` shows every key, its value and where it came from")
    }
}

impl std::error::Error for ConfigErrors {}

/// Drawing a plot failed (plotters reports a backend or layout error).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {plot}: {detail}")]
pub struct PlotError {
    /// Which plot.
    pub(crate) plot: &'static str,
    /// What plotters said.
    pub(crate) detail: String,
}
