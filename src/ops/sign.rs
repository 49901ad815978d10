//! `warrant sign`: record an image manifest as a TUF target and publish new targets,
//! snapshot and timestamp metadata, converging with concurrent signers.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use serde::Serialize;
use serde_json::json;

use crate::digest::Sha256Digest;
use crate::store::{ImageRef, Listing, NewFile, Store, StoreErrorKind};
use crate::tuf::client::LocalState as _;
use crate::tuf::editor::{self, lifetime};
use crate::tuf::metadata::{TargetFile, Unrecognized};

use super::trust::{Pin, TrustedUpdater, anchor, open_store, update};
use super::{Context, OpError, as_signers};

/// Publish attempts before giving up on a busy repository.
const MAX_ATTEMPTS: u32 = 10;

/// Options of `warrant sign`.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Sign with this targets key only (id, prefix or name).
    pub key: Option<String>,
    /// How the signer trusts the repository on its first contact.
    pub pin: Pin,
}

/// What `sign` published.
#[derive(Debug, Clone, Serialize)]
pub struct SignOutcome {
    /// The image.
    pub reference: String,
    /// The target path.
    pub target: String,
    /// The signed manifest digest.
    pub digest: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The role that signed.
    pub role: String,
    /// The new targets version.
    pub targets_version: u64,
    /// The new `warrant.tuf` digest.
    pub published: Sha256Digest,
    /// Attempts needed (more than one when other signers published meanwhile).
    pub attempts: u32,
}

