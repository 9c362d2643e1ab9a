//! `wxflow status ID [--watch]`: one job of the daemon, optionally followed to its end.

use std::time::Duration;

use crate::cli::StatusArgs;
use crate::client::{is_final, print_job, text, total_restarts, Daemon};
use crate::error::{Error, ExitCode};

/// `wxflow status ID [--watch]`.
pub fn status(args: &StatusArgs) -> Result<(), Error> {
    let daemon = Daemon::from(&args.job.client)?;
    let path = format!("/v1/jobs/{}", args.job.id);
    let mut job = daemon.call(reqwest::Method::GET, &path, None)?;
    if args.watch {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg}")
                .expect("valid template"),
        );
        while !is_final(&job) {
            let p = &job["progress"];
            bar.set_length(p["total_bytes"].as_u64().unwrap_or(0));
            bar.set_position(p["bytes"].as_u64().unwrap_or(0));
            bar.set_message(format!(
                "{} {} rows, {} rows/s, {} restarts",
                text(&job["state"]),
                p["rows"],
                p["rows_per_sec"],
                total_restarts(&job["restarts"])
            ));
            std::thread::sleep(Duration::from_millis(500));
            job = daemon.call(reqwest::Method::GET, &path, None)?;
        }
        bar.finish_and_clear();
    }
    print_job(&job);
    match text(&job["state"]) {
        "failed" => Err(Error::JobFailed {
            id: args.job.id.clone(),
            message: text(&job["error"]).to_string(),
            code: job["exit_code"].as_u64().and_then(ExitCode::from_number).unwrap_or(ExitCode::Internal),
        }),
        _ => Ok(()),
    }
}
