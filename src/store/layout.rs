//! The OCI image layout backend (`oci:PATH`, as skopeo writes it).
//!
//! The `warrant.tuf` artifact is an ordinary manifest blob named in `index.json` by the
//! annotation `org.opencontainers.image.ref.name=warrant.tuf`, so `skopeo copy` moves it
//! like any tagged image. Everything read from the directory is treated as hostile: reads
//! are capped, every blob is digest-checked, and the only path built from stored data is
//! `blobs/sha256/<hex>` from a strictly parsed digest.
//!
//! Writers serialise on an exclusive lock of the `oci-layout` file (never replaced, so
//! every process locks the same inode). Blobs are written first and `index.json` last,
//! each by temp file + fsync + rename, so a crash leaves the previous state intact.
//! Replaced blobs are never deleted: a concurrent reader may still be reading the
//! previous listing, and garbage collection is left to tools that can see all tags.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::artifact::{self, EMPTY_CONFIG, OCI_MANIFEST_MEDIA_TYPE};
use super::{
    ArtifactKind, Descriptor, ImageRef, Listing, Location, MAX_MANIFEST_BYTES, NewFile, Store,
    StoreError, StoreErrorKind as Kind, StoredFile,
};
use crate::digest::Sha256Digest;

/// Index annotation naming a tag.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The only `imageLayoutVersion` defined by the OCI image spec.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";
const OCI_LAYOUT: &str = "oci-layout";
const INDEX_JSON: &str = "index.json";
const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// `oci-layout` is a one-line file; anything bigger is not one.
const MAX_OCI_LAYOUT_BYTES: u64 = 4096;
const NOT_REGULAR: &str = "not a regular file (a device, FIFO or directory planted in the layout?)";

/// A TUF repository and its images in an OCI image layout directory.
#[derive(Debug, Clone)]
pub struct LayoutStore {
    location: Location,
    root: PathBuf,
    /// The tagged artifact listed and published (`warrant.tuf` unless changed).
    artifact: ArtifactKind,
}

impl LayoutStore {
    /// Open an existing layout: the directory must hold an `oci-layout` file with
    /// `imageLayoutVersion` 1.0.0. A missing directory is `NotFound`: signing or
    /// verifying must never create a repository by accident.
    pub fn open(location: Location) -> Result<Self, StoreError> {
        let root = layout_root(&location)?;
        let artifact = ArtifactKind::TUF;
        let store = Self {
            location,
            root,
            artifact,
        };
        store.check_oci_layout()?;
        Ok(store)
    }

    /// Open a layout, first creating the directory, `oci-layout`, an empty `index.json`
    /// and `blobs/sha256` where missing (for `init`). Existing files are left alone.
    pub fn create_or_open(location: Location) -> Result<Self, StoreError> {
        let root = layout_root(&location)?;
        let artifact = ArtifactKind::TUF;
        let store = Self {
            location,
            root,
            artifact,
        };
        let blobs = store.blobs_dir();
        fs::create_dir_all(&blobs).map_err(|e| store.io(&blobs, "cannot create", e))?;
        let layout = json!({ "imageLayoutVersion": IMAGE_LAYOUT_VERSION });
        store.write_if_absent(OCI_LAYOUT, &layout)?;
        let index =
            json!({ "schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": [] });
        store.write_if_absent(INDEX_JSON, &index)?;
        store.check_oci_layout()?;
        Ok(store)
    }

    /// The same layout, listing and publishing the artifact `kind` instead.
    pub fn for_artifact(self, artifact: ArtifactKind) -> Self {
        Self { artifact, ..self }
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, kind: Kind, what: impl Into<String>, detail: impl Into<String>) -> StoreError {
        StoreError::new(kind, &self.location, what, detail)
    }

