//! The TUF metadata model (spec 1.0.x), one type per spec object.
//!
//! Serde field names are the JSON names, so these types read and write exactly what
//! python-tuf, go-tuf and tough do. Every object keeps the fields it does not know in
//! `unrecognized` so that re-serializing never drops what a signature covered.
//!
//! These types are *not* trusted by construction: trust comes from
//! [`super::verify::Verified`], whose only constructor checks signatures on the
//! canonical bytes received before a value of these types is built.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::{KeyId, PublicKey};
use crate::digest::Sha256Digest;

/// The spec version warrant writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// Fields of an object that this version of warrant does not model.
pub type Unrecognized = BTreeMap<String, Value>;

/// `expires` timestamps: `YYYY-MM-DDTHH:MM:SSZ` exactly (spec §4.2; python-tuf parses
/// with that format and rejects anything else).
pub mod expires_format {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

    /// Serialize as `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format(FORMAT))
    }

    /// Parse `YYYY-MM-DDTHH:MM:SSZ` strictly.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, FORMAT)
            .map(|n| n.and_utc())
            .map_err(|e| serde::de::Error::custom(format!("expires {s:?}: {e}")))
    }
}

/// A key as listed in root `keys` or delegation `keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// E.g. `ed25519`, `ecdsa`.
    pub keytype: String,
    /// E.g. `ed25519`, `ecdsa-sha2-nistp256`.
    pub scheme: String,
    /// The public key material.
    pub keyval: KeyVal,
    /// Fields we do not model (e.g. an X.509 certificate chain).
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// `keyval`: the public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyVal {
    /// Hex (ed25519) or PEM (ecdsa).
    pub public: String,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl Key {
    /// The metadata entry for one of our public keys.
    pub fn from_public(key: &PublicKey) -> Self {
        Self {
            keytype: key.keytype().to_owned(),
            scheme: key.scheme().to_owned(),
            keyval: KeyVal {
                public: key.public(),
                unrecognized: Unrecognized::new(),
            },
            unrecognized: Unrecognized::new(),
        }
    }

    /// Decode into a verification key.
    pub fn to_public(&self) -> Result<PublicKey, crate::crypto::keys::KeyError> {
        PublicKey::from_tuf(&self.keytype, &self.scheme, &self.keyval.public)
    }
}

/// A role's keys and threshold in root `roles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key ids allowed to sign for the role.
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign (≥ 1).
    pub threshold: NonZeroU64,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// A metadata role type: its `_type` and the name it is stored under.
pub trait RoleType: Serialize + for<'de> Deserialize<'de> {
    /// The `_type` value.
    const TYPE: &'static str;
    /// The role's version.
    fn version(&self) -> NonZeroU64;
    /// When the role expires.
    fn expires(&self) -> DateTime<Utc>;
}

macro_rules! role_type {
    ($t:ty, $name:literal) => {
        impl RoleType for $t {
            const TYPE: &'static str = $name;
            fn version(&self) -> NonZeroU64 {
                self.version
            }
            fn expires(&self) -> DateTime<Utc> {
                self.expires
            }
        }
    };
}

/// The root role (spec §4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// Always `root`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The spec version the metadata follows.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Whether files are stored as `VERSION.ROLE.json` (always true for warrant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_snapshot: Option<bool>,
    /// Every key of the top-level roles, by key id.
    pub keys: BTreeMap<KeyId, Key>,
    /// `root`, `targets`, `snapshot`, `timestamp`.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}
role_type!(Root, "root");

/// The four top-level role names.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// A `meta` entry in snapshot or timestamp: the version (and optionally length and
/// hashes) of another metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaFile {
    /// The referenced file's version.
    pub version: NonZeroU64,
    /// The referenced file's length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Hashes of the referenced file (`sha256`, `sha512`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// The timestamp role (spec §4.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Always `timestamp`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The spec version.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Exactly one entry: `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}
role_type!(Timestamp, "timestamp");

impl Timestamp {
    /// The `snapshot.json` entry (validated present when the timestamp is verified).
    pub fn snapshot_meta(&self) -> Option<&MetaFile> {
        self.meta.get("snapshot.json")
    }
}

/// The snapshot role (spec §4.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `snapshot`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The spec version.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// `ROLE.json` → version of every targets role.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}
role_type!(Snapshot, "snapshot");

