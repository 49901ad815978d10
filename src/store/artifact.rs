//! The `warrant.tuf` artifact: the OCI image manifest that lists the TUF metadata files
//! (DESIGN §3, "TUF-on-OCI v1").
//!
//! Every backend (the OCI layout directory now, a registry later) stores the same
//! manifest, so building and parsing it lives here, apart from any I/O. The manifest
//! bytes come from the registry or a copied directory, so [`parse_manifest`] treats them
//! as hostile: it never panics, rejects anything ambiguous (duplicate JSON keys, duplicate
//! file names), and only lets through file names that are safe to use as a single path
//! component, because the trusted cache later writes files under those names.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{ArtifactKind, Listing, MAX_MANIFEST_BYTES, NewFile, StoredFile};
use crate::digest::{DigestParseError, Sha256Digest};

/// `mediaType` of an OCI image manifest (the `warrant.tuf` artifact is one).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `artifactType` of the `warrant.tuf` manifest.
pub const TUF_ARTIFACT_TYPE: &str = "application/vnd.warrant.tuf.v1";
/// `mediaType` of each layer: one TUF metadata file.
pub const TUF_METADATA_MEDIA_TYPE: &str = "application/vnd.warrant.tuf.metadata.v1+json";
/// `mediaType` of the OCI empty descriptor used as config.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the empty config blob; every backend must store this blob too.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Digest of [`EMPTY_CONFIG`] (fixed by the OCI image spec).
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Layer annotation holding the TUF file name.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Layer annotation marking a file not yet at threshold (value `"true"`).
pub const ANNOTATION_PENDING: &str = "vnd.warrant.pending";
/// Manifest annotation: when the artifact was published (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Manifest annotation: version of the TUF-on-OCI layout.
pub const ANNOTATION_LAYOUT_VERSION: &str = "vnd.warrant.layout.version";
/// The only layout version this code reads and writes.
pub const LAYOUT_VERSION: &str = "1";

/// Most layers a manifest may list (one per metadata file).
pub const MAX_LAYERS: usize = 100_000;
/// Largest size a layer may declare: a bound on what a listing can make us expect,
/// independent of the per-role caps the TUF client passes to `read_file`.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Longest TUF file name accepted (a common file-system limit for one component).
pub const MAX_NAME_LEN: usize = 255;

/// Why bytes are not a valid `warrant.tuf` manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The manifest is larger than [`MAX_MANIFEST_BYTES`] (endless-data attack or not ours).
    #[error("manifest is {size} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Size of the input.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not JSON, a required field is missing or has the wrong type, or a key is repeated.
    #[error("not a valid OCI image manifest: {source}")]
    Json {
        /// The parser's description, with line and column.
        source: serde_json::Error,
    },
    /// `schemaVersion` is not 2.
    #[error("schemaVersion is {found:?}, expected 2")]
    SchemaVersion {
        /// The value found, if any.
        found: Option<u64>,
    },
    /// `mediaType` names something other than an OCI image manifest (e.g. an index).
    #[error("mediaType is {found:?}, expected {OCI_MANIFEST_MEDIA_TYPE}")]
    MediaType {
        /// The value found.
        found: String,
    },
    /// Neither `artifactType` nor `config.mediaType` says this is a warrant TUF artifact:
    /// the tag points at something else (an image pushed under `warrant.tuf` by mistake).
    #[error(
        "not a warrant artifact of this kind: artifactType {artifact_type:?}, config \
         mediaType {config_media_type:?}, expected {expected}"
    )]
    NotTufArtifact {
        /// The `artifactType` expected under this tag.
        expected: &'static str,
        /// The `artifactType` found, if any.
        artifact_type: Option<String>,
        /// The `config.mediaType` found.
        config_media_type: String,
    },
    /// The manifest was written by a newer, incompatible warrant.
    #[error("layout version {found:?} is not supported (this warrant reads {LAYOUT_VERSION})")]
    LayoutVersion {
        /// The value of `vnd.warrant.layout.version`.
        found: String,
    },
    /// More than [`MAX_LAYERS`] layers.
    #[error("manifest lists {count} layers, more than the limit of {max}")]
    TooManyLayers {
        /// Layers listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A layer is not a file of this artifact (a TUF metadata file in `warrant.tuf`).
    #[error("layer {index}: mediaType {found:?}, expected {expected}")]
    LayerMediaType {
        /// The layer `mediaType` this artifact uses.
        expected: &'static str,
        /// Position of the layer (from 0).
        index: usize,
        /// The value found.
        found: String,
    },
    /// A layer digest is not `sha256:<64 lowercase hex>`.
    #[error("layer {index}: {source}")]
    LayerDigest {
        /// Position of the layer (from 0).
        index: usize,
        /// Why the digest was rejected.
        source: DigestParseError,
    },
    /// A layer size is negative, fractional, or larger than [`MAX_FILE_BYTES`].
    #[error("layer {index}: size {size} is not an integer between 0 and {MAX_FILE_BYTES}")]
    LayerSize {
        /// Position of the layer (from 0).
        index: usize,
        /// The size as written.
        size: String,
    },
    /// A layer has no `org.opencontainers.image.title` annotation.
    #[error("layer {index}: no {ANNOTATION_TITLE} annotation naming the TUF file")]
    MissingTitle {
        /// Position of the layer (from 0).
        index: usize,
    },
    /// A layer title is not a safe TUF file name (path traversal, control characters,
    /// not ending in `.json`, too long).
    #[error("layer {index}: {title:?} is not a safe TUF metadata file name")]
    UnsafeTitle {
        /// Position of the layer (from 0).
        index: usize,
        /// The rejected title (truncated to 100 characters).
        title: String,
    },
    /// `vnd.warrant.pending` holds something other than `"true"` or `"false"`.
    #[error("layer {index}: {ANNOTATION_PENDING} is {value:?}, expected \"true\" or \"false\"")]
    BadPending {
        /// Position of the layer (from 0).
        index: usize,
        /// The value found (truncated to 100 characters).
        value: String,
    },
    /// Two non-pending layers carry the same file name: which one is meant is ambiguous.
    #[error("file {name:?} is listed twice")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
}

