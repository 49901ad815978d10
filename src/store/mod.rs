//! Where TUF metadata and images live: the `Store` seam.
//!
//! A store knows nothing of TUF semantics. It moves *named, content-addressed files*
//! (the TUF metadata, one OCI blob each, listed by the `warrant.tuf` artifact manifest
//! of DESIGN §3) and resolves image references to the descriptor of the manifest they
//! point at. The TUF client decides which files it needs and how large they may be;
//! the store enforces the size cap it is given and checks every digest while reading.
//!
//! Backends: [`layout::LayoutStore`] (an OCI image layout directory, `oci:PATH`) and
//! [`registry::RegistryStore`] (any OCI distribution registry).

pub mod artifact;
pub mod auth;
pub mod layout;
pub mod reference;
pub mod registry;

use std::fmt;

use crate::digest::Sha256Digest;

pub use reference::{ImageRef, Location, ParseRefError};

/// The tag under which the TUF repository lives in the image's own repository.
pub const TUF_TAG: &str = "warrant.tuf";

/// Which artifact of the image's repository a store reads and writes: the TUF
/// repository ([`ArtifactKind::TUF`], all a verifier ever reads) or the key
/// requests kept beside it ([`ArtifactKind::KEY_REQUESTS`], issue #15), which no
/// verifier reads. Both are the same shape (one OCI artifact under a fixed tag,
/// one layer per named JSON file), so they share the listing, the bounded reads and
/// the guarded publish; their tags and types differ, so neither can be mistaken for
/// the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactKind {
    /// The tag in the image's repository.
    pub tag: &'static str,
    /// The manifest's `artifactType`.
    pub artifact_type: &'static str,
    /// The `mediaType` of every layer (one file each).
    pub file_media_type: &'static str,
}

impl ArtifactKind {
    /// The TUF repository (DESIGN §3).
    pub const TUF: ArtifactKind = ArtifactKind {
        tag: TUF_TAG,
        artifact_type: artifact::TUF_ARTIFACT_TYPE,
        file_media_type: artifact::TUF_METADATA_MEDIA_TYPE,
    };
    /// Open key requests (`warrant key request`): untrusted proposals an
    /// administrator reviews; outside everything a verifier reads.
    pub const KEY_REQUESTS: ArtifactKind = ArtifactKind {
        tag: "warrant.requests",
        artifact_type: "application/vnd.warrant.key-requests.v1",
        file_media_type: "application/vnd.warrant.key-request.v1+json",
    };
}

/// Largest OCI manifest or `index.json` we read (DESIGN §3: manifest ≤ 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The descriptor of an image manifest (or index) as the store serves it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `mediaType` of the manifest, e.g. `application/vnd.oci.image.manifest.v1+json`.
    pub media_type: String,
    /// Digest of the manifest bytes exactly as served.
    pub digest: Sha256Digest,
    /// Length of the manifest bytes.
    pub size: u64,
}

/// One metadata file listed in the `warrant.tuf` artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The TUF file name (`1.root.json`, `timestamp.json`, `3.targets.json`, ...),
    /// from the layer's `org.opencontainers.image.title` annotation.
    pub name: String,
    /// Digest of the blob.
    pub digest: Sha256Digest,
    /// Size of the blob as the manifest declares it.
    pub size: u64,
    /// Not yet at threshold (`vnd.warrant.pending=true`); invisible to verifiers.
    pub pending: bool,
}

/// The contents of the `warrant.tuf` artifact: which metadata files exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Digest of the artifact manifest itself (what the cache remembers).
    pub digest: Sha256Digest,
    /// Every metadata file, in manifest order.
    pub files: Vec<StoredFile>,
}

impl Listing {
    /// The non-pending file called `name`, if listed.
    pub fn get(&self, name: &str) -> Option<&StoredFile> {
        self.files.iter().find(|f| f.name == name && !f.pending)
    }
}

/// A file to publish: its TUF name and exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// The TUF file name.
    pub name: String,
    /// The exact bytes to store.
    pub bytes: Vec<u8>,
    /// Publish as pending (not yet at threshold).
    pub pending: bool,
}

/// What went wrong in a store, as a kind the TUF client can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The file, tag or repository does not exist (spec 5.3.2: a missing `N+1.root.json`
    /// ends the root update loop).
    NotFound,
    /// The data is larger than the cap the caller allowed (endless-data attack).
    TooLarge,
    /// The bytes do not hash to the digest that addressed them (tampering or corruption).
    DigestMismatch,
    /// The stored structure (index.json, an OCI manifest) is malformed.
    Malformed,
    /// Somebody else published since we read: re-read and retry.
    Conflict,
    /// Reading or writing failed (disk, network, permissions).
    Io,
    /// The command's deadline for registry traffic passed (`--deadline`): a slow,
    /// stalling or endlessly retried registry or token service.
    DeadlineExceeded,
}

