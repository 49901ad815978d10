//! From a verified Notary repository to a warrant one: the registry check, the
//! private keys re-encrypted into warrant's key store, then `init` (same root key),
//! one `delegation add` per delegated role and one signing commit per role, made by
//! the ordinary operations in a staging layout ([`super::stage`]) and published to
//! the destination at once.

use serde::Serialize;

use crate::crypto::keys::Signer as _;
use crate::crypto::{KeyId, PublicKey, SecretKey};
use crate::digest::Sha256Digest;
use crate::ops::delegation::NewDelegation;
use crate::ops::init::InitOptions;
use std::collections::BTreeMap;

use crate::ops::edit::CommitOutcome;
use crate::ops::sign::SignOptions;
use crate::ops::trust::{Pin, open_store};
use crate::ops::{Context, OpError};
use crate::store::ImageRef;
use crate::tuf::metadata::{TargetFile, Unrecognized};

use super::dialect::{NotaryKey, NotaryPublic};
use super::keys::{HeldKey, passphrase_var, read_private};
use super::verify::{RoleKeys, VerifiedNotary};
use super::{ImportOptions, NotaryError};

/// One row of the table: a signed tag and what the registry serves.
#[derive(Debug, Clone, Serialize)]
pub struct TagRow {
    /// The tag.
    pub tag: String,
    /// The digest Notary's metadata signs.
    pub signed: String,
    /// What the registry serves now (`None`: no such tag).
    pub registry: Option<String>,
    /// The warrant role it lands in.
    pub role: String,
    /// `ok`, `drift` or `missing`.
    pub status: &'static str,
}

/// One imported role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleRow {
    /// Notary's name.
    pub notary: String,
    /// warrant's name.
    pub warrant: String,
    /// Key ids (warrant's).
    pub keyids: Vec<KeyId>,
    /// Threshold.
    pub threshold: u64,
    /// Whether this key store holds a private key of the role after import.
    pub held: bool,
}

/// What the import found and did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The GUN.
    pub gun: String,
    /// The warrant repository.
    pub to: String,
    /// Notary's root key id(s) and warrant's id for the same key.
    pub root_keys: Vec<(String, KeyId)>,
    /// Roles.
    pub roles: Vec<RoleRow>,
    /// Tags.
    pub tags: Vec<TagRow>,
    /// Tags whose registry digest differs or is missing.
    pub drifted: usize,
    /// Whether the warrant repository was published.
    pub published: bool,
    /// Private keys not imported, and why.
    pub skipped_keys: Vec<String>,
    /// Keys warrant generated (the publisher key when Notary's server held the
    /// snapshot key).
    pub generated: Vec<KeyId>,
}

/// warrant's role name for a Notary role: `targets/releases` → `releases`; nested
/// names keep their tail; returns (name, delegator).
pub fn warrant_role(notary: &str) -> Result<(String, Option<String>), NotaryError> {
    if notary == "targets" {
        return Ok(("targets".into(), None));
    }
    let parts: Vec<&str> = notary.split('/').collect();
    match parts.as_slice() {
        ["targets", one] => Ok(((*one).to_owned(), None)),
        ["targets", .., parent, last] => Ok(((*last).to_owned(), Some((*parent).to_owned()))),
        _ => Err(NotaryError::Unmappable {
            what: "role",
            name: notary.to_owned(),
            detail: "not under targets/".into(),
        }),
    }
}

/// warrant's public key for a Notary key (an `ecdsa-x509` key keeps its point; its
/// id changes because warrant's key object holds the key, not the certificate).
fn warrant_public(k: &NotaryKey) -> Result<PublicKey, NotaryError> {
    match &k.public {
        NotaryPublic::P256(v) => PublicKey::from_p256(*v).map_err(|e| NotaryError::Malformed {
            role: "keys".into(),
            detail: e.to_string(),
        }),
        NotaryPublic::Ed25519(v) => Ok(PublicKey::Ed25519(*v)),
        NotaryPublic::Rsa(key) => {
            use rsa::pkcs8::EncodePublicKey as _;
            let pem = key
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| NotaryError::Malformed {
                    role: "keys".into(),
                    detail: e.to_string(),
                })?;
            Ok(PublicKey::RsaPss {
                key: key.clone(),
                pem,
            })
        }
    }
}

fn same_key(held: &SecretKey, k: &NotaryKey) -> bool {
    match (held.public_key(), &k.public) {
        (PublicKey::EcdsaP256 { key, .. }, NotaryPublic::P256(v)) => key == v,
        (PublicKey::Ed25519(a), NotaryPublic::Ed25519(b)) => a == b,
        _ => false,
    }
}

