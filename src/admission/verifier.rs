//! One image, one answer: the policy decides how (or whether) an image is verified,
//! and [`crate::ops::verify`] does it. The seam is a trait so the cache and the
//! request handler can be tested with answers chosen by the test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use crate::crypto::keystore::PassphraseSource;
use crate::digest::Sha256Digest;
use crate::ops::verify::verify_with_roles;
use crate::ops::{Context, Network};
use crate::policy::{Mode, Policy};
use crate::policy::{PolicyDecision, decide};
use crate::store::ImageRef;

/// What verifying one image concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Verified under the policy.
    Trusted {
        /// `REGISTRY/REPO[:TAG]@sha256:DIGEST`: what the kubelet must pull.
        pinned: Arc<str>,
        /// The verified manifest digest.
        digest: Sha256Digest,
        /// The earliest expiry of the metadata the answer rests on: it is never
        /// served past this.
        expires: DateTime<Utc>,
    },
    /// No policy entry covers the repository and the policy's `default = "allow"`:
    /// admitted unverified, and not pinned (there is no verified digest).
    Unlisted,
    /// Not trusted, or not verifiable as configured (no policy entry under
    /// `default = "deny"`, no trust anchor, a required role missing): denied.
    Untrusted(Arc<str>),
    /// The verification could not finish (registry unreachable, I/O): denied
    /// (fail closed) and not remembered, so the next request asks again.
    Failed(Arc<str>),
}

/// Verifies one image; called on a blocking thread, so it may do I/O.
pub trait Verifier: Send + Sync + 'static {
    /// Decide about `image`, a registry reference with a tag or a digest.
    fn verify(&self, image: &ImageRef) -> Verification;

    /// What to do when `image` does not verify (the policy entry's `mode`).
    fn mode(&self, image: &ImageRef) -> Mode {
        let _ = image;
        Mode::Enforce
    }
}

/// The production verifier: the policy file's decision, then the full TUF
/// verification of `warrant verify` against the trusted cache in `home`.
#[derive(Debug)]
pub struct PolicyVerifier {
    home: PathBuf,
    network: Network,
    /// Replaced whole by a reload; a verification keeps the one it started with.
    policy: RwLock<Arc<Policy>>,
    registry_checks: Option<Arc<AtomicU64>>,
}

impl PolicyVerifier {
    /// A verifier keeping its trusted metadata in `home` (`$WARRANT_HOME`).
    pub fn new(home: PathBuf, network: Network, policy: Policy) -> Self {
        Self {
            home,
            network,
            policy: RwLock::new(Arc::new(policy)),
            registry_checks: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Put `policy` in force for the verifications that start from now on.
    pub fn replace_policy(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    /// Count each verification that goes to a registry in `counter`.
    pub fn counting(mut self, counter: Arc<AtomicU64>) -> Self {
        self.registry_checks = Some(counter);
        self
    }
}

/// What the kubelet should pull for a verified `image` whose manifest is `digest`:
/// the fully qualified name, the tag kept for people, and the digest that makes
/// the tag irrelevant to the runtime. Fully qualified because some runtimes (CRI-O
/// with `unqualified-search-registries`) do not read `app` as `docker.io/library/app`.
pub fn pinned_reference(image: &ImageRef, digest: &Sha256Digest) -> String {
    match &image.tag {
        Some(tag) => format!("{}:{tag}@{digest}", image.location),
        None => format!("{}@{digest}", image.location),
    }
}

impl Verifier for PolicyVerifier {
    fn mode(&self, image: &ImageRef) -> Mode {
        self.policy().mode_for(&image.location)
    }

    fn verify(&self, image: &ImageRef) -> Verification {
        let (pin, roles) = match decide(&self.policy(), image) {
            PolicyDecision::Verify { pin, require_roles } => (pin, require_roles),
            PolicyDecision::AllowUnlisted => return Verification::Unlisted,
            PolicyDecision::DenyUnlisted => {
                return Verification::Untrusted(
                    format!(
                        "no trust policy for {} (add a [[repository]] entry whose match covers it)",
                        image.location
                    )
                    .into(),
                );
            }
        };
        // A context per verification: it reads the clock, and expiry must be
        // judged now, not when the server started.
        let mut ctx = Context::new(self.home.clone(), PassphraseSource::new(None));
        ctx.network = self.network.clone();
        if let Some(c) = &self.registry_checks {
            c.fetch_add(1, Ordering::Relaxed);
        }
        match verify_with_roles(&ctx, image, &pin, &roles) {
            Ok(v) => Verification::Trusted {
                pinned: pinned_reference(image, &v.digest).into(),
                digest: v.digest,
                expires: v.expires,
            },
            // 3: the registry or the disk failed; worth asking again soon.
            Err(e) if e.exit_code() == 3 => Verification::Failed(e.to_string().into()),
            // 1 (not trusted) and 2 (configuration): asking again changes nothing
            // until somebody signs or reconfigures.
            Err(e) => Verification::Untrusted(e.to_string().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn pins_are_fully_qualified_and_keep_the_tag() {
        let d: Sha256Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let r = |s: &str| pinned_reference(&ImageRef::parse(s).unwrap(), &d);
        assert_eq!(r("nginx:1.27"), format!("docker.io/library/nginx:1.27@{d}"));
        assert_eq!(
            r("localhost:5000/team/app:v1"),
            format!("localhost:5000/team/app:v1@{d}")
        );
        assert_eq!(
            r(&format!("ghcr.io/o/app@{d}")),
            format!("ghcr.io/o/app@{d}")
        );
    }

    #[test]
    fn unlisted_images_follow_the_policy_default_without_io() {
        let home = tempfile::tempdir().unwrap();
        let image = ImageRef::parse("registry.invalid/other/app:1").unwrap();
        let deny = Policy::parse(
            "[[repository]]\nmatch = \"registry.invalid/team/*\"\ntofu = true\n",
            std::path::Path::new("/p.toml"),
        )
        .unwrap();
        let v = PolicyVerifier::new(home.path().into(), Network::default(), deny);
        match v.verify(&image) {
            Verification::Untrusted(m) => assert!(m.contains("no trust policy"), "{m}"),
            other => panic!("{other:?}"),
        }
        let allow =
            Policy::parse("default = \"allow\"\n", std::path::Path::new("/p.toml")).unwrap();
        let v = PolicyVerifier::new(home.path().into(), Network::default(), allow);
        assert_eq!(v.verify(&image), Verification::Unlisted);
    }
}
