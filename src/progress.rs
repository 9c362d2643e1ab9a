//! Progress: shared counters, shown as a bar on a terminal or as periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters updated by the fetcher and the checkpoint actor, read by the display.
#[derive(Debug, Default)]
pub struct Progress {
    bytes: AtomicU64,
    total: AtomicU64,
    rows: AtomicU64,
    rejected: AtomicU64,
}

impl Progress {
    /// Fresh counters.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// Records the input size when known (0 = unknown).
    pub fn set_total(&self, total: Option<u64>) {
        self.total.store(total.unwrap_or(0), Ordering::Relaxed);
    }

    /// Starts a (re)started run at a checkpoint's byte, row and reject counts, so that counters
    /// read by others (the daemon's API) stay absolute across restarts.
    pub fn restart_at(&self, (bytes, rows, rejected): (u64, u64, u64)) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.rows.store(rows, Ordering::Relaxed);
        self.rejected.store(rejected, Ordering::Relaxed);
    }

    /// Bytes read, total size (0 = unknown), rows processed and rows rejected, for the API.
    pub fn read(&self) -> (u64, u64, u64, u64) {
        let (bytes, total, rows) = self.snapshot();
        (bytes, total, rows, self.rejected.load(Ordering::Relaxed))
    }

    /// Adds rows rejected (counted once their chunk is accounted for, in line order).
    pub fn rows_rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds bytes read from the source.
    pub fn bytes_read(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds rows fully processed.
    pub fn rows_done(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            self.rows.load(Ordering::Relaxed),
        )
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// indicatif bar on stderr.
    Bar,
    /// `tracing` info lines every interval.
    Log(Duration),
    /// Nothing.
    Off,
}

impl Display {
    /// Resolves `log.progress` (`auto`, `bar`, `log`, `off`) against whether stderr is a terminal.
    pub fn choose(setting: &str, interval: Duration) -> Display {
        match setting {
            "bar" => Display::Bar,
            "log" => Display::Log(interval),
            "off" => Display::Off,
            _ if std::io::stderr().is_terminal() => Display::Bar,
            _ => Display::Log(interval),
        }
    }
}

/// Shows progress until dropped.
pub struct Reporter {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts showing progress on the current actix/tokio runtime.
pub fn start(progress: Arc<Progress>, display: Display) -> Reporter {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let tick = match display {
        Display::Off => return Reporter { stop: None },
        Display::Bar => Duration::from_millis(100),
        Display::Log(every) => every,
    };
    let bar = (display == Display::Bar).then(new_bar);
    actix::spawn(async move {
        let started = Instant::now();
        let mut interval = tokio::time::interval(tick);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = interval.tick() => show(&progress, bar.as_ref(), started.elapsed()),
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    });
    Reporter { stop: Some(stop) }
}

fn new_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
            .expect("valid template"),
    );
    bar
}

fn show(progress: &Progress, bar: Option<&ProgressBar>, elapsed: Duration) {
    let (bytes, total, rows) = progress.snapshot();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = rows as f64 / secs;
    match bar {
        Some(bar) => {
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(bytes);
            bar.set_message(format!("{rows} rows ({rate:.0} rows/s)"));
        }
        None => {
            let eta = if total > bytes && bytes > 0 {
                format!(", ETA {:.0}s", (total - bytes) as f64 * secs / bytes as f64)
            } else {
                String::new()
            };
            let mb = bytes as f64 / 1e6;
            tracing::info!("progress: {mb:.1} MB read, {rows} rows processed, {rate:.0} rows/s{eta}");
        }
    }
}
