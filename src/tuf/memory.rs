//! In-memory [`Remote`] and [`LocalState`]: for embedding the client where metadata
//! arrives by other means, for tests of the workflow, and for benchmarks. The remote
//! records every fetch (name and cap) so callers can see what a refresh cost.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::client::{FetchError, FetchErrorKind, LocalState, MetaName, PersistError, Remote};

/// Files by name (`1.root.json`, `timestamp.json`, ...), shared between clones.
#[derive(Debug, Default, Clone)]
pub struct MemoryRemote {
    /// The repository's files.
    pub files: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    /// Every fetch: file name and the cap it was asked with.
    pub log: Rc<RefCell<Vec<(String, u64)>>>,
}

impl MemoryRemote {
    /// Put a file.
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.borrow_mut().insert(name.to_owned(), bytes);
    }

    /// The names fetched so far.
    pub fn fetched(&self) -> Vec<String> {
        self.log.borrow().iter().map(|(n, _)| n.clone()).collect()
    }
}

impl Remote for MemoryRemote {
    fn fetch(&mut self, file: &MetaName, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let name = file.to_string();
        self.log.borrow_mut().push((name.clone(), max_bytes));
        match self.files.borrow().get(&name) {
            None => Err(FetchError {
                kind: FetchErrorKind::NotFound,
                message: format!("{name} not found"),
            }),
            Some(b) if b.len() as u64 > max_bytes => Err(FetchError {
                kind: FetchErrorKind::TooLarge,
                message: format!("{name} is larger than {max_bytes} bytes"),
            }),
            Some(b) => Ok(b.clone()),
        }
    }
}

/// Trusted metadata by role, shared between clones.
#[derive(Debug, Default, Clone)]
pub struct MemoryState(pub Rc<RefCell<HashMap<String, Vec<u8>>>>);

impl LocalState for MemoryState {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(role).cloned()
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), PersistError> {
        self.0.borrow_mut().insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }
}

/// A whole TUF repository built and signed in memory (one root key, one targets key,
/// one online key for snapshot and timestamp, consistent snapshots), published into
/// a [`MemoryRemote`]. For tests and benchmarks of the client.
pub struct MemoryRepository {
    /// Where the files are published.
    pub remote: MemoryRemote,
    /// Current root keys (threshold 1 each role).
    pub root_keys: Vec<crate::crypto::SecretKey>,
    /// The top-level targets key.
    pub targets_key: crate::crypto::SecretKey,
    /// The snapshot and timestamp key.
    pub online: crate::crypto::SecretKey,
    /// Last root version published.
    pub root_version: u64,
    /// Last timestamp version published.
    pub timestamp_version: u64,
    /// Last snapshot version published.
    pub snapshot_version: u64,
    /// Every targets role: its current version and signed bytes.
    pub roles: std::collections::BTreeMap<String, (u64, Vec<u8>)>,
}