/// One target: an image manifest, recorded by length and hash (spec §4.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFile {
    /// Length of the manifest bytes.
    pub length: u64,
    /// `sha256` (and possibly `sha512`) of the manifest bytes, lowercase hex.
    pub hashes: BTreeMap<String, String>,
    /// Informative: `{"mediaType": ..., "annotations": ...}` for warrant targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl TargetFile {
    /// The sha256 digest, when present and well-formed.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.hashes
            .get("sha256")
            .and_then(|h| Sha256Digest::from_hex(h).ok())
    }

    /// Check downloaded `data` against this target: exact length, and every hash of
    /// an algorithm we know (`sha256`, `sha512`) must match — with at least one known,
    /// so a target listing only unknown algorithms is never accepted.
    pub fn check(&self, data: &[u8]) -> Result<(), TargetMismatch> {
        use sha2::Digest as _;
        if data.len() as u64 != self.length {
            return Err(TargetMismatch::Length {
                expected: self.length,
                actual: data.len() as u64,
            });
        }
        let mut known = 0;
        for (alg, expected) in &self.hashes {
            let actual = match alg.as_str() {
                "sha256" => hex::encode(sha2::Sha256::digest(data)),
                "sha512" => hex::encode(sha2::Sha512::digest(data)),
                _ => continue,
            };
            known += 1;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(TargetMismatch::Hash {
                    algorithm: alg.clone(),
                });
            }
        }
        if known == 0 {
            return Err(TargetMismatch::NoKnownHash);
        }
        Ok(())
    }

    /// The `custom.mediaType`, when present.
    pub fn media_type(&self) -> Option<&str> {
        self.custom.as_ref()?.get("mediaType")?.as_str()
    }
}

/// Downloaded target bytes that are not the signed target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetMismatch {
    /// Wrong length.
    #[error("target length is {actual}, signed length is {expected}")]
    Length {
        /// Signed length.
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// A hash differs.
    #[error("target {algorithm} does not match the signed hash")]
    Hash {
        /// The algorithm.
        algorithm: String,
    },
    /// No hash of a known algorithm.
    #[error("target lists no hash algorithm warrant knows (sha256, sha512)")]
    NoKnownHash,
}

/// A delegated role (spec §4.5 `roles` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// The role name.
    pub name: String,
    /// Keys allowed to sign the role.
    pub keyids: Vec<KeyId>,
    /// Distinct keys required.
    pub threshold: NonZeroU64,
    /// When true, a search that matches this role never continues past it.
    #[serde(default)]
    pub terminating: bool,
    /// Glob patterns (per path segment) of target paths the role may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of sha256(target path) the role may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// Succinct hash-bin delegations (TAP 15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    /// Keys shared by every bin.
    pub keyids: Vec<KeyId>,
    /// Distinct keys required.
    pub threshold: NonZeroU64,
    /// Number of leading bits of sha256(path) selecting the bin (1..=32).
    pub bit_length: u32,
    /// Bin names are `{name_prefix}-{bin:0Nx}`.
    pub name_prefix: String,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// `delegations` of a targets role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of delegated roles, by key id.
    pub keys: BTreeMap<KeyId, Key>,
    /// Ordered delegated roles (search order matters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash-bin delegation instead of `roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// A targets role: top-level `targets` or a delegated role (spec §4.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Always `targets`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The spec version.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Target path → file info.
    pub targets: BTreeMap<String, TargetFile>,
    /// Roles this role delegates to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}
role_type!(Targets, "targets");

impl Targets {
    /// An empty targets role.
    pub fn empty(version: NonZeroU64, expires: DateTime<Utc>) -> Self {
        Self {
            type_: "targets".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            unrecognized: Unrecognized::new(),
        }
    }
}

/// One signature in an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// The key id that (claims to have) signed.
    pub keyid: KeyId,
    /// Hex-encoded signature bytes.
    pub sig: String,
    /// Fields we do not model.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// The `{"signatures": [...], "signed": {...}}` envelope, for writing.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a, T> {
    /// Signatures over the canonical form of `signed`.
    pub signatures: Vec<Signature>,
    /// The signed role.
    pub signed: &'a T,
}
