//! The spec §5 update workflow over any remote and any local trusted state.
//!
//! [`Updater`] drives a [`TrustedSet`] (which performs every check) in spec order:
//! trusted root → root rotation chain → timestamp → snapshot → targets → delegation
//! search. Metadata is persisted right after it verifies, as the exact bytes
//! received, and never before; cached metadata that is still valid is reused so an
//! unchanged snapshot or targets role is not downloaded again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::delegation::roles_for_target;
use super::metadata::TargetFile;
use super::trusted::{TimestampUpdate, TrustError, TrustedSet};

/// Size caps for each kind of download (python-tuf's defaults): the endless-data
/// attack stops here.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `N.root.json`.
    pub root: u64,
    /// `timestamp.json`.
    pub timestamp: u64,
    /// Snapshot, when timestamp does not record its length.
    pub snapshot: u64,
    /// Targets roles, when snapshot does not record their length.
    pub targets: u64,
    /// Root versions followed in one refresh (5.3.3).
    pub max_root_rotations: u64,
    /// Roles visited in one delegation search (5.6.7).
    pub max_delegations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            root: 512_000,
            timestamp: 16_384,
            snapshot: 2_000_000,
            targets: 5_000_000,
            max_root_rotations: 32,
            max_delegations: 32,
        }
    }
}

/// Why a fetch failed, as a kind the workflow branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// The file does not exist (ends the root loop, 5.3.3).
    NotFound,
    /// Larger than the cap (endless data).
    TooLarge,
    /// The transport's own integrity check failed (e.g. an OCI blob digest).
    Integrity,
    /// Anything else: network, disk, malformed listing.
    Unavailable,
}

/// A failed fetch.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// What kind of failure.
    pub kind: FetchErrorKind,
    /// A message naming the file and the location.
    pub message: String,
}

/// A metadata file the workflow asks for: a role, and its version when the file
/// name carries one (consistent snapshots, and every root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaName {
    /// The role name, unencoded (`root`, `timestamp`, `targets`, `qa/prod`).
    pub role: String,
    /// The version prefix, if any.
    pub version: Option<u64>,
}

impl MetaName {
    /// `role.json` without a version.
    pub fn unversioned(role: &str) -> Self {
        Self {
            role: role.to_owned(),
            version: None,
        }
    }

    /// `VERSION.role.json`.
    pub fn versioned(role: &str, version: u64) -> Self {
        Self {
            role: role.to_owned(),
            version: Some(version),
        }
    }
}

impl std::fmt::Display for MetaName {
    /// The plain file name (`2.root.json`), as warrant.tuf lists it; HTTP remotes
    /// percent-encode the role part.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(v) => write!(f, "{v}.{}.json", self.role),
            None => write!(f, "{}.json", self.role),
        }
    }
}

/// Where the update workflow downloads metadata from.
pub trait Remote {
    /// Fetch `file` (`2.root.json`, `timestamp.json`, `7.snapshot.json`, ...), at
    /// most `max_bytes`.
    fn fetch(&mut self, file: &MetaName, max_bytes: u64) -> Result<Vec<u8>, FetchError>;
}

/// Where trusted metadata is kept between runs.
pub trait LocalState {
    /// The last trusted bytes of `role` (`root`, `timestamp`, `snapshot`, `targets`,
    /// or a delegated role name), if any.
    fn load(&self, role: &str) -> Option<Vec<u8>>;
    /// Persist `bytes` as the trusted `role` (atomically).
    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), PersistError>;

    /// Where the verified index of targets role `role` lives, when this state keeps
    /// indexes (see [`super::index`]). The default keeps none.
    fn index_path(&self, _role: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// A stamp of the stored file of `role` that changes whenever the file is
    /// rewritten (size, inode, modification and change times); `None` when there is
    /// no such file or no way to tell.
    fn stamp(&self, _role: &str) -> Option<String> {
        None
    }

    /// Store the index of `role` (atomically; it need not be durable: a lost or
    /// torn index is detected and rebuilt).
    fn persist_index(&mut self, _role: &str, _bytes: &[u8]) -> Result<(), PersistError> {
        Ok(())
    }
}

