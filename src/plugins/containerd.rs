//! The containerd image verifier (containerd 2.x, plugin
//! `io.containerd.image-verifier.v1.bindir`).
//!
//! containerd runs every executable in its `bin_dir` (default
//! `/opt/containerd/image-verifier/bin`) before each pull through its transfer
//! service, as
//!
//! ```text
//! NAME -name REF -digest sha256:... -stdin-media-type application/vnd.oci.descriptor.v1+json
//! ```
//!
//! with the image's OCI descriptor as JSON on stdin. Exit status 0 allows the pull,
//! anything else blocks it; stdout is the reason, of which containerd keeps 32 KiB;
//! a verifier that outlives `per_verifier_timeout` fails the pull with an error.
//!
//! This verifier reads its policy from `/etc/warrant/policy.toml` (or
//! `WARRANT_POLICY`), verifies `REF` pinned to the given digest (the fast
//! `TAG@DIGEST` path: one HEAD of `warrant.tuf` once the host cache under
//! `/var/lib/warrant`, or `WARRANT_HOME`, is warm), and answers with one line on
//! stdout. Everything fails closed: a missing or invalid policy, an unlisted
//! repository (unless the policy says `default = "allow"`), malformed input, a
//! registry that is down, and a verification that does not finish within its time
//! budget (`WARRANT_VERIFIER_TIMEOUT` or `-timeout`, default 8 s, kept below
//! containerd's default 10 s) all block, with the reason.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::crypto::keystore::PassphraseSource;
use crate::digest::Sha256Digest;
use crate::ops::verify::{Verdict, verify_with_roles};
use crate::ops::{Context, OpError};
use crate::policy::{Policy, PolicyError};
use crate::store::{ImageRef, Location, ParseRefError};

use crate::policy::PolicyDecision;

mod contract;

use contract::parse_stdin;
pub use contract::{
    DESCRIPTOR_MEDIA_TYPE, Judgement, OUTPUT_LIMIT, Request, VERIFIER_INPUT_MEDIA_TYPE,
    is_containerd_flag, parse_budget,
};

/// The digest and size in the descriptor containerd writes on stdin, parsed as
/// `-stdin-media-type` says (the verifier's stdin contract; public for `fuzz/`).
pub fn parse_stdin_descriptor(
    media_type: Option<&str>,
    stdin: &[u8],
) -> Result<(String, u64), Blocked> {
    parse_stdin(media_type, stdin).map(|d| (d.digest, d.size))
}

/// The policy file read when `WARRANT_POLICY` is not set.
pub const DEFAULT_POLICY: &str = "/etc/warrant/policy.toml";
/// The shared host cache (trusted metadata) when `WARRANT_HOME` is not set.
pub const DEFAULT_HOME: &str = "/var/lib/warrant";
/// The time budget when neither `-timeout` nor `WARRANT_VERIFIER_TIMEOUT` is given:
/// below containerd's default `per_verifier_timeout` of 10 s, so the verifier
/// always answers with its reason before containerd gives up on it.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(8);
/// Largest stdin read: a descriptor is a few hundred bytes; run context adds
/// annotations.
const MAX_STDIN: u64 = 1024 * 1024;
/// Why a pull is blocked. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Blocked {
    /// The arguments are not containerd's.
    #[error(
        "{0} (containerd runs a verifier as NAME -name REF -digest sha256:... -stdin-media-type TYPE)"
    )]
    Usage(String),
    /// Stdin could not be read or is not a descriptor.
    #[error("malformed input on stdin: {0}")]
    Stdin(String),
    /// The descriptor on stdin names another manifest than `-digest`.
    #[error(
        "the descriptor on stdin has digest {stdin} but -digest is {flag}; refusing an ambiguous request"
    )]
    DescriptorMismatch {
        /// The digest on stdin.
        stdin: String,
        /// The `-digest` argument.
        flag: String,
    },
    /// `-name` carries a digest other than `-digest`.
    #[error("-name {name} pins a digest other than -digest {digest}")]
    NameMismatch {
        /// The name.
        name: String,
        /// The digest.
        digest: Sha256Digest,
    },
    /// `-name` is not a registry image reference.
    #[error("cannot verify {name:?}: {detail}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
    /// No policy file: nothing is trusted.
    #[error(
        "no warrant policy at {}: create it (see plugin-manifest/containerd/README.md) or set WARRANT_POLICY; until then every pull is blocked",
        .0.display()
    )]
    NoPolicy(PathBuf),
    /// The policy file is unusable.
    #[error("{0}; fix the policy file")]
    Policy(#[from] PolicyError),
    /// No policy entry covers the repository and the default is to deny.
    #[error(
        "no entry in {} matches {location}: add a [[repository]] entry for it, or set default = \"allow\" to let unlisted repositories through unverified",
        policy.display()
    )]
    Unlisted {
        /// The repository.
        location: String,
        /// The policy file.
        policy: PathBuf,
    },
    /// The image is not trusted, or trust could not be established.
    #[error(transparent)]
    Verify(#[from] OpError),
    /// The signed length differs from the descriptor's size.
    #[error(
        "not trusted: {reference} was signed with length {signed} but the descriptor says {size} bytes"
    )]
    SizeMismatch {
        /// The image.
        reference: String,
        /// Signed length.
        signed: u64,
        /// Descriptor size.
        size: u64,
    },
}

