//! The Notary repository, verified in TUF order before anything is imported:
//! root (anchored on the trust dir's or `--root`'s root), timestamp, snapshot,
//! targets, then each delegated role; each file checked against the hash and length
//! its parent lists, each signed by its threshold, none expired.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::NotaryError;
use super::dialect::{self, Authority, Expiry, NotaryKey};
use super::fetch::{MAX_METADATA, NotaryServer};

/// A role's keys and threshold, verified.
#[derive(Clone, Debug)]
pub struct RoleKeys {
    /// The keys.
    pub keys: Vec<NotaryKey>,
    /// Distinct signatures required.
    pub threshold: u64,
}

/// A delegated role (`targets/releases`), verified through its delegator.
#[derive(Clone, Debug)]
pub struct Delegation {
    /// Notary's name (`targets/releases`).
    pub name: String,
    /// Its keys and threshold.
    pub role: RoleKeys,
    /// Notary path prefixes it may sign (`""` = everything).
    pub paths: Vec<String>,
}

/// One signed tag.
#[derive(Clone, Debug)]
pub struct SignedTag {
    /// The target name (the tag).
    pub name: String,
    /// The Notary role that signed it (`targets`, `targets/releases`).
    pub role: String,
    /// Manifest sha256, hex.
    pub sha256: String,
    /// Manifest length.
    pub length: u64,
}

/// Everything a verified Notary repository says.
#[derive(Clone, Debug)]
pub struct VerifiedNotary {
    /// Root's keys and threshold.
    pub root: RoleKeys,
    /// The top-level targets role's keys and threshold.
    pub targets: RoleKeys,
    /// The snapshot role's keys and threshold.
    pub snapshot: RoleKeys,
    /// Delegated roles, parents before children.
    pub delegations: Vec<Delegation>,
    /// Every signed tag.
    pub tags: Vec<SignedTag>,
}

/// A targets role still to read: its name, the keys and authority its delegator
/// gave it, and the paths it may sign (`None`: all).
type Pending = (
    String,
    BTreeMap<String, NotaryKey>,
    Authority,
    Option<Vec<String>>,
);

fn role_keys(
    role: &str,
    keys: &BTreeMap<String, NotaryKey>,
    auth: &Authority,
) -> Result<RoleKeys, NotaryError> {
    let keys = auth
        .keyids
        .iter()
        .map(|id| {
            keys.get(id).cloned().ok_or_else(|| NotaryError::Malformed {
                role: role.to_owned(),
                detail: format!("key {id} is listed but not defined"),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(RoleKeys {
        keys,
        threshold: auth.threshold,
    })
}

struct RootInfo {
    keys: BTreeMap<String, NotaryKey>,
    roles: BTreeMap<String, Authority>,
    version: u64,
}

fn root_info(signed: &Value) -> Result<RootInfo, NotaryError> {
    let keys = dialect::parse_keys("root", &signed["keys"])?;
    let mut roles = BTreeMap::new();
    for name in ["root", "targets", "snapshot", "timestamp"] {
        roles.insert(
            name.to_owned(),
            Authority::from_json(name, &signed["roles"][name])?,
        );
    }
    Ok(RootInfo {
        keys,
        roles,
        version: dialect::version("root", signed)?,
    })
}

fn self_signed_root(bytes: &[u8], expiry: Expiry) -> Result<RootInfo, NotaryError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| NotaryError::Malformed {
        role: "root".into(),
        detail: format!("not JSON: {e}"),
    })?;
    let info = root_info(&v["signed"])?;
    dialect::check_at(
        "root",
        "Root",
        bytes,
        &info.keys,
        &info.roles["root"],
        expiry,
    )?;
    Ok(info)
}

/// One step of the root chain (5.3.4 / 5.3.5 of the spec, as Notary rotates roots):
/// `bytes` must be signed by the threshold of the trusted root's root keys and by
/// its own, and be exactly version `want` when given (an intermediate root, whose
/// expiry does not count) else at least the trusted version (the final root, which
/// must not have expired at `now`: 5.3.10).
fn next_root(
    trusted: &RootInfo,
    bytes: &[u8],
    want: Option<u64>,
    now: DateTime<Utc>,
) -> Result<RootInfo, NotaryError> {
    let expiry = match want {
        Some(_) => Expiry::Ignored,
        None => Expiry::At(now),
    };
    let next = self_signed_root(bytes, expiry)?;
    dialect::check_at(
        "root",
        "Root",
        bytes,
        &trusted.keys,
        &trusted.roles["root"],
        Expiry::Ignored,
    )
    .map_err(|e| NotaryError::NotAnchored {
        detail: format!("root version {}: {e}", next.version),
    })?;
    match want {
        Some(v) if next.version != v => Err(NotaryError::NotAnchored {
            detail: format!("{v}.root.json says it is version {}", next.version),
        }),
        None if next.version < trusted.version => Err(NotaryError::Rollback {
            role: "root".into(),
            trusted: trusted.version,
            offered: next.version,
        }),
        _ => Ok(next),
    }
}

/// From the trusted root to the server's current one (`current`, the bytes of its
/// `root.json`) through every version between (`<N>.root.json`, as a TUF client
/// walks rotations): each version must be signed by the one before it, so a user
/// whose trust dir pins root v1 follows the rotations to v3, and a root the
/// trusted keys never vouched for is refused.
fn follow_roots(
    server: &NotaryServer,
    mut trusted: RootInfo,
    current: &[u8],
    now: DateTime<Utc>,
) -> Result<RootInfo, NotaryError> {
    let offered = root_version(current)?;
    if offered.saturating_sub(trusted.version) > MAX_ROOT_ROTATIONS {
        return Err(NotaryError::NotAnchored {
            detail: format!(
                "the server's root is version {offered}, more than {MAX_ROOT_ROTATIONS} rotations past the trusted {}",
                trusted.version
            ),
        });
    }
    for n in trusted.version.saturating_add(1)..offered {
        let bytes = server.get(&format!("{n}.root"), MAX_METADATA)?;
        trusted = next_root(&trusted, &bytes, Some(n), now)?;
    }
    next_root(&trusted, current, None, now)
}

/// The `version` a root.json claims (read before it is verified, only to know how
/// many older roots to fetch).
fn root_version(bytes: &[u8]) -> Result<u64, NotaryError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| NotaryError::Malformed {
        role: "root".into(),
        detail: format!("not JSON: {e}"),
    })?;
    dialect::version("root", &v["signed"])
}

