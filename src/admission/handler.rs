//! One review, from body bytes to answer bytes, with no HTTP in sight: parse, find
//! the images, verify each distinct one through the cache within the deadline,
//! and answer: allowed, or denied naming every untrusted image and why; on
//! `/mutate`, a patch pinning each verified image to its digest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cache::VerifyCache;
use super::metrics::{Endpoint, Metrics, Outcome};
use super::review::{
    API_VERSION, ImageSite, KIND, Patch, ReviewRequest, ReviewResponse, Status, images,
};
use super::verifier::Verification;
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
        }
    }

    /// The cache behind this reviewer.
    pub fn cache(&self) -> &Arc<VerifyCache> {
        &self.cache
    }

    /// The per-review deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Review `body` (an `AdmissionReview` JSON document) for `endpoint`,
    /// answering within the deadline from now.
    pub async fn review(&self, endpoint: Endpoint, body: &[u8]) -> Answer {
        self.review_until(endpoint, body, Instant::now() + self.deadline)
            .await
    }

    /// Review `body`, answering by `deadline` (the server counts it from the
    /// request's arrival, so reading the body is part of it).
    pub async fn review_until(&self, endpoint: Endpoint, body: &[u8], deadline: Instant) -> Answer {
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
            Ok(sites) => self.decide(endpoint, &sites, deadline).await,
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

    /// Verify every distinct image of `sites` by `deadline`, and decide.
    async fn decide(&self, endpoint: Endpoint, sites: &[ImageSite], deadline: Instant) -> Decision {
        if sites.is_empty() {
            return Decision::allow();
        }
        // Distinct images, in order of first appearance.
        let mut order: Vec<&str> = Vec::new();
        let mut parsed: HashMap<&str, Result<ImageRef, String>> = HashMap::new();
        for s in sites {
            parsed.entry(s.image.as_str()).or_insert_with(|| {
                order.push(s.image.as_str());
                image_for_kubelet(&s.image)
            });
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        let lookups = order.iter().map(|written| {
            let parsed = parsed.get(written).cloned();
            async move {
                let verdict = match parsed {
                    Some(Ok(image)) => {
                        match tokio::time::timeout_at(deadline, self.cache.get(&image)).await {
                            Ok(v) => v,
                            Err(_) => {
                                self.metrics
                                    .deadline_exceeded
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                Verification::Failed(
                                    format!(
                                        "verification did not finish within the {} ms deadline \
                                         (registry slow or unreachable)",
                                        self.deadline.as_millis()
                                    )
                                    .into(),
                                )
                            }
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
            match verdicts.get(written) {
                Some(Verification::Trusted { .. }) => {}
                Some(Verification::Unlisted) => warnings.push(format!(
                    "image {written:?} ({users}) is not covered by the warrant policy and was \
                     admitted unverified (policy default = \"allow\")"
                )),
                Some(Verification::Untrusted(why)) => {
                    problems.push(format!("image {written:?} ({users}): {why}"));
                }
                Some(Verification::Failed(why)) => problems.push(format!(
                    "image {written:?} ({users}): could not be verified, denied (fail closed): {why}"
                )),
                None => problems.push(format!("image {written:?} ({users}): not verified")),
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
}

#[cfg(test)]
mod tests;
