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
//! `inspect`, ...). Two more exist only here: `pull` and `run` verify the image
//! first and then hand docker the verified `REPO@sha256:...` only, so docker cannot
//! fetch anything but what was verified (`pull` then tags it back to the tag).
//! Docker's global flags (`--context`, `-H`, `--config`, ...) are passed on to
//! those `docker` commands, and `--config DIR` also supplies registry credentials.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use serde::Serialize;

use crate::cli::PinArgs;
use crate::cli::output::{Format, Printer};
use crate::crypto::keystore::PassphraseSource;
use crate::ops::trust::Pin;
use crate::ops::verify::{Verdict, verify_with_roles};
use crate::ops::{Context, OpError};
use crate::policy::Policy;
use crate::store::{ImageRef, Location};

use super::PolicyDecision;

mod args;

use args::{PULL_FLAGS, RUN_FLAGS, split_args, subcommand};

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

/// docker's global flags that take a value (docker CLI 28), so that the plugin
/// name can be told from a flag's value (`docker --context warrant warrant ...`).
const DOCKER_GLOBAL_VALUE_FLAGS: [&str; 10] = [
    "--config",
    "-c",
    "--context",
    "-H",
    "--host",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
];

/// How docker started the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// docker's global flags, to pass on to the `docker` commands we run.
    pub docker_globals: Vec<OsString>,
    /// `docker help warrant`.
    pub help: bool,
    /// Everything after `warrant`.
    pub args: Vec<OsString>,
}

impl Invocation {
    /// Split `argv` (after `argv[0]`): docker's flags, then `warrant` (or `help
    /// warrant`), then ours. Docker has validated its flags, so the first word that
    /// is not one of them or their value is the plugin name; should a future docker
    /// add a global flag this table lacks, the first `warrant` is taken instead.
    pub fn parse(args: &[OsString]) -> Option<Self> {
        let mut globals = Vec::new();
        let mut help = false;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].to_str().unwrap_or_default();
            if a == "warrant" {
                return Some(Self {
                    docker_globals: globals,
                    help,
                    args: args[i + 1..].to_vec(),
                });
            }
            if a == "help" && !help {
                help = true;
            } else if a.starts_with('-') {
                globals.push(args[i].clone());
                if let Some(v) = args
                    .get(i + 1)
                    .filter(|_| DOCKER_GLOBAL_VALUE_FLAGS.contains(&a))
                {
                    globals.push(v.clone());
                    i += 1;
                }
            } else {
                break;
            }
            i += 1;
        }
        let at = args.iter().position(|a| a == "warrant")?;
        Some(Self {
            docker_globals: args[..at]
                .iter()
                .filter(|a| *a != "help")
                .cloned()
                .collect(),
            help: args[..at].iter().any(|a| a == "help"),
            args: args[at + 1..].to_vec(),
        })
    }

    /// The `--config DIR` docker was given (it does not export it to plugins).
    pub fn docker_config(&self) -> Option<PathBuf> {
        let g = &self.docker_globals;
        g.iter().enumerate().find_map(|(i, a)| {
            let a = a.to_str()?;
            if a == "--config" {
                g.get(i + 1).map(PathBuf::from)
            } else {
                a.strip_prefix("--config=").map(PathBuf::from)
            }
        })
    }
}

/// Options of `pull` and `run` that are warrant's: the CLI's global options and
/// `verify`'s trust options. (Kept in step with [`crate::cli::Cli`] by a test.)
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_version_flag = true,
    max_term_width = 100
)]
struct VerifyOpts {
    /// Output format for errors (the pulled image's report goes to stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    output: Format,
    /// State directory: keys, trusted metadata, policy.
    #[arg(long, env = "WARRANT_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Unused by pull and run (accepted like every warrant command).
    #[arg(long, value_name = "FILE", hide = true)]
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
    verbose: u8,
    /// Trust anchor on first use (overrides the policy's anchor).
    #[command(flatten)]
    pin: PinArgs,
    /// Verify policy (TOML); default `$WARRANT_HOME/policy.toml` when it exists.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The image: HOST/REPO:TAG, HOST/REPO@sha256:DIGEST or HOST/REPO:TAG@sha256:DIGEST.
    image: String,
}

/// `docker warrant --help`: the CLI's commands plus `pull` and `run`.
pub fn help() -> String {
    crate::cli::Cli::command()
        .name("docker warrant")
        .bin_name("docker warrant")
        .subcommand(clap::Command::new("pull").about(PULL_ABOUT))
        .subcommand(clap::Command::new("run").about(RUN_ABOUT))
        .render_help()
        .to_string()
}

