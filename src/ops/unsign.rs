//! `warrant unsign`: remove a target from the role that signs it, so a verify of
//! it fails from the next publish on.

use serde::Serialize;

use crate::digest::Sha256Digest;
use crate::store::{ImageRef, Store};
use crate::tuf::editor;

use super::edit::{RoleStatus, authority_of, newest_role_json, pending_of, sign_role};
use super::repository::Repository;
use super::sign::SignOptions;
use super::{Context, OpError};

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
    let repo = Repository::open_for_editing(ctx, &image.location, &opts.pin)?;
    let (outcome, role) = repo.edit(
        false,
        |store, up, listing| {
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
            let delegator =
                up.find_delegator(&role)
                    .map_err(wrap)?
                    .ok_or_else(|| OpError::NoSuchRole {
                        location: location.clone(),
                        role: role.clone(),
                    })?;
            if pending_of(listing, &role).is_some() {
                return Err(super::pending::pending_refusal(
                    store, up, listing, &role, ctx.now,
                )?);
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
        .ok_or(OpError::Internal {
            what: "a removed target has no role status",
        })?;
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
