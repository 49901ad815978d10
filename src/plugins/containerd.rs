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
use std::time::Duration;

use serde::Deserialize;

use crate::crypto::keystore::PassphraseSource;
use crate::digest::Sha256Digest;
use crate::ops::verify::{Verdict, verify_with_roles};
use crate::ops::{Context, OpError};
use crate::policy::{Policy, PolicyError};
use crate::store::{ImageRef, Location, ParseRefError};

use super::PolicyDecision;

/// The policy file read when `WARRANT_POLICY` is not set.
pub const DEFAULT_POLICY: &str = "/etc/warrant/policy.toml";
/// The shared host cache (trusted metadata) when `WARRANT_HOME` is not set.
pub const DEFAULT_HOME: &str = "/var/lib/warrant";
/// The time budget when neither `-timeout` nor `WARRANT_VERIFIER_TIMEOUT` is given:
/// below containerd's default `per_verifier_timeout` of 10 s, so the verifier
/// always answers with its reason before containerd gives up on it.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(8);
/// containerd keeps this much of a verifier's stdout.
pub const OUTPUT_LIMIT: usize = 32 * 1024;
/// The media type of stdin when containerd sends the bare descriptor.
pub const DESCRIPTOR_MEDIA_TYPE: &str = "application/vnd.oci.descriptor.v1+json";
/// The media type of stdin when containerd (with `verify_on_run`) wraps the
/// descriptor with the operation and run context.
pub const VERIFIER_INPUT_MEDIA_TYPE: &str =
    "application/vnd.containerd.image-verifier.input.v1+json";
/// Largest stdin read: a descriptor is a few hundred bytes; run context adds
/// annotations.
const MAX_STDIN: u64 = 1024 * 1024;
/// The flags containerd passes (and `-timeout`, ours).
const FLAGS: [&str; 5] = ["name", "digest", "stdin-media-type", "operation", "timeout"];

/// True when `arg` is one of containerd's single-dash verifier flags
/// (`-name`, `-digest`, `-stdin-media-type`, `-operation`, or `-flag=value`).
pub fn is_containerd_flag(arg: &str) -> bool {
    let Some(body) = arg.strip_prefix('-').filter(|b| !b.starts_with('-')) else {
        return false;
    };
    let key = body.split_once('=').map_or(body, |(k, _)| k);
    FLAGS[..4].contains(&key)
}

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

/// A verification request, parsed from containerd's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `-name`: the reference being pulled (`docker.io/library/alpine:3.20`).
    pub name: String,
    /// `-digest`: the resolved manifest (or index) digest.
    pub digest: String,
    /// `-stdin-media-type`, when given.
    pub stdin_media_type: Option<String>,
    /// `-operation` (`pull` or `run`), when given; informative.
    pub operation: Option<String>,
    /// `-timeout`, when given (else `WARRANT_VERIFIER_TIMEOUT`, else 8 s).
    pub timeout: Option<String>,
    /// Flags this version does not know, kept for the debug log.
    pub ignored: Vec<String>,
}

impl Request {
    /// Parse the arguments after `argv[0]` as Go's `flag` package would (`-f v`,
    /// `-f=v`, `--f v`), except that unknown flags are skipped instead of fatal:
    /// newer containerd adds flags (e.g. `-operation`), and an unknown `-f v` or
    /// `-f=v` is passed over whole. `-name` and `-digest` may appear once.
    pub fn parse(args: &[OsString]) -> Result<Self, Blocked> {
        let mut req = Request::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i]
                .to_str()
                .ok_or_else(|| Blocked::Usage("an argument is not UTF-8".into()))?;
            if arg == "--" || arg == "-" || !arg.starts_with('-') {
                break; // Go's flag package stops at the first non-flag.
            }
            let body = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-'))
                .unwrap_or(arg);
            let (key, inline) = match body.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (body, None),
            };
            let next_is_value = args
                .get(i + 1)
                .and_then(|a| a.to_str())
                .is_some_and(|a| !a.starts_with('-'));
            let Some(&known) = FLAGS.iter().find(|f| **f == key) else {
                req.ignored.push(arg.to_owned());
                i += if inline.is_none() && next_is_value {
                    2
                } else {
                    1
                };
                continue;
            };
            let value = match inline {
                Some(v) => v.to_owned(),
                None => {
                    i += 1;
                    args.get(i)
                        .and_then(|a| a.to_str())
                        .ok_or_else(|| Blocked::Usage(format!("flag -{known} needs a value")))?
                        .to_owned()
                }
            };
            if seen.contains(&known) {
                return Err(Blocked::Usage(format!("flag -{known} is given twice")));
            }
            seen.push(known);
            match known {
                "name" => req.name = value,
                "digest" => req.digest = value,
                "stdin-media-type" => req.stdin_media_type = Some(value),
                "operation" => req.operation = Some(value),
                _ => req.timeout = Some(value),
            }
            i += 1;
        }
        if req.name.is_empty() {
            return Err(Blocked::Usage("missing -name".into()));
        }
        if req.digest.is_empty() {
            return Err(Blocked::Usage("missing -digest".into()));
        }
        Ok(req)
    }
}

