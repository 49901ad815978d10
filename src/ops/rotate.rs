//! `warrant key rotate` and `warrant key revoke`: change who may sign a role.
//!
//! A top-level role (root, targets, snapshot, timestamp) changes in a new root
//! version `N+1.root.json`, signed by a threshold of the old root keys *and* of the
//! new ones, so verifiers that cached any older root follow the chain. The metadata
//! the new keys now own is re-signed in the same publish (targets with the new
//! targets keys; snapshot and timestamp always, with the new publisher keys), so
//! nothing signed only by a removed key stays trusted. A delegated role changes in
//! its delegator's metadata, and is re-signed by its new keys.

use std::collections::BTreeSet;
use std::num::NonZeroU64;

use serde::Serialize;

use crate::crypto::{KeyId, KeySigner, Signer as _};
use crate::digest::Sha256Digest;
use crate::store::{Location, NewFile};
use crate::tuf::editor;
use crate::tuf::metadata::{Key, Root, TOP_LEVEL_ROLES, Targets};
use crate::tuf::trusted::delegated_authority;
use crate::tuf::verify::short_id;

use super::edit::{
    CommitOutcome, DelegatorBase, authority_of, edit_delegator, sign_role_with_any_keys,
};
use super::repository::Repository;
use super::trust::Pin;
use super::{Context, OpError, as_signers};

/// What to change about a role's keys.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    /// The role.
    pub role: String,
    /// Keys to remove (id, 8+ digit prefix, or key-store name).
    pub remove: Vec<String>,
    /// Keys to add (from the key store; public keys suffice).
    pub add: Vec<String>,
    /// The new threshold (default: unchanged).
    pub threshold: Option<u64>,
    /// A revocation (`key revoke`): takes effect at once, built on the trusted
    /// delegator even when a version of it waits to be published.
    pub revoking: bool,
}

/// What a rotation published.
#[derive(Debug, Clone, Serialize)]
pub struct RotateOutcome {
    /// The role changed.
    pub role: String,
    /// Its key ids now.
    pub keyids: Vec<KeyId>,
    /// Its threshold now.
    pub threshold: u64,
    /// The new root version (top-level roles), if any.
    pub root_version: Option<u64>,
    /// The delegator commit (delegated roles), if any.
    pub commit: Option<CommitOutcome>,
    /// The new `warrant.tuf` digest.
    pub published: Option<Sha256Digest>,
}

/// Resolve a key given by the user against the ids of a role (prefix) or the store.
fn resolve_existing(
    ctx: &Context,
    q: &str,
    keyids: &[KeyId],
    role: &str,
) -> Result<KeyId, OpError> {
    if let Some(k) = keyids
        .iter()
        .find(|k| k.0 == q || (q.len() >= 8 && k.0.starts_with(q)))
    {
        return Ok(k.clone());
    }
    let info = ctx.keys.find(q)?;
    if keyids.contains(&info.keyid) {
        Ok(info.keyid)
    } else {
        Err(OpError::KeyNotInRole {
            role: role.to_owned(),
            keyid: q.to_owned(),
        })
    }
}

/// A role's key ids and threshold after a rotation, with the key objects to add.
type KeyChange = (Vec<KeyId>, NonZeroU64, Vec<(KeyId, Key)>);

/// New key ids and threshold after `rot`, and the key objects to add.
fn apply(
    ctx: &Context,
    rot: &Rotation,
    keyids: &[KeyId],
    threshold: NonZeroU64,
) -> Result<KeyChange, OpError> {
    let mut ids: Vec<KeyId> = keyids.to_vec();
    for q in &rot.remove {
        let id = resolve_existing(ctx, q, keyids, &rot.role)?;
        ids.retain(|k| k != &id);
    }
    let mut added = Vec::new();
    for q in &rot.add {
        let info = ctx.keys.find(q)?;
        if ids.contains(&info.keyid) {
            return Err(OpError::KeyAlreadyInRole {
                role: rot.role.clone(),
                keyid: short_id(&info.keyid.0).to_owned(),
            });
        }
        let entry = ctx.key_entry(&info)?;
        ids.push(info.keyid.clone());
        added.push((info.keyid, entry));
    }
    let t = rot.threshold.unwrap_or(threshold.get());
    if t == 0 || t > ids.len() as u64 {
        return Err(OpError::BadThreshold {
            role: rot.role.clone(),
            keys: ids.len(),
            threshold: t,
        });
    }
    let t = NonZeroU64::new(t).ok_or_else(|| OpError::BadThreshold {
        role: rot.role.clone(),
        keys: ids.len(),
        threshold: t,
    })?;
    Ok((ids, t, added))
}

