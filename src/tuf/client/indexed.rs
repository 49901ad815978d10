//! The updater's side of the verified local target index ([`crate::tuf::index`]):
//! use it when the trusted set accepts it, write it after a role verified in full,
//! and fall back to full verification when it turns out stale or corrupt.

use super::super::index::{TargetIndex, authority_fingerprint};
use super::{ClientError, LocalState, Remote, TargetFile, Updater};

impl<R: Remote, L: LocalState> Updater<R, L> {
    /// Use the local index of `role` if there is one and the trusted set accepts it.
    pub(super) fn try_index(&mut self, role: &str, delegator: &str) -> bool {
        if !self.use_index {
            return false;
        }
        let (Some(path), Some(stamp)) = (self.local.index_path(role), self.local.stamp(role))
        else {
            return false;
        };
        let Ok(index) = TargetIndex::open(&path) else {
            return false;
        };
        self.trusted
            .accept_index(role, delegator, index, &stamp)
            .is_ok()
    }

    /// Write the index of `role`, just verified in full and persisted. Best effort:
    /// without an index the next run verifies the role in full again.
    pub(super) fn write_index(&mut self, role: &str, delegator: &str) {
        if !self.use_index {
            return;
        }
        let Some(stamp) = self.local.stamp(role) else {
            return;
        };
        let (Some(targets), Ok(auth)) = (
            self.trusted.targets(role),
            self.trusted.role_authority(role, delegator),
        ) else {
            return;
        };
        if let Ok(bytes) = super::super::index::build(targets, &authority_fingerprint(auth), &stamp)
        {
            let _ = self.local.persist_index(role, &bytes);
        }
    }

    /// Replace the index of `role` by the role itself, verified in full (from the
    /// cache, else downloaded), and rebuild the index.
    pub(super) fn verify_in_full(&mut self, role: &str) -> Result<(), ClientError> {
        let Some(delegator) = self.trusted.drop_index(role) else {
            return Ok(());
        };
        self.load_targets_from(role, &delegator, false)
    }

    /// The entry of `path` in `role`; a corrupt index is replaced by the verified
    /// role and asked again.
    pub(super) fn lookup(
        &mut self,
        role: &str,
        path: &str,
    ) -> Result<Option<TargetFile>, ClientError> {
        match self.trusted.lookup(role, path) {
            Ok(found) => Ok(found),
            Err(_) => {
                self.verify_in_full(role)?;
                Ok(self.trusted.lookup(role, path).ok().flatten())
            }
        }
    }
}
