//! Running the `docker` that started the plugin, with docker's global flags.

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitCode};

use super::ORIGINAL_CLI_COMMAND;
use super::invocation::Invocation;

/// The `docker` that started us (what docker puts in
/// `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND`), with its global flags.
pub(super) fn docker(inv: &Invocation) -> Command {
    let program = std::env::var_os(ORIGINAL_CLI_COMMAND)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from("docker"));
    let mut c = Command::new(program);
    c.args(&inv.docker_globals)
        .env_remove(ORIGINAL_CLI_COMMAND)
        .env_remove("DOCKER_CLI_PLUGIN_SOCKET");
    c
}

pub(super) fn docker_program() -> String {
    std::env::var(ORIGINAL_CLI_COMMAND).unwrap_or_else(|_| "docker".into())
}

/// Run a docker command; its exit status (128 + signal when killed).
pub(super) fn docker_status(c: &mut Command) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match c.status() {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(code), _) => u8::try_from(code).unwrap_or(1),
            (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
            (None, None) => 1,
        },
        Err(e) => {
            eprintln!(
                "warrant: error: cannot run {}: {e}; is the docker CLI installed?",
                docker_program()
            );
            3
        }
    }
}

/// Become `docker run ... REPO@DIGEST ARG...`: signals, the terminal and the exit
/// status are then docker's own.
pub(super) fn exec_docker(
    inv: &Invocation,
    sub: &str,
    options: &[OsString],
    pinned: &OsStr,
    rest: &[OsString],
) -> ExitCode {
    use std::os::unix::process::CommandExt as _;
    let e = docker(inv)
        .arg(sub)
        .args(options)
        .arg(pinned)
        .args(rest)
        .exec();
    eprintln!(
        "warrant: error: cannot run {}: {e}; is the docker CLI installed?",
        docker_program()
    );
    ExitCode::from(3)
}
