//! `warrant pending` and `warrant approve`: review and co-sign a role version that
//! waits for signatures; `warrant refresh`: re-sign snapshot and timestamp, promoting
//! every fully signed pending version.

use serde::Serialize;

use crate::crypto::{KeyId, Signer as _};
use crate::digest::Sha256Digest;
use crate::store::{Listing, Location, Store};
use crate::tuf::metadata::{Signature, Targets, Unrecognized};
use crate::tuf::verify::Untrusted;

use super::edit::{
    CommitOutcome, RoleChange, authority_of, first_version, merge_signatures, newest_role_json,
    own, pending_of, ready_pending, untrusted_result, version_of, waiting_delegator,
};
use super::repository::{Repository, TrustedUpdater};
use super::trust::Pin;
use super::{Context, OpError};

/// A change of one target between the trusted and the pending version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetChange {
    /// The target (tag or digest).
    pub target: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The digest before (removed, changed).
    pub before: Option<String>,
    /// The digest after (added, changed).
    pub after: Option<String>,
}

/// A pending role version.
#[derive(Debug, Clone, Serialize)]
pub struct PendingView {
    /// The role.
    pub role: String,
    /// The pending version.
    pub version: u64,
    /// Valid signatures so far.
    pub signed: Vec<KeyId>,
    /// Keys that could still sign.
    pub missing: Vec<KeyId>,
    /// Required.
    pub threshold: u64,
    /// What it changes: targets, and any delegation or other field.
    pub changes: Vec<TargetChange>,
    /// sha256 of the canonical `signed` content reviewed (what every signature covers).
    pub content_sha256: String,
}

fn digest_of(t: &crate::tuf::metadata::TargetFile) -> String {
    t.sha256()
        .map_or_else(|| "(no sha256)".into(), |d| d.to_string())
}

/// Targets added, removed or changed from `old` to `new`.
pub fn diff(old: &Targets, new: &Targets) -> Vec<TargetChange> {
    let mut out = Vec::new();
    for (name, f) in &new.targets {
        match old.targets.get(name) {
            None => out.push(TargetChange {
                target: name.clone(),
                change: "added",
                before: None,
                after: Some(digest_of(f)),
            }),
            Some(o) if o != f => out.push(TargetChange {
                target: name.clone(),
                change: "changed",
                before: Some(digest_of(o)),
                after: Some(digest_of(f)),
            }),
            Some(_) => {}
        }
    }
    for (name, o) in &old.targets {
        if !new.targets.contains_key(name) {
            out.push(TargetChange {
                target: name.clone(),
                change: "removed",
                before: Some(digest_of(o)),
                after: None,
            });
        }
    }
    out
}

/// Summaries of a role's delegations, for review.
fn delegation_summary(t: &Targets) -> Vec<String> {
    let Some(d) = &t.delegations else {
        return Vec::new();
    };
    let mut out: Vec<String> = d
        .roles
        .iter()
        .flatten()
        .map(|r| {
            let ids: Vec<&str> = r
                .keyids
                .iter()
                .map(|k| crate::tuf::verify::short_id(&k.0))
                .collect();
            format!(
                "{} ({} of {}; paths {:?}{})",
                r.name,
                r.threshold,
                ids.join(","),
                r.paths.clone().unwrap_or_default(),
                if r.terminating { "; terminating" } else { "" }
            )
        })
        .collect();
    if let Some(s) = &d.succinct_roles {
        out.push(format!(
            "{} hash bins ({} bits)",
            s.name_prefix, s.bit_length
        ));
    }
    out
}

/// Changes beyond targets: delegations (who may sign what) and any other field.
/// An approver signs the whole role, so the review must show all of it.
fn other_changes(old: &Targets, new: &Targets) -> Vec<TargetChange> {
    let mut out = Vec::new();
    let (before, after) = (delegation_summary(old), delegation_summary(new));
    if old.delegations != new.delegations {
        out.push(TargetChange {
            target: "(delegations)".into(),
            change: "changed",
            before: Some(before.join("; ")),
            after: Some(after.join("; ")),
        });
    }
    if old.unrecognized != new.unrecognized || old.spec_version != new.spec_version {
        out.push(TargetChange {
            target: "(other fields)".into(),
            change: "changed",
            before: None,
            after: None,
        });
    }
    out
}

/// Where a pending role's keys come from.
enum Delegator {
    /// A role of the trusted delegation tree (or `root`).
    Trusted(String),
    /// A complete delegator version that is itself waiting for this role's first
    /// version (a `delegation add` made by someone without the role's keys).
    Waiting(Box<Targets>),
}

