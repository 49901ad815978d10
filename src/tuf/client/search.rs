//! Delegation search (spec 5.6.7) and the walks over the delegation tree that
//! editors and `inspect` need, all on one preorder depth-first traversal.

use std::collections::BTreeSet;

use super::{ClientError, FoundTarget, LocalState, Remote, Updater};
use crate::tuf::delegation::roles_for_target;
use crate::tuf::metadata::TargetFile;

impl<R: Remote, L: LocalState> Updater<R, L> {
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
                    .is_ok_and(|d| crate::tuf::trusted::authority_in(d, role).is_ok())
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
                    .is_some_and(|s| crate::tuf::delegation::is_bin_name(s, role))
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
                Err(ClientError::Trust(crate::tuf::trusted::TrustError::Metadata(_)))
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
