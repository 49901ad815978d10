//! Trust anchors: what a verifier pins (a root file, root key ids, a CA), checked on
//! first contact *and* against a trusted cache that already exists.
//!
//! Two rules from issue #11:
//!
//! * **A pin carries its own threshold.** Key-id and CA pins say how many distinct
//!   pinned (or certified) keys must have signed the root, whatever threshold the
//!   root declares: a thief of one key of a 2-of-2 root cannot publish a fresh root
//!   listing only that key with threshold 1 and be believed.
//! * **A pin is never silently ignored.** Once a cache holds a root, a pin given now
//!   must agree with it: the cached root satisfies the key-id/CA pin, or the cached
//!   root chain descends from the pinned root (or from a root that satisfies the
//!   pin). The check is recorded per (pin, cached root) in the cache, so the warm
//!   path costs one small local read; it runs again after every root rotation.

use std::collections::BTreeSet;
use std::path::Path;

use crate::cache::TrustCache;
use crate::digest::Sha256Digest;
use crate::tuf::client::{ClientError, LocalState as _};
use crate::tuf::metadata::Root;
use crate::tuf::trusted::TrustedSet;
use crate::tuf::verify::{Verified, short_id};

use super::repository::Repository;
use super::{Context, OpError, PinFileError};

pub use crate::pin::{CaPin, KeyIdPin, MIN_KEYID_PIN, Pin, PinError};

/// Largest root.json (pinned or fetched) read here.
pub const MAX_ROOT_FILE: u64 = 512_000;

/// Longest root chain walked to relate a pin to a cached root.
const MAX_CHAIN_WALK: u64 = 1024;

/// Read a pinned file (root.json or CA), refusing anything but a regular file of
/// at most [`MAX_ROOT_FILE`] bytes (a FIFO would block forever).
pub fn read_pin_file(path: &Path) -> Result<Vec<u8>, OpError> {
    crate::fsutil::read_regular(path, MAX_ROOT_FILE).map_err(|e| OpError::PinFile {
        path: path.to_owned(),
        source: e.into(),
    })
}

/// The repository's first root (`1.root.json`), from the listing the repository
/// shares with its update (read once on first contact).
fn first_root(repo: &Repository<'_>) -> Result<Vec<u8>, OpError> {
    let file = repo
        .with_listing(|l| l.get("1.root.json").cloned())?
        .ok_or_else(|| OpError::NoRepository {
            location: repo.location().to_string(),
        })?;
    Ok(repo.store().read_file(&file, MAX_ROOT_FILE)?)
}

fn trusted_root(bytes: Vec<u8>, ctx: &Context, location: &str) -> Result<TrustedSet, OpError> {
    TrustedSet::new(bytes, ctx.now).map_err(|e| OpError::Update {
        location: location.to_owned(),
        source: ClientError::Trust(e),
    })
}

/// Make sure `cache` (of `repo`'s location) holds a trusted root, seeding it from
/// `pin` on first use, and checking `pin` against it when it already holds one.
pub(super) fn anchor_cache(
    ctx: &Context,
    repo: &Repository<'_>,
    pin: &Pin,
    mut cache: TrustCache,
) -> Result<TrustCache, OpError> {
    let loc = repo.location().to_string();
    if let Some(cached) = cache.load("root") {
        check_against_cache(ctx, repo, pin, &cache, cached)?;
        return Ok(cache);
    }
    let bytes = match pin {
        Pin::None => return Err(OpError::NoTrustAnchor { location: loc }),
        Pin::RootFile(path) => {
            let bytes = read_pin_file(path)?;
            TrustedSet::new(bytes.clone(), ctx.now).map_err(|e| OpError::PinFile {
                path: path.clone(),
                source: e.into(),
            })?;
            bytes
        }
        Pin::KeyIds(_) | Pin::Ca(_) => {
            let bytes = first_root(repo)?;
            let set = trusted_root(bytes.clone(), ctx, &loc)?;
            pin_accepts(ctx, pin, set.root(), &loc)?;
            bytes
        }
        Pin::FirstUse => {
            let bytes = first_root(repo)?;
            trusted_root(bytes.clone(), ctx, &loc)?;
            bytes
        }
    };
    cache.persist("root", &bytes).map_err(|e| OpError::Update {
        location: loc,
        source: e.into(),
    })?;
    // The seed agrees with its pin by construction: record it, so the next verify
    // with the same pin does not re-check (nor write to the cache).
    if let Some(fp) = fingerprint(pin)? {
        let _ = cache.record_anchor_check(&fp, &Sha256Digest::of(&bytes));
    }
    Ok(cache)
}

