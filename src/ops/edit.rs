//! Changing a repository: new versions of targets roles, signed by the keys at hand,
//! published either into snapshot and timestamp (threshold met and the publisher key
//! at hand) or as *pending* layers that verifiers never see (DESIGN §3), retried
//! against concurrent writers.
//!
//! Every command that edits (sign, approve, delegation add/remove, refresh) builds a
//! list of [`RoleChange`]s from the trusted state inside
//! [`super::repository::Repository::edit`], which publishes them
//! ([`super::publish::commit`]).

use serde::Serialize;

use crate::crypto::KeyId;
use crate::digest::Sha256Digest;
use crate::store::{Listing, Store, StoredFile};
use crate::tuf::editor;
use crate::tuf::metadata::{Signature, Targets};
use crate::tuf::trusted::delegated_authority;
use crate::tuf::verify::{Authority, Untrusted, VerificationResult, check_threshold};

pub use super::pending::{first_version, ready_pending};
pub use super::publish::{MAX_ATTEMPTS, backoff, commit};
use super::repository::TrustedUpdater;
use super::{Context, OpError, as_signers};

/// A new version of one targets role, already signed by the keys at hand.
#[derive(Debug, Clone)]
pub struct RoleChange {
    /// The role.
    pub role: String,
    /// Its new version.
    pub version: u64,
    /// The envelope bytes.
    pub bytes: Vec<u8>,
    /// Who signed and who is missing, against the delegator's keys.
    pub signatures: VerificationResult,
}

impl RoleChange {
    /// True when the threshold is met.
    pub fn is_complete(&self) -> bool {
        self.signatures.is_met()
    }
}

/// What a commit did with each role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleStatus {
    /// The role.
    pub role: String,
    /// The version written.
    pub version: u64,
    /// `published` (in snapshot), `pending` (needs signatures), `ready` (fully
    /// signed, waiting for a holder of the publisher key to run `warrant refresh`)
    /// or `waiting` (fully signed, but it delegates to a new role whose first
    /// version still needs signatures, or rotates a role's keys whose re-signed
    /// version still needs them, or is such a role's version waiting for its
    /// delegator: they are published together).
    pub state: &'static str,
    /// Valid signatures.
    pub signed: usize,
    /// The threshold.
    pub threshold: u64,
    /// Key ids that could still sign.
    pub missing: Vec<KeyId>,
}

/// The result of a commit.
#[derive(Debug, Clone, Serialize)]
pub struct CommitOutcome {
    /// Per changed or promoted role.
    pub roles: Vec<RoleStatus>,
    /// The new `warrant.tuf` digest.
    pub published: Sha256Digest,
    /// Whether snapshot and timestamp were re-signed.
    pub snapshot_updated: bool,
    /// Attempts needed.
    pub attempts: u32,
}

/// The delegator of `role` and the keys it authorizes, from the trusted state.
pub fn authority_of<'a>(
    up: &'a TrustedUpdater<'_>,
    role: &str,
    delegator: &str,
) -> Result<Authority<'a>, OpError> {
    let trusted = up.trusted();
    if delegator == "root" {
        let root = trusted.root();
        let r = root.roles.get(role).ok_or_else(|| OpError::NoSuchRole {
            location: "root".into(),
            role: role.to_owned(),
        })?;
        return Ok(Authority {
            keys: &root.keys,
            keyids: &r.keyids,
            threshold: r.threshold,
        });
    }
    let parent = trusted
        .targets(delegator)
        .ok_or_else(|| OpError::NotLoaded {
            role: delegator.to_owned(),
        })?;
    delegated_authority(parent, role).map_err(|source| OpError::Delegation {
        role: role.to_owned(),
        source,
    })
}

/// Sign `targets` as `role` with every key at hand that `authority` lists (or only
/// `only`), keeping `keep` (valid signatures of the same content, for approvals).
pub fn sign_role(
    ctx: &Context,
    role: &str,
    targets: &Targets,
    authority: Authority<'_>,
    keep: &[Signature],
    only: Option<&str>,
) -> Result<RoleChange, OpError> {
    let signers = ctx.signers_at_hand(role, authority.keyids, only)?;
    let bytes = editor::sign(targets, &as_signers(&signers))?;
    let bytes = if keep.is_empty() {
        bytes
    } else {
        merge_signatures(role, &bytes, keep, false)?
    };
    let untrusted = Untrusted::parse(role, bytes.clone()).map_err(|e| own(role, e))?;
    let signatures = untrusted_result(&untrusted, authority);
    Ok(RoleChange {
        role: role.to_owned(),
        version: targets.version.get(),
        bytes,
        signatures,
    })
}

