//! `warrant sign`: record an image manifest as a TUF target in a role (top-level
//! `targets` by default) and publish — or, when the role's threshold is not met by
//! the keys at hand, publish the new version as pending for others to approve.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde::Serialize;
use serde_json::json;

use crate::digest::Sha256Digest;
use crate::store::{ImageRef, Store};
use crate::tuf::delegation::path_matches;
use crate::tuf::editor;
use crate::tuf::metadata::{TargetFile, Unrecognized};

use super::bins;
use super::edit::{RoleChange, RoleStatus, authority_of, newest_role_json, pending_of, sign_role};
use super::repository::{Repository, TrustedUpdater};
use super::trust::Pin;
use super::{Context, OpError};

/// Options of `warrant sign`.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// The role to sign into (default `targets`).
    pub role: Option<String>,
    /// Sign with this key only (id, prefix or name).
    pub key: Option<String>,
    /// How the signer trusts the repository on its first contact.
    pub pin: Pin,
    /// When the reference has both a tag and a digest, look the manifest up by the
    /// digest alone and sign it under the tag, wherever the tag points now: what
    /// `docker warrant push` does with the digest its push reported, so a tag moved
    /// by someone else meanwhile cannot make it sign their image (or fail).
    pub by_digest: bool,
}

/// What `sign` published.
#[derive(Debug, Clone, Serialize)]
pub struct SignOutcome {
    /// The image.
    pub reference: String,
    /// The repository.
    pub repository: String,
    /// The target path.
    pub target: String,
    /// The signed manifest digest.
    pub digest: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The role's new version and whether it is published or waiting.
    pub status: RoleStatus,
    /// The new `warrant.tuf` digest (`None` when every target was already signed
    /// with its digest and nothing was published).
    pub published: Option<Sha256Digest>,
    /// Attempts needed (more than one when other signers published meanwhile).
    pub attempts: u32,
}

/// Sign `image` into `opts.role`.
pub fn sign(ctx: &Context, image: &ImageRef, opts: &SignOptions) -> Result<SignOutcome, OpError> {
    sign_many(ctx, std::slice::from_ref(image), opts)?
        .into_iter()
        .next()
        .ok_or(OpError::Internal {
            what: "nothing was signed",
        })
}

/// Sign every image of `images` into `opts.role` with **one publish per
/// repository** (one new role version, one snapshot, one timestamp), however many
/// tags: a CI job pushing 50 tags does not publish 50 times (issue #13 item 3).
/// Outcomes are in the order given. The same target named twice with different
/// digests is refused.
pub fn sign_many(
    ctx: &Context,
    images: &[ImageRef],
    opts: &SignOptions,
) -> Result<Vec<SignOutcome>, OpError> {
    let mut groups: Vec<(&crate::store::Location, Vec<&ImageRef>)> = Vec::new();
    for image in images {
        match groups.iter_mut().find(|(l, _)| *l == &image.location) {
            Some((_, g)) => g.push(image),
            None => groups.push((&image.location, vec![image])),
        }
    }
    let mut outcomes = Vec::with_capacity(images.len());
    for (location, group) in groups {
        outcomes.extend(sign_in_one_publish(ctx, location, &group, opts)?);
    }
    Ok(outcomes)
}

/// One target to add: the image, its target path and entry.
struct Entry<'a> {
    image: &'a ImageRef,
    target: String,
    media_type: String,
    digest: Sha256Digest,
    file: TargetFile,
}

