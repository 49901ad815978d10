//! All or nothing: the import builds the whole warrant repository (root, targets
//! with every delegation and tag, snapshot, timestamp) in a private staging layout
//! under `$WARRANT_HOME/staging/`, through the ordinary operations, and only then
//! copies it to the destination with **one** publish of `warrant.tuf` (blobs first,
//! the manifest last). A failure anywhere before that publish — a key that will not
//! unlock, a role that cannot be signed, a registry error — leaves the destination
//! as it was, so the import can simply be run again.

use std::path::PathBuf;

use crate::cache::TrustCache;
use crate::digest::Sha256Digest;
use crate::ops::trust::open_store;
use crate::ops::{Context, OpError};
use crate::store::{Listing, Location, NewFile, StoreError, StoreErrorKind};

use super::NotaryError;

/// A staging repository, removed (with the trusted state its operations cached)
/// when dropped.
#[derive(Debug)]
pub struct Staging {
    _dir: tempfile::TempDir,
    home: PathBuf,
    location: Location,
}

impl Staging {
    /// A new, empty staging directory in `ctx.home`.
    pub fn new(ctx: &Context) -> Result<Self, NotaryError> {
        let base = ctx.home.join("staging");
        let input = |e: std::io::Error| NotaryError::Input {
            path: base.clone(),
            detail: format!("cannot create a staging directory: {e}"),
        };
        std::fs::create_dir_all(&base).map_err(input)?;
        let dir = tempfile::Builder::new()
            .prefix("import-")
            .tempdir_in(&base)
            .map_err(input)?;
        let path = std::path::absolute(dir.path()).map_err(input)?;
        Ok(Self {
            _dir: dir,
            home: ctx.home.clone(),
            location: Location::Layout(path),
        })
    }

    /// Where the operations write.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Every file of the staged repository, with its bytes and pending flag.
    fn files(&self, ctx: &Context) -> Result<(Listing, Vec<NewFile>), NotaryError> {
        let store = open_store(ctx, &self.location)?;
        let listing =
            store
                .listing()
                .map_err(OpError::from)?
                .ok_or_else(|| OpError::NoRepository {
                    location: self.location.to_string(),
                })?;
        let mut files = Vec::with_capacity(listing.files.len());
        for f in &listing.files {
            files.push(NewFile {
                name: f.name.clone(),
                bytes: store
                    .read_file(f, crate::store::artifact::MAX_FILE_BYTES)
                    .map_err(OpError::from)?,
                pending: f.pending,
            });
        }
        Ok((listing, files))
    }

    /// Publish the staged repository to `to` in one publish (refused when `to`
    /// already has one), then trust it in this home as `init` does. Returns the
    /// new `warrant.tuf` digest.
    pub fn publish_to(&self, ctx: &Context, to: &Location) -> Result<Sha256Digest, NotaryError> {
        let (_, files) = self.files(ctx)?;
        let dest = open_store(ctx, to)?;
        ensure_empty(dest.as_ref(), to)?;
        let digest = dest.publish(&files, None).map_err(OpError::from)?;
        if !dest.publish_is_atomic() {
            // A registry may acknowledge a manifest it did not store (issue #17):
            // report the import only once the registry serves it.
            let now = dest.head_listing().map_err(|e| OpError::Unconfirmed {
                location: to.to_string(),
                published: digest.to_string(),
                source: Box::new(OpError::Store(e)),
            })?;
            if now != Some(digest) {
                return Err(OpError::Store(StoreError::new(
                    StoreErrorKind::Io,
                    to,
                    "warrant.tuf",
                    format!(
                        "the registry acknowledged the imported repository {digest} but serves {}; nothing was imported, run the import again",
                        now.map_or_else(|| "none".to_owned(), |d| d.to_string())
                    ),
                ))
                .into());
            }
        }
        seed_caches(ctx, to, &files, &digest)?;
        Ok(digest)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // The operations cached what they verified in the staging layout: that
        // state names a directory that is about to disappear.
        let name = self.location.cache_dir_name();
        for base in ["trust", "trust-signer"] {
            let _ = std::fs::remove_dir_all(self.home.join(base).join(&name));
        }
        // `_dir` removes the staging directory itself.
    }
}

/// `to` must not have a TUF repository yet (the import never overwrites one).
pub fn ensure_empty(store: &dyn crate::store::Store, to: &Location) -> Result<(), NotaryError> {
    if store.head_listing().map_err(OpError::from)?.is_some() {
        return Err(OpError::AlreadyInitialized {
            location: to.to_string(),
        }
        .into());
    }
    Ok(())
}

/// The newest non-pending file of a top-level role (`timestamp.json` has no
/// version in its name).
fn newest<'f>(files: &'f [NewFile], role: &str) -> Option<&'f NewFile> {
    if role == "timestamp" {
        return files.iter().find(|f| f.name == "timestamp.json");
    }
    files
        .iter()
        .filter(|f| !f.pending)
        .filter_map(|f| Some((crate::ops::edit::version_of(&f.name, role)?, f)))
        .max_by_key(|(v, _)| *v)
        .map(|(_, f)| f)
}

/// This home made the repository: its signer and verifier caches start at what it
/// published, as after `warrant init` (the bytes are verified again on every load).
fn seed_caches(
    ctx: &Context,
    to: &Location,
    files: &[NewFile],
    digest: &Sha256Digest,
) -> Result<(), NotaryError> {
    for editing in [true, false] {
        let mut cache = if editing {
            TrustCache::open_for_editing(&ctx.home, to)
        } else {
            TrustCache::open(&ctx.home, to)
        }
        .map_err(OpError::from)?;
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let Some(f) = newest(files, role) else {
                continue;
            };
            use crate::tuf::client::LocalState as _;
            cache.persist(role, &f.bytes).map_err(|e| OpError::Update {
                location: to.to_string(),
                source: e.into(),
            })?;
        }
        cache.set_listing_digest(digest).map_err(OpError::from)?;
    }
    Ok(())
}
