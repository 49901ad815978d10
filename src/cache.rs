//! The verifier's trusted state, per repository, under
//! `$WARRANT_HOME/trust/<location>/`: the last verified bytes of every role plus the
//! digest of the `warrant.tuf` manifest they came from.
//!
//! Every write is atomic (temp file, fsync, rename) and the whole directory is used
//! under an exclusive file lock held for the life of a [`TrustCache`], so concurrent
//! verifies on one host never interleave or corrupt the state. Cached bytes are
//! re-verified on every load (the cache is a file, so it is input too).

use std::fs::{self, File};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::digest::Sha256Digest;
use crate::store::Location;
use crate::tuf::client::{LocalState, PersistError};

/// Largest cached file we read back.
const MAX_CACHED: u64 = 16 * 1024 * 1024;

/// Pins already checked against the cached root: `<pin sha256> <root sha256>` lines.
const ANCHOR_CHECKS: &str = "anchor.checked";
const MAX_ANCHOR_CHECKS: usize = 16;

/// The trusted cache could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("trusted cache {path}: {source}")]
pub struct CacheError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// One repository's trusted state, locked while this value lives.
#[derive(Debug)]
pub struct TrustCache {
    dir: PathBuf,
    _lock: File,
}

/// File name for a role: `root.json`, `targets.json`, and delegated names
/// percent-encoded so that no role name can escape the directory or collide.
pub fn role_file_name(role: &str) -> String {
    let mut out = String::with_capacity(role.len() + 5);
    for (i, b) in role.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(".json");
    out
}

impl TrustCache {
    /// Open (creating, mode 0700) and lock the verifier's cache of `location`
    /// under `home` (`$WARRANT_HOME/trust/`).
    pub fn open(home: &Path, location: &Location) -> Result<Self, CacheError> {
        Self::open_in(&home.join("trust"), location)
    }

    /// The cache commands that *change* a repository keep (`$WARRANT_HOME/
    /// trust-signer/`): a signer may trust a repository on first use, and that must
    /// never become a verifier's anchor on the same host.
    pub fn open_for_editing(home: &Path, location: &Location) -> Result<Self, CacheError> {
        Self::open_in(&home.join("trust-signer"), location)
    }

    fn open_in(base: &Path, location: &Location) -> Result<Self, CacheError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = base.join(location.cache_dir_name());
        let err = |path: &Path, e: std::io::Error| CacheError {
            path: path.to_owned(),
            source: e,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| err(&dir, e))?;
        let lock_path = dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| err(&lock_path, e))?;
        lock.lock().map_err(|e| err(&lock_path, e))?;
        let cache = Self { dir, _lock: lock };
        // For people looking at the directory: which repository this is (written
        // once; not on the warm path).
        if !cache.dir.join("location").exists() {
            let _ = cache.write("location", location.to_string().as_bytes());
        }
        Ok(cache)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when a trusted root is cached.
    pub fn has_root(&self) -> bool {
        self.dir.join(role_file_name("root")).is_file()
    }

    /// The `warrant.tuf` manifest digest the cached metadata was verified from.
    pub fn listing_digest(&self) -> Option<Sha256Digest> {
        let bytes = self.read("listing.digest")?;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    /// Record the manifest digest after a successful verification.
    pub fn set_listing_digest(&self, digest: &Sha256Digest) -> Result<(), CacheError> {
        self.write("listing.digest", digest.to_string().as_bytes())
    }

    /// Forget everything but the trusted root: the next update takes the store's
    /// current timestamp, snapshot and targets (a signer resynchronizing after a
    /// concurrent writer replaced a version it had seen).
    pub fn forget_all_but_root(&self) {
        self.clear_listing_digest();
        for role in ["timestamp", "snapshot", "targets"] {
            let _ = fs::remove_file(self.dir.join(role_file_name(role)));
        }
    }

    /// True when the pin with fingerprint `pin` was already checked against the
    /// cached root whose sha256 is `root` (see `ops::anchor`).
    pub fn anchor_checked(&self, pin: &str, root: &Sha256Digest) -> bool {
        let line = format!("{pin} {root}");
        self.read(ANCHOR_CHECKS)
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|text| text.lines().any(|l| l == line))
    }

    /// Record that the pin `pin` agrees with the cached root `root` (keeps the last
    /// few pairs: a host may verify one repository under several policies).
    pub fn record_anchor_check(&self, pin: &str, root: &Sha256Digest) -> Result<(), CacheError> {
        let line = format!("{pin} {root}");
        let old = self
            .read(ANCHOR_CHECKS)
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let mut lines: Vec<&str> = old.lines().filter(|l| *l != line).collect();
        let keep = lines.len().saturating_sub(MAX_ANCHOR_CHECKS - 1);
        lines.drain(..keep);
        lines.push(&line);
        let mut text = lines.join("\n");
        text.push('\n');
        self.write(ANCHOR_CHECKS, text.as_bytes())
    }

    /// Forget the manifest digest (forces a full update next time).
    pub fn clear_listing_digest(&self) {
        let _ = fs::remove_file(self.dir.join("listing.digest"));
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let f = File::open(self.dir.join(name)).ok()?;
        let mut buf = Vec::new();
        f.take(MAX_CACHED + 1).read_to_end(&mut buf).ok()?;
        (buf.len() as u64 <= MAX_CACHED).then_some(buf)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), CacheError> {
        self.write_file(name, bytes, true)
    }

    /// Atomic write; `durable` also fsyncs before the rename (not needed for a
    /// target index, which is checked on every read and rebuilt when lost).
    fn write_file(&self, name: &str, bytes: &[u8], durable: bool) -> Result<(), CacheError> {
        let path = self.dir.join(name);
        let err = |e: std::io::Error| CacheError {
            path: path.clone(),
            source: e,
        };
        let opts = crate::fsutil::WriteOptions {
            durable,
            ..crate::fsutil::WriteOptions::PRIVATE
        };
        crate::fsutil::write_atomic(&path, bytes, opts).map_err(err)
    }
}