/// A key-id or CA pin accepts `root` (already verified against its own threshold).
fn pin_accepts(
    ctx: &Context,
    pin: &Pin,
    root: &Verified<Root>,
    location: &str,
) -> Result<(), OpError> {
    match pin {
        Pin::KeyIds(p) => {
            let signed = signed_by_pinned(p, root);
            if signed < p.threshold() {
                return Err(OpError::PinMismatch {
                    location: location.to_owned(),
                    what: "root key ids",
                    detail: format!(
                        "{signed} distinct pinned key(s) signed root v{}, the pin requires {}",
                        root.version,
                        p.threshold()
                    ),
                });
            }
            Ok(())
        }
        Pin::Ca(p) => check_root_certificates(p, root, location, ctx.now.into()),
        Pin::None | Pin::FirstUse | Pin::RootFile(_) => Ok(()),
    }
}

/// How many distinct keys, each matching a different pinned id (recomputed from the
/// key material; ids declared in the root are only labels), signed `root`.
fn signed_by_pinned(pin: &KeyIdPin, root: &Verified<Root>) -> u64 {
    let mut used_pins: BTreeSet<&String> = BTreeSet::new();
    let mut keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    for declared in &root.result().signed {
        let Some(public) = root.keys.get(declared).and_then(|k| k.to_public().ok()) else {
            continue;
        };
        let computed = public.key_id();
        let Some(p) = pin
            .ids()
            .iter()
            .find(|p| computed.0.starts_with(p.as_str()) && !used_pins.contains(p))
        else {
            continue;
        };
        if keys.insert(public.identity()) {
            used_pins.insert(p);
        }
    }
    used_pins.len() as u64
}

/// Distinct root keys that signed `root` and hold chains, valid now, to the pinned
/// CA: at least the pin's threshold and the root's own.
fn check_root_certificates(
    pin: &CaPin,
    root: &Verified<Root>,
    location: &str,
    now: std::time::SystemTime,
) -> Result<(), OpError> {
    use crate::crypto::x509;
    let ca_pem = String::from_utf8(read_pin_file(pin.path())?).map_err(|_| OpError::PinFile {
        path: pin.path().to_owned(),
        source: PinFileError::NotPem,
    })?;
    let ca = x509::parse(&ca_pem).map_err(|e| OpError::PinFile {
        path: pin.path().to_owned(),
        source: e.into(),
    })?;
    let declared = root
        .roles
        .get("root")
        .map_or(u64::MAX, |r| r.threshold.get());
    let needed = declared.max(pin.threshold());
    let mut good: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut reasons = Vec::new();
    for keyid in &root.result().signed {
        let Some(key) = root.keys.get(keyid) else {
            continue;
        };
        let short = short_id(&keyid.0);
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
        let result = key
            .to_public()
            .map_err(|e| x509::X509Error::Malformed(e.to_string()))
            .and_then(|public| {
                let certs = chain
                    .iter()
                    .map(|p| x509::parse(p))
                    .collect::<Result<Vec<_>, _>>()?;
                x509::verify_chain(&certs, &ca, &public, now)?;
                Ok(public)
            });
        match result {
            Ok(public) => {
                good.insert(public.identity());
            }
            Err(e) => reasons.push(format!("root key {short}: {e}")),
        }
    }
    if good.len() as u64 >= needed {
        return Ok(());
    }
    reasons.push(format!(
        "{} distinct certified key(s) signed, {needed} required",
        good.len()
    ));
    Err(OpError::CertificatesRejected {
        location: location.to_owned(),
        ca: pin.path().to_owned(),
        reasons: reasons.join("; "),
    })
}

/// What identifies a pin in the cache's record of checks already done.
fn fingerprint(pin: &Pin) -> Result<Option<String>, OpError> {
    let text = match pin {
        Pin::None | Pin::FirstUse => return Ok(None),
        Pin::RootFile(path) => format!("root-file {}", Sha256Digest::of(&read_pin_file(path)?)),
        Pin::KeyIds(p) => {
            let mut ids = p.ids().to_vec();
            ids.sort();
            format!("key-ids {} {}", p.threshold(), ids.join(","))
        }
        Pin::Ca(p) => format!(
            "ca {} {}",
            p.threshold(),
            Sha256Digest::of(&read_pin_file(p.path())?)
        ),
    };
    Ok(Some(Sha256Digest::of(text.as_bytes()).to_string()))
}

