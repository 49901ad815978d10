//! `warrant inspect`: the verified state of a repository, role by role.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::crypto::KeyId;
use crate::store::Location;
use std::collections::BTreeMap;

use crate::tuf::metadata::Key;

use super::repository::Repository;
use super::trust::Pin;
use super::{Context, OpError};

/// One role as inspect shows it (the fields `--output json` carries; see the
/// README's "inspect output" table).
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    /// Role name (`role` in JSON, as in `status`, `pending` and `sign`).
    #[serde(rename = "role")]
    pub name: String,
    /// The role that delegates to it (`root` for the top-level roles).
    pub delegator: String,
    /// Version of its metadata.
    pub version: u64,
    /// Expiry.
    pub expires: DateTime<Utc>,
    /// Authorized key ids.
    pub keyids: Vec<KeyId>,
    /// Names of those keys in this key store, where known (same order as `keyids`;
    /// `null` for keys this home does not know).
    pub key_names: Vec<Option<String>>,
    /// Threshold.
    pub threshold: u64,
    /// Key ids that signed the current version.
    pub signed_by: Vec<KeyId>,
    /// Tag patterns a delegated role may sign (`None` for top-level roles).
    pub paths: Option<Vec<String>>,
    /// A delegated role whose match stops the search.
    pub terminating: bool,
}

/// One signed target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    /// Target path (tag or digest) (`target` in JSON, as in `verify`).
    #[serde(rename = "target")]
    pub name: String,
    /// The role a verify finds it in first (search order).
    pub role: String,
    /// Every role that signed this same digest for the name.
    pub signed_by_roles: Vec<String>,
    /// Digest of the manifest.
    pub digest: String,
    /// Manifest size (`size` in JSON, as in `verify` and `sign`).
    #[serde(rename = "size")]
    pub length: u64,
    /// Media type, when recorded.
    pub media_type: Option<String>,
}

/// A pending version as inspect shows it: who signed, who still has to.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRole {
    /// The role.
    pub role: String,
    /// The pending version.
    pub version: u64,
    /// Threshold of valid signatures it needs.
    pub threshold: u64,
    /// Key ids whose valid signatures it has.
    pub signed_by: Vec<KeyId>,
    /// Key ids that could still approve it (`warrant approve REPO --role ROLE`).
    pub awaiting: Vec<KeyId>,
    /// Names of `awaiting` in this key store, where known (same order).
    pub awaiting_names: Vec<Option<String>>,
    /// Why it cannot be reviewed, when it cannot (then nobody can approve it as is).
    pub problem: Option<String>,
}

/// The verified state of a repository.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The repository.
    pub location: String,
    /// Whether the repository uses consistent snapshots.
    pub consistent_snapshot: bool,
    /// The top-level roles, then every delegated role in search order.
    pub roles: Vec<RoleView>,
    /// Key types by key id, root's keys (JSON: `[{"keyid", "keytype"}]`, as `key list`).
    #[serde(serialize_with = "keys_as_objects")]
    pub keys: Vec<(KeyId, String)>,
    /// Every target of every role, by name.
    pub targets: Vec<TargetView>,
    /// Versions waiting for approvals (not yet trusted by verifiers).
    pub pending: Vec<PendingRole>,
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

