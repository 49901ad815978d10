//! `warrant export`: the TUF repository as plain files any TUF client can read —
//! and the root file people pin, so only what verified is written.
//!
//! The repository is verified first with the home's anchor (its trusted cache or
//! a pin), exactly as `verify` and `inspect` do. Then the files are chosen from
//! that verified state: the root chain (`1.root.json` up to the trusted root, each
//! signed by its predecessor's threshold and ending at the root that verified), the
//! verified `timestamp.json`, the snapshot it names (by hash) and every role file
//! at the version that snapshot names (by hash). Older versions still listed are
//! left out. Nothing is written until every file checked out. `--unverified`
//! writes the listing as served, for forensics, and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::store::artifact::MAX_FILE_BYTES;
use crate::store::{Location, StoredFile};
use crate::tuf::client::LocalState as _;
use crate::tuf::trusted::{TrustedSet, check_meta_hashes};

use super::repository::{Repository, open_store};
use super::trust::Pin;
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
    /// Whether the files were verified (false only with `--unverified`).
    pub verified: bool,
    /// Listed files left out: versions the verified snapshot no longer names.
    pub skipped: Vec<String>,
}

/// Verify `location` with `pin` (or the home's cache), then write the verified
/// metadata into `dir`; with `unverified`, write whatever the store lists.
pub fn export(
    ctx: &Context,
    location: &Location,
    dir: &Path,
    pin: &Pin,
    unverified: bool,
) -> Result<ExportOutcome, OpError> {
    let (files, skipped) = if unverified {
        read_listed(ctx, location)?
    } else {
        read_verified(ctx, location, pin)?
    };
    std::fs::create_dir_all(dir).map_err(|source| OpError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let opts = crate::fsutil::WriteOptions {
        mode: 0o644,
        durable: true,
        no_clobber: false,
    };
    for (name, bytes) in &files {
        // Names were validated by the artifact parser (no separators, no dot names).
        let path = dir.join(name);
        crate::fsutil::write_atomic(&path, bytes, opts)
            .map_err(|source| OpError::Io { path, source })?;
    }
    Ok(ExportOutcome {
        location: location.to_string(),
        dir: dir.to_owned(),
        files: files.into_keys().collect(),
        verified: !unverified,
        skipped,
    })
}

type Files = BTreeMap<String, Vec<u8>>;

fn read_listed(ctx: &Context, location: &Location) -> Result<(Files, Vec<String>), OpError> {
    let store = open_store(ctx, location)?;
    let listing = store.listing()?.ok_or_else(|| OpError::NoRepository {
        location: location.to_string(),
    })?;
    let mut files = Files::new();
    for f in listing.files.iter().filter(|f| !f.pending) {
        files.insert(f.name.clone(), store.read_file(f, MAX_FILE_BYTES)?);
    }
    Ok((files, Vec::new()))
}

fn read_verified(
    ctx: &Context,
    location: &Location,
    pin: &Pin,
) -> Result<(Files, Vec<String>), OpError> {
    let repo = Repository::open(ctx, location, pin)?;
    let mut up = repo.refresh(false)?;
    up.load_delegation_tree()
        .map_err(|source| OpError::Update {
            location: location.to_string(),
            source,
        })?;
    let listed: Vec<StoredFile> =
        repo.with_listing(|l| l.files.iter().filter(|f| !f.pending).cloned().collect())?;
    let integrity = |what: String| OpError::ExportMismatch {
        location: location.to_string(),
        what,
    };
    let store = repo.store();
    let (cached_timestamp, cached_root) = {
        let local = up.local_mut();
        (local.load("timestamp"), local.load("root"))
    };
    let trusted = up.trusted();
    let root_version = trusted.root().version.get();
    let snapshot = trusted
        .snapshot()
        .ok_or_else(|| integrity("no verified snapshot".into()))?;
    let snapshot_version = snapshot.version.get();
    let timestamp_meta = trusted
        .timestamp()
        .and_then(|t| t.snapshot_meta())
        .cloned()
        .ok_or_else(|| integrity("no verified timestamp".into()))?;
    let role_meta: BTreeMap<String, crate::tuf::metadata::MetaFile> = snapshot
        .meta
        .iter()
        .map(|(name, meta)| (name.trim_end_matches(".json").to_owned(), meta.clone()))
        .collect();
    let (mut files, mut skipped, mut roots) = (Files::new(), Vec::new(), BTreeMap::new());
    for f in &listed {
        let (version, role) = match f.name.split_once('.') {
            Some((v, rest)) => match v.parse::<u64>() {
                Ok(v) => (Some(v), rest.trim_end_matches(".json")),
                Err(_) => (None, f.name.trim_end_matches(".json")),
            },
            None => (None, f.name.as_str()),
        };
        let wanted = match (version, role) {
            (None, "timestamp") => true,
            (Some(v), "root") => v <= root_version,
            (Some(v), "snapshot") => v == snapshot_version,
            (Some(v), r) => role_meta.get(r).is_some_and(|m| m.version.get() == v),
            _ => false,
        };
        if !wanted {
            skipped.push(f.name.clone());
            continue;
        }
        let bytes = store.read_file(f, MAX_FILE_BYTES)?;
        match (version, role) {
            (None, _) => {
                // The timestamp that verified is the one in the cache, byte for byte.
                if cached_timestamp.as_deref() != Some(&bytes[..]) {
                    return Err(integrity(
                        "timestamp.json is not the timestamp that verified (the repository changed while exporting: run it again)".into(),
                    ));
                }
            }
            (Some(v), "root") => {
                roots.insert(v, bytes.clone());
            }
            (Some(_), "snapshot") => {
                check_meta_hashes("snapshot", "timestamp", &timestamp_meta, &bytes)
                    .map_err(|e| integrity(e.to_string()))?
            }
            (Some(_), r) => {
                if let Some(meta) = role_meta.get(r) {
                    check_meta_hashes(r, "snapshot", meta, &bytes)
                        .map_err(|e| integrity(e.to_string()))?;
                }
            }
        }
        files.insert(f.name.clone(), bytes);
    }
    check_root_chain(&roots, root_version, cached_root, ctx).map_err(integrity)?;
    Ok((files, skipped))
}

/// `1.root.json` .. `N.root.json` must all be there, each accepted by its
/// predecessor, and `N` must be the root that verified (byte for byte).
fn check_root_chain(
    roots: &BTreeMap<u64, Vec<u8>>,
    trusted_version: u64,
    trusted_bytes: Option<Vec<u8>>,
    ctx: &Context,
) -> Result<(), String> {
    let first = roots
        .get(&1)
        .ok_or("1.root.json is not listed: a verifier could not pin the chain's start")?;
    let mut chain =
        TrustedSet::new(first.clone(), ctx.now).map_err(|e| format!("1.root.json: {e}"))?;
    for v in 2..=trusted_version {
        let bytes = roots
            .get(&v)
            .ok_or_else(|| format!("{v}.root.json is not listed: the root chain has a gap"))?;
        chain
            .update_root(bytes.clone())
            .map_err(|e| format!("{v}.root.json: {e}"))?;
    }
    if roots.get(&trusted_version) != trusted_bytes.as_ref() {
        return Err(format!(
            "{trusted_version}.root.json is not the root that verified"
        ));
    }
    Ok(())
}
