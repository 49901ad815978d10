//! Reading and changing the `warrant.requests` artifact: bounded reads, and the
//! same publish discipline as `warrant.tuf` (guarded publish, re-read to confirm on
//! registries, jittered retries; [`crate::ops::edit::transact`]), so requesters
//! publishing at once lose none of each other's requests.

use chrono::{DateTime, Utc};

use sha2::{Digest as _, Sha256};

use super::document::{self, ID_HEX_DIGITS, Invalid, MAX_REQUEST_BYTES, ValidRequest};
use crate::digest::Sha256Digest;
use crate::ops::OpError;
use crate::ops::edit::{MAX_ATTEMPTS, backoff};
use crate::store::artifact::{BadLayer, parse_manifest_lenient_of};
use crate::store::{ArtifactKind, Listing, NewFile, Store, StoreError, StoreErrorKind, StoredFile};

/// Most request files read from one listing; past it the rest are reported, not read.
pub const MAX_REQUESTS: usize = 100;

/// One file of the artifact, checked.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The layer as listed.
    pub file: StoredFile,
    /// The id computed from its content, when it parsed that far.
    pub id: Option<String>,
    /// The verified request, or why it is not one.
    pub checked: Result<ValidRequest, Invalid>,
}

impl Entry {
    /// The id to show and to match `--reject` against: the content's, else the
    /// file name's stem.
    pub fn display_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            let stem = self.file.name.trim_end_matches(".json");
            stem.chars().take(32).collect()
        })
    }
}

/// What the `warrant.requests` tag holds. The tag is a mailbox that no verifier
/// reads, so nothing in it can block the channel: a layer that cannot be read
/// safely is set aside (listed, never used, gone with the next change), and a tag
/// that holds something else altogether can be replaced.
#[derive(Debug)]
pub enum Current {
    /// No tag yet.
    Empty,
    /// A key-request artifact: the layers that can be read, and those set aside.
    Requests {
        /// The readable layers.
        listing: Listing,
        /// Layers with an unsafe title, an impossible size, a bad digest, a name
        /// listed twice: never read.
        bad: Vec<BadLayer>,
    },
    /// Not a key-request artifact (an image copied onto the tag, another artifact
    /// type, a manifest that is not JSON or too large): never read.
    Foreign {
        /// Its manifest digest (what a replacement is based on).
        digest: Sha256Digest,
        /// Why it is not read.
        reason: String,
    },
}

impl Current {
    /// The manifest digest a change is based on.
    pub fn digest(&self) -> Option<Sha256Digest> {
        match self {
            Self::Empty => None,
            Self::Requests { listing, .. } => Some(listing.digest),
            Self::Foreign { digest, .. } => Some(*digest),
        }
    }

    /// The readable files.
    pub fn files(&self) -> &[StoredFile] {
        match self {
            Self::Requests { listing, .. } => &listing.files,
            _ => &[],
        }
    }
}

