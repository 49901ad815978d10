//! `warrant sign`: record an image manifest as a TUF target in a role (top-level
//! `targets` by default) and publish — or, when the role's threshold is not met by
//! the keys at hand, publish the new version as pending for others to approve.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::digest::Sha256Digest;
use crate::store::{ImageRef, Store};
use crate::tuf::delegation::path_matches;
use crate::tuf::editor;
use crate::tuf::metadata::{TargetFile, Unrecognized};

use super::edit::{RoleStatus, authority_of, newest_role_json, pending_of, sign_role, transact};
use super::trust::{Pin, open_store};
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
    /// The new `warrant.tuf` digest (`None` when the role already listed this
    /// digest for the target and nothing was published).
    pub published: Option<Sha256Digest>,
    /// Attempts needed (more than one when other signers published meanwhile).
    pub attempts: u32,
}

/// Sign `image` into `opts.role`.
pub fn sign(ctx: &Context, image: &ImageRef, opts: &SignOptions) -> Result<SignOutcome, OpError> {
    let descriptor = open_store(ctx, &image.location)?.resolve(image)?;
    sign_descriptor(ctx, image, descriptor, opts)
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
    let role = opts.role.clone().unwrap_or_else(|| "targets".into());
    let file = TargetFile {
        length: descriptor.size,
        hashes: BTreeMap::from([("sha256".to_owned(), descriptor.digest.hex())]),
        custom: Some(json!({ "mediaType": descriptor.media_type })),
        unrecognized: Unrecognized::new(),
    };
    let mut unchanged: Option<RoleStatus> = None;
    let result = transact(
        ctx,
        &image.location,
        &opts.pin,
        false,
        |store, up, listing| {
            let location = image.location.to_string();
            let delegator = up
                .find_delegator(&role)
                .map_err(|source| OpError::Update {
                    location: location.clone(),
                    source,
                })?
                .ok_or_else(|| {
                    OpError::InvalidArgument(format!(
                        "{location} has no role {role:?}; `warrant delegation list` shows the roles"
                    ))
                })?;
            if pending_of(listing, &role).is_some() {
                let ready = super::edit::ready_pending(store, up, listing, &[], ctx.now)?
                    .iter()
                    .any(|c| c.role == role);
                return Err(OpError::InvalidArgument(if ready {
                    format!(
                        "{role} has a fully signed version waiting to be published: a holder of \
                         the publisher key runs `warrant refresh {location}`; sign again after that"
                    )
                } else {
                    format!(
                        "{role} has a pending version waiting for signatures; approve it first \
                         (`warrant pending {location}`, `warrant approve {location} --role {role}`)"
                    )
                }));
            }
            let authority = authority_of(up, &role, &delegator)?;
            if let Some(paths) = delegated_paths(up, &role, &delegator)
                && !paths.iter().any(|p| path_matches(p, &target))
            {
                return Err(OpError::InvalidArgument(format!(
                    "role {role} may not sign {target:?}: its delegation covers only {paths:?}"
                )));
            }
            let current = up
                .trusted()
                .targets(&role)
                .ok_or_else(|| OpError::NoRepository {
                    location: location.clone(),
                })?;
            // A key named on the command line must belong to the role, changed or not.
            if let Some(q) = opts.key.as_deref() {
                let info = ctx.keys.find(q)?;
                if !authority.keyids.contains(&info.keyid) {
                    return Err(OpError::KeyNotInRole {
                        role: role.clone(),
                        keyid: info.keyid.0,
                    });
                }
            }
            if current
                .targets
                .get(&target)
                .is_some_and(|t| t.length == file.length && t.hashes == file.hashes)
            {
                // Already signed with this digest: publishing a new version would
                // only churn every verifier's cache (issue #12 item 7).
                unchanged = Some(RoleStatus {
                    role: role.clone(),
                    version: current.version.get(),
                    state: "unchanged",
                    signed: current.result().signed.len(),
                    threshold: current.result().threshold.get(),
                    missing: Vec::new(),
                });
                return Err(OpError::AlreadySigned {
                    target: target.clone(),
                    role: role.clone(),
                });
            }
            let mut next = (**current).clone();
            next.targets.insert(target.clone(), file.clone());
            next.version = editor::bump(current.version, "targets")?;
            next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(current.expires);
            let change = sign_role(ctx, &role, &next, authority, &[], opts.key.as_deref())?;
            Ok((vec![change], vec![], ()))
        },
        |store, ()| role_lists_target(store, &role, &target, &file),
    );
    let outcome = match (result, unchanged) {
        (Ok((outcome, ())), _) => outcome,
        (Err(OpError::AlreadySigned { .. }), Some(status)) => {
            return Ok(SignOutcome {
                reference: image.to_string(),
                repository: image.location.to_string(),
                target,
                digest: descriptor.digest,
                size: descriptor.size,
                media_type: descriptor.media_type,
                status,
                published: None,
                attempts: 1,
            });
        }
        (Err(e), _) => return Err(e),
    };
    let status = outcome
        .roles
        .iter()
        .find(|s| s.role == role)
        .cloned()
        .ok_or_else(|| OpError::InvalidArgument("nothing was signed".into()))?;
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

/// The `paths` a delegated role is limited to (`None` for top-level targets, hash
/// prefixes or bins).
fn delegated_paths(
    up: &super::trust::TrustedUpdater<'_>,
    role: &str,
    delegator: &str,
) -> Option<Vec<String>> {
    let parent = up.trusted().targets(delegator)?;
    parent
        .delegations
        .as_ref()?
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.name == role)?
        .paths
        .clone()
}

