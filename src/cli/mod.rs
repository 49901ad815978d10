//! The command line: clap definitions (doc comments are the help text), one file per
//! subcommand, output formatting in [`output`]. No logic lives here.

pub mod docker;
mod docs;
mod export;
mod import;
mod init;
mod inspect;
mod install;
mod key;
mod lifecycle;
pub mod output;
mod requests;
mod roles;
mod serve;
mod sign;
mod verify;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::crypto::keystore::PassphraseSource;
use crate::ops::trust::Pin;
use crate::ops::{Context, OpError};
use output::{Format, Printer};

/// TUF content trust for container images and OCI artifacts, stored next to the
/// image in its own repository. No signing server.
#[derive(Debug, Parser)]
#[command(
    name = "warrant",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Output format for reports (and errors: with json, a usage error is a JSON
    /// document on stdout too). The fields are documented in docs/json-output.md.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Human)]
    pub output: Format,
    /// State directory: keys, trusted metadata, policy.
    #[arg(long, global = true, env = "WARRANT_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Read the key passphrase from the first line of FILE (else WARRANT_PASSPHRASE,
    /// else a prompt on a terminal).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Per-request registry timeout, in seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    /// Registry time the whole command may spend, in seconds: requests, retries
    /// and token requests together (each gets what is left, at most --timeout).
    /// Default: four times --timeout.
    #[arg(long, global = true, value_name = "SECS")]
    pub deadline: Option<u64>,
    /// Allow plain HTTP to this registry (`host[:port]`; repeatable). Loopback
    /// registries always may; everything else is HTTPS only.
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "WARRANT_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub insecure_registry: Vec<String>,
    /// Log each TUF step and registry request to stderr (-vv: retries and cache
    /// decisions too; or set WARRANT_LOG / RUST_LOG to a filter).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage signing keys (encrypted at rest).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Create the TUF repository of an image repository: keys, root, targets,
    /// snapshot, timestamp.
    Init(init::InitArgs),
    /// Sign an image: record its manifest digest as a TUF target and publish.
    Sign(sign::SignArgs),
    /// Verify an image against its TUF metadata; exit 0 only when trusted.
    Verify(verify::VerifyArgs),
    /// Show a repository's verified roles, keys and targets.
    Inspect(inspect::InspectArgs),
    /// Write the TUF metadata as plain files for any TUF client.
    Export(export::ExportArgs),
    /// Manage delegated roles (who may vouch for which tags).
    #[command(subcommand)]
    Delegation(roles::DelegationCommand),
    /// List role versions waiting for signatures, with what they change.
    Pending(roles::PendingArgs),
    /// Co-sign a pending role version (shows what it changes first).
    Approve(roles::ApproveArgs),
    /// Re-sign snapshot and timestamp (fresh expiry) and publish fully signed
    /// pending versions; run it from a CI cron with the publisher key.
    Refresh(roles::RefreshArgs),
    /// Remove an image's target: verifying it then fails.
    Unsign(lifecycle::UnsignArgs),
    /// Re-sign roles unchanged with a fresh expiry (the way back from an expired
    /// root or targets role; snapshot and timestamp are what `refresh` renews).
    Renew(lifecycle::RenewArgs),
    /// Every role's version and expiry; exit 1 when one has expired or the
    /// repository does not verify.
    Status(lifecycle::StatusArgs),
    /// Install warrant as the Docker CLI plugin or the containerd image verifier.
    #[command(subcommand)]
    Install(install::InstallCommand),
    /// Run a server: the Kubernetes admission webhook.
    #[command(subcommand)]
    Serve(serve::ServeCommand),
    /// Print a shell completion script (bash, zsh, fish, ...).
    ///
    /// bash: `warrant completions bash > /etc/bash_completion.d/warrant`; zsh: into a
    /// directory of $fpath as `_warrant`; fish: `~/.config/fish/completions/warrant.fish`.
    Completions(docs::CompletionsArgs),
    /// Print the manual page warrant(1), or write one per command with --out-dir.
    Man(docs::ManArgs),
    /// Import a repository of another trust system (Notary v1 / Docker Content Trust).
    #[command(subcommand)]
    Import(import::ImportCommand),
}

/// How a verifier pins trust on first use (shared by verify, inspect, sign).
#[derive(Debug, Clone, clap::Args)]
pub struct PinArgs {
    /// Trust this root.json (e.g. the repository's 1.root.json, obtained out of band).
    #[arg(long, value_name = "FILE", conflicts_with = "root_keyid")]
    pub root: Option<PathBuf>,
    /// Trust a root signed by a threshold of these root key ids (repeatable; prefixes
    /// of 32+ hex digits allowed; ids are recomputed from the keys).
    #[arg(long = "root-keyid", value_name = "ID")]
    pub root_keyid: Vec<String>,
    /// How many distinct pinned root keys must sign the root, whatever threshold the
    /// root declares (default: every --root-keyid given).
    #[arg(long = "root-threshold", value_name = "N", requires = "root_keyid")]
    pub root_threshold: Option<u64>,
}

