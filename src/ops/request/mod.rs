//! Key requests (issue #15 part 2): getting a collaborator's public key to the
//! administrator through the registry, checked by a fingerprint read out over
//! another channel.
//!
//! - `warrant key request` ([`publish`]): the would-be signer signs a request with
//!   the requested key (proof of possession) and adds it to the `warrant.requests`
//!   artifact beside the TUF repository ([`crate::store::ArtifactKind::KEY_REQUESTS`]).
//!   No verifier ever reads that tag: `verify`, `status` and `inspect` open only
//!   `warrant.tuf`.
//! - `warrant key requests` ([`list`], [`reject`]): what is open, each checked;
//!   invalid ones are shown with the reason and never offered.
//! - `delegation add --request ID --fingerprint FP` / `key rotate --add-request`
//!   ([`take`], then [`close`]): the key enters the administrator's key store as a
//!   public key (exactly as `key import` of a PEM would) only when the fingerprint
//!   the administrator typed is that of the key in the request. The registry can
//!   swap the key (and re-sign the request with its own); it cannot make its key
//!   have the requester's fingerprint.

pub mod document;
pub mod store;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use serde::Serialize;

use crate::crypto::KeyId;
use crate::crypto::fingerprint::{Fingerprint, FingerprintError};
use crate::store::{ArtifactKind, Location, NewFile};
use crate::tuf::metadata::Key;

use super::trust::{open_artifact_store, open_store};
use super::{Context, OpError};
use document::{Invalid, KeyRequest, MAX_LIFETIME_DAYS, REQUEST_TYPE, REQUEST_VERSION};
use store::{Change, Entry, MAX_REQUESTS};

/// Default lifetime of a request.
pub fn default_lifetime() -> Duration {
    Duration::days(7)
}

/// A key request could not be made, used or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No request with this id (closed, rejected, expired and pruned, or a typo).
    #[error("{location} has no key request {id}: list them with `warrant key requests {location}`")]
    NotFound {
        /// The repository.
        location: String,
        /// The id asked for.
        id: String,
    },
    /// The request exists but does not verify; it is never used.
    #[error(
        "not trusted: key request {id} is not valid ({reason}); it cannot be used: ask the \
         requester to run `warrant key request` again"
    )]
    NotValid {
        /// The request.
        id: String,
        /// Why.
        reason: Invalid,
    },
    /// The fingerprint typed is not that of the key in the request.
    #[error(
        "not trusted: the fingerprint you typed is not that of the key in request {id}: \
         the key in the registry is not the one the requester holds (swapped), or the \
         fingerprint was misread; do not add it — ask the requester to read theirs again"
    )]
    FingerprintMismatch {
        /// The request.
        id: String,
    },
    /// The request asks for another role than the one being changed.
    #[error("key request {id} asks for role {requested:?}, not {role:?}")]
    RoleMismatch {
        /// The request.
        id: String,
        /// The role it asks for.
        requested: String,
        /// The role being changed.
        role: String,
    },
    /// What was typed as a fingerprint cannot be read.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// Too many open requests: the artifact is bounded.
    #[error(
        "{location} already has {count} open key requests (at most {MAX_REQUESTS}); an \
         administrator must reject some (`warrant key requests {location} --reject ID`)"
    )]
    TooMany {
        /// The repository.
        location: String,
        /// Requests listed.
        count: usize,
    },
    /// The request could not be signed.
    #[error(transparent)]
    Make(#[from] document::MakeError),
}

impl RequestError {
    /// 1 for what must not be trusted, 2 for usage, 3 for a full artifact.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotValid { .. } | Self::FingerprintMismatch { .. } => 1,
            Self::TooMany { .. } => 3,
            Self::NotFound { .. }
            | Self::RoleMismatch { .. }
            | Self::Fingerprint(_)
            | Self::Make(_) => 2,
        }
    }
}

fn err(e: RequestError) -> OpError {
    OpError::Request(Box::new(e))
}

/// What `warrant key request` asks for.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The role asked for.
    pub role: String,
    /// The key (id, prefix or name in the key store; a file or token key).
    pub key: String,
    /// A note for the administrator.
    pub note: String,
    /// How long the request stays open.
    pub lifetime: Duration,
}

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
    fn of(e: &Entry, now: DateTime<Utc>) -> Self {
        let mut v = Self {
            id: e.display_id(),
            valid: e.checked.is_ok(),
            // Reasons quote hostile input (a parser's message): printable only.
            reason: e.checked.as_ref().err().map(|r| {
                let r = r.to_string();
                r.chars()
                    .take(200)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect()
            }),
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
}

/// What `key requests --reject` dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// The repository.
    pub repository: String,
    /// The request id.
    pub rejected: String,
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
}

