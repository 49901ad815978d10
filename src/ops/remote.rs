//! The store as a TUF remote: TUF file names served from a store's `warrant.tuf`
//! listing, so bytes go store → remote → updater without the commands carrying them.

use crate::store::{Listing, Store, StoreError, StoreErrorKind};
use crate::tuf::client::{FetchError, FetchErrorKind, MetaName, Remote};

/// Serves TUF file names from a store's `warrant.tuf` listing.
pub struct StoreRemote<'a, S: ?Sized> {
    store: &'a S,
    listing: Option<Listing>,
    /// Bytes already at hand (the cached timestamp), by digest: a listed file with
    /// that digest is these very bytes, so it is not downloaded again.
    known: Vec<(crate::digest::Sha256Digest, Vec<u8>)>,
}

impl<'a, S: Store + ?Sized> StoreRemote<'a, S> {
    /// A remote over `store`, reading the listing on first use.
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            listing: None,
            known: Vec::new(),
        }
    }

    /// A remote over an already-read listing.
    pub fn with_listing(store: &'a S, listing: Listing) -> Self {
        Self {
            store,
            listing: Some(listing),
            known: Vec::new(),
        }
    }

    /// Serve a listed file whose digest is that of `bytes` from `bytes` (content
    /// addressing makes them the same file): e.g. the cached timestamp when it is
    /// still the current one, which the update must read but need not download.
    pub fn with_known(mut self, bytes: Option<Vec<u8>>) -> Self {
        if let Some(b) = bytes {
            self.known.push((crate::digest::Sha256Digest::of(&b), b));
        }
        self
    }

    /// The listing the files came from, if it was read.
    pub fn listing(&self) -> Option<&Listing> {
        self.listing.as_ref()
    }

    fn ensure_listing(&mut self) -> Result<&Listing, FetchError> {
        if self.listing.is_none() {
            let listing = self.store.listing().map_err(fetch_error)?;
            let listing = listing.ok_or_else(|| FetchError {
                kind: FetchErrorKind::NotFound,
                message: format!("{}: no warrant.tuf", self.store.location()),
            })?;
            self.listing = Some(listing);
        }
        self.listing.as_ref().ok_or_else(|| FetchError {
            kind: FetchErrorKind::Unavailable,
            message: "listing unavailable".into(),
        })
    }
}

fn fetch_error(e: StoreError) -> FetchError {
    let kind = match e.kind {
        StoreErrorKind::NotFound => FetchErrorKind::NotFound,
        StoreErrorKind::TooLarge => FetchErrorKind::TooLarge,
        StoreErrorKind::DigestMismatch | StoreErrorKind::Malformed => FetchErrorKind::Integrity,
        _ => FetchErrorKind::Unavailable,
    };
    FetchError {
        kind,
        message: e.to_string(),
    }
}

impl<S: Store + ?Sized> Remote for StoreRemote<'_, S> {
    fn fetch(&mut self, name: &MetaName, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let name = name.to_string();
        let name = name.as_str();
        let location = self.store.location().to_string();
        let listing = self.ensure_listing()?;
        let file = listing.get(name).cloned().ok_or_else(|| FetchError {
            kind: FetchErrorKind::NotFound,
            message: format!("{location}: {name} is not in warrant.tuf"),
        })?;
        if let Some((_, b)) = self
            .known
            .iter()
            .find(|(d, b)| *d == file.digest && b.len() as u64 <= max_bytes)
        {
            return Ok(b.clone());
        }
        self.store.read_file(&file, max_bytes).map_err(fetch_error)
    }
}

impl<S: Store + ?Sized> StoreRemote<'_, S> {
    /// Ask the store to download `wanted` (listed names with their caps, as
    /// [`crate::tuf::prefetch::wanted`] decides) in one concurrent round; later
    /// fetches of them are then answered locally. Unlisted names are skipped.
    pub fn prefetch(&self, wanted: &[(&str, u64)]) {
        let Some(listing) = self.listing.as_ref() else {
            return;
        };
        let files: Vec<_> = wanted
            .iter()
            .filter_map(|(name, cap)| Some((listing.get(name)?.clone(), *cap)))
            .collect();
        if !files.is_empty() {
            self.store.prefetch(&files);
        }
    }
}
