//! The trusted set's side of the verified local target index
//! ([`crate::tuf::index`]): when an index may stand in for a targets role, and
//! lookups that work the same on full and indexed roles.

use chrono::{DateTime, Utc};

use super::super::index::{IndexError, TargetIndex, authority_fingerprint};
use super::super::metadata::{Delegations, TargetFile};
use super::super::verify::Authority;
use super::{TrustError, TrustedSet, authority, authority_in};

impl TrustedSet {
    /// True when `role` is trusted, in full or through its index.
    pub fn is_loaded(&self, role: &str) -> bool {
        self.targets.contains_key(role) || self.indexed.contains_key(role)
    }

    /// True when `role` is trusted through its index only.
    pub fn is_indexed(&self, role: &str) -> bool {
        self.indexed.contains_key(role)
    }

    /// The expiry of every targets role trusted so far, full or indexed.
    pub fn role_expiries(&self) -> Vec<(&str, DateTime<Utc>)> {
        let full = self.targets.iter().map(|(k, v)| (k.as_str(), v.expires));
        let indexed = self
            .indexed
            .iter()
            .map(|(k, (i, _))| (k.as_str(), i.header().expires));
        full.chain(indexed).collect()
    }

    /// The delegations of a trusted targets role (full or indexed); an error when
    /// the role is not loaded.
    pub fn role_delegations(&self, role: &str) -> Result<Option<&Delegations>, TrustError> {
        if let Some(t) = self.targets.get(role) {
            return Ok(t.delegations.as_ref());
        }
        self.indexed
            .get(role)
            .map(|(i, _)| i.header().delegations.as_ref())
            .ok_or(TrustError::Order(
                "a delegated role's delegator must be loaded first",
            ))
    }

    /// The entry of `path` in the trusted role `role` (`None` when the role does not
    /// list it or is not loaded). An error only when the role's index turns out
    /// corrupt while reading it: the caller then verifies the role in full.
    pub fn lookup(&self, role: &str, path: &str) -> Result<Option<TargetFile>, IndexError> {
        if let Some(t) = self.targets.get(role) {
            return Ok(t.targets.get(path).cloned());
        }
        match self.indexed.get(role) {
            Some((index, _)) => index.lookup(path),
            None => Ok(None),
        }
    }

    /// True when `role` is indexed and was verified under exactly the keys and
    /// threshold `delegator` grants it now.
    pub fn index_verified_under(&self, role: &str, delegator: &str) -> bool {
        let Some((index, _)) = self.indexed.get(role) else {
            return false;
        };
        self.role_authority(role, delegator)
            .is_ok_and(|a| authority_fingerprint(a) == index.header().authority)
    }

    /// Stop using the index of `role` (to verify the role in full); returns the
    /// delegator it was accepted through.
    pub fn drop_index(&mut self, role: &str) -> Option<String> {
        self.indexed.remove(role).map(|(_, delegator)| delegator)
    }

    /// Who may sign `role` when `delegator` delegates it (`root` for top-level
    /// targets). The delegator must be loaded.
    pub fn role_authority(&self, role: &str, delegator: &str) -> Result<Authority<'_>, TrustError> {
        if delegator == "root" {
            return authority(&self.root, "targets");
        }
        authority_in(self.role_delegations(delegator)?, role)
    }

    /// Let a verified local index stand in for the targets role `role` (issue #13):
    /// accepted only when it was built from the version the trusted snapshot names
    /// (and the length and sha256 it records, when it records them), under the keys
    /// and threshold the delegator grants now, from the cached role file as it is on
    /// disk now (`stamp`), and the role has not expired. Any difference is
    /// [`TrustError::StaleIndex`]: the caller verifies the role in full instead.
    pub fn accept_index(
        &mut self,
        role: &str,
        delegator: &str,
        index: TargetIndex,
        stamp: &str,
    ) -> Result<(), TrustError> {
        self.check_final_snapshot()?;
        if delegator != "root" && super::super::metadata::TOP_LEVEL_ROLES.contains(&role) {
            return Err(TrustError::NotListed {
                role: format!("{role} (a delegated role may not take a top-level role's name)"),
                referrer: delegator.to_owned(),
            });
        }
        if self.is_loaded(role) {
            return Err(TrustError::Order("role already loaded"));
        }
        let meta = self
            .snapshot_meta(role)
            .ok_or_else(|| TrustError::NotListed {
                role: role.to_owned(),
                referrer: "snapshot".into(),
            })?;
        let h = index.header();
        let stale = |why| {
            Err(TrustError::StaleIndex {
                role: role.to_owned(),
                why,
            })
        };
        if h.role != role {
            return stale("it indexes another role");
        }
        if h.stamp != stamp {
            return stale("the cached role file changed since it was written");
        }
        if h.version != meta.version.get() {
            return stale("the trusted snapshot names another version");
        }
        if meta.length.is_some_and(|l| l != h.role_length) {
            return stale("the trusted snapshot records another length");
        }
        if let Some(hashes) = &meta.hashes {
            match hashes.get("sha256") {
                Some(sha) if sha.eq_ignore_ascii_case(&h.role_sha256) => {}
                Some(_) => return stale("the trusted snapshot records another sha256"),
                None => return stale("the trusted snapshot records no sha256 to compare"),
            }
        }
        if authority_fingerprint(self.role_authority(role, delegator)?) != h.authority {
            return stale("the delegator's keys or threshold for it changed");
        }
        self.check_expiry(role, h.expires)?;
        self.indexed
            .insert(role.to_owned(), (index, delegator.to_owned()));
        Ok(())
    }
}
