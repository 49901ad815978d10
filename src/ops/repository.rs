//! One repository location, opened once: what every command works on.
//!
//! A [`Repository`] owns the store of a location, its trusted cache (anchored in the
//! pin on first contact, the pin checked against it afterwards: [`super::anchor`])
//! and the `warrant.tuf` listing, read at most once per attempt whoever needs it
//! first (the anchor's first root, then the update). It offers the three things
//! commands do with a repository:
//!
//! * bring the trusted state up to date — [`Repository::refresh`] for readers,
//!   [`Repository::refresh_for_verify`] (`verify` itself is in [`super::verify`])
//!   and [`Repository::refresh_for_editing`] for editors;
//! * change it — [`Repository::edit`]: a draft built from the trusted state,
//!   signed, and published with compare-and-swap, confirmation and retries
//!   ([`super::publish`]);
//! * read it untrusted — [`Repository::store`], for `init`, `export` and the
//!   post-publish "did my change survive" checks.
//!
//! Bytes go store → [`StoreRemote`] → updater; what to download ahead of the update
//! is decided in the TUF layer ([`crate::tuf::prefetch`]), not here.

use std::cell::RefCell;

use crate::cache::TrustCache;
use crate::digest::Sha256Digest;
use crate::store::{Listing, Location, Store};
use crate::tuf::client::{ClientError, Limits, LocalState as _, Updater};

use super::anchor::{self, Pin};
pub use super::remote::StoreRemote;
use super::{Context, OpError};

/// An updater that has refreshed (or loaded an unchanged state from the cache).
pub type TrustedUpdater<'a> = Updater<StoreRemote<'a, dyn Store + 'a>, TrustCache>;

/// Whose trusted cache a repository is anchored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Nobody's: the store only (`init`, `export`).
    Untrusted,
    /// The verifier's cache ([`TrustCache::open`]).
    Verifier,
    /// The signer's cache ([`TrustCache::open_for_editing`]): a signer's trust on
    /// first use never becomes a verifier's anchor.
    Editor,
}

/// A repository location opened once (see the module docs).
pub struct Repository<'c> {
    ctx: &'c Context,
    location: Location,
    store: Box<dyn Store>,
    pin: Pin,
    role: Role,
    /// The anchored cache while no updater holds it.
    cache: RefCell<Option<TrustCache>>,
    /// The listing, once read, until an updater takes it or a retry forgets it.
    listing: RefCell<Option<Listing>>,
}

impl std::fmt::Debug for Repository<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.location)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<'c> Repository<'c> {
    /// The store of `location` only, with no trust anchored: for commands that
    /// create a repository or copy it as it is.
    pub fn open_untrusted(ctx: &'c Context, location: &Location) -> Result<Self, OpError> {
        Ok(Self {
            ctx,
            location: location.clone(),
            store: open_store(ctx, location)?,
            pin: Pin::None,
            role: Role::Untrusted,
            cache: RefCell::new(None),
            listing: RefCell::new(None),
        })
    }

    /// Open `location` for reading, anchored in the verifier's cache (seeded from
    /// `pin` on first contact, checked against `pin` afterwards).
    pub fn open(ctx: &'c Context, location: &Location, pin: &Pin) -> Result<Self, OpError> {
        Self::anchored(ctx, location, pin, Role::Verifier)
    }

    /// Open `location` for changing it, anchored in the signer's own cache.
    pub fn open_for_editing(
        ctx: &'c Context,
        location: &Location,
        pin: &Pin,
    ) -> Result<Self, OpError> {
        Self::anchored(ctx, location, pin, Role::Editor)
    }

    /// This repository, opened with [`Repository::open_untrusted`] (e.g. to read
    /// its listing first), now anchored in the verifier's cache.
    pub fn into_verifying(self, pin: &Pin) -> Result<Self, OpError> {
        self.into_anchored(pin, Role::Verifier)
    }