/// An error from a [`Store`], with the location and item it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {what}: {detail}")]
pub struct StoreError {
    /// What kind of failure this is.
    pub kind: StoreErrorKind,
    /// Which store (e.g. `oci:/path/to/layout`).
    pub location: String,
    /// Which item (a file name, a tag, `index.json`).
    pub what: String,
    /// A human-readable explanation of the likely cause.
    pub detail: String,
}

impl StoreError {
    /// Build an error.
    pub fn new(
        kind: StoreErrorKind,
        location: impl fmt::Display,
        what: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            location: location.to_string(),
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// True when the kind is [`StoreErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }
}

/// A TUF repository plus the images it vouches for.
///
/// Implementations must be safe against hostile content: every read is capped by the
/// caller-supplied limit and digest-checked; `publish` is all-or-nothing.
pub trait Store {
    /// Where this store is, for messages and as the trusted-cache key.
    fn location(&self) -> &Location;

    /// The digest of the current `warrant.tuf` manifest without reading the listing
    /// (a HEAD on a registry), or `None` when no TUF repository has been published.
    fn head_listing(&self) -> Result<Option<Sha256Digest>, StoreError>;

    /// The current `warrant.tuf` listing, or `None` when none has been published.
    fn listing(&self) -> Result<Option<Listing>, StoreError>;

    /// Read one listed file, failing with `TooLarge` past `max_bytes` and with
    /// `DigestMismatch` when the bytes do not match the listing.
    fn read_file(&self, file: &StoredFile, max_bytes: u64) -> Result<Vec<u8>, StoreError>;

    /// Replace the TUF repository with exactly `files`, atomically: every blob is
    /// written before the manifest that names it. `previous` is the listing digest the
    /// caller based its change on (`None` for a first publish); when the store holds
    /// another one, nothing is written and the error kind is `Conflict`.
    fn publish(
        &self,
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError>;

    /// [`Store::publish`] of `kept` (files of the current listing, referenced again
    /// by digest: their blobs are already stored) followed by `files`. What makes a
    /// sign cost O(changed files), not O(every role) (issue #13 item 4). The default
    /// reads the kept files back and publishes everything.
    fn publish_keeping(
        &self,
        kept: &[StoredFile],
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        let mut all = Vec::with_capacity(kept.len() + files.len());
        for f in kept {
            all.push(NewFile {
                name: f.name.clone(),
                bytes: self.read_file(f, artifact::MAX_FILE_BYTES)?,
                pending: f.pending,
            });
        }
        all.extend_from_slice(files);
        self.publish(&all, previous)
    }

    /// Resolve an image reference (tag and/or digest) to the manifest it points at now.
    fn resolve(&self, image: &ImageRef) -> Result<Descriptor, StoreError>;

    /// The bytes of the manifest (or index) `digest` of this repository, capped and
    /// checked against the digest.
    fn read_manifest(&self, digest: &Sha256Digest) -> Result<Vec<u8>, StoreError>;

    /// True when [`Store::publish`] is a real compare-and-swap (a locked layout). A
    /// registry has none: signers re-read after publishing to make sure their change
    /// survived a concurrent writer.
    fn publish_is_atomic(&self) -> bool {
        false
    }

    /// On a store without compare-and-swap: how long the last publish took from
    /// sending its check of `warrant.tuf` to the answer to its PUT — the most the
    /// state it built on can be older than its write, so the window in which it can
    /// overwrite a concurrent writer. `None` when not measured.
    fn last_publish_window(&self) -> Option<std::time::Duration> {
        None
    }

    /// Fetch `files` (each with its size cap) in one concurrent round and keep them
    /// for the [`Store::read_file`] calls that follow, which still check every digest.
    /// A hint: stores where reads are cheap ignore it.
    fn prefetch(&self, files: &[(StoredFile, u64)]) {
        let _ = files;
    }

    /// [`Store::resolve`] and [`Store::head_listing`] together: the whole of a warm
    /// verify. A registry sends both requests at once.
    #[allow(clippy::type_complexity)]
    fn resolve_and_head(
        &self,
        image: &ImageRef,
    ) -> (
        Result<Descriptor, StoreError>,
        Result<Option<Sha256Digest>, StoreError>,
    ) {
        (self.resolve(image), self.head_listing())
    }
}
