//! `docker warrant push IMAGE`: `docker push` through the daemon, then sign the
//! digest that push reported, in one command — what `DOCKER_CONTENT_TRUST=1 docker
//! push` did with Notary.
//!
//! The digest signed is the one docker printed for the push (`TAG: digest:
//! sha256:... size: N`), looked up in the registry by that digest alone: the tag is
//! never resolved again, so a tag moved by someone else between the push and the
//! signature cannot make us sign their image.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ExitCode, Stdio};

use clap::{CommandFactory as _, FromArgMatches as _, Parser};

use crate::cli::output::{Format, Printer};
use crate::digest::Sha256Digest;
use crate::ops::sign::{SignOptions, sign};
use crate::ops::trust::Pin;
use crate::store::{ImageRef, Location};

use super::args::{PUSH_FLAGS, split_image_args};
use super::command::{docker, docker_program};
use super::invocation::Invocation;
use super::{say, usage_error};

pub(super) const PUSH_ABOUT: &str = "`docker push` an image, then sign the digest the push reported (DOCKER_CONTENT_TRUST=1 docker push)";

/// Why a push was not signed (docker's own failures are docker's to report: its
/// exit status is passed on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The docker CLI could not be started.
    #[error("cannot run {program}: {detail}; is the docker CLI installed?")]
    Spawn {
        /// The docker program.
        program: String,
        /// The OS error.
        detail: String,
    },
    /// docker's output could not be read to the end.
    #[error("reading the output of {program} push: {detail}; nothing was signed")]
    Output {
        /// The docker program.
        program: String,
        /// The OS error.
        detail: String,
    },
    /// `docker push` succeeded but printed no digest line for the tag, so there is
    /// nothing we could sign without resolving the tag again.
    #[error(
        "docker push {image} succeeded but reported no digest for tag {tag:?}; nothing was \
         signed (sign the pushed digest with `warrant sign {image}@sha256:...`)"
    )]
    NoDigest {
        /// The image pushed.
        image: String,
        /// Its tag.
        tag: String,
    },
}

/// Options of `push` that are warrant's: the CLI's global options and `sign`'s.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_version_flag = true,
    max_term_width = 100
)]
struct PushOpts {
    /// Output format of the signature report (docker's progress goes to stderr
    /// with `--output json`).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Human)]
    output: Format,
    /// The options every warrant command takes.
    #[command(flatten)]
    common: super::CommonOpts,
    /// The role to sign into (default: the top-level `targets` role).
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    /// Sign with this key (id, prefix or name) instead of every one at hand.
    #[arg(long, value_name = "ID")]
    key: Option<String>,
    /// The image: HOST/REPO:TAG.
    image: String,
}

/// `docker warrant push --help`.
pub(super) fn push_command() -> clap::Command {
    PushOpts::command()
        .name("docker warrant push")
        .about(PUSH_ABOUT)
        .override_usage("docker warrant push [OPTIONS] HOST/REPO:TAG")
        .after_help(
            "Passed on to `docker push`: --platform PLATFORM, -q/--quiet, --disable-content-trust. \
             The digest docker reports for the push is signed as the tag's target; the tag is \
             not resolved again.",
        )
}

/// The digest `docker push` reported for `tag`: its line `TAG: digest: sha256:HEX
/// size: N` (docker CLI 28 with daemons 20.10 to 28). The last such line wins.
pub(super) fn pushed_digest(output: &str, tag: &str) -> Option<Sha256Digest> {
    output
        .lines()
        .filter_map(|line| {
            let (t, rest) = line.trim().split_once(": digest: ")?;
            let digest = rest.split_whitespace().next()?;
            (t == tag).then(|| digest.parse().ok()).flatten()
        })
        .next_back()
}