const PULL_ABOUT: &str =
    "Verify an image, then `docker pull` exactly the verified digest and tag it";
const RUN_ABOUT: &str = "Verify an image, then `docker run` exactly the verified digest";

fn verify_command(sub: &str) -> clap::Command {
    let cmd = VerifyOpts::command();
    match sub {
        "pull" => cmd
            .name("docker warrant pull")
            .about(PULL_ABOUT)
            .override_usage("docker warrant pull [OPTIONS] IMAGE")
            .after_help(
                "Passed on to `docker pull`: --platform PLATFORM, -q/--quiet, --disable-content-trust. \
                 docker pulls REPO@sha256:DIGEST, the digest just verified, and `docker tag`s it as \
                 REPO:TAG.",
            ),
        _ => cmd
            .name("docker warrant run")
            .about(RUN_ABOUT)
            .override_usage("docker warrant run [OPTIONS] [DOCKER RUN OPTIONS] IMAGE [COMMAND] [ARG...]")
            .after_help(
                "`docker run` options (--rm, -it, -p, -v, -e, --name, ...) go before IMAGE as with docker \
                 run; an option warrant does not know must be written --flag=VALUE. docker runs \
                 REPO@sha256:DIGEST, the digest just verified.",
            ),
    }
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
            Some(_) => delegate(&inv),
        },
        Some((i, s @ ("pull" | "run"))) => pull_or_run(&inv, i, s),
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
    let e = OpError::InvalidArgument(msg);
    printer.error(&e);
    ExitCode::from(e.exit_code())
}

fn pull_or_run(inv: &Invocation, at: usize, sub: &str) -> ExitCode {
    let flags = if sub == "pull" {
        &PULL_FLAGS
    } else {
        &RUN_FLAGS
    };
    let human = Printer::new(Format::Human);
    let split = match split_args(&inv.args[at + 1..], flags) {
        Ok(s) => s,
        Err(e) => return usage_error(&human, format!("docker warrant {sub}: {e}")),
    };
    if split.help {
        say(&verify_command(sub).render_long_help().to_string());
        return ExitCode::SUCCESS;
    }
    if sub == "pull" && !split.rest.is_empty() {
        return usage_error(&human, "docker warrant pull takes one IMAGE".into());
    }
    let mut words: Vec<OsString> = inv.args[..at].to_vec();
    words.extend(split.warrant.iter().map(OsString::from));
    words.push("--".into());
    words.push(OsString::from(&split.image));
    let opts = match verify_command(sub)
        .try_get_matches_from(&words)
        .and_then(|m| VerifyOpts::from_arg_matches(&m))
    {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    super::init_logging(opts.verbose);
    let printer = Printer::new(opts.output);
    let image = match verified_image(&opts, inv) {
        Ok(v) => v,
        Err(e) => {
            printer.error(&e);
            return ExitCode::from(e.exit_code());
        }
    };
    let (verdict, tag_as) = image;
    for w in &verdict.warnings {
        printer.warn(w);
    }
    eprintln!(
        "warrant: trusted: {} is {}",
        verdict.reference, verdict.verified
    );
    let pinned = OsString::from(&verdict.verified);
    if sub == "run" {
        return exec_docker(inv, "run", &split.docker, &pinned, &split.rest);
    }
    let code = docker_status(docker(inv).arg("pull").args(&split.docker).arg(&pinned));
    if code != 0 {
        return ExitCode::from(code);
    }
    match tag_as {
        Some(tagged) => ExitCode::from(docker_status(
            docker(inv).arg("tag").arg(&pinned).arg(tagged),
        )),
        None => ExitCode::SUCCESS,
    }
}

/// Verify the image as `warrant verify` does (policy, then pin options); also the
/// `REPO:TAG` to tag the pulled digest as, when the reference has a tag.
fn verified_image(
    opts: &VerifyOpts,
    inv: &Invocation,
) -> Result<(Verdict, Option<String>), OpError> {
    let image =
        ImageRef::parse(&opts.image).map_err(|e| OpError::InvalidArgument(e.to_string()))?;
    if !matches!(image.location, Location::Registry { .. }) {
        return Err(OpError::InvalidArgument(format!(
            "{}: docker pulls from registries; use HOST/REPO:TAG",
            opts.image
        )));
    }
    let home = opts.home.clone().unwrap_or_else(|| {
        super::home_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".warrant")
    });
    let mut ctx = Context::new(home, PassphraseSource::new(opts.passphrase_file.clone()));
    ctx.network.timeout = std::time::Duration::from_secs(opts.timeout.max(1));
    ctx.network.deadline = opts
        .deadline
        .map(|s| std::time::Duration::from_secs(s.max(1)));
    ctx.network.insecure = opts.insecure_registry.clone();
    if let Some(dir) = inv.docker_config() {
        ctx.network.docker_config = Some(dir);
    }
    let policy_path = opts.policy.clone().or_else(|| {
        let p = ctx.home.join("policy.toml");
        p.exists().then_some(p)
    });
    let (mut pin, roles) = match policy_path {
        Some(path) => match super::decide(&Policy::load(&path)?, &image) {
            PolicyDecision::Verify { pin, require_roles } => (pin, require_roles),
            // Pulling unverified is what `docker pull` is for.
            PolicyDecision::AllowUnlisted | PolicyDecision::DenyUnlisted => {
                return Err(OpError::NoPolicy {
                    location: image.location.to_string(),
                });
            }
        },
        None => (Pin::None, Vec::new()),
    };
    if let p @ (Pin::RootFile(_) | Pin::KeyIds(_)) = opts.pin.pin()? {
        pin = p;
    }
    let verdict = verify_with_roles(&ctx, &image, &pin, &roles)?;
    let tag_as = image
        .tag
        .as_ref()
        .map(|t| format!("{}:{t}", image.location));
    Ok((verdict, tag_as))
}