impl PinArgs {
    /// The pin these flags give (`Pin::None` when none).
    pub fn pin(&self) -> Result<Pin, OpError> {
        Ok(match (&self.root, self.root_keyid.is_empty()) {
            (Some(path), _) => Pin::RootFile(path.clone()),
            (None, false) => Pin::KeyIds(crate::ops::anchor::KeyIdPin::new(
                &self.root_keyid,
                self.root_threshold,
            )?),
            (None, true) => Pin::None,
        })
    }
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".warrant")
}

/// Parse `args` and run; the process exit code follows DESIGN §6 (0 ok, 1 not
/// trusted, 2 usage or configuration, 3 storage or I/O).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, &args),
    };
    crate::logging::init(cli.verbose);
    let printer = Printer::new(cli.output);
    let home = cli.home.clone().unwrap_or_else(default_home);
    let mut ctx = Context::new(home, PassphraseSource::new(cli.passphrase_file.clone()));
    ctx.network.timeout = std::time::Duration::from_secs(cli.timeout.max(1));
    ctx.network.deadline = cli
        .deadline
        .map(|s| std::time::Duration::from_secs(s.max(1)));
    ctx.network.insecure = cli.insecure_registry.clone();
    if let Command::Refresh(roles::RefreshArgs {
        expires: Some(d), ..
    }) = &cli.command
    {
        match crate::ops::parse_duration(d) {
            Ok(d) => ctx.lifetimes.timestamp = d,
            Err(e) => {
                printer.error(&e);
                return ExitCode::from(e.exit_code());
            }
        }
    }
    if let Command::Renew(lifecycle::RenewArgs {
        expires: Some(d),
        roles,
        ..
    }) = &cli.command
    {
        match crate::ops::parse_duration(d) {
            Ok(d) => {
                for role in roles {
                    match role.as_str() {
                        "root" => ctx.lifetimes.root = d,
                        "snapshot" => ctx.lifetimes.snapshot = d,
                        "timestamp" => ctx.lifetimes.timestamp = d,
                        _ => ctx.lifetimes.targets = d,
                    }
                }
            }
            Err(e) => {
                printer.error(&e);
                return ExitCode::from(e.exit_code());
            }
        }
    }
    let result = dispatch(cli.command, &ctx, &printer);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            printer.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command line clap refused (or `--help`/`--version`): clap's text on stderr
/// (stdout for help), and with `--output json` also `{"error", "exit_code": 2,
/// "usage"}` on stdout, so a script reading JSON always gets JSON.
fn usage_error(e: &clap::Error, args: &[OsString]) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS;
    }
    if output_format(args) == Some(Format::Json) {
        let text = e.render().to_string();
        // clap's message: the lines before the first blank one (a list of missing
        // arguments follows its heading on the next lines).
        let message = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("error: ")
            .to_owned();
        let usage = text
            .lines()
            .find_map(|l| l.strip_prefix("Usage: "))
            .unwrap_or_default();
        let v = serde_json::json!({ "error": message, "exit_code": 2, "usage": usage });
        println!("{v}");
    }
    ExitCode::from(2)
}

/// The `--output`/`-o` asked for on a command line that did not parse (the last
/// one wins, as clap would have it).
pub fn output_format(args: &[OsString]) -> Option<Format> {
    use clap::ValueEnum as _;
    let mut found = None;
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    while let Some(Some(a)) = words.next() {
        if a == "--" {
            break;
        }
        let value = match a {
            "--output" | "-o" => words.next().flatten(),
            _ => a
                .strip_prefix("--output=")
                .or_else(|| a.strip_prefix("-o").filter(|v| !v.is_empty()))
                .map(|v| v.trim_start_matches('=')),
        };
        if let Some(v) = value {
            found = Format::from_str(v, true).ok().or(found);
        }
    }
    found
}

fn dispatch(command: Command, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    match command {
        Command::Key(c) => key::run(c, ctx, out),
        Command::Init(a) => init::run(a, ctx, out),
        Command::Sign(a) => sign::run(a, ctx, out),
        Command::Verify(a) => verify::run(a, ctx, out),
        Command::Inspect(a) => inspect::run(a, ctx, out),
        Command::Export(a) => export::run(a, ctx, out),
        Command::Delegation(c) => roles::delegation_run(c, ctx, out),
        Command::Pending(a) => roles::pending_run(a, ctx, out),
        Command::Approve(a) => roles::approve_run(a, ctx, out),
        Command::Refresh(a) => roles::refresh_run(a, ctx, out),
        Command::Unsign(a) => lifecycle::unsign_run(a, ctx, out),
        Command::Renew(a) => lifecycle::renew_run(a, ctx, out),
        Command::Status(a) => lifecycle::status_run(a, ctx, out),
        Command::Install(c) => install::run(c, ctx, out),
        Command::Serve(c) => serve::run(c, ctx, out),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
        Command::Import(c) => import::run(c, ctx, out),
    }
}

/// Parse a repository argument.
fn location(s: &str) -> Result<crate::store::Location, OpError> {
    crate::store::Location::parse(s).map_err(|source| OpError::Reference {
        value: s.to_owned(),
        source,
    })
}

/// Parse an image argument.
fn image(s: &str) -> Result<crate::store::ImageRef, OpError> {
    crate::store::ImageRef::parse(s).map_err(|source| OpError::Reference {
        value: s.to_owned(),
        source,
    })
}
