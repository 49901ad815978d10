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
mod view;

pub use view::{Cleared, PublishedRequest, Rejected, RequestList, RequestView, TakenKey};

use chrono::{Duration, SubsecRound as _};

use crate::crypto::KeyId;
use crate::crypto::fingerprint::{Fingerprint, FingerprintError};
use crate::store::{ArtifactKind, Location, NewFile};
use crate::tuf::metadata::Key;

use super::trust::{open_artifact_store, open_store};
use super::{Context, OpError};
use document::{Invalid, KeyRequest, MAX_LIFETIME_DAYS, REQUEST_TYPE, REQUEST_VERSION};
use store::{Change, Current, Entry, MAX_REQUESTS};

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
    /// Too many open requests: the artifact is bounded (one open request per key
    /// and role, so this takes many keys).
    #[error(
        "{location} already has {count} open key requests (at most {MAX_REQUESTS}); an \
         administrator must reject some (`warrant key requests {location} --reject \
         ID,ID,...`) or all (`warrant key requests {location} --clear`)"
    )]
    TooMany {
        /// The repository.
        location: String,
        /// Requests listed.
        count: usize,
    },
    /// The `warrant.requests` tag holds something that is not a key-request artifact
    /// (an image copied onto it, another artifact type, a manifest that does not
    /// parse). Nothing trusts that tag; it can be reset.
    #[error(
        "not trusted: {location}:warrant.requests is not a key-request artifact \
         ({reason}); it is never read. Nothing trusts this tag: reset it with `warrant \
         key requests {location} --clear`, or a new `warrant key request` replaces it"
    )]
    NotRequests {
        /// The repository.
        location: String,
        /// Why it is not read.
        reason: String,
    },
    /// A request can only ask to join a role one is delegated into.
    #[error(
        "one does not ask to join {role:?}: {role} keys are the repository's own \
         (`warrant key rotate --role {role}` by an administrator); ask for a delegated \
         role (e.g. `--role dev`) that the administrator adds with `warrant delegation add`"
    )]
    NotAskable {
        /// The role asked for.
        role: String,
    },
    /// The request could not be signed.
    #[error(transparent)]
    Make(#[from] document::MakeError),
}

impl RequestError {
    /// 1 for what must not be trusted, 2 for usage (a full mailbox included: an
    /// administrator clears it).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotValid { .. } | Self::FingerprintMismatch { .. } | Self::NotRequests { .. } => {
                1
            }
            Self::TooMany { .. }
            | Self::NotAskable { .. }
            | Self::NotFound { .. }
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

fn requests_store(
    ctx: &Context,
    location: &Location,
) -> Result<Box<dyn crate::store::Store>, OpError> {
    open_artifact_store(ctx, location, ArtifactKind::KEY_REQUESTS)
}

/// The readable entries of the tag; a tag that is not a key-request artifact is an
/// error that says how to reset it.
fn read_current(
    ctx: &Context,
    store: &dyn crate::store::Store,
    current: &Current,
    repository: &str,
) -> Result<(Vec<Entry>, usize), OpError> {
    match current {
        Current::Empty => Ok((vec![], 0)),
        Current::Requests { listing, .. } => {
            Ok(store::read_entries(store, listing, repository, ctx.now))
        }
        Current::Foreign { reason, .. } => Err(err(RequestError::NotRequests {
            location: repository.to_owned(),
            reason: reason.chars().take(200).collect(),
        })),
    }
}

/// Top-level roles: never asked for (root is, with a warning: see [`publish`]).
const NOT_ASKABLE: [&str; 3] = ["targets", "snapshot", "timestamp"];

