//! The key request document (issue #15): a would-be signer's public key, the role
//! asked for, a note and its lifetime, signed by that very key (proof of
//! possession), in the TUF envelope shape:
//!
//! ```json
//! {"signatures": [{"keyid": "...", "sig": "..."}],
//!  "signed": {"_type": "warrant-key-request", "version": 1, "repository": "...",
//!             "role": "...", "key": {<TUF key>}, "note": "...",
//!             "created": "...Z", "expires": "...Z"}}
//! ```
//!
//! Nothing read from the registry is trusted: [`check`] verifies first (the
//! signature over the canonical form of `signed` *as received*, by the key `signed`
//! encloses), then parses, then applies the bounds. The proof of possession only
//! says that whoever wrote the request holds the key; it says nothing about *who*
//! that is. That is what the fingerprint compared out of band is for.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::crypto::fingerprint::Fingerprint;
use crate::crypto::{KeyId, PublicKey, Signer};
use crate::tuf::metadata::{Key, expires_format};

/// `signed._type` of a key request.
pub const REQUEST_TYPE: &str = "warrant-key-request";
/// The only request format version.
pub const REQUEST_VERSION: u64 = 1;
/// Largest request document read (a key, a note and two signatures fit many times).
pub const MAX_REQUEST_BYTES: u64 = 16 * 1024;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 280;
/// Longest lifetime a request may claim.
pub const MAX_LIFETIME_DAYS: i64 = 30;
/// Signatures looked at in one envelope.
const MAX_SIGNATURES: usize = 8;
/// How far in the future `created` may be (clock skew between two machines).
const CLOCK_SKEW_MINUTES: i64 = 10;
/// Hex digits of a request id.
pub const ID_HEX_DIGITS: usize = 12;

/// The `signed` part of a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRequest {
    /// Always [`REQUEST_TYPE`].
    #[serde(rename = "_type")]
    pub kind: String,
    /// Always [`REQUEST_VERSION`].
    pub version: u64,
    /// The repository the request is for (`localhost:5000/team/app`); a request
    /// copied to another repository is refused.
    pub repository: String,
    /// The role asked for.
    pub role: String,
    /// The public key, as TUF metadata lists keys.
    pub key: Key,
    /// Free text for the administrator ("alice, QA, laptop key").
    pub note: String,
    /// When it was made.
    #[serde(with = "expires_format")]
    pub created: DateTime<Utc>,
    /// After this it is never offered.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
}

/// A request that verified: its own key signed it, for this repository, unexpired.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    /// The request id ([`request_id`]).
    pub id: String,
    /// What was signed.
    pub request: KeyRequest,
    /// The enclosed key, decoded.
    pub public: PublicKey,
    /// Its TUF key id.
    pub keyid: KeyId,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}

/// Why a stored request is not offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// Not a JSON envelope `{signatures, signed}`.
    #[error("malformed: {0}")]
    Malformed(String),
    /// `signed.key` is missing or not a key warrant can use.
    #[error("no usable public key: {0}")]
    Key(String),
    /// No signature by the enclosed key verifies: whoever wrote it did not prove
    /// they hold the key (or the key was swapped after signing).
    #[error("no valid signature by the enclosed key (no proof of possession)")]
    NoProofOfPossession,
    /// Written for another repository (copied, or replayed).
    #[error("made for repository {0:?}, not this one")]
    OtherRepository(String),
    /// The role name cannot be a role.
    #[error("role {0:?} is not a valid role name")]
    Role(String),
    /// The note is too long or holds control characters.
    #[error("note longer than {MAX_NOTE_CHARS} characters or with control characters")]
    Note,
    /// Expired.
    #[error("expired at {0}")]
    Expired(String),
    /// Created in the future, or a lifetime beyond [`MAX_LIFETIME_DAYS`].
    #[error("implausible dates (created {created}, expires {expires})")]
    Dates {
        /// `created`.
        created: String,
        /// `expires`.
        expires: String,
    },
    /// Larger than [`MAX_REQUEST_BYTES`], or unreadable from the store.
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// A request could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MakeError {
    /// The signer's key is not the enclosed key.
    #[error("the signing key {signer} is not the requested key {requested}")]
    WrongSigner {
        /// The signer's key id.
        signer: String,
        /// The enclosed key's id.
        requested: String,
    },
    /// The key could not sign (a token refused).
    #[error(transparent)]
    Sign(#[from] crate::crypto::keys::SignError),
    /// The document could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(String),
}

/// The request id: the first [`ID_HEX_DIGITS`] hex digits of the sha256 of the
/// canonical `signed` bytes. Stable (same request, same id) and short enough to type.
pub fn request_id(canonical_signed: &[u8]) -> String {
    let mut h = hex::encode(Sha256::digest(canonical_signed));
    h.truncate(ID_HEX_DIGITS);
    h
}

/// True for `[A-Za-z0-9._-]{1,64}`, not `.` or `..`: a top-level role or a
/// delegated role name (the same rule `delegation add` applies).
pub fn is_role_name(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && role != "."
        && role != ".."
}

