//! The spec §5 update workflow over any remote and any local trusted state.
//!
//! [`Updater`] drives a [`TrustedSet`] (which performs every check) in spec order:
//! trusted root → root rotation chain → timestamp → snapshot → targets → delegation
//! search. Metadata is persisted right after it verifies, as the exact bytes
//! received, and never before; cached metadata that is still valid is reused so an
//! unchanged snapshot or targets role is not downloaded again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::metadata::TargetFile;
use super::trusted::{TimestampUpdate, TrustError, TrustedSet};

mod io;
mod search;
pub use io::{
    ClientError, FetchError, FetchErrorKind, FoundTarget, Limits, LocalState, MetaName,
    PersistError, Remote, file_stamp,
};

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
}

#[cfg(test)]
mod tests;

mod indexed;

#[cfg(test)]
mod index_tests;