fn requests_store(
    ctx: &Context,
    location: &Location,
) -> Result<Box<dyn crate::store::Store>, OpError> {
    open_artifact_store(ctx, location, ArtifactKind::KEY_REQUESTS)
}

/// `warrant key request`: sign a request with the requested key itself and add it to
/// the repository's `warrant.requests` artifact.
pub fn publish(
    ctx: &Context,
    location: &Location,
    new: &NewRequest,
) -> Result<PublishedRequest, OpError> {
    if !document::is_role_name(&new.role) {
        return Err(OpError::InvalidValue {
            argument: "--role",
            value: new.role.chars().take(80).collect(),
            expected: "a role name of 1 to 64 letters, digits, '.', '_' or '-'",
        });
    }
    if !document::is_note(&new.note) {
        // (document::MAX_NOTE_CHARS)
        return Err(OpError::InvalidValue {
            argument: "--note",
            value: new.note.chars().take(40).collect::<String>() + "...",
            expected: "at most 280 characters, without control characters",
        });
    }
    if new.lifetime > Duration::days(MAX_LIFETIME_DAYS) {
        // (MAX_LIFETIME_DAYS)
        return Err(OpError::InvalidValue {
            argument: "--expires",
            value: format!("{} days", new.lifetime.num_days()),
            expected: "at most 30 days (a key request is short-lived)",
        });
    }
    // A request beside nothing would wait for an administrator who never comes.
    if open_store(ctx, location)?.head_listing()?.is_none() {
        return Err(OpError::NoRepository {
            location: location.to_string(),
        });
    }
    let info = ctx.keys.find(&new.key)?;
    let public = info.public_key().map_err(|source| OpError::KeyMaterial {
        keyid: info.keyid.to_string(),
        source,
    })?;
    let created = ctx.now.trunc_subsecs(0);
    let request = KeyRequest {
        kind: REQUEST_TYPE.to_owned(),
        version: REQUEST_VERSION,
        repository: location.to_string(),
        role: new.role.clone(),
        key: Key::from_public(&public),
        note: new.note.clone(),
        created,
        expires: created + new.lifetime,
    };
    let signers = ctx.signers_for(
        "key request",
        std::slice::from_ref(&info.keyid),
        1,
        Some(&new.key),
    )?;
    let signer = signers.first().ok_or_else(|| OpError::MissingSigningKeys {
        role: "key request".into(),
        have: 0,
        threshold: 1,
        needed: info.keyid.0.clone(),
    })?;
    let (bytes, id) = document::sign(&request, signer).map_err(|e| err(e.into()))?;
    let repository = location.to_string();
    let store = requests_store(ctx, location)?;
    store::update(store.as_ref(), |listing| {
        let Some(listing) = listing else {
            return Ok(Some(Change {
                keep: vec![],
                add: vec![new_file(&id, &bytes)],
                drop: vec![],
            }));
        };
        let (entries, unread) = store::read_entries(store.as_ref(), listing, &repository, ctx.now);
        if entries.iter().any(|e| e.id.as_deref() == Some(id.as_str())) {
            return Ok(None); // already there: publishing again is a no-op
        }
        // Expired requests are pruned on the way; anything else stays for the
        // administrator to see (an invalid one may be evidence of tampering).
        let keep: Vec<_> = entries
            .iter()
            .filter(|e| !matches!(e.checked, Err(Invalid::Expired(_))))
            .map(|e| e.file.clone())
            .collect();
        if unread > 0 || keep.len() >= MAX_REQUESTS {
            return Err(err(RequestError::TooMany {
                location: repository.clone(),
                count: listing.files.len(),
            }));
        }
        Ok(Some(Change {
            keep,
            add: vec![new_file(&id, &bytes)],
            drop: vec![],
        }))
    })?;
    let (_, checked) = document::check(&bytes, &repository, ctx.now);
    let entry = Entry {
        file: crate::store::StoredFile {
            name: format!("{id}.json"),
            digest: crate::digest::Sha256Digest::of(&bytes),
            size: bytes.len() as u64,
            pending: false,
        },
        id: Some(id),
        checked,
    };
    Ok(PublishedRequest {
        repository,
        view: RequestView::of(&entry, ctx.now),
    })
}

fn new_file(id: &str, bytes: &[u8]) -> NewFile {
    NewFile {
        name: format!("{id}.json"),
        bytes: bytes.to_vec(),
        pending: false,
    }
}