/// Root rotations followed at most (endless-data protection: a hostile server
/// claiming root version 2^60 does not make the import fetch forever).
const MAX_ROOT_ROTATIONS: u64 = 1024;

/// Verify the server's repository for the anchor root `anchor` (bytes of a
/// root.json the user already trusts); `last_seen` holds the versions the user's Notary
/// client last trusted (from the trust dir), which the server may not go below.
pub fn verify(
    server: &NotaryServer,
    anchor: &[u8],
    last_seen: &BTreeMap<String, u64>,
    now: DateTime<Utc>,
) -> Result<VerifiedNotary, NotaryError> {
    // The anchor may have expired (a reason to have rotated since): only the root
    // the walk ends at must be current.
    let trusted = self_signed_root(anchor, Expiry::Ignored).map_err(NotaryError::anchor)?;
    let root_bytes = server.get("root", MAX_METADATA)?;
    let root = if root_bytes == anchor {
        self_signed_root(anchor, Expiry::At(now))?
    } else {
        follow_roots(server, trusted, &root_bytes, now)?
    };
    let ts_bytes = server.get("timestamp", 64 << 10)?;
    let ts = dialect::check(
        "timestamp",
        "Timestamp",
        &ts_bytes,
        &root.keys,
        &root.roles["timestamp"],
        now,
    )?;
    not_older("timestamp", &ts.signed, last_seen)?;
    let snap_meta = &ts.signed["meta"]["snapshot"];
    let snap_cap = snap_meta["length"].as_u64().unwrap_or(MAX_METADATA);
    let snap_bytes = signed_length(
        server.get("snapshot", snap_cap.min(MAX_METADATA)),
        "snapshot",
    )?;
    dialect::check_meta("snapshot", snap_meta, &snap_bytes)?;
    let snap = dialect::check(
        "snapshot",
        "Snapshot",
        &snap_bytes,
        &root.keys,
        &root.roles["snapshot"],
        now,
    )?;
    not_older("snapshot", &snap.signed, last_seen)?;
    // The snapshot must list this very root: no mix of a root and another snapshot.
    dialect::check_meta("root", &snap.signed["meta"]["root"], &root_bytes)?;

    let mut tags = Vec::new();
    let mut delegations = Vec::new();
    // (role name, its verified keys, its authority, paths it may sign)
    let mut queue: Vec<Pending> = vec![(
        "targets".to_owned(),
        root.keys.clone(),
        root.roles["targets"].clone(),
        None,
    )];
    let mut seen = 0usize;
    while let Some((name, keys, auth, paths)) = queue.pop() {
        seen += 1;
        if seen > 256 {
            return Err(NotaryError::Malformed {
                role: name,
                detail: "more than 256 delegated roles".into(),
            });
        }
        let meta = &snap.signed["meta"][name.as_str()];
        let cap = meta["length"].as_u64().unwrap_or(MAX_METADATA);
        let bytes = signed_length(server.get(&name, cap.min(MAX_METADATA)), &name)?;
        dialect::check_meta(&name, meta, &bytes)?;
        let checked = dialect::check(&name, "Targets", &bytes, &keys, &auth, now)?;
        let signed = &checked.signed;
        not_older(&name, signed, last_seen)?;
        if let Some(map) = signed["targets"].as_object() {
            for (target, file) in map {
                if let Some(p) = &paths
                    && !p.iter().any(|prefix| target.starts_with(prefix.as_str()))
                {
                    return Err(NotaryError::Malformed {
                        role: name.clone(),
                        detail: format!("signs {target:?}, outside its delegated paths"),
                    });
                }
                let hash =
                    file["hashes"]["sha256"]
                        .as_str()
                        .ok_or_else(|| NotaryError::Malformed {
                            role: name.clone(),
                            detail: format!("target {target} has no sha256"),
                        })?;
                tags.push(SignedTag {
                    name: target.clone(),
                    role: name.clone(),
                    sha256: dialect::hash_hex(&name, target, hash)?,
                    length: file["length"]
                        .as_u64()
                        .ok_or_else(|| NotaryError::Malformed {
                            role: name.clone(),
                            detail: format!("target {target} has no length"),
                        })?,
                });
            }
        }
        let dkeys = match signed["delegations"].get("keys") {
            Some(k) => dialect::parse_keys(&name, k)?,
            None => BTreeMap::new(),
        };
        for d in signed["delegations"]["roles"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let child = d["name"].as_str().unwrap_or_default().to_owned();
            if !child.starts_with(&format!("{name}/")) {
                return Err(NotaryError::Malformed {
                    role: name.clone(),
                    detail: format!("delegated role {child:?} is not under {name}/"),
                });
            }
            let auth = Authority::from_json(&child, d)?;
            let child_paths: Vec<String> = d["paths"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            // A child may sign only within its parent's paths too: narrow to those.
            let effective: Vec<String> = match &paths {
                None => child_paths.clone(),
                Some(parent) => child_paths
                    .iter()
                    .filter(|c| parent.iter().any(|p| c.starts_with(p.as_str())))
                    .cloned()
                    .collect(),
            };
            delegations.push(Delegation {
                name: child.clone(),
                role: role_keys(&child, &dkeys, &auth)?,
                paths: child_paths,
            });
            if meta_listed(&snap.signed, &child) {
                queue.push((child, dkeys.clone(), auth, Some(effective)));
            }
        }
    }
    Ok(VerifiedNotary {
        root: role_keys("root", &root.keys, &root.roles["root"])?,
        targets: role_keys("targets", &root.keys, &root.roles["targets"])?,
        snapshot: role_keys("snapshot", &root.keys, &root.roles["snapshot"])?,
        delegations,
        tags,
    })
}

/// 5.4.3 / 5.5.5 of the spec, against the user's last DCT state: a role version
/// below the one their Notary client already trusted is a rollback.
fn not_older(role: &str, signed: &Value, seen: &BTreeMap<String, u64>) -> Result<(), NotaryError> {
    let offered = dialect::version(role, signed)?;
    match seen.get(role) {
        Some(&trusted) if offered < trusted => Err(NotaryError::Rollback {
            role: role.to_owned(),
            trusted,
            offered,
        }),
        _ => Ok(()),
    }
}

/// A body longer than the length its parent signed is tampering (or endless data),
/// not a network problem: say so, as a trust failure.
fn signed_length(got: Result<Vec<u8>, NotaryError>, role: &str) -> Result<Vec<u8>, NotaryError> {
    got.map_err(|e| match e {
        NotaryError::TooLarge { cap, .. } if cap < MAX_METADATA => NotaryError::LongerThanSigned {
            role: role.to_owned(),
            length: cap,
        },
        e => e,
    })
}

/// A delegated role that never published has no snapshot entry: nothing to read.
fn meta_listed(snapshot: &Value, role: &str) -> bool {
    snapshot["meta"].get(role).is_some()
}