/// A top-level role of a root (verified roots have all four; a clear error otherwise).
fn role_entry<'a>(
    root: &'a Root,
    role: &str,
) -> Result<&'a crate::tuf::metadata::RoleKeys, OpError> {
    root.roles.get(role).ok_or_else(|| OpError::NoSuchRole {
        location: "root".into(),
        role: role.to_owned(),
    })
}

/// Keys at hand for `ids`, at least `threshold` of them.
fn keys_for(
    ctx: &Context,
    role: &str,
    ids: &[KeyId],
    threshold: NonZeroU64,
) -> Result<Vec<KeySigner>, OpError> {
    ctx.signers_for(role, ids, threshold.get(), None)
}

/// Rotate keys of `rot.role`.
pub fn rotate(
    ctx: &Context,
    location: &Location,
    rot: &Rotation,
    pin: &Pin,
) -> Result<RotateOutcome, OpError> {
    if TOP_LEVEL_ROLES.contains(&rot.role.as_str()) {
        rotate_top_level(ctx, location, rot, pin)
    } else {
        rotate_delegated(ctx, location, rot, pin)
    }
}

fn rotate_top_level(
    ctx: &Context,
    location: &Location,
    rot: &Rotation,
    pin: &Pin,
) -> Result<RotateOutcome, OpError> {
    let (outcome, _) =
        Repository::open_for_editing(ctx, location, pin)?.with_retries(|store, up, listing| {
            let trusted = up.trusted();
            let (new, root_bytes, ids, threshold) = next_root(ctx, trusted.root(), rot)?;
            // Re-sign what the new keys own, so nothing rests on a removed key.
            let mut files = resign_for_root(ctx, trusted, &new, rot).ok_or_else(|| {
                OpError::NoRepository {
                    location: location.to_string(),
                }
            })??;
            // In the order earlier versions wrote them: [targets,] root, snapshot,
            // timestamp, then what stays.
            let at = files.len().saturating_sub(2);
            files.insert(
                at,
                NewFile {
                    name: format!("{}.root.json", new.version),
                    bytes: root_bytes,
                    pending: false,
                },
            );
            let replace_targets = rot.role == "targets";
            for f in &listing.files {
                let drop = f.name == "timestamp.json"
                    || (!f.pending && super::edit::version_of(&f.name, "snapshot").is_some())
                    || (replace_targets
                        && !f.pending
                        && super::edit::version_of(&f.name, "targets").is_some());
                if !drop {
                    files.push(NewFile {
                        name: f.name.clone(),
                        bytes: store.read_file(f, crate::store::artifact::MAX_FILE_BYTES)?,
                        pending: f.pending,
                    });
                }
            }
            let root_version = new.version.get();
            let published = store.publish(&files, Some(&listing.digest))?;
            // Our own trusted state follows the chain on the next command.
            up.local_mut().clear_listing_digest();
            Ok(RotateOutcome {
                role: rot.role.clone(),
                keyids: ids,
                threshold: threshold.get(),
                root_version: Some(root_version),
                commit: None,
                published: Some(published),
            })
        })?;
    Ok(outcome)
}

/// The next root after `rot`, signed by the old root's threshold and the new
/// root's: the root, its bytes, and the rotated role's new key ids and threshold.
fn next_root(
    ctx: &Context,
    old: &Root,
    rot: &Rotation,
) -> Result<(Root, Vec<u8>, Vec<KeyId>, NonZeroU64), OpError> {
    let entry = old
        .roles
        .get(&rot.role)
        .ok_or_else(|| OpError::NoSuchRole {
            location: "root".into(),
            role: rot.role.clone(),
        })?;
    let (ids, threshold, added) = apply(ctx, rot, &entry.keyids, entry.threshold)?;
    let mut new = old.clone();
    new.version = editor::bump(old.version, "root")?;
    new.expires = editor::expiry_in(ctx.now, ctx.lifetimes.root);
    for (id, key) in added {
        new.keys.insert(id, key);
    }
    if let Some(e) = new.roles.get_mut(&rot.role) {
        e.keyids = ids.clone();
        e.threshold = threshold;
    }
    let used: BTreeSet<KeyId> = new
        .roles
        .values()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    new.keys.retain(|k, _| used.contains(k));
    let old_root = role_entry(old, "root")?;
    let new_root = role_entry(&new, "root")?;
    let mut signers = keys_for(ctx, "root (old keys)", &old_root.keyids, old_root.threshold)?;
    for k in keys_for(ctx, "root (new keys)", &new_root.keyids, new_root.threshold)? {
        if !signers
            .iter()
            .any(|s| s.public_key().key_id() == k.public_key().key_id())
        {
            signers.push(k);
        }
    }
    let root_bytes = editor::sign(&new, &as_signers(&signers))?;
    Ok((new, root_bytes, ids, threshold))
}

