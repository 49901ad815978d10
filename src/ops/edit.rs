//! Changing a repository: new versions of targets roles, signed by the keys at hand,
//! published either into snapshot and timestamp (threshold met and the publisher key
//! at hand) or as *pending* layers that verifiers never see (DESIGN §3), retried
//! against concurrent writers.
//!
//! Every command that edits (sign, approve, delegation add/remove, refresh) builds a
//! list of [`RoleChange`]s from the trusted state and hands them to [`commit`].

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use serde::Serialize;

use crate::crypto::{KeyId, KeySigner};
use crate::digest::Sha256Digest;
use crate::store::{Listing, NewFile, Store, StoreError, StoreErrorKind, StoredFile};
use crate::tuf::client::LocalState as _;
use crate::tuf::editor;
use crate::tuf::metadata::{Signature, Targets};
use crate::tuf::trusted::delegated_authority;
use crate::tuf::verify::{Authority, Untrusted, VerificationResult, check_threshold, short_id};

use super::trust::{Pin, TrustedUpdater, anchor_for_editing, open_store, update_for_editing};
use super::{Context, OpError, as_signers};

/// Publish attempts before giving up on a busy repository.
pub const MAX_ATTEMPTS: u32 = 10;

/// A new version of one targets role, already signed by the keys at hand.
#[derive(Debug, Clone)]
pub struct RoleChange {
    /// The role.
    pub role: String,
    /// Its new version.
    pub version: u64,
    /// The envelope bytes.
    pub bytes: Vec<u8>,
    /// Who signed and who is missing, against the delegator's keys.
    pub signatures: VerificationResult,
}

impl RoleChange {
    /// True when the threshold is met.
    pub fn is_complete(&self) -> bool {
        self.signatures.is_met()
    }
}

/// What a commit did with each role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleStatus {
    /// The role.
    pub role: String,
    /// The version written.
    pub version: u64,
    /// `published` (in snapshot), `pending` (needs signatures), `ready` (fully
    /// signed, waiting for a holder of the publisher key to run `warrant refresh`)
    /// or `waiting` (fully signed, but it delegates to a new role whose first
    /// version still needs signatures: both are published together).
    pub state: &'static str,
    /// Valid signatures.
    pub signed: usize,
    /// The threshold.
    pub threshold: u64,
    /// Key ids that could still sign.
    pub missing: Vec<KeyId>,
}

/// The result of a commit.
#[derive(Debug, Clone, Serialize)]
pub struct CommitOutcome {
    /// Per changed or promoted role.
    pub roles: Vec<RoleStatus>,
    /// The new `warrant.tuf` digest.
    pub published: Sha256Digest,
    /// Whether snapshot and timestamp were re-signed.
    pub snapshot_updated: bool,
    /// Attempts needed.
    pub attempts: u32,
}

/// The delegator of `role` and the keys it authorizes, from the trusted state.
pub fn authority_of<'a>(
    up: &'a TrustedUpdater<'_>,
    role: &str,
    delegator: &str,
) -> Result<Authority<'a>, OpError> {
    let trusted = up.trusted();
    if delegator == "root" {
        let root = trusted.root();
        let r = root
            .roles
            .get(role)
            .ok_or_else(|| OpError::InvalidArgument(format!("root has no {role} role")))?;
        return Ok(Authority {
            keys: &root.keys,
            keyids: &r.keyids,
            threshold: r.threshold,
        });
    }
    let parent = trusted
        .targets(delegator)
        .ok_or_else(|| OpError::InvalidArgument(format!("delegator {delegator} is not loaded")))?;
    delegated_authority(parent, role).map_err(|e| OpError::InvalidArgument(e.to_string()))
}