/// True when `name` may be used as a TUF metadata file name: 1..=255 characters, ends
/// in `.json`, not `.` or `..`, no `/`, `\` or control characters. Such a name is a
/// single path component on every platform we support, so a cache may write it as-is.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.ends_with(".json")
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Build the `warrant.tuf` manifest for `files` (in the given order), published at
/// `created` (RFC 3339). The output is deterministic: same input, same bytes, same
/// digest. The caller must also store the [`EMPTY_CONFIG`] blob and every file's blob.
pub fn build_manifest(files: &[StoredFile], created: &str) -> Vec<u8> {
    build_manifest_of(ArtifactKind::TUF, files, created)
}

/// [`build_manifest`] for an artifact of `kind`.
pub fn build_manifest_of(kind: ArtifactKind, files: &[StoredFile], created: &str) -> Vec<u8> {
    let manifest = OutManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST_MEDIA_TYPE,
        artifact_type: kind.artifact_type,
        config: OutConfig {
            media_type: EMPTY_CONFIG_MEDIA_TYPE,
            digest: EMPTY_CONFIG_DIGEST,
            size: EMPTY_CONFIG.len() as u64,
        },
        layers: files
            .iter()
            .map(|f| OutLayer::new(kind.file_media_type, f))
            .collect(),
        annotations: OutManifestAnnotations {
            created,
            layout_version: LAYOUT_VERSION,
        },
    };
    // Serializing plain structs of strings and integers cannot fail; an empty result
    // would be rejected by parse_manifest, so it could never be published silently.
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// The `warrant.tuf` manifest for `files` (as every store publishes it): the
/// descriptor of each file, the manifest bytes and their digest. The manifest is
/// parsed back before anything is written, so no store publishes what no reader
/// (ourselves included) would accept.
pub fn prepare(
    files: &[NewFile],
) -> Result<(Vec<StoredFile>, Vec<u8>, Sha256Digest), ArtifactError> {
    prepare_keeping(&[], files)
}

/// [`prepare`] for `kept` files (already stored, named by their descriptors)
/// followed by new `files`. The descriptors returned are kept's then files'.
pub fn prepare_keeping(
    kept: &[StoredFile],
    files: &[NewFile],
) -> Result<(Vec<StoredFile>, Vec<u8>, Sha256Digest), ArtifactError> {
    prepare_keeping_of(ArtifactKind::TUF, kept, files)
}

/// [`prepare_keeping`] for an artifact of `kind`.
pub fn prepare_keeping_of(
    kind: ArtifactKind,
    kept: &[StoredFile],
    files: &[NewFile],
) -> Result<(Vec<StoredFile>, Vec<u8>, Sha256Digest), ArtifactError> {
    let mut stored: Vec<StoredFile> = kept.to_vec();
    stored.extend(files.iter().map(|f| StoredFile {
        name: f.name.clone(),
        digest: Sha256Digest::of(&f.bytes),
        size: f.bytes.len() as u64,
        pending: f.pending,
    }));
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let manifest = build_manifest_of(kind, &stored, &created);
    let digest = Sha256Digest::of(&manifest);
    parse_manifest_of(kind, &manifest, digest)?;
    Ok((stored, manifest, digest))
}

