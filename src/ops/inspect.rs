//! `warrant inspect`: the verified state of a repository, role by role.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::crypto::KeyId;
use crate::store::Location;
use crate::tuf::metadata::{Key, TargetFile};

use super::trust::{Pin, anchor, open_store, update};
use super::{Context, OpError};

/// One role as inspect shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    /// Role name (`role` in JSON, as in `status`, `pending` and `sign`).
    #[serde(rename = "role")]
    pub name: String,
    /// Version of its metadata.
    pub version: u64,
    /// Expiry.
    pub expires: DateTime<Utc>,
    /// Authorized key ids.
    pub keyids: Vec<KeyId>,
    /// Threshold.
    pub threshold: u64,
    /// Key ids that signed the current version.
    pub signed_by: Vec<KeyId>,
}

/// One target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    /// Target path (tag or digest) (`target` in JSON, as in `verify`).
    #[serde(rename = "target")]
    pub name: String,
    /// The role that signs it.
    pub role: String,
    /// Digest of the manifest.
    pub digest: String,
    /// Manifest size (`size` in JSON, as in `verify` and `sign`).
    #[serde(rename = "size")]
    pub length: u64,
    /// Media type, when recorded.
    pub media_type: Option<String>,
}

/// The verified state of a repository.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The repository.
    pub location: String,
    /// Whether the repository uses consistent snapshots.
    pub consistent_snapshot: bool,
    /// The four top-level roles and any loaded delegated roles.
    pub roles: Vec<RoleView>,
    /// Key types by key id (JSON: `[{"keyid", "keytype"}]`, as `key list`).
    #[serde(serialize_with = "keys_as_objects")]
    pub keys: Vec<(KeyId, String)>,
    /// Every target of the top-level targets role.
    pub targets: Vec<TargetView>,
}

fn keys_as_objects<S: serde::Serializer>(
    keys: &[(KeyId, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut seq = s.serialize_seq(Some(keys.len()))?;
    for (keyid, keytype) in keys {
        seq.serialize_element(&serde_json::json!({ "keyid": keyid, "keytype": keytype }))?;
    }
    seq.end()
}

fn target_view(name: &str, role: &str, t: &TargetFile) -> TargetView {
    TargetView {
        name: name.to_owned(),
        role: role.to_owned(),
        digest: t
            .sha256()
            .map_or_else(|| "(no sha256)".into(), |d| d.to_string()),
        length: t.length,
        media_type: t.media_type().map(str::to_owned),
    }
}

/// Inspect the repository at `location` (verified like `verify` does).
pub fn inspect(ctx: &Context, location: &Location, pin: &Pin) -> Result<Inspection, OpError> {
    let store = open_store(ctx, location)?;
    let cache = anchor(ctx, store.as_ref(), pin)?;
    let up = update(ctx, store.as_ref(), cache, true)?;
    let trusted = up.trusted();
    let root = trusted.root();
    let mut roles = Vec::new();
    let signed_by = |r: &crate::tuf::verify::VerificationResult| r.signed.iter().cloned().collect();
    let keys_of = |name: &str| {
        root.roles
            .get(name)
            .map(|r| (r.keyids.clone(), r.threshold.get()))
            .unwrap_or_default()
    };
    let mut push = |name: &str, version: u64, expires, signed: Vec<KeyId>| {
        let (keyids, threshold) = keys_of(name);
        roles.push(RoleView {
            name: name.into(),
            version,
            expires,
            keyids,
            threshold,
            signed_by: signed,
        });
    };
    push(
        "root",
        root.version.get(),
        root.expires,
        signed_by(root.result()),
    );
    if let Some(t) = trusted.targets("targets") {
        push("targets", t.version.get(), t.expires, signed_by(t.result()));
    }
    if let Some(s) = trusted.snapshot() {
        push(
            "snapshot",
            s.version.get(),
            s.expires,
            signed_by(s.result()),
        );
    }
    if let Some(t) = trusted.timestamp() {
        push(
            "timestamp",
            t.version.get(),
            t.expires,
            signed_by(t.result()),
        );
    }
    let keys = root
        .keys
        .iter()
        .map(|(id, k): (&KeyId, &Key)| (id.clone(), k.keytype.clone()))
        .collect();
    let targets = trusted
        .targets("targets")
        .map(|t| {
            t.targets
                .iter()
                .map(|(n, f)| target_view(n, "targets", f))
                .collect()
        })
        .unwrap_or_default();
    Ok(Inspection {
        location: location.to_string(),
        consistent_snapshot: root.consistent_snapshot == Some(true),
        roles,
        keys,
        targets,
    })
}
