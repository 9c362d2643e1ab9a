//! `wxflow daemon`: the local service (see [`crate::daemon`]).

use crate::cli::ClientArgs;
use crate::config::{self, Layers};
use crate::error::Error;

use super::init_logging;

/// `wxflow daemon`: the configuration layers as for `run` (file and environment), then serve.
pub fn daemon(args: &ClientArgs) -> Result<(), Error> {
    let resolved = config::resolve(&Layers::from_process(args.config.clone(), Vec::new()))?;
    init_logging(&resolved.plan);
    crate::daemon::serve(&resolved.plan, args.config.clone())
}