/// Read the tag: strictly first (the common case, one request), and when the
/// manifest is refused as a whole, again layer by layer.
pub fn current(store: &dyn Store) -> Result<Current, OpError> {
    let refused =
        |k: StoreErrorKind| matches!(k, StoreErrorKind::Malformed | StoreErrorKind::TooLarge);
    match store.listing() {
        Ok(None) => return Ok(Current::Empty),
        Ok(Some(listing)) => {
            let bad = vec![];
            return Ok(Current::Requests { listing, bad });
        }
        Err(e) if refused(e.kind) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(digest) = store.head_listing()? else {
        return Ok(Current::Empty);
    };
    let bytes = match store.read_manifest(&digest) {
        Ok(b) => b,
        Err(e) if refused(e.kind) => {
            let reason = e.detail;
            return Ok(Current::Foreign { digest, reason });
        }
        Err(e) => return Err(e.into()),
    };
    Ok(
        match parse_manifest_lenient_of(ArtifactKind::KEY_REQUESTS, &bytes, digest) {
            Ok((listing, bad)) => Current::Requests { listing, bad },
            Err(e) => Current::Foreign {
                digest,
                reason: e.to_string(),
            },
        },
    )
}

/// The id under which a layer set aside is listed and rejected: stable while the
/// layer is, and never the id of a request (those come from their content).
pub fn bad_layer_id(b: &BadLayer) -> String {
    let mut h = hex::encode(Sha256::digest(b.raw.as_bytes()));
    h.truncate(ID_HEX_DIGITS);
    format!("layer-{h}")
}

/// Every file of `listing` (the first [`MAX_REQUESTS`]), read with a cap and
/// checked against `repository` at `now`; and how many were left unread.
pub fn read_entries(
    store: &dyn Store,
    listing: &Listing,
    repository: &str,
    now: DateTime<Utc>,
) -> (Vec<Entry>, usize) {
    let files: Vec<&StoredFile> = listing.files.iter().take(MAX_REQUESTS).collect();
    let want: Vec<(StoredFile, u64)> = files
        .iter()
        .map(|f| ((*f).clone(), MAX_REQUEST_BYTES))
        .collect();
    store.prefetch(&want);
    let mut out: Vec<Entry> = Vec::new();
    for f in files {
        let (id, checked) = match store.read_file(f, MAX_REQUEST_BYTES) {
            Ok(bytes) => document::check(&bytes, repository, now),
            Err(e) => (None, Err(Invalid::Unreadable(e.detail))),
        };
        out.push(Entry {
            file: f.clone(),
            id,
            checked,
        });
    }
    (out, listing.files.len().saturating_sub(MAX_REQUESTS))
}

/// A change to the artifact, computed from its current state.
pub struct Change {
    /// Files of the current listing to keep (referenced by digest).
    pub keep: Vec<StoredFile>,
    /// New files.
    pub add: Vec<NewFile>,
    /// Digests that must be gone for the change to count (a request closed or
    /// rejected; expired ones pruned on the way need not be).
    pub drop: Vec<Sha256Digest>,
}

/// Apply `edit` to the current listing (`None`: no artifact yet) and publish the
/// result; `edit` returning `None` means nothing to change. On a store without
/// compare-and-swap the result is re-read: when another writer published after us,
/// our change must still be there (every added file present, every dropped one
/// absent), else it is redone from the new state, at most [`MAX_ATTEMPTS`] times.
pub fn update(
    store: &dyn Store,
    mut edit: impl FnMut(&Current) -> Result<Option<Change>, OpError>,
) -> Result<(), OpError> {
    let location = store.location().to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = current(store)?;
        let Some(change) = edit(&current)? else {
            return Ok(());
        };
        let previous = current.digest();
        let result = store
            .publish_keeping(&change.keep, &change.add, previous.as_ref())
            .map_err(OpError::from)
            .and_then(|published| {
                if store.publish_is_atomic() {
                    return Ok(());
                }
                confirm(store, previous, &change, published, &location)
            });
        match result {
            Err(OpError::Store(e)) if e.kind == StoreErrorKind::Conflict => {
                if attempt >= MAX_ATTEMPTS {
                    return Err(OpError::TooManyConflicts {
                        location,
                        attempts: attempt,
                        last: e.detail,
                    });
                }
                tracing::info!(attempt, "another requester published meanwhile; retrying");
                std::thread::sleep(backoff(attempt));
            }
            other => return other,
        }
    }
}

/// Re-read after a publish on a registry (no compare-and-swap on tags), with the
/// same settle rule as `warrant.tuf` publishes ([`crate::ops::publish::PUBLISH_SETTLE`]).
fn confirm(
    store: &dyn Store,
    before: Option<Sha256Digest>,
    change: &Change,
    published: Sha256Digest,
    location: &str,
) -> Result<(), OpError> {
    use crate::ops::publish::PUBLISH_SETTLE;
    let window = store.last_publish_window().unwrap_or_default();
    std::thread::sleep(PUBLISH_SETTLE.max(window * 2) + backoff(2));
    confirm_after_settle(store, before, change, published, location)?;
    if window > PUBLISH_SETTLE {
        return Err(OpError::PublishWindowExceeded {
            location: location.to_owned(),
            published: published.to_string(),
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            settle_ms: u64::try_from(PUBLISH_SETTLE.as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

fn confirm_after_settle(
    store: &dyn Store,
    before: Option<Sha256Digest>,
    change: &Change,
    published: Sha256Digest,
    location: &str,
) -> Result<(), OpError> {
    let unconfirmed = |e: StoreError| OpError::Unconfirmed {
        location: location.to_owned(),
        published: published.to_string(),
        source: Box::new(OpError::Store(e)),
    };
    let now = store.head_listing().map_err(unconfirmed)?;
    if now == Some(published) {
        return Ok(());
    }
    let conflict = |detail: &str| {
        OpError::Store(StoreError::new(
            StoreErrorKind::Conflict,
            location,
            crate::store::ArtifactKind::KEY_REQUESTS.tag,
            detail,
        ))
    };
    if now.is_some() && now == before {
        return Err(conflict(
            "the registry acknowledged the new manifest but still serves the previous one",
        ));
    }
    // Someone published after us: did they build on our change?
    let current = current(store).map_err(|e| OpError::Unconfirmed {
        location: location.to_owned(),
        published: published.to_string(),
        source: Box::new(e),
    })?;
    let files = current.files();
    let added = change.add.iter().all(|a| {
        let d = crate::digest::Sha256Digest::of(&a.bytes);
        files.iter().any(|f| f.digest == d)
    });
    let gone = change
        .drop
        .iter()
        .all(|d| !files.iter().any(|f| f.digest == *d));
    if added && gone {
        Ok(())
    } else {
        Err(conflict("a concurrent writer overwrote this change"))
    }
}
