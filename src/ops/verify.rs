//! `warrant verify`: the TUF update, delegation search, and the digest check.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::digest::Sha256Digest;
use crate::store::artifact::OCI_MANIFEST_MEDIA_TYPE;
use crate::store::{Descriptor, ImageRef};

use super::repository::Repository;
use super::trust::Pin;
use super::{Context, OpError};

/// A trusted image.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The reference as given.
    pub reference: String,
    /// `LOCATION@sha256:...`: exactly what was verified, for pulling.
    pub verified: String,
    /// The manifest digest.
    pub digest: Sha256Digest,
    /// Manifest size.
    pub size: u64,
    /// Manifest media type.
    pub media_type: String,
    /// The TUF target path (tag or digest).
    pub target: String,
    /// The role that signed it.
    pub role: String,
    /// The earliest expiry among the metadata the verdict rests on.
    pub expires: DateTime<Utc>,
    /// Things to act on soon (e.g. metadata expiring within 3 days).
    pub warnings: Vec<String>,
    /// When the reference named one platform's manifest of a signed
    /// multi-platform index (`TAG@sha256:<child>`): the signed index's digest.
    pub via_index: Option<Sha256Digest>,
}

/// What the store serves for the image.
enum Served {
    /// Resolved by asking the store (tag references).
    Resolved(Result<Descriptor, crate::store::StoreError>),
    /// The reference pins the digest itself.
    Pinned(Sha256Digest),
}

/// Within this much of expiry, verify warns.
pub fn expiry_warning_window() -> Duration {
    Duration::days(3)
}

/// Verify `image` against its repository's TUF metadata.
pub fn verify(ctx: &Context, image: &ImageRef, pin: &Pin) -> Result<Verdict, OpError> {
    verify_with_roles(ctx, image, pin, &[])
}

/// Verify `image` and demand that each of `require_roles` signed the very same
/// manifest (a delegation search per role: only that role's entry counts).
pub fn verify_with_roles(
    ctx: &Context,
    image: &ImageRef,
    pin: &Pin,
    require_roles: &[String],
) -> Result<Verdict, OpError> {
    Repository::open(ctx, &image.location, pin)?.verify(image, require_roles)
}