/// Sign `targets` as `role` with every key at hand that `authority` lists (or only
/// `only`), keeping `keep` (valid signatures of the same content, for approvals).
pub fn sign_role(
    ctx: &Context,
    role: &str,
    targets: &Targets,
    authority: Authority<'_>,
    keep: &[Signature],
    only: Option<&str>,
) -> Result<RoleChange, OpError> {
    let signers = ctx.signers_at_hand(role, authority.keyids, only)?;
    let bytes = editor::sign(targets, &as_signers(&signers))?;
    let bytes = if keep.is_empty() {
        bytes
    } else {
        merge_signatures(&bytes, keep)?
    };
    let untrusted = Untrusted::parse(role, bytes.clone())
        .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
    let signatures = untrusted_result(&untrusted, authority);
    Ok(RoleChange {
        role: role.to_owned(),
        version: targets.version.get(),
        bytes,
        signatures,
    })
}

/// [`sign_role`] that signs with whatever keys of the role are at hand, none
/// included: the result is pending until the role's key holders `approve` it from
/// their own machines (an admin delegating to people by their public keys).
pub fn sign_role_with_any_keys(
    ctx: &Context,
    role: &str,
    targets: &Targets,
    authority: Authority<'_>,
) -> Result<RoleChange, OpError> {
    match sign_role(ctx, role, targets, authority, &[], None) {
        Err(OpError::MissingSigningKeys { .. }) => {
            let bytes = editor::sign(targets, &[])?;
            let untrusted = Untrusted::parse(role, bytes.clone())
                .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
            Ok(RoleChange {
                role: role.to_owned(),
                version: targets.version.get(),
                signatures: untrusted_result(&untrusted, authority),
                bytes,
            })
        }
        other => other,
    }
}

/// The typed (unverified) content of a change's envelope.
pub fn content_of(change: &RoleChange) -> Option<Targets> {
    Untrusted::parse(&change.role, change.bytes.clone())
        .ok()?
        .parse_unverified::<Targets>()
        .ok()
}

/// Roles `t` delegates to by name.
fn named_delegations(t: &Targets) -> Vec<String> {
    t.delegations
        .iter()
        .flat_map(|d| d.roles.iter().flatten())
        .map(|r| r.name.clone())
        .collect()
}

/// A role not yet in the trusted delegation tree may be delegated by a complete
/// change that is itself waiting to be published (a `delegation add` whose new
/// role still needs its own keys' signatures): that change and its content.
pub fn waiting_delegator<'c>(
    candidates: &'c [RoleChange],
    role: &str,
) -> Option<(&'c RoleChange, Targets)> {
    candidates
        .iter()
        .filter(|c| c.is_complete() && c.role != role)
        .find_map(|c| {
            let content = content_of(c)?;
            named_delegations(&content)
                .iter()
                .any(|n| n == role)
                .then_some((c, content))
        })
}

/// Who signed `untrusted` validly under `authority`.
pub fn untrusted_result(untrusted: &Untrusted, authority: Authority<'_>) -> VerificationResult {
    check_threshold(untrusted.canonical(), untrusted.signatures(), authority)
}

/// Add `extra` signatures to an envelope (skipping key ids already present).
fn merge_signatures(bytes: &[u8], extra: &[Signature]) -> Result<Vec<u8>, OpError> {
    let mut v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| OpError::InvalidArgument(e.to_string()))?;
    let sigs = v["signatures"]
        .as_array_mut()
        .ok_or_else(|| OpError::InvalidArgument("no signatures".into()))?;
    for s in extra {
        if !sigs.iter().any(|x| x["keyid"] == s.keyid.0) {
            sigs.push(
                serde_json::to_value(s).map_err(|e| OpError::InvalidArgument(e.to_string()))?,
            );
        }
    }
    serde_json::to_vec(&v).map_err(|e| OpError::InvalidArgument(e.to_string()))
}