/// The stamp [`LocalState::stamp`] means, for a file on a Unix file system.
pub fn file_stamp(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{}:{}.{}",
        m.len(),
        m.dev(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Persisting trusted metadata failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot save trusted {role} metadata: {detail}")]
pub struct PersistError {
    /// Which role.
    pub role: String,
    /// Why.
    pub detail: String,
}

/// The update workflow failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No trusted root in the local state: the caller must pin one.
    #[error("no trusted root")]
    NoTrustedRoot,
    /// A spec check failed: not trusted.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A file could not be fetched.
    #[error("cannot fetch {name}: {source}")]
    Fetch {
        /// The file.
        name: String,
        /// Why.
        source: FetchError,
    },
    /// Trusted state could not be saved.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// A target found by delegation search, with the role that signed it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundTarget {
    /// The target path.
    pub path: String,
    /// The signing role.
    pub role: String,
    /// Length, hashes, custom.
    pub file: TargetFile,
}

/// The update workflow.
pub struct Updater<R, L> {
    remote: R,
    local: L,
    trusted: TrustedSet,
    limits: Limits,
    /// Editors only: delegated roles whose published version no longer meets its
    /// delegator's threshold (its signer was revoked); skipped by tree walks so the
    /// remaining key holders can re-sign it.
    unverifiable: Option<BTreeSet<String>>,
    use_index: bool,
}

/// `-v`: each role as it is verified, with who signed it (key ids only).
fn log_verified(role: &str, version: u64, r: &crate::tuf::verify::VerificationResult, how: &str) {
    let signers: Vec<&str> = r
        .signed
        .iter()
        .map(|k| crate::crypto::keys::short_id(&k.0))
        .collect();
    tracing::info!(
        "{role} v{version} {how}: verified, signed by {} of threshold {} ({})",
        signers.len(),
        r.threshold,
        signers.join(", ")
    );
}

impl<R: Remote, L: LocalState> Updater<R, L> {
    /// 5.2: start from the trusted root in `local` (verified against itself).
    pub fn new(
        remote: R,
        local: L,
        now: DateTime<Utc>,
        limits: Limits,
    ) -> Result<Self, ClientError> {
        let root = local.load("root").ok_or(ClientError::NoTrustedRoot)?;
        let trusted = TrustedSet::new(root, now)?;
        Ok(Self {
            remote,
            local,
            trusted,
            limits,
            unverifiable: None,
            use_index: false,
        })
    }

    /// Answer target lookups from a verified local index of each targets role when
    /// one matches the trusted metadata, and write one after a role verifies in full
    /// (issue #13: warm verify cost independent of the number of targets). For
    /// verification only; editors need the roles themselves.
    pub fn with_target_index(mut self) -> Self {
        self.use_index = true;
        self
    }

    /// The trusted metadata.
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// For repository editors only: load expired metadata too (see
    /// [`super::trusted::Expiry::IgnoredForEditing`]).
    pub fn for_editing(mut self) -> Self {
        self.trusted
            .set_expiry(super::trusted::Expiry::IgnoredForEditing);
        self.unverifiable = Some(BTreeSet::new());
        self
    }

    /// For editors: delegated roles a whole-tree walk found signed below their
    /// delegator's threshold (e.g. after `key revoke`): they contribute nothing and
    /// wait for their remaining key holders to re-sign them. Verifiers never skip a
    /// role; this is empty for them.
    pub fn unverifiable(&self) -> impl Iterator<Item = &str> {
        self.unverifiable.iter().flatten().map(String::as_str)
    }

    /// The local state (e.g. to record extra cache data after a refresh).
    pub fn local_mut(&mut self) -> &mut L {
        &mut self.local
    }

    /// The remote.
    pub fn remote(&self) -> &R {
        &self.remote
    }

    /// Give back the local state.
    pub fn into_local(self) -> L {
        self.local
    }

    fn fetch(&mut self, name: &MetaName, max: u64) -> Result<Vec<u8>, ClientError> {
        self.remote
            .fetch(name, max)
            .map_err(|source| ClientError::Fetch {
                name: name.to_string(),
                source,
            })
    }

    /// Load timestamp, snapshot and top-level targets from the local state only, as
    /// when the remote is known unchanged. Every check still runs, expiry included.
    /// Returns false (and leaves nothing half-loaded that matters) when the cache
    /// lacks something: the caller then runs [`Updater::refresh`].
    pub fn load_cached(&mut self) -> Result<bool, ClientError> {
        self.trusted.check_root_expiry()?;
        let Some(ts) = self.local.load("timestamp") else {
            return Ok(false);
        };
        self.trusted.update_timestamp(ts)?;
        let Some(snap) = self.local.load("snapshot") else {
            return Ok(false);
        };
        self.trusted.update_snapshot(snap, true)?;
        if self.try_index("targets", "root") {
            return Ok(true);
        }
        let Some(targets) = self.local.load("targets") else {
            return Ok(false);
        };
        self.trusted
            .update_targets("targets", "root", targets, true)?;
        tracing::debug!(
            "warm: cached timestamp, snapshot and targets re-verified against the clock"
        );
        self.write_index("targets", "root");
        Ok(true)
    }

    /// The whole refresh: root chain, timestamp, snapshot, top-level targets.
    pub fn refresh(&mut self) -> Result<(), ClientError> {
        self.update_roots()?;
        self.update_timestamp()?;
        self.update_snapshot()?;
        self.load_targets("targets", "root")?;
        Ok(())
    }

    /// 5.3: follow `N+1.root.json` until none is found (bounded), then check expiry.
    fn update_roots(&mut self) -> Result<(), ClientError> {
        let start = self.trusted.root().version.get();
        for next in start + 1..=start + self.limits.max_root_rotations {
            let name = MetaName::versioned("root", next);
            let bytes = match self.remote.fetch(&name, self.limits.root) {
                Ok(b) => b,
                Err(e) if e.kind == FetchErrorKind::NotFound => break,
                Err(source) => {
                    return Err(ClientError::Fetch {
                        name: name.to_string(),
                        source,
                    });
                }
            };
            let root = self.trusted.update_root(bytes)?;
            log_verified(
                "root",
                root.version.get(),
                root.result(),
                "fetched (rotation)",
            );
            let bytes = root.bytes().to_vec();
            self.local.persist("root", &bytes)?;
        }
        // 5.3.10 (5.3.11, fast-forward recovery: a cached timestamp or snapshot signed
        // by rotated-out keys no longer verifies below, so it is simply not loaded).
        self.trusted.check_root_expiry()?;
        Ok(())
    }

    /// 5.4: the cached timestamp (if it still verifies) sets the rollback floor; then
    /// the remote one.
    fn update_timestamp(&mut self) -> Result<(), ClientError> {
        if let Some(cached) = self.local.load("timestamp") {
            // An invalid or expired cached timestamp just means no floor from it;
            // an expired one is still kept as the floor by the trusted set.
            let _ = self.trusted.update_timestamp(cached);
        }
        let bytes = self.fetch(&MetaName::unversioned("timestamp"), self.limits.timestamp)?;
        let update = self.trusted.update_timestamp(bytes)?;
        if let Some(ts) = self.trusted.timestamp() {
            log_verified("timestamp", ts.version.get(), ts.result(), "fetched");
        }
        if update == TimestampUpdate::New
            && let Some(ts) = self.trusted.timestamp()
        {
            let bytes = ts.bytes().to_vec();
            self.local.persist("timestamp", &bytes)?;
        }
        Ok(())
    }

    /// 5.5: reuse the cached snapshot when it is the version timestamp names.
    fn update_snapshot(&mut self) -> Result<(), ClientError> {
        if let Some(cached) = self.local.load("snapshot")
            && self.trusted.update_snapshot(cached, true).is_ok()
        {
            tracing::debug!("snapshot: the cached version is the one timestamp names");
            return Ok(());
        }
        let meta = self
            .trusted
            .timestamp()
            .and_then(|t| t.snapshot_meta())
            .cloned()
            .ok_or(TrustError::Order("timestamp not loaded"))?;
        let name = self.file_name("snapshot", meta.version.get());
        let bytes = self.fetch_meta(
            &name,
            "snapshot",
            "timestamp",
            meta.length,
            self.limits.snapshot,
        )?;
        self.trusted.update_snapshot(bytes, false)?;
        if let Some(s) = self.trusted.snapshot() {
            log_verified("snapshot", s.version.get(), s.result(), "fetched");
            let bytes = s.bytes().to_vec();
            self.local.persist("snapshot", &bytes)?;
        }
        Ok(())
    }

    /// Fetch a file whose length its referrer may record: that length is the cap, and
    /// a file over it is a length mismatch (mix-and-match), not just "too large".
    fn fetch_meta(
        &mut self,
        name: &MetaName,
        role: &str,
        referrer: &'static str,
        length: Option<u64>,
        default_max: u64,
    ) -> Result<Vec<u8>, ClientError> {
        match self.remote.fetch(name, length.unwrap_or(default_max)) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind == FetchErrorKind::TooLarge && length.is_some() => {
                Err(TrustError::HashMismatch {
                    role: role.to_owned(),
                    what: "length".into(),
                    referrer,
                }
                .into())
            }
            Err(source) => Err(ClientError::Fetch {
                name: name.to_string(),
                source,
            }),
        }
    }

    fn file_name(&self, role: &str, version: u64) -> MetaName {
        if self.trusted.root().consistent_snapshot == Some(true) {
            MetaName::versioned(role, version)
        } else {
            MetaName::unversioned(role)
        }
    }

    /// 5.6: a targets role, from the cache when it is the version snapshot names,
    /// else downloaded. A role already trusted is re-checked against `delegator`.
    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), ClientError> {
        self.load_targets_from(role, delegator, true)
    }

    /// [`Self::load_targets`], trying the role's index first when `index` is true.
    fn load_targets_from(
        &mut self,
        role: &str,
        delegator: &str,
        index: bool,
    ) -> Result<(), ClientError> {
        if self.trusted.is_indexed(role) {
            // Reached again: through the delegator it was accepted under (or one
            // granting the very same keys and threshold) the index stands; through
            // another, its signatures are checked in full below.
            if self.trusted.index_verified_under(role, delegator) {
                return Ok(());
            }
            self.verify_in_full(role)?;
        }
        if self.trusted.targets(role).is_some() {
            if delegator != "root" {
                self.trusted.recheck_delegated(role, delegator)?;
            }
            return Ok(());
        }
        let meta =
            self.trusted
                .snapshot_meta(role)
                .cloned()
                .ok_or_else(|| TrustError::NotListed {
                    role: role.to_owned(),
                    referrer: "snapshot".into(),
                })?;
        if index && self.try_index(role, delegator) {
            return Ok(());
        }
        if let Some(cached) = self.local.load(role)
            && self
                .trusted
                .update_targets(role, delegator, cached, true)
                .is_ok()
        {
            tracing::debug!("{role}: the cached version is the one snapshot names");
            self.write_index(role, delegator);
            return Ok(());
        }
        let name = self.file_name(role, meta.version.get());
        let bytes = self.fetch_meta(&name, role, "snapshot", meta.length, self.limits.targets)?;
        let verified = self.trusted.update_targets(role, delegator, bytes, false)?;
        log_verified(role, verified.version.get(), verified.result(), "fetched");
        let bytes = verified.bytes().to_vec();
        self.local.persist(role, &bytes)?;
        self.write_index(role, delegator);
        Ok(())
    }

    /// 5.6.7: preorder depth-first search of the delegation tree for `path`, in
    /// list order, honouring `terminating`, visiting each role once and at most
    /// `max_delegations` roles. Requires a completed refresh (or cache load).
    pub fn find_target(&mut self, path: &str) -> Result<Option<FoundTarget>, ClientError> {
        self.search(Some(path), |_, file| file.is_some())
    }

    /// The same search, but only `role`'s answer counts: roles before it that also
    /// list `path` are passed over. This is how a policy demands that a given role
    /// signed a target (`None` when the search never reaches `role` for `path`, or
    /// `role` does not list it).
    pub fn find_target_in_role(
        &mut self,
        path: &str,
        role: &str,
    ) -> Result<Option<FoundTarget>, ClientError> {
        let found = self.search(Some(path), |r, _| r == role)?;
        let Some(found) = found.filter(|f| f.role == role && !f.path.is_empty()) else {
            return Ok(None);
        };
        // Every role in the tree that delegates this name must accept the role's
        // signatures: a same-named role grafted under another delegator cannot stand
        // in for the one the policy means.
        let tree = self.load_delegation_tree()?;
        self.verify_in_full(role)?;
        let parents: Vec<String> = tree
            .iter()
            .map(|(r, _)| r.clone())
            .filter(|p| {
                self.trusted
                    .role_delegations(p)
                    .is_ok_and(|d| super::trusted::authority_in(d, role).is_ok())
            })
            .collect();
        for parent in parents {
            self.trusted.recheck_delegated(role, &parent)?;
        }
        Ok(Some(found))
    }

    /// Load every role reachable from `targets` (bounded like a search) and return
    /// them in search order with their delegator.
    pub fn load_delegation_tree(&mut self) -> Result<Vec<(String, String)>, ClientError> {
        let mut order = Vec::new();
        self.search(None, |_, _| false)?;
        let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        let mut seen = BTreeSet::new();
        while let Some((r, parent)) = to_visit.pop() {
            if !seen.insert(r.clone()) || seen.len() > self.limits.max_delegations {
                continue;
            }
            order.push((r.clone(), parent));
            let Ok(Some(d)) = self.trusted.role_delegations(&r) else {
                continue;
            };
            let mut children: Vec<(String, String)> = d
                .roles
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), r.clone()))
                .collect();
            children.reverse();
            to_visit.extend(children);
        }
        Ok(order)
    }

    /// Which role delegates to `role` (for editing it): a search of the whole tree,
    /// ignoring paths, bounded like target searches. `Some("root")` for `targets`.
    pub fn find_delegator(&mut self, role: &str) -> Result<Option<String>, ClientError> {
        if role == "targets" {
            return Ok(Some("root".into()));
        }
        let mut parent = None;
        // Load every reachable role, then find the first that delegates to `role`.
        self.search(None, |_, _| false)?;
        let mut to_visit: Vec<String> = vec!["targets".into()];
        let mut seen = BTreeSet::new();
        while let Some(r) = to_visit.pop() {
            if !seen.insert(r.clone()) || seen.len() > self.limits.max_delegations {
                continue;
            }
            let Ok(Some(d)) = self.trusted.role_delegations(&r) else {
                continue;
            };
            if d.roles.iter().flatten().any(|c| c.name == role)
                || d.succinct_roles
                    .as_ref()
                    .is_some_and(|s| super::delegation::is_bin_name(s, role))
            {
                parent = Some(r);
                break;
            }
            let mut children: Vec<String> =
                d.roles.iter().flatten().map(|c| c.name.clone()).collect();
            children.reverse();
            to_visit.extend(children);
        }
        Ok(parent)
    }

    /// Preorder DFS; `path` `None` walks every delegation. Stops at the first role
    /// for which `stop(role, target entry)` is true and returns that entry (an
    /// entry with an empty path when the role does not list the target).
    fn search(
        &mut self,
        path: Option<&str>,
        mut stop: impl FnMut(&str, Option<&TargetFile>) -> bool,
    ) -> Result<Option<FoundTarget>, ClientError> {
        let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        let mut visited = BTreeSet::new();
        while let Some((role, parent)) = to_visit.pop() {
            if visited.len() >= self.limits.max_delegations {
                break;
            }
            if !visited.insert(role.clone()) {
                continue;
            }
            match self.load_targets(&role, &parent) {
                // Only an editor's whole-tree walk, only a delegated role, and only
                // for a signature threshold not met: hash, version or length
                // mismatches still stop everything.
                Err(ClientError::Trust(super::trusted::TrustError::Metadata(_)))
                    if path.is_none() && role != "targets" && self.unverifiable.is_some() =>
                {
                    if let Some(set) = self.unverifiable.as_mut() {
                        set.insert(role.clone());
                    }
                    continue;
                }
                other => other?,
            }
            if !self.trusted.is_loaded(&role) {
                continue;
            }
            let file = match path {
                Some(p) => self.lookup(&role, p)?,
                None => None,
            };
            if stop(&role, file.as_ref()) {
                return Ok(Some(FoundTarget {
                    path: if file.is_some() {
                        path.unwrap_or_default().to_owned()
                    } else {
                        String::new()
                    },
                    role,
                    file: file.unwrap_or_else(|| TargetFile {
                        length: 0,
                        hashes: Default::default(),
                        custom: None,
                        unrecognized: Default::default(),
                    }),
                }));
            }
            if let Ok(Some(d)) = self.trusted.role_delegations(&role) {
                let mut children = Vec::new();
                let candidates = match path {
                    Some(p) => roles_for_target(d, p),
                    None => d
                        .roles
                        .iter()
                        .flatten()
                        .map(|r| (r.name.clone(), false))
                        .collect(),
                };
                for (child, terminating) in candidates {
                    children.push((child, role.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
                children.reverse();
                to_visit.extend(children);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;

mod indexed;

#[cfg(test)]
mod index_tests;
