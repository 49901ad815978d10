//! What a verifier pins as its trust anchor, as plain data: a root file, root key
//! ids with their own threshold, a CA, or (signers only) the first root seen. The
//! checks against a repository and a trusted cache are `ops::anchor`'s; these types
//! sit at the bottom of the crate so a policy file can name them without depending
//! on the operations.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

/// Shortest key-id pin accepted, in hex digits (128 bits: a 32-bit prefix can be
/// ground by an attacker in seconds).
pub const MIN_KEYID_PIN: usize = 32;

/// What a verifier trusts on first use of a repository.
#[derive(Debug, Clone, Default)]
pub enum Pin {
    /// Nothing: the trusted cache must already hold a root.
    #[default]
    None,
    /// A root.json file obtained out of band.
    RootFile(PathBuf),
    /// Root key ids with their own threshold.
    KeyIds(KeyIdPin),
    /// Trust whatever `1.root.json` the store holds (signers bootstrapping; never for
    /// verification unless a policy says `tofu = true`).
    FirstUse,
    /// A CA whose certificates on root keys vouch for them.
    Ca(CaPin),
}

/// Root key ids: the root must be signed by `threshold` distinct keys whose ids
/// (recomputed from the key material) start with one of `ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdPin {
    ids: Vec<String>,
    threshold: NonZeroU64,
}

/// A CA certificate (PEM file): `threshold` distinct root keys that signed the root
/// must hold valid chains to it (and at least the root's own threshold of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPin {
    path: PathBuf,
    threshold: NonZeroU64,
}

/// A pin that cannot be used as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinError {
    /// A key-id pin that is not 32 to 64 hex digits.
    #[error(
        "root key id pin {id:?} must be {MIN_KEYID_PIN} to 64 hex digits (a shorter prefix can be forged); \
         use the full id `warrant init` printed"
    )]
    ShortKeyId {
        /// The pin as given.
        id: String,
    },
    /// A threshold of zero, or more than the pinned keys.
    #[error(
        "root threshold {threshold} is impossible with {keys} pinned key id(s); give 1 to {keys}"
    )]
    Threshold {
        /// The threshold asked for.
        threshold: u64,
        /// How many distinct key ids are pinned.
        keys: usize,
    },
    /// A CA pin with threshold 0.
    #[error("root threshold must be at least 1")]
    ZeroThreshold,
}

impl KeyIdPin {
    /// Pin `ids` (full ids or prefixes of 32+ hex digits, each counted once), with
    /// `threshold` defaulting to the number of distinct pinned ids.
    pub fn new(ids: &[String], threshold: Option<u64>) -> Result<Self, PinError> {
        let mut distinct: Vec<String> = Vec::new();
        for id in ids {
            let id = id.trim().to_ascii_lowercase();
            if !(MIN_KEYID_PIN..=64).contains(&id.len())
                || !id.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(PinError::ShortKeyId { id });
            }
            if !distinct.contains(&id) {
                distinct.push(id);
            }
        }
        let keys = distinct.len();
        let threshold = threshold.unwrap_or(keys as u64);
        match NonZeroU64::new(threshold) {
            Some(t) if keys > 0 && threshold <= keys as u64 => Ok(Self {
                ids: distinct,
                threshold: t,
            }),
            _ => Err(PinError::Threshold { threshold, keys }),
        }
    }

    /// The pinned ids.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// How many distinct pinned keys must sign.
    pub fn threshold(&self) -> u64 {
        self.threshold.get()
    }
}

impl CaPin {
    /// Pin the CA in `path`; `threshold` defaults to 1.
    pub fn new(path: PathBuf, threshold: Option<u64>) -> Result<Self, PinError> {
        let threshold = NonZeroU64::new(threshold.unwrap_or(1)).ok_or(PinError::ZeroThreshold)?;
        Ok(Self { path, threshold })
    }

    /// The CA file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many distinct certified root keys must sign.
    pub fn threshold(&self) -> u64 {
        self.threshold.get()
    }
}