/// A cache already holds `cached` as its root: the pin must agree with it.
fn check_against_cache(
    ctx: &Context,
    repo: &Repository<'_>,
    pin: &Pin,
    cache: &TrustCache,
    cached: Vec<u8>,
) -> Result<(), OpError> {
    let Some(fp) = fingerprint(pin)? else {
        return Ok(());
    };
    let cached_digest = Sha256Digest::of(&cached);
    if cache.anchor_checked(&fp, &cached_digest) {
        return Ok(());
    }
    let loc = repo.location().to_string();
    let conflict = |detail: String| OpError::PinConflict {
        location: loc.clone(),
        cache: cache.dir().to_owned(),
        detail,
    };
    let cached_set = trusted_root(cached.clone(), ctx, &loc)?;
    let cached_version = cached_set.root().version.get();
    match pin {
        Pin::KeyIds(_) | Pin::Ca(_) => {
            if pin_accepts(ctx, pin, cached_set.root(), &loc).is_err() {
                // Not the current root: the chain must start at a root the pin
                // accepts (the store's first, as on first contact).
                let first = first_root(repo)?;
                let first_set = trusted_root(first.clone(), ctx, &loc)?;
                pin_accepts(ctx, pin, first_set.root(), &loc)
                    .map_err(|e| conflict(e.to_string()))?;
                let reached = walk(ctx, repo, first, cached_version).map_err(|e| {
                    e.into_op(|e| {
                        conflict(format!(
                            "no root chain from v1 to the cached v{cached_version}: {e}"
                        ))
                    })
                })?;
                if !same_root(&reached, &cached) {
                    return Err(conflict(format!(
                        "the repository's root v{cached_version} differs from the cached one"
                    )));
                }
            }
        }
        Pin::RootFile(path) => {
            let pinned = read_pin_file(path)?;
            let pinned_set =
                TrustedSet::new(pinned.clone(), ctx.now).map_err(|e| OpError::PinFile {
                    path: path.clone(),
                    source: e.into(),
                })?;
            let pinned_version = pinned_set.root().version.get();
            let (from, to, target) = match pinned_version.cmp(&cached_version) {
                std::cmp::Ordering::Equal => (None, pinned_version, &cached),
                std::cmp::Ordering::Less => (Some(pinned.clone()), cached_version, &cached),
                std::cmp::Ordering::Greater => (Some(cached.clone()), pinned_version, &pinned),
            };
            let reached = match from {
                None => pinned.clone(),
                Some(start) => {
                    walk(ctx, repo, start, to).map_err(|e| {
                        e.into_op(|e| {
                            conflict(format!(
                                "no root chain between the pinned v{pinned_version} and the cached v{cached_version}: {e}"
                            ))
                        })
                    })?
                }
            };
            if !same_root(&reached, target) {
                return Err(conflict(format!(
                    "the pinned root v{pinned_version} is not in the chain of the cached root v{cached_version}"
                )));
            }
        }
        Pin::None | Pin::FirstUse => {}
    }
    // A failure to record only costs a re-check next time.
    let _ = cache.record_anchor_check(&fp, &cached_digest);
    Ok(())
}

/// Why a root chain could not be walked.
#[derive(Debug, thiserror::Error)]
enum WalkError {
    #[error("the repository has no {0}")]
    Missing(String),
    #[error("{0}")]
    Trust(#[from] crate::tuf::trusted::TrustError),
    #[error("a chain of {0} root versions is longer than warrant walks ({MAX_CHAIN_WALK})")]
    TooLong(u64),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Listing(Box<OpError>),
}

impl WalkError {
    /// Registry trouble stays a registry error (exit 3); anything else is the pin
    /// and the cache disagreeing.
    fn into_op(self, conflict: impl FnOnce(Self) -> OpError) -> OpError {
        match self {
            Self::Store(e) => e.into(),
            Self::Listing(e) => *e,
            other => conflict(other),
        }
    }
}

/// From the root `start`, follow the store's roots (each signed by its
/// predecessor's threshold and its own) up to `version`; the bytes of that root.
fn walk(
    ctx: &Context,
    repo: &Repository<'_>,
    start: Vec<u8>,
    version: u64,
) -> Result<Vec<u8>, WalkError> {
    let mut set = TrustedSet::new(start.clone(), ctx.now)?;
    let from = set.root().version.get();
    if version.saturating_sub(from) > MAX_CHAIN_WALK {
        return Err(WalkError::TooLong(version - from));
    }
    let mut bytes = start;
    for v in from + 1..=version {
        let name = format!("{v}.root.json");
        let file = repo
            .with_listing(|l| l.get(&name).cloned())
            .map_err(|e| WalkError::Listing(Box::new(e)))?
            .ok_or(WalkError::Missing(name))?;
        bytes = repo.store().read_file(&file, MAX_ROOT_FILE)?;
        set.update_root(bytes.clone())?;
    }
    Ok(bytes)
}

/// Two verified roots are the same root when their `signed` parts are equal
/// (signatures may differ: a root may gain signatures after publication).
fn same_root(a: &[u8], b: &[u8]) -> bool {
    let signed = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .map(|v| v["signed"].clone())
    };
    matches!((signed(a), signed(b)), (Some(x), Some(y)) if x == y && !x.is_null())
}
