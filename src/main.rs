//! The `warrant` binary: everything happens in the library. The same executable is
//! the Docker CLI plugin and the containerd image verifier, depending on how it is
//! started (see `warrant::plugins::personality`).
use std::ffi::OsString;
use std::process::ExitCode;

use warrant::plugins::{self, Personality};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match plugins::personality(&args) {
        Personality::DockerPlugin => warrant::cli::docker::run(args),
        Personality::ContainerdVerifier => plugins::containerd::run(args),
        Personality::Cli => warrant::cli::run(args),
    }
}
