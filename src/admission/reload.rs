//! The policy file reloaded when it changes (a Kubernetes ConfigMap update swaps
//! the mounted file), validated before it replaces the one in force.
//!
//! A change is read whole, parsed and checked ([`Policy::parse`], then
//! [`Policy::check_files`]); only a policy that passes replaces the running one,
//! and the answer cache is cleared then (its answers were decided under the old
//! policy). A policy that fails keeps the old one in force and is reported: an
//! error log line, `/readyz` (still 200: the webhook keeps answering with the
//! policy it has, and every replica reads the same ConfigMap, so failing readiness
//! would turn one typo into a cluster-wide outage under `failurePolicy: Fail`), and
//! `/metrics` (`warrant_admission_policy_stale`, `..._policy_reloads_total`).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::cache::VerifyCache;
use super::metrics::Metrics;
use super::verifier::PolicyVerifier;
use crate::digest::Sha256Digest;
use crate::policy::{Policy, PolicyError};

/// How often the policy file is looked at (a ConfigMap update reaches the pod's
/// volume within the kubelet's sync period, about a minute, anyway).
pub const POLICY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Largest policy file read (as [`Policy::load`]).
const MAX_POLICY: u64 = 1024 * 1024;

/// What one look at the policy file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The same bytes as last time: nothing to do.
    Unchanged,
    /// A new policy is in force.
    Replaced,
    /// The file changed but is not a usable policy; the previous one stays in force.
    Rejected(String),
}

/// Watches the policy file of a running webhook.
#[derive(Debug)]
pub struct PolicyReloader {
    path: PathBuf,
    verifier: Arc<PolicyVerifier>,
    cache: Arc<VerifyCache>,
    metrics: Arc<Metrics>,
    state: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// The digest of the file's bytes last looked at (in force or rejected).
    digest: Option<Sha256Digest>,
    /// Why the file on disk is not in force, when it is not.
    rejected: Option<String>,
}

impl PolicyReloader {
    /// A reloader for `path`, whose current contents `verifier` already uses.
    pub fn new(
        path: PathBuf,
        verifier: Arc<PolicyVerifier>,
        cache: Arc<VerifyCache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let digest = crate::fsutil::read_regular(&path, MAX_POLICY)
            .ok()
            .map(|b| Sha256Digest::of(&b));
        Self {
            path,
            verifier,
            cache,
            metrics,
            state: Mutex::new(Seen {
                digest,
                rejected: None,
            }),
        }
    }

    /// Why the policy file on disk is not the one in force (`None` when it is).
    pub fn rejected(&self) -> Option<String> {
        self.seen().rejected.clone()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read the file; when its bytes changed, validate them and put the new policy
    /// in force, or keep the old one and report why. Blocking file I/O.
    pub fn reload_if_changed(&self) -> ReloadOutcome {
        let read = crate::fsutil::read_regular(&self.path, MAX_POLICY);
        let digest = read.as_ref().ok().map(|b| Sha256Digest::of(b));
        let mut seen = self.seen();
        if digest.is_some() && digest == seen.digest {
            return ReloadOutcome::Unchanged;
        }
        let checked = read
            .map_err(|e| PolicyError::Read {
                path: self.path.clone(),
                detail: e.to_string(),
            })
            .and_then(|bytes| {
                let text = String::from_utf8(bytes).map_err(|_| PolicyError::Invalid {
                    path: self.path.clone(),
                    detail: "not UTF-8 text".into(),
                })?;
                let policy = Policy::parse(&text, &self.path)?;
                policy.check_files(&self.path)?;
                Ok(policy)
            });
        match checked {
            Ok(policy) => {
                self.verifier.replace_policy(policy);
                self.cache.clear();
                seen.digest = digest;
                seen.rejected = None;
                self.metrics.policy_reloads.fetch_add(1, Relaxed);
                self.metrics.policy_stale.store(0, Relaxed);
                tracing::info!(policy = %self.path.display(), "policy changed: the new policy is in force");
                ReloadOutcome::Replaced
            }
            Err(e) => {
                let why = e.to_string();
                // An unreadable file is reported each time (it may come back);
                // bad contents once per change.
                if seen.rejected.as_deref() != Some(why.as_str()) || digest.is_none() {
                    self.metrics.policy_rejections.fetch_add(1, Relaxed);
                    tracing::error!(
                        policy = %self.path.display(),
                        error = %why,
                        "policy change rejected: the previous policy stays in force"
                    );
                }
                seen.digest = digest;
                seen.rejected = Some(why.clone());
                self.metrics.policy_stale.store(1, Relaxed);
                ReloadOutcome::Rejected(why)
            }
        }
    }
}