fn sign_in_one_publish(
    ctx: &Context,
    location: &crate::store::Location,
    images: &[&ImageRef],
    opts: &SignOptions,
) -> Result<Vec<SignOutcome>, OpError> {
    let repo = Repository::open_untrusted(ctx, location)?;
    let store = repo.store();
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(images.len());
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for image in images {
        let descriptor = match (&image.digest, opts.by_digest) {
            (Some(digest), true) => store.resolve(&ImageRef {
                location: image.location.clone(),
                tag: None,
                digest: Some(*digest),
            })?,
            _ => store.resolve(image)?,
        };
        let target = image.target_name();
        let file = TargetFile {
            length: descriptor.size,
            hashes: BTreeMap::from([("sha256".to_owned(), descriptor.digest.hex())]),
            custom: Some(json!({ "mediaType": descriptor.media_type })),
            unrecognized: Unrecognized::new(),
        };
        if let Some(&i) = seen.get(&target) {
            if entries[i].file != file {
                return Err(OpError::TargetGivenTwice {
                    target,
                    first: entries[i].digest,
                    second: descriptor.digest,
                });
            }
            continue;
        }
        seen.insert(target.clone(), entries.len());
        entries.push(Entry {
            image,
            target,
            media_type: descriptor.media_type,
            digest: descriptor.digest,
            file,
        });
    }
    let repo = repo.into_editing(&opts.pin)?;
    let targets: Vec<(String, TargetFile)> = entries
        .iter()
        .map(|e| (e.target.clone(), e.file.clone()))
        .collect();
    let (outcome, roles) = match sign_or_skip(&repo, &targets, opts)? {
        Signed::Published(outcome, roles) => (outcome, roles),
        Signed::Unchanged(statuses) => {
            return Ok(entries
                .into_iter()
                .zip(statuses)
                .map(|(e, status)| SignOutcome {
                    reference: e.image.to_string(),
                    repository: location.to_string(),
                    target: e.target,
                    digest: e.digest,
                    size: e.file.length,
                    media_type: e.media_type,
                    status,
                    published: None,
                    attempts: 1,
                })
                .collect());
        }
    };
    let mut outcomes = Vec::with_capacity(entries.len());
    for (e, r) in entries.into_iter().zip(&roles) {
        let status =
            outcome
                .roles
                .iter()
                .find(|s| &s.role == r)
                .cloned()
                .ok_or(OpError::Internal {
                    what: "a signed target has no role status",
                })?;
        outcomes.push(SignOutcome {
            reference: e.image.to_string(),
            repository: location.to_string(),
            target: e.target,
            digest: e.digest,
            size: e.file.length,
            media_type: e.media_type,
            status,
            published: Some(outcome.published),
            attempts: outcome.attempts,
        });
    }
    Ok(outcomes)
}

/// Sign `image` as `descriptor` (digest, size, media type) into `opts.role`, without
/// asking the registry: for importers that carry over what another system signed
/// (issue #16), which may differ from what the registry serves now.
pub fn sign_descriptor(
    ctx: &Context,
    image: &ImageRef,
    descriptor: crate::store::Descriptor,
    opts: &SignOptions,
) -> Result<SignOutcome, OpError> {
    let target = image.target_name();
    let file = TargetFile {
        length: descriptor.size,
        hashes: BTreeMap::from([("sha256".to_owned(), descriptor.digest.hex())]),
        custom: Some(json!({ "mediaType": descriptor.media_type })),
        unrecognized: Unrecognized::new(),
    };
    let repo = Repository::open_for_editing(ctx, &image.location, &opts.pin)?;
    let (outcome, roles) = match sign_or_skip(&repo, &[(target.clone(), file)], opts)? {
        Signed::Published(outcome, roles) => (outcome, roles),
        Signed::Unchanged(mut statuses) => {
            return Ok(SignOutcome {
                reference: image.to_string(),
                repository: image.location.to_string(),
                target,
                digest: descriptor.digest,
                size: descriptor.size,
                media_type: descriptor.media_type,
                status: statuses.pop().ok_or(OpError::Internal {
                    what: "nothing was signed",
                })?,
                published: None,
                attempts: 1,
            });
        }
    };
    let role = roles.first().cloned().unwrap_or_default();
    let status = outcome
        .roles
        .iter()
        .find(|s| s.role == role)
        .cloned()
        .ok_or(OpError::Internal {
            what: "a signed target has no role status",
        })?;
    Ok(SignOutcome {
        reference: image.to_string(),
        repository: image.location.to_string(),
        target,
        digest: descriptor.digest,
        size: descriptor.size,
        media_type: descriptor.media_type,
        status,
        published: Some(outcome.published),
        attempts: outcome.attempts,
    })
}

/// What signing did: published, or nothing to publish because every target was
/// already signed with its digest (issue #12 item 7).
enum Signed {
    Published(super::edit::CommitOutcome, Vec<String>),
    Unchanged(Vec<RoleStatus>),
}

/// Sign `targets` (path and entry each, already resolved) into `opts.role` of
/// `location` in one publish: what `sign` does once it knows the digests. For
/// tools and benchmarks that build large repositories without a registry request
/// per tag. Returns the commit and the role each target went into.
pub fn sign_targets(
    ctx: &Context,
    location: &crate::store::Location,
    targets: &[(String, TargetFile)],
    opts: &SignOptions,
) -> Result<(super::edit::CommitOutcome, Vec<String>), OpError> {
    let repo = Repository::open_for_editing(ctx, location, &opts.pin)?;
    match sign_or_skip(&repo, targets, opts)? {
        Signed::Published(outcome, roles) => Ok((outcome, roles)),
        Signed::Unchanged(_) => Err(OpError::AlreadySigned {
            target: targets.first().map(|t| t.0.clone()).unwrap_or_default(),
            role: opts.role.clone().unwrap_or_else(|| "targets".into()),
        }),
    }
}