impl Repository<'_> {
    /// Verify `image` (of this repository) and demand that each of `require_roles`
    /// signed the very same manifest: refresh, target search, and the check that
    /// what the store serves now is what was signed.
    pub fn verify(&self, image: &ImageRef, require_roles: &[String]) -> Result<Verdict, OpError> {
        let ctx = self.context();
        let store = self.store();
        // The image and the TUF artifact are asked for at once (two HEADs on a
        // registry): when the artifact is unchanged, that is the whole verify. A
        // reference that carries its digest (what containerd and Kubernetes know) needs
        // no image request at all: the digest is what will be pulled.
        let (served, head) = match image.digest {
            Some(digest) => (Served::Pinned(digest), store.head_listing()),
            None => {
                let (served, head) = store.resolve_and_head(image);
                (Served::Resolved(served), head)
            }
        };
        let mut up = self.refresh_for_verify(head?)?;
        let target = image.target_name();
        let location = image.location.to_string();
        let found = up
            .find_target(&target)
            .map_err(|source| OpError::Update {
                location: location.clone(),
                source,
            })?
            .ok_or_else(|| OpError::TargetNotSigned {
                target: target.clone(),
                location: location.clone(),
            })?;
        let signed = found.file.sha256();
        let served = match served {
            Served::Resolved(d) => d?,
            // sha256 identifies the bytes; the length is the signed one by construction.
            Served::Pinned(digest) => Descriptor {
                media_type: found
                    .file
                    .media_type()
                    .unwrap_or(OCI_MANIFEST_MEDIA_TYPE)
                    .to_owned(),
                digest,
                size: found.file.length,
            },
        };
        // `TAG@sha256:<child>`: what a pull on one platform fetches. The signed target
        // is the multi-platform index; the child is trusted when that index (fetched
        // and checked against the signed digest and length) lists it.
        let mut via_index = None;
        let mut served = served;
        if let (Some(index_digest), Some(child), Some(_)) =
            (signed, image.digest, image.tag.as_ref())
            && index_digest != child
            && found.file.media_type().is_some_and(is_index_media_type)
        {
            let bytes = store.read_manifest(&index_digest)?;
            if bytes.len() as u64 == found.file.length
                && let Some(entry) = index_entry(&bytes, &child)
            {
                via_index = Some(index_digest);
                served = entry;
            }
        }
        if via_index.is_none()
            && (signed != Some(served.digest) || found.file.length != served.size)
        {
            return Err(OpError::DigestMismatch {
                reference: image.to_string(),
                target,
                signed: signed.map_or_else(|| "no sha256".to_owned(), |d| d.to_string()),
                signed_size: found.file.length,
                actual: served.digest.to_string(),
                actual_size: served.size,
            });
        }
        for role in require_roles {
            let by_role = up
                .find_target_in_role(&target, role)
                .map_err(|source| OpError::Update {
                    location: location.clone(),
                    source,
                })?
                .ok_or_else(|| OpError::RoleDidNotSign {
                    role: role.clone(),
                    target: target.clone(),
                })?;
            if by_role.file.hashes != found.file.hashes || by_role.file.length != found.file.length
            {
                return Err(OpError::RolesDisagree {
                    role: role.clone(),
                    target: target.clone(),
                    signed: by_role
                        .file
                        .sha256()
                        .map_or_else(|| "no sha256".into(), |d| d.to_string()),
                    expected: served.digest.to_string(),
                });
            }
        }
        let (expires, warnings) = expiry_of(ctx, up.trusted(), &location);
        Ok(Verdict {
            via_index,
            reference: image.to_string(),
            verified: format!("{}@{}", image.location, served.digest),
            digest: served.digest,
            size: served.size,
            media_type: served.media_type,
            target,
            role: found.role,
            expires,
            warnings,
        })
    }
}

/// The earliest expiry among the metadata a verdict rests on (root, timestamp,
/// snapshot, and every targets role loaded: the search path and required roles),
/// with a warning for each within [`expiry_warning_window`].
fn expiry_of(
    ctx: &Context,
    trusted: &crate::tuf::trusted::TrustedSet,
    location: &str,
) -> (DateTime<Utc>, Vec<String>) {
    let mut expiries = vec![("root", trusted.root().expires)];
    if let Some(t) = trusted.timestamp() {
        expiries.push(("timestamp", t.expires));
    }
    if let Some(s) = trusted.snapshot() {
        expiries.push(("snapshot", s.expires));
    }
    for (_, expires) in trusted.role_expiries() {
        expiries.push(("targets", expires));
    }
    let expires = expiries.iter().map(|(_, e)| *e).min().unwrap_or(ctx.now);
    let warnings = expiries
        .iter()
        .filter(|(_, e)| *e - ctx.now < expiry_warning_window())
        .map(|(role, e)| {
            format!(
                "{role} metadata of {location} expires at {e}: run {}",
                crate::tuf::trusted::renewal_hint(role)
            )
        })
        .collect();
    (expires, warnings)
}

/// An OCI image index or a Docker manifest list.
fn is_index_media_type(m: &str) -> bool {
    m == "application/vnd.oci.image.index.v1+json"
        || m == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// The descriptor of `child` in the index `bytes` (already checked against the
/// signed digest), if it lists it.
fn index_entry(bytes: &[u8], child: &Sha256Digest) -> Option<Descriptor> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("manifests")?.as_array()?.iter().find_map(|m| {
        let digest: Sha256Digest = m.get("digest")?.as_str()?.parse().ok()?;
        (digest == *child).then(|| Descriptor {
            media_type: m
                .get("mediaType")
                .and_then(|t| t.as_str())
                .unwrap_or(OCI_MANIFEST_MEDIA_TYPE)
                .to_owned(),
            digest,
            size: m
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
        })
    })
}