/// Parse and validate a `warrant.tuf` manifest whose bytes hash to `digest`.
///
/// The artifact is recognised by `artifactType` ([`TUF_ARTIFACT_TYPE`]); when a manifest
/// has no `artifactType` at all, `config.mediaType` == [`TUF_ARTIFACT_TYPE`] is accepted
/// instead, the convention OCI 1.1 prescribes for tools that predate `artifactType`.
/// This widens compatibility without weakening trust: the listing only says where the
/// signed metadata is, and every file is verified by TUF afterwards. A manifest whose
/// `artifactType` names anything else is rejected.
pub fn parse_manifest(bytes: &[u8], digest: Sha256Digest) -> Result<Listing, ArtifactError> {
    parse_manifest_of(ArtifactKind::TUF, bytes, digest)
}

/// [`parse_manifest`] for an artifact of `kind`: its own `artifactType` and layer
/// `mediaType`, the same bounds and checks.
pub fn parse_manifest_of(
    kind: ArtifactKind,
    bytes: &[u8],
    digest: Sha256Digest,
) -> Result<Listing, ArtifactError> {
    let size = bytes.len() as u64;
    if size > MAX_MANIFEST_BYTES {
        return Err(ArtifactError::TooLarge {
            size,
            max: MAX_MANIFEST_BYTES,
        });
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|source| ArtifactError::Json { source })?;
    check_header(kind, &raw)?;
    if raw.layers.len() > MAX_LAYERS {
        return Err(ArtifactError::TooManyLayers {
            count: raw.layers.len(),
            max: MAX_LAYERS,
        });
    }
    let files = raw
        .layers
        .into_iter()
        .enumerate()
        .map(|(index, layer)| parse_layer(kind, index, layer))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(&files)?;
    Ok(Listing { digest, files })
}

/// A layer [`parse_manifest_lenient_of`] set aside, as written (clipped), with why.
#[derive(Debug)]
pub struct BadLayer {
    /// Position of the layer (from 0).
    pub index: usize,
    /// Its `digest`, `size` and title as written, clipped: what names it for a person.
    pub raw: String,
    /// Why it cannot be read safely.
    pub error: ArtifactError,
}

/// [`parse_manifest_of`] that sets aside the layers it cannot read safely (unsafe
/// title, bad size or digest, a name listed twice) instead of refusing the whole
/// manifest, for artifacts where one entry must not block the others (key
/// requests). The manifest itself must still be this kind of artifact.
pub fn parse_manifest_lenient_of(
    kind: ArtifactKind,
    bytes: &[u8],
    digest: Sha256Digest,
) -> Result<(Listing, Vec<BadLayer>), ArtifactError> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        let size = bytes.len() as u64;
        return Err(ArtifactError::TooLarge {
            size,
            max: MAX_MANIFEST_BYTES,
        });
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|source| ArtifactError::Json { source })?;
    check_header(kind, &raw)?;
    let (mut files, mut bad) = (Vec::new(), Vec::new());
    for (index, layer) in raw.layers.into_iter().take(MAX_LAYERS).enumerate() {
        let title = layer
            .annotations
            .as_ref()
            .and_then(|a| a.0.get(ANNOTATION_TITLE));
        let raw = clip(&format!("{} {} {:?}", layer.digest, layer.size, title));
        match parse_layer(kind, index, layer) {
            Ok(f) if files.iter().any(|g: &StoredFile| g.name == f.name) => {
                let error = ArtifactError::DuplicateName { name: f.name };
                bad.push(BadLayer { index, raw, error });
            }
            Ok(f) => files.push(f),
            Err(error) => bad.push(BadLayer { index, raw, error }),
        }
    }
    Ok((Listing { digest, files }, bad))
}

/// Checks everything above the layers: schema, media type, artifact type, version.
fn check_header(kind: ArtifactKind, raw: &RawManifest) -> Result<(), ArtifactError> {
    if raw.schema_version != Some(2) {
        return Err(ArtifactError::SchemaVersion {
            found: raw.schema_version,
        });
    }
    // OCI only says mediaType SHOULD be set; when it is, it must not name an index.
    if let Some(mt) = raw
        .media_type
        .as_deref()
        .filter(|mt| *mt != OCI_MANIFEST_MEDIA_TYPE)
    {
        return Err(ArtifactError::MediaType { found: clip(mt) });
    }
    let is_ours = match raw.artifact_type.as_deref() {
        Some(at) => at == kind.artifact_type,
        None => raw.config.media_type == kind.artifact_type,
    };
    if !is_ours {
        return Err(ArtifactError::NotTufArtifact {
            expected: kind.artifact_type,
            artifact_type: raw.artifact_type.as_deref().map(clip),
            config_media_type: clip(&raw.config.media_type),
        });
    }
    // Absent is read as version 1 (hand-made or stripped manifests); any other value
    // means a format we do not understand, which must not be half-read.
    let version = raw
        .annotations
        .as_ref()
        .and_then(|a| a.0.get(ANNOTATION_LAYOUT_VERSION));
    match version {
        Some(v) if v != LAYOUT_VERSION => Err(ArtifactError::LayoutVersion { found: clip(v) }),
        _ => Ok(()),
    }
}