/// [`sign_role`] that signs with whatever keys of the role are at hand, none
/// included: the result is pending until the role's key holders `approve` it from
/// their own machines (an admin delegating to people by their public keys).
pub fn sign_role_with_any_keys(
    ctx: &Context,
    role: &str,
    targets: &Targets,
    authority: Authority<'_>,
) -> Result<RoleChange, OpError> {
    match sign_role(ctx, role, targets, authority, &[], None) {
        Err(OpError::MissingSigningKeys { .. }) => {
            let bytes = editor::sign(targets, &[])?;
            let untrusted = Untrusted::parse(role, bytes.clone()).map_err(|e| own(role, e))?;
            Ok(RoleChange {
                role: role.to_owned(),
                version: targets.version.get(),
                signatures: untrusted_result(&untrusted, authority),
                bytes,
            })
        }
        other => other,
    }
}

/// The typed (unverified) content of a change's envelope.
pub fn content_of(change: &RoleChange) -> Option<Targets> {
    Untrusted::parse(&change.role, change.bytes.clone())
        .ok()?
        .parse_unverified::<Targets>()
        .ok()
}

/// Roles `t` delegates to by name.
pub(super) fn named_delegations(t: &Targets) -> Vec<String> {
    t.delegations
        .iter()
        .flat_map(|d| d.roles.iter().flatten())
        .map(|r| r.name.clone())
        .collect()
}

/// A role not yet in the trusted delegation tree may be delegated by a complete
/// change that is itself waiting to be published (a `delegation add` whose new
/// role still needs its own keys' signatures): that change and its content.
pub fn waiting_delegator<'c>(
    candidates: &'c [RoleChange],
    role: &str,
) -> Option<(&'c RoleChange, Targets)> {
    candidates
        .iter()
        .filter(|c| c.is_complete() && c.role != role)
        .find_map(|c| {
            let content = content_of(c)?;
            named_delegations(&content)
                .iter()
                .any(|n| n == role)
                .then_some((c, content))
        })
}

/// Who signed `untrusted` validly under `authority`.
pub fn untrusted_result(untrusted: &Untrusted, authority: Authority<'_>) -> VerificationResult {
    check_threshold(untrusted.canonical(), untrusted.signatures(), authority)
}

/// An envelope this process built is unusable (a bug, exit 3).
pub(super) fn own(role: &str, e: impl Into<super::EnvelopeError>) -> OpError {
    OpError::OwnEnvelope {
        role: role.to_owned(),
        source: e.into(),
    }
}

/// Add `extra` signatures to the envelope of `role` (skipping key ids already
/// present; with `replace`, first dropping any signature by those key ids).
pub fn merge_signatures(
    role: &str,
    bytes: &[u8],
    extra: &[Signature],
    replace: bool,
) -> Result<Vec<u8>, OpError> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| own(role, e))?;
    let sigs = v["signatures"]
        .as_array_mut()
        .ok_or_else(|| own(role, super::EnvelopeError::NoSignatures))?;
    if replace {
        sigs.retain(|x| !extra.iter().any(|s| x["keyid"] == s.keyid.0));
    }
    for s in extra {
        if !sigs.iter().any(|x| x["keyid"] == s.keyid.0) {
            sigs.push(serde_json::to_value(s).map_err(|e| own(role, e))?);
        }
    }
    serde_json::to_vec(&v).map_err(|e| own(role, e))
}