/// After a publish to a store without compare-and-swap: does the newest version of
/// `role` in the store (pending or not) still list our target? Not a trust decision
/// (the next verify makes that): only "did our change survive".
pub fn role_lists_target(
    store: &dyn Store,
    role: &str,
    target: &str,
    file: &TargetFile,
) -> Result<bool, OpError> {
    let Some(value) = newest_role_json(store, role)? else {
        return Ok(false);
    };
    let ours = serde_json::to_value(file).unwrap_or_default();
    let theirs = &value["signed"]["targets"][target];
    Ok(theirs["hashes"] == ours["hashes"] && theirs["length"] == ours["length"])
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

/// What `unsign` removed.
#[derive(Debug, Clone, Serialize)]
pub struct UnsignOutcome {
    /// The target path removed.
    pub target: String,
    /// The repository.
    pub repository: String,
    /// The role's new version and whether it is published or waiting.
    pub status: RoleStatus,
    /// The new `warrant.tuf` digest.
    pub published: Sha256Digest,
}

/// Remove `image`'s target (its tag, or its digest) from `opts.role`, or from the
/// role a verifier would find it in: a verify of it then fails.
pub fn unsign(
    ctx: &Context,
    image: &ImageRef,
    opts: &SignOptions,
) -> Result<UnsignOutcome, OpError> {
    let target = image.target_name();
    let (outcome, role) = transact(
        ctx,
        &image.location,
        &opts.pin,
        false,
        |_store, up, listing| {
            let location = image.location.to_string();
            let wrap = |source| OpError::Update {
                location: location.clone(),
                source,
            };
            let role = match &opts.role {
                Some(r) => r.clone(),
                None => up
                    .find_target(&target)
                    .map_err(wrap)?
                    .map(|f| f.role)
                    .ok_or_else(|| OpError::TargetNotSigned {
                        target: target.clone(),
                        location: location.clone(),
                    })?,
            };
            let delegator = up.find_delegator(&role).map_err(wrap)?.ok_or_else(|| {
                OpError::InvalidArgument(format!("{location} has no role {role:?}"))
            })?;
            if pending_of(listing, &role).is_some() {
                return Err(OpError::InvalidArgument(format!(
                    "{role} has a pending version; approve it first (`warrant pending {location}`)"
                )));
            }
            let current = up
                .trusted()
                .targets(&role)
                .ok_or_else(|| OpError::NoRepository {
                    location: location.clone(),
                })?;
            if !current.targets.contains_key(&target) {
                return Err(OpError::TargetNotSigned {
                    target: target.clone(),
                    location: format!("{location} (role {role})"),
                });
            }
            let mut next = (**current).clone();
            next.targets.remove(&target);
            next.version = editor::bump(current.version, "targets")?;
            next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(current.expires);
            let change = sign_role(
                ctx,
                &role,
                &next,
                authority_of(up, &role, &delegator)?,
                &[],
                opts.key.as_deref(),
            )?;
            Ok((vec![change], vec![], role))
        },
        // Survived when the newest version of the role no longer lists it.
        |store, role| newest_lists(store, role, &target).map(|listed| !listed),
    )?;
    let status = outcome
        .roles
        .iter()
        .find(|s| s.role == role)
        .cloned()
        .ok_or_else(|| OpError::InvalidArgument("nothing was removed".into()))?;
    Ok(UnsignOutcome {
        target,
        repository: image.location.to_string(),
        status,
        published: outcome.published,
    })
}

/// Does the newest version of `role` in the store list `target` at all?
fn newest_lists(store: &dyn Store, role: &str, target: &str) -> Result<bool, OpError> {
    let Some(value) = newest_role_json(store, role)? else {
        return Ok(false);
    };
    Ok(value["signed"]["targets"].get(target).is_some())
}
