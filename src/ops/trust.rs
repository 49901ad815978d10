//! Anchoring trust (cache or pin) and running the TUF update against a store.

use std::path::PathBuf;

use crate::cache::TrustCache;
use crate::crypto::KeyId;
use crate::store::{Location, Store, StoreError};
use crate::tuf::client::{ClientError, Limits, LocalState as _, Updater};
use crate::tuf::trusted::TrustedSet;

use super::{Context, OpError, StoreRemote};

/// What a verifier trusts on first use of a repository.
#[derive(Debug, Clone, Default)]
pub enum Pin {
    /// Nothing: the trusted cache must already hold a root.
    #[default]
    None,
    /// A root.json file obtained out of band.
    RootFile(PathBuf),
    /// Root key ids: the repository's `1.root.json` must be signed by a threshold of
    /// these keys.
    KeyIds(Vec<String>),
    /// Trust whatever `1.root.json` the store holds (signers bootstrapping; never for
    /// verification unless a policy says `tofu = true`).
    FirstUse,
}

/// Open the store for `location`.
pub fn open_store(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    match location {
        Location::Layout(_) => Ok(Box::new(crate::store::layout::LayoutStore::open(
            location.clone(),
        )?)),
    }
}

const MAX_ROOT_FILE: u64 = 512_000;

fn read_pin_file(path: &PathBuf) -> Result<Vec<u8>, OpError> {
    use std::io::Read as _;
    let err = |detail: String| OpError::PinFile {
        path: path.clone(),
        detail,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut buf = Vec::new();
    f.take(MAX_ROOT_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    if buf.len() as u64 > MAX_ROOT_FILE {
        return Err(err("larger than 512 kB".into()));
    }
    Ok(buf)
}

fn first_root(store: &dyn Store) -> Result<Vec<u8>, OpError> {
    let location = store.location().to_string();
    let listing = store.listing()?.ok_or_else(|| OpError::NoRepository {
        location: location.clone(),
    })?;
    let file = listing
        .get("1.root.json")
        .ok_or(OpError::NoRepository { location })?;
    Ok(store.read_file(file, MAX_ROOT_FILE)?)
}

/// Open the trusted cache of `store`'s repository and make sure it holds a trusted
/// root, seeding it from `pin` on first use. A pin is ignored once the cache holds a
/// root: from then on the root rotation chain decides.
pub fn anchor(ctx: &Context, store: &dyn Store, pin: &Pin) -> Result<TrustCache, OpError> {
    let location = store.location();
    let mut cache = TrustCache::open(&ctx.home, location)?;
    if cache.has_root() {
        return Ok(cache);
    }
    let loc = || location.to_string();
    let bytes = match pin {
        Pin::None => return Err(OpError::NoTrustAnchor { location: loc() }),
        Pin::RootFile(path) => {
            let bytes = read_pin_file(path)?;
            TrustedSet::new(bytes.clone(), ctx.now).map_err(|e| OpError::PinFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            bytes
        }
        Pin::KeyIds(ids) => {
            let bytes = first_root(store)?;
            let set = TrustedSet::new(bytes.clone(), ctx.now).map_err(|e| OpError::Update {
                location: loc(),
                source: ClientError::Trust(e),
            })?;
            let root = set.root();
            let signed_by_pinned = root
                .result()
                .signed
                .iter()
                .filter(|k: &&KeyId| {
                    ids.iter()
                        .any(|p| p.len() >= 8 && k.0.starts_with(p.as_str()))
                })
                .count() as u64;
            let threshold = root
                .roles
                .get("root")
                .map_or(u64::MAX, |r| r.threshold.get());
            if signed_by_pinned < threshold {
                return Err(OpError::PinMismatch {
                    location: loc(),
                    what: "root key ids",
                });
            }
            bytes
        }
        Pin::FirstUse => {
            let bytes = first_root(store)?;
            TrustedSet::new(bytes.clone(), ctx.now).map_err(|e| OpError::Update {
                location: loc(),
                source: ClientError::Trust(e),
            })?;
            bytes
        }
    };
    cache.persist("root", &bytes).map_err(|e| OpError::Update {
        location: loc(),
        source: e.into(),
    })?;
    Ok(cache)
}

/// An updater that has refreshed (or loaded an unchanged state from the cache).
pub type TrustedUpdater<'a> = Updater<StoreRemote<'a, dyn Store + 'a>, TrustCache>;

/// Bring the trusted state up to date with `store`.
///
/// When the `warrant.tuf` digest equals the one the cache was verified from, the
/// cached metadata is re-verified (signatures and expiry against now) without
/// reading anything else from the store: the warm path. Otherwise the full spec §5
/// update runs and the new digest is recorded only after it succeeds.
pub fn update<'a>(
    ctx: &Context,
    store: &'a dyn Store,
    cache: TrustCache,
    allow_cached: bool,
) -> Result<TrustedUpdater<'a>, OpError> {
    let location = store.location().to_string();
    let wrap = |source: ClientError| OpError::Update {
        location: location.clone(),
        source,
    };
    let head = store.head_listing()?.ok_or_else(|| OpError::NoRepository {
        location: location.clone(),
    })?;
    let mut cache = cache;
    if allow_cached && cache.listing_digest() == Some(head) {
        let mut up = Updater::new(StoreRemote::new(store), cache, ctx.now, Limits::default())
            .map_err(wrap)?;
        match up.load_cached() {
            Ok(true) => return Ok(up),
            // Anything missing or failing in the cache: do the full update, which
            // reports the real reason if there is one.
            Ok(false) | Err(_) => cache = up.into_local(),
        }
    }
    // The recorded digest is left as is until the update succeeds: the cached
    // metadata stays consistent with it, and a failed update must not change it.
    let mut up =
        Updater::new(StoreRemote::new(store), cache, ctx.now, Limits::default()).map_err(wrap)?;
    up.refresh().map_err(wrap)?;
    if let Some(listing) = up.remote().listing() {
        let digest = listing.digest;
        up.local_mut().set_listing_digest(&digest)?;
    }
    Ok(up)
}
