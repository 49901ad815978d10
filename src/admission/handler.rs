//! One review, from body bytes to answer bytes, with no HTTP in sight: parse, find
//! the images, verify each distinct one through the cache within the review's
//! budget, and answer: allowed, or denied naming every untrusted image and why;
//! on `/mutate`, a patch pinning each verified image to its digest.
//!
//! A review is bounded ([`ReviewLimits`]): more distinct images than the cap is
//! a denial before any verification; at most `per_review` of its images are
//! looked up at a time, so its uncached images queue in the shared pool a few
//! at a time, not all ahead of the next review; and when its time is up, the
//! images whose turn has not come are never looked up at all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::budget::ReviewLimits;
use super::cache::VerifyCache;
use super::metrics::{Endpoint, Metrics, Outcome};
use super::review::{
    API_VERSION, ImageSite, KIND, Patch, ReviewRequest, ReviewResponse, Status, images,
};
use super::verifier::Verification;
use crate::policy::Mode;
use crate::store::{ImageRef, Location, ParseRefError};

/// An answer to send: HTTP status, JSON (or text) body, and how it counts.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status: 200 for any review answered (allowed or not), 400 for a body
    /// that is not one.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// For the request counter.
    pub outcome: Outcome,
}

impl Answer {
    fn bad_request(why: String) -> Self {
        Self {
            status: 400,
            body: why.into_bytes(),
            outcome: Outcome::BadRequest,
        }
    }
}

/// What a review concluded, before it is put on the wire.
#[derive(Debug, Default)]
struct Decision {
    /// Admit or not.
    allowed: bool,
    /// Why not: every untrusted image and its reason.
    denial: Option<String>,
    /// On `/mutate`, the pins.
    patch: Option<Patch>,
    /// Shown to the user (images admitted unverified by the policy default).
    warnings: Vec<String>,
}

impl Decision {
    fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }

    fn deny(message: String) -> Self {
        Self {
            denial: Some(message),
            ..Self::default()
        }
    }
}

/// Reviews admission requests.
#[derive(Debug)]
pub struct Reviewer {
    cache: Arc<VerifyCache>,
    deadline: Duration,
    metrics: Arc<Metrics>,
    limits: ReviewLimits,
}

/// The image a kubelet would pull for `written`, as warrant names it: docker's
/// normalization, `:latest` when there is neither tag nor digest (what the kubelet
/// pulls then), and only registry references (`oci:` paths are this server's own
/// disk, not something a node can pull).
pub fn image_for_kubelet(written: &str) -> Result<ImageRef, String> {
    if written.starts_with("oci:") {
        return Err("not a registry image (an oci: layout path cannot be pulled by a node)".into());
    }
    let parsed = match ImageRef::parse(written) {
        Err(ParseRefError::NoImage { .. }) => ImageRef::parse(&format!("{written}:latest")),
        other => other,
    }
    .map_err(|e| format!("unparseable image reference: {e}"))?;
    match parsed.location {
        Location::Registry { .. } => Ok(parsed),
        _ => Err("not a registry image".into()),
    }
}

