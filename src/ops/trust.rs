//! Anchoring trust (cache or pin) and running the TUF update against a store.

use crate::cache::TrustCache;
use crate::digest::Sha256Digest;
use crate::store::{Listing, Location, Store, StoredFile};
use crate::tuf::client::{ClientError, Limits, LocalState, Updater};

use super::{Context, OpError, StoreRemote};

pub use super::anchor::{Pin, anchor, anchor_for_editing};

/// Open the store for `location`.
pub fn open_store(ctx: &Context, location: &Location) -> Result<Box<dyn Store>, OpError> {
    open_artifact_store(ctx, location, crate::store::ArtifactKind::TUF)
}

/// [`open_store`] listing and publishing the artifact `kind` of the repository
/// (the key requests beside the TUF repository, issue #15).
pub fn open_artifact_store(
    ctx: &Context,
    location: &Location,
    kind: crate::store::ArtifactKind,
) -> Result<Box<dyn Store>, OpError> {
    match location {
        Location::Registry { registry, .. } => {
            // A credential helper gets the usual 10 s, or less when the deadline is
            // shorter; its time is not taken from the registry budget.
            let helper_timeout = crate::store::auth::HELPER_TIMEOUT.min(ctx.network.deadline());
            let credentials = crate::store::auth::credentials_for(
                ctx.network.docker_config.as_deref(),
                registry,
                helper_timeout,
            )?;
            let opts = crate::store::registry::RegistryOptions {
                timeout: ctx.network.timeout,
                deadline: ctx.network.deadline(),
                insecure: ctx.network.insecure.clone(),
                credentials,
            };
            Ok(Box::new(
                crate::store::registry::RegistryStore::open(location.clone(), &opts)?
                    .for_artifact(kind),
            ))
        }
        Location::Layout(_) => Ok(Box::new(
            crate::store::layout::LayoutStore::open(location.clone())?.for_artifact(kind),
        )),
    }
}

/// An updater that has refreshed (or loaded an unchanged state from the cache).
pub type TrustedUpdater<'a> = Updater<StoreRemote<'a, dyn Store + 'a>, TrustCache>;

/// Bring the trusted state up to date with `store` (see [`update_from`]).
pub fn update<'a>(
    ctx: &Context,
    store: &'a dyn Store,
    cache: TrustCache,
    allow_cached: bool,
) -> Result<TrustedUpdater<'a>, OpError> {
    let head = store.head_listing()?;
    update_from(ctx, store, cache, allow_cached, head)
}

/// The full update for a command that is about to change the repository: every
/// check but expiry (an expired timestamp is exactly what `refresh` repairs).
pub fn update_for_editing<'a>(
    ctx: &Context,
    store: &'a dyn Store,
    cache: TrustCache,
) -> Result<TrustedUpdater<'a>, OpError> {
    let location = store.location().to_string();
    let wrap = |source: ClientError| OpError::Update {
        location: location.clone(),
        source,
    };
    let listing = store.listing()?.ok_or_else(|| OpError::NoRepository {
        location: location.clone(),
    })?;
    store.prefetch(&files_to_prefetch(&listing, &cache));
    let known = cache.load("timestamp");
    let mut up = Updater::new(
        StoreRemote::with_listing(store, listing).with_known(known),
        cache,
        ctx.now,
        Limits::default(),
    )
    .map_err(wrap)?
    .for_editing();
    up.refresh().map_err(wrap)?;
    Ok(up)
}

/// Bring the trusted state up to date with `store`, whose `warrant.tuf` digest is
/// `head` (already asked for, e.g. together with the image).
///
/// When `head` equals the digest the cache was verified from, the cached metadata is
/// re-verified (signatures and expiry against now) without reading anything else
/// from the store: the warm path. Otherwise the listing is read, the files the cache
/// does not already hold are fetched in one concurrent round, and the full spec §5
/// update runs; the new digest is recorded only after it succeeds.
pub fn update_from<'a>(
    ctx: &Context,
    store: &'a dyn Store,
    cache: TrustCache,
    allow_cached: bool,
    head: Option<Sha256Digest>,
) -> Result<TrustedUpdater<'a>, OpError> {
    update_inner(ctx, store, cache, allow_cached, head, false)
}

