//! What the updater talks to — a [`Remote`] that serves metadata files and a
//! [`LocalState`] that keeps the trusted ones — the size caps it applies, and the
//! errors of both. Re-exported by [`crate::tuf::client`].

use super::super::metadata::TargetFile;
use super::super::trusted::TrustError;

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