    /// An I/O error on `path`; a missing file is `NotFound`, anything else `Io`.
    fn io(&self, path: &Path, action: &str, e: io::Error) -> StoreError {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => Kind::NotFound,
            _ => Kind::Io,
        };
        self.err(kind, path.display().to_string(), format!("{action}: {e}"))
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// The only path built from stored data: the hex of an already validated digest.
    fn blob_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    fn check_oci_layout(&self) -> Result<(), StoreError> {
        if !self.root.is_dir() {
            let detail =
                "no such directory: check the path, or create the repository with `warrant init`";
            return Err(self.err(Kind::NotFound, "layout directory", detail));
        }
        let no_layout = "the directory has no oci-layout file, so it is not an OCI image \
                         layout: check the path, or create one with `warrant init`";
        let path = self.root.join(OCI_LAYOUT);
        let missing = (Kind::NotFound, no_layout);
        let bytes = self.read_limited(&path, OCI_LAYOUT, MAX_OCI_LAYOUT_BYTES, missing)?;
        let version = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            v.get("imageLayoutVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if version.as_deref() != Some(IMAGE_LAYOUT_VERSION) {
            let detail =
                format!("imageLayoutVersion is {version:?}, expected \"{IMAGE_LAYOUT_VERSION}\"");
            return Err(self.err(Kind::Malformed, OCI_LAYOUT, detail));
        }
        Ok(())
    }

    /// Reads the file at `path`, capped at `max` bytes; `missing` is the error kind and
    /// detail for a file that does not exist (its meaning depends on the file).
    fn read_limited(
        &self,
        path: &Path,
        what: &str,
        max: u64,
        missing: (Kind, &str),
    ) -> Result<Vec<u8>, StoreError> {
        read_capped(path, max).map_err(|e| match e {
            ReadError::TooLarge { .. } => self.err(
                Kind::TooLarge,
                what,
                format!("larger than the {max}-byte limit"),
            ),
            ReadError::NotRegular | ReadError::NotText => {
                self.err(Kind::Malformed, what, NOT_REGULAR)
            }
            ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound => {
                self.err(missing.0, what, missing.1)
            }
            ReadError::Io(e) => self.err(Kind::Io, what, format!("cannot read: {e}")),
        })
    }

    fn read_index(&self) -> Result<Index, StoreError> {
        let missing = "missing: the layout is incomplete (copied without index.json?)";
        let path = self.root.join(INDEX_JSON);
        let bytes = self.read_limited(
            &path,
            INDEX_JSON,
            MAX_MANIFEST_BYTES,
            (Kind::Malformed, missing),
        )?;
        Index::parse(&bytes).map_err(|d| self.err(Kind::Malformed, INDEX_JSON, d))
    }

    /// Read the blob `digest`, capped at `max` bytes and checked against its digest and,
    /// when a descriptor declared one, its size.
    fn read_blob(
        &self,
        what: &str,
        digest: &Sha256Digest,
        declared: Option<u64>,
        max: u64,
    ) -> Result<Vec<u8>, StoreError> {
        if let Some(size) = declared.filter(|s| *s > max) {
            let detail = format!("declared size {size} is larger than the {max}-byte limit");
            return Err(self.err(Kind::TooLarge, what, detail));
        }
        let missing = format!(
            "blob {digest} is missing from blobs/sha256: the layout is incomplete (copied \
             without all blobs?)"
        );
        let path = self.blob_path(digest);
        let bytes = self.read_limited(&path, what, max, (Kind::NotFound, &missing))?;
        if let Some(size) = declared.filter(|s| *s != bytes.len() as u64) {
            let detail = format!(
                "blob {digest} is {} bytes but its descriptor says {size}: the blob or the \
                 manifest naming it was altered",
                bytes.len()
            );
            return Err(self.err(Kind::DigestMismatch, what, detail));
        }
        let actual = Sha256Digest::of(&bytes);
        if actual != *digest {
            let detail =
                format!("blob {digest} hashes to {actual}: it was altered or corrupted on disk");
            return Err(self.err(Kind::DigestMismatch, what, detail));
        }
        Ok(bytes)
    }

