//! Building, bumping and signing new metadata (the repository side).

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};

use super::canonical::{CanonicalError, to_canonical};
use super::metadata::{
    Envelope, Key, MetaFile, RoleKeys, RoleType, Root, SPEC_VERSION, Signature, Snapshot,
    Timestamp, Unrecognized,
};
use crate::crypto::keys::SignError;
use crate::crypto::{KeyId, PublicKey, Signer};
use crate::digest::Sha256Digest;

/// Default lifetimes (issue #6): root and targets a year, snapshot 30 days,
/// timestamp 7 days.
pub mod lifetime {
    use chrono::Duration;
    /// Root.
    pub fn root() -> Duration {
        Duration::days(365)
    }
    /// Targets and delegated roles.
    pub fn targets() -> Duration {
        Duration::days(365)
    }
    /// Snapshot.
    pub fn snapshot() -> Duration {
        Duration::days(30)
    }
    /// Timestamp.
    pub fn timestamp() -> Duration {
        Duration::days(7)
    }
}

/// Creating metadata failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditorError {
    /// Serialization to canonical JSON failed.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// A signer failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// JSON (de)serialization failed.
    #[error("cannot serialize metadata: {0}")]
    Json(String),
    /// A version would overflow.
    #[error("{0} version overflow")]
    Overflow(&'static str),
}

/// `now + d`, truncated to whole seconds (the `expires` format has no fractions).
pub fn expiry_in(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    (now + d).trunc_subsecs(0)
}

/// The next version.
pub fn bump(v: NonZeroU64, role: &'static str) -> Result<NonZeroU64, EditorError> {
    v.checked_add(1).ok_or(EditorError::Overflow(role))
}

/// Sign `signed` with every signer and return the envelope bytes.
pub fn sign<T: RoleType>(signed: &T, signers: &[&dyn Signer]) -> Result<Vec<u8>, EditorError> {
    let value = serde_json::to_value(signed).map_err(|e| EditorError::Json(e.to_string()))?;
    let msg = to_canonical(&value)?;
    let mut signatures = Vec::with_capacity(signers.len());
    let mut seen = std::collections::BTreeSet::new();
    for s in signers {
        let keyid = s.public_key().key_id();
        if !seen.insert(keyid.clone()) {
            continue;
        }
        signatures.push(Signature {
            keyid,
            sig: hex::encode(s.sign(&msg)?),
            unrecognized: Unrecognized::new(),
        });
    }
    let envelope = Envelope {
        signatures,
        signed: &value,
    };
    // The file is ordinary JSON (control characters escaped, as python-tuf writes
    // it). Canonical JSON is only the signing input: it leaves newlines raw, which
    // strict JSON parsers reject (an ECDSA PEM key contains newlines).
    serde_json::to_vec(&envelope).map_err(|e| EditorError::Json(e.to_string()))
}

/// A `meta` entry for a file we publish: version, length and sha256.
pub fn meta_for(version: NonZeroU64, bytes: &[u8]) -> MetaFile {
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(BTreeMap::from([(
            "sha256".to_owned(),
            Sha256Digest::of(bytes).hex(),
        )])),
        unrecognized: Unrecognized::new(),
    }
}

/// Keys and threshold for one top-level role of a new root.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// The role's public keys.
    pub keys: Vec<PublicKey>,
    /// Required distinct signatures.
    pub threshold: NonZeroU64,
}

/// A version-1 root with the four top-level roles.
pub fn new_root(
    root: &RoleSpec,
    targets: &RoleSpec,
    snapshot: &RoleSpec,
    timestamp: &RoleSpec,
    expires: DateTime<Utc>,
) -> Root {
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (name, spec) in [
        ("root", root),
        ("targets", targets),
        ("snapshot", snapshot),
        ("timestamp", timestamp),
    ] {
        let mut ids: Vec<KeyId> = Vec::new();
        for k in &spec.keys {
            let id = k.key_id();
            keys.insert(id.clone(), Key::from_public(k));
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        roles.insert(
            name.to_owned(),
            RoleKeys {
                keyids: ids,
                threshold: spec.threshold,
                unrecognized: Unrecognized::new(),
            },
        );
    }
    Root {
        type_: "root".into(),
        spec_version: SPEC_VERSION.into(),
        version: NonZeroU64::MIN,
        expires,
        consistent_snapshot: Some(true),
        keys,
        roles,
        unrecognized: Unrecognized::new(),
    }
}

/// A snapshot listing `meta` (`targets.json` and delegated roles).
pub fn new_snapshot(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    meta: BTreeMap<String, MetaFile>,
) -> Snapshot {
    Snapshot {
        type_: "snapshot".into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        meta,
        unrecognized: Unrecognized::new(),
    }
}

/// A timestamp naming `snapshot_bytes` by version, length and sha256.
pub fn new_timestamp(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    snapshot_version: NonZeroU64,
    snapshot_bytes: &[u8],
) -> Timestamp {
    Timestamp {
        type_: "timestamp".into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        meta: BTreeMap::from([(
            "snapshot.json".to_owned(),
            meta_for(snapshot_version, snapshot_bytes),
        )]),
        unrecognized: Unrecognized::new(),
    }
}