/// Where the verifier reads and keeps things (from the environment).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The policy file.
    pub policy: PathBuf,
    /// The shared cache of trusted metadata (`WARRANT_HOME`).
    pub home: PathBuf,
    /// The docker-format credentials directory: `DOCKER_CONFIG`, else `docker/`
    /// next to the policy file (`/etc/warrant/docker/config.json`).
    pub docker_config: PathBuf,
    /// Registries allowed over plain HTTP besides loopback
    /// (`WARRANT_INSECURE_REGISTRIES`).
    pub insecure: Vec<String>,
    /// `WARRANT_VERIFIER_TIMEOUT`, unparsed.
    pub budget: Option<String>,
}

impl Settings {
    /// Read the process environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let policy =
            var("WARRANT_POLICY").map_or_else(|| PathBuf::from(DEFAULT_POLICY), PathBuf::from);
        let docker_config = var("DOCKER_CONFIG").map_or_else(
            || {
                policy
                    .parent()
                    .unwrap_or(Path::new("/etc/warrant"))
                    .join("docker")
            },
            PathBuf::from,
        );
        Self {
            home: var("WARRANT_HOME").map_or_else(|| PathBuf::from(DEFAULT_HOME), PathBuf::from),
            docker_config,
            insecure: std::env::var("WARRANT_INSECURE_REGISTRIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            budget: std::env::var("WARRANT_VERIFIER_TIMEOUT")
                .ok()
                .filter(|v| !v.is_empty()),
            policy,
        }
    }
}

/// The image to verify: `-name` pinned to `-digest`.
fn image_for(name: &str, digest: Sha256Digest) -> Result<ImageRef, Blocked> {
    let bad = |detail: String| Blocked::BadName {
        name: name.to_owned(),
        detail,
    };
    if name.starts_with("oci:") {
        return Err(bad(
            "containerd pulls from registries, not OCI layouts".into()
        ));
    }
    let image = match ImageRef::parse(name) {
        Ok(image) => image,
        // A bare repository: only the digest identifies the image.
        Err(ParseRefError::NoImage { .. }) => ImageRef {
            location: Location::parse(name).map_err(|e| bad(e.to_string()))?,
            tag: None,
            digest: None,
        },
        Err(e) => return Err(bad(e.to_string())),
    };
    if image.digest.is_some_and(|d| d != digest) {
        return Err(Blocked::NameMismatch {
            name: name.to_owned(),
            digest,
        });
    }
    Ok(ImageRef {
        digest: Some(digest),
        ..image
    })
}

