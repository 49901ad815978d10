//! The `warrant` binary: everything happens in the library.
use std::process::ExitCode;

fn main() -> ExitCode {
    warrant::cli::run(std::env::args_os())
}
