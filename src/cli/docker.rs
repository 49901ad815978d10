//! The Docker CLI plugin: `docker warrant ...`.
//!
//! Installed as `docker-warrant` in a `cli-plugins` directory (`warrant install
//! docker-plugin`), the binary speaks docker's plugin protocol (checked against
//! docker CLI 28.2):
//!
//! * discovery runs `docker-warrant docker-cli-plugin-metadata`, which prints only
//!   the [`Metadata`] JSON;
//! * `docker [GLOBAL FLAGS] warrant ARGS...` runs `docker-warrant [GLOBAL FLAGS]
//!   warrant ARGS...`; `docker help warrant` runs `docker-warrant help warrant`;
//!   the exit status goes back through `docker`.
//!
//! Every `warrant` command works under `docker warrant` (`sign`, `verify`,
//! `inspect`, ...). Three more exist only here: `pull` and `run` verify the image
//! first and then hand docker the verified `REPO@sha256:...` only, so docker cannot
//! fetch anything but what was verified (`pull` then tags it back to the tag)
//! ([`pull`]); `push` pushes through docker and signs the digest the push reported
//! ([`push`]). Docker's global flags (`--context`, `-H`, `--config`, ...) are passed on to
//! those `docker` commands, and `--config DIR` also supplies registry credentials.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::CommandFactory as _;
use serde::Serialize;

use crate::cli::output::Printer;
use crate::crypto::keystore::PassphraseSource;
use crate::ops::{Context, OpError};

mod args;
mod command;
mod invocation;
mod pull;
mod push;

use args::subcommand;
pub use invocation::Invocation;
use pull::{PULL_ABOUT, RUN_ABOUT, pull_or_run, verify_command};
use push::{PUSH_ABOUT, push};

/// The variable through which docker tells a plugin how it was itself invoked.
pub const ORIGINAL_CLI_COMMAND: &str = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND";

/// What `docker-cli-plugin-metadata` prints (docker's `plugin.Metadata`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// Always `0.1.0`: the only schema docker knows.
    pub schema_version: &'static str,
    /// Who makes the plugin.
    pub vendor: &'static str,
    /// warrant's version.
    pub version: &'static str,
    /// Shown next to the command in `docker --help`.
    pub short_description: &'static str,
    /// Where to read more (the package's repository, when it names one).
    #[serde(rename = "URL", skip_serializing_if = "str::is_empty")]
    pub url: &'static str,
}

/// This plugin's metadata.
pub fn metadata() -> Metadata {
    Metadata {
        schema_version: "0.1.0",
        vendor: "warrant",
        version: env!("CARGO_PKG_VERSION"),
        short_description: "Verify images with TUF before pulling or running them (warrant)",
        url: env!("CARGO_PKG_REPOSITORY"),
    }
}

/// `docker warrant --help`: the CLI's commands plus `pull` and `run`.
pub fn help() -> String {
    crate::cli::Cli::command()
        .name("docker warrant")
        .bin_name("docker warrant")
        .subcommand(clap::Command::new("pull").about(PULL_ABOUT))
        .subcommand(clap::Command::new("run").about(RUN_ABOUT))
        .subcommand(clap::Command::new("push").about(PUSH_ABOUT))
        .render_help()
        .to_string()
}

/// The plugin process: `args` is the whole `argv`.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let rest = args.get(1..).unwrap_or_default();
    if rest
        .first()
        .is_some_and(|a| a == "docker-cli-plugin-metadata")
    {
        return match serde_json::to_string(&metadata()) {
            Ok(json) => {
                say(&format!("{json}\n"));
                ExitCode::SUCCESS
            }
            Err(_) => ExitCode::from(3),
        };
    }
    let Some(inv) = Invocation::parse(rest) else {
        eprintln!(
            "warrant: error: docker-warrant is a Docker CLI plugin: run it as `docker warrant ...` (or run `warrant` itself)"
        );
        return ExitCode::from(2);
    };
    let sub = subcommand(&inv.args);
    let wants_help = inv.help
        || inv.args.is_empty()
        || (sub.is_none() && inv.args.iter().any(|a| a == "--help" || a == "-h"));
    if wants_help {
        say(&help());
        return ExitCode::SUCCESS;
    }
    match sub {
        Some((i, "help")) => match inv.args.get(i + 1).and_then(|a| a.to_str()) {
            None => {
                say(&help());
                ExitCode::SUCCESS
            }
            Some(s @ ("pull" | "run")) => {
                say(&verify_command(s).render_long_help().to_string());
                ExitCode::SUCCESS
            }
            Some("push") => {
                say(&push::push_command().render_long_help().to_string());
                ExitCode::SUCCESS
            }
            Some(_) => delegate(&inv),
        },
        Some((i, s @ ("pull" | "run"))) => pull_or_run(&inv, i, s),
        Some((i, "push")) => push(&inv, i),
        _ => delegate(&inv),
    }
}

