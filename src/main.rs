//! `wxflow`: the only place that prints errors and exits.

use clap::Parser;

fn main() -> std::process::ExitCode {
    exit_on_bus_error();
    let cli = wxflow::cli::Cli::parse();
    match wxflow::commands::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// What [`exit_on_bus_error`] prints: safe Rust raises SIGBUS only through a mapped file that
/// became shorter than its mapping (`pipeline.map_files`).
const BUS_ERROR: &str = "error: the input file became shorter while wxflow was reading it (SIGBUS on a \
     mapped page): another program truncated or rewrote it. Run again once the file is complete (a \
     checkpoint resumes only if the file is unchanged), or read it without mapping: --set \
     pipeline.map_files=false\n";

/// A mapped input file truncated mid-run raises SIGBUS, which would kill the process without a
/// word (exit 135). This says what happened and exits with the I/O code instead. The handler may
/// only make async-signal-safe calls, and must not return (the faulting read would repeat), so it
/// writes a fixed message and `_exit`s.
#[cfg(unix)]
fn exit_on_bus_error() {
    extern "C" fn on_bus_error(_: libc::c_int) {
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a static string.
        unsafe {
            libc::write(2, BUS_ERROR.as_ptr().cast(), BUS_ERROR.len());
            libc::_exit(wxflow::error::ExitCode::Io as libc::c_int);
        }
    }
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler is an extern "C" fn
    // that lives for the whole process.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_bus_error as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn exit_on_bus_error() {}
