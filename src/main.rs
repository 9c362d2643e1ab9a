//! `wxflow`: the only place that prints errors and exits.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wxflow::cli::Cli::parse();
    match wxflow::commands::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code() as u8)
        }
    }
}
