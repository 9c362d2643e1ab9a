//! `wxflow config check`: the resolved configuration with each value's origin, or every problem.

use crate::cli::ConfigArgs;
use crate::config;
use crate::error::Error;

use super::resolve;

/// Prints the resolved configuration (validation errors come back as the error).
pub fn config_check(args: &ConfigArgs) -> Result<(), Error> {
    let resolved = resolve(args)?;
    print!("{}", config::render(&resolved));
    Ok(())
}
