//! `warrant status`: every role's version and expiry, so a cron (or a person) sees
//! what must be refreshed or re-signed before verifiers start failing. Read from
//! the store as listed, without the trust decision a verify makes (an expired role
//! would stop a verify before it could be listed); `verified` says whether a full
//! verification also succeeds now.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::Location;
use crate::tuf::verify::Untrusted;

use super::repository::Repository;
use super::trust::Pin;
use super::verify::expiry_warning_window;
use super::{Context, OpError};

/// One role's state.
#[derive(Debug, Clone, Serialize)]
pub struct RoleExpiry {
    /// The role.
    pub role: String,
    /// Its version.
    pub version: u64,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// `ok`, `expiring` (within 3 days) or `expired`.
    pub state: &'static str,
    /// Waiting for signatures (not visible to verifiers).
    pub pending: bool,
}

/// The repository's state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The repository.
    pub location: String,
    /// Every role.
    pub roles: Vec<RoleExpiry>,
    /// `None` when a full verification succeeds now, else why not.
    pub verification_error: Option<String>,
}

impl Status {
    /// True when a verify would fail now (a role expired, or metadata that does
    /// not verify).
    pub fn is_broken(&self) -> bool {
        self.any_expired() || self.verification_error.is_some()
    }

    /// True when a published role has expired.
    pub fn any_expired(&self) -> bool {
        self.roles
            .iter()
            .any(|r| !r.pending && r.state == "expired")
    }
}

/// The status of `location`.
pub fn status(ctx: &Context, location: &Location, pin: &Pin) -> Result<Status, OpError> {
    let repo = Repository::open_untrusted(ctx, location)?;
    let listing = repo.with_listing(Clone::clone)?;
    let newest_root = listing
        .files
        .iter()
        .filter_map(|f| super::edit::version_of(&f.name, "root").map(|v| (v, f)))
        .max_by_key(|(v, _)| *v)
        .map(|(_, f)| f.name.clone());
    let mut roles = Vec::new();
    for f in &listing.files {
        let Some(role) = f
            .name
            .strip_suffix(".json")
            .map(|n| n.split_once('.').map_or(n, |(_, r)| r).to_owned())
        else {
            continue;
        };
        if role == "root" && Some(&f.name) != newest_root.as_ref() {
            continue;
        }
        let bytes = repo
            .store()
            .read_file(f, crate::store::artifact::MAX_FILE_BYTES)?;
        let Ok(u) = Untrusted::parse(&role, bytes) else {
            continue;
        };
        let signed = u.signed();
        let (Some(version), Some(expires)) = (
            signed["version"].as_u64(),
            signed["expires"]
                .as_str()
                .and_then(|e| chrono::NaiveDateTime::parse_from_str(e, "%Y-%m-%dT%H:%M:%SZ").ok())
                .map(|n| n.and_utc()),
        ) else {
            continue;
        };
        let state = if expires <= ctx.now {
            "expired"
        } else if expires - ctx.now < expiry_warning_window() {
            "expiring"
        } else {
            "ok"
        };
        roles.push(RoleExpiry {
            role,
            version,
            expires,
            state,
            pending: f.pending,
        });
    }
    // "Verifies" means the whole delegation tree: a delegated role signed below
    // its threshold (its signer revoked) fails every verify that reaches it.
    let verification_error = repo
        .into_verifying(pin)
        .and_then(|repo| {
            let mut up = repo.refresh(false)?;
            up.load_delegation_tree()
                .map(|_| ())
                .map_err(|source| OpError::Update {
                    location: location.to_string(),
                    source,
                })
        })
        .err()
        .map(|e| e.to_string());
    Ok(Status {
        location: location.to_string(),
        roles,
        verification_error,
    })
}
