//! `warrant delegation add | remove | list`: who may vouch for which tags.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde::Serialize;

use crate::crypto::KeyId;
use crate::store::Location;
use crate::tuf::editor;
use crate::tuf::metadata::{
    DelegatedRole, Delegations, Key, TOP_LEVEL_ROLES, Targets, Unrecognized,
};

use super::edit::{
    CommitOutcome, DelegatorBase, RoleChange, authority_of, edit_delegator, named_delegations,
    sign_role,
};
use super::repository::{Repository, TrustedUpdater};
use super::trust::Pin;
use super::{Context, OpError};

/// What `delegation add` creates.
#[derive(Debug, Clone)]
pub struct NewDelegation {
    /// The new role's name.
    pub role: String,
    /// Its keys (id, prefix or name in the key store).
    pub keys: Vec<String>,
    /// Distinct signatures required.
    pub threshold: u64,
    /// Tag patterns it may sign (default `*`: every tag).
    pub paths: Vec<String>,
    /// Stop the search at this role when its paths match.
    pub terminating: bool,
    /// The delegating role (default `targets`).
    pub from: Option<String>,
}

/// A role name: 1–64 of `[A-Za-z0-9._-]`, not a top-level role, not `.`/`..`.
fn check_role_name(role: &str) -> Result<(), OpError> {
    let ok = !role.is_empty()
        && role.len() <= 64
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && role != "."
        && role != ".."
        && !TOP_LEVEL_ROLES.contains(&role);
    if ok {
        Ok(())
    } else {
        Err(OpError::InvalidValue {
            argument: "role name",
            value: role.to_owned(),
            expected: "1 to 64 letters, digits, '.', '_' or '-', and not root/targets/snapshot/timestamp",
        })
    }
}

/// A pattern some target could match: targets are tags (`[A-Za-z0-9_][A-Za-z0-9._-]*`)
/// or digests (`sha256:<hex>`), so a pattern with other characters, a `/`, or
/// nothing in it can never match and is refused.
pub fn check_pattern(p: &str) -> Result<(), OpError> {
    let ok = !p.is_empty()
        && p.len() <= 256
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:*?[]!".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OpError::InvalidValue {
            argument: "path pattern",
            value: p.to_owned(),
            expected: "a pattern that can match a tag or digest (letters, digits, . _ - : and the globs * ? [...])",
        })
    }
}

/// Add a delegation (signed by the delegator's keys). The new role's empty first
/// version is signed by whichever of its own keys this key store holds; when that is
/// short of its threshold, the delegation and the role wait as pending until the
/// role's key holders `approve` it (no private key of theirs is needed here).
pub fn add(
    ctx: &Context,
    location: &Location,
    d: &NewDelegation,
    pin: &Pin,
) -> Result<CommitOutcome, OpError> {
    check_role_name(&d.role)?;
    let paths = if d.paths.is_empty() {
        vec!["*".to_owned()]
    } else {
        d.paths.clone()
    };
    for p in &paths {
        check_pattern(p)?;
    }
    let mut infos = Vec::new();
    for k in &d.keys {
        let info = ctx.keys.find(k)?;
        if infos
            .iter()
            .any(|i: &crate::crypto::keystore::KeyInfo| i.keyid == info.keyid)
        {
            return Err(OpError::GivenTwice {
                what: "key",
                name: k.clone(),
            });
        }
        infos.push(info);
    }
    if d.threshold == 0 || d.threshold > infos.len() as u64 {
        return Err(OpError::BadThreshold {
            role: d.role.clone(),
            keys: infos.len(),
            threshold: d.threshold,
        });
    }
    let threshold = NonZeroU64::new(d.threshold).ok_or_else(|| OpError::BadThreshold {
        role: d.role.clone(),
        keys: infos.len(),
        threshold: d.threshold,
    })?;
    let parent = d.from.clone().unwrap_or_else(|| "targets".into());
    let (outcome, ()) = Repository::open_for_editing(ctx, location, pin)?.edit(
        false,
        |store, up, listing| {
            let loc = location.to_string();
            let wrap = |source| OpError::Update {
                location: loc.clone(),
                source,
            };
            let exists = || OpError::RoleExists {
                location: loc.clone(),
                role: d.role.clone(),
            };
            if up.find_delegator(&d.role).map_err(wrap)?.is_some() {
                return Err(exists());
            }
            // A verifier's search visits at most `max_delegations` roles (targets
            // included; hash bins count as the one bin a lookup reads): a role past
            // that could be signed but never found, so it is not made.
            let max = crate::tuf::client::Limits::default().max_delegations;
            let roles = up.load_delegation_tree().map_err(wrap)?.len();
            if roles >= max {
                return Err(OpError::TooManyRoles {
                    location: loc.clone(),
                    delegated: roles - 1,
                    max,
                });
            }
            let grand =
                up.find_delegator(&parent)
                    .map_err(wrap)?
                    .ok_or_else(|| OpError::NoSuchRole {
                        location: loc.clone(),
                        role: parent.clone(),
                    })?;
            let current = up
                .trusted()
                .targets(&parent)
                .ok_or_else(|| OpError::NotLoaded {
                    role: parent.clone(),
                })?;
            let (current_version, current_expires) = (current.version, current.expires);
            let mut next: Targets = (**current).clone();
            let mut version = editor::bump(current_version, "targets")?;
            // Another new delegation of the same delegator still waiting for its
            // members' first signature: build on that version (issue #12), so both
            // roles wait together instead of the first being dropped.
            if let Some((waiting, content)) =
                super::pending::pending_base(store, up, listing, &parent, ctx.now)?
            {
                if named_delegations(&content).contains(&d.role) {
                    return Err(exists());
                }
                next = content;
                version = NonZeroU64::new(waiting.version).unwrap_or(version);
            }
            let expires_floor = next.expires.max(current_expires);
            let dels = next.delegations.get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                unrecognized: Unrecognized::new(),
            });
            if dels.succinct_roles.is_some() {
                return Err(OpError::BinnedDelegator {
                    role: parent.clone(),
                });
            }
            let mut keyids: Vec<KeyId> = Vec::new();
            for info in &infos {
                let public = info.public_key().map_err(|source| OpError::KeyMaterial {
                    keyid: info.keyid.0.clone(),
                    source,
                })?;
                dels.keys
                    .insert(info.keyid.clone(), Key::from_public(&public));
                keyids.push(info.keyid.clone());
            }
            dels.roles.get_or_insert_with(Vec::new).push(DelegatedRole {
                name: d.role.clone(),
                keyids,
                threshold,
                terminating: d.terminating,
                paths: Some(paths.clone()),
                path_hash_prefixes: None,
                unrecognized: Unrecognized::new(),
            });
            next.version = version;
            next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(expires_floor);
            let parent_change = sign_role(
                ctx,
                &parent,
                &next,
                authority_of(up, &parent, &grand)?,
                &[],
                None,
            )?;
            // The new role's first version, checked against the delegation just made.
            let first = Targets::empty(
                NonZeroU64::new(super::edit::first_version(up, &d.role)).unwrap_or(NonZeroU64::MIN),
                editor::expiry_in(ctx.now, ctx.lifetimes.targets),
            );
            // Signed by whichever of its keys are here (often none: members hold
            // their own keys); until its threshold is met, both this version and
            // the delegator's wait as pending, and each member runs `approve`.
            let role_change = sign_new_role(ctx, &d.role, &first, &next)?;
            Ok((vec![role_change, parent_change], vec![], ()))
        },
        |_, ()| Ok(true),
    )?;
    Ok(outcome)
}

