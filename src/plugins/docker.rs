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
                if DOCKER_GLOBAL_VALUE_FLAGS.contains(&a) {
                    if let Some(v) = args.get(i + 1) {
                        globals.push(v.clone());
                        i += 1;
                    }
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

/// warrant's options that take a value, by long name.
const WARRANT_VALUE_FLAGS: [&str; 8] = [
    "output",
    "home",
    "passphrase-file",
    "timeout",
    "insecure-registry",
    "root",
    "root-keyid",
    "policy",
];

/// One docker subcommand's options, to find IMAGE among them.
struct DockerFlags {
    /// Long switches (no value).
    bool_long: &'static [&'static str],
    /// Long options with a value.
    value_long: &'static [&'static str],
    /// Short switches.
    bool_short: &'static str,
    /// Short options with a value.
    value_short: &'static str,
    /// Options refused, with why.
    refused: &'static [(&'static str, &'static str)],
}

const PULL_FLAGS: DockerFlags = DockerFlags {
    bool_long: &["disable-content-trust", "quiet"],
    value_long: &["platform"],
    bool_short: "q",
    value_short: "",
    refused: &[
        ("all-tags", "pulls every tag, verified or not"),
        ("a", "pulls every tag, verified or not"),
    ],
};

/// `docker run` as of docker CLI 28.
const RUN_FLAGS: DockerFlags = DockerFlags {
    bool_long: &[
        "detach",
        "disable-content-trust",
        "init",
        "interactive",
        "no-healthcheck",
        "oom-kill-disable",
        "privileged",
        "publish-all",
        "quiet",
        "read-only",
        "rm",
        "sig-proxy",
        "tty",
        "use-api-socket",
    ],
    value_long: &[
        "add-host",
        "annotation",
        "attach",
        "blkio-weight",
        "blkio-weight-device",
        "cap-add",
        "cap-drop",
        "cgroup-parent",
        "cgroupns",
        "cidfile",
        "cpu-count",
        "cpu-percent",
        "cpu-period",
        "cpu-quota",
        "cpu-rt-period",
        "cpu-rt-runtime",
        "cpu-shares",
        "cpus",
        "cpuset-cpus",
        "cpuset-mems",
        "detach-keys",
        "device",
        "device-cgroup-rule",
        "device-read-bps",
        "device-read-iops",
        "device-write-bps",
        "device-write-iops",
        "dns",
        "dns-option",
        "dns-search",
        "domainname",
        "entrypoint",
        "env",
        "env-file",
        "expose",
        "gpus",
        "group-add",
        "health-cmd",
        "health-interval",
        "health-retries",
        "health-start-interval",
        "health-start-period",
        "health-timeout",
        "hostname",
        "io-maxbandwidth",
        "io-maxiops",
        "ip",
        "ip6",
        "ipc",
        "isolation",
        "kernel-memory",
        "label",
        "label-file",
        "link",
        "link-local-ip",
        "log-driver",
        "log-opt",
        "mac-address",
        "memory",
        "memory-reservation",
        "memory-swap",
        "memory-swappiness",
        "mount",
        "name",
        "network",
        "network-alias",
        "oom-score-adj",
        "pid",
        "pids-limit",
        "platform",
        "publish",
        "pull",
        "restart",
        "runtime",
        "security-opt",
        "shm-size",
        "stop-signal",
        "stop-timeout",
        "storage-opt",
        "sysctl",
        "tmpfs",
        "ulimit",
        "user",
        "userns",
        "uts",
        "volume",
        "volume-driver",
        "volumes-from",
        "workdir",
    ],
    bool_short: "diPqt",
    value_short: "acehlmpuvw",
    refused: &[],
};

/// A `pull`/`run` command line taken apart.
#[derive(Debug, Default, PartialEq, Eq)]
struct Split {
    /// warrant's options (for [`VerifyOpts`]).
    warrant: Vec<String>,
    /// docker's options, passed on unchanged.
    docker: Vec<OsString>,
    /// IMAGE.
    image: String,
    /// What follows IMAGE (the container's command).
    rest: Vec<OsString>,
    /// `--help` was asked for.
    help: bool,
}

