//! `warrant renew`: re-sign roles unchanged with a fresh expiry and the next
//! version — the way back from expired root or targets metadata (issue #12).
//!
//! * **root**: root version N+1 with the same keys and roles, signed by a threshold
//!   of the current root keys, so a verifier that cached any root follows the
//!   chain. Snapshot and timestamp are untouched (their keys did not change), so the
//!   root key holders need no publisher key.
//! * **targets and delegated roles**: the next version of the same content, signed
//!   by whichever of the role's keys are at hand; short of the threshold it waits as
//!   pending for the other holders' `warrant approve`, like any change.
//! * **snapshot, timestamp**: what `warrant refresh` does.

use serde::Serialize;

use crate::store::{Location, NewFile};
use crate::tuf::editor;
use crate::tuf::metadata::{Root, TOP_LEVEL_ROLES, Targets};

use super::edit::{CommitOutcome, RoleChange, authority_of, pending_of, sign_role_with_any_keys};
use super::pending::{pending_base, pending_refusal, waiting_refusal};
use super::repository::Repository;
use super::trust::Pin;
use super::{Context, OpError, as_signers};

/// What `renew` did.
#[derive(Debug, Clone, Serialize)]
pub struct RenewOutcome {
    /// The new root version, when root was renewed.
    pub root_version: Option<u64>,
    /// The commit of renewed targets roles (and snapshot/timestamp), if any.
    pub commit: Option<CommitOutcome>,
}

/// Renew `roles` of `location`, each with its lifetime from `ctx.lifetimes`.
pub fn renew(
    ctx: &Context,
    location: &Location,
    roles: &[String],
    pin: &Pin,
) -> Result<RenewOutcome, OpError> {
    if roles.is_empty() {
        return Err(OpError::NothingGiven {
            what: "name the roles to renew: --role root, --role targets, --role <delegated role>",
        });
    }
    let root_version = if roles.iter().any(|r| r == "root") {
        Some(renew_root(ctx, location, pin)?)
    } else {
        None
    };
    let targets_roles: Vec<&String> = roles
        .iter()
        .filter(|r| !TOP_LEVEL_ROLES.contains(&r.as_str()) || *r == "targets")
        .collect();
    let resign = roles.iter().any(|r| r == "snapshot" || r == "timestamp");
    let commit = if targets_roles.is_empty() && !resign {
        None
    } else {
        let (outcome, ()) = Repository::open_for_editing(ctx, location, pin)?.edit(
            resign,
            |store, up, listing| {
                up.load_delegation_tree()
                    .map_err(|source| OpError::Update {
                        location: location.to_string(),
                        source,
                    })?;
                let mut changes: Vec<RoleChange> = Vec::new();
                for role in &targets_roles {
                    let delegator = up
                        .find_delegator(role)
                        .map_err(|source| OpError::Update {
                            location: location.to_string(),
                            source,
                        })?
                        .ok_or_else(|| OpError::NoSuchRole {
                            location: location.to_string(),
                            role: (*role).clone(),
                        })?;
                    let current = up
                        .trusted()
                        .targets(role)
                        .ok_or_else(|| OpError::NotLoaded {
                            role: (*role).clone(),
                        })?;
                    let mut next: Targets = (**current).clone();
                    next.version = editor::bump(current.version, "targets")?;
                    // A version already waiting is never silently replaced (issue
                    // #12: the signatures it collected were lost): one short of its
                    // threshold is approved first; a complete one is renewed as it
                    // stands when the keys at hand sign it to the threshold again.
                    let mut waiting = None;
                    if pending_of(listing, role).is_some() {
                        let Some((change, content)) =
                            pending_base(store, up, listing, role, ctx.now)?
                        else {
                            return Err(pending_refusal(store, up, listing, role, ctx.now)?);
                        };
                        next = content.clone();
                        next.version =
                            std::num::NonZeroU64::new(change.version).unwrap_or(next.version);
                        waiting = Some(content);
                    }
                    next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets);
                    let authority = authority_of(up, role, &delegator)?;
                    let change = sign_role_with_any_keys(ctx, role, &next, authority)?;
                    if let Some(content) = &waiting
                        && !change.is_complete()
                    {
                        return Err(waiting_refusal(up, &location.to_string(), role, content));
                    }
                    changes.push(change);
                }
                Ok((changes, vec![], ()))
            },
            |_, ()| Ok(true),
        )?;
        Some(outcome)
    };
    Ok(RenewOutcome {
        root_version,
        commit,
    })
}

/// Publish root N+1: same keys and roles, fresh expiry, signed by the current root
/// keys (which are also the new root's).
fn renew_root(ctx: &Context, location: &Location, pin: &Pin) -> Result<u64, OpError> {
    let (version, _) =
        Repository::open_for_editing(ctx, location, pin)?.with_retries(|store, up, listing| {
            let old: &Root = up.trusted().root();
            let entry = old.roles.get("root").ok_or_else(|| OpError::NotLoaded {
                role: "root".into(),
            })?;
            let mut new = old.clone();
            new.version = editor::bump(old.version, "root")?;
            new.expires = editor::expiry_in(ctx.now, ctx.lifetimes.root);
            let signers = ctx.signers_for("root", &entry.keyids, entry.threshold.get(), None)?;
            let bytes = editor::sign(&new, &as_signers(&signers))?;
            let mut files: Vec<NewFile> = Vec::with_capacity(listing.files.len() + 1);
            for f in &listing.files {
                files.push(NewFile {
                    name: f.name.clone(),
                    bytes: store.read_file(f, crate::store::artifact::MAX_FILE_BYTES)?,
                    pending: f.pending,
                });
            }
            files.push(NewFile {
                name: format!("{}.root.json", new.version),
                bytes,
                pending: false,
            });
            store.publish(&files, Some(&listing.digest))?;
            // Our own trusted state follows the chain on the next command.
            up.local_mut().clear_listing_digest();
            Ok(new.version.get())
        })?;
    Ok(version)
}
