//! A verified local index of one targets role: what lets a warm verify answer
//! without re-reading, re-canonicalising and re-verifying a targets role of 100,000
//! entries whose bytes did not change (issue #13 item 1).
//!
//! An index is written only from a [`Verified`] role, right after every spec check
//! passed, and it records what it was verified *under*: the role's version, length,
//! sha256 and expiry, a fingerprint of the delegator's keys and threshold for the
//! role, and a stamp of the cached role file (size, inode, change times). The
//! trusted set accepts it in place of the role only when all of those still match
//! the trusted snapshot, the current delegator and the file on disk
//! ([`super::trusted::TrustedSet::accept_index`]); otherwise the role is loaded
//! and verified in full, as before, and the index rebuilt.
//!
//! Corruption is detected, never trusted: the header is sealed by its own sha256,
//! and every entry carries a tag binding it to that seal and to its position, so a
//! torn, truncated, bit-flipped or spliced index fails a check and the client falls
//! back to full verification. A lookup is a binary search with positional reads
//! (`pread`), each probed entry checked: cost O(log N), independent of the role's
//! size. What the index does *not* defend against is someone who can write the
//! cache directory and recompute the checks (see the threat model in
//! [`crate::manual`]): such a writer can equally replace the trusted root there.
//!
//! Layout: `MAGIC`, header length (u64 LE), header JSON, seal (32 bytes), a table of
//! `count + 1` absolute entry offsets (u64 LE), then the entries, each
//! `["name", {target file}]` followed by a 16-byte tag.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::metadata::{Delegations, TargetFile, Targets, expires_format};
use super::verify::{Authority, Verified};

const MAGIC: &[u8; 24] = b"warrant-target-index-v1\n";
const SEAL: usize = 32;
const TAG: usize = 16;
/// Largest header (its delegations) we read back.
const MAX_HEADER: u64 = 16 * 1024 * 1024;
/// Largest single entry.
const MAX_ENTRY: u64 = 1024 * 1024;

/// An index could not be read, or failed one of its own checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Reading or writing the file failed.
    #[error("target index {path}: {source}")]
    Io {
        /// The index file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not an intact index (torn write, bit rot, tampering): it is
    /// ignored and rebuilt from verified metadata.
    #[error("target index {path} is corrupt: {detail}")]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// Which check failed.
        detail: String,
    },
    /// The role could not be serialized into an index (cannot happen for a role
    /// that was parsed from JSON).
    #[error("cannot index {role}: {detail}")]
    Build {
        /// The role.
        role: String,
        /// The serializer's complaint.
        detail: String,
    },
}

/// What an index was built from and under; every field is compared with the
/// current trusted state before the index stands in for the role.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexHeader {
    /// The role indexed.
    pub role: String,
    /// Its version.
    pub version: u64,
    /// Its expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// sha256 (hex) of the exact role bytes that were verified.
    pub role_sha256: String,
    /// Their length.
    pub role_length: u64,
    /// [`authority_fingerprint`] of the keys and threshold the role was verified with.
    pub authority: String,
    /// The cached role file's stamp when the index was written.
    pub stamp: String,
    /// Number of targets.
    pub count: u64,
    /// The role's own delegations (needed to continue a delegation search).
    pub delegations: Option<Delegations>,
}

