//! `warrant sign`: record an image manifest as a TUF target in a role (top-level
//! `targets` by default) and publish — or, when the role's threshold is not met by
//! the keys at hand, publish the new version as pending for others to approve.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::digest::Sha256Digest;
use crate::store::ImageRef;
use crate::tuf::metadata::{TargetFile, Unrecognized};

use super::edit::RoleStatus;
use super::repository::Repository;
use super::sign_draft::SignDraft;
pub use super::sign_draft::{role_lists_target, role_lists_targets};
use super::trust::Pin;
pub use super::unsign::{UnsignOutcome, unsign};
use super::{Context, OpError};

/// Options of `warrant sign`.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// The role to sign into (default `targets`).
    pub role: Option<String>,
    /// Sign with this key only (id, prefix or name).
    pub key: Option<String>,
    /// How the signer trusts the repository on its first contact.
    pub pin: Pin,
    /// When the reference has both a tag and a digest, look the manifest up by the
    /// digest alone and sign it under the tag, wherever the tag points now: what
    /// `docker warrant push` does with the digest its push reported, so a tag moved
    /// by someone else meanwhile cannot make it sign their image (or fail).
    pub by_digest: bool,
}

/// What `sign` published.
#[derive(Debug, Clone, Serialize)]
pub struct SignOutcome {
    /// The image.
    pub reference: String,
    /// The repository.
    pub repository: String,
    /// The target path.
    pub target: String,
    /// The signed manifest digest.
    pub digest: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The role's new version and whether it is published or waiting.
    pub status: RoleStatus,
    /// The new `warrant.tuf` digest (`None` when every target was already signed
    /// with its digest and nothing was published).
    pub published: Option<Sha256Digest>,
    /// Attempts needed (more than one when other signers published meanwhile).
    pub attempts: u32,
}

/// Sign `image` into `opts.role`.
pub fn sign(ctx: &Context, image: &ImageRef, opts: &SignOptions) -> Result<SignOutcome, OpError> {
    sign_many(ctx, std::slice::from_ref(image), opts)?
        .into_iter()
        .next()
        .ok_or(OpError::Internal {
            what: "nothing was signed",
        })
}

/// Sign every image of `images` into `opts.role` with **one publish per
/// repository** (one new role version, one snapshot, one timestamp), however many
/// tags: a CI job pushing 50 tags does not publish 50 times (issue #13 item 3).
/// Outcomes are in the order given. The same target named twice with different
/// digests is refused.
pub fn sign_many(
    ctx: &Context,
    images: &[ImageRef],
    opts: &SignOptions,
) -> Result<Vec<SignOutcome>, OpError> {
    let mut groups: Vec<(&crate::store::Location, Vec<&ImageRef>)> = Vec::new();
    for image in images {
        match groups.iter_mut().find(|(l, _)| *l == &image.location) {
            Some((_, g)) => g.push(image),
            None => groups.push((&image.location, vec![image])),
        }
    }
    let mut outcomes = Vec::with_capacity(images.len());
    for (location, group) in groups {
        outcomes.extend(sign_in_one_publish(ctx, location, &group, opts)?);
    }
    Ok(outcomes)
}

/// One target to add: the image, its target path and entry.
struct Entry<'a> {
    image: &'a ImageRef,
    target: String,
    media_type: String,
    digest: Sha256Digest,
    file: TargetFile,
}

fn sign_in_one_publish(
    ctx: &Context,
    location: &crate::store::Location,
    images: &[&ImageRef],
    opts: &SignOptions,
) -> Result<Vec<SignOutcome>, OpError> {
    let repo = Repository::open_untrusted(ctx, location)?;
    let store = repo.store();
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(images.len());
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for image in images {
        let descriptor = match (&image.digest, opts.by_digest) {
            (Some(digest), true) => store.resolve(&ImageRef {
                location: image.location.clone(),
                tag: None,
                digest: Some(*digest),
            })?,
            _ => store.resolve(image)?,
        };
        let target = image.target_name();
        let file = TargetFile {
            length: descriptor.size,
            hashes: BTreeMap::from([("sha256".to_owned(), descriptor.digest.hex())]),
            custom: Some(json!({ "mediaType": descriptor.media_type })),
            unrecognized: Unrecognized::new(),
        };
        if let Some(&i) = seen.get(&target) {
            if entries[i].file != file {
                return Err(OpError::TargetGivenTwice {
                    target,
                    first: entries[i].digest,
                    second: descriptor.digest,
                });
            }
            continue;
        }
        seen.insert(target.clone(), entries.len());
        entries.push(Entry {
            image,
            target,
            media_type: descriptor.media_type,
            digest: descriptor.digest,
            file,
        });
    }
    let repo = repo.into_editing(&opts.pin)?;
    let targets: Vec<(String, TargetFile)> = entries
        .iter()
        .map(|e| (e.target.clone(), e.file.clone()))
        .collect();
    let (outcome, roles) = match sign_or_skip(&repo, &targets, opts)? {
        Signed::Published(outcome, roles) => (outcome, roles),
        Signed::Unchanged(statuses) => {
            return Ok(entries
                .into_iter()
                .zip(statuses)
                .map(|(e, status)| SignOutcome {
                    reference: e.image.to_string(),
                    repository: location.to_string(),
                    target: e.target,
                    digest: e.digest,
                    size: e.file.length,
                    media_type: e.media_type,
                    status,
                    published: None,
                    attempts: 1,
                })
                .collect());
        }
    };
    let mut outcomes = Vec::with_capacity(entries.len());
    for (e, r) in entries.into_iter().zip(&roles) {
        let status =
            outcome
                .roles
                .iter()
                .find(|s| &s.role == r)
                .cloned()
                .ok_or(OpError::Internal {
                    what: "a signed target has no role status",
                })?;
        outcomes.push(SignOutcome {
            reference: e.image.to_string(),
            repository: location.to_string(),
            target: e.target,
            digest: e.digest,
            size: e.file.length,
            media_type: e.media_type,
            status,
            published: Some(outcome.published),
            attempts: outcome.attempts,
        });
    }
    Ok(outcomes)
}

