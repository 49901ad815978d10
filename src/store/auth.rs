//! Registry credentials as docker users already have them: `~/.docker/config.json`
//! (`$DOCKER_CONFIG/config.json`), with `auths` entries, per-registry `credHelpers`
//! and a default `credsStore`, the latter two through the `docker-credential-NAME get`
//! protocol. Secrets are never logged and never appear in errors.
//!
//! A credential helper is a program the docker config names, so it is bounded like
//! a registry (issue #11 item 10): it gets [`HELPER_TIMEOUT`] (or the command's
//! shorter deadline) and is killed past it, and at most [`MAX_HELPER_OUTPUT`] of
//! its answer is read.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Largest config.json we read.
const MAX_CONFIG: u64 = 1024 * 1024;

/// How long a credential helper may take to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest credential-helper answer we read (real ones are under 1 kB); its stderr
/// is drained and dropped.
pub const MAX_HELPER_OUTPUT: u64 = 64 * 1024;

/// Credentials for one registry.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials: anonymous access.
    #[default]
    Anonymous,
    /// A user name and password (or token used as a password).
    Basic {
        /// The user name.
        username: String,
        /// The password; zeroized on drop.
        password: Zeroizing<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// The docker configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// config.json is unreadable or malformed.
    #[error("docker config {path}: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a secret).
        detail: String,
    },
    /// A credential helper did not answer in time; it was killed. Usually it waits
    /// for something interactive (a login, a keyring unlock) or is broken.
    #[error(
        "credential helper docker-credential-{helper} did not answer within {seconds} s for \
         {registry} and was stopped: check that `echo {registry} | docker-credential-{helper} get` \
         answers on its own (it may wait for a login or a keyring unlock), or remove it from \
         credHelpers/credsStore in the docker config"
    )]
    HelperTimeout {
        /// The helper name.
        helper: String,
        /// The registry asked about.
        registry: String,
        /// How long it had.
        seconds: u64,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {detail}")]
    Helper {
        /// The helper name.
        helper: String,
        /// The registry asked about.
        registry: String,
        /// What failed (never a secret).
        detail: String,
    },
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// The keys a registry may be listed under in config.json, as docker writes them.
fn config_keys(registry: &str) -> Vec<String> {
    if registry == "docker.io" {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ]
}

fn read_config(path: &Path) -> Result<Option<DockerConfig>, AuthError> {
    use std::io::Read as _;
    let err = |detail: String| AuthError::Config {
        path: path.to_owned(),
        detail,
    };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_CONFIG + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    if buf.len() as u64 > MAX_CONFIG {
        return Err(err("larger than 1 MiB".into()));
    }
    // serde_json's error names a line and column, never the secret itself.
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|e| err(format!("not valid JSON ({})", e.classify_name())))
}

trait ClassifyName {
    fn classify_name(&self) -> String;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> String {
        format!("line {}, column {}", self.line(), self.column())
    }
}