/// The `docker` that started us (what docker puts in
/// `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND`), with its global flags.
fn docker(inv: &Invocation) -> Command {
    let program = std::env::var_os(ORIGINAL_CLI_COMMAND)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from("docker"));
    let mut c = Command::new(program);
    c.args(&inv.docker_globals)
        .env_remove(ORIGINAL_CLI_COMMAND)
        .env_remove("DOCKER_CLI_PLUGIN_SOCKET");
    c
}

fn docker_program() -> String {
    std::env::var(ORIGINAL_CLI_COMMAND).unwrap_or_else(|_| "docker".into())
}

/// Run a docker command; its exit status (128 + signal when killed).
fn docker_status(c: &mut Command) -> u8 {
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
fn exec_docker(
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

#[cfg(test)]
mod tests {
    use super::args::WARRANT_VALUE_FLAGS;
    use super::*;

    fn os(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

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
    fn invocations_split_at_the_plugin_name() {
        let inv = Invocation::parse(&os(&["warrant", "verify", "a:1"])).expect("plain");
        assert!(inv.docker_globals.is_empty() && !inv.help);
        assert_eq!(inv.args, os(&["verify", "a:1"]));
        let inv = Invocation::parse(&os(&[
            "--context",
            "warrant",
            "-D",
            "--config=/c",
            "warrant",
            "pull",
            "warrant:1",
        ]))
        .expect("globals");
        assert_eq!(
            inv.docker_globals,
            os(&["--context", "warrant", "-D", "--config=/c"])
        );
        assert_eq!(inv.args, os(&["pull", "warrant:1"]));
        assert_eq!(inv.docker_config(), Some(PathBuf::from("/c")));
        let inv = Invocation::parse(&os(&["help", "warrant"])).expect("help");
        assert!(inv.help && inv.args.is_empty() && inv.docker_globals.is_empty());
        let inv =
            Invocation::parse(&os(&["--future", "x", "warrant", "verify"])).expect("fallback");
        assert_eq!(inv.docker_globals, os(&["--future", "x"]));
        assert_eq!(inv.args, os(&["verify"]));
        assert!(Invocation::parse(&os(&["verify", "a:1"])).is_none());
    }

    #[test]
    fn plugin_options_keep_step_with_the_cli_globals() {
        use clap::CommandFactory as _;
        let ours = VerifyOpts::command();
        for arg in crate::cli::Cli::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            assert!(
                ours.get_arguments().any(|a| a.get_long() == Some(long)),
                "--{long} of the CLI is missing from docker warrant pull/run"
            );
            let takes_value = arg.get_action().takes_values();
            assert_eq!(
                takes_value,
                WARRANT_VALUE_FLAGS[..6].contains(&long),
                "--{long}: value table out of step"
            );
        }
    }

    #[test]
    fn help_lists_pull_and_run_with_the_cli_commands() {
        let h = help();
        for word in ["docker warrant", "pull", "run", "verify", "sign", "inspect"] {
            assert!(h.contains(word), "{word}: {h}");
        }
    }
}