/// Is `name` the file of `role` at some version (`N.role.json`)?
pub fn version_of(name: &str, role: &str) -> Option<u64> {
    let v = name.strip_suffix(&format!(".{role}.json"))?;
    v.parse()
        .ok()
        .filter(|_| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The newest version of `role` in the store (pending or not) as untyped JSON: for
/// an editor's "did my change survive a concurrent writer" check after publishing,
/// never for a trust decision.
pub fn newest_role_json(
    store: &dyn Store,
    role: &str,
) -> Result<Option<serde_json::Value>, OpError> {
    let Some(listing) = store.listing()? else {
        return Ok(None);
    };
    let Some(newest) = listing
        .files
        .iter()
        .filter(|f| version_of(&f.name, role).is_some())
        .max_by_key(|f| version_of(&f.name, role))
    else {
        return Ok(None);
    };
    let bytes = store.read_file(newest, crate::tuf::client::Limits::default().targets)?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// The pending file of `role` in `listing`, if any.
pub fn pending_of<'l>(listing: &'l Listing, role: &str) -> Option<&'l StoredFile> {
    listing
        .files
        .iter()
        .find(|f| f.pending && version_of(&f.name, role).is_some())
}

/// Which version of a delegator an edit of its delegations builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegatorBase {
    /// Its complete pending version when one waits to be published (what a waiting
    /// `delegation add` delegates is kept), else the trusted one.
    Newest,
    /// The trusted version, published at once: `key revoke` must not wait for a
    /// delegation that still needs its members' signatures.
    Trusted,
}

/// Change the delegations of the role that delegates to `role` by name (in the
/// trusted tree, or in a delegator version waiting to be published): find it and
/// its own delegator, apply `change` to a copy of the version `base` names, drop
/// keys no delegation uses any more, set version and expiry, and sign it with the
/// keys at hand. Returns the signed change, the delegator's name and its new content.
#[allow(clippy::too_many_arguments)]
pub fn edit_delegator(
    ctx: &Context,
    store: &dyn Store,
    up: &mut TrustedUpdater<'_>,
    listing: &Listing,
    location: &str,
    role: &str,
    base: DelegatorBase,
    change: impl FnOnce(&mut crate::tuf::metadata::Delegations) -> Result<(), OpError>,
) -> Result<(RoleChange, String, Targets), OpError> {
    let wrap = |source| OpError::Update {
        location: location.to_owned(),
        source,
    };
    let no_role = || OpError::NoSuchRole {
        location: location.to_owned(),
        role: role.to_owned(),
    };
    let parent = match up.find_delegator(role).map_err(wrap)? {
        Some(p) => Some(p),
        // A role still waiting for its first signature: delegated only by a
        // pending delegator version.
        None => {
            let ready = ready_pending(store, up, listing, &[], ctx.now)?;
            waiting_delegator(&ready, role).map(|(c, _)| c.role.clone())
        }
    }
    .filter(|p| p != "root")
    .ok_or_else(no_role)?;
    let grand = up
        .find_delegator(&parent)
        .map_err(wrap)?
        .unwrap_or_else(|| "root".into());
    let trusted = up
        .trusted()
        .targets(&parent)
        .ok_or_else(|| OpError::NotLoaded {
            role: parent.clone(),
        })?;
    let (trusted_version, trusted_expires) = (trusted.version, trusted.expires);
    let mut next: Targets = (**trusted).clone();
    let mut version = editor::bump(trusted_version, "targets")?;
    if base == DelegatorBase::Newest
        && let Some((waiting, content)) =
            super::pending::pending_base(store, up, listing, &parent, ctx.now)?
    {
        // Replaces the waiting version (same number), keeping what it delegates.
        next = content;
        version = std::num::NonZeroU64::new(waiting.version).unwrap_or(version);
    }
    let current_expires = next.expires.max(trusted_expires);
    let dels = next.delegations.as_mut().ok_or_else(no_role)?;
    change(dels)?;
    let used: std::collections::BTreeSet<KeyId> = dels
        .roles
        .iter()
        .flatten()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    let bins: Vec<KeyId> = dels
        .succinct_roles
        .iter()
        .flat_map(|s| s.keyids.iter().cloned())
        .collect();
    dels.keys
        .retain(|k, _| used.contains(k) || bins.contains(k));
    next.version = version;
    next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(current_expires);
    let signed = sign_role(
        ctx,
        &parent,
        &next,
        authority_of(up, &parent, &grand)?,
        &[],
        None,
    )?;
    Ok((signed, parent, next))
}