pub(super) fn push(inv: &Invocation, at: usize) -> ExitCode {
    let human = Printer::new(Format::Human);
    let split = match split_image_args(&inv.args[at + 1..], &PUSH_FLAGS) {
        Ok(s) => s,
        Err(e) => return usage_error(&human, format!("docker warrant push: {e}")),
    };
    if split.help {
        say(&push_command().render_long_help().to_string());
        return ExitCode::SUCCESS;
    }
    if !split.rest.is_empty() {
        return usage_error(&human, "docker warrant push takes one IMAGE".into());
    }
    let mut words: Vec<OsString> = inv.args[..at].to_vec();
    words.extend(split.warrant.iter().map(OsString::from));
    words.push("--".into());
    words.push(OsString::from(&split.image));
    let opts = match push_command()
        .try_get_matches_from(&words)
        .and_then(|m| PushOpts::from_arg_matches(&m))
    {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    crate::logging::init(opts.common.verbose);
    let printer = Printer::new(opts.output);
    let image = match ImageRef::parse(&opts.image) {
        Ok(i) => i,
        Err(e) => return usage_error(&printer, e.to_string()),
    };
    let tag = match (&image.location, &image.tag, &image.digest) {
        (Location::Registry { .. }, Some(tag), None) => tag.clone(),
        _ => {
            return usage_error(
                &printer,
                format!(
                    "{}: docker warrant push takes HOST/REPO:TAG (a tag to push and sign, no digest)",
                    opts.image
                ),
            );
        }
    };
    // --quiet would hide the digest line from us: read it, show nothing.
    let quiet = split
        .docker
        .iter()
        .any(|a| a == "-q" || a == "--quiet" || a == "--quiet=true");
    let docker_opts: Vec<&OsString> = split
        .docker
        .iter()
        .filter(|a| !(*a == "-q" || *a == "--quiet" || *a == "--quiet=true"))
        .collect();
    let output = match run_push(inv, &docker_opts, &split.image, quiet, opts.output) {
        Ok(Ok(output)) => output,
        Ok(Err(code)) => return ExitCode::from(code),
        Err(e) => {
            printer.failure(&e.to_string(), 3);
            return ExitCode::from(3);
        }
    };
    let Some(digest) = pushed_digest(&output, &tag) else {
        let e = PushError::NoDigest {
            image: opts.image.clone(),
            tag,
        };
        printer.failure(&e.to_string(), 3);
        return ExitCode::from(3);
    };
    let ctx = opts.common.context(inv);
    let pin = match opts.common.pin.pin() {
        Ok(Pin::None) => Pin::FirstUse,
        Ok(p) => p,
        Err(e) => {
            printer.error(&e);
            return ExitCode::from(e.exit_code());
        }
    };
    let pushed = ImageRef {
        digest: Some(digest),
        ..image
    };
    let sign_opts = SignOptions {
        role: opts.role.clone(),
        key: opts.key.clone(),
        pin,
        by_digest: true,
    };
    match sign(&ctx, &pushed, &sign_opts) {
        Ok(outcome) => {
            printer.report(&outcome);
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Run `docker push`, echoing its output (to stdout, or to stderr when stdout is
/// for JSON; nothing with `quiet`); docker's output, or its exit status when it
/// failed.
fn run_push(
    inv: &Invocation,
    options: &[&OsString],
    image: &str,
    quiet: bool,
    format: Format,
) -> Result<Result<String, u8>, PushError> {
    let program = docker_program();
    let mut child = docker(inv)
        .arg("push")
        .args(options)
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| PushError::Spawn {
            program: program.clone(),
            detail: e.to_string(),
        })?;
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| PushError::Output {
                program: program.clone(),
                detail: e.to_string(),
            })?;
            if !quiet {
                // A reader that went away is no reason to stop the push.
                let _ = match format {
                    Format::Json => writeln!(std::io::stderr(), "{line}"),
                    Format::Human => writeln!(std::io::stdout(), "{line}"),
                };
            }
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait().map_err(|e| PushError::Output {
        program: program.clone(),
        detail: e.to_string(),
    })?;
    if status.success() {
        Ok(Ok(output))
    } else {
        use std::os::unix::process::ExitStatusExt as _;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => u8::try_from(c).unwrap_or(1),
            (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
            (None, None) => 1,
        };
        Ok(Err(code.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_docker_push_reports_for_the_tag_is_found() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let other = format!("sha256:{}", "cd".repeat(32));
        let out = format!(
            "The push refers to repository [127.0.0.1:5000/demo/app]\n\
             b48f23caa4d2: Pushed\n\
             old: digest: {other} size: 736\n\
             v1: digest: {d} size: 736\n"
        );
        assert_eq!(
            pushed_digest(&out, "v1").map(|d| d.to_string()),
            Some(d.clone())
        );
        assert_eq!(
            pushed_digest(&out, "old").map(|d| d.to_string()),
            Some(other)
        );
        assert_eq!(pushed_digest(&out, "v2"), None);
        assert_eq!(
            pushed_digest("v1: digest: sha256:short size: 1\n", "v1"),
            None
        );
        assert_eq!(pushed_digest("", "v1"), None);
    }

    #[test]
    fn push_options_are_split_like_docker_push() {
        let os = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let s = split_image_args(
            &os(&[
                "--role",
                "releases",
                "-q",
                "r/app:1",
                "--platform",
                "linux/amd64",
            ]),
            &PUSH_FLAGS,
        )
        .expect("split");
        assert_eq!(s.warrant, ["--role", "releases"]);
        assert_eq!(s.docker, os(&["-q", "--platform", "linux/amd64"]));
        assert_eq!(s.image, "r/app:1");
        assert!(split_image_args(&os(&["-a", "r/app:1"]), &PUSH_FLAGS).is_err());
    }
}