/// Building a [`MemoryRepository`] failed (key generation or signing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryRepositoryError {
    /// A key could not be generated.
    #[error(transparent)]
    Key(#[from] crate::crypto::keys::KeyError),
    /// Metadata could not be signed.
    #[error(transparent)]
    Editor(#[from] super::editor::EditorError),
}

fn one_of(keys: &[&crate::crypto::SecretKey]) -> super::editor::RoleSpec {
    use crate::crypto::Signer as _;
    super::editor::RoleSpec {
        keys: keys.iter().map(|k| k.public_key().clone()).collect(),
        threshold: std::num::NonZeroU64::MIN,
    }
}

fn nonzero(n: u64) -> std::num::NonZeroU64 {
    std::num::NonZeroU64::new(n).unwrap_or(std::num::NonZeroU64::MIN)
}

/// `now + days`, whole seconds.
pub fn in_days(days: i64) -> chrono::DateTime<chrono::Utc> {
    super::editor::expiry_in(chrono::Utc::now(), chrono::Duration::days(days))
}

impl MemoryRepository {
    /// Root v1, empty targets, snapshot and timestamp v1, all published.
    pub fn new() -> Result<Self, MemoryRepositoryError> {
        use crate::crypto::{KeyType, SecretKey};
        let mut r = Self {
            remote: MemoryRemote::default(),
            root_keys: vec![SecretKey::generate(KeyType::Ed25519)?],
            targets_key: SecretKey::generate(KeyType::Ed25519)?,
            online: SecretKey::generate(KeyType::Ed25519)?,
            root_version: 0,
            timestamp_version: 0,
            snapshot_version: 0,
            roles: Default::default(),
        };
        r.publish_root(&[])?;
        r.set_targets(
            "targets",
            super::metadata::Targets::empty(nonzero(1), in_days(365)),
            None,
        )?;
        r.publish()?;
        Ok(r)
    }

    /// Publish the next root version for the current keys, signed by the current
    /// root keys and by `old` (the previous root's keys, for a rotation).
    pub fn publish_root(
        &mut self,
        old: &[&crate::crypto::SecretKey],
    ) -> Result<(), MemoryRepositoryError> {
        use crate::crypto::Signer;
        self.root_version += 1;
        let refs: Vec<&crate::crypto::SecretKey> = self.root_keys.iter().collect();
        let mut root = super::editor::new_root(
            &one_of(&refs),
            &one_of(&[&self.targets_key]),
            &one_of(&[&self.online]),
            &one_of(&[&self.online]),
            in_days(365),
        );
        root.version = nonzero(self.root_version);
        let mut signers: Vec<&dyn Signer> =
            self.root_keys.iter().map(|k| k as &dyn Signer).collect();
        signers.extend(old.iter().map(|k| *k as &dyn Signer));
        let bytes = super::editor::sign(&root, &signers)?;
        self.remote
            .put(&format!("{}.root.json", self.root_version), bytes);
        Ok(())
    }

    /// The bytes of `1.root.json` (what a client pins).
    pub fn root_v1(&self) -> Vec<u8> {
        self.remote
            .files
            .borrow()
            .get("1.root.json")
            .cloned()
            .unwrap_or_default()
    }

    /// Sign `t` as the next version of `role` (with `signer`, default the targets
    /// key) and put it; it becomes visible with the next [`MemoryRepository::publish`].
    pub fn set_targets(
        &mut self,
        role: &str,
        mut t: super::metadata::Targets,
        signer: Option<&crate::crypto::SecretKey>,
    ) -> Result<(), MemoryRepositoryError> {
        let version = self.roles.get(role).map_or(1, |(v, _)| v + 1);
        t.version = nonzero(version);
        let bytes = super::editor::sign(&t, &[signer.unwrap_or(&self.targets_key)])?;
        self.remote
            .put(&format!("{version}.{role}.json"), bytes.clone());
        self.roles.insert(role.to_owned(), (version, bytes));
        Ok(())
    }

    /// Publish new snapshot and timestamp versions listing every targets role.
    pub fn publish(&mut self) -> Result<(), MemoryRepositoryError> {
        self.snapshot_version += 1;
        self.timestamp_version += 1;
        let meta = self
            .roles
            .iter()
            .map(|(role, (v, bytes))| {
                (
                    format!("{role}.json"),
                    super::editor::meta_for(nonzero(*v), bytes),
                )
            })
            .collect();
        let snap = super::editor::sign(
            &super::editor::new_snapshot(nonzero(self.snapshot_version), in_days(30), meta),
            &[&self.online],
        )?;
        let ts = super::editor::sign(
            &super::editor::new_timestamp(
                nonzero(self.timestamp_version),
                in_days(7),
                nonzero(self.snapshot_version),
                &snap,
            ),
            &[&self.online],
        )?;
        self.remote
            .put(&format!("{}.snapshot.json", self.snapshot_version), snap);
        self.remote.put("timestamp.json", ts);
        Ok(())
    }

    /// A client trusting root v1 (seeded into `local` if it has no root), with the
    /// fetch log cleared.
    pub fn client(
        &self,
        local: &MemoryState,
    ) -> Result<super::client::Updater<MemoryRemote, MemoryState>, super::client::ClientError> {
        let mut local = local.clone();
        if local.load("root").is_none() {
            local.persist("root", &self.root_v1())?;
        }
        self.remote.log.borrow_mut().clear();
        super::client::Updater::new(
            self.remote.clone(),
            local,
            chrono::Utc::now(),
            super::client::Limits::default(),
        )
    }
}
