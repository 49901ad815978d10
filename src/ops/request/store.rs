//! Reading and changing the `warrant.requests` artifact: bounded reads, and the
//! same publish discipline as `warrant.tuf` (guarded publish, re-read to confirm on
//! registries, jittered retries; [`crate::ops::edit::transact`]), so requesters
//! publishing at once lose none of each other's requests.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use super::document::{self, Invalid, MAX_REQUEST_BYTES, ValidRequest};
use crate::ops::OpError;
use crate::ops::edit::{MAX_ATTEMPTS, backoff};
use crate::store::{Listing, NewFile, Store, StoreError, StoreErrorKind, StoredFile};

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
    pub drop: Vec<crate::digest::Sha256Digest>,
}

/// Apply `edit` to the current listing (`None`: no artifact yet) and publish the
/// result; `edit` returning `None` means nothing to change. On a store without
/// compare-and-swap the result is re-read: when another writer published after us,
/// our change must still be there (every added file present, every dropped one
/// absent), else it is redone from the new state, at most [`MAX_ATTEMPTS`] times.
pub fn update(
    store: &dyn Store,
    mut edit: impl FnMut(Option<&Listing>) -> Result<Option<Change>, OpError>,
) -> Result<(), OpError> {
    let location = store.location().to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let listing = store.listing()?;
        let Some(change) = edit(listing.as_ref())? else {
            return Ok(());
        };
        let previous = listing.as_ref().map(|l| l.digest);
        let result = store
            .publish_keeping(&change.keep, &change.add, previous.as_ref())
            .map_err(OpError::from)
            .and_then(|published| {
                if store.publish_is_atomic() {
                    return Ok(());
                }
                confirm(store, listing.as_ref(), &change, published, &location)
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

/// Re-read after a publish on a registry (no compare-and-swap on tags).
fn confirm(
    store: &dyn Store,
    before: Option<&Listing>,
    change: &Change,
    published: crate::digest::Sha256Digest,
    location: &str,
) -> Result<(), OpError> {
    // Longer than the gap between a concurrent writer's last check and its PUT.
    std::thread::sleep(StdDuration::from_millis(50) + backoff(2));
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
    if now.is_some() && now == before.map(|l| l.digest) {
        return Err(conflict(
            "the registry acknowledged the new manifest but still serves the previous one",
        ));
    }
    // Someone published after us: did they build on our change?
    let current = store.listing().map_err(unconfirmed)?;
    let files = current.map(|l| l.files).unwrap_or_default();
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
