//! Where warrant sits on hosts: one binary, three personalities.
//!
//! The `warrant` executable is also the Docker CLI plugin and the containerd image
//! verifier; which one it is depends on how it was started ([`personality`]):
//!
//! * as `docker-warrant` (a link in a docker `cli-plugins` directory) it speaks the
//!   Docker CLI plugin protocol: [`crate::cli::docker`] (a front end of the command
//!   line, so it lives there);
//! * as `warrant-containerd-verifier`, or with containerd's verifier arguments
//!   (`-name REF -digest sha256:... -stdin-media-type ...`, which is how containerd
//!   starts `/opt/containerd/image-verifier/bin/warrant`), it is a containerd 2.x
//!   image verifier: [`containerd`];
//! * otherwise it is the `warrant` command line.
//!
//! Both plugins are thin: they translate their host's calling convention into
//! [`crate::ops::verify`] and its verdict back, and [`install`] puts the links in
//! place. Neither adds a way to trust something `warrant verify` would not.

pub mod containerd;
pub mod install;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Which program the binary is, decided from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// The `warrant` command line.
    Cli,
    /// The Docker CLI plugin (`docker warrant ...`).
    DockerPlugin,
    /// The containerd image verifier.
    ContainerdVerifier,
}

/// The file name a Docker CLI plugin must have.
pub const DOCKER_PLUGIN_NAME: &str = "docker-warrant";
/// The file name that makes the binary a containerd image verifier.
pub const CONTAINERD_VERIFIER_NAME: &str = "warrant-containerd-verifier";

/// Decide what to be from `argv`: the file name of `argv[0]` first; then
/// containerd's calling convention, because containerd runs a verifier by the
/// path of its entry in `bin_dir` (`.../image-verifier/bin/warrant`), so a link
/// there cannot carry a distinctive name. No `warrant` command line starts with
/// a single-dash long flag, so the two cannot be confused.
pub fn personality(args: &[OsString]) -> Personality {
    let name = args
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    match name {
        DOCKER_PLUGIN_NAME => Personality::DockerPlugin,
        CONTAINERD_VERIFIER_NAME => Personality::ContainerdVerifier,
        _ if args
            .get(1)
            .and_then(|a| a.to_str())
            .is_some_and(containerd::is_containerd_flag) =>
        {
            Personality::ContainerdVerifier
        }
        _ => Personality::Cli,
    }
}

/// The user's home directory, if known.
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Plugins keep stderr for their one message unless `-v` or a log filter asks.
fn init_logging(verbose: u8) {
    crate::logging::init(verbose);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::Pin;
    use crate::policy::{Policy, PolicyDecision, decide};
    use crate::store::ImageRef;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn personality_follows_the_file_name_then_containerds_arguments() {
        let p = |a: &[&str]| personality(&args(a));
        assert_eq!(p(&["/usr/bin/warrant", "verify", "x:1"]), Personality::Cli);
        assert_eq!(p(&["warrant"]), Personality::Cli);
        assert_eq!(p(&[]), Personality::Cli);
        assert_eq!(
            p(&["/home/u/.docker/cli-plugins/docker-warrant", "warrant"]),
            Personality::DockerPlugin
        );
        assert_eq!(
            p(&["warrant-containerd-verifier", "whatever"]),
            Personality::ContainerdVerifier
        );
        assert_eq!(
            p(&["/opt/containerd/image-verifier/bin/warrant", "-name", "a:1"]),
            Personality::ContainerdVerifier
        );
        assert_eq!(
            p(&["warrant", "-digest=sha256:00"]),
            Personality::ContainerdVerifier
        );
        // Double-dash flags are the CLI's (and clap reports them).
        assert_eq!(p(&["warrant", "--name", "a"]), Personality::Cli);
        assert_eq!(p(&["warrant", "-v", "verify"]), Personality::Cli);
    }

    #[test]
    fn unlisted_repositories_follow_the_policy_default() {
        let image = ImageRef::parse("registry.example/other/app:1").expect("ref");
        let deny = Policy::parse(
            "[[repository]]\nmatch = \"registry.example/team/*\"\ntofu = true\n",
            Path::new("/etc/warrant/policy.toml"),
        )
        .expect("policy");
        assert!(matches!(
            decide(&deny, &image),
            PolicyDecision::DenyUnlisted
        ));
        let allow = Policy::parse("default = \"allow\"\n", Path::new("p.toml")).expect("policy");
        assert!(matches!(
            decide(&allow, &image),
            PolicyDecision::AllowUnlisted
        ));
        let listed = ImageRef::parse("registry.example/team/app:1").expect("ref");
        assert!(matches!(
            decide(&deny, &listed),
            PolicyDecision::Verify {
                pin: Pin::FirstUse,
                ..
            }
        ));
    }
}