/// Inspect the repository at `location` (verified like `verify` does, the whole
/// delegation tree included).
pub fn inspect(ctx: &Context, location: &Location, pin: &Pin) -> Result<Inspection, OpError> {
    let repo = Repository::open(ctx, location, pin)?;
    let mut up = repo.refresh(true)?;
    let order = up
        .load_delegation_tree()
        .map_err(|source| OpError::Update {
            location: location.to_string(),
            source,
        })?;
    let listing = repo.with_listing(Clone::clone)?;
    let reviews = super::approve::pending_in(repo.store(), &mut up, &listing, ctx.now);
    let known: BTreeMap<KeyId, String> = ctx
        .keys
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.keyid, k.name))
        .collect();
    let names = |ids: &[KeyId]| ids.iter().map(|k| known.get(k).cloned()).collect();
    let trusted = up.trusted();
    let root = trusted.root();
    let signed_by = |r: &crate::tuf::verify::VerificationResult| r.signed.iter().cloned().collect();
    let mut roles = Vec::new();
    let mut top = |name: &str, version: u64, expires, signed: Vec<KeyId>| {
        let (keyids, threshold) = root
            .roles
            .get(name)
            .map(|r| (r.keyids.clone(), r.threshold.get()))
            .unwrap_or_default();
        roles.push(RoleView {
            name: name.into(),
            delegator: "root".into(),
            version,
            expires,
            key_names: names(&keyids),
            keyids,
            threshold,
            signed_by: signed,
            paths: None,
            terminating: false,
        });
    };
    top(
        "root",
        root.version.get(),
        root.expires,
        signed_by(root.result()),
    );
    if let Some(t) = trusted.targets("targets") {
        top("targets", t.version.get(), t.expires, signed_by(t.result()));
    }
    if let Some(s) = trusted.snapshot() {
        top(
            "snapshot",
            s.version.get(),
            s.expires,
            signed_by(s.result()),
        );
    }
    if let Some(t) = trusted.timestamp() {
        top(
            "timestamp",
            t.version.get(),
            t.expires,
            signed_by(t.result()),
        );
    }
    let mut targets: BTreeMap<String, TargetView> = BTreeMap::new();
    for (role, delegator) in &order {
        let Some(t) = trusted.targets(role) else {
            continue;
        };
        if role != "targets" {
            let entry = trusted.targets(delegator).and_then(|p| {
                p.delegations
                    .as_ref()
                    .and_then(|d| d.roles.iter().flatten().find(|r| &r.name == role))
            });
            let (keyids, threshold, paths, terminating) = entry.map_or_else(
                || (Vec::new(), 0, None, false),
                |e| {
                    (
                        e.keyids.clone(),
                        e.threshold.get(),
                        e.paths.clone(),
                        e.terminating,
                    )
                },
            );
            roles.push(RoleView {
                name: role.clone(),
                delegator: delegator.clone(),
                version: t.version.get(),
                expires: t.expires,
                key_names: names(&keyids),
                keyids,
                threshold,
                signed_by: signed_by(t.result()),
                paths,
                terminating,
            });
        }
        for (name, f) in &t.targets {
            let digest = f
                .sha256()
                .map_or_else(|| "(no sha256)".into(), |d| d.to_string());
            let view = targets.entry(name.clone()).or_insert_with(|| TargetView {
                name: name.clone(),
                role: role.clone(),
                signed_by_roles: Vec::new(),
                digest: digest.clone(),
                length: f.length,
                media_type: f.media_type().map(str::to_owned),
            });
            if view.digest == digest {
                view.signed_by_roles.push(role.clone());
            }
        }
    }
    let keys = root
        .keys
        .iter()
        .map(|(id, k): (&KeyId, &Key)| (id.clone(), k.keytype.clone()))
        .collect();
    let pending = reviews
        .into_iter()
        .map(|(file, review)| match review {
            Ok(v) => PendingRole {
                awaiting_names: names(&v.missing),
                role: v.role,
                version: v.version,
                threshold: v.threshold,
                signed_by: v.signed,
                awaiting: v.missing,
                problem: None,
            },
            Err(e) => PendingRole {
                role: file,
                version: 0,
                threshold: 0,
                signed_by: Vec::new(),
                awaiting: Vec::new(),
                awaiting_names: Vec::new(),
                problem: Some(e.to_string()),
            },
        })
        .collect();
    Ok(Inspection {
        location: location.to_string(),
        consistent_snapshot: root.consistent_snapshot == Some(true),
        roles,
        keys,
        targets: targets.into_values().collect(),
        pending,
    })
}
