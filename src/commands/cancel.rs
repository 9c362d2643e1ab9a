//! `wxflow cancel ID`: stops a job of the daemon, keeping its checkpoint.

use crate::cli::JobArgs;
use crate::client::{text, Daemon};
use crate::error::Error;

/// `wxflow cancel ID`.
pub fn cancel(args: &JobArgs) -> Result<(), Error> {
    let job =
        Daemon::from(&args.client)?.call(reqwest::Method::DELETE, &format!("/v1/jobs/{}", args.id), None)?;
    println!("job {}: {} (cancelling; its checkpoint is kept)", args.id, text(&job["state"]));
    Ok(())
}
