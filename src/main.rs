//! Thin entry point: parse arguments, run the library, map the outcome to
//! an exit code. The only place `anyhow`-style reporting happens.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sockmap::cli::Cli;
use sockmap::error::{exit, Error};

fn main() -> ExitCode {
    // Writing to a closed pipe (`sockmap inspect | head -1`) must end
    // quietly: with SIGPIPE ignored (Rust's default) a write returns
    // EPIPE, which we map to a quiet exit 0 below.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let result = cli.into_command().and_then(sockmap::app::run);
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let report = anyhow::Error::new(e);
            // Not eprintln!: it panics when stderr cannot be written
            // (`2>/dev/full`); the exit code still tells what happened.
            let _ = writeln!(std::io::stderr(), "sockmap: {report:#}");
            let code = report
                .downcast_ref::<Error>()
                .map_or(exit::KERNEL, Error::exit_code);
            ExitCode::from(code as u8)
        }
    }
}