/// Sign `image` as `descriptor` (digest, size, media type) into `opts.role`, without
/// asking the registry: for importers that carry over what another system signed
/// (issue #16), which may differ from what the registry serves now.
pub fn sign_descriptor(
    ctx: &Context,
    image: &ImageRef,
    descriptor: crate::store::Descriptor,
    opts: &SignOptions,
) -> Result<SignOutcome, OpError> {
    let target = image.target_name();
    let file = TargetFile {
        length: descriptor.size,
        hashes: BTreeMap::from([("sha256".to_owned(), descriptor.digest.hex())]),
        custom: Some(json!({ "mediaType": descriptor.media_type })),
        unrecognized: Unrecognized::new(),
    };
    let repo = Repository::open_for_editing(ctx, &image.location, &opts.pin)?;
    let (outcome, roles) = match sign_or_skip(&repo, &[(target.clone(), file)], opts)? {
        Signed::Published(outcome, roles) => (outcome, roles),
        Signed::Unchanged(mut statuses) => {
            return Ok(SignOutcome {
                reference: image.to_string(),
                repository: image.location.to_string(),
                target,
                digest: descriptor.digest,
                size: descriptor.size,
                media_type: descriptor.media_type,
                status: statuses.pop().ok_or(OpError::Internal {
                    what: "nothing was signed",
                })?,
                published: None,
                attempts: 1,
            });
        }
    };
    let role = roles.first().cloned().unwrap_or_default();
    let status = outcome
        .roles
        .iter()
        .find(|s| s.role == role)
        .cloned()
        .ok_or(OpError::Internal {
            what: "a signed target has no role status",
        })?;
    Ok(SignOutcome {
        reference: image.to_string(),
        repository: image.location.to_string(),
        target,
        digest: descriptor.digest,
        size: descriptor.size,
        media_type: descriptor.media_type,
        status,
        published: Some(outcome.published),
        attempts: outcome.attempts,
    })
}

/// What signing did: published, or nothing to publish because every target was
/// already signed with its digest (issue #12 item 7).
enum Signed {
    Published(super::edit::CommitOutcome, Vec<String>),
    Unchanged(Vec<RoleStatus>),
}

/// Sign `targets` (path and entry each, already resolved) into `opts.role` of
/// `location` in one publish: what `sign` does once it knows the digests. For
/// tools and benchmarks that build large repositories without a registry request
/// per tag. Returns the commit and the role each target went into.
pub fn sign_targets(
    ctx: &Context,
    location: &crate::store::Location,
    targets: &[(String, TargetFile)],
    opts: &SignOptions,
) -> Result<(super::edit::CommitOutcome, Vec<String>), OpError> {
    let repo = Repository::open_for_editing(ctx, location, &opts.pin)?;
    match sign_or_skip(&repo, targets, opts)? {
        Signed::Published(outcome, roles) => Ok((outcome, roles)),
        Signed::Unchanged(_) => Err(OpError::AlreadySigned {
            target: targets.first().map(|t| t.0.clone()).unwrap_or_default(),
            role: opts.role.clone().unwrap_or_else(|| "targets".into()),
        }),
    }
}

fn sign_or_skip(
    repo: &Repository<'_>,
    targets: &[(String, TargetFile)],
    opts: &SignOptions,
) -> Result<Signed, OpError> {
    let draft = SignDraft {
        ctx: repo.context(),
        location: repo.location().to_string(),
        role: opts.role.clone().unwrap_or_else(|| "targets".into()),
        targets,
        key: opts.key.as_deref(),
    };
    let mut unchanged: Option<Vec<RoleStatus>> = None;
    let result = repo.edit(
        false,
        |store, up, listing| {
            let (delegator, waiting) = draft.delegator(store, up, listing)?;
            // Every target already signed with this digest: publishing a new version
            // would only churn every verifier's cache (issue #12 item 7).
            if let Some(same) = draft.already_signed(up)? {
                unchanged = Some(same);
                return Err(OpError::AlreadySigned {
                    target: targets.first().map(|t| t.0.clone()).unwrap_or_default(),
                    role: draft.role.clone(),
                });
            }
            draft.check_paths(up, &delegator)?;
            draft.changes(up, &delegator, &waiting)
        },
        |store, roles: &Vec<String>| draft.survived(store, roles),
    );
    match (result, unchanged) {
        (Ok((outcome, roles)), _) => Ok(Signed::Published(outcome, roles)),
        (Err(OpError::AlreadySigned { .. }), Some(statuses)) => Ok(Signed::Unchanged(statuses)),
        (Err(e), _) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::edit::version_of;

    #[test]
    fn role_file_versions() {
        assert_eq!(version_of("3.targets.json", "targets"), Some(3));
        assert_eq!(version_of("3.qa.targets.json", "targets"), None);
        assert_eq!(version_of("x.targets.json", "targets"), None);
        assert_eq!(version_of(".targets.json", "targets"), None);
        assert_eq!(version_of("1.root.json", "targets"), None);
        assert_eq!(
            version_of("12.registry.npmjs.org.json", "registry.npmjs.org"),
            Some(12)
        );
    }
}