/// The held keys of `role`, stored in warrant's key store; the role's other keys are
/// stored public-only (usable in delegations, not for signing). Returns warrant ids
/// of every key and of the held ones.
fn store_role_keys(
    ctx: &Context,
    name: &str,
    role: &RoleKeys,
    held: &[HeldKey],
) -> Result<(Vec<KeyId>, Vec<KeyId>), NotaryError> {
    let mut all = Vec::new();
    let mut mine = Vec::new();
    for k in &role.keys {
        let public = warrant_public(k)?;
        let id = public.key_id();
        let label = format!("{}-{}", name.replace('/', "-"), &id.0[..8]);
        if let Some(h) = held.iter().find(|h| same_key(&h.key, k)) {
            if !ctx.keys.has(&id) {
                let pass = ctx.passphrase.get(true).map_err(OpError::from)?;
                ctx.keys.add(&h.key, &label, pass).map_err(OpError::from)?;
            }
            mine.push(id.clone());
        } else if !ctx.keys.has(&id) {
            ctx.keys
                .add_public(&public, &label)
                .map_err(OpError::from)?;
        }
        all.push(id);
    }
    Ok((all, mine))
}

/// Every role a staged commit wrote must be in its snapshot: a role left pending
/// (short of its threshold here) would be published as a repository missing it.
fn all_published(outcome: &CommitOutcome) -> Result<(), NotaryError> {
    match outcome.roles.iter().find(|r| r.state != "published") {
        Some(r) => Err(NotaryError::Unpublishable {
            role: r.role.clone(),
            state: r.state,
        }),
        None => Ok(()),
    }
}

