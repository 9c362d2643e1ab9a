//! `wxflow resume ID`: continues a failed or cancelled job of the daemon from its checkpoint.

use crate::cli::JobArgs;
use crate::client::{text, Daemon};
use crate::error::Error;

/// `wxflow resume ID`.
pub fn resume(args: &JobArgs) -> Result<(), Error> {
    let path = format!("/v1/jobs/{}/resume", args.id);
    let job = Daemon::from(&args.client)?.call(reqwest::Method::POST, &path, None)?;
    println!("job {}: {}", args.id, text(&job["state"]));
    Ok(())
}