fn sign_new_role(
    ctx: &Context,
    role: &str,
    first: &Targets,
    parent: &Targets,
) -> Result<RoleChange, OpError> {
    let authority = crate::tuf::trusted::delegated_authority(parent, role).map_err(|source| {
        OpError::Delegation {
            role: role.to_owned(),
            source,
        }
    })?;
    super::edit::sign_role_with_any_keys(ctx, role, first, authority)
}

/// Remove the delegation to `role` (its targets are no longer trusted).
pub fn remove(
    ctx: &Context,
    location: &Location,
    role: &str,
    pin: &Pin,
) -> Result<CommitOutcome, OpError> {
    let (outcome, ()) = Repository::open_for_editing(ctx, location, pin)?.edit(
        false,
        |store, up, listing| {
            // A role still waiting for its first signature is cancelled: its
            // pending version goes with the delegation (nothing ever published it).
            let waiting = up
                .find_delegator(role)
                .map_err(|source| OpError::Update {
                    location: location.to_string(),
                    source,
                })?
                .is_none();
            let (change, _, _) = edit_delegator(
                ctx,
                store,
                up,
                listing,
                &location.to_string(),
                role,
                DelegatorBase::Newest,
                |dels| {
                    if let Some(roles) = dels.roles.as_mut() {
                        roles.retain(|r| r.name != role);
                    }
                    Ok(())
                },
            )?;
            // The role leaves the snapshot when this version is published (see
            // `commit`): now with the publisher key, else at CI's next refresh.
            let cancelled = if waiting {
                vec![role.to_owned()]
            } else {
                vec![]
            };
            Ok((vec![change], cancelled, ()))
        },
        |_, ()| Ok(true),
    )?;
    Ok(outcome)
}

/// One delegated role as `delegation list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    /// The role.
    pub role: String,
    /// Who delegates to it.
    pub delegator: String,
    /// Its keys.
    pub keyids: Vec<KeyId>,
    /// Its threshold.
    pub threshold: u64,
    /// Tag patterns.
    pub paths: Vec<String>,
    /// Whether the search stops there.
    pub terminating: bool,
    /// Its current version.
    pub version: u64,
    /// How many targets it signs.
    pub targets: usize,
}

/// Every delegated role, in search order (verified).
pub fn list(ctx: &Context, location: &Location, pin: &Pin) -> Result<Vec<RoleView>, OpError> {
    let repo = Repository::open(ctx, location, pin)?;
    let mut up: TrustedUpdater<'_> = repo.refresh(true)?;
    let order = up
        .load_delegation_tree()
        .map_err(|source| OpError::Update {
            location: location.to_string(),
            source,
        })?;
    let mut out = Vec::new();
    for (role, parent) in order.into_iter().filter(|(r, _)| r != "targets") {
        let (Some(p), Some(t)) = (up.trusted().targets(&parent), up.trusted().targets(&role))
        else {
            continue;
        };
        let Some(entry) = p
            .delegations
            .as_ref()
            .and_then(|d| d.roles.as_ref())
            .and_then(|rs| rs.iter().find(|r| r.name == role))
        else {
            continue;
        };
        out.push(RoleView {
            role: role.clone(),
            delegator: parent,
            keyids: entry.keyids.clone(),
            threshold: entry.threshold.get(),
            paths: entry.paths.clone().unwrap_or_default(),
            terminating: entry.terminating,
            version: t.version.get(),
            targets: t.targets.len(),
        });
    }
    Ok(out)
}
