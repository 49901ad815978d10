//! The verify policy: which repositories are trusted, anchored how, and which roles
//! must all have signed an image (TOML, `--policy FILE` or `$WARRANT_HOME/policy.toml`).
//!
//! ```toml
//! [[repository]]
//! match = "localhost:5000/team/*"   # glob on REGISTRY/REPOSITORY; `*` stays within one `/` segment
//! root-keyids = ["<hex>", "..."]     # full ids (32+ hex digits); or: root = "path/1.root.json", or: ca = "ca.pem" (relative to this file)
//! root-threshold = 2                 # distinct pinned (or certified) keys that must sign; default: every pinned id, 1 for a CA
//! require-roles = ["qa", "prod"]     # each must sign the same digest for the tag
//! tofu = false                       # trust on first use only when true
//! mode = "enforce"                   # admission webhook only: "enforce" | "warn" | "audit"
//! ```
//!
//! The first matching entry applies; a repository no entry matches is refused.
//!
//! `mode` is how the Kubernetes admission webhook acts on an image of the entry
//! that does not verify: `enforce` (the default) denies it; `warn` admits it with an
//! AdmissionReview warning that `kubectl` shows; `audit` admits it silently and
//! records it (log line and `/metrics`). Both are for rolling a policy out: they
//! show what enforcing would deny before it does. `warrant verify`, `docker warrant`
//! and the containerd verifier always enforce: they have no one to warn.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pin::{CaPin, KeyIdPin, Pin};
use crate::store::Location;
use crate::tuf::delegation::path_matches;

/// Largest policy file read.
const MAX_POLICY: u64 = 1024 * 1024;

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Unreadable.
    #[error("policy {path}: {detail}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Not valid TOML or not the expected shape.
    #[error("policy {path} is invalid: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        detail: String,
    },
}

/// What happens to a repository that no entry matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Default_ {
    /// Refuse it (the default: fail closed).
    #[default]
    Deny,
    /// Let it through unverified (an explicit opt-out, for hosts that must pull
    /// images no policy covers).
    Allow,
}

/// How the admission webhook acts on an image that does not verify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny it (the default).
    #[default]
    Enforce,
    /// Admit it, with an AdmissionReview warning naming the image and why, counted
    /// in `/metrics`.
    Warn,
    /// Admit it without a warning; log it and count it in `/metrics`.
    Audit,
}

impl Mode {
    /// The name used in the policy file, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// One `[[repository]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Entry {
    /// Glob on `REGISTRY/REPOSITORY` (or `oci:PATH` for layouts).
    #[serde(rename = "match")]
    pub pattern: String,
    /// Root key ids to pin (prefixes of 32+ hex digits allowed).
    #[serde(default)]
    pub root_keyids: Vec<String>,
    /// How many distinct pinned (or certified) root keys must sign the root, whatever
    /// threshold the root declares (default: every pinned key id; 1 for a CA).
    #[serde(default)]
    pub root_threshold: Option<u64>,
    /// A root.json to pin, relative to the policy file.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// A CA certificate (PEM, relative to the policy file): trust a repository whose
    /// root keys (a threshold of them) hold valid certificates issued by it.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Roles that must each have signed the same digest.
    #[serde(default)]
    pub require_roles: Vec<String>,
    /// Trust the repository's first root on first use.
    #[serde(default)]
    pub tofu: bool,
    /// What the admission webhook does with an image that does not verify.
    #[serde(default)]
    pub mode: Mode,
    /// The anchor, checked when the file was parsed.
    #[serde(skip)]
    anchor: Pin,
}

