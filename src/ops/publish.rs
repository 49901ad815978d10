//! Publishing a change: role versions into a new snapshot and timestamp when the
//! publisher keys are at hand, as *pending* layers otherwise (DESIGN §3), with
//! compare-and-swap against the listing the change was built on, confirmation on
//! stores without it, and retries from the new state when another writer won.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use crate::cache::TrustCache;
use crate::crypto::KeySigner;
use crate::digest::Sha256Digest;
use crate::store::{Listing, NewFile, Store, StoreError, StoreErrorKind, StoredFile};
use crate::tuf::client::LocalState as _;
use crate::tuf::editor;
use crate::tuf::trusted::TrustedSet;
use crate::tuf::verify::short_id;

use super::edit::{CommitOutcome, RoleChange, RoleStatus, content_of, named_delegations};
use super::pending::{promotable, ready_pending};
use super::repository::{Repository, TrustedUpdater};
use super::{Context, OpError, as_signers};

/// Publish attempts before giving up on a busy repository.
pub const MAX_ATTEMPTS: u32 = 10;

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

impl Repository<'_> {
    /// Run one attempt at changing the repository against its current trusted
    /// state, retrying from the store's new state when another writer published
    /// meanwhile (a `Conflict` from the store), at most [`MAX_ATTEMPTS`] times with
    /// jittered backoff. Returns the attempt's result and the number of attempts.
    pub fn with_retries<T>(
        &self,
        mut attempt_once: impl FnMut(
            &dyn Store,
            &mut TrustedUpdater<'_>,
            &Listing,
        ) -> Result<T, OpError>,
    ) -> Result<(T, u32), OpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut up = self.refresh_for_editing()?;
            let listing = up
                .remote()
                .listing()
                .cloned()
                .ok_or_else(|| OpError::NoRepository {
                    location: self.location().to_string(),
                })?;
            match attempt_once(self.store(), &mut up, &listing) {
                Ok(v) => {
                    self.give_back(up);
                    return Ok((v, attempt));
                }
                Err(OpError::Store(e))
                    if e.kind == StoreErrorKind::Conflict && attempt < MAX_ATTEMPTS =>
                {
                    tracing::info!(attempt, "another writer published meanwhile; retrying");
                    // Take the store's state as it is now, next time.
                    self.release(up);
                    std::thread::sleep(backoff(attempt));
                }
                Err(OpError::Store(e)) if e.kind == StoreErrorKind::Conflict => {
                    return Err(OpError::TooManyConflicts {
                        location: self.location().to_string(),
                        attempts: attempt,
                        last: e.detail,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Run `draft` against the current trusted state and commit what it returns
    /// (role changes, roles removed, and what the caller wants back), retrying from
    /// the new state when another writer publishes meanwhile (and, on stores
    /// without compare-and-swap, when `survived` says after a re-read that the
    /// change was overwritten). `resign` re-signs snapshot and timestamp even with
    /// no change.
    pub fn edit<T>(
        &self,
        resign: bool,
        mut draft: impl FnMut(
            &dyn Store,
            &mut TrustedUpdater<'_>,
            &Listing,
        ) -> Result<(Vec<RoleChange>, Vec<String>, T), OpError>,
        survived: impl Fn(&dyn Store, &T) -> Result<bool, OpError>,
    ) -> Result<(CommitOutcome, T), OpError> {
        let ctx = self.context();
        let ((mut out, extra), attempts) = self.with_retries(|store, up, listing| {
            let (changes, removed, extra) = draft(store, up, listing)?;
            let out = commit(ctx, store, up, listing, changes, &removed, resign)?;
            if !store.publish_is_atomic() {
                self.confirm(up, listing, &out, |store| survived(store, &extra))?;
            }
            Ok((out, extra))
        })?;
        out.attempts = attempts;
        Ok((out, extra))
    }

    /// On a store without compare-and-swap: make sure the publish `out`, built on
    /// `listing`, stuck — a `Conflict` (retried) when it was lost or overwritten,
    /// `Unconfirmed` when the store cannot tell us.
    fn confirm(
        &self,
        up: &mut TrustedUpdater<'_>,
        listing: &Listing,
        out: &CommitOutcome,
        survived: impl Fn(&dyn Store) -> Result<bool, OpError>,
    ) -> Result<(), OpError> {
        let store = self.store();
        // Longer than any concurrent writer's check-to-PUT window that is not
        // reported (see PUBLISH_SETTLE), and than twice our own.
        let window = store.last_publish_window().unwrap_or_default();
        std::thread::sleep(PUBLISH_SETTLE.max(window * 2) + backoff(2));
        // Still our manifest: our change is there (one HEAD). Otherwise someone
        // published after us: did they build on our change or overwrite it?
        let unconfirmed = |e: OpError| OpError::Unconfirmed {
            location: self.location().to_string(),
            published: out.published.to_string(),
            source: Box::new(e),
        };
        let now = store.head_listing().map_err(|e| unconfirmed(e.into()))?;
        let lost = |why: &str| {
            OpError::Store(StoreError::new(
                StoreErrorKind::Conflict,
                store.location(),
                "warrant.tuf",
                why,
            ))
        };
        // The tag still at the manifest we built on: the registry acknowledged the
        // PUT and stored nothing (issue #17) — a lost write, redone from a fresh
        // read like any conflict, never reported as published.
        if now == Some(listing.digest) && now != Some(out.published) {
            // What `commit` recorded as our own new state never happened.
            up.local_mut().forget_all_but_root();
            return Err(lost(
                "the registry acknowledged the new manifest but still serves the previous one (a lost write)",
            ));
        }
        let ours = now == Some(out.published);
        if !ours && !survived(store).map_err(unconfirmed)? {
            up.local_mut().forget_all_but_root();
            return Err(lost("a concurrent writer overwrote this change"));
        }
        if window > PUBLISH_SETTLE {
            return Err(OpError::PublishWindowExceeded {
                location: self.location().to_string(),
                published: out.published.to_string(),
                window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                settle_ms: u64::try_from(PUBLISH_SETTLE.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(())
    }
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
    if trusted.snapshot().is_none() || trusted.timestamp().is_none() {
        return Err(OpError::NoRepository {
            location: store.location().to_string(),
        });
    }
    let complete: Vec<&RoleChange> = changes
        .iter()
        .filter(|c| promotable_roles.contains(&c.role))
        .collect();
    // A removed role the snapshot never listed (a delegation cancelled while it
    // waited for its first signature) only loses its pending file.
    let unpublishing = removed.iter().any(|r| trusted.snapshot_meta(r).is_some());
    let needs_publisher = !complete.is_empty() || unpublishing || resign;
    let publisher = publisher_keys(ctx, trusted, needs_publisher, unpublishing || resign)?;
    let promote = publisher.is_some();
    let mut removed: Vec<String> = removed.to_vec();
    if promote {
        dropped_delegations(trusted, &complete, &mut removed);
    }
    let published_roles: Vec<&str> = if promote {
        complete.iter().map(|c| c.role.as_str()).collect()
    } else {
        vec![]
    };
    let touched: Vec<&str> = changes.iter().map(|c| c.role.as_str()).collect();
    let kept = kept_files(listing, &touched, &removed, &published_roles, promote);
    let (mut files, statuses) = role_files(&changes, &promotable_roles, promote);
    let new_meta = match &publisher {
        Some(keys) => Some(
            snapshot_and_timestamp(ctx, trusted, &complete, keys).ok_or_else(|| {
                OpError::NoRepository {
                    location: store.location().to_string(),
                }
            })??,
        ),
        None => None,
    };
    if let Some(m) = &new_meta {
        files.push(NewFile {
            name: m.snapshot_name.clone(),
            bytes: m.snapshot.clone(),
            pending: false,
        });
        files.push(NewFile {
            name: "timestamp.json".into(),
            bytes: m.timestamp.clone(),
            pending: false,
        });
    }
    let published = store.publish_keeping(&kept, &files, Some(&listing.digest))?;
    // Our own trusted state follows what we published (verified again next time).
    if let Some(m) = &new_meta {
        let mut roles: Vec<(&str, &[u8])> =
            vec![("timestamp", &m.timestamp), ("snapshot", &m.snapshot)];
        roles.extend(
            complete
                .iter()
                .map(|c| (c.role.as_str(), c.bytes.as_slice())),
        );
        remember(up.local_mut(), store, &roles, &published)?;
    }
    Ok(CommitOutcome {
        roles: statuses,
        published,
        snapshot_updated: promote,
        attempts: 1,
    })
}

/// The snapshot and timestamp keys, decrypted.
struct Publisher {
    snapshot: Vec<KeySigner>,
    timestamp: Vec<KeySigner>,
}

/// A new snapshot and the timestamp naming it, signed.
struct NewMeta {
    /// `N.snapshot.json`.
    snapshot_name: String,
    snapshot: Vec<u8>,
    timestamp: Vec<u8>,
}

/// The snapshot and timestamp keys at hand, when `wanted`; `None` when they are
/// not all at hand, which is an error only when the commit `requires` them
/// (removing a role or re-signing cannot be left pending).
fn publisher_keys(
    ctx: &Context,
    trusted: &TrustedSet,
    wanted: bool,
    requires: bool,
) -> Result<Option<Publisher>, OpError> {
    let root = trusted.root();
    let key_ids = |role: &str| {
        root.roles
            .get(role)
            .map(|r| (r.keyids.clone(), r.threshold.get()))
            .unwrap_or_default()
    };
    let (snap_ids, snap_threshold) = key_ids("snapshot");
    let (ts_ids, ts_threshold) = key_ids("timestamp");
    let keys = if wanted {
        match (
            ctx.signers_for("snapshot", &snap_ids, snap_threshold, None),
            ctx.signers_for("timestamp", &ts_ids, ts_threshold, None),
        ) {
            (Ok(snapshot), Ok(timestamp)) => Some(Publisher {
                snapshot,
                timestamp,
            }),
            (Err(OpError::MissingSigningKeys { .. }), _)
            | (_, Err(OpError::MissingSigningKeys { .. })) => None,
            (Err(e), _) | (_, Err(e)) => return Err(e),
        }
    } else {
        None
    };
    if requires && keys.is_none() {
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
    Ok(keys)
}

/// Roles a promoted delegator version stops delegating leave the snapshot with it
/// (whoever publishes: the admin who removed the delegation may not hold the
/// publisher key, and CI's refresh then completes the removal): added to `removed`.
fn dropped_delegations(trusted: &TrustedSet, complete: &[&RoleChange], removed: &mut Vec<String>) {
    for c in complete {
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
}

/// Files of the listing that stay as they are: referenced again by digest, not
/// read back and uploaded (a sign costs O(changed files)).
fn kept_files(
    listing: &Listing,
    touched: &[&str],
    removed: &[String],
    published_roles: &[&str],
    promote: bool,
) -> Vec<StoredFile> {
    let mut kept = Vec::new();
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
    kept
}

/// The file of each change (published or pending) and what became of it.
fn role_files(
    changes: &[RoleChange],
    promotable_roles: &[String],
    promote: bool,
) -> (Vec<NewFile>, Vec<RoleStatus>) {
    let mut files = Vec::new();
    let mut statuses = Vec::new();
    for c in changes {
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
    (files, statuses)
}

/// The next snapshot (listing the `complete` roles at their new versions) and the
/// timestamp naming it, signed: the snapshot's file name and both envelopes
/// (`None` when the trusted state has no snapshot or timestamp).
fn snapshot_and_timestamp(
    ctx: &Context,
    trusted: &TrustedSet,
    complete: &[&RoleChange],
    keys: &Publisher,
) -> Option<Result<NewMeta, OpError>> {
    let (snapshot, timestamp) = (trusted.snapshot()?, trusted.timestamp()?);
    Some(sign_snapshot_and_timestamp(
        ctx, snapshot, timestamp, complete, keys,
    ))
}

fn sign_snapshot_and_timestamp(
    ctx: &Context,
    snapshot: &crate::tuf::metadata::Snapshot,
    timestamp: &crate::tuf::metadata::Timestamp,
    complete: &[&RoleChange],
    keys: &Publisher,
) -> Result<NewMeta, OpError> {
    let mut meta: BTreeMap<_, _> = snapshot.meta.clone();
    for c in complete {
        let v =
            std::num::NonZeroU64::new(c.version).ok_or(editor::EditorError::Overflow("role"))?;
        meta.insert(format!("{}.json", c.role), editor::meta_for(v, &c.bytes));
    }
    let snap_version = editor::bump(snapshot.version, "snapshot")?;
    let snap = editor::new_snapshot(
        snap_version,
        editor::expiry_in(ctx.now, ctx.lifetimes.snapshot),
        meta,
    );
    let snap_bytes = editor::sign(&snap, &as_signers(&keys.snapshot))?;
    let ts = editor::new_timestamp(
        editor::bump(timestamp.version, "timestamp")?,
        editor::expiry_in(ctx.now, ctx.lifetimes.timestamp),
        snap_version,
        &snap_bytes,
    );
    let ts_bytes = editor::sign(&ts, &as_signers(&keys.timestamp))?;
    Ok(NewMeta {
        snapshot_name: format!("{snap_version}.snapshot.json"),
        snapshot: snap_bytes,
        timestamp: ts_bytes,
    })
}

/// Record what we published as our own trusted state (verified again next time).
fn remember(
    cache: &mut TrustCache,
    store: &dyn Store,
    roles: &[(&str, &[u8])],
    published: &Sha256Digest,
) -> Result<(), OpError> {
    for (role, bytes) in roles {
        cache.persist(role, bytes).map_err(|e| OpError::Update {
            location: store.location().to_string(),
            source: e.into(),
        })?;
    }
    cache.set_listing_digest(published)?;
    Ok(())
}