/// Write to stdout; a reader that went away is no reason to panic.
fn say(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Every other command is the CLI's, named `docker warrant` in its messages.
fn delegate(inv: &Invocation) -> ExitCode {
    let argv = std::iter::once(OsString::from("docker warrant")).chain(inv.args.iter().cloned());
    match inv.docker_config() {
        None => crate::cli::run(argv),
        // The credentials come from DOCKER_CONFIG, which a library cannot set for
        // itself safely: run the CLI in this same binary with it in the environment.
        Some(dir) => {
            use std::os::unix::process::CommandExt as _;
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => {
                    eprintln!("warrant: error: cannot find this executable to apply --config: {e}");
                    return ExitCode::from(3);
                }
            };
            let mut argv = argv;
            let arg0 = argv.next().unwrap_or_default();
            let e = Command::new(exe)
                .arg0(arg0)
                .args(argv)
                .env("DOCKER_CONFIG", dir)
                .exec();
            eprintln!("warrant: error: cannot run warrant with --config: {e}");
            ExitCode::from(3)
        }
    }
}

fn usage_error(printer: &Printer, msg: String) -> ExitCode {
    let e = OpError::Usage { problem: msg };
    printer.error(&e);
    ExitCode::from(e.exit_code())
}

/// The warrant options `pull`, `run` and `push` share (the CLI's global options
/// and the trust anchor).
#[derive(Debug, clap::Args)]
pub(super) struct CommonOpts {
    /// State directory: keys, trusted metadata, policy.
    #[arg(long, env = "WARRANT_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Read the key passphrase from this file (else WARRANT_PASSPHRASE, else a
    /// prompt); only `push` signs.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Per-request registry timeout, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    timeout: u64,
    /// Registry time the whole command may spend, in seconds (default: four
    /// times --timeout).
    #[arg(long, value_name = "SECS")]
    deadline: Option<u64>,
    /// Allow plain HTTP to this registry (`host[:port]`; repeatable).
    #[arg(
        long = "insecure-registry",
        env = "WARRANT_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    insecure_registry: Vec<String>,
    /// Log progress to stderr (`--verbose`; `-v` only before the subcommand).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Trust anchor on first use (overrides the policy's anchor).
    #[command(flatten)]
    pub(super) pin: crate::cli::PinArgs,
}

impl CommonOpts {
    /// The context of one `pull`/`run`/`push`, as the CLI's global options make
    /// it; docker's `--config DIR` also supplies the registry credentials.
    pub(super) fn context(&self, inv: &Invocation) -> Context {
        let home = self.home.clone().unwrap_or_else(|| {
            crate::plugins::home_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".warrant")
        });
        let mut ctx = Context::new(home, PassphraseSource::new(self.passphrase_file.clone()));
        ctx.network.timeout = std::time::Duration::from_secs(self.timeout.max(1));
        ctx.network.deadline = self
            .deadline
            .map(|s| std::time::Duration::from_secs(s.max(1)));
        ctx.network.insecure = self.insecure_registry.clone();
        if let Some(dir) = inv.docker_config() {
            ctx.network.docker_config = Some(dir);
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_docker_schema_0_1_0() {
        let v = serde_json::to_value(metadata()).expect("json");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        for k in &keys {
            assert!(
                [
                    "SchemaVersion",
                    "Vendor",
                    "Version",
                    "ShortDescription",
                    "URL"
                ]
                .contains(&k.as_str()),
                "{k}"
            );
        }
        assert_eq!(v["SchemaVersion"], "0.1.0");
        assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn help_lists_pull_and_run_with_the_cli_commands() {
        let h = help();
        for word in ["docker warrant", "pull", "run", "verify", "sign", "inspect"] {
            assert!(h.contains(word), "{word}: {h}");
        }
    }
}
