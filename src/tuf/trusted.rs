//! The trust state machine: an I/O-free port of python-tuf's `TrustedMetadataSet`.
//!
//! It holds the metadata trusted so far and accepts new metadata only in spec order
//! (root → timestamp → snapshot → targets → delegated targets), performing every
//! check of spec §5 on the bytes given. Fetching, caching and delegation search live
//! in [`super::client`]; this type never does I/O, so every check is unit-testable.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256, Sha512};

use super::index::TargetIndex;
use super::metadata::{Delegations, MetaFile, Root, Snapshot, Targets, Timestamp};
use super::verify::{Authority, MetadataError, Untrusted, Verified};

/// A spec §5 check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Signature, type or format problem.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// 5.3.5 / 5.4.3 / 5.5.5 / 5.6.4: a version went backwards.
    #[error("rollback attack: {role} version {new} is older than trusted version {trusted}")]
    Rollback {
        /// The role.
        role: String,
        /// The version we trust.
        trusted: u64,
        /// The version offered.
        new: u64,
    },
    /// 5.3.10 / 5.4.4 / 5.5.6 / 5.6.5: freeze attack or a repository nobody refreshed.
    #[error(
        "{role} metadata expired at {expires} (freeze attack, or the repository needs {})",
        renewal_hint(role)
    )]
    Expired {
        /// The role.
        role: String,
        /// When it expired.
        expires: DateTime<Utc>,
    },
    /// 5.3.5 root N+1 does not say N+1; 5.5.4 / 5.6.4 version differs from snapshot.
    #[error("{role} version {actual} does not match the expected version {expected} ({why})")]
    VersionMismatch {
        /// The role.
        role: String,
        /// Expected version.
        expected: u64,
        /// Version found.
        actual: u64,
        /// Which reference it must match.
        why: &'static str,
    },
    /// 5.5.2 / 5.6.2: bytes do not match the hash or length their referrer recorded
    /// (mix-and-match or substituted file).
    #[error("{role} metadata does not match the {what} recorded in {referrer}")]
    HashMismatch {
        /// The role.
        role: String,
        /// `length`, `sha256`, `sha512`, or `hashes` (none known).
        what: String,
        /// `timestamp` or `snapshot`.
        referrer: &'static str,
    },
    /// 5.5.5: a targets role present in the trusted snapshot vanished from the new one.
    #[error(
        "snapshot version {new} drops {role}, which trusted snapshot listed (rollback/mix-and-match)"
    )]
    RoleRemoved {
        /// The dropped role file.
        role: String,
        /// New snapshot version.
        new: u64,
    },
    /// The referrer does not list the role at all.
    #[error("{role} is not listed in {referrer}")]
    NotListed {
        /// The role.
        role: String,
        /// `timestamp`, `snapshot` or the delegator.
        referrer: String,
    },
    /// Metadata offered out of spec order (a client bug, or a bad cache).
    #[error("{0}")]
    Order(&'static str),
    /// Root lists a bad role set or threshold.
    #[error("root metadata is invalid: {0}")]
    BadRoot(String),
    /// A local target index no longer matches the trusted metadata (a new version,
    /// other keys, a rewritten cache file): it is not used, the role is verified in
    /// full instead.
    #[error("the local index of {role} is stale: {why}")]
    StaleIndex {
        /// The role.
        role: String,
        /// What differs.
        why: &'static str,
    },
}

/// What happened to a timestamp update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp is now trusted.
    New,
    /// The same version as the trusted one: keep the trusted one and stop (5.4.3.1).
    Unchanged,
}

fn authority<'a>(root: &'a Root, role: &str) -> Result<Authority<'a>, TrustError> {
    let r = root
        .roles
        .get(role)
        .ok_or_else(|| TrustError::BadRoot(format!("no {role} role")))?;
    Ok(Authority {
        keys: &root.keys,
        keyids: &r.keyids,
        threshold: r.threshold,
    })
}

fn root_shape(root: &Root) -> Result<(), String> {
    for role in super::metadata::TOP_LEVEL_ROLES {
        if !root.roles.contains_key(role) {
            return Err(format!("root is missing the {role} role"));
        }
    }
    if root.roles.len() != 4 {
        return Err("root roles must be exactly root, targets, snapshot, timestamp".into());
    }
    Ok(())
}