impl Delegator {
    fn authority<'a>(
        &'a self,
        up: &'a TrustedUpdater<'_>,
        role: &str,
    ) -> Result<crate::tuf::verify::Authority<'a>, OpError> {
        match self {
            Self::Trusted(d) => authority_of(up, role, d),
            Self::Waiting(t) => {
                crate::tuf::trusted::delegated_authority(t, role).map_err(|source| {
                    OpError::Delegation {
                        role: role.to_owned(),
                        source,
                    }
                })
            }
        }
    }
}

/// Read and review the pending version of `role`: its envelope, typed content (not
/// trusted), and the verification against its delegator.
fn review(
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    role: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Untrusted, PendingView, Delegator), OpError> {
    let loc = store.location().to_string();
    let file = pending_of(listing, role).ok_or_else(|| OpError::NoPendingVersion {
        location: loc.clone(),
        role: role.to_owned(),
    })?;
    let bytes = store.read_file(file, crate::tuf::client::Limits::default().targets)?;
    let malformed = |source| OpError::MalformedPending {
        location: loc.clone(),
        role: role.to_owned(),
        source,
    };
    let untrusted = Untrusted::parse(role, bytes).map_err(malformed)?;
    let pending: Targets = untrusted.parse_unverified().map_err(malformed)?;
    let trusted_delegator = up.find_delegator(role).map_err(|source| OpError::Update {
        location: loc.clone(),
        source,
    })?;
    let delegator = match trusted_delegator {
        // A waiting delegator version that rotates the role's keys: the role's
        // re-signed version is approved against the new keys (issue #12).
        Some(d) => {
            let ready = ready_pending(store, up, listing, &[], now)?;
            match super::pending::rotating_delegator(up, &ready, role) {
                Some(parent) => Delegator::Waiting(Box::new(parent)),
                None => Delegator::Trusted(d),
            }
        }
        None => {
            let ready = ready_pending(store, up, listing, &[], now)?;
            let (_, parent) =
                waiting_delegator(&ready, role).ok_or_else(|| OpError::NoSuchRole {
                    location: loc.clone(),
                    role: role.to_owned(),
                })?;
            Delegator::Waiting(Box::new(parent))
        }
    };
    let resigning = up.unverifiable().any(|r| r == role);
    let empty;
    let (current, expected) = match up.trusted().targets(role) {
        Some(t) => (&**t, t.version.get() + 1),
        None if matches!(delegator, Delegator::Waiting(_)) || resigning => {
            // A new role, or one whose published version lost its signer (revoked):
            // reviewed against nothing, so every target it vouches for shows.
            empty = Targets::empty(std::num::NonZeroU64::MIN, pending.expires);
            (&empty, first_version(up, role))
        }
        None => {
            return Err(OpError::NotLoaded {
                role: role.to_owned(),
            });
        }
    };
    if pending.version.get() != expected {
        return Err(OpError::PendingNotApprovable {
            role: role.to_owned(),
            problem: format!(
                "v{} does not follow the published v{}: it is stale; sign again",
                pending.version,
                expected - 1
            ),
        });
    }
    let mut changes = diff(current, &pending);
    changes.extend(other_changes(current, &pending));
    let result = untrusted_result(&untrusted, delegator.authority(up, role)?);
    let view = PendingView {
        role: role.to_owned(),
        version: pending.version.get(),
        signed: result.signed.iter().cloned().collect(),
        missing: result.missing.iter().cloned().collect(),
        threshold: result.threshold.get(),
        changes,
        content_sha256: Sha256Digest::of(untrusted.canonical()).hex(),
    };
    Ok((untrusted, view, delegator))
}

/// Every pending role version of `location`.
pub fn pending(ctx: &Context, location: &Location, pin: &Pin) -> Result<Vec<PendingView>, OpError> {
    let repo = Repository::open_for_editing(ctx, location, pin)?;
    let store = repo.store();
    let mut up = repo.refresh_for_editing()?;
    let listing = up
        .remote()
        .listing()
        .cloned()
        .ok_or_else(|| OpError::NoRepository {
            location: location.to_string(),
        })?;
    pending_in(store, &mut up, &listing, ctx.now)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// Every pending version `listing` holds, reviewed against the trusted state of
/// `up` (its file name with the review, or why it cannot be reviewed).
pub fn pending_in(
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, Result<PendingView, OpError>)> {
    let mut out = Vec::new();
    for f in listing.files.iter().filter(|f| f.pending) {
        let Some(role) = f
            .name
            .strip_suffix(".json")
            .and_then(|n| n.split_once('.'))
            .map(|(_, r)| r.to_owned())
        else {
            continue;
        };
        if version_of(&f.name, &role).is_some() {
            let review = review(store, up, listing, &role, now).map(|r| r.1);
            out.push((f.name.clone(), review));
        }
    }
    out
}

/// What `approve` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApproveOutcome {
    /// The version reviewed, with what it changes.
    pub reviewed: PendingView,
    /// The commit.
    pub commit: CommitOutcome,
}