/// The per-request registry timeout within a budget: a third of it (at least
/// 1 s), so one slow request still leaves time for a clear answer.
fn request_timeout(budget: Duration) -> Duration {
    (budget / 3).max(Duration::from_secs(1))
}

/// Decide one request (no process concerns: no deadline, no printing).
pub fn judge(req: &Request, stdin: &[u8], settings: &Settings, budget: Duration) -> Judgement {
    match decide(req, stdin, settings, budget) {
        Ok(j) => j,
        Err(e) => Judgement::blocked(e),
    }
}

fn decide(
    req: &Request,
    stdin: &[u8],
    settings: &Settings,
    budget: Duration,
) -> Result<Judgement, Blocked> {
    let digest: Sha256Digest = req
        .digest
        .parse()
        .map_err(|e| Blocked::Usage(format!("-digest: {e}")))?;
    let descriptor = parse_stdin(req.stdin_media_type.as_deref(), stdin)?;
    if descriptor.digest.parse::<Sha256Digest>().ok() != Some(digest) {
        return Err(Blocked::DescriptorMismatch {
            stdin: descriptor.digest.chars().take(100).collect(),
            flag: req.digest.clone(),
        });
    }
    let image = image_for(&req.name, digest)?;
    if !settings.policy.exists() {
        return Err(Blocked::NoPolicy(settings.policy.clone()));
    }
    let policy = Policy::load(&settings.policy)?;
    PHASE.store(PHASE_VERIFYING, Ordering::SeqCst);
    let (pin, roles) = match crate::policy::decide(&policy, &image) {
        PolicyDecision::Verify { pin, require_roles } => (pin, require_roles),
        PolicyDecision::AllowUnlisted => {
            return Ok(Judgement {
                allow: true,
                reason: format!(
                    "allowed unverified: no entry in {} matches {} and its default is \"allow\"",
                    settings.policy.display(),
                    image.location
                ),
            });
        }
        PolicyDecision::DenyUnlisted => {
            return Err(Blocked::Unlisted {
                location: image.location.to_string(),
                policy: settings.policy.clone(),
            });
        }
    };
    let mut ctx = Context::new(settings.home.clone(), PassphraseSource::new(None));
    ctx.network.timeout = request_timeout(budget);
    ctx.network.insecure = settings.insecure.clone();
    ctx.network.docker_config = Some(settings.docker_config.clone());
    let verdict = verify_with_roles(&ctx, &image, &pin, &roles)?;
    if verdict.size != descriptor.size {
        return Err(Blocked::SizeMismatch {
            reference: image.to_string(),
            signed: verdict.size,
            size: descriptor.size,
        });
    }
    Ok(trusted(&verdict))
}

fn trusted(v: &Verdict) -> Judgement {
    let mut reason = format!(
        "trusted: {} (target {:?} signed by role {}; metadata valid until {})",
        v.verified,
        v.target,
        v.role,
        v.expires.format("%Y-%m-%dT%H:%M:%SZ")
    );
    for w in &v.warnings {
        reason.push_str("; warning: ");
        reason.push_str(w);
    }
    Judgement {
        allow: true,
        reason,
    }
}

/// Exactly one answer reaches stdout: the verdict or the deadline, whichever
/// comes first.
static ANSWERED: Mutex<bool> = Mutex::new(false);

/// What the verifier is doing, for the deadline's message.
static PHASE: AtomicU8 = AtomicU8::new(PHASE_STARTING);
const PHASE_STARTING: u8 = 0;
const PHASE_READING_STDIN: u8 = 1;
const PHASE_VERIFYING: u8 = 2;
const PHASE_READING_POLICY: u8 = 3;

/// Print `j` unless an answer was already given; true when this call answered.
fn deliver(j: &Judgement) -> bool {
    let mut answered = ANSWERED.lock().unwrap_or_else(|p| p.into_inner());
    if *answered {
        return false;
    }
    let mut out = std::io::stdout().lock();
    // containerd may have gone away; there is no one left to tell.
    let _ = out.write_all(j.line().as_bytes());
    let _ = out.flush();
    *answered = true;
    true
}