/// Sign `image` into the top-level targets role.
pub fn sign(ctx: &Context, image: &ImageRef, opts: &SignOptions) -> Result<SignOutcome, OpError> {
    let store = open_store(ctx, &image.location)?;
    let descriptor = store.resolve(image)?;
    let target = image.target_name();
    let file = TargetFile {
        length: descriptor.size,
        hashes: BTreeMap::from([("sha256".to_owned(), descriptor.digest.hex())]),
        custom: Some(json!({ "mediaType": descriptor.media_type })),
        unrecognized: Unrecognized::new(),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let cache = anchor(ctx, store.as_ref(), &opts.pin)?;
        if attempt > 1 {
            // Another signer won a race: take the store's state as it is now.
            cache.forget_all_but_root();
        }
        let up = update(ctx, store.as_ref(), cache, false)?;
        let outcome = publish_target(ctx, store.as_ref(), up, &target, &file, opts).and_then(|r| {
            if store.publish_is_atomic() || survived(store.as_ref(), &target, &file)? {
                Ok(r)
            } else {
                Err(OpError::Store(crate::store::StoreError::new(
                    StoreErrorKind::Conflict,
                    store.location(),
                    "warrant.tuf",
                    "a concurrent signer overwrote this change",
                )))
            }
        });
        match outcome {
            Ok((published, targets_version)) => {
                return Ok(SignOutcome {
                    reference: image.to_string(),
                    target,
                    digest: descriptor.digest,
                    size: descriptor.size,
                    media_type: descriptor.media_type,
                    role: "targets".into(),
                    targets_version,
                    published,
                    attempts: attempt,
                });
            }
            Err(OpError::Store(e))
                if e.kind == StoreErrorKind::Conflict && attempt < MAX_ATTEMPTS =>
            {
                tracing::info!(attempt, "another signer published meanwhile; retrying");
                std::thread::sleep(backoff(attempt));
            }
            Err(OpError::Store(e)) if e.kind == StoreErrorKind::Conflict => {
                return Err(OpError::TooManyConflicts {
                    location: image.location.to_string(),
                    attempts: attempt,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// After a publish to a store without compare-and-swap: wait a moment (longer than
/// the gap between a concurrent signer's last check and its PUT), re-read, and check
/// that the current top-level targets still holds our target.
fn survived(store: &dyn Store, target: &str, file: &TargetFile) -> Result<bool, OpError> {
    std::thread::sleep(StdDuration::from_millis(50) + backoff(2));
    let Some(listing) = store.listing()? else {
        return Ok(false);
    };
    let Some(current) = listing
        .files
        .iter()
        .find(|f| !f.pending && is_role_file(&f.name, "targets"))
    else {
        return Ok(false);
    };
    let bytes = store.read_file(current, crate::tuf::client::Limits::default().targets)?;
    // Not a trust decision (the next verify makes that): only "is our change there".
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let ours = serde_json::to_value(file).unwrap_or_default();
    let theirs = &value["signed"]["targets"][target];
    Ok(theirs["hashes"] == ours["hashes"] && theirs["length"] == ours["length"])
}

/// Exponential backoff with full jitter: 0..(25ms · 2^attempt), capped at 2 s.
fn backoff(attempt: u32) -> StdDuration {
    let cap = (25u64 << attempt.min(6)).min(2000);
    let mut b = [0u8; 8];
    let r = getrandom::fill(&mut b)
        .map(|_| u64::from_le_bytes(b))
        .unwrap_or(cap / 2);
    StdDuration::from_millis(r % cap.max(1))
}

/// Is `name` the top-level file of `role` (`N.role.json`, or `timestamp.json`)?
fn is_role_file(name: &str, role: &str) -> bool {
    if role == "timestamp" {
        return name == "timestamp.json";
    }
    name.strip_suffix(&format!(".{role}.json"))
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The files of `listing` to carry over unchanged into the next publish.
fn carried_over(
    store: &dyn Store,
    listing: &Listing,
    replaced: &[&str],
) -> Result<Vec<NewFile>, OpError> {
    let mut out = Vec::new();
    for f in &listing.files {
        if !f.pending && replaced.iter().any(|r| is_role_file(&f.name, r)) {
            continue;
        }
        out.push(NewFile {
            name: f.name.clone(),
            bytes: store.read_file(f, crate::store::artifact::MAX_FILE_BYTES)?,
            pending: f.pending,
        });
    }
    Ok(out)
}

fn publish_target(
    ctx: &Context,
    store: &dyn Store,
    mut up: TrustedUpdater<'_>,
    target: &str,
    file: &TargetFile,
    opts: &SignOptions,
) -> Result<(Sha256Digest, u64), OpError> {
    let location = store.location().to_string();
    let listing = up
        .remote()
        .listing()
        .cloned()
        .ok_or_else(|| OpError::NoRepository {
            location: location.clone(),
        })?;
    let trusted = up.trusted();
    let root = trusted.root();
    let (Some(targets), Some(snapshot), Some(timestamp)) = (
        trusted.targets("targets"),
        trusted.snapshot(),
        trusted.timestamp(),
    ) else {
        return Err(OpError::NoRepository { location });
    };
    let role_keys = |role: &str| {
        root.roles
            .get(role)
            .map(|r| (r.keyids.clone(), r.threshold.get()))
            .unwrap_or_default()
    };
    let now = ctx.now;

    let mut new_targets = (**targets).clone();
    new_targets.targets.insert(target.to_owned(), file.clone());
    new_targets.version = editor::bump(targets.version, "targets")?;
    new_targets.expires = editor::expiry_in(now, lifetime::targets()).max(targets.expires);
    let (ids, threshold) = role_keys("targets");
    let signers = ctx.signers_for("targets", &ids, threshold, opts.key.as_deref())?;
    let targets_bytes = editor::sign(&new_targets, &as_signers(&signers))?;

    let mut meta = snapshot.meta.clone();
    meta.insert(
        "targets.json".into(),
        editor::meta_for(new_targets.version, &targets_bytes),
    );
    let snapshot_version = editor::bump(snapshot.version, "snapshot")?;
    let new_snapshot = editor::new_snapshot(
        snapshot_version,
        editor::expiry_in(now, lifetime::snapshot()),
        meta,
    );
    let (ids, threshold) = role_keys("snapshot");
    let signers = ctx.signers_for("snapshot", &ids, threshold, None)?;
    let snapshot_bytes = editor::sign(&new_snapshot, &as_signers(&signers))?;

    let new_timestamp = editor::new_timestamp(
        editor::bump(timestamp.version, "timestamp")?,
        editor::expiry_in(now, lifetime::timestamp()),
        snapshot_version,
        &snapshot_bytes,
    );
    let (ids, threshold) = role_keys("timestamp");
    let ts_signers = if role_keys("timestamp") == role_keys("snapshot") {
        signers
    } else {
        ctx.signers_for("timestamp", &ids, threshold, None)?
    };
    let timestamp_bytes = editor::sign(&new_timestamp, &as_signers(&ts_signers))?;

    let mut files = carried_over(store, &listing, &["targets", "snapshot", "timestamp"])?;
    files.push(NewFile {
        name: format!("{}.targets.json", new_targets.version),
        bytes: targets_bytes.clone(),
        pending: false,
    });
    files.push(NewFile {
        name: format!("{snapshot_version}.snapshot.json"),
        bytes: snapshot_bytes.clone(),
        pending: false,
    });
    files.push(NewFile {
        name: "timestamp.json".into(),
        bytes: timestamp_bytes.clone(),
        pending: false,
    });
    let published = store.publish(&files, Some(&listing.digest))?;

    // Our own trusted state follows what we published.
    let cache = up.local_mut();
    for (role, bytes) in [
        ("targets", &targets_bytes),
        ("snapshot", &snapshot_bytes),
        ("timestamp", &timestamp_bytes),
    ] {
        cache.persist(role, bytes).map_err(|e| OpError::Update {
            location: location.clone(),
            source: e.into(),
        })?;
    }
    cache.set_listing_digest(&published)?;
    Ok((published, new_targets.version.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_file_names() {
        assert!(is_role_file("3.targets.json", "targets"));
        assert!(!is_role_file("3.qa.targets.json", "targets"));
        assert!(!is_role_file("x.targets.json", "targets"));
        assert!(!is_role_file(".targets.json", "targets"));
        assert!(is_role_file("timestamp.json", "timestamp"));
        assert!(!is_role_file("1.root.json", "targets"));
    }
}