    /// Writes a blob unless an intact copy is already there. Blobs are content-addressed,
    /// so an intact copy is the same content; a damaged one (same name, other bytes) is
    /// replaced, since leaving it would publish a repository that no reader accepts.
    fn write_blob(&self, bytes: &[u8], digest: &Sha256Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        let len = bytes.len() as u64;
        if read_capped(&path, len).is_ok_and(|old| Sha256Digest::of(&old) == *digest) {
            return Ok(());
        }
        self.write_atomic(&path, bytes, false)
    }

    /// Temp file in `dir` + fsync + rename onto `path`; `no_clobber` keeps an existing file.
    fn write_atomic(&self, path: &Path, bytes: &[u8], no_clobber: bool) -> Result<(), StoreError> {
        // 0644: tempfile's 0600 would hide a published layout from a verifier
        // running as another user.
        let opts = crate::fsutil::WriteOptions {
            mode: 0o644,
            durable: true,
            no_clobber,
        };
        crate::fsutil::write_atomic(path, bytes, opts)
            .map_err(|e| self.io(path, "cannot write atomically", e))
    }

    fn write_if_absent(&self, name: &str, value: &Value) -> Result<(), StoreError> {
        let path = self.root.join(name);
        if path.exists() {
            return Ok(());
        }
        self.write_atomic(&path, value.to_string().as_bytes(), true)
    }

    /// Holds an exclusive lock on `oci-layout` until the returned file is dropped.
    fn lock(&self) -> Result<File, StoreError> {
        let path = self.root.join(OCI_LAYOUT);
        let file = File::open(&path).map_err(|e| self.io(&path, "cannot open to lock", e))?;
        file.lock().map_err(|e| self.io(&path, "cannot lock", e))?;
        Ok(file)
    }

    /// The current descriptor (digest, size) of the artifact's tag from `index`.
    fn tuf_entry(&self, index: &Index) -> Result<Option<(Sha256Digest, u64)>, StoreError> {
        let tag = self.artifact.tag;
        let Some(entry) = index
            .tagged(tag)
            .map_err(|d| self.err(Kind::Malformed, INDEX_JSON, d))?
        else {
            return Ok(None);
        };
        let (digest, size, _) =
            entry_descriptor(entry).map_err(|d| self.err(Kind::Malformed, tag, d))?;
        Ok(Some((digest, size)))
    }

    /// The index entry `image` names: by tag (checked against a pinned digest), or by
    /// digest. `Ok(None)`: digest-only and no entry has it.
    fn find_entry<'i>(
        &self,
        index: &'i Index,
        image: &ImageRef,
    ) -> Result<Option<&'i Map<String, Value>>, StoreError> {
        let what = image.to_string();
        let Some(tag) = &image.tag else {
            return Ok(image.digest.and_then(|d| index.with_digest(&d)));
        };
        let entry = index
            .tagged(tag)
            .map_err(|d| self.err(Kind::Malformed, INDEX_JSON, d))?;
        let Some(entry) = entry else {
            let detail = format!(
                "no index.json entry has {ANNOTATION_REF_NAME}={tag}: list the tags with \
                 `jq -r '.manifests[].annotations[\"{ANNOTATION_REF_NAME}\"]' {}/index.json`",
                self.root.display()
            );
            return Err(self.err(Kind::NotFound, what, detail));
        };
        let digest = entry.get("digest").and_then(Value::as_str);
        if let Some(pinned) = image
            .digest
            .filter(|d| Some(d.to_string().as_str()) != digest)
        {
            let detail = format!(
                "tag {tag} now points at {}, not the pinned {pinned}: the tag was moved; use \
                 the digest alone, or re-resolve the tag",
                digest.unwrap_or("nothing")
            );
            return Err(self.err(Kind::DigestMismatch, what, detail));
        }
        Ok(Some(entry))
    }
}