/// Add this key store's signatures (or `key`'s) to the pending version of `role`.
/// Refuses when the pending version changed since this command first read it.
pub fn approve(
    ctx: &Context,
    location: &Location,
    role: &str,
    key: Option<&str>,
    pin: &Pin,
) -> Result<ApproveOutcome, OpError> {
    let mut first: Option<PendingView> = None;
    let (commit, _ours) = Repository::open_for_editing(ctx, location, pin)?.edit(
        false,
        |store, up, listing| {
            let (untrusted, view, delegator) = review(store, up, listing, role, ctx.now)?;
            match &first {
                None => first = Some(view.clone()),
                // On a retry the pending version may have gained others' signatures, but
                // its content must be what was reviewed.
                Some(seen) if seen.content_sha256 != view.content_sha256 => {
                    return Err(OpError::PendingNotApprovable {
                        role: role.to_owned(),
                        problem: "it changed while approving; review it again".into(),
                    });
                }
                Some(_) => {}
            }
            let authority = delegator.authority(up, role)?;
            let signers = ctx.signers_at_hand(role, authority.keyids, key)?;
            let fresh: Vec<_> = signers
                .iter()
                .filter(|s| !view.signed.contains(&s.public_key().key_id()))
                .collect();
            if fresh.is_empty() {
                return Err(OpError::PendingNotApprovable {
                    role: role.to_owned(),
                    problem: format!("v{} is already signed by every key of yours", view.version),
                });
            }
            let ours: Vec<KeyId> = fresh.iter().map(|s| s.public_key().key_id()).collect();
            let mut extra = Vec::new();
            for s in &fresh {
                let sig = s
                    .sign(untrusted.canonical())
                    .map_err(|source| OpError::Sign {
                        role: role.to_owned(),
                        keyid: s.public_key().key_id().0,
                        source,
                    })?;
                extra.push(Signature {
                    keyid: s.public_key().key_id(),
                    sig: hex::encode(sig),
                    unrecognized: Unrecognized::new(),
                });
            }
            // Drop invalid signatures by our keys, then add ours.
            let bytes = merge_signatures(role, untrusted.bytes(), &extra, true)?;
            let merged = Untrusted::parse(role, bytes.clone()).map_err(|e| own(role, e))?;
            let signatures = untrusted_result(&merged, authority);
            Ok((
                vec![RoleChange {
                    role: role.to_owned(),
                    version: view.version,
                    bytes,
                    signatures,
                }],
                vec![],
                ours,
            ))
        },
        |store, ours| has_signatures(store, role, ours),
    )?;
    let reviewed = first.ok_or(OpError::Internal {
        what: "nothing was reviewed",
    })?;
    Ok(ApproveOutcome { reviewed, commit })
}

/// Does the newest version of `role` in the store carry signatures by `keys`?
fn has_signatures(store: &dyn Store, role: &str, keys: &[KeyId]) -> Result<bool, OpError> {
    let Some(v) = newest_role_json(store, role)? else {
        return Ok(false);
    };
    let sigs = v["signatures"].as_array().cloned().unwrap_or_default();
    Ok(keys.iter().all(|k| sigs.iter().any(|s| s["keyid"] == k.0)))
}

/// Re-sign snapshot and timestamp with the publisher key (fresh expiry), promoting
/// every fully signed pending version.
pub fn refresh(ctx: &Context, location: &Location, pin: &Pin) -> Result<CommitOutcome, OpError> {
    let (outcome, ()) = Repository::open_for_editing(ctx, location, pin)?.edit(
        true,
        |_store, up, _| {
            // Load every role so complete pending versions can be checked against
            // their delegators.
            up.load_delegation_tree()
                .map_err(|source| OpError::Update {
                    location: location.to_string(),
                    source,
                })?;
            Ok((vec![], vec![], ()))
        },
        |_, ()| Ok(true),
    )?;
    Ok(outcome)
}