/// Validates one layer and turns it into a [`StoredFile`].
fn parse_layer(
    kind: ArtifactKind,
    index: usize,
    layer: RawLayer,
) -> Result<StoredFile, ArtifactError> {
    if layer.media_type != kind.file_media_type {
        return Err(ArtifactError::LayerMediaType {
            expected: kind.file_media_type,
            index,
            found: clip(&layer.media_type),
        });
    }
    let digest = layer
        .digest
        .parse()
        .map_err(|source| ArtifactError::LayerDigest { index, source })?;
    let size = layer
        .size
        .as_u64()
        .filter(|s| *s <= MAX_FILE_BYTES)
        .ok_or_else(|| ArtifactError::LayerSize {
            index,
            size: layer.size.to_string(),
        })?;
    let annotations = layer.annotations.unwrap_or_default().0;
    let name = annotations
        .get(ANNOTATION_TITLE)
        .ok_or(ArtifactError::MissingTitle { index })?;
    if !is_safe_file_name(name) {
        return Err(ArtifactError::UnsafeTitle {
            index,
            title: clip(name),
        });
    }
    let pending = match annotations.get(ANNOTATION_PENDING).map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ArtifactError::BadPending {
                index,
                value: clip(other),
            });
        }
    };
    Ok(StoredFile {
        name: name.clone(),
        digest,
        size,
        pending,
    })
}

/// Rejects two non-pending files with one name: `Listing::get` must be unambiguous.
fn check_unique(files: &[StoredFile]) -> Result<(), ArtifactError> {
    let mut seen = std::collections::BTreeSet::new();
    for f in files.iter().filter(|f| !f.pending) {
        if !seen.insert(f.name.as_str()) {
            return Err(ArtifactError::DuplicateName {
                name: f.name.clone(),
            });
        }
    }
    Ok(())
}

/// Hostile strings end up in error messages: keep them short.
fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

// Output types: field order here is the byte order of the manifest.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutManifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'static str,
    config: OutConfig,
    layers: Vec<OutLayer<'a>>,
    annotations: OutManifestAnnotations<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutConfig {
    media_type: &'static str,
    digest: &'static str,
    size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutLayer<'a> {
    media_type: &'static str,
    digest: String,
    size: u64,
    annotations: OutLayerAnnotations<'a>,
}

impl<'a> OutLayer<'a> {
    fn new(media_type: &'static str, f: &'a StoredFile) -> Self {
        Self {
            media_type,
            digest: f.digest.to_string(),
            size: f.size,
            annotations: OutLayerAnnotations {
                title: &f.name,
                pending: f.pending.then_some("true"),
            },
        }
    }
}

#[derive(Serialize)]
struct OutLayerAnnotations<'a> {
    #[serde(rename = "org.opencontainers.image.title")]
    title: &'a str,
    #[serde(
        rename = "vnd.warrant.pending",
        skip_serializing_if = "Option::is_none"
    )]
    pending: Option<&'static str>,
}

#[derive(Serialize)]
struct OutManifestAnnotations<'a> {
    #[serde(rename = "org.opencontainers.image.created")]
    created: &'a str,
    #[serde(rename = "vnd.warrant.layout.version")]
    layout_version: &'static str,
}

// Input types: derived structs reject duplicate fields, unknown fields are ignored
// (OCI allows extensions), and annotations reject duplicate keys (see `Annotations`).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: RawConfig,
    layers: Vec<RawLayer>,
    annotations: Option<Annotations>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    media_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLayer {
    media_type: String,
    digest: String,
    // A Number, not u64, so that `-1` or `1.5` gets our error naming the layer.
    size: serde_json::Number,
    annotations: Option<Annotations>,
}

/// A string map that refuses repeated keys. serde's own maps keep the last value, so
/// `{"title":"a.json","title":"../x"}` could mean one thing to us and another to a
/// different parser; refusing is the only unambiguous answer.
#[derive(Default)]
struct Annotations(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Annotations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrictMap;
        impl<'de> Visitor<'de> for StrictMap {
            type Value = Annotations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of string annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Annotations, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.contains_key(&k) {
                        let msg = format!("duplicate annotation {:?}", clip(&k));
                        return Err(de::Error::custom(msg));
                    }
                    out.insert(k, v);
                }
                Ok(Annotations(out))
            }
        }
        d.deserialize_map(StrictMap)
    }
}

#[cfg(test)]
mod tests;