/// Build the warrant repository for `v` in a staging layout and publish it to
/// `opts.to` in one publish.
pub fn import_verified(
    ctx: &Context,
    opts: &ImportOptions,
    v: &VerifiedNotary,
) -> Result<ImportReport, NotaryError> {
    let store = open_store(ctx, &opts.to)?;
    let mut tags = Vec::new();
    let mut drifted = 0;
    for t in &v.tags {
        if !crate::store::reference::is_valid_tag(&t.name) {
            return Err(NotaryError::Unmappable {
                what: "tag",
                name: t.name.clone(),
                detail: "not a valid OCI tag".into(),
            });
        }
        let image = ImageRef {
            location: opts.to.clone(),
            tag: Some(t.name.clone()),
            digest: None,
        };
        let served = match store.resolve(&image) {
            Ok(d) => Some(d),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(OpError::from(e).into()),
        };
        let status = match &served {
            Some(d) if d.digest.hex() == t.sha256 && d.size == t.length => "ok",
            Some(_) => "drift",
            None => "missing",
        };
        if status != "ok" {
            drifted += 1;
        }
        tags.push((
            t,
            served.clone(),
            TagRow {
                tag: t.name.clone(),
                signed: format!("sha256:{}", t.sha256),
                registry: served.map(|d| d.digest.to_string()),
                role: warrant_role(&t.role)?.0,
                status,
            },
        ));
    }
    let mut report = ImportReport {
        gun: opts.gun.clone(),
        to: opts.to.to_string(),
        root_keys: Vec::new(),
        roles: Vec::new(),
        tags: tags.iter().map(|(_, _, r)| r.clone()).collect(),
        drifted,
        published: false,
        skipped_keys: Vec::new(),
        generated: Vec::new(),
    };
    for k in &v.root.keys {
        report
            .root_keys
            .push((k.id.clone(), warrant_public(k)?.key_id()));
    }
    if opts.dry_run || (drifted > 0 && !opts.allow_drift) {
        for (name, role) in [("targets", &v.targets)]
            .into_iter()
            .chain(v.delegations.iter().map(|d| (d.name.as_str(), &d.role)))
        {
            report.roles.push(RoleRow {
                notary: name.to_owned(),
                warrant: warrant_role(name)?.0,
                keyids: role
                    .keys
                    .iter()
                    .map(|k| warrant_public(k).map(|p| p.key_id()))
                    .collect::<Result<_, _>>()?,
                threshold: role.threshold,
                held: false,
            });
        }
        return Ok(report);
    }

    super::stage::ensure_empty(store.as_ref(), &opts.to)?;
    drop(store);
    let held = read_private(&opts.trust_dir, &opts.gun, &mut report.skipped_keys)?;
    let missing = |role: &str| NotaryError::MissingKey {
        role: role.to_owned(),
        gun: opts.gun.clone(),
        dir: opts.trust_dir.clone(),
        var: passphrase_var(role),
    };
    // Before anything is written: root, targets and every delegated role must be
    // re-signable here (Notary's signatures cannot be carried across dialects, and
    // a warrant snapshot never names a delegation whose role it lacks), else the
    // import would publish a repository that lost tags or roles.
    for (name, role) in [("root", &v.root), ("targets", &v.targets)]
        .into_iter()
        .chain(v.delegations.iter().map(|d| (d.name.as_str(), &d.role)))
    {
        let held_count = role
            .keys
            .iter()
            .filter(|k| held.iter().any(|h| same_key(&h.key, k)))
            .count() as u64;
        if held_count < role.threshold {
            if role
                .keys
                .iter()
                .any(|k| matches!(k.public, NotaryPublic::Rsa(_)))
            {
                return Err(NotaryError::RsaRole {
                    role: name.to_owned(),
                    gun: opts.gun.clone(),
                });
            }
            return Err(missing(name));
        }
    }
    // Everything is built in a private staging layout; the destination sees one
    // publish of the finished repository, or nothing.
    let staging = super::stage::Staging::new(ctx)?;
    let stage = staging.location().clone();
    let (_, root_ids) = store_role_keys(ctx, "root", &v.root, &held)?;
    let (targets_all, targets_mine) = store_role_keys(ctx, "targets", &v.targets, &held)?;
    let targets_key = targets_mine.first().ok_or_else(|| missing("targets"))?;
    // The publisher signs snapshot and timestamp; Notary's server held the timestamp
    // key, so the user's snapshot key becomes the publisher when they have it.
    let (_, snapshot_mine) = store_role_keys(ctx, "snapshot", &v.snapshot, &held)?;
    let init = crate::ops::init::init(
        ctx,
        &stage,
        &InitOptions {
            root_keys: root_ids.iter().map(|k| k.0.clone()).collect(),
            root_threshold: std::num::NonZeroU64::new(v.root.threshold)
                .unwrap_or(std::num::NonZeroU64::MIN),
            targets_key: Some(targets_key.0.clone()),
            publisher_key: snapshot_mine.first().map(|k| k.0.clone()),
            key_type: crate::crypto::KeyType::Ecdsa,
            bins: Default::default(),
        },
    )?;
    report.generated = init.generated;
    report.roles.push(RoleRow {
        notary: "targets".into(),
        warrant: "targets".into(),
        keyids: targets_all,
        threshold: v.targets.threshold,
        held: true,
    });
    let pin = Pin::default();
    for d in &v.delegations {
        let (role, from) = warrant_role(&d.name)?;
        let (all, mine) = store_role_keys(ctx, &d.name, &d.role, &held)?;
        let paths = d.paths.iter().map(|p| format!("{p}*")).collect::<Vec<_>>();
        let outcome = crate::ops::delegation::add(
            ctx,
            &stage,
            &NewDelegation {
                role: role.clone(),
                keys: all.iter().map(|k| k.0.clone()).collect(),
                threshold: d.role.threshold,
                paths,
                terminating: false,
                from,
            },
            &pin,
        )?;
        all_published(&outcome)?;
        report.roles.push(RoleRow {
            notary: d.name.clone(),
            warrant: role,
            keyids: all,
            threshold: d.role.threshold,
            held: !mine.is_empty(),
        });
    }
    // One staged commit per role, however many tags it signs.
    let mut by_role: Vec<(String, Vec<(String, TargetFile)>)> = Vec::new();
    for (t, served, row) in &tags {
        let digest = Sha256Digest::from_hex(&t.sha256).map_err(|e| NotaryError::Malformed {
            role: t.role.clone(),
            detail: format!("target {}: {e}", t.name),
        })?;
        let media_type = served
            .as_ref()
            .filter(|d| d.digest == digest)
            .map(|d| d.media_type.clone())
            .unwrap_or_else(|| "application/vnd.docker.distribution.manifest.v2+json".into());
        let file = TargetFile {
            length: t.length,
            hashes: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
            custom: Some(serde_json::json!({ "mediaType": media_type })),
            unrecognized: Unrecognized::new(),
        };
        match by_role.iter_mut().find(|(r, _)| *r == row.role) {
            Some((_, list)) => list.push((t.name.clone(), file)),
            None => by_role.push((row.role.clone(), vec![(t.name.clone(), file)])),
        }
    }
    for (role, targets) in &by_role {
        let (outcome, _) = crate::ops::sign::sign_targets(
            ctx,
            &stage,
            targets,
            &SignOptions {
                role: (role != "targets").then(|| role.clone()),
                key: None,
                pin: pin.clone(),
                by_digest: false,
            },
        )?;
        all_published(&outcome)?;
    }
    staging.publish_to(ctx, &opts.to)?;
    report.published = true;
    Ok(report)
}
