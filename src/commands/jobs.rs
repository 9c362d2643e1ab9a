//! `wxflow jobs`: the daemon's jobs as a table.

use crate::cli::ClientArgs;
use crate::client::{percent, text, total_restarts, Daemon};
use crate::error::Error;

/// `wxflow jobs`: one line per job.
pub fn jobs(args: &ClientArgs) -> Result<(), Error> {
    let daemon = Daemon::from(args)?;
    let jobs = daemon.call(reqwest::Method::GET, "/v1/jobs", None)?;
    println!(
        "{:<9} {:<10} {:>6} {:>12} {:>8} {:>8}  {:<20} SOURCE",
        "ID", "STATE", "DONE", "ROWS", "REJECTED", "RESTARTS", "OUTPUT"
    );
    for j in jobs.as_array().into_iter().flatten() {
        println!(
            "{:<9} {:<10} {:>6} {:>12} {:>8} {:>8}  {:<20} {}",
            text(&j["id"]),
            text(&j["state"]),
            percent(j),
            j["progress"]["rows"].to_string(),
            j["rejected"].to_string(),
            total_restarts(&j["restarts"]),
            text(&j["output"]),
            text(&j["source"])
        );
    }
    Ok(())
}