/// Is `name` the file of `role` at some version (`N.role.json`)?
pub fn version_of(name: &str, role: &str) -> Option<u64> {
    let v = name.strip_suffix(&format!(".{role}.json"))?;
    v.parse()
        .ok()
        .filter(|_| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The newest version of `role` in the store (pending or not) as untyped JSON: for
/// an editor's "did my change survive a concurrent writer" check after publishing,
/// never for a trust decision.
pub fn newest_role_json(
    store: &dyn Store,
    role: &str,
) -> Result<Option<serde_json::Value>, OpError> {
    let Some(listing) = store.listing()? else {
        return Ok(None);
    };
    let Some(newest) = listing
        .files
        .iter()
        .filter(|f| version_of(&f.name, role).is_some())
        .max_by_key(|f| version_of(&f.name, role))
    else {
        return Ok(None);
    };
    let bytes = store.read_file(newest, crate::tuf::client::Limits::default().targets)?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// The pending file of `role` in `listing`, if any.
pub fn pending_of<'l>(listing: &'l Listing, role: &str) -> Option<&'l StoredFile> {
    listing
        .files
        .iter()
        .find(|f| f.pending && version_of(&f.name, role).is_some())
}

/// Change the delegations of the role that delegates to `role` by name: find it and
/// its own delegator, apply `change` to a copy, drop keys no delegation uses any
/// more, bump version and expiry, and sign it with the keys at hand. Returns the
/// signed change, the delegator's name and its new content.
pub fn edit_delegator(
    ctx: &Context,
    up: &mut TrustedUpdater<'_>,
    location: &str,
    role: &str,
    change: impl FnOnce(&mut crate::tuf::metadata::Delegations) -> Result<(), OpError>,
) -> Result<(RoleChange, String, Targets), OpError> {
    let wrap = |source| OpError::Update {
        location: location.to_owned(),
        source,
    };
    let parent = up
        .find_delegator(role)
        .map_err(wrap)?
        .filter(|p| p != "root")
        .ok_or_else(|| {
            OpError::InvalidArgument(format!("{location} has no delegated role {role:?}"))
        })?;
    let grand = up
        .find_delegator(&parent)
        .map_err(wrap)?
        .unwrap_or_else(|| "root".into());
    let current = up
        .trusted()
        .targets(&parent)
        .ok_or_else(|| OpError::InvalidArgument(format!("{parent} is not loaded")))?;
    let mut next: Targets = (**current).clone();
    let dels = next
        .delegations
        .as_mut()
        .ok_or_else(|| OpError::InvalidArgument(format!("{parent} delegates nothing")))?;
    change(dels)?;
    let used: std::collections::BTreeSet<KeyId> = dels
        .roles
        .iter()
        .flatten()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    let bins: Vec<KeyId> = dels
        .succinct_roles
        .iter()
        .flat_map(|s| s.keyids.iter().cloned())
        .collect();
    dels.keys
        .retain(|k, _| used.contains(k) || bins.contains(k));
    next.version = editor::bump(current.version, "targets")?;
    next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(current.expires);
    let signed = sign_role(
        ctx,
        &parent,
        &next,
        authority_of(up, &parent, &grand)?,
        &[],
        None,
    )?;
    Ok((signed, parent, next))
}

/// After publishing to a store without compare-and-swap, a writer waits at least
/// this long (longer when its own publish was slower) before re-reading to
/// confirm that its change survived. A concurrent writer can overwrite a change
/// after that re-read only if more than this passed between its own check and
/// the answer to its PUT — which it measures, and then reports
/// ([`OpError::PublishWindowExceeded`]) instead of plain success. So a signed
/// target is never lost silently: its signer retries, or the overwriter says so.
pub const PUBLISH_SETTLE: StdDuration = StdDuration::from_secs(1);

/// Exponential backoff with full jitter: 0..(25ms · 2^attempt), capped at 2 s.
pub fn backoff(attempt: u32) -> StdDuration {
    let cap = (25u64 << attempt.min(6)).min(2000);
    let mut b = [0u8; 8];
    let r = getrandom::fill(&mut b)
        .map(|_| u64::from_le_bytes(b))
        .unwrap_or(cap / 2);
    StdDuration::from_millis(r % cap.max(1))
}

/// Run one attempt at changing `location` against its current trusted state,
/// retrying from the store's new state when another writer published meanwhile
/// (a `Conflict` from the store), at most [`MAX_ATTEMPTS`] times with jittered
/// backoff. Returns the attempt's result and the number of attempts.
pub fn with_retries<T>(
    ctx: &Context,
    location: &crate::store::Location,
    pin: &Pin,
    mut attempt_once: impl FnMut(&dyn Store, &mut TrustedUpdater<'_>, &Listing) -> Result<T, OpError>,
) -> Result<(T, u32), OpError> {
    let store = open_store(ctx, location)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let cache = anchor_for_editing(ctx, store.as_ref(), pin)?;
        if attempt > 1 {
            // Another writer won a race: take the store's state as it is now.
            cache.forget_all_but_root();
        }
        let mut up = update_for_editing(ctx, store.as_ref(), cache)?;
        let listing = up
            .remote()
            .listing()
            .cloned()
            .ok_or_else(|| OpError::NoRepository {
                location: location.to_string(),
            })?;
        match attempt_once(store.as_ref(), &mut up, &listing) {
            Ok(v) => return Ok((v, attempt)),
            Err(OpError::Store(e))
                if e.kind == StoreErrorKind::Conflict && attempt < MAX_ATTEMPTS =>
            {
                tracing::info!(attempt, "another writer published meanwhile; retrying");
                std::thread::sleep(backoff(attempt));
            }
            Err(OpError::Store(e)) if e.kind == StoreErrorKind::Conflict => {
                return Err(OpError::TooManyConflicts {
                    location: location.to_string(),
                    attempts: attempt,
                    last: e.detail,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Run `edit` against the current trusted state of `location` and commit what it
/// returns, retrying from the new state when another writer publishes meanwhile
/// (and, on stores without compare-and-swap, when `survived` says after a re-read
/// that the change was overwritten).
pub fn transact<T>(
    ctx: &Context,
    location: &crate::store::Location,
    pin: &Pin,
    resign: bool,
    mut edit: impl FnMut(
        &dyn Store,
        &mut TrustedUpdater<'_>,
        &Listing,
    ) -> Result<(Vec<RoleChange>, Vec<String>, T), OpError>,
    survived: impl Fn(&dyn Store, &T) -> Result<bool, OpError>,
) -> Result<(CommitOutcome, T), OpError> {
    let ((mut out, extra), attempts) = with_retries(ctx, location, pin, |store, up, listing| {
        let (changes, removed, extra) = edit(store, up, listing)?;
        let out = commit(ctx, store, up, listing, changes, &removed, resign)?;
        if !store.publish_is_atomic() {
            // Longer than any concurrent writer's check-to-PUT window that is not
            // reported (see PUBLISH_SETTLE), and than twice our own.
            let window = store.last_publish_window().unwrap_or_default();
            std::thread::sleep(PUBLISH_SETTLE.max(window * 2) + backoff(2));
            // Still our manifest: our change is there (one HEAD). Otherwise someone
            // published after us: did they build on our change or overwrite it?
            let unconfirmed = |e: OpError| OpError::Unconfirmed {
                location: location.to_string(),
                published: out.published.to_string(),
                detail: e.to_string(),
            };
            let now = store.head_listing().map_err(|e| unconfirmed(e.into()))?;
            // The tag still at the manifest we built on: the registry acknowledged
            // the PUT and stored nothing (issue #17) — a lost write, redone from a
            // fresh read like a conflict, never reported as published.
            if now == Some(listing.digest) && now != Some(out.published) {
                // What `commit` recorded as our own new state never happened.
                up.local_mut().forget_all_but_root();
                return Err(OpError::Store(StoreError::new(
                    StoreErrorKind::Conflict,
                    store.location(),
                    "warrant.tuf",
                    "the registry acknowledged the new manifest but still serves the previous one (a lost write)",
                )));
            }
            let ours = now == Some(out.published);
            if !ours && !survived(store, &extra).map_err(unconfirmed)? {
                up.local_mut().forget_all_but_root();
                return Err(OpError::Store(StoreError::new(
                    StoreErrorKind::Conflict,
                    store.location(),
                    "warrant.tuf",
                    "a concurrent writer overwrote this change",
                )));
            }
            if window > PUBLISH_SETTLE {
                return Err(OpError::PublishWindowExceeded {
                    location: location.to_string(),
                    published: out.published.to_string(),
                    window_ms: window.as_millis(),
                    settle_ms: PUBLISH_SETTLE.as_millis(),
                });
            }
        }
        Ok((out, extra))
    })?;
    out.attempts = attempts;
    Ok((out, extra))
}

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
fn promotable(up: &mut TrustedUpdater<'_>, changes: &[RoleChange]) -> Vec<String> {
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
    let delegated: Vec<String> = set
        .iter()
        .flat_map(|(_, d)| d.iter().cloned())
        .filter(|d| matches!(up.find_delegator(d), Ok(Some(_))))
        .collect();
    loop {
        let roles: Vec<String> = set.iter().map(|(r, _)| r.clone()).collect();
        let before = set.len();
        set.retain(|(role, delegates)| {
            let children_ready = delegates
                .iter()
                .all(|d| delegated.contains(d) || roles.contains(d));
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

/// Publish `changes` (and drop `removed` roles): complete changes go into a new
/// snapshot and timestamp when the publisher keys are at hand, everything else as a
/// pending layer. Existing complete pending versions are promoted on the way.
pub fn commit(
    ctx: &Context,
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    changes: Vec<RoleChange>,
    removed: &[String],
    resign: bool,
) -> Result<CommitOutcome, OpError> {
    let mut changes = changes;
    let ready = ready_pending(store, up, listing, &changes, ctx.now)?;
    changes.extend(ready);
    let promotable_roles = promotable(up, &changes);
    let trusted = up.trusted();
    let root = trusted.root();
    let (Some(snapshot), Some(timestamp)) = (trusted.snapshot(), trusted.timestamp()) else {
        return Err(OpError::NoRepository {
            location: store.location().to_string(),
        });
    };
    let complete: Vec<&RoleChange> = changes
        .iter()
        .filter(|c| promotable_roles.contains(&c.role))
        .collect();
    let key_ids = |role: &str| {
        root.roles
            .get(role)
            .map(|r| (r.keyids.clone(), r.threshold.get()))
            .unwrap_or_default()
    };
    let (snap_ids, snap_threshold) = key_ids("snapshot");
    let (ts_ids, ts_threshold) = key_ids("timestamp");
    let publisher: Option<(Vec<KeySigner>, Vec<KeySigner>)> =
        if complete.is_empty() && removed.is_empty() && !resign {
            None
        } else {
            match (
                ctx.signers_for("snapshot", &snap_ids, snap_threshold, None),
                ctx.signers_for("timestamp", &ts_ids, ts_threshold, None),
            ) {
                (Ok(s), Ok(t)) => Some((s, t)),
                (Err(OpError::MissingSigningKeys { .. }), _)
                | (_, Err(OpError::MissingSigningKeys { .. })) => None,
                (Err(e), _) | (_, Err(e)) => return Err(e),
            }
        };
    let promote = publisher.is_some();
    if (!removed.is_empty() || resign) && !promote {
        return Err(OpError::MissingSigningKeys {
            role: "snapshot".into(),
            have: 0,
            threshold: snap_threshold,
            needed: snap_ids
                .iter()
                .map(|k| short_id(&k.0).to_owned())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    // Roles a promoted delegator version stops delegating leave the snapshot with
    // it (whoever publishes: the admin who removed the delegation may not hold the
    // publisher key, and CI's refresh then completes the removal).
    let mut removed: Vec<String> = removed.to_vec();
    for c in complete.iter().filter(|_| promote) {
        let (Some(old), Some(new)) = (trusted.targets(&c.role), content_of(c)) else {
            continue;
        };
        let kept = named_delegations(&new);
        for gone in named_delegations(old) {
            let elsewhere = trusted
                .loaded_targets()
                .any(|(r, t)| r != c.role && named_delegations(t).contains(&gone));
            if !kept.contains(&gone) && !elsewhere && !removed.contains(&gone) {
                removed.push(gone);
            }
        }
    }
    let removed = &removed[..];
    let now = ctx.now;
    let mut files: Vec<NewFile> = Vec::new();
    // Files of the listing that stay as they are: referenced again by digest, not
    // read back and uploaded (a sign costs O(changed files)).
    let mut kept: Vec<crate::store::StoredFile> = Vec::new();
    let mut statuses = Vec::new();
    let published_roles: Vec<&str> = if promote {
        complete.iter().map(|c| c.role.as_str()).collect()
    } else {
        vec![]
    };
    let touched: Vec<&str> = changes.iter().map(|c| c.role.as_str()).collect();
    for f in &listing.files {
        let Some((_, role)) = f
            .name
            .strip_suffix(".json")
            .and_then(|n| n.split_once('.'))
            .or_else(|| (f.name == "timestamp.json").then_some(("", "timestamp")))
        else {
            continue;
        };
        // A removed role keeps its last published file and its snapshot entry:
        // spec §5.5.5 forbids a snapshot to drop a role a verifier's trusted
        // snapshot lists, and no search reaches a role nothing delegates to.
        let superseded = if f.pending {
            touched.contains(&role) || removed.iter().any(|r| r == role)
        } else {
            published_roles.contains(&role)
        };
        let drop = superseded || (promote && (role == "snapshot" || role == "timestamp"));
        if !drop {
            kept.push(f.clone());
        }
    }
    for c in &changes {
        let ready = promotable_roles.contains(&c.role);
        let published = promote && ready;
        files.push(NewFile {
            name: format!("{}.{}.json", c.version, c.role),
            bytes: c.bytes.clone(),
            pending: !published,
        });
        statuses.push(RoleStatus {
            role: c.role.clone(),
            version: c.version,
            state: if published {
                "published"
            } else if ready {
                "ready"
            } else if c.is_complete() {
                "waiting"
            } else {
                "pending"
            },
            signed: c.signatures.signed.len(),
            threshold: c.signatures.threshold.get(),
            missing: c.signatures.missing.iter().cloned().collect(),
        });
    }
    let mut new_meta: Option<(Vec<u8>, Vec<u8>)> = None;
    if let Some((snap_signers, ts_signers)) = &publisher {
        let mut meta: BTreeMap<_, _> = snapshot.meta.clone();
        for c in complete.iter() {
            let v = std::num::NonZeroU64::new(c.version)
                .ok_or(crate::tuf::editor::EditorError::Overflow("role"))?;
            meta.insert(format!("{}.json", c.role), editor::meta_for(v, &c.bytes));
        }
        let snap_version = editor::bump(snapshot.version, "snapshot")?;
        let snap = editor::new_snapshot(
            snap_version,
            editor::expiry_in(now, ctx.lifetimes.snapshot),
            meta,
        );
        let snap_bytes = editor::sign(&snap, &as_signers(snap_signers))?;
        let ts = editor::new_timestamp(
            editor::bump(timestamp.version, "timestamp")?,
            editor::expiry_in(now, ctx.lifetimes.timestamp),
            snap_version,
            &snap_bytes,
        );
        let ts_bytes = editor::sign(&ts, &as_signers(ts_signers))?;
        files.push(NewFile {
            name: format!("{snap_version}.snapshot.json"),
            bytes: snap_bytes.clone(),
            pending: false,
        });
        files.push(NewFile {
            name: "timestamp.json".into(),
            bytes: ts_bytes.clone(),
            pending: false,
        });
        new_meta = Some((snap_bytes, ts_bytes));
    }
    let published = store.publish_keeping(&kept, &files, Some(&listing.digest))?;
    // Our own trusted state follows what we published (verified again next time).
    if let Some((snap, ts)) = new_meta {
        let cache = up.local_mut();
        let persist = |cache: &mut crate::cache::TrustCache, role: &str, bytes: &[u8]| {
            cache.persist(role, bytes).map_err(|e| OpError::Update {
                location: store.location().to_string(),
                source: e.into(),
            })
        };
        persist(cache, "timestamp", &ts)?;
        persist(cache, "snapshot", &snap)?;
        for c in complete.iter() {
            persist(cache, &c.role, &c.bytes)?;
        }
        cache.set_listing_digest(&published)?;
    }
    Ok(CommitOutcome {
        roles: statuses,
        published,
        snapshot_updated: promote,
        attempts: 1,
    })
}
