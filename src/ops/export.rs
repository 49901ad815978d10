//! `warrant export`: the TUF repository as plain files any TUF client can read.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::store::Location;
use crate::store::artifact::MAX_FILE_BYTES;

use super::repository::open_store;
use super::{Context, OpError};

/// What `export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    /// The repository.
    pub location: String,
    /// The directory written.
    pub dir: PathBuf,
    /// File names written.
    pub files: Vec<String>,
}

/// Write every (non-pending) metadata file of `location` into `dir`, byte for byte.
/// Each file is digest-checked by the store; the files are *not* TUF-verified here —
/// the client that reads them does that.
pub fn export(ctx: &Context, location: &Location, dir: &Path) -> Result<ExportOutcome, OpError> {
    let store = open_store(ctx, location)?;
    let listing = store.listing()?.ok_or_else(|| OpError::NoRepository {
        location: location.to_string(),
    })?;
    let io = |path: &Path, e: std::io::Error| OpError::Io {
        path: path.to_owned(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut files = Vec::new();
    for f in listing.files.iter().filter(|f| !f.pending) {
        // Names were validated by the artifact parser (no separators, no dot names).
        let bytes = store.read_file(f, MAX_FILE_BYTES)?;
        let path = dir.join(&f.name);
        let tmp = dir.join(format!(".{}.tmp", f.name));
        std::fs::write(&tmp, &bytes).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        files.push(f.name.clone());
    }
    Ok(ExportOutcome {
        location: location.to_string(),
        dir: dir.to_owned(),
        files,
    })
}
