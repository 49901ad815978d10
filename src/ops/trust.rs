//! Anchoring trust (cache or pin) and running the TUF update against a store.

use std::path::PathBuf;

use crate::cache::TrustCache;
use crate::digest::Sha256Digest;
use crate::store::{Listing, Location, Store, StoredFile};
use crate::tuf::client::{ClientError, Limits, LocalState, Updater};
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
    /// Trust the repository's `1.root.json` when a threshold of its root keys signed
    /// it *and* carry valid certificate chains to this CA (PEM file).
    Ca(PathBuf),
}

/// Open the store for `location`.
pub fn open_store(ctx: &Context, location: &Location) -> Result<Box<dyn Store>, OpError> {
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
            Ok(Box::new(crate::store::registry::RegistryStore::open(
                location.clone(),
                &opts,
            )?))
        }
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
    anchor_cache(
        ctx,
        store,
        pin,
        TrustCache::open(&ctx.home, store.location())?,
    )
}

/// [`anchor`] for commands that change the repository, in their own cache
/// ([`TrustCache::open_for_editing`]).
pub fn anchor_for_editing(
    ctx: &Context,
    store: &dyn Store,
    pin: &Pin,
) -> Result<TrustCache, OpError> {
    anchor_cache(
        ctx,
        store,
        pin,
        TrustCache::open_for_editing(&ctx.home, store.location())?,
    )
}

fn anchor_cache(
    ctx: &Context,
    store: &dyn Store,
    pin: &Pin,
    cache: TrustCache,
) -> Result<TrustCache, OpError> {
    let location = store.location();
    let mut cache = cache;
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
            // Key ids declared in the (untrusted) root are just labels: recompute each
            // signer's id from its key material and match pins against that, each pin
            // counting once. Prefixes must carry 128 bits.
            let mut matched: std::collections::BTreeSet<&String> = Default::default();
            for declared in &root.result().signed {
                let Some(computed) = root
                    .keys
                    .get(declared)
                    .and_then(|k| k.to_public().ok())
                    .map(|k| k.key_id())
                else {
                    continue;
                };
                if let Some(p) = ids.iter().find(|p| {
                    p.len() >= 32 && computed.0.starts_with(p.as_str()) && !matched.contains(p)
                }) {
                    matched.insert(p);
                }
            }
            let signed_by_pinned = matched.len() as u64;
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
        Pin::Ca(ca_path) => {
            let bytes = first_root(store)?;
            let set = TrustedSet::new(bytes.clone(), ctx.now).map_err(|e| OpError::Update {
                location: loc(),
                source: ClientError::Trust(e),
            })?;
            check_root_certificates(ca_path, set.root(), &loc(), ctx.now.into())?;
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

/// A threshold of `root`'s root keys must have signed it and hold certificate
/// chains, valid now, to the CA in `ca_path`.
fn check_root_certificates(
    ca_path: &PathBuf,
    root: &crate::tuf::verify::Verified<crate::tuf::metadata::Root>,
    location: &str,
    now: std::time::SystemTime,
) -> Result<(), OpError> {
    use crate::crypto::x509;
    let ca_pem = String::from_utf8(read_pin_file(ca_path)?).map_err(|_| OpError::PinFile {
        path: ca_path.clone(),
        detail: "not PEM text".into(),
    })?;
    let ca = x509::parse(&ca_pem).map_err(|e| OpError::PinFile {
        path: ca_path.clone(),
        detail: e.to_string(),
    })?;
    let threshold = root
        .roles
        .get("root")
        .map_or(u64::MAX, |r| r.threshold.get());
    let mut good = 0u64;
    let mut reasons = Vec::new();
    for keyid in &root.result().signed {
        let Some(key) = root.keys.get(keyid) else {
            continue;
        };
        let short = crate::tuf::verify::short_id(&keyid.0);
        let chain: Vec<String> = key
            .unrecognized
            .get(x509::CHAIN_FIELD)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if chain.is_empty() {
            reasons.push(format!("root key {short} has no certificate"));
            continue;
        }
        let result = chain
            .iter()
            .map(|p| x509::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|certs| {
                let public = key
                    .to_public()
                    .map_err(|e| x509::X509Error::Malformed(e.to_string()))?;
                x509::verify_chain(&certs, &ca, &public, now)
            });
        match result {
            Ok(()) => good += 1,
            Err(e) => reasons.push(format!("root key {short}: {e}")),
        }
    }
    if good >= threshold {
        return Ok(());
    }
    Err(OpError::CertificatesRejected {
        location: location.to_owned(),
        ca: ca_path.clone(),
        reasons: reasons.join("; "),
    })
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
    let mut up = Updater::new(
        StoreRemote::with_listing(store, listing),
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
        match up.load_cached() {
            Ok(true) => return Ok(up),
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
    let mut up = Updater::new(
        StoreRemote::with_listing(store, listing),
        cache,
        ctx.now,
        Limits::default(),
    )
    .map_err(wrap)?;
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