fn sign_or_skip(
    repo: &Repository<'_>,
    targets: &[(String, TargetFile)],
    opts: &SignOptions,
) -> Result<Signed, OpError> {
    let ctx = repo.context();
    let location = repo.location();
    let role = opts.role.clone().unwrap_or_else(|| "targets".into());
    let mut unchanged: Option<Vec<RoleStatus>> = None;
    let result = repo.edit(
        false,
        |store, up, listing| {
            let location = location.to_string();
            let delegator = up
                .find_delegator(&role)
                .map_err(|source| OpError::Update {
                    location: location.clone(),
                    source,
                })?
                .ok_or_else(|| OpError::NoSuchRole {
                    location: location.clone(),
                    role: role.clone(),
                })?;
            if pending_of(listing, &role).is_some() {
                let ready = super::edit::ready_pending(store, up, listing, &[], ctx.now)?
                    .iter()
                    .any(|c| c.role == role);
                return Err(OpError::PendingVersion {
                    role: role.clone(),
                    location: location.clone(),
                    ready,
                });
            }
            // A key named on the command line must belong to the role, changed or not.
            if let Some(q) = opts.key.as_deref() {
                let info = ctx.keys.find(q)?;
                let authority = authority_of(up, &role, &delegator)?;
                if !authority.keyids.contains(&info.keyid) {
                    return Err(OpError::KeyNotInRole {
                        role: role.clone(),
                        keyid: info.keyid.0,
                    });
                }
            }
            // Every target already signed with this digest: publishing a new version
            // would only churn every verifier's cache (issue #12 item 7).
            let mut same = Vec::new();
            for (target, file) in targets {
                let found = if role == "targets" {
                    up.find_target(target)
                } else {
                    up.find_target_in_role(target, &role)
                }
                .map_err(|source| OpError::Update {
                    location: location.clone(),
                    source,
                })?;
                let bin = (role == "targets")
                    .then(|| up.trusted().targets("targets"))
                    .flatten()
                    .and_then(|t| bins::succinct(t))
                    .map(|s| bins::role_for(Some(s), "targets", target));
                match found {
                    Some(f)
                        if f.file.length == file.length
                            && f.file.hashes == file.hashes
                            && (f.role == role || Some(&f.role) == bin.as_ref()) =>
                    {
                        same.push(RoleStatus {
                            version: up
                                .trusted()
                                .snapshot_meta(&f.role)
                                .map_or(0, |m| m.version.get()),
                            role: f.role,
                            state: "unchanged",
                            signed: 0,
                            threshold: 0,
                            missing: Vec::new(),
                        });
                    }
                    _ => break,
                }
            }
            if same.len() == targets.len() {
                unchanged = Some(same);
                return Err(OpError::AlreadySigned {
                    target: targets.first().map(|t| t.0.clone()).unwrap_or_default(),
                    role: role.clone(),
                });
            }
            if let Some(paths) = delegated_paths(up, &role, &delegator) {
                for e in targets {
                    if !paths.iter().any(|p| path_matches(p, &e.0)) {
                        return Err(OpError::PathNotDelegated {
                            role: role.clone(),
                            target: e.0.clone(),
                            paths: paths.clone(),
                        });
                    }
                }
            }
            if role == "targets" {
                return sign_top_level(ctx, up, targets, opts.key.as_deref());
            }
            let authority = authority_of(up, &role, &delegator)?;
            let current = up
                .trusted()
                .targets(&role)
                .ok_or_else(|| OpError::NoRepository {
                    location: location.clone(),
                })?;
            let mut next = (**current).clone();
            for e in targets {
                next.targets.insert(e.0.clone(), e.1.clone());
            }
            next.version = editor::bump(current.version, "targets")?;
            next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(current.expires);
            let change = sign_role(ctx, &role, &next, authority, &[], opts.key.as_deref())?;
            let roles = vec![role.clone(); targets.len()];
            Ok((vec![change], vec![], roles))
        },
        |store, roles: &Vec<String>| {
            for r in roles.iter().collect::<std::collections::BTreeSet<_>>() {
                let lists = targets
                    .iter()
                    .zip(roles)
                    .filter(|(_, er)| *er == r)
                    .map(|(e, _)| (e.0.as_str(), &e.1))
                    .collect::<Vec<_>>();
                if !role_lists_targets(store, r, &lists)? {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    );
    match (result, unchanged) {
        (Ok((outcome, roles)), _) => Ok(Signed::Published(outcome, roles)),
        (Err(OpError::AlreadySigned { .. }), Some(statuses)) => Ok(Signed::Unchanged(statuses)),
        (Err(e), _) => Err(e),
    }
}

/// What a sign's edit returns: the role changes, roles removed (none), and the role
/// each entry went into.
type Edit = (Vec<RoleChange>, Vec<String>, Vec<String>);

/// The changes that put `entries` into the top-level targets: into their hash bins
/// when the repository is binned (one new version per touched bin, the top-level
/// role unchanged); into the top-level role when flat; or, when the bins policy
/// says this sign takes the repository past its threshold, a re-binning (see
/// [`super::bins`]). Also the role each entry went into.
fn sign_top_level(
    ctx: &Context,
    up: &mut TrustedUpdater<'_>,
    entries: &[(String, TargetFile)],
    only: Option<&str>,
) -> Result<Edit, OpError> {
    let location = up
        .remote()
        .listing()
        .map_or_else(String::new, |l| l.digest.to_string());
    let missing = || OpError::NoRepository {
        location: location.clone(),
    };
    let top = (**up.trusted().targets("targets").ok_or_else(missing)?).clone();
    let expires = |old: chrono::DateTime<chrono::Utc>| {
        editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(old)
    };
    if let Some(s) = bins::succinct(&top).cloned() {
        let roles: Vec<String> = entries
            .iter()
            .map(|e| bins::role_for(Some(&s), "targets", &e.0))
            .collect();
        let mut changes = Vec::new();
        for bin in roles.iter().collect::<std::collections::BTreeSet<_>>() {
            let Some(first) = entries.iter().zip(&roles).find(|(_, r)| *r == bin) else {
                continue;
            };
            // The search for a target loads (and verifies) its bin.
            up.find_target(&first.0.0)
                .map_err(|source| OpError::Update {
                    location: location.clone(),
                    source,
                })?;
            let current = up.trusted().targets(bin).ok_or_else(missing)?;
            let mut next = (**current).clone();
            for (e, _) in entries.iter().zip(&roles).filter(|(_, r)| *r == bin) {
                next.targets.insert(e.0.clone(), e.1.clone());
            }
            next.version = editor::bump(current.version, "targets")?;
            next.expires = expires(current.expires);
            let authority = authority_of(up, bin, "targets")?;
            changes.push(sign_role(ctx, bin, &next, authority, &[], only)?);
        }
        return Ok((changes, vec![], roles));
    }
    let mut next = top.clone();
    for e in entries {
        next.targets.insert(e.0.clone(), e.1.clone());
    }
    next.version = editor::bump(top.version, "targets")?;
    next.expires = expires(top.expires);
    let authority = authority_of(up, "targets", "root")?;
    let Some(bits) = bins::BinsPolicy::of(&top).bits_for(&top, next.targets.len()) else {
        let change = sign_role(ctx, "targets", &next, authority, &[], only)?;
        return Ok((vec![change], vec![], vec!["targets".into(); entries.len()]));
    };
    // Re-binning: the new top-level version and the first version of every bin,
    // all in this one publish.
    let (new_top, bins) = bins::rebin(up.trusted().root(), &next, bits, NonZeroU64::MIN)?;
    let mut changes = vec![sign_role(ctx, "targets", &new_top, authority, &[], only)?];
    for (name, t) in &bins {
        let auth = crate::tuf::trusted::delegated_authority(&new_top, name).map_err(|source| {
            OpError::Delegation {
                role: name.clone(),
                source,
            }
        })?;
        changes.push(sign_role(ctx, name, t, auth, &[], only)?);
    }
    let s = bins::succinct(&new_top);
    let roles = entries
        .iter()
        .map(|e| bins::role_for(s, "targets", &e.0))
        .collect();
    Ok((changes, vec![], roles))
}

/// The `paths` a delegated role is limited to (`None` for top-level targets, hash
/// prefixes or bins).
fn delegated_paths(up: &TrustedUpdater<'_>, role: &str, delegator: &str) -> Option<Vec<String>> {
    let parent = up.trusted().targets(delegator)?;
    parent
        .delegations
        .as_ref()?
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.name == role)?
        .paths
        .clone()
}

/// After a publish to a store without compare-and-swap: does the newest version of
/// `role` in the store (pending or not) still list our target? Not a trust decision
/// (the next verify makes that): only "did our change survive".
pub fn role_lists_target(
    store: &dyn Store,
    role: &str,
    target: &str,
    file: &TargetFile,
) -> Result<bool, OpError> {
    role_lists_targets(store, role, &[(target, file)])
}

/// [`role_lists_target`] for several targets at once (one read of the role).
pub fn role_lists_targets(
    store: &dyn Store,
    role: &str,
    targets: &[(&str, &TargetFile)],
) -> Result<bool, OpError> {
    let Some(value) = newest_role_json(store, role)? else {
        return Ok(false);
    };
    Ok(targets.iter().all(|(target, file)| {
        let ours = serde_json::to_value(file).unwrap_or_default();
        let theirs = &value["signed"]["targets"][*target];
        theirs["hashes"] == ours["hashes"] && theirs["length"] == ours["length"]
    }))
}

#[cfg(test)]
mod tests {
    use crate::ops::edit::version_of;

    #[test]
    fn role_file_versions() {
        assert_eq!(version_of("3.targets.json", "targets"), Some(3));
        assert_eq!(version_of("3.qa.targets.json", "targets"), None);
        assert_eq!(version_of("x.targets.json", "targets"), None);
        assert_eq!(version_of(".targets.json", "targets"), None);
        assert_eq!(version_of("1.root.json", "targets"), None);
        assert_eq!(
            version_of("12.registry.npmjs.org.json", "registry.npmjs.org"),
            Some(12)
        );
    }
}

/// What `unsign` removed.
#[derive(Debug, Clone, Serialize)]
pub struct UnsignOutcome {
    /// The target path removed.
    pub target: String,
    /// The repository.
    pub repository: String,
    /// The role's new version and whether it is published or waiting.
    pub status: RoleStatus,
    /// The new `warrant.tuf` digest.
    pub published: Sha256Digest,
}

/// Remove `image`'s target (its tag, or its digest) from `opts.role`, or from the
/// role a verifier would find it in: a verify of it then fails.
pub fn unsign(
    ctx: &Context,
    image: &ImageRef,
    opts: &SignOptions,
) -> Result<UnsignOutcome, OpError> {
    let target = image.target_name();
    let repo = Repository::open_for_editing(ctx, &image.location, &opts.pin)?;
    let (outcome, role) = repo.edit(
        false,
        |_store, up, listing| {
            let location = image.location.to_string();
            let wrap = |source| OpError::Update {
                location: location.clone(),
                source,
            };
            let role = match &opts.role {
                Some(r) => r.clone(),
                None => up
                    .find_target(&target)
                    .map_err(wrap)?
                    .map(|f| f.role)
                    .ok_or_else(|| OpError::TargetNotSigned {
                        target: target.clone(),
                        location: location.clone(),
                    })?,
            };
            let delegator =
                up.find_delegator(&role)
                    .map_err(wrap)?
                    .ok_or_else(|| OpError::NoSuchRole {
                        location: location.clone(),
                        role: role.clone(),
                    })?;
            if pending_of(listing, &role).is_some() {
                return Err(OpError::PendingVersion {
                    role: role.clone(),
                    location: location.clone(),
                    ready: false,
                });
            }
            let current = up
                .trusted()
                .targets(&role)
                .ok_or_else(|| OpError::NoRepository {
                    location: location.clone(),
                })?;
            if !current.targets.contains_key(&target) {
                return Err(OpError::TargetNotSigned {
                    target: target.clone(),
                    location: format!("{location} (role {role})"),
                });
            }
            let mut next = (**current).clone();
            next.targets.remove(&target);
            next.version = editor::bump(current.version, "targets")?;
            next.expires = editor::expiry_in(ctx.now, ctx.lifetimes.targets).max(current.expires);
            let change = sign_role(
                ctx,
                &role,
                &next,
                authority_of(up, &role, &delegator)?,
                &[],
                opts.key.as_deref(),
            )?;
            Ok((vec![change], vec![], role))
        },
        // Survived when the newest version of the role no longer lists it.
        |store, role| newest_lists(store, role, &target).map(|listed| !listed),
    )?;
    let status = outcome
        .roles
        .iter()
        .find(|s| s.role == role)
        .cloned()
        .ok_or(OpError::Internal {
            what: "a removed target has no role status",
        })?;
    Ok(UnsignOutcome {
        target,
        repository: image.location.to_string(),
        status,
        published: outcome.published,
    })
}

/// Does the newest version of `role` in the store list `target` at all?
fn newest_lists(store: &dyn Store, role: &str, target: &str) -> Result<bool, OpError> {
    let Some(value) = newest_role_json(store, role)? else {
        return Ok(false);
    };
    Ok(value["signed"]["targets"].get(target).is_some())
}