/// Targets (when its keys rotated), snapshot and timestamp re-signed by the keys
/// of `new`; `None` when the trusted state lacks one of them.
fn resign_for_root(
    ctx: &Context,
    trusted: &crate::tuf::trusted::TrustedSet,
    new: &Root,
    rot: &Rotation,
) -> Option<Result<Vec<NewFile>, OpError>> {
    let (targets, snapshot, timestamp) = (
        trusted.targets("targets")?,
        trusted.snapshot()?,
        trusted.timestamp()?,
    );
    let signers = |role: &str| -> Result<Vec<KeySigner>, OpError> {
        let e = role_entry(new, role)?;
        keys_for(ctx, role, &e.keyids, e.threshold)
    };
    let result = (|| {
        let mut files: Vec<NewFile> = Vec::new();
        let mut meta = snapshot.meta.clone();
        if rot.role == "targets" {
            let mut t: Targets = (**targets).clone();
            t.version = editor::bump(targets.version, "targets")?;
            let bytes = editor::sign(&t, &as_signers(&signers("targets")?))?;
            meta.insert("targets.json".into(), editor::meta_for(t.version, &bytes));
            files.push(NewFile {
                name: format!("{}.targets.json", t.version),
                bytes,
                pending: false,
            });
        }
        let snap_version = editor::bump(snapshot.version, "snapshot")?;
        let snap = editor::new_snapshot(
            snap_version,
            editor::expiry_in(ctx.now, ctx.lifetimes.snapshot),
            meta,
        );
        let snap_bytes = editor::sign(&snap, &as_signers(&signers("snapshot")?))?;
        let ts = editor::new_timestamp(
            editor::bump(timestamp.version, "timestamp")?,
            editor::expiry_in(ctx.now, ctx.lifetimes.timestamp),
            snap_version,
            &snap_bytes,
        );
        let ts_bytes = editor::sign(&ts, &as_signers(&signers("timestamp")?))?;
        files.push(NewFile {
            name: format!("{snap_version}.snapshot.json"),
            bytes: snap_bytes,
            pending: false,
        });
        files.push(NewFile {
            name: "timestamp.json".into(),
            bytes: ts_bytes,
            pending: false,
        });
        Ok(files)
    })();
    Some(result)
}

