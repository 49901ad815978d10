//! The write side of [`RegistryStore`]: new blobs first (files kept from the current
//! listing are referenced, not uploaded again), then the `warrant.tuf` manifest,
//! guarded by a check of the tag right before the PUT (registries have no
//! compare-and-swap on tags). Writes go through our own transport and token flow,
//! like reads: no per-request authentication round trips.

use futures_util::StreamExt as _;
use futures_util::stream;
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};

use super::super::artifact::{self, EMPTY_CONFIG, OCI_MANIFEST_MEDIA_TYPE};
use super::super::{NewFile, StoreError, StoreErrorKind as Kind, StoredFile};
use super::RegistryStore;
use crate::digest::Sha256Digest;

const OCTET_STREAM: &str = "application/octet-stream";

impl RegistryStore {
    /// Upload one blob: start a session (POST), then PUT the bytes with their
    /// digest. Two requests, no existence check: only new files are uploaded.
    async fn upload(&self, bytes: &[u8], digest: &Sha256Digest) -> Result<(), StoreError> {
        let d = digest.to_string();
        let stage = format!("uploading blob {d}");
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repository);
        let r = self
            .write(Method::POST, &start, OCTET_STREAM, None, (&d, &stage))
            .await?;
        if r.status == StatusCode::CREATED {
            return Ok(());
        }
        if r.status != StatusCode::ACCEPTED {
            return Err(self.status_error(&d, &r));
        }
        let location = r
            .header(LOCATION.as_str())
            .ok_or_else(|| self.err(Kind::Malformed, &d, "upload session without a Location"))?;
        let mut url = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        if !url.starts_with(&self.base) {
            // Credentials and content stay with the registry we were asked to use.
            return Err(self.err(
                Kind::Malformed,
                &d,
                "the registry sent the upload to another host",
            ));
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("digest=");
        url.push_str(&d.replace(':', "%3A"));
        let r = self
            .write(Method::PUT, &url, OCTET_STREAM, Some(bytes), (&d, &stage))
            .await?;
        if !r.status.is_success() {
            return Err(self.status_error(&d, &r));
        }
        Ok(())
    }

    pub(super) async fn publish_async(
        &self,
        kept: &[StoredFile],
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        let tag = self.artifact.tag;
        let (stored, manifest, digest) =
            artifact::prepare_keeping_of(self.artifact, kept, files)
                .map_err(|e| self.err(Kind::Malformed, tag, format!("refusing to publish: {e}")))?;
        // Blobs first, concurrently; the manifest that names them last. Kept files
        // and the empty config are named by the current manifest: already stored.
        let mut uploads: Vec<(&[u8], Sha256Digest)> = files
            .iter()
            .zip(&stored[kept.len()..])
            .filter(|(_, s)| !kept.iter().any(|k| k.digest == s.digest))
            .map(|(f, s)| (f.bytes.as_slice(), s.digest))
            .collect();
        if previous.is_none() {
            uploads.push((EMPTY_CONFIG, Sha256Digest::of(EMPTY_CONFIG)));
        }
        // At most PREFETCH_CONCURRENCY at once: a repository with a long root chain
        // publishes a hundred files, and a hundred simultaneous uploads is a flood
        // (issue #17: through a proxy they failed; every remote access is bounded).
        let results: Vec<Result<(), StoreError>> =
            stream::iter(uploads.iter().map(|(b, d)| self.upload(b, d)))
                .buffer_unordered(super::PREFETCH_CONCURRENCY)
                .collect()
                .await;
        for r in results {
            r?;
        }
        // Registries have no compare-and-swap on tags: check right before the PUT,
        // so the window in which a concurrent signer can be overwritten is the
        // time from this check to the PUT's answer — measured, because the caller
        // must wait longer than any writer's window before it re-reads to confirm
        // (and a writer whose window was longer than that must say so).
        let started = std::time::Instant::now();
        self.check_previous(previous).await?;
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, self.repository);
        let stage = format!("publishing {tag}");
        let put = self
            .write(
                Method::PUT,
                &url,
                OCI_MANIFEST_MEDIA_TYPE,
                Some(&manifest),
                (tag, &stage),
            )
            .await;
        let failed = match put {
            Ok(r) if r.status.is_success() => {
                self.record_window(started.elapsed());
                return Ok(digest);
            }
            Ok(r) => self.status_error(tag, &r),
            Err(e) => e,
        };
        // The answer may be what was lost (a timeout or reset after the registry
        // stored it, issue #17): the tag says whether it landed.
        match self.head_manifest(tag).await {
            Ok(Some(d)) if d.digest == digest => {
                self.record_window(started.elapsed());
                Ok(digest)
            }
            _ => Err(failed),
        }
    }

    fn record_window(&self, window: std::time::Duration) {
        tracing::debug!(
            "{} published {} ms after checking it",
            self.artifact.tag,
            window.as_millis()
        );
        *self
            .publish_window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(window);
    }

    async fn check_previous(&self, previous: Option<&Sha256Digest>) -> Result<(), StoreError> {
        let tag = self.artifact.tag;
        let current = self.head_manifest(tag).await?.map(|d| d.digest);
        if current.as_ref() != previous {
            return Err(self.err(
                Kind::Conflict,
                tag,
                "another signer published meanwhile; re-read and retry",
            ));
        }
        Ok(())
    }
}