/// [`update_from`] for a verification that only looks targets up: targets roles
/// whose verified local index still matches the trusted metadata are not read,
/// parsed or verified again (issue #13), so a warm verify costs the same at 100 and
/// at 100,000 targets. `trusted().targets(role)` is then `None` for such roles: use
/// the updater's search (`find_target`), which reads the index.
pub fn update_for_verify<'a>(
    ctx: &Context,
    store: &'a dyn Store,
    cache: TrustCache,
    head: Option<Sha256Digest>,
) -> Result<TrustedUpdater<'a>, OpError> {
    update_inner(ctx, store, cache, true, head, true)
}

fn update_inner<'a>(
    ctx: &Context,
    store: &'a dyn Store,
    cache: TrustCache,
    allow_cached: bool,
    head: Option<Sha256Digest>,
    index: bool,
) -> Result<TrustedUpdater<'a>, OpError> {
    let location = store.location().to_string();
    let wrap = |source: ClientError| OpError::Update {
        location: location.clone(),
        source,
    };
    let head = head.ok_or_else(|| OpError::NoRepository {
        location: location.clone(),
    })?;
    let mut cache = cache;
    if allow_cached && cache.listing_digest() == Some(head) {
        let mut up = Updater::new(StoreRemote::new(store), cache, ctx.now, Limits::default())
            .map_err(wrap)?;
        if index {
            up = up.with_target_index();
        }
        match up.load_cached() {
            Ok(true) => {
                tracing::debug!(
                    "warm: warrant.tuf is still {head}; answering from the trusted cache"
                );
                return Ok(up);
            }
            // Anything missing or failing in the cache: do the full update, which
            // reports the real reason if there is one.
            Ok(false) | Err(_) => cache = up.into_local(),
        }
    }
    let listing = store.listing()?.ok_or_else(|| OpError::NoRepository {
        location: location.clone(),
    })?;
    store.prefetch(&files_to_prefetch(&listing, &cache));
    // The recorded digest is left as is until the update succeeds: the cached
    // metadata stays consistent with it, and a failed update must not change it.
    let known = cache.load("timestamp");
    let mut up = Updater::new(
        StoreRemote::with_listing(store, listing).with_known(known),
        cache,
        ctx.now,
        Limits::default(),
    )
    .map_err(wrap)?;
    if index {
        up = up.with_target_index();
    }
    up.refresh().map_err(wrap)?;
    if let Some(listing) = up.remote().listing() {
        let digest = listing.digest;
        up.local_mut().set_listing_digest(&digest)?;
    }
    Ok(up)
}

/// The files a refresh will read that the cache does not already hold, each with
/// its download cap: the newer roots the update may follow (at most
/// `max_root_rotations` of them), timestamp, and of snapshot and top-level targets
/// only the highest-numbered version listed (the one a consistent repository's
/// timestamp names).
///
/// Only what the workflow needs, never "everything listed": a `warrant.tuf` may
/// list some 17,000 extra `N.targets.json` layers within the 4 MiB manifest cap
/// (issue #11 item 6). Anything else the update wants it fetches on demand, capped.
fn files_to_prefetch(listing: &Listing, cache: &TrustCache) -> Vec<(StoredFile, u64)> {
    let limits = Limits::default();
    let cached = |role: &str| cache.load(role).map(|b| Sha256Digest::of(&b));
    let root_version = cache
        .load("root")
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["signed"]["version"].as_u64())
        .unwrap_or(0);
    let newest_root = root_version.saturating_add(limits.max_root_rotations);
    let mut out = Vec::new();
    let mut newest: [Option<(u64, &StoredFile)>; 2] = [None, None];
    for f in listing.files.iter().filter(|f| !f.pending) {
        if f.name == "timestamp.json" {
            if cached("timestamp") != Some(f.digest) {
                out.push((f.clone(), limits.timestamp));
            }
            continue;
        }
        let Some((version, role)) = f
            .name
            .split_once('.')
            .and_then(|(v, rest)| Some((v.parse::<u64>().ok()?, rest)))
        else {
            continue;
        };
        let slot = match role {
            "root.json" => {
                if version > root_version && version <= newest_root {
                    out.push((f.clone(), limits.root));
                }
                continue;
            }
            "snapshot.json" => 0,
            "targets.json" => 1,
            _ => continue,
        };
        if newest[slot].is_none_or(|(v, _)| version > v) {
            newest[slot] = Some((version, f));
        }
    }
    for ((role, cap), newest) in [("snapshot", limits.snapshot), ("targets", limits.targets)]
        .into_iter()
        .zip(newest)
    {
        if let Some((_, f)) = newest
            && cached(role) != Some(f.digest)
        {
            out.push((f.clone(), cap));
        }
    }
    out
}