/// `warrant key requests`: every request of the repository, checked.
pub fn list(ctx: &Context, location: &Location) -> Result<RequestList, OpError> {
    let store = requests_store(ctx, location)?;
    let Some(listing) = store.listing()? else {
        return Ok(RequestList {
            requests: vec![],
            unread: 0,
        });
    };
    let (entries, unread) =
        store::read_entries(store.as_ref(), &listing, &location.to_string(), ctx.now);
    let mut requests: Vec<RequestView> = Vec::new();
    // The same request stored twice (under two names) is listed once.
    for e in &entries {
        let v = RequestView::of(e, ctx.now);
        if !requests.iter().any(|r| r.id == v.id) {
            requests.push(v);
        }
    }
    requests.sort_by_key(|r| (!r.valid, r.created));
    Ok(RequestList { requests, unread })
}

/// `warrant key requests --reject ID`: drop a request (valid or not).
pub fn reject(ctx: &Context, location: &Location, id: &str) -> Result<(), OpError> {
    let store = requests_store(ctx, location)?;
    let repository = location.to_string();
    let id = id.trim().to_ascii_lowercase();
    store::update(store.as_ref(), |listing| {
        let not_found = || {
            err(RequestError::NotFound {
                location: repository.clone(),
                id: id.clone(),
            })
        };
        let listing = listing.ok_or_else(not_found)?;
        let (entries, _) = store::read_entries(store.as_ref(), listing, &repository, ctx.now);
        let drop: Vec<_> = entries
            .iter()
            .filter(|e| e.display_id().to_ascii_lowercase() == id)
            .map(|e| e.file.digest)
            .collect();
        if drop.is_empty() {
            return Err(not_found());
        }
        let keep = listing
            .files
            .iter()
            .filter(|f| !drop.contains(&f.digest))
            .cloned()
            .collect();
        Ok(Some(Change {
            keep,
            add: vec![],
            drop,
        }))
    })
}

/// Close a request whose key was taken (same as [`reject`]).
pub fn close(ctx: &Context, location: &Location, id: &str) -> Result<(), OpError> {
    reject(ctx, location, id)
}

/// Take the key of request `id` for `role`, only when `typed` (the fingerprint the
/// requester read out over another channel) is that of the key in the request. The
/// key is stored in the key store as a public key, and its id returned for
/// `delegation add` / `key rotate` to use like any key of the store.
pub fn take(
    ctx: &Context,
    location: &Location,
    id: &str,
    typed: &str,
    role: &str,
) -> Result<TakenKey, OpError> {
    let typed = Fingerprint::parse(typed).map_err(|e| err(e.into()))?;
    let id = id.trim().to_ascii_lowercase();
    let repository = location.to_string();
    let not_found = || {
        err(RequestError::NotFound {
            location: repository.clone(),
            id: id.clone(),
        })
    };
    let store = requests_store(ctx, location)?;
    let listing = store.listing()?.ok_or_else(not_found)?;
    let (entries, _) = store::read_entries(store.as_ref(), &listing, &repository, ctx.now);
    // Only the content's own id names a request here, never a file name.
    let entry = entries
        .into_iter()
        .find(|e| e.id.as_deref() == Some(id.as_str()))
        .ok_or_else(not_found)?;
    let valid = entry.checked.map_err(|reason| {
        err(RequestError::NotValid {
            id: id.clone(),
            reason,
        })
    })?;
    if valid.request.role != role {
        return Err(err(RequestError::RoleMismatch {
            id,
            requested: valid.request.role,
            role: role.to_owned(),
        }));
    }
    if valid.fingerprint != typed {
        return Err(err(RequestError::FingerprintMismatch { id }));
    }
    let info = match ctx.keys.find(&valid.keyid.0) {
        Ok(info) if info.keyid == valid.keyid => info,
        _ => ctx
            .keys
            .add_public(&valid.public, &key_name(role, &valid.keyid))?,
    };
    Ok(TakenKey {
        request: id,
        keyid: info.keyid,
        name: info.name,
        fingerprint: valid.fingerprint.hex(),
    })
}

/// `<role>-<8 hex of the key id>` when that is a valid key name, else `key-<8 hex>`.
fn key_name(role: &str, keyid: &KeyId) -> String {
    let short = keyid.0.get(..8).unwrap_or(&keyid.0);
    let role: String = role.chars().take(40).collect();
    let name = format!("{role}-{short}");
    if crate::crypto::keystore::check_name(&name).is_ok() {
        name
    } else {
        format!("key-{short}")
    }
}