impl LocalState for TrustCache {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.read(&role_file_name(role))
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), PersistError> {
        self.write(&role_file_name(role), bytes)
            .map_err(|e| PersistError {
                role: role.to_owned(),
                detail: e.to_string(),
            })
    }

    /// `ROLE.json.index` next to `ROLE.json` (no role file name ends in `.index`).
    fn index_path(&self, role: &str) -> Option<PathBuf> {
        Some(self.dir.join(index_file_name(role)))
    }

    fn stamp(&self, role: &str) -> Option<String> {
        crate::tuf::client::file_stamp(&self.dir.join(role_file_name(role)))
    }

    fn persist_index(&mut self, role: &str, bytes: &[u8]) -> Result<(), PersistError> {
        self.write_file(&index_file_name(role), bytes, false)
            .map_err(|e| PersistError {
                role: role.to_owned(),
                detail: e.to_string(),
            })
    }
}

fn index_file_name(role: &str) -> String {
    format!("{}.index", role_file_name(role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_cannot_escape() {
        assert_eq!(role_file_name("root"), "root.json");
        assert_eq!(role_file_name("bins-0a"), "bins-0a.json");
        assert_eq!(role_file_name("../x"), "%2E.%2Fx.json");
        assert_eq!(role_file_name("a/b"), "a%2Fb.json");
        assert_eq!(role_file_name(".hidden"), "%2Ehidden.json");
        assert_ne!(role_file_name("listing.digest"), "listing.digest");
    }

    #[test]
    fn persist_and_load_round_trip_under_lock() {
        let home = tempfile::tempdir().expect("tmp");
        let loc = Location::Layout("/tmp/some/layout".into());
        let mut cache = TrustCache::open(home.path(), &loc).expect("open");
        assert!(!cache.has_root());
        cache.persist("root", b"{}").expect("persist");
        assert_eq!(cache.load("root").as_deref(), Some(&b"{}"[..]));
        assert!(cache.has_root());
        let d = Sha256Digest::of(b"x");
        cache.set_listing_digest(&d).expect("digest");
        assert_eq!(cache.listing_digest(), Some(d));
        cache.clear_listing_digest();
        assert_eq!(cache.listing_digest(), None);
    }
}
