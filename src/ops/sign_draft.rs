//! The draft of a `warrant sign`: checks that the role may take the targets, the
//! "already signed" no-op, and the new role versions (into hash bins, the
//! top-level role, a re-binning, or a delegated role), built from the trusted
//! state of one publish attempt.

use std::num::NonZeroU64;

use crate::store::{Listing, Store};
use crate::tuf::delegation::path_matches;
use crate::tuf::editor;
use crate::tuf::metadata::{TargetFile, Targets};

use super::bins;
use super::edit::{RoleChange, RoleStatus, authority_of, newest_role_json, pending_of, sign_role};
use super::pending::{pending_base, pending_refusal, waiting_refusal};
use super::repository::TrustedUpdater;
use super::{Context, OpError};

/// What one `sign` puts into one role.
pub(super) struct SignDraft<'a> {
    pub ctx: &'a Context,
    pub location: String,
    pub role: String,
    pub targets: &'a [(String, TargetFile)],
    /// Sign with this key only.
    pub key: Option<&'a str>,
}

impl SignDraft<'_> {
    fn update_error(&self, source: crate::tuf::client::ClientError) -> OpError {
        OpError::Update {
            location: self.location.clone(),
            source,
        }
    }

    /// The role's delegator, once it is clear the role may be signed now: it
    /// exists, the key named (if any) is one of its, and any version of it waiting
    /// in the store is complete — this sign then stacks on that version (issue #12:
    /// two members signing one after the other, or a sign into `targets` while a
    /// new delegation waits for its members), else it is refused.
    pub fn delegator(
        &self,
        store: &dyn Store,
        up: &mut TrustedUpdater<'_>,
        listing: &Listing,
    ) -> Result<(String, Waiting), OpError> {
        let role = &self.role;
        let delegator = up
            .find_delegator(role)
            .map_err(|e| self.update_error(e))?
            .ok_or_else(|| OpError::NoSuchRole {
                location: self.location.clone(),
                role: role.clone(),
            })?;
        let mut waiting = None;
        if pending_of(listing, role).is_some() {
            match pending_base(store, up, listing, role, self.ctx.now)? {
                Some((change, content)) => waiting = Some((change.version, content)),
                None => return Err(pending_refusal(store, up, listing, role, self.ctx.now)?),
            }
        }
        // A key named on the command line must belong to the role, changed or not.
        if let Some(q) = self.key {
            let info = self.ctx.keys.find(q)?;
            let authority = authority_of(up, role, &delegator)?;
            if !authority.keyids.contains(&info.keyid) {
                return Err(OpError::KeyNotInRole {
                    role: role.clone(),
                    keyid: info.keyid.0,
                });
            }
        }
        Ok((delegator, waiting))
    }

    /// When every target is already signed with its digest (in the role, or in the
    /// hash bin the top-level role sends it to): the roles that hold them.
    pub fn already_signed(
        &self,
        up: &mut TrustedUpdater<'_>,
    ) -> Result<Option<Vec<RoleStatus>>, OpError> {
        let role = &self.role;
        let mut same = Vec::new();
        for (target, file) in self.targets {
            let found = if role == "targets" {
                up.find_target(target)
            } else {
                up.find_target_in_role(target, role)
            }
            .map_err(|e| self.update_error(e))?;
            let bin = (role == "targets")
                .then(|| up.trusted().targets("targets"))
                .flatten()
                .and_then(|t| bins::succinct(t))
                .map(|s| bins::role_for(Some(s), "targets", target));
            match found {
                Some(f)
                    if f.file.length == file.length
                        && f.file.hashes == file.hashes
                        && (&f.role == role || Some(&f.role) == bin.as_ref()) =>
                {
                    same.push(RoleStatus {
                        version: up
                            .trusted()
                            .snapshot_meta(&f.role)
                            .map_or(0, |m| m.version.get()),
                        role: f.role,
                        state: "unchanged",
                        signed: 0,
                        threshold: 0,
                        missing: Vec::new(),
                    });
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(same))
    }

    /// A delegated role signs only targets its delegation's `paths` cover.
    pub fn check_paths(&self, up: &TrustedUpdater<'_>, delegator: &str) -> Result<(), OpError> {
        let Some(paths) = delegated_paths(up, &self.role, delegator) else {
            return Ok(());
        };
        match self
            .targets
            .iter()
            .find(|e| !paths.iter().any(|p| path_matches(p, &e.0)))
        {
            Some(e) => Err(OpError::PathNotDelegated {
                role: self.role.clone(),
                target: e.0.clone(),
                paths,
            }),
            None => Ok(()),
        }
    }

    /// The new role versions, signed by the keys at hand, and the role each target
    /// went into.
    pub fn changes(
        &self,
        up: &mut TrustedUpdater<'_>,
        delegator: &str,
        waiting: &Waiting,
    ) -> Result<Edit, OpError> {
        let (ctx, role) = (self.ctx, &self.role);
        let edit = if role == "targets" {
            sign_top_level(ctx, up, self.targets, self.key, waiting)?
        } else {
            let authority = authority_of(up, role, delegator)?;
            let current = up
                .trusted()
                .targets(role)
                .ok_or_else(|| OpError::NotLoaded { role: role.clone() })?;
            let (mut next, version) = stack_on(current, waiting)?;
            for e in self.targets {
                next.targets.insert(e.0.clone(), e.1.clone());
            }
            next.version = version;
            next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(next.expires);
            let change = sign_role(ctx, role, &next, authority, &[], self.key)?;
            (vec![change], vec![], vec![role.clone(); self.targets.len()])
        };
        // Stacked on a complete version: sound only when this sign alone meets the
        // threshold again (what the others signed must not fall back to pending).
        if let Some((_, content)) = waiting
            && edit.0.iter().any(|c| &c.role == role && !c.is_complete())
        {
            return Err(waiting_refusal(up, &self.location, role, content));
        }
        Ok(edit)
    }

    /// On a store without compare-and-swap, after a concurrent publish: does every
    /// role we wrote still list our targets?
    pub fn survived(&self, store: &dyn Store, roles: &[String]) -> Result<bool, OpError> {
        for r in roles.iter().collect::<std::collections::BTreeSet<_>>() {
            let lists = self
                .targets
                .iter()
                .zip(roles)
                .filter(|(_, er)| *er == r)
                .map(|(e, _)| (e.0.as_str(), &e.1))
                .collect::<Vec<_>>();
            if !role_lists_targets(store, r, &lists)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The complete pending version of the role a sign stacks on: its version number
/// and content (it is replaced, same number).
pub(super) type Waiting = Option<(u64, Targets)>;

/// The version a new change starts from, and the version number it gets: the
/// waiting version (replaced), else the trusted `current` bumped.
fn stack_on(current: &Targets, waiting: &Waiting) -> Result<(Targets, NonZeroU64), OpError> {
    Ok(match waiting {
        Some((v, t)) => (
            t.clone(),
            NonZeroU64::new(*v).ok_or(editor::EditorError::Overflow("targets"))?,
        ),
        None => (current.clone(), editor::bump(current.version, "targets")?),
    })
}

/// What a sign's edit returns: the role changes, roles removed (none), and the role
/// each entry went into.
type Edit = (Vec<RoleChange>, Vec<String>, Vec<String>);

/// The changes that put `entries` into the top-level targets: into their hash bins
/// when the repository is binned (one new version per touched bin, the top-level
/// role unchanged); into the top-level role when flat; or, when the bins policy
/// says this sign takes the repository past its threshold, a re-binning (see
/// [`super::bins`]). Also the role each entry went into.
fn sign_top_level(
    ctx: &Context,
    up: &mut TrustedUpdater<'_>,
    entries: &[(String, TargetFile)],
    only: Option<&str>,
    waiting: &Waiting,
) -> Result<Edit, OpError> {
    let location = up
        .remote()
        .listing()
        .map_or_else(String::new, |l| l.digest.to_string());
    let missing = || OpError::NoRepository {
        location: location.clone(),
    };
    let top = (**up.trusted().targets("targets").ok_or_else(missing)?).clone();
    let expires = |old: chrono::DateTime<chrono::Utc>| {
        editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(old)
    };
    if let (Some(_), Some((_, content))) = (bins::succinct(&top), waiting) {
        return Err(waiting_refusal(up, &location, "targets", content));
    }
    if let Some(s) = bins::succinct(&top).cloned() {
        let roles: Vec<String> = entries
            .iter()
            .map(|e| bins::role_for(Some(&s), "targets", &e.0))
            .collect();
        let mut changes = Vec::new();
        for bin in roles.iter().collect::<std::collections::BTreeSet<_>>() {
            let Some(first) = entries.iter().zip(&roles).find(|(_, r)| *r == bin) else {
                continue;
            };
            // The search for a target loads (and verifies) its bin.
            up.find_target(&first.0.0)
                .map_err(|source| OpError::Update {
                    location: location.clone(),
                    source,
                })?;
            let current = up.trusted().targets(bin).ok_or_else(missing)?;
            let mut next = (**current).clone();
            for (e, _) in entries.iter().zip(&roles).filter(|(_, r)| *r == bin) {
                next.targets.insert(e.0.clone(), e.1.clone());
            }
            next.version = editor::bump(current.version, "targets")?;
            next.expires = expires(current.expires);
            let authority = authority_of(up, bin, "targets")?;
            changes.push(sign_role(ctx, bin, &next, authority, &[], only)?);
        }
        return Ok((changes, vec![], roles));
    }
    let (top, version) = stack_on(&top, waiting)?;
    let mut next = top.clone();
    for e in entries {
        next.targets.insert(e.0.clone(), e.1.clone());
    }
    next.version = version;
    next.expires = expires(top.expires);
    let authority = authority_of(up, "targets", "root")?;
    let Some(bits) = bins::BinsPolicy::of(&top).bits_for(&top, next.targets.len()) else {
        let change = sign_role(ctx, "targets", &next, authority, &[], only)?;
        return Ok((vec![change], vec![], vec!["targets".into(); entries.len()]));
    };
    // Re-binning: the new top-level version and the first version of every bin,
    // all in this one publish.
    let (new_top, bins) = bins::rebin(up.trusted().root(), &next, bits, NonZeroU64::MIN)?;
    let mut changes = vec![sign_role(ctx, "targets", &new_top, authority, &[], only)?];
    for (name, t) in &bins {
        let auth = crate::tuf::trusted::delegated_authority(&new_top, name).map_err(|source| {
            OpError::Delegation {
                role: name.clone(),
                source,
            }
        })?;
        changes.push(sign_role(ctx, name, t, auth, &[], only)?);
    }
    let s = bins::succinct(&new_top);
    let roles = entries
        .iter()
        .map(|e| bins::role_for(s, "targets", &e.0))
        .collect();
    Ok((changes, vec![], roles))
}

/// The `paths` a delegated role is limited to (`None` for top-level targets, hash
/// prefixes or bins).
fn delegated_paths(up: &TrustedUpdater<'_>, role: &str, delegator: &str) -> Option<Vec<String>> {
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
    role_lists_targets(store, role, &[(target, file)])
}

/// [`role_lists_target`] for several targets at once (one read of the role).
pub fn role_lists_targets(
    store: &dyn Store,
    role: &str,
    targets: &[(&str, &TargetFile)],
) -> Result<bool, OpError> {
    let Some(value) = newest_role_json(store, role)? else {
        return Ok(false);
    };
    Ok(targets.iter().all(|(target, file)| {
        let ours = serde_json::to_value(file).unwrap_or_default();
        let theirs = &value["signed"]["targets"][*target];
        theirs["hashes"] == ours["hashes"] && theirs["length"] == ours["length"]
    }))
}