/// `warrant key request`: sign a request with the requested key itself and add it to
/// the repository's `warrant.requests` artifact. A key has at most one open request
/// per role: a new one replaces the previous. A tag that holds something else than
/// key requests is replaced (it is a mailbox; nothing trusts it).
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
    if NOT_ASKABLE.contains(&new.role.as_str()) {
        let role = new.role.clone();
        return Err(err(RequestError::NotAskable { role }));
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
    let (mut replaced, mut replaced_foreign) = (Vec::new(), None);
    store::update(store.as_ref(), |current| {
        replaced.clear();
        replaced_foreign = None;
        let listing = match current {
            Current::Empty => None,
            Current::Requests { listing, .. } => Some(listing),
            Current::Foreign { reason, .. } => {
                replaced_foreign = Some(reason.chars().take(200).collect());
                None
            }
        };
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
        // The same key's earlier request for the same role is replaced: one key
        // cannot fill the mailbox. Expired requests are pruned on the way; anything
        // else stays for the administrator to see (an invalid one may be evidence
        // of tampering).
        let mut keep = Vec::new();
        let mut drop = Vec::new();
        for e in &entries {
            match &e.checked {
                Ok(v) if v.keyid == info.keyid && v.request.role == new.role => {
                    replaced.push(v.id.clone());
                    drop.push(e.file.digest);
                }
                Err(Invalid::Expired(_)) => {}
                _ => keep.push(e.file.clone()),
            }
        }
        if unread > 0 || keep.len() >= MAX_REQUESTS {
            return Err(err(RequestError::TooMany {
                location: repository.clone(),
                count: listing.files.len(),
            }));
        }
        Ok(Some(Change {
            keep,
            add: vec![new_file(&id, &bytes)],
            drop,
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
        replaced,
        replaced_foreign,
    })
}

fn new_file(id: &str, bytes: &[u8]) -> NewFile {
    NewFile {
        name: format!("{id}.json"),
        bytes: bytes.to_vec(),
        pending: false,
    }
}

/// `warrant key requests`: every request of the repository, checked; layers that
/// cannot be read safely are listed as invalid (rejectable, never read).
pub fn list(ctx: &Context, location: &Location) -> Result<RequestList, OpError> {
    let store = requests_store(ctx, location)?;
    let repository = location.to_string();
    let current = store::current(store.as_ref())?;
    let (entries, unread) = read_current(ctx, store.as_ref(), &current, &repository)?;
    let mut requests: Vec<RequestView> = Vec::new();
    // The same request stored twice (under two names) is listed once.
    for e in &entries {
        let v = RequestView::of(e, ctx.now);
        if !requests.iter().any(|r| r.id == v.id) {
            requests.push(v);
        }
    }
    if let Current::Requests { bad, .. } = &current {
        requests.extend(bad.iter().map(RequestView::of_bad));
    }
    requests.sort_by_key(|r| (!r.valid, r.created));
    Ok(RequestList { requests, unread })
}

/// `warrant key requests --reject ID[,ID...]`: drop requests (valid or not) and
/// layers set aside. Every id must be open; nothing is dropped otherwise. Layers
/// that cannot be read safely cannot be kept by any change, so they go too.
pub fn reject(ctx: &Context, location: &Location, ids: &[String]) -> Result<Rejected, OpError> {
    let store = requests_store(ctx, location)?;
    let repository = location.to_string();
    let ids: Vec<String> = ids.iter().map(|i| i.trim().to_ascii_lowercase()).collect();
    store::update(store.as_ref(), |current| {
        let (entries, _) = read_current(ctx, store.as_ref(), current, &repository)?;
        let bad_ids: Vec<String> = match current {
            Current::Requests { bad, .. } => bad.iter().map(store::bad_layer_id).collect(),
            _ => vec![],
        };
        let mut drop = Vec::new();
        for id in &ids {
            let matching: Vec<_> = entries
                .iter()
                .filter(|e| e.display_id().to_ascii_lowercase() == *id)
                .map(|e| e.file.digest)
                .collect();
            if matching.is_empty() && !bad_ids.contains(id) {
                return Err(err(RequestError::NotFound {
                    location: repository.clone(),
                    id: id.clone(),
                }));
            }
            drop.extend(matching);
        }
        let keep = current
            .files()
            .iter()
            .filter(|f| !drop.contains(&f.digest))
            .cloned()
            .collect();
        Ok(Some(Change {
            keep,
            add: vec![],
            drop,
        }))
    })?;
    Ok(Rejected {
        repository,
        rejected: ids,
    })
}

/// `warrant key requests --clear`: empty the tag, whatever it holds (requests,
/// layers set aside, or something that is not a key-request artifact at all).
pub fn clear(ctx: &Context, location: &Location) -> Result<Cleared, OpError> {
    let store = requests_store(ctx, location)?;
    let (mut dropped, mut foreign) = (0, None);
    store::update(store.as_ref(), |current| {
        (dropped, foreign) = match current {
            Current::Empty => return Ok(None),
            Current::Requests { listing, bad } => (listing.files.len() + bad.len(), None),
            Current::Foreign { reason, .. } => (0, Some(reason.chars().take(200).collect())),
        };
        if dropped == 0 && foreign.is_none() {
            return Ok(None);
        }
        let drop = current.files().iter().map(|f| f.digest).collect();
        Ok(Some(Change {
            keep: vec![],
            add: vec![],
            drop,
        }))
    })?;
    Ok(Cleared {
        repository: location.to_string(),
        dropped,
        foreign,
    })
}

/// Close a request whose key was taken (same as [`reject`]).
pub fn close(ctx: &Context, location: &Location, id: &str) -> Result<(), OpError> {
    reject(ctx, location, &[id.to_owned()]).map(|_| ())
}

/// Take the key of request `id` for `role`, only when `typed` (the fingerprint the
/// requester read out over another channel) is that of the key in the request. The
/// key is stored in the key store as a public key, and its id returned for
/// `delegation add` / `key rotate` to use like any key of the store; when that
/// change fails, [`untake`] removes it again.
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
    let current = store::current(store.as_ref())?;
    let (entries, _) = read_current(ctx, store.as_ref(), &current, &repository)?;
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
    let (info, imported) = match ctx.keys.find(&valid.keyid.0) {
        Ok(info) if info.keyid == valid.keyid => (info, false),
        _ => (
            ctx.keys
                .add_public(&valid.public, &key_name(role, &valid.keyid))?,
            true,
        ),
    };
    Ok(TakenKey {
        request: id,
        keyid: info.keyid,
        name: info.name,
        fingerprint: valid.fingerprint.hex(),
        imported,
    })
}

/// Undo [`take`] after the change that was to use the key failed: a key this
/// command put in the key store (public only) is removed again.
pub fn untake(ctx: &Context, taken: &TakenKey) -> Result<(), OpError> {
    if taken.imported {
        ctx.keys.remove_public(&taken.keyid)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests;