impl Store for LayoutStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn head_listing(&self) -> Result<Option<Sha256Digest>, StoreError> {
        Ok(self.tuf_entry(&self.read_index()?)?.map(|(d, _)| d))
    }

    fn listing(&self) -> Result<Option<Listing>, StoreError> {
        let Some((digest, size)) = self.tuf_entry(&self.read_index()?)? else {
            return Ok(None);
        };
        let tag = self.artifact.tag;
        let bytes = self.read_blob(tag, &digest, Some(size), MAX_MANIFEST_BYTES)?;
        let listing = artifact::parse_manifest_of(self.artifact, &bytes, digest).map_err(|e| {
            let detail = format!("{digest} is not a valid {tag} artifact: {e}");
            self.err(Kind::Malformed, tag, detail)
        })?;
        Ok(Some(listing))
    }

    fn read_file(&self, file: &StoredFile, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        self.read_blob(&file.name, &file.digest, Some(file.size), max_bytes)
    }

    fn publish_is_atomic(&self) -> bool {
        // publish() holds the layout lock across the check of `previous` and the
        // index.json rename.
        true
    }

    fn publish(
        &self,
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        self.publish_keeping(&[], files, previous)
    }

    fn publish_keeping(
        &self,
        kept: &[StoredFile],
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        let (tag, kind) = (self.artifact.tag, self.artifact);
        let (stored, manifest, digest) = artifact::prepare_keeping_of(kind, kept, files)
            .map_err(|e| self.err(Kind::Malformed, tag, format!("refusing to publish: {e}")))?;

        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let current = self.tuf_entry(&index)?.map(|(d, _)| d);
        if current.as_ref() != previous {
            let detail = format!(
                "{tag} is now {} but this change was based on {}: another signer \
                 published meanwhile; re-read and retry",
                describe(current.as_ref()),
                describe(previous)
            );
            return Err(self.err(Kind::Conflict, tag, detail));
        }
        let blobs = self.blobs_dir();
        fs::create_dir_all(&blobs).map_err(|e| self.io(&blobs, "cannot create", e))?;
        // Kept files are named by the listing we based this change on, which is
        // still current (checked above under the lock): their blobs are here.
        for k in kept {
            let path = blobs.join(k.digest.hex());
            if !path.is_file() {
                return Err(self.err(
                    Kind::NotFound,
                    &k.name,
                    format!("blob {} of the current listing is missing", k.digest),
                ));
            }
        }
        for (file, s) in files.iter().zip(&stored[kept.len()..]) {
            self.write_blob(&file.bytes, &s.digest)?;
        }
        self.write_blob(EMPTY_CONFIG, &Sha256Digest::of(EMPTY_CONFIG))?;
        self.write_blob(&manifest, &digest)?;
        // The blobs' directory entries must be durable before index.json names them.
        sync_dir(&blobs).map_err(|e| self.io(&blobs, "cannot sync", e))?;

        let entry = tuf_index_entry(kind, &digest, manifest.len() as u64);
        index.set_tagged(tag, entry);
        self.write_atomic(&self.root.join(INDEX_JSON), &index.to_bytes(), false)?;
        sync_dir(&self.root).map_err(|e| self.io(&self.root, "cannot sync", e))?;
        Ok(digest)
    }

    /// A tag with a pinned digest that no longer matches is `DigestMismatch` (the tag
    /// moved). A digest-only reference matches an index entry, or else any manifest
    /// blob present in `blobs/` (skopeo resolves `oci:PATH@DIGEST` the same way).
    fn read_manifest(&self, digest: &Sha256Digest) -> Result<Vec<u8>, StoreError> {
        self.read_blob(
            &format!("manifest {digest}"),
            digest,
            None,
            MAX_MANIFEST_BYTES,
        )
    }

    fn resolve(&self, image: &ImageRef) -> Result<Descriptor, StoreError> {
        let what = image.to_string();
        let index = self.read_index()?;
        let (digest, size, media_type) = match (self.find_entry(&index, image)?, image.digest) {
            (Some(entry), _) => {
                let (d, size, mt) =
                    entry_descriptor(entry).map_err(|d| self.err(Kind::Malformed, &what, d))?;
                (d, Some(size), mt)
            }
            (None, Some(d)) => (d, None, None),
            (None, None) => return Err(self.err(Kind::NotFound, &what, "no tag or digest")),
        };
        let bytes = self.read_blob(&what, &digest, size, MAX_MANIFEST_BYTES)?;
        let media_type = media_type
            .or_else(|| manifest_media_type(&bytes))
            .ok_or_else(|| {
                self.err(
                    Kind::Malformed,
                    &what,
                    format!("{digest} has no mediaType: not an image manifest or index"),
                )
            })?;
        Ok(Descriptor {
            media_type,
            digest,
            size: bytes.len() as u64,
        })
    }
}