impl Reviewer {
    /// A reviewer answering within `deadline` (keep it below the webhook's
    /// `timeoutSeconds`, so a slow registry is a clear denial, not a timeout).
    pub fn new(cache: Arc<VerifyCache>, deadline: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            cache,
            deadline,
            metrics,
            limits: ReviewLimits::default(),
        }
    }

    /// The same reviewer bounding each review by `limits`.
    pub fn limited(mut self, limits: ReviewLimits) -> Self {
        self.limits = ReviewLimits {
            max_images: limits.max_images.max(1),
            per_review: limits.per_review.max(1),
        };
        self
    }

    /// The cache behind this reviewer.
    pub fn cache(&self) -> &Arc<VerifyCache> {
        &self.cache
    }

    /// The per-review deadline (`--deadline-ms`): the most time any review gets.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Review `body` (an `AdmissionReview` JSON document) for `endpoint`,
    /// answering within the deadline from now.
    pub async fn review(&self, endpoint: Endpoint, body: &[u8]) -> Answer {
        self.review_until(endpoint, body, Instant::now(), self.deadline)
            .await
    }

    /// Review `body`, answering within `budget` of `arrived` (the server counts
    /// from the request's arrival, so reading the body is part of it; the budget
    /// is [`super::budget::budget`] of the deadline and the API server's timeout).
    pub async fn review_until(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        arrived: Instant,
        budget: Duration,
    ) -> Answer {
        let budget = budget.min(self.deadline);
        let review: ReviewRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return Answer::bad_request(format!("not an AdmissionReview: {e}\n")),
        };
        if review.api_version != API_VERSION || review.kind != KIND {
            return Answer::bad_request(format!(
                "expected apiVersion {API_VERSION} kind {KIND}, got {:?} {:?} \
                 (set admissionReviewVersions: [\"v1\"])\n",
                review.api_version, review.kind
            ));
        }
        let Some(request) = review.request else {
            return Answer::bad_request("the AdmissionReview has no request\n".into());
        };
        if request.uid.is_empty() {
            return Answer::bad_request("the AdmissionReview request has no uid\n".into());
        }
        let subject = format!(
            "{} {}/{}",
            request.kind.kind,
            request.namespace.as_deref().unwrap_or_default(),
            request.name.as_deref().unwrap_or_default()
        );
        let mut sites = match request.object.as_ref().map(|o| images(&request.kind, o)) {
            None => Ok(Vec::new()),
            Some(r) => r,
        };
        // An UPDATE is judged by what it introduces: images unchanged since the
        // object was admitted are not re-verified (so a label change or a
        // finalizer removal is not refused because a signature lapsed since) and
        // not re-pinned (rewriting a running container's image restarts it; an
        // ephemeral-container update may change nothing else).
        if let (Some("UPDATE"), Ok(sites), Some(old)) = (
            request.operation.as_deref(),
            sites.as_mut(),
            request.old_object.as_ref(),
        ) {
            let before: HashMap<String, String> = images(&request.kind, old)
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.pointer, s.image))
                .collect();
            sites.retain(|s| before.get(&s.pointer) != Some(&s.image));
        }
        let decision = match sites {
            Err(e) => Decision::deny(format!("warrant cannot read the images of {subject}: {e}")),
            Ok(sites) => {
                self.decide(endpoint, &sites, &subject, arrived + budget, budget)
                    .await
            }
        };
        let allowed = decision.allowed;
        // Denials are news; admissions are the normal case (debug only).
        let operation = request.operation.as_deref().unwrap_or_default();
        let dry_run = request.dry_run.unwrap_or(false);
        if allowed {
            tracing::debug!(uid = %request.uid, object = %subject, operation, dry_run, "admitted");
        } else {
            tracing::info!(
                uid = %request.uid,
                object = %subject,
                operation,
                sub_resource = request.sub_resource.as_deref().unwrap_or_default(),
                dry_run,
                endpoint = endpoint.name(),
                reason = decision.denial.as_deref().unwrap_or_default(),
                "denied"
            );
        }
        let response = super::review::Response {
            uid: request.uid,
            allowed,
            status: decision.denial.map(|message| Status {
                code: 403,
                reason: "Forbidden",
                message,
            }),
            patch_type: decision.patch.as_ref().map(|_| "JSONPatch"),
            patch: decision.patch.as_ref().map(Patch::to_base64),
            warnings: decision.warnings,
        };
        match serde_json::to_vec(&ReviewResponse::new(response)) {
            Ok(body) => Answer {
                status: 200,
                body,
                outcome: if allowed {
                    Outcome::Allowed
                } else {
                    Outcome::Denied
                },
            },
            // Serializing strings and booleans cannot fail; if it did, the API
            // server would see a 500 and apply failurePolicy: Fail.
            Err(e) => Answer {
                status: 500,
                body: format!("cannot encode the response: {e}\n").into_bytes(),
                outcome: Outcome::Denied,
            },
        }
    }

    /// Verify every distinct image of `sites` by `deadline` (`budget` after
    /// the request arrived), and decide.
    async fn decide(
        &self,
        endpoint: Endpoint,
        sites: &[ImageSite],
        subject: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Decision {
        if sites.is_empty() {
            return Decision::allow();
        }
        // Distinct images, in order of first appearance.
        let mut order: Vec<&str> = Vec::new();
        let mut seen = HashSet::new();
        for s in sites {
            if seen.insert(s.image.as_str()) {
                order.push(s.image.as_str());
            }
        }
        if order.len() > self.limits.max_images {
            self.metrics.reviews_over_image_cap.fetch_add(1, Relaxed);
            return Decision::deny(format!(
                "warrant: {subject} names {} distinct images; a review verifies at most {} \
                 (--max-images-per-review), so none was verified and it is denied (fail closed)",
                order.len(),
                self.limits.max_images
            ));
        }
        let parsed: HashMap<&str, Result<ImageRef, String>> = order
            .iter()
            .map(|written| (*written, image_for_kubelet(written)))
            .collect();
        let deadline = tokio::time::Instant::from_std(deadline);
        // This review's share of the verification pool.
        let share = Semaphore::new(self.limits.per_review);
        let lookups = order.iter().map(|written| {
            let parsed = parsed.get(written).cloned();
            let share = &share;
            async move {
                let verdict = match parsed {
                    Some(Ok(image)) => {
                        let started = AtomicBool::new(false);
                        let lookup = async {
                            let _turn = share.acquire().await.ok();
                            started.store(true, Relaxed);
                            self.cache.get(&image).await
                        };
                        // The deadline is checked first: when it passes, a
                        // lookup whose turn comes in the same instant (another
                        // one just gave its turn back) must not start.
                        tokio::select! {
                            biased;
                            _ = tokio::time::sleep_until(deadline) => {
                                self.metrics.deadline_exceeded.fetch_add(1, Relaxed);
                                Verification::Failed(
                                    self.late(budget, started.load(Relaxed)).into(),
                                )
                            }
                            v = lookup => v,
                        }
                    }
                    Some(Err(why)) => Verification::Untrusted(why.into()),
                    None => Verification::Failed("internal: image not parsed".into()),
                };
                (*written, verdict)
            }
        });
        let verdicts: HashMap<&str, Verification> = futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .collect();

        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        for written in &order {
            let users = sites
                .iter()
                .filter(|s| s.image == *written)
                .map(ImageSite::describe)
                .collect::<Vec<_>>()
                .join(", ");
            let problem = match verdicts.get(written) {
                Some(Verification::Trusted { .. }) => continue,
                Some(Verification::Unlisted) => {
                    warnings.push(format!(
                        "image {written:?} ({users}) is not covered by the warrant policy and was \
                         admitted unverified (policy default = \"allow\")"
                    ));
                    continue;
                }
                Some(Verification::Untrusted(why)) => format!("{why}"),
                Some(Verification::Failed(why)) => {
                    format!("could not be verified, denied (fail closed): {why}")
                }
                None => "not verified".to_owned(),
            };
            // The policy entry's rollout mode: only an image warrant could name a
            // repository for has one; anything else is enforced.
            let mode = match parsed.get(written) {
                Some(Ok(image)) => self.cache.mode(image),
                _ => Mode::Enforce,
            };
            match mode {
                Mode::Enforce => problems.push(format!("image {written:?} ({users}): {problem}")),
                Mode::Warn => {
                    self.metrics.admitted_unverified(mode);
                    warnings.push(format!(
                        "warrant (mode = \"warn\"): image {written:?} ({users}) would be denied: {problem}"
                    ));
                }
                Mode::Audit => {
                    self.metrics.admitted_unverified(mode);
                    tracing::warn!(
                        object = %subject,
                        image = %written,
                        users = %users,
                        reason = %problem,
                        mode = mode.name(),
                        "admitted unverified (audit): enforcing would deny it"
                    );
                }
            }
        }
        if !problems.is_empty() {
            let message = format!(
                "warrant: {} of {} images not trusted: {}",
                problems.len(),
                order.len(),
                problems.join("; ")
            );
            return Decision {
                warnings,
                ..Decision::deny(message)
            };
        }
        let mut patch = Patch::default();
        if endpoint == Endpoint::Mutate {
            for s in sites {
                if let Some(Verification::Trusted { pinned, .. }) = verdicts.get(s.image.as_str())
                    && **pinned != *s.image
                {
                    patch.replace_image(&s.pointer, &s.image, pinned);
                }
            }
        }
        Decision {
            allowed: true,
            denial: None,
            patch: (!patch.is_empty()).then_some(patch),
            warnings,
        }
    }

    /// Why an image was not verified in time.
    fn late(&self, budget: Duration, started: bool) -> String {
        if started {
            format!(
                "verification did not finish within the {} ms deadline \
                 (registry slow or unreachable)",
                budget.as_millis()
            )
        } else {
            format!(
                "not verified within the {} ms deadline: a review verifies {} images at a \
                 time (--verifications-per-review), and this one's turn did not come",
                budget.as_millis(),
                self.limits.per_review
            )
        }
    }
}

#[cfg(test)]
mod tests;
