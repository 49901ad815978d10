//! Trusted metadata in a plain directory, one `ROLE.json` per role (role names
//! percent-encoded), as python-tuf keeps it: what a generic TUF client uses. (Image
//! verification uses [`crate::cache::TrustCache`], which adds locking and the
//! `warrant.tuf` digest.)

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::client::{LocalState, PersistError};
use super::http::quote;

/// Largest local metadata file read back.
const MAX_LOCAL: u64 = 16 * 1024 * 1024;

/// A metadata directory.
#[derive(Debug, Clone)]
pub struct MetadataDir {
    dir: PathBuf,
    index_dir: Option<PathBuf>,
}

impl MetadataDir {
    /// Use `dir` (must exist).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            index_dir: None,
        }
    }

    /// Also keep verified target indexes (see [`super::index`]) in `index_dir`,
    /// created when missing. Kept apart so that `dir` holds exactly one file per
    /// role, as tools that read it expect.
    pub fn with_index_dir(mut self, index_dir: &Path) -> Self {
        self.index_dir = Some(index_dir.to_owned());
        self
    }

    /// The file of `role`.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote(role)))
    }
}

/// Write `bytes` to `path` atomically (temp file in the same directory, fsync,
/// rename): readers see the old or the new file, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fsutil::write_atomic(path, bytes, crate::fsutil::WriteOptions::PRIVATE)
}

impl LocalState for MetadataDir {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        let f = std::fs::File::open(self.path(role)).ok()?;
        let mut buf = Vec::new();
        f.take(MAX_LOCAL + 1).read_to_end(&mut buf).ok()?;
        (buf.len() as u64 <= MAX_LOCAL).then_some(buf)
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), PersistError> {
        write_atomic(&self.path(role), bytes).map_err(|e| PersistError {
            role: role.to_owned(),
            detail: e.to_string(),
        })
    }

    fn index_path(&self, role: &str) -> Option<PathBuf> {
        Some(
            self.index_dir
                .as_ref()?
                .join(format!("{}.json.index", quote(role))),
        )
    }

    fn stamp(&self, role: &str) -> Option<String> {
        super::client::file_stamp(&self.path(role))
    }

    fn persist_index(&mut self, role: &str, bytes: &[u8]) -> Result<(), PersistError> {
        let err = |e: std::io::Error| PersistError {
            role: role.to_owned(),
            detail: e.to_string(),
        };
        let Some(path) = self.index_path(role) else {
            return Ok(());
        };
        if let Some(dir) = &self.index_dir {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // Rebuilt when lost, so not synced.
        let opts = crate::fsutil::WriteOptions {
            durable: false,
            ..crate::fsutil::WriteOptions::PRIVATE
        };
        crate::fsutil::write_atomic(&path, bytes, opts).map_err(err)
    }
}