/// A fingerprint of who may sign a role: the authorized keys (by key id and key),
/// and the threshold. Any key or threshold change makes an index built under the
/// old authority unusable.
pub fn authority_fingerprint(authority: Authority<'_>) -> String {
    let mut ids: Vec<&str> = authority.keyids.iter().map(|k| k.0.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let keys: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let key = authority
                .keys
                .iter()
                .find(|(k, _)| k.0 == *id)
                .map(|(_, v)| v);
            serde_json::json!([id, key])
        })
        .collect();
    let value = serde_json::json!({"keys": keys, "threshold": authority.threshold.get()});
    // Canonical form: the same authority always gives the same fingerprint.
    let bytes = super::canonical::to_canonical(&value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

fn tag(seal: &[u8], position: u64, entry: &[u8]) -> [u8; TAG] {
    let mut h = Sha256::new();
    h.update(seal);
    h.update(position.to_le_bytes());
    h.update(entry);
    let full = h.finalize();
    let mut out = [0u8; TAG];
    out.copy_from_slice(&full[..TAG]);
    out
}

/// Serialize the index of `role` (verified under `authority`, cached in a file whose
/// stamp is `stamp`).
pub fn build(
    role: &Verified<Targets>,
    authority: &str,
    stamp: &str,
) -> Result<Vec<u8>, IndexError> {
    let err = |detail: String| IndexError::Build {
        role: role.role().to_owned(),
        detail,
    };
    let header = IndexHeader {
        role: role.role().to_owned(),
        version: role.version.get(),
        expires: role.expires,
        role_sha256: hex::encode(Sha256::digest(role.bytes())),
        role_length: role.bytes().len() as u64,
        authority: authority.to_owned(),
        stamp: stamp.to_owned(),
        count: role.targets.len() as u64,
        delegations: role.delegations.clone(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::with_capacity(role.bytes().len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    let seal: [u8; SEAL] = Sha256::digest(&out).into();
    out.extend_from_slice(&seal);
    let table_at = out.len();
    let count = role.targets.len();
    out.resize(table_at + 8 * (count + 1), 0);
    let mut offsets = Vec::with_capacity(count + 1);
    for (i, entry) in role.targets.iter().enumerate() {
        offsets.push(out.len() as u64);
        let json = serde_json::to_vec(&entry).map_err(|e| err(e.to_string()))?;
        let t = tag(&seal, i as u64, &json);
        out.extend_from_slice(&json);
        out.extend_from_slice(&t);
    }
    offsets.push(out.len() as u64);
    for (i, off) in offsets.iter().enumerate() {
        let at = table_at + 8 * i;
        out[at..at + 8].copy_from_slice(&off.to_le_bytes());
    }
    Ok(out)
}

/// An opened index whose header passed its seal check. Entries are checked one by
/// one as a lookup reads them.
#[derive(Debug)]
pub struct TargetIndex {
    path: PathBuf,
    file: File,
    len: u64,
    header: IndexHeader,
    seal: [u8; SEAL],
    table_at: u64,
}

impl TargetIndex {
    /// Open `path` and check its header seal and shape.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_owned(),
            source,
        };
        let corrupt = |detail: &str| IndexError::Corrupt {
            path: path.to_owned(),
            detail: detail.to_owned(),
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut fixed = [0u8; MAGIC.len() + 8];
        file.read_exact_at(&mut fixed, 0)
            .map_err(|_| corrupt("shorter than its magic"))?;
        if &fixed[..MAGIC.len()] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&fixed[MAGIC.len()..]);
        let header_len = u64::from_le_bytes(n);
        if header_len > MAX_HEADER || fixed.len() as u64 + header_len + SEAL as u64 > len {
            return Err(corrupt("header length out of range"));
        }
        let mut buf = vec![0u8; fixed.len() + header_len as usize + SEAL];
        file.read_exact_at(&mut buf, 0)
            .map_err(|_| corrupt("truncated header"))?;
        let (sealed, seal_bytes) = buf.split_at(buf.len() - SEAL);
        let seal: [u8; SEAL] = Sha256::digest(sealed).into();
        if seal_bytes != seal {
            return Err(corrupt("header seal does not match"));
        }
        let header: IndexHeader = serde_json::from_slice(&sealed[fixed.len()..])
            .map_err(|e| corrupt(&format!("header: {e}")))?;
        let table_at = buf.len() as u64;
        let table_end = header
            .count
            .checked_add(1)
            .and_then(|c| c.checked_mul(8))
            .and_then(|t| t.checked_add(table_at))
            .ok_or_else(|| corrupt("count out of range"))?;
        if table_end > len {
            return Err(corrupt("table runs past the end"));
        }
        let index = Self {
            path: path.to_owned(),
            file,
            len,
            header,
            seal,
            table_at,
        };
        if index.offset(index.header.count)? != len {
            return Err(corrupt("last offset is not the file length"));
        }
        Ok(index)
    }

    /// What the index was built from and under.
    pub fn header(&self) -> &IndexHeader {
        &self.header
    }

    fn corrupt(&self, detail: String) -> IndexError {
        IndexError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    fn offset(&self, i: u64) -> Result<u64, IndexError> {
        let mut b = [0u8; 8];
        self.file
            .read_exact_at(&mut b, self.table_at + 8 * i)
            .map_err(|e| self.corrupt(format!("offset {i}: {e}")))?;
        Ok(u64::from_le_bytes(b))
    }

    /// Entry `i`, checked against its tag.
    fn entry(&self, i: u64) -> Result<(String, TargetFile), IndexError> {
        let start = self.offset(i)?;
        let end = self.offset(i + 1)?;
        let size = end.saturating_sub(start);
        if start < self.table_at || end > self.len || size <= TAG as u64 || size > MAX_ENTRY {
            return Err(self.corrupt(format!("entry {i} out of range")));
        }
        let mut buf = vec![0u8; size as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| self.corrupt(format!("entry {i}: {e}")))?;
        let (json, t) = buf.split_at(buf.len() - TAG);
        if tag(&self.seal, i, json) != t {
            return Err(self.corrupt(format!("entry {i} does not match its tag")));
        }
        serde_json::from_slice(json).map_err(|e| self.corrupt(format!("entry {i}: {e}")))
    }

    /// The entry for target `name`, by binary search over checked entries.
    pub fn lookup(&self, name: &str) -> Result<Option<TargetFile>, IndexError> {
        let (mut lo, mut hi) = (0u64, self.header.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (key, file) = self.entry(mid)?;
            match key.as_str().cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some(file)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