    /// This repository, opened with [`Repository::open_untrusted`] (e.g. to read
    /// the images about to be signed), now anchored for editing.
    pub fn into_editing(self, pin: &Pin) -> Result<Self, OpError> {
        self.into_anchored(pin, Role::Editor)
    }

    fn anchored(
        ctx: &'c Context,
        location: &Location,
        pin: &Pin,
        role: Role,
    ) -> Result<Self, OpError> {
        Self::open_untrusted(ctx, location)?.into_anchored(pin, role)
    }

    fn into_anchored(mut self, pin: &Pin, role: Role) -> Result<Self, OpError> {
        self.pin = pin.clone();
        self.role = role;
        let cache = self.anchor()?;
        self.cache = RefCell::new(Some(cache));
        Ok(self)
    }

    /// Open and anchor this repository's cache.
    fn anchor(&self) -> Result<TrustCache, OpError> {
        let cache = match self.role {
            Role::Untrusted => {
                return Err(OpError::NoTrustAnchor {
                    location: self.location.to_string(),
                });
            }
            Role::Verifier => TrustCache::open(&self.ctx.home, &self.location)?,
            Role::Editor => TrustCache::open_for_editing(&self.ctx.home, &self.location)?,
        };
        anchor::anchor_cache(self.ctx, self, &self.pin, cache)
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The context the repository was opened with.
    pub fn context(&self) -> &'c Context {
        self.ctx
    }

    /// Run `f` on the current listing, reading it from the store only the first
    /// time (it is then shared by the anchor check and the update).
    pub fn with_listing<T>(&self, f: impl FnOnce(&Listing) -> T) -> Result<T, OpError> {
        if self.listing.borrow().is_none() {
            let listing = self.read_listing()?;
            *self.listing.borrow_mut() = Some(listing);
        }
        let listing = self.listing.borrow();
        match listing.as_ref() {
            Some(l) => Ok(f(l)),
            None => Err(self.no_repository()),
        }
    }

    /// Forget the listing read so far (another writer published meanwhile).
    pub fn forget_listing(&self) {
        self.listing.borrow_mut().take();
    }

    fn read_listing(&self) -> Result<Listing, OpError> {
        self.store.listing()?.ok_or_else(|| self.no_repository())
    }

    fn take_listing(&self) -> Result<Listing, OpError> {
        match self.listing.borrow_mut().take() {
            Some(l) => Ok(l),
            None => self.read_listing(),
        }
    }

    fn no_repository(&self) -> OpError {
        OpError::NoRepository {
            location: self.location.to_string(),
        }
    }

    fn update_error(&self, source: ClientError) -> OpError {
        OpError::Update {
            location: self.location.to_string(),
            source,
        }
    }

    /// The anchored cache, anchoring again if an updater took it before.
    fn take_cache(&self) -> Result<TrustCache, OpError> {
        match self.cache.borrow_mut().take() {
            Some(c) => Ok(c),
            None => self.anchor(),
        }
    }

    /// Hand the cache back after an updater is done with it.
    pub fn give_back(&self, up: TrustedUpdater<'_>) {
        *self.cache.borrow_mut() = Some(up.into_local());
    }

    /// Give up the cache (and its lock) until it is needed again: between the
    /// attempts of a publish, so other processes on this host are not kept waiting
    /// while this one backs off.
    pub fn release(&self, up: TrustedUpdater<'_>) {
        let cache = up.into_local();
        cache.forget_all_but_root();
        self.forget_listing();
    }