/// `index.json` as an untyped value, so that entries and fields we do not know survive
/// a rewrite untouched.
struct Index(Value);

impl Index {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        if !value.get("manifests").is_some_and(Value::is_array) {
            return Err("not an OCI image index: no \"manifests\" array".into());
        }
        Ok(Self(value))
    }

    fn entries(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.0["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// The one entry tagged `tag`; two are ambiguous and refused.
    fn tagged(&self, tag: &str) -> Result<Option<&Map<String, Value>>, String> {
        let mut found = self.entries().filter(|e| ref_name(e) == Some(tag));
        let first = found.next();
        if found.next().is_some() {
            return Err(format!(
                "several entries are tagged {tag:?}: remove all but one"
            ));
        }
        Ok(first)
    }

    fn with_digest(&self, digest: &Sha256Digest) -> Option<&Map<String, Value>> {
        let digest = digest.to_string();
        self.entries()
            .find(|e| e.get("digest").and_then(Value::as_str) == Some(&digest))
    }

    /// Replaces the entry tagged `tag` in place (or appends one), keeping all others.
    fn set_tagged(&mut self, tag: &str, entry: Value) {
        let Some(list) = self.0.get_mut("manifests").and_then(Value::as_array_mut) else {
            return; // `parse` guarantees the array
        };
        let is_tag = |v: &Value| v.as_object().and_then(ref_name) == Some(tag);
        let at = list.iter().position(is_tag).unwrap_or(list.len());
        list.retain(|v| !is_tag(v));
        list.insert(at.min(list.len()), entry);
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.0.to_string().into_bytes()
    }
}

fn ref_name(entry: &Map<String, Value>) -> Option<&str> {
    entry.get("annotations")?.get(ANNOTATION_REF_NAME)?.as_str()
}

/// Digest, size and media type of an index entry, with strict digest parsing.
fn entry_descriptor(
    entry: &Map<String, Value>,
) -> Result<(Sha256Digest, u64, Option<String>), String> {
    let digest = entry
        .get("digest")
        .and_then(Value::as_str)
        .ok_or("index entry has no digest")?;
    let digest = digest.parse().map_err(|e| format!("index entry: {e}"))?;
    let size = entry
        .get("size")
        .and_then(Value::as_u64)
        .ok_or("index entry has no valid size")?;
    let media_type = entry
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((digest, size, media_type))
}

fn tuf_index_entry(kind: ArtifactKind, digest: &Sha256Digest, size: u64) -> Value {
    json!({
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "artifactType": kind.artifact_type,
        "digest": digest.to_string(),
        "size": size,
        "annotations": { ANNOTATION_REF_NAME: kind.tag },
    })
}

fn manifest_media_type(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("mediaType")?.as_str().map(str::to_owned)
}

fn describe(d: Option<&Sha256Digest>) -> String {
    d.map_or_else(|| "nothing (first publish)".into(), ToString::to_string)
}

fn layout_root(location: &Location) -> Result<PathBuf, StoreError> {
    location
        .layout_path()
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            StoreError::new(
                Kind::Malformed,
                location,
                "location",
                "not an OCI layout location",
            )
        })
}

use crate::fsutil::ReadError;

fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    crate::fsutil::read_regular_nofollow(path, max)
}

/// Makes renames in `dir` durable (POSIX needs an fsync of the directory).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir; // Windows cannot open a directory as a file; NTFS renames are journaled.
    Ok(())
}

#[cfg(test)]
mod tests;
