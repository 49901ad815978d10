//! The write side of [`RegistryStore`]: blobs first (skipping those the registry
//! has), then the `warrant.tuf` manifest, guarded by a check of the tag right before
//! the PUT (registries have no compare-and-swap on tags), and confirmed after it
//! (an acknowledged PUT is not proof of a stored one).

use futures_util::StreamExt as _;
use futures_util::stream;
use reqwest::header::HeaderValue;

use super::super::artifact::{self, EMPTY_CONFIG, OCI_MANIFEST_MEDIA_TYPE};
use super::super::{NewFile, StoreError, StoreErrorKind as Kind, TUF_TAG};
use super::{RegistryStore, redact};
use crate::digest::Sha256Digest;

impl RegistryStore {
    async fn ensure_push_auth(&self) -> Result<(), StoreError> {
        if self.push_ready.lock().map(|g| *g).unwrap_or(false) {
            return Ok(());
        }
        // Our own token flow first: it decides whether the credentials may go to
        // the token service the registry names, and so what `oci-client` gets.
        self.authenticate_for_push().await?;
        self.oci()?
            .store_auth_if_needed(self.reference.resolve_registry(), &self.oci_auth())
            .await;
        if let Ok(mut g) = self.push_ready.lock() {
            *g = true;
        }
        Ok(())
    }

    async fn upload(&self, bytes: &[u8], digest: &Sha256Digest) -> Result<(), StoreError> {
        let d = digest.to_string();
        let exists = self
            .oci()?
            .blob_exists(&self.reference, &d)
            .await
            .map_err(|e| self.err(Kind::Io, &d, redact(&e.to_string())))?;
        if !exists {
            self.oci()?
                .push_blob(&self.reference, bytes.to_vec(), &d)
                .await
                .map_err(|e| {
                    self.err(
                        Kind::Io,
                        &d,
                        format!("upload failed: {}", redact(&e.to_string())),
                    )
                })?;
        }
        Ok(())
    }

    pub(super) async fn publish_async(
        &self,
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        let (stored, manifest, digest) = artifact::prepare(files).map_err(|e| {
            self.err(
                Kind::Malformed,
                TUF_TAG,
                format!("refusing to publish: {e}"),
            )
        })?;
        self.ensure_push_auth().await?;
        self.check_previous(previous).await?;
        // Blobs first, concurrently; the manifest that names them last.
        let mut uploads: Vec<(&[u8], Sha256Digest)> = files
            .iter()
            .zip(&stored)
            .map(|(f, s)| (f.bytes.as_slice(), s.digest))
            .collect();
        uploads.push((EMPTY_CONFIG, Sha256Digest::of(EMPTY_CONFIG)));
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
        // Registries have no compare-and-swap on tags: check again right before the
        // PUT, so the window in which a concurrent signer can be overwritten is the
        // few milliseconds of one request. The caller re-reads afterwards to converge.
        self.check_previous(previous).await?;
        let content_type = HeaderValue::from_static(OCI_MANIFEST_MEDIA_TYPE);
        let put = self
            .oci()?
            .push_manifest_raw(&self.reference, manifest, content_type)
            .await;
        if let Err(e) = put {
            let failed = self.err(
                Kind::Io,
                TUF_TAG,
                format!("manifest upload failed: {}", redact(&e.to_string())),
            );
            // The answer may be what was lost (a timeout or reset after the
            // registry stored it, issue #17): the tag says whether it landed.
            return match self.head_manifest(TUF_TAG).await {
                Ok(Some(d)) if d.digest == digest => Ok(digest),
                _ => Err(failed),
            };
        }
        // A registry (or a proxy or cache in front of it) may acknowledge the PUT
        // and store nothing (issue #17): say "published" only once the tag has
        // moved off the manifest we built on. A tag still at `previous` is a lost
        // write, retried from a fresh read like a conflict; a tag at a third
        // manifest is a concurrent writer, which the caller's re-read sorts out.
        let now = self
            .head_manifest(TUF_TAG)
            .await
            .map_err(|e| {
                self.err(
                    e.kind,
                    TUF_TAG,
                    format!(
                        "the registry acknowledged {digest} but it is not confirmed: {}",
                        e.detail
                    ),
                )
            })?
            .map(|d| d.digest);
        if now.as_ref() == previous && now.as_ref() != Some(&digest) {
            return Err(self.err(
                Kind::Conflict,
                TUF_TAG,
                "the registry acknowledged the new manifest but still serves the previous one (a lost write); re-read and retry",
            ));
        }
        Ok(digest)
    }

    async fn check_previous(&self, previous: Option<&Sha256Digest>) -> Result<(), StoreError> {
        let current = self.head_manifest(TUF_TAG).await?.map(|d| d.digest);
        if current.as_ref() != previous {
            return Err(self.err(
                Kind::Conflict,
                TUF_TAG,
                "another signer published meanwhile; re-read and retry",
            ));
        }
        Ok(())
    }
}