fn rotate_delegated(
    ctx: &Context,
    location: &Location,
    rot: &Rotation,
    pin: &Pin,
) -> Result<RotateOutcome, OpError> {
    let mut result: Option<(Vec<KeyId>, u64)> = None;
    let (commit, ()) = Repository::open_for_editing(ctx, location, pin)?.edit(
        false,
        |store, up, listing| {
            let loc = location.to_string();
            let mut new_keys = None;
            let base = if rot.revoking {
                DelegatorBase::Trusted
            } else {
                DelegatorBase::Newest
            };
            let (parent_change, parent, next) =
                edit_delegator(ctx, store, up, listing, &loc, &rot.role, base, |dels| {
                    let entry = dels
                        .roles
                        .iter_mut()
                        .flatten()
                        .find(|r| r.name == rot.role)
                        .ok_or_else(|| OpError::NoSuchRole {
                            location: loc.clone(),
                            role: rot.role.clone(),
                        })?;
                    let (ids, threshold, added) = apply(ctx, rot, &entry.keyids, entry.threshold)?;
                    entry.keyids = ids.clone();
                    entry.threshold = threshold;
                    for (id, key) in added {
                        dels.keys.insert(id, key);
                    }
                    new_keys = Some((ids, threshold));
                    Ok(())
                })?;
            let (ids, threshold) = new_keys.ok_or(OpError::Internal {
                what: "the delegation was not rotated",
            })?;
            // The role itself, re-signed by its new keys (against the new delegation).
            let role_md = up
                .trusted()
                .targets(&rot.role)
                .ok_or_else(|| OpError::NotLoaded {
                    role: rot.role.clone(),
                })?;
            let mut resigned: Targets = (**role_md).clone();
            resigned.version = editor::bump(role_md.version, "targets")?;
            let authority =
                delegated_authority(&next, &rot.role).map_err(|source| OpError::Delegation {
                    role: rot.role.clone(),
                    source,
                })?;
            // Re-signed by whichever new keys are at hand: revoking needs only the
            // delegator's key. Short of the threshold the role waits as pending,
            // and what only the removed key vouched for is untrusted until the
            // remaining holders `approve` it after review.
            let role_change = sign_role_with_any_keys(ctx, &rot.role, &resigned, authority)?;
            result = Some((ids, threshold.get()));
            // A revocation is built on the trusted delegator: a new delegation still
            // waiting in its pending version is cancelled with its first version
            // (left behind, it broke `pending`); the admin adds it again.
            let mut cancelled = Vec::new();
            if rot.revoking
                && let Some((_, waiting)) =
                    super::pending::pending_base(store, up, listing, &parent, ctx.now)
                        .ok()
                        .flatten()
            {
                let kept = super::edit::named_delegations(&next);
                for r in super::edit::named_delegations(&waiting) {
                    if !kept.contains(&r) && matches!(up.find_delegator(&r), Ok(None)) {
                        cancelled.push(r);
                    }
                }
            }
            Ok((vec![role_change, parent_change], cancelled, ()))
        },
        |_, ()| Ok(true),
    )?;
    let (keyids, threshold) = result.ok_or(OpError::Internal {
        what: "nothing was rotated",
    })?;
    let published = Some(commit.published);
    Ok(RotateOutcome {
        role: rot.role.clone(),
        keyids,
        threshold,
        root_version: None,
        commit: Some(commit),
        published,
    })
}

/// What `revoke` did.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeOutcome {
    /// The key.
    pub keyid: KeyId,
    /// Each role it was removed from.
    pub rotations: Vec<RotateOutcome>,
}

/// Remove `key` from every role that lists it (top-level roles in one root
/// rotation each, delegated roles through their delegators), re-signing what it
/// signed with the remaining keys.
pub fn revoke(
    ctx: &Context,
    location: &Location,
    key: &str,
    pin: &Pin,
) -> Result<RevokeOutcome, OpError> {
    let repo = Repository::open_for_editing(ctx, location, pin)?;
    let mut up = repo.refresh_for_editing()?;
    let order = up
        .load_delegation_tree()
        .map_err(|source| OpError::Update {
            location: location.to_string(),
            source,
        })?;
    let root = up.trusted().root();
    let keyid = root
        .keys
        .keys()
        .find(|k| k.0 == key || (key.len() >= 8 && k.0.starts_with(key)))
        .cloned()
        .or_else(|| ctx.keys.find(key).ok().map(|i| i.keyid));
    let keyid = keyid.ok_or_else(|| OpError::NoSuchKey {
        key: key.to_owned(),
        location: location.to_string(),
    })?;
    let mut roles: Vec<String> = TOP_LEVEL_ROLES
        .iter()
        .filter(|r| {
            root.roles
                .get(**r)
                .is_some_and(|e| e.keyids.contains(&keyid))
        })
        .map(|r| (*r).to_owned())
        .collect();
    for (role, parent) in &order {
        if let Some(p) = up.trusted().targets(parent)
            && authority_of(&up, role, parent).is_ok_and(|a| a.keyids.contains(&keyid))
            && p.delegations.is_some()
        {
            roles.push(role.clone());
        }
    }
    drop(up);
    if roles.is_empty() {
        return Err(OpError::KeySignsNothing {
            keyid: short_id(&keyid.0).to_owned(),
            location: location.to_string(),
        });
    }
    let mut rotations = Vec::new();
    for role in roles {
        let rot = Rotation {
            role,
            remove: vec![keyid.0.clone()],
            add: vec![],
            threshold: None,
            revoking: true,
        };
        rotations.push(rotate(ctx, location, &rot, pin)?);
    }
    Ok(RevokeOutcome { keyid, rotations })
}