/// A policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// What to do with repositories no entry matches.
    #[serde(default)]
    pub default: Default_,
    /// The entries, first match wins.
    #[serde(default)]
    pub repository: Vec<Entry>,
    /// Where the file lives (relative `root` paths resolve against it).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Policy {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let bytes =
            crate::fsutil::read_regular(path, MAX_POLICY).map_err(|e| PolicyError::Read {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| PolicyError::Invalid {
            path: path.to_owned(),
            detail: "not UTF-8 text".into(),
        })?;
        Self::parse(&text, path)
    }

    /// Parse policy text (`path` for messages and relative roots).
    pub fn parse(text: &str, path: &Path) -> Result<Self, PolicyError> {
        let invalid = |detail: String| PolicyError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let mut policy: Policy = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for e in &policy.repository {
            let anchors = usize::from(!e.root_keyids.is_empty())
                + usize::from(e.root.is_some())
                + usize::from(e.ca.is_some())
                + usize::from(e.tofu);
            if anchors != 1 {
                return Err(invalid(format!(
                    "entry {:?} must name exactly one trust anchor: root-keyids, root, ca, or tofu = true",
                    e.pattern
                )));
            }
            if e.pattern.is_empty() {
                return Err(invalid("an entry has an empty match".into()));
            }
        }
        policy.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = policy.dir.clone();
        for e in &mut policy.repository {
            let entry_err = |detail: String| invalid(format!("entry {:?}: {detail}", e.pattern));
            if e.root_threshold.is_some() && e.root_keyids.is_empty() && e.ca.is_none() {
                return Err(entry_err(
                    "root-threshold applies to root-keyids or ca pins only".into(),
                ));
            }
            e.anchor = if let Some(root) = &e.root {
                Pin::RootFile(dir.join(root))
            } else if let Some(ca) = &e.ca {
                Pin::Ca(
                    CaPin::new(dir.join(ca), e.root_threshold)
                        .map_err(|x| entry_err(x.to_string()))?,
                )
            } else if e.tofu {
                Pin::FirstUse
            } else {
                Pin::KeyIds(
                    KeyIdPin::new(&e.root_keyids, e.root_threshold)
                        .map_err(|x| entry_err(x.to_string()))?,
                )
            };
        }
        Ok(policy)
    }

    /// The first entry matching `location`.
    pub fn entry_for(&self, location: &Location) -> Option<&Entry> {
        let name = location.to_string();
        self.repository
            .iter()
            .find(|e| path_matches(&e.pattern, &name))
    }

    /// The pin an entry gives.
    pub fn pin(&self, entry: &Entry) -> Pin {
        entry.anchor.clone()
    }

    /// The admission mode for `location`: its entry's, or `enforce` when no entry
    /// matches (the policy default decides those).
    pub fn mode_for(&self, location: &Location) -> Mode {
        self.entry_for(location).map(|e| e.mode).unwrap_or_default()
    }

    /// Check what [`Policy::parse`] cannot: every `root` file an entry pins is a
    /// readable regular file. A policy about to replace a running one (the webhook's
    /// reload) is checked so, and kept out when it fails.
    pub fn check_files(&self, path: &Path) -> Result<(), PolicyError> {
        for e in &self.repository {
            if let Pin::RootFile(root) = &e.anchor {
                crate::fsutil::read_regular(root, MAX_POLICY).map_err(|x| {
                    PolicyError::Invalid {
                        path: path.to_owned(),
                        detail: format!("entry {:?}: root {}: {x}", e.pattern, root.display()),
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// What a policy says about one image.
#[derive(Debug, Clone)]
pub enum PolicyDecision {
    /// Verify with this anchor and these required roles.
    Verify {
        /// The trust anchor on first use.
        pin: Pin,
        /// Roles that must each have signed the digest.
        require_roles: Vec<String>,
    },
    /// No entry matches and the policy's `default = "allow"`: let it through
    /// unverified.
    AllowUnlisted,
    /// No entry matches and the default is to deny.
    DenyUnlisted,
}

/// Apply `policy` to `image`.
pub fn decide(policy: &Policy, image: &crate::store::ImageRef) -> PolicyDecision {
    match policy.entry_for(&image.location) {
        Some(entry) => PolicyDecision::Verify {
            pin: policy.pin(entry),
            require_roles: entry.require_roles.clone(),
        },
        None => match policy.default {
            Default_::Allow => PolicyDecision::AllowUnlisted,
            Default_::Deny => PolicyDecision::DenyUnlisted,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(r: &str, repo: &str) -> Location {
        Location::Registry {
            registry: r.into(),
            repository: repo.into(),
        }
    }

    #[test]
    fn first_matching_entry_applies() {
        let p = Policy::parse(
            r#"
[[repository]]
match = "localhost:5000/team/*"
root-keyids = ["abcdef0123abcdef0123abcdef0123ab"]
require-roles = ["qa", "prod"]

[[repository]]
match = "localhost:5000/*/*"
root = "roots/1.root.json"
"#,
            Path::new("/etc/warrant/policy.toml"),
        )
        .expect("parse");
        let e = p
            .entry_for(&reg("localhost:5000", "team/app"))
            .expect("match");
        assert_eq!(e.require_roles, ["qa", "prod"]);
        assert!(matches!(p.pin(e), Pin::KeyIds(_)));
        let e = p
            .entry_for(&reg("localhost:5000", "other/app"))
            .expect("second");
        assert!(
            matches!(p.pin(e), Pin::RootFile(ref f) if f == Path::new("/etc/warrant/roots/1.root.json"))
        );
        assert!(
            p.entry_for(&reg("localhost:5000", "team/app/sub"))
                .is_none()
        );
        assert!(p.entry_for(&reg("ghcr.io", "team/app")).is_none());
        assert_eq!(p.default, Default_::Deny);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        for bad in [
            "[[repository]]\nmatch = \"x/*\"\n",
            "[[repository]]\nmatch = \"x/*\"\ntofu = true\nroot-keyids = [\"a\"]\n",
            "[[repository]]\nmatch = \"x/*\"\ntofu = true\nunknown = 1\n",
            "default = \"maybe\"\n",
            "[[repository\n",
            // 8 hex digits can be ground by an attacker (issue #12 item 5).
            "[[repository]]\nmatch = \"x/*\"\nroot-keyids = [\"abcdef01\"]\n",
            "[[repository]]\nmatch = \"x/*\"\nroot-keyids = [\"zz\"]\n",
            // A threshold above the pinned keys, zero, or on a root-file pin.
            "[[repository]]\nmatch = \"x/*\"\nroot-keyids = [\"abcdef0123abcdef0123abcdef0123ab\"]\nroot-threshold = 2\n",
            "[[repository]]\nmatch = \"x/*\"\nca = \"ca.pem\"\nroot-threshold = 0\n",
            "[[repository]]\nmatch = \"x/*\"\nroot = \"r.json\"\nroot-threshold = 1\n",
        ] {
            assert!(Policy::parse(bad, Path::new("p.toml")).is_err(), "{bad}");
        }
        let p = Policy::parse("default = \"allow\"\n", Path::new("p.toml")).expect("allow");
        assert_eq!(p.default, Default_::Allow);
        let bad_mode = "[[repository]]\nmatch = \"x/*\"\ntofu = true\nmode = \"permissive\"\n";
        assert!(Policy::parse(bad_mode, Path::new("p.toml")).is_err());
    }

    #[test]
    fn entries_enforce_unless_they_say_warn_or_audit() {
        let p = Policy::parse(
            "[[repository]]\nmatch = \"r/warn/*\"\ntofu = true\nmode = \"warn\"\n\
             [[repository]]\nmatch = \"r/audit/*\"\ntofu = true\nmode = \"audit\"\n\
             [[repository]]\nmatch = \"r/*/*\"\ntofu = true\n",
            Path::new("p.toml"),
        )
        .expect("parse");
        assert_eq!(p.mode_for(&reg("r", "warn/app")), Mode::Warn);
        assert_eq!(p.mode_for(&reg("r", "audit/app")), Mode::Audit);
        assert_eq!(p.mode_for(&reg("r", "team/app")), Mode::Enforce);
        assert_eq!(p.mode_for(&reg("elsewhere", "x/y")), Mode::Enforce);
    }

    #[test]
    fn a_policy_whose_root_file_is_missing_fails_the_file_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        let p = Policy::parse(
            "[[repository]]\nmatch = \"x/*\"\nroot = \"gone.json\"\n",
            &path,
        )
        .expect("parse");
        let e = p.check_files(&path).expect_err("missing root");
        assert!(e.to_string().contains("gone.json"), "{e}");
        std::fs::write(dir.path().join("gone.json"), b"{}").expect("write");
        p.check_files(&path).expect("present");
    }
}
