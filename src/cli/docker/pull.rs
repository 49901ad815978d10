//! `docker warrant pull` and `docker warrant run`: verify the image as `warrant
//! verify` does, then hand docker the verified `REPO@sha256:...` only, so docker
//! cannot fetch anything but what was verified (`pull` then tags it back to the
//! tag). A tag moved between the verify and the pull changes nothing: docker never
//! sees the tag.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser};

use crate::cli::output::{Format, Printer};
use crate::ops::OpError;
use crate::ops::trust::Pin;
use crate::ops::verify::{Verdict, verify_with_roles};
use crate::policy::Policy;
use crate::policy::PolicyDecision;
use crate::store::{ImageRef, Location};

use super::args::{PULL_FLAGS, RUN_FLAGS, split_args, split_image_args};
use super::command::{docker, docker_status, exec_docker};
use super::invocation::Invocation;
use super::{say, usage_error};

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
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Human)]
    output: Format,
    /// The options every warrant command takes.
    #[command(flatten)]
    common: super::CommonOpts,
    /// Verify policy (TOML); default `$WARRANT_HOME/policy.toml` when it exists.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The image: HOST/REPO:TAG, HOST/REPO@sha256:DIGEST or HOST/REPO:TAG@sha256:DIGEST.
    image: String,
}

pub(super) const PULL_ABOUT: &str =
    "Verify an image, then `docker pull` exactly the verified digest and tag it";
pub(super) const RUN_ABOUT: &str = "Verify an image, then `docker run` exactly the verified digest";

pub(super) fn verify_command(sub: &str) -> clap::Command {
    let cmd = VerifyOpts::command();
    match sub {
        "pull" => cmd
            .name("docker warrant pull")
            .about(PULL_ABOUT)
            .override_usage("docker warrant pull [OPTIONS] IMAGE")
            .after_help(
                "Passed on to `docker pull`, before or after IMAGE: --platform PLATFORM, -q/--quiet, \
                 --disable-content-trust. \
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

pub(super) fn pull_or_run(inv: &Invocation, at: usize, sub: &str) -> ExitCode {
    let flags = if sub == "pull" {
        &PULL_FLAGS
    } else {
        &RUN_FLAGS
    };
    let human = Printer::new(Format::Human);
    let split = if sub == "pull" {
        split_image_args(&inv.args[at + 1..], flags)
    } else {
        split_args(&inv.args[at + 1..], flags)
    };
    let split = match split {
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
    crate::logging::init(opts.common.verbose);
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
    let image = ImageRef::parse(&opts.image).map_err(|source| OpError::Reference {
        value: opts.image.clone(),
        source,
    })?;
    if !matches!(image.location, Location::Registry { .. }) {
        return Err(OpError::InvalidValue {
            argument: "image",
            value: opts.image.clone(),
            expected: "a registry reference HOST/REPO:TAG (docker pulls from registries)",
        });
    }
    let ctx = opts.common.context(inv);
    let policy_path = opts.policy.clone().or_else(|| {
        let p = ctx.home.join("policy.toml");
        p.exists().then_some(p)
    });
    let (mut pin, roles) = match policy_path {
        Some(path) => match crate::policy::decide(&Policy::load(&path)?, &image) {
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
    if let p @ (Pin::RootFile(_) | Pin::KeyIds(_)) = opts.common.pin.pin()? {
        pin = p;
    }
    let verdict = verify_with_roles(&ctx, &image, &pin, &roles)?;
    let tag_as = image
        .tag
        .as_ref()
        .map(|t| format!("{}:{t}", image.location));
    Ok((verdict, tag_as))
}

#[cfg(test)]
mod tests {
    use super::super::args::WARRANT_VALUE_FLAGS;
    use super::*;

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
}