/// Answer with a block when `budget` runs out: containerd must hear a reason
/// before its own `per_verifier_timeout` turns the pull into an opaque error.
fn start_deadline(budget: Duration, name: String) {
    let spawned = std::thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            std::thread::sleep(budget);
            let stuck = match PHASE.load(Ordering::SeqCst) {
                PHASE_READING_STDIN => "stdin was never closed",
                PHASE_VERIFYING => "is the registry slow or unreachable?",
                PHASE_READING_POLICY => "the policy file could not be read in time",
                _ => "still starting",
            };
            let j = Judgement::blocked(format!(
                "could not verify {name} within {:.1}s ({stuck}); retry, or raise WARRANT_VERIFIER_TIMEOUT while keeping it below containerd's per_verifier_timeout",
                budget.as_secs_f64()
            ));
            if deliver(&j) {
                std::process::exit(i32::from(j.exit_code()));
            }
        });
    if spawned.is_err() {
        // Without a watchdog the verifier could outlive containerd's timeout.
        let j = Judgement::blocked("cannot start the deadline timer; refusing to run unbounded");
        deliver(&j);
        std::process::exit(1);
    }
}

fn read_stdin() -> Result<Vec<u8>, Blocked> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Blocked::Stdin(format!("cannot read: {e}")))?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(Blocked::Stdin("larger than 1 MiB".into()));
    }
    Ok(buf)
}

/// The verifier process: `args` is the whole `argv`. Always exits 0 or 1 with
/// one line on stdout, within its time budget.
pub fn run(args: Vec<OsString>) -> ExitCode {
    super::init_logging(0);
    let settings = Settings::from_env();
    let request = Request::parse(args.get(1..).unwrap_or_default());
    let budget = request
        .as_ref()
        .ok()
        .and_then(|r| r.timeout.clone())
        .or_else(|| settings.budget.clone())
        .map_or(Ok(DEFAULT_BUDGET), |b| parse_budget(&b));
    let name = request
        .as_ref()
        .map_or_else(|_| "the image".to_owned(), |r| r.name.clone());
    start_deadline(*budget.as_ref().unwrap_or(&DEFAULT_BUDGET), name);
    let judgement = match (request, budget) {
        (Err(e), _) => Judgement::blocked(e),
        (Ok(_), Err(e)) => Judgement::blocked(Blocked::Usage(e)),
        (Ok(req), Ok(budget)) => {
            if !req.ignored.is_empty() {
                tracing::debug!("ignoring unknown flags {:?}", req.ignored);
            }
            PHASE.store(PHASE_READING_STDIN, Ordering::SeqCst);
            match read_stdin() {
                Ok(stdin) => {
                    PHASE.store(PHASE_READING_POLICY, Ordering::SeqCst);
                    judge(&req, &stdin, &settings, budget)
                }
                Err(e) => Judgement::blocked(e),
            }
        }
    };
    deliver(&judgement);
    ExitCode::from(judgement.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names_are_pinned_to_the_digest() {
        let d: Sha256Digest = D.parse().expect("digest");
        let i = image_for("docker.io/library/alpine:3", d).expect("tag");
        assert_eq!(i.tag.as_deref(), Some("3"));
        assert_eq!(i.digest, Some(d));
        assert_eq!(i.to_string(), format!("docker.io/library/alpine:3@{D}"));
        let i = image_for("alpine", d).expect("bare");
        assert_eq!(i.target_name(), D);
        assert!(image_for(&format!("alpine:3@{D}"), d).is_ok());
        let other = format!("alpine@sha256:{}", "1".repeat(64));
        assert!(matches!(
            image_for(&other, d),
            Err(Blocked::NameMismatch { .. })
        ));
        assert!(matches!(
            image_for("oci:/tmp/x:1", d),
            Err(Blocked::BadName { .. })
        ));
        assert!(matches!(
            image_for("Bad Name", d),
            Err(Blocked::BadName { .. })
        ));
    }
}