/// Parse a time budget: Go duration units (`8s`, `500ms`, `1m`, `1.5s`) or plain
/// seconds (`8`); between 100 ms and 10 min.
pub fn parse_budget(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("invalid time budget {s:?}: use e.g. 8s or 1500ms")),
    };
    let secs = number
        .parse::<f64>()
        .map_err(|_| format!("invalid time budget {s:?}: use e.g. 8s or 1500ms"))?
        * scale;
    if !(0.1..=600.0).contains(&secs) {
        return Err(format!(
            "time budget {s:?} is out of range (100ms to 10m); keep it below containerd's per_verifier_timeout"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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

/// The answer to containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Allow the pull.
    pub allow: bool,
    /// Why, for people reading containerd's error or log.
    pub reason: String,
}

impl Judgement {
    fn blocked(why: impl std::fmt::Display) -> Self {
        Self {
            allow: false,
            reason: format!("blocked: {why}"),
        }
    }

    /// The exit status: 0 allows the pull.
    pub fn exit_code(&self) -> u8 {
        if self.allow { 0 } else { 1 }
    }

    /// The reason as containerd should get it: one line (control characters
    /// become spaces), newline included, at most [`OUTPUT_LIMIT`] bytes.
    pub fn line(&self) -> String {
        let mut s: String = self
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if s.len() > OUTPUT_LIMIT - 1 {
            let mut end = OUTPUT_LIMIT - 1 - "...".len();
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("...");
        }
        s.push('\n');
        s
    }
}

/// The descriptor fields the verifier needs (OCI: all three are required).
#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    _media_type: String,
    digest: String,
    size: u64,
}

/// containerd's `verify_on_run` input: the descriptor plus run context.
#[derive(Debug, Deserialize)]
struct VerifierInput {
    descriptor: Option<Descriptor>,
}

fn parse_stdin(media_type: Option<&str>, stdin: &[u8]) -> Result<Descriptor, Blocked> {
    if stdin.iter().all(u8::is_ascii_whitespace) {
        return Err(Blocked::Stdin(
            "no descriptor (containerd writes the image's OCI descriptor as JSON)".into(),
        ));
    }
    let bad = |e: serde_json::Error| Blocked::Stdin(format!("not an OCI descriptor: {e}"));
    match media_type {
        None | Some(DESCRIPTOR_MEDIA_TYPE) => serde_json::from_slice(stdin).map_err(bad),
        Some(VERIFIER_INPUT_MEDIA_TYPE) => serde_json::from_slice::<VerifierInput>(stdin)
            .map_err(bad)?
            .descriptor
            .ok_or_else(|| {
                Blocked::Stdin(format!("{VERIFIER_INPUT_MEDIA_TYPE} without a descriptor"))
            }),
        Some(other) => Err(Blocked::Stdin(format!(
            "unsupported -stdin-media-type {other:?}: this warrant understands {DESCRIPTOR_MEDIA_TYPE} and {VERIFIER_INPUT_MEDIA_TYPE}; upgrade warrant"
        ))),
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
    let (pin, roles) = match super::decide(&policy, &image) {
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
            let j = Judgement::blocked(format!(
                "could not verify {name} within {:.1}s (is the registry slow or unreachable?); retry, or raise WARRANT_VERIFIER_TIMEOUT while keeping it below containerd's per_verifier_timeout",
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
            match read_stdin() {
                Ok(stdin) => judge(&req, &stdin, &settings, budget),
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

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_containerds_arguments_and_skips_unknown_flags() {
        let r = Request::parse(&args(&[
            "-name",
            "docker.io/library/alpine:3",
            "-digest",
            D,
            "-stdin-media-type",
            DESCRIPTOR_MEDIA_TYPE,
        ]))
        .expect("parse");
        assert_eq!(r.name, "docker.io/library/alpine:3");
        assert_eq!(r.digest, D);
        assert_eq!(r.stdin_media_type.as_deref(), Some(DESCRIPTOR_MEDIA_TYPE));
        let r = Request::parse(&args(&[
            "-operation",
            "run",
            "--future=1",
            "-switch",
            "-other",
            "value",
            "--name=a:1",
            "-digest",
            D,
            "positional",
            "-name",
            "ignored-after-positional",
        ]))
        .expect("unknown flags skipped");
        assert_eq!(r.name, "a:1");
        assert_eq!(r.operation.as_deref(), Some("run"));
        assert_eq!(r.ignored, ["--future=1", "-switch", "-other"]);
    }

    #[test]
    fn missing_or_repeated_arguments_are_refused() {
        for bad in [
            &["-digest", D][..],
            &["-name", "a:1"],
            &["-name", "a:1", "-digest"],
            &["-name", "a:1", "-name", "b:1", "-digest", D],
            &["-name=", "-digest", D],
        ] {
            assert!(
                matches!(Request::parse(&args(bad)), Err(Blocked::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn containerd_flags_are_recognised_only_in_single_dash_form() {
        assert!(is_containerd_flag("-name"));
        assert!(is_containerd_flag("-stdin-media-type=x"));
        assert!(is_containerd_flag("-operation"));
        assert!(!is_containerd_flag("--name"));
        assert!(!is_containerd_flag("-timeout"));
        assert!(!is_containerd_flag("name"));
    }

    #[test]
    fn budgets_use_go_units_within_bounds() {
        assert_eq!(parse_budget("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_budget("8"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_budget("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_budget("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_budget("1m"), Ok(Duration::from_secs(60)));
        for bad in ["", "s", "8h", "0", "50ms", "11m", "-1s", "1.2.3s"] {
            assert!(parse_budget(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_answer_is_one_line_within_containerds_limit() {
        let j = Judgement {
            allow: false,
            reason: format!("blocked: a\nb\r\tc {}", "é".repeat(40_000)),
        };
        let line = j.line();
        assert!(line.len() <= OUTPUT_LIMIT, "{}", line.len());
        assert!(line.ends_with("...\n"));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.starts_with("blocked: a b  c é"));
        let short = Judgement {
            allow: true,
            reason: "trusted: x".into(),
        };
        assert_eq!(short.line(), "trusted: x\n");
    }

    #[test]
    fn stdin_must_be_a_descriptor_of_a_known_media_type() {
        let desc = format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{D}","size":9}}"#
        );
        let d = parse_stdin(Some(DESCRIPTOR_MEDIA_TYPE), desc.as_bytes()).expect("descriptor");
        assert_eq!((d.digest.as_str(), d.size), (D, 9));
        assert!(parse_stdin(None, desc.as_bytes()).is_ok());
        let wrapped = format!(r#"{{"operation":"run","descriptor":{desc},"annotations":{{}}}}"#);
        assert!(parse_stdin(Some(VERIFIER_INPUT_MEDIA_TYPE), wrapped.as_bytes()).is_ok());
        for (mt, input) in [
            (Some(DESCRIPTOR_MEDIA_TYPE), "".to_owned()),
            (Some(DESCRIPTOR_MEDIA_TYPE), "\n".to_owned()),
            (Some(DESCRIPTOR_MEDIA_TYPE), "not json".to_owned()),
            (
                Some(DESCRIPTOR_MEDIA_TYPE),
                format!(r#"{{"digest":"{D}","size":9}}"#),
            ),
            (
                Some(DESCRIPTOR_MEDIA_TYPE),
                format!(r#"{{"mediaType":"x","digest":"{D}","size":-1}}"#),
            ),
            (
                Some(VERIFIER_INPUT_MEDIA_TYPE),
                r#"{"operation":"pull"}"#.to_owned(),
            ),
            (Some("application/x-unknown"), desc.clone()),
        ] {
            assert!(
                matches!(parse_stdin(mt, input.as_bytes()), Err(Blocked::Stdin(_))),
                "{mt:?} {input:?}"
            );
        }
    }

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