/// Find IMAGE in `[OPTIONS] IMAGE [ARG...]`, where OPTIONS mixes warrant's long
/// options and docker's. An option neither knows is ambiguous (does it take the
/// next word?) and refused unless written `--flag=value`: guessing wrong would
/// verify one image and hand docker another.
fn split_args(tokens: &[OsString], docker: &DockerFlags) -> Result<Split, String> {
    let mut s = Split::default();
    let mut i = 0;
    let value_of = |i: usize, flag: &str| -> Result<OsString, String> {
        tokens
            .get(i + 1)
            .cloned()
            .ok_or_else(|| format!("option {flag} needs a value"))
    };
    while i < tokens.len() {
        let t = tokens[i]
            .to_str()
            .ok_or("an option before IMAGE is not UTF-8")?;
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if let Some((_, why)) = docker.refused.iter().find(|(f, _)| *f == name) {
                return Err(format!("--{name} is not allowed here: it {why}"));
            }
            if name == "help" {
                s.help = true;
            } else if WARRANT_VALUE_FLAGS.contains(&name) || name == "verbose" {
                s.warrant.push(t.to_owned());
                if !inline && name != "verbose" {
                    let v = value_of(i, t)?;
                    s.warrant
                        .push(v.to_str().ok_or("option values must be UTF-8")?.to_owned());
                    i += 1;
                }
            } else if docker.bool_long.contains(&name) || inline {
                s.docker.push(tokens[i].clone());
            } else if docker.value_long.contains(&name) {
                s.docker.push(tokens[i].clone());
                s.docker.push(value_of(i, t)?);
                i += 1;
            } else {
                return Err(format!(
                    "unknown option --{name}: write it as --{name}=VALUE (or --{name}=true for a switch) so that IMAGE is unambiguous"
                ));
            }
        } else {
            // A cluster of short options: switches, then at most one option whose
            // value is the rest of the cluster or the next word.
            let cluster = &t[1..];
            let mut takes_next = false;
            for (k, c) in cluster.char_indices() {
                if let Some((_, why)) = docker
                    .refused
                    .iter()
                    .find(|(f, _)| f.len() == 1 && f.starts_with(c))
                {
                    return Err(format!("-{c} is not allowed here: it {why}"));
                }
                if docker.bool_short.contains(c) {
                    continue;
                }
                if docker.value_short.contains(c) {
                    let rest = &cluster[k + c.len_utf8()..];
                    takes_next = rest.is_empty();
                    break;
                }
                return Err(format!(
                    "unknown option -{c} in {t}: use its long form, as --flag=VALUE if unsure"
                ));
            }
            s.docker.push(tokens[i].clone());
            if takes_next {
                s.docker.push(value_of(i, t)?);
                i += 1;
            }
        }
        i += 1;
    }
    if s.help {
        return Ok(s);
    }
    let image = tokens.get(i).ok_or("IMAGE is missing")?;
    s.image = image.to_str().ok_or("IMAGE is not UTF-8")?.to_owned();
    s.rest = tokens[i + 1..].to_vec();
    Ok(s)
}

/// The first word of warrant's arguments that is not a global option or its
/// value: the subcommand, and its index.
fn subcommand(args: &[OsString]) -> Option<(usize, &str)> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_str()?;
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && WARRANT_VALUE_FLAGS[..5].contains(&long) {
                i += 1;
            }
        } else if !a.starts_with('-') {
            return Some((i, a));
        }
        i += 1;
    }
    None
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
                println!("{json}");
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
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    match sub {
        Some((i, "help")) => match inv.args.get(i + 1).and_then(|a| a.to_str()) {
            None => {
                print!("{}", help());
                ExitCode::SUCCESS
            }
            Some(s @ ("pull" | "run")) => {
                print!("{}", verify_command(s).render_long_help());
                ExitCode::SUCCESS
            }
            Some(_) => delegate(&inv),
        },
        Some((i, s @ ("pull" | "run"))) => pull_or_run(&inv, i, s),
        _ => delegate(&inv),
    }
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
        print!("{}", verify_command(sub).render_long_help());
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
    if let Some(root) = &opts.pin.root {
        pin = Pin::RootFile(root.clone());
    } else if !opts.pin.root_keyid.is_empty() {
        pin = Pin::KeyIds(opts.pin.root_keyid.clone());
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
    fn the_subcommand_is_found_after_global_options() {
        let sub = |a: &[&str]| subcommand(&os(a)).map(|(i, s)| (i, s.to_owned()));
        assert_eq!(sub(&["pull", "x"]), Some((0, "pull".into())));
        assert_eq!(
            sub(&["--timeout", "5", "-v", "--output=json", "run", "x"]),
            Some((4, "run".into()))
        );
        assert_eq!(
            sub(&["--home", "pull", "verify"]),
            Some((2, "verify".into()))
        );
        assert_eq!(sub(&["--help"]), None);
    }

    #[test]
    fn docker_run_options_are_told_from_image_and_command() {
        let s = split_args(
            &os(&[
                "--rm",
                "-it",
                "-e",
                "A=1",
                "--root",
                "r.json",
                "-p8080:80",
                "--name",
                "web",
                "--policy=p.toml",
                "-v",
                "/a:/b",
                "--future=x",
                "reg/app:1",
                "sh",
                "-c",
                "echo",
            ]),
            &RUN_FLAGS,
        )
        .expect("split");
        assert_eq!(s.image, "reg/app:1");
        assert_eq!(s.warrant, ["--root", "r.json", "--policy=p.toml"]);
        assert_eq!(
            s.docker,
            os(&[
                "--rm",
                "-it",
                "-e",
                "A=1",
                "-p8080:80",
                "--name",
                "web",
                "-v",
                "/a:/b",
                "--future=x"
            ])
        );
        assert_eq!(s.rest, os(&["sh", "-c", "echo"]));
        let s = split_args(&os(&["--", "-weird"]), &RUN_FLAGS).expect("after --");
        assert_eq!(s.image, "-weird");
        assert!(split_args(&os(&["--help"]), &RUN_FLAGS).expect("help").help);
        for bad in [
            &["--future", "x", "img"][..],
            &["-Z", "img"],
            &["--rm"],
            &["-e"],
        ] {
            assert!(split_args(&os(bad), &RUN_FLAGS).is_err(), "{bad:?}");
        }
        let s = split_args(
            &os(&["-q", "--platform", "linux/arm64", "img:1"]),
            &PULL_FLAGS,
        )
        .expect("pull");
        assert_eq!(s.docker, os(&["-q", "--platform", "linux/arm64"]));
        for bad in [&["-a", "img"][..], &["--all-tags", "img"], &["-qa", "img"]] {
            assert!(split_args(&os(bad), &PULL_FLAGS).is_err(), "{bad:?}");
        }
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
                WARRANT_VALUE_FLAGS[..5].contains(&long),
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
