//! Pending versions: role versions waiting for signatures in the store (DESIGN
//! §3), which of them are now complete, and which complete changes may enter the
//! snapshot together.

use crate::store::{Listing, Store, StoredFile};
use crate::tuf::metadata::Targets;
use crate::tuf::trusted::delegated_authority;
use crate::tuf::verify::{Authority, Untrusted};

use super::OpError;
use super::edit::{
    RoleChange, authority_of, content_of, named_delegations, pending_of, untrusted_result,
    version_of, waiting_delegator,
};
use super::repository::TrustedUpdater;

/// Pending files in `listing` that are now complete and the next version of their
/// role: `warrant refresh` (or any commit with the publisher key) promotes them.
pub fn ready_pending(
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    changed: &[RoleChange],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<RoleChange>, OpError> {
    // Pending files as (file, role, version).
    let pending: Vec<(&StoredFile, String, u64)> = listing
        .files
        .iter()
        .filter(|f| f.pending)
        .filter_map(|f| {
            let (v, role) = f.name.strip_suffix(".json")?.split_once('.')?;
            Some((f, role.to_owned(), v.parse().ok()?))
        })
        .collect();
    let mut out = Vec::new();
    for (f, role, version) in &pending {
        if changed.iter().any(|c| &c.role == role) {
            continue;
        }
        let current = up.trusted().snapshot_meta(role).map(|m| m.version.get());
        if current.is_some_and(|c| c + 1 != *version) {
            continue;
        }
        // The delegator a verifier's search would use (not just any role that
        // happens to delegate the same name).
        let Ok(Some(delegator)) = up.find_delegator(role) else {
            continue;
        };
        let Ok(authority) = authority_of(up, role, &delegator) else {
            continue;
        };
        out.extend(complete_pending(store, f, role, *version, authority, now)?);
    }
    // A role whose keys a waiting delegator version rotates (issue #12): its next
    // version counts against the new entry, published with it.
    let mut waiting: Vec<RoleChange> = changed.to_vec();
    waiting.extend(out.iter().cloned());
    for (f, role, version) in &pending {
        let Some(parent) = rotating_delegator(up, &waiting, role) else {
            continue;
        };
        if changed.iter().any(|c| &c.role == role)
            || up
                .trusted()
                .snapshot_meta(role)
                .is_some_and(|m| m.version.get() + 1 != *version)
        {
            continue;
        }
        out.retain(|c| &c.role != role);
        let Ok(authority) = delegated_authority(&parent, role) else {
            continue;
        };
        out.extend(complete_pending(store, f, role, *version, authority, now)?);
    }
    // New roles: delegated only by a complete delegator version that is waiting
    // (in this commit's changes or among the ready pending files).
    let mut waiting: Vec<RoleChange> = changed.to_vec();
    waiting.extend(out.iter().cloned());
    for (f, role, version) in &pending {
        if waiting.iter().any(|c| &c.role == role)
            || !matches!(up.find_delegator(role), Ok(None))
            || *version != first_version(up, role)
        {
            continue;
        }
        let Some((_, parent)) = waiting_delegator(&waiting, role) else {
            continue;
        };
        let Ok(authority) = delegated_authority(&parent, role) else {
            continue;
        };
        out.extend(complete_pending(store, f, role, *version, authority, now)?);
    }
    Ok(out)
}

/// The pending file `f` of `role` as a change, when it meets `authority`'s
/// threshold. Its content must be what the file name says: a targets role of exactly
/// that version, not expired (an old, validly signed version re-uploaded as the next
/// one would otherwise break every verify that reaches the role).
fn complete_pending(
    store: &dyn Store,
    f: &StoredFile,
    role: &str,
    version: u64,
    authority: Authority<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<RoleChange>, OpError> {
    let bytes = store.read_file(f, crate::tuf::client::Limits::default().targets)?;
    let Ok(untrusted) = Untrusted::parse(role, bytes.clone()) else {
        return Ok(None);
    };
    let Ok(content) = untrusted.parse_unverified::<Targets>() else {
        return Ok(None);
    };
    if content.version.get() != version || content.expires <= now {
        return Ok(None);
    }
    let signatures = untrusted_result(&untrusted, authority);
    Ok(signatures.is_met().then(|| RoleChange {
        role: role.to_owned(),
        version,
        bytes,
        signatures,
    }))
}

/// The version of `delegator` that an edit of its delegations builds on (issue #12):
/// its complete pending version when one waits to be published (a `delegation add`
/// whose new role still waits for its members' first signature) — the edit replaces
/// that version and keeps what it delegates — or `None`: the trusted version. A
/// pending version at the next version that is still short of its own threshold is
/// refused (approve it first); a stale one (not the next version) is superseded.
pub(super) fn pending_base(
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    delegator: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<(RoleChange, Targets)>, OpError> {
    let Some(file) = pending_of(listing, delegator) else {
        return Ok(None);
    };
    let next = up
        .trusted()
        .targets(delegator)
        .map(|t| t.version.get().saturating_add(1));
    if next.is_none() || next != version_of(&file.name, delegator) {
        return Ok(None);
    }
    let ready = ready_pending(store, up, listing, &[], now)?;
    let waiting = ready
        .into_iter()
        .find(|c| c.role == delegator)
        .and_then(|c| content_of(&c).map(|t| (c, t)));
    match waiting {
        Some(w) => Ok(Some(w)),
        None => Err(OpError::PendingVersion {
            role: delegator.to_owned(),
            location: store.location().to_string(),
            ready: false,
            waiting_for: vec![],
        }),
    }
}

/// The refusal of a change to `role` that cannot build on its complete pending
/// version `waiting`: it names the new roles that version waits for, if any (their
/// members approve), else the `refresh` that publishes it.
pub(super) fn waiting_refusal(
    up: &mut TrustedUpdater<'_>,
    location: &str,
    role: &str,
    waiting: &Targets,
) -> OpError {
    let waiting_for = named_delegations(waiting)
        .into_iter()
        .filter(|n| matches!(up.find_delegator(n), Ok(None)))
        .collect();
    OpError::PendingVersion {
        role: role.to_owned(),
        location: location.to_owned(),
        ready: true,
        waiting_for,
    }
}

/// The refusal of a change to `role` while a version of it waits in the store
/// (and the change does not build on it): approve it, or wait for it.
pub(super) fn pending_refusal(
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    role: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<OpError, OpError> {
    let location = store.location().to_string();
    let ready = ready_pending(store, up, listing, &[], now)?
        .into_iter()
        .find(|c| c.role == role)
        .and_then(|c| content_of(&c));
    Ok(match ready {
        Some(t) => waiting_refusal(up, &location, role, &t),
        None => OpError::PendingVersion {
            role: role.to_owned(),
            location,
            ready: false,
            waiting_for: vec![],
        },
    })
}

/// The keys and threshold `t` delegates `role` with.
fn entry_of<'t>(t: &'t Targets, role: &str) -> Option<&'t crate::tuf::metadata::DelegatedRole> {
    t.delegations
        .as_ref()?
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.name == role)
}

/// Does the new delegator version `new` rotate the keys of `role`, which the
/// trusted `old` delegates to — raise its threshold, or remove keys *and* add
/// others? Then the role's published version may no longer meet the new entry, so
/// the delegator version waits until the role is re-signed to it (issue #12). Only
/// removing keys is a revocation: it takes effect at once, and what only the
/// removed keys signed is untrusted until the others re-sign it.
fn rotates(old: &Targets, new: &Targets, role: &str) -> bool {
    let (Some(o), Some(n)) = (entry_of(old, role), entry_of(new, role)) else {
        return false;
    };
    let removed = o.keyids.iter().any(|k| !n.keyids.contains(k));
    let added = n.keyids.iter().any(|k| !o.keyids.contains(k));
    n.threshold > o.threshold || (removed && added)
}

/// The waiting (complete) version of `role`'s trusted delegator among `waiting`,
/// when it rotates the role's keys: the entry the role's next version is checked
/// against.
pub(super) fn rotating_delegator(
    up: &mut TrustedUpdater<'_>,
    waiting: &[RoleChange],
    role: &str,
) -> Option<Targets> {
    let delegator = up.find_delegator(role).ok()??;
    let old = up.trusted().targets(&delegator)?;
    let change = waiting
        .iter()
        .find(|c| c.role == delegator && c.is_complete())?;
    let new = content_of(change)?;
    rotates(old, &new, role).then_some(new)
}

/// The version a role that the trusted tree does not delegate to starts at: 1, or
/// past the version the snapshot still lists for it (a role removed and added
/// again must not roll back in a verifier's eyes).
pub fn first_version(up: &TrustedUpdater<'_>, role: &str) -> u64 {
    up.trusted()
        .snapshot_meta(role)
        .map_or(1, |m| m.version.get().saturating_add(1))
}

/// The complete changes that may enter the snapshot together: a delegator version
/// that delegates to a role the snapshot does not list yet waits until that role's
/// first version is complete too, and a new role waits for its delegator — so no
/// snapshot ever names a delegation whose role it lacks (issue #12: that state made
/// every verify through the role fail while nothing could repair it).
pub(super) fn promotable(up: &mut TrustedUpdater<'_>, changes: &[RoleChange]) -> Vec<String> {
    let mut set: Vec<(String, Vec<String>)> = changes
        .iter()
        .filter(|c| c.is_complete())
        .map(|c| {
            let delegates = content_of(c)
                .map(|t| named_delegations(&t))
                .unwrap_or_default();
            (c.role.clone(), delegates)
        })
        .collect();
    let orphan: Vec<String> = set
        .iter()
        .filter(|(role, _)| matches!(up.find_delegator(role), Ok(None)))
        .map(|(role, _)| role.clone())
        .collect();
    // Delegated roles the trusted tree has, unless the delegator's new version
    // rotates their keys: then their re-signed version must come along.
    let mut delegated: Vec<(String, String)> = Vec::new();
    for (role, delegates) in &set {
        let new = changes
            .iter()
            .find(|c| &c.role == role)
            .and_then(content_of);
        for d in delegates {
            if !matches!(up.find_delegator(d), Ok(Some(_))) {
                continue;
            }
            let rotated = match (up.trusted().targets(role), &new) {
                (Some(old), Some(new)) => rotates(old, new, d),
                _ => false,
            };
            if !rotated {
                delegated.push((role.clone(), d.clone()));
            }
        }
    }
    loop {
        let roles: Vec<String> = set.iter().map(|(r, _)| r.clone()).collect();
        let before = set.len();
        set.retain(|(role, delegates)| {
            let children_ready = delegates
                .iter()
                .all(|d| delegated.iter().any(|(r, x)| r == role && x == d) || roles.contains(d));
            let parent_ready = !orphan.contains(role) || set_delegates(&roles, role, changes);
            children_ready && parent_ready
        });
        if set.len() == before {
            break;
        }
    }
    set.into_iter().map(|(r, _)| r).collect()
}

/// Does some change among `roles` delegate to `role`, by name or as one of its
/// hash bins (a re-binning publishes the new top-level version with its bins)?
fn set_delegates(roles: &[String], role: &str, changes: &[RoleChange]) -> bool {
    changes
        .iter()
        .filter(|c| c.is_complete() && roles.contains(&c.role))
        .filter_map(content_of)
        .any(|t| {
            named_delegations(&t).iter().any(|n| n == role)
                || super::bins::succinct(&t)
                    .is_some_and(|s| crate::tuf::delegation::is_bin_name(s, role))
        })
}