    /// Bring the trusted state up to date with the store: the warm path (cached
    /// metadata re-verified, nothing else read) when `allow_cached` and
    /// `warrant.tuf` is unchanged, else the full spec §5 update.
    pub fn refresh(&self, allow_cached: bool) -> Result<TrustedUpdater<'_>, OpError> {
        let head = self.store.head_listing()?;
        self.refresh_from(allow_cached, head, false)
    }

    /// [`Repository::refresh`] for a verification that only looks targets up:
    /// targets roles whose verified local index still matches the trusted metadata
    /// are not read, parsed or verified again (issue #13), so a warm verify costs the
    /// same at 100 and at 100,000 targets. `trusted().targets(role)` is then `None`
    /// for such roles: use the updater's search (`find_target`), which reads the
    /// index. `head` is the `warrant.tuf` digest, already asked for together with
    /// the image.
    pub fn refresh_for_verify(
        &self,
        head: Option<Sha256Digest>,
    ) -> Result<TrustedUpdater<'_>, OpError> {
        self.refresh_from(true, head, true)
    }

    /// Bring the trusted state up to date with the store, whose `warrant.tuf` digest
    /// is `head`.
    ///
    /// When `head` equals the digest the cache was verified from, the cached metadata
    /// is re-verified (signatures and expiry against now) without reading anything
    /// else from the store: the warm path. Otherwise the listing is read (unless the
    /// anchor already did), what the update will need is fetched in one concurrent
    /// round, and the full spec §5 update runs; the new digest is recorded only after
    /// it succeeds.
    fn refresh_from(
        &self,
        allow_cached: bool,
        head: Option<Sha256Digest>,
        index: bool,
    ) -> Result<TrustedUpdater<'_>, OpError> {
        let head = head.ok_or_else(|| self.no_repository())?;
        let mut cache = self.take_cache()?;
        if allow_cached && cache.listing_digest() == Some(head) {
            let mut up = Updater::new(
                StoreRemote::new(self.store()),
                cache,
                self.ctx.now,
                Limits::default(),
            )
            .map_err(|e| self.update_error(e))?;
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
        // The recorded digest is left as is until the update succeeds: the cached
        // metadata stays consistent with it, and a failed update must not change it.
        let mut up = self.cold_updater(cache)?;
        if index {
            up = up.with_target_index();
        }
        up.refresh().map_err(|e| self.update_error(e))?;
        if let Some(listing) = up.remote().listing() {
            let digest = listing.digest;
            up.local_mut().set_listing_digest(&digest)?;
        }
        Ok(up)
    }

    /// The full update for a command that is about to change the repository: every
    /// check but expiry (an expired timestamp is exactly what `refresh` repairs).
    pub fn refresh_for_editing(&self) -> Result<TrustedUpdater<'_>, OpError> {
        let cache = self.take_cache()?;
        let mut up = self.cold_updater(cache)?.for_editing();
        up.refresh().map_err(|e| self.update_error(e))?;
        Ok(up)
    }

    /// An updater over the current listing, with what its refresh will read
    /// already on the way.
    fn cold_updater(&self, cache: TrustCache) -> Result<TrustedUpdater<'_>, OpError> {
        let listing = self.take_listing()?;
        let held: Vec<(&str, Option<Sha256Digest>)> = ["timestamp", "snapshot", "targets"]
            .into_iter()
            .map(|role| (role, cache.load(role).map(|b| Sha256Digest::of(&b))))
            .collect();
        // The cached timestamp, when still current, is read but not downloaded.
        let known = cache.load("timestamp");
        let limits = Limits::default();
        let up = Updater::new(
            StoreRemote::with_listing(self.store(), listing).with_known(known),
            cache,
            self.ctx.now,
            limits,
        )
        .map_err(|e| self.update_error(e))?;
        if let Some(listing) = up.remote().listing() {
            let listed = listing
                .files
                .iter()
                .filter(|f| !f.pending)
                .map(|f| (f.name.as_str(), f.digest));
            let held = |role: &str| held.iter().find(|(r, _)| *r == role).and_then(|h| h.1);
            let wanted = crate::tuf::prefetch::wanted(up.trusted(), held, listed, &limits);
            up.remote().prefetch(&wanted);
        }
        Ok(up)
    }
}

/// Open the store for `location` (registry credentials from the docker
/// configuration, timeouts from the context).
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