/// Check `data` against the length and hashes a `meta` entry records (5.5.2, 5.6.2).
/// Hashes we do not know are ignored, but at least one known hash must match when
/// hashes are present.
pub fn check_meta_hashes(
    role: &str,
    referrer: &'static str,
    meta: &MetaFile,
    data: &[u8],
) -> Result<(), TrustError> {
    let mismatch = |what: &str| TrustError::HashMismatch {
        role: role.to_owned(),
        what: what.to_owned(),
        referrer,
    };
    if let Some(len) = meta.length
        && len != data.len() as u64
    {
        return Err(mismatch("length"));
    }
    if let Some(hashes) = &meta.hashes {
        let mut known = 0;
        for (alg, expected) in hashes {
            let actual = match alg.as_str() {
                "sha256" => hex::encode(Sha256::digest(data)),
                "sha512" => hex::encode(Sha512::digest(data)),
                _ => continue,
            };
            known += 1;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(mismatch(alg));
            }
        }
        if known == 0 {
            return Err(mismatch("hashes (no supported algorithm)"));
        }
    }
    Ok(())
}

/// Trusted metadata, updated strictly in spec order.
#[derive(Debug)]
pub struct TrustedSet {
    now: DateTime<Utc>,
    root: Verified<Root>,
    timestamp: Option<Verified<Timestamp>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: BTreeMap<String, Verified<Targets>>,
    /// Roles stood in for by a verified local index (see [`TrustedSet::accept_index`]),
    /// with the delegator they were accepted through.
    indexed: BTreeMap<String, (TargetIndex, String)>,
    expiry: Expiry,
}

/// Whether expiry is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Every check of the spec, expiry included (verification).
    Enforced,
    /// Expired metadata is still loaded. **Only for repository editors** that are
    /// about to re-sign it (`warrant refresh` must work on an expired timestamp);
    /// signatures, versions, hashes and rollback checks all still apply. Never use
    /// it to decide whether to trust an image.
    IgnoredForEditing,
}

/// The command that renews `role` (for messages).
pub fn renewal_hint(role: &str) -> String {
    match role {
        "snapshot" | "timestamp" => "`warrant refresh` with the publisher key".into(),
        other => format!("`warrant renew REPO --role {other}` by its key holders"),
    }
}

impl TrustedSet {
    /// 5.2: load the trusted root (from the cache or a pin). It must be signed by a
    /// threshold of its own root keys; it may be expired (5.3.10 checks the final root).
    pub fn new(root_bytes: Vec<u8>, now: DateTime<Utc>) -> Result<Self, TrustError> {
        let root = Untrusted::parse("root", root_bytes)?.verify_self_signed_root(root_shape)?;
        Ok(Self {
            now,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
            indexed: BTreeMap::new(),
            expiry: Expiry::Enforced,
        })
    }