/// True when `note` may be shown on a terminal as it is: bounded, no control
/// characters (no escape sequences rewriting the administrator's screen).
pub fn is_note(note: &str) -> bool {
    note.chars().count() <= MAX_NOTE_CHARS && !note.chars().any(char::is_control)
}

/// Sign `request` with `signer`, which must hold the enclosed key. Returns the
/// document bytes and the request id.
pub fn sign(request: &KeyRequest, signer: &dyn Signer) -> Result<(Vec<u8>, String), MakeError> {
    let signer_id = signer.public_key().key_id();
    let requested = request
        .key
        .to_public()
        .map(|k| k.key_id())
        .map_err(|e| MakeError::Encode(e.to_string()))?;
    if signer_id != requested {
        return Err(MakeError::WrongSigner {
            signer: signer_id.0,
            requested: requested.0,
        });
    }
    let signed = serde_json::to_value(request).map_err(|e| MakeError::Encode(e.to_string()))?;
    let canonical =
        crate::canonical::to_canonical(&signed).map_err(|e| MakeError::Encode(e.to_string()))?;
    let sig = signer.sign(&canonical)?;
    let doc = serde_json::json!({
        "signatures": [{ "keyid": signer_id.0, "sig": hex::encode(sig) }],
        "signed": signed,
    });
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| MakeError::Encode(e.to_string()))?;
    Ok((bytes, request_id(&canonical)))
}

#[derive(Deserialize)]
struct RawEnvelope {
    signatures: Vec<Value>,
    signed: Value,
}

#[derive(Deserialize)]
struct RawSignature {
    keyid: String,
    sig: String,
}

/// Verify, then parse, then bound a stored request. The id is computed whenever the
/// envelope parses (`None` otherwise), so even an invalid request can be rejected.
pub fn check(
    bytes: &[u8],
    repository: &str,
    now: DateTime<Utc>,
) -> (Option<String>, Result<ValidRequest, Invalid>) {
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        let why = format!("larger than {MAX_REQUEST_BYTES} bytes");
        return (None, Err(Invalid::Unreadable(why)));
    }
    let env: RawEnvelope = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => return (None, Err(Invalid::Malformed(e.to_string()))),
    };
    let canonical = match crate::canonical::to_canonical(&env.signed) {
        Ok(c) => c,
        Err(e) => return (None, Err(Invalid::Malformed(e.to_string()))),
    };
    let id = request_id(&canonical);
    (
        Some(id.clone()),
        verify(&env, &canonical, id, repository, now),
    )
}

fn verify(
    env: &RawEnvelope,
    canonical: &[u8],
    id: String,
    repository: &str,
    now: DateTime<Utc>,
) -> Result<ValidRequest, Invalid> {
    // Proof of possession first, on the untyped `signed`.
    let key: Key = env
        .signed
        .get("key")
        .cloned()
        .ok_or_else(|| Invalid::Key("no \"key\"".into()))
        .and_then(|k| serde_json::from_value(k).map_err(|e| Invalid::Key(e.to_string())))?;
    let public = key.to_public().map_err(|e| Invalid::Key(e.to_string()))?;
    let keyid = public.key_id();
    let proven = env
        .signatures
        .iter()
        .take(MAX_SIGNATURES)
        .filter_map(|s| serde_json::from_value::<RawSignature>(s.clone()).ok())
        .filter(|s| s.keyid == keyid.0)
        .filter_map(|s| hex::decode(s.sig).ok())
        .any(|sig| public.verify(canonical, &sig).is_ok());
    if !proven {
        return Err(Invalid::NoProofOfPossession);
    }
    // Then parse, then bound.
    let request: KeyRequest = serde_json::from_value(env.signed.clone())
        .map_err(|e| Invalid::Malformed(e.to_string()))?;
    if request.kind != REQUEST_TYPE || request.version != REQUEST_VERSION {
        let why = format!("_type {:?} version {}", request.kind, request.version);
        return Err(Invalid::Malformed(why));
    }
    if request.repository != repository {
        let r = request.repository.chars().take(100).collect();
        return Err(Invalid::OtherRepository(r));
    }
    if !is_role_name(&request.role) {
        return Err(Invalid::Role(request.role.chars().take(64).collect()));
    }
    if !is_note(&request.note) {
        return Err(Invalid::Note);
    }
    let skew = Duration::minutes(CLOCK_SKEW_MINUTES);
    if request.created > now + skew
        || request.expires < request.created
        || request.expires - request.created > Duration::days(MAX_LIFETIME_DAYS)
    {
        return Err(Invalid::Dates {
            created: request.created.to_rfc3339(),
            expires: request.expires.to_rfc3339(),
        });
    }
    if request.expires <= now {
        return Err(Invalid::Expired(request.expires.to_rfc3339()));
    }
    let fingerprint = Fingerprint::of(&keyid).map_err(|e| Invalid::Key(e.to_string()))?;
    Ok(ValidRequest {
        id,
        request,
        public,
        keyid,
        fingerprint,
    })
}

#[cfg(test)]
mod tests;
