//! Requests as shown to people and scripts: what `key request`, `key requests`,
//! `--reject`, `--clear` and `--request` report.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::store::{Entry, bad_layer_id};
use crate::crypto::KeyId;
use crate::store::artifact::BadLayer;

/// A request as shown to people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    /// The request id (12 hex digits).
    pub id: String,
    /// Whether it verified; only valid requests can be used.
    pub valid: bool,
    /// Why not, when invalid.
    pub reason: Option<String>,
    /// The role asked for.
    pub role: Option<String>,
    /// The key's fingerprint: 16 hex digits in groups of four.
    pub fingerprint: Option<String>,
    /// The same as six words.
    pub fingerprint_words: Option<String>,
    /// The key id.
    pub keyid: Option<KeyId>,
    /// The key type.
    pub keytype: Option<String>,
    /// The requester's note.
    pub note: Option<String>,
    /// When it was made (RFC 3339).
    pub created: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires: Option<DateTime<Utc>>,
    /// Seconds since it was made.
    pub age_seconds: Option<i64>,
}

impl RequestView {
    /// A layer of the tag that cannot be read safely: listed so that it can be
    /// rejected, never read.
    pub(super) fn of_bad(b: &BadLayer) -> Self {
        let why = format!("cannot be read safely ({}): never read", b.error);
        Self {
            id: bad_layer_id(b),
            valid: false,
            reason: Some(printable(&why)),
            role: None,
            fingerprint: None,
            fingerprint_words: None,
            keyid: None,
            keytype: None,
            note: None,
            created: None,
            expires: None,
            age_seconds: None,
        }
    }

    pub(super) fn of(e: &Entry, now: DateTime<Utc>) -> Self {
        let mut v = Self {
            id: e.display_id(),
            valid: e.checked.is_ok(),
            // Reasons quote hostile input (a parser's message): printable only.
            reason: e.checked.as_ref().err().map(|r| printable(&r.to_string())),
            role: None,
            fingerprint: None,
            fingerprint_words: None,
            keyid: None,
            keytype: None,
            note: None,
            created: None,
            expires: None,
            age_seconds: None,
        };
        if let Ok(r) = &e.checked {
            v.role = Some(r.request.role.clone());
            v.fingerprint = Some(r.fingerprint.hex());
            v.fingerprint_words = Some(r.fingerprint.words().join(" "));
            v.keyid = Some(r.keyid.clone());
            v.keytype = Some(r.public.keytype().to_owned());
            v.note = Some(r.request.note.clone());
            v.created = Some(r.request.created);
            v.expires = Some(r.request.expires);
            v.age_seconds = Some((now - r.request.created).num_seconds().max(0));
        }
        v
    }
}

/// Reasons quote hostile input (a parser's message, a layer title): printable only.
fn printable(s: &str) -> String {
    s.chars()
        .take(300)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The open requests of a repository.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RequestList {
    /// Valid ones first (oldest first), then invalid ones.
    pub requests: Vec<RequestView>,
    /// Files past [`MAX_REQUESTS`], not read.
    #[serde(skip)]
    pub unread: usize,
}

/// What `key request` published (or found already published).
#[derive(Debug, Clone, Serialize)]
pub struct PublishedRequest {
    /// The repository.
    pub repository: String,
    /// The request, as the administrator will see it.
    #[serde(flatten)]
    pub view: RequestView,
    /// Earlier requests of the same key for the same role, replaced by this one.
    pub replaced: Vec<String>,
    /// What the tag held instead of key requests, now replaced (the tag is only a
    /// mailbox; nothing trusts it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_foreign: Option<String>,
}

/// What `key requests --reject` dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// The repository.
    pub repository: String,
    /// The request ids.
    pub rejected: Vec<String>,
}

/// What `key requests --clear` did.
#[derive(Debug, Clone, Serialize)]
pub struct Cleared {
    /// The repository.
    pub repository: String,
    /// Entries dropped (requests, valid or not, and layers set aside).
    pub dropped: usize,
    /// What the tag held instead of key requests, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<String>,
}

/// A key taken from a request into the key store.
#[derive(Debug, Clone, Serialize)]
pub struct TakenKey {
    /// The request.
    pub request: String,
    /// The key id (now in the key store, public only).
    pub keyid: KeyId,
    /// Its name in the key store.
    pub name: String,
    /// Its fingerprint (hex).
    pub fingerprint: String,
    /// Whether this command put it in the key store (and must take it out again
    /// when the change that uses it fails: [`super::untake`]).
    #[serde(skip)]
    pub imported: bool,
}