    /// The trusted root.
    pub fn root(&self) -> &Verified<Root> {
        &self.root
    }
    /// The trusted timestamp, if loaded.
    pub fn timestamp(&self) -> Option<&Verified<Timestamp>> {
        self.timestamp.as_ref()
    }
    /// The trusted snapshot, if loaded.
    pub fn snapshot(&self) -> Option<&Verified<Snapshot>> {
        self.snapshot.as_ref()
    }
    /// A trusted targets role (`targets` or delegated), if loaded.
    pub fn targets(&self, role: &str) -> Option<&Verified<Targets>> {
        self.targets.get(role)
    }
    /// Every targets role trusted so far (top-level and delegated), by name.
    /// Roles stood in for by an index are not here (see [`TrustedSet::role_expiries`]).
    pub fn loaded_targets(&self) -> impl Iterator<Item = (&str, &Verified<Targets>)> {
        self.targets.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The time every expiry is compared with.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// 5.3.4–5.3.9: accept root N+1, signed by a threshold of root N's keys *and* of
    /// its own, with version exactly N+1. Only before a timestamp is loaded.
    pub fn update_root(&mut self, bytes: Vec<u8>) -> Result<&Verified<Root>, TrustError> {
        if self.timestamp.is_some() {
            return Err(TrustError::Order("cannot update root after timestamp"));
        }
        let untrusted = Untrusted::parse("root", bytes)?;
        // 5.3.4: the trusted root's threshold first, over the untyped bytes.
        untrusted.check(authority(&self.root, "root")?)?;
        // 5.3.5: and the new root's own threshold.
        let new = untrusted.verify_self_signed_root(root_shape)?;
        let expected = self.root.version.get() + 1;
        if new.version.get() != expected {
            return Err(TrustError::VersionMismatch {
                role: "root".into(),
                expected,
                actual: new.version.get(),
                why: "root versions must increase by exactly one",
            });
        }
        self.root = new;
        Ok(&self.root)
    }

    /// 5.3.10: the final root must not be expired.
    pub fn check_root_expiry(&self) -> Result<(), TrustError> {
        self.check_expiry("root", self.root.expires)
    }

    /// Load expired metadata too (see [`Expiry::IgnoredForEditing`]).
    pub fn set_expiry(&mut self, expiry: Expiry) {
        self.expiry = expiry;
    }

    fn check_expiry(&self, role: &str, expires: DateTime<Utc>) -> Result<(), TrustError> {
        if expires <= self.now && self.expiry == Expiry::Enforced {
            return Err(TrustError::Expired {
                role: role.to_owned(),
                expires,
            });
        }
        Ok(())
    }

    /// 5.4: accept a timestamp signed by root's timestamp keys, not older than the
    /// trusted one, whose snapshot version does not go back. The new timestamp is
    /// kept even when expired (so its version still protects against rollback), but
    /// expiry is then reported as an error (5.4.4).
    pub fn update_timestamp(&mut self, bytes: Vec<u8>) -> Result<TimestampUpdate, TrustError> {
        if self.snapshot.is_some() {
            return Err(TrustError::Order("cannot update timestamp after snapshot"));
        }
        self.check_root_expiry()?;
        let new: Verified<Timestamp> =
            Untrusted::parse("timestamp", bytes)?.verify(authority(&self.root, "timestamp")?)?;
        let new_snap = new.snapshot_meta().ok_or_else(|| TrustError::NotListed {
            role: "snapshot.json".into(),
            referrer: "timestamp".into(),
        })?;
        if new.meta.len() != 1 {
            return Err(TrustError::Metadata(MetadataError::Malformed {
                role: "timestamp".into(),
                detail: "meta must list only snapshot.json".into(),
            }));
        }
        if let Some(old) = &self.timestamp {
            if new.version < old.version {
                return Err(TrustError::Rollback {
                    role: "timestamp".into(),
                    trusted: old.version.get(),
                    new: new.version.get(),
                });
            }
            if new.version == old.version {
                // 5.4.3.1: same version, keep the trusted one.
                self.check_expiry("timestamp", old.expires)?;
                return Ok(TimestampUpdate::Unchanged);
            }
            if let Some(old_snap) = old.snapshot_meta()
                && new_snap.version < old_snap.version
            {
                return Err(TrustError::Rollback {
                    role: "snapshot (per timestamp)".into(),
                    trusted: old_snap.version.get(),
                    new: new_snap.version.get(),
                });
            }
        }
        let expires = new.expires;
        self.timestamp = Some(new);
        self.check_expiry("timestamp", expires)?;
        Ok(TimestampUpdate::New)
    }

    /// 5.5: accept a snapshot matching the timestamp's hash/length (unless it comes
    /// from the trusted cache, whose bytes we verified before), signed by root's
    /// snapshot keys, with no targets role going back or disappearing. Like timestamp,
    /// the new snapshot is kept even when it then fails the final checks.
    pub fn update_snapshot(&mut self, bytes: Vec<u8>, from_cache: bool) -> Result<(), TrustError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(TrustError::Order("cannot update snapshot before timestamp"))?;
        if self.is_loaded("targets") {
            return Err(TrustError::Order("cannot update snapshot after targets"));
        }
        self.check_expiry("timestamp", ts.expires)?;
        let meta = ts.snapshot_meta().ok_or_else(|| TrustError::NotListed {
            role: "snapshot.json".into(),
            referrer: "timestamp".into(),
        })?;
        if !from_cache {
            check_meta_hashes("snapshot", "timestamp", meta, &bytes)?;
        }
        let new: Verified<Snapshot> =
            Untrusted::parse("snapshot", bytes)?.verify(authority(&self.root, "snapshot")?)?;
        if let Some(old) = &self.snapshot {
            for (name, old_meta) in &old.meta {
                match new.meta.get(name) {
                    None => {
                        return Err(TrustError::RoleRemoved {
                            role: name.clone(),
                            new: new.version.get(),
                        });
                    }
                    Some(m) if m.version < old_meta.version => {
                        return Err(TrustError::Rollback {
                            role: name.trim_end_matches(".json").to_owned(),
                            trusted: old_meta.version.get(),
                            new: m.version.get(),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        self.snapshot = Some(new);
        self.check_final_snapshot()
    }

    /// 5.5.4 and 5.5.6: the trusted snapshot is the version timestamp names and is not
    /// expired. Checked again before any targets role is loaded.
    pub fn check_final_snapshot(&self) -> Result<(), TrustError> {
        let (Some(ts), Some(snap)) = (&self.timestamp, &self.snapshot) else {
            return Err(TrustError::Order("snapshot not loaded"));
        };
        self.check_expiry("snapshot", snap.expires)?;
        if let Some(meta) = ts.snapshot_meta()
            && meta.version != snap.version
        {
            return Err(TrustError::VersionMismatch {
                role: "snapshot".into(),
                expected: meta.version.get(),
                actual: snap.version.get(),
                why: "timestamp names another snapshot version",
            });
        }
        Ok(())
    }

    /// The snapshot `meta` entry for `role`, if any.
    pub fn snapshot_meta(&self, role: &str) -> Option<&MetaFile> {
        self.snapshot.as_ref()?.meta.get(&format!("{role}.json"))
    }

    /// 5.6: accept a targets role (top-level when `delegator` is `root`), checking the
    /// snapshot's hash/length (unless from the trusted cache), the delegator's
    /// threshold, the exact version snapshot names, and expiry.
    pub fn update_targets(
        &mut self,
        role: &str,
        delegator: &str,
        bytes: Vec<u8>,
        from_cache: bool,
    ) -> Result<&Verified<Targets>, TrustError> {
        self.check_final_snapshot()?;
        if delegator != "root" && super::metadata::TOP_LEVEL_ROLES.contains(&role) {
            // A delegated role named like a top-level role would alias it in caches
            // and messages: refuse the whole delegation.
            return Err(TrustError::NotListed {
                role: format!("{role} (a delegated role may not take a top-level role's name)"),
                referrer: delegator.to_owned(),
            });
        }
        let meta = self
            .snapshot_meta(role)
            .ok_or_else(|| TrustError::NotListed {
                role: role.to_owned(),
                referrer: "snapshot".into(),
            })?
            .clone();
        if !from_cache {
            check_meta_hashes(role, "snapshot", &meta, &bytes)?;
        }
        let untrusted = Untrusted::parse(role, bytes)?;
        let new: Verified<Targets> = untrusted.verify(self.role_authority(role, delegator)?)?;
        check_version(role, meta.version, new.version)?;
        self.check_expiry(role, new.expires)?;
        self.indexed.remove(role);
        self.targets.insert(role.to_owned(), new);
        self.targets
            .get(role)
            .ok_or(TrustError::Order("targets role vanished"))
    }

    /// A role already trusted via one delegator, reached again through `delegator`:
    /// its signatures must also satisfy *this* delegator's keys (python-tuf and
    /// go-tuf skip this check).
    pub fn recheck_delegated(&self, role: &str, delegator: &str) -> Result<(), TrustError> {
        let child = self
            .targets
            .get(role)
            .ok_or(TrustError::Order("role not loaded in full"))?;
        child.recheck(authority_in(self.role_delegations(delegator)?, role)?)?;
        Ok(())
    }
}

fn check_version(role: &str, expected: NonZeroU64, actual: NonZeroU64) -> Result<(), TrustError> {
    if expected != actual {
        return Err(TrustError::VersionMismatch {
            role: role.to_owned(),
            expected: expected.get(),
            actual: actual.get(),
            why: "snapshot names another version",
        });
    }
    Ok(())
}

/// The authority a targets role grants to its delegated `role` (named or hash bin).
pub fn delegated_authority<'a>(
    parent: &'a Targets,
    role: &str,
) -> Result<Authority<'a>, TrustError> {
    authority_in(parent.delegations.as_ref(), role)
}

/// The authority `delegations` grant to `role` (named or hash bin).
pub fn authority_in<'a>(
    delegations: Option<&'a Delegations>,
    role: &str,
) -> Result<Authority<'a>, TrustError> {
    let not_delegated = || TrustError::NotListed {
        role: role.to_owned(),
        referrer: "its delegator".into(),
    };
    let d = delegations.ok_or_else(not_delegated)?;
    if let Some(r) = d.roles.iter().flatten().find(|r| r.name == role) {
        return Ok(Authority {
            keys: &d.keys,
            keyids: &r.keyids,
            threshold: r.threshold,
        });
    }
    if let Some(s) = &d.succinct_roles
        && super::delegation::is_bin_name(s, role)
    {
        return Ok(Authority {
            keys: &d.keys,
            keyids: &s.keyids,
            threshold: s.threshold,
        });
    }
    Err(not_delegated())
}

mod indexed;

#[cfg(test)]
mod tests;