fn from_entry(entry: &AuthEntry) -> Option<Credentials> {
    if let Some(encoded) = &entry.auth {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?,
        );
        let text = std::str::from_utf8(&decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        return Some(Credentials::Basic {
            username: user.to_owned(),
            password: Zeroizing::new(pass.to_owned()),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Some(Credentials::Basic {
            username: u.clone(),
            password: Zeroizing::new(p.clone()),
        }),
        _ => None,
    }
}

/// What a helper's stdout reader saw.
enum Answer {
    /// All of stdout, within the cap.
    Complete(Zeroizing<Vec<u8>>),
    /// More than [`MAX_HELPER_OUTPUT`] bytes.
    TooLarge,
    /// Reading failed.
    Failed(String),
}

fn read_answer(mut out: impl std::io::Read) -> Answer {
    let mut buf = Zeroizing::new(Vec::new());
    match (&mut out).take(MAX_HELPER_OUTPUT + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > MAX_HELPER_OUTPUT => Answer::TooLarge,
        Ok(_) => Answer::Complete(buf),
        Err(e) => Answer::Failed(e.to_string()),
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Run `docker-credential-HELPER get` for `registry`, at most `timeout` long.
fn run_helper(helper: &str, registry: &str, timeout: Duration) -> Result<Credentials, AuthError> {
    let err = |detail: String| AuthError::Helper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        detail,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(err("invalid helper name".into()));
    }
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run it: {e} (is it on PATH?)")))?;
    let started = Instant::now();
    // Readers on threads, so a helper that floods a pipe or never closes it cannot
    // block us; they are left behind (and end with the pipe) if it hangs.
    let (tx, answer) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || tx.send(read_answer(out)));
    }
    if let Some(mut errout) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut errout, &mut std::io::sink()));
    }
    if let Some(mut stdin) = child.stdin.take()
        && let Err(e) = stdin.write_all(server.as_bytes())
    {
        stop(&mut child);
        return Err(err(format!("cannot write to it: {e}")));
    }
    let timed_out = || AuthError::HelperTimeout {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        seconds: timeout.as_secs_f64().ceil() as u64,
    };
    let too_large = || {
        err(format!(
            "answer larger than {} KiB: it is not a credential helper answer",
            MAX_HELPER_OUTPUT / 1024
        ))
    };
    // A helper that floods stdout is stopped as soon as the reader sees it.
    let mut early = None;
    let status = loop {
        if early.is_none()
            && let Ok(a) = answer.try_recv()
        {
            if matches!(a, Answer::TooLarge) {
                stop(&mut child);
                return Err(too_large());
            }
            early = Some(a);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                stop(&mut child);
                return Err(err(e.to_string()));
            }
        }
        if started.elapsed() >= timeout {
            stop(&mut child);
            return Err(timed_out());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let left = timeout.saturating_sub(started.elapsed());
    let received = match early {
        Some(a) => Ok(a),
        None => answer.recv_timeout(left.max(Duration::from_millis(100))),
    };
    let stdout = match received {
        Ok(Answer::Complete(out)) => out,
        Ok(Answer::TooLarge) => return Err(too_large()),
        Ok(Answer::Failed(e)) => return Err(err(format!("cannot read its answer: {e}"))),
        // It exited but something it started holds its output open.
        Err(_) => return Err(timed_out()),
    };
    if !status.success() {
        // "credentials not found" is an answer: go anonymous.
        return Ok(Credentials::Anonymous);
    }
    let answer: HelperAnswer = serde_json::from_slice(&stdout)
        .map_err(|_| err("answer is not the expected JSON".into()))?;
    let secret = Zeroizing::new(answer.secret);
    if answer.username == "<token>" {
        // An identity (refresh) token for an OAuth2 flow; registries accept it as a
        // password for the token endpoint too.
        return Ok(Credentials::Basic {
            username: "<token>".into(),
            password: secret,
        });
    }
    Ok(Credentials::Basic {
        username: answer.username,
        password: secret,
    })
}

/// Credentials for `registry` from the docker config in `dir` (see
/// [`docker_config_dir`]): a `credHelpers` entry, then an `auths` entry, then the
/// `credsStore`; anonymous when none applies. A helper gets `helper_timeout`.
pub fn credentials_for(
    dir: Option<&Path>,
    registry: &str,
    helper_timeout: Duration,
) -> Result<Credentials, AuthError> {
    let Some(dir) = dir else {
        return Ok(Credentials::Anonymous);
    };
    let Some(config) = read_config(&dir.join("config.json"))? else {
        return Ok(Credentials::Anonymous);
    };
    let keys = config_keys(registry);
    if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
        return run_helper(helper, registry, helper_timeout);
    }
    if let Some(creds) = keys
        .iter()
        .find_map(|k| config.auths.get(k))
        .and_then(from_entry)
    {
        return Ok(creds);
    }
    if let Some(store) = &config.creds_store {
        return run_helper(store, registry, helper_timeout);
    }
    Ok(Credentials::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_decode_and_secrets_stay_out_of_debug() {
        let dir = tempfile::tempdir().expect("tmp");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"localhost:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .expect("write");
        let c = credentials_for(Some(dir.path()), "localhost:5000", HELPER_TIMEOUT).expect("creds");
        let Credentials::Basic { username, password } = &c else {
            panic!("expected basic")
        };
        assert_eq!((username.as_str(), password.as_str()), ("alice", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(matches!(
            credentials_for(Some(dir.path()), "docker.io", HELPER_TIMEOUT),
            Ok(Credentials::Basic { .. })
        ));
        assert!(matches!(
            credentials_for(Some(dir.path()), "other.io", HELPER_TIMEOUT),
            Ok(Credentials::Anonymous)
        ));
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"x": {"auth": "secretstuff"}}"#,
        )
        .expect("write");
        let e = credentials_for(Some(dir.path()), "x", HELPER_TIMEOUT).expect_err("malformed");
        assert!(!e.to_string().contains("secretstuff"));
    }
}
