//! Each spec §5 check, attacked one at a time (names say what is proven).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::crypto::{KeyType, SecretKey, Signer};
use crate::tuf::editor::{self, RoleSpec, meta_for};
use crate::tuf::metadata::{DelegatedRole, Delegations, Key, Targets};

fn nz(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

fn key() -> SecretKey {
    SecretKey::generate(KeyType::Ed25519).unwrap()
}

struct Repo {
    now: DateTime<Utc>,
    root: Vec<SecretKey>,
    targets: SecretKey,
    snapshot: SecretKey,
    timestamp: SecretKey,
}

fn spec(keys: &[&SecretKey], t: u64) -> RoleSpec {
    RoleSpec {
        keys: keys.iter().map(|k| k.public_key().clone()).collect(),
        threshold: nz(t),
    }
}

impl Repo {
    fn new() -> Self {
        Self {
            now: Utc::now(),
            root: vec![key()],
            targets: key(),
            snapshot: key(),
            timestamp: key(),
        }
    }

    fn later(&self, days: i64) -> DateTime<Utc> {
        editor::expiry_in(self.now, Duration::days(days))
    }

    fn root_md(&self, version: u64, expires: DateTime<Utc>) -> crate::tuf::metadata::Root {
        let refs: Vec<&SecretKey> = self.root.iter().collect();
        let mut r = editor::new_root(
            &spec(&refs, 1),
            &spec(&[&self.targets], 1),
            &spec(&[&self.snapshot], 1),
            &spec(&[&self.timestamp], 1),
            expires,
        );
        r.version = nz(version);
        r
    }

    fn root(&self, version: u64) -> Vec<u8> {
        let signers: Vec<&dyn Signer> = self.root.iter().map(|k| k as &dyn Signer).collect();
        editor::sign(&self.root_md(version, self.later(365)), &signers).unwrap()
    }

    fn targets(&self, version: u64, expires_days: i64) -> Vec<u8> {
        let t = Targets::empty(nz(version), self.later(expires_days));
        editor::sign(&t, &[&self.targets]).unwrap()
    }

    fn snapshot(&self, version: u64, roles: &[(&str, u64, &[u8])], expires_days: i64) -> Vec<u8> {
        let meta: BTreeMap<_, _> = roles
            .iter()
            .map(|(name, v, bytes)| (format!("{name}.json"), meta_for(nz(*v), bytes)))
            .collect();
        let s = editor::new_snapshot(nz(version), self.later(expires_days), meta);
        editor::sign(&s, &[&self.snapshot]).unwrap()
    }

    fn timestamp(
        &self,
        version: u64,
        snap_version: u64,
        snap: &[u8],
        expires_days: i64,
    ) -> Vec<u8> {
        let t = editor::new_timestamp(
            nz(version),
            self.later(expires_days),
            nz(snap_version),
            snap,
        );
        editor::sign(&t, &[&self.timestamp]).unwrap()
    }

    fn set(&self) -> TrustedSet {
        TrustedSet::new(self.root(1), self.now).unwrap()
    }

    /// A set loaded through timestamp v`ts` → snapshot v`snap` → targets v`t`.
    fn loaded(&self, ts: u64, snap: u64, t: u64) -> TrustedSet {
        let mut set = self.set();
        let targets = self.targets(t, 365);
        let s = self.snapshot(snap, &[("targets", t, &targets)], 30);
        set.update_timestamp(self.timestamp(ts, snap, &s, 7))
            .unwrap();
        set.update_snapshot(s, false).unwrap();
        set.update_targets("targets", "root", targets, false)
            .unwrap();
        set
    }
}

#[test]
fn trusted_root_must_be_signed_by_its_own_threshold() {
    let r = Repo::new();
    let unsigned = editor::sign(&r.root_md(1, r.later(1)), &[&r.targets]).unwrap();
    assert!(matches!(
        TrustedSet::new(unsigned, r.now),
        Err(TrustError::Metadata(MetadataError::Threshold { .. }))
    ));
}

#[test]
fn root_rotation_needs_old_and_new_thresholds() {
    let mut r = Repo::new();
    let old = r.root.clone_keys();
    let mut set = r.set();
    r.root = vec![key()];
    let new_md = r.root_md(2, r.later(365));
    // Only the new key: the old root's threshold is not met.
    let only_new = editor::sign(&new_md, &[&r.root[0]]).unwrap();
    assert!(matches!(
        set.update_root(only_new),
        Err(TrustError::Metadata(MetadataError::Threshold { .. }))
    ));
    // Only the old key: the new root's own threshold is not met.
    let only_old = editor::sign(&new_md, &[&old[0]]).unwrap();
    assert!(matches!(
        set.update_root(only_old),
        Err(TrustError::Metadata(MetadataError::Threshold { .. }))
    ));
    let both = editor::sign(&new_md, &[&old[0], &r.root[0]]).unwrap();
    set.update_root(both).unwrap();
    assert_eq!(set.root().version.get(), 2);
}

trait CloneKeys {
    fn clone_keys(&self) -> Vec<SecretKey>;
}
impl CloneKeys for Vec<SecretKey> {
    fn clone_keys(&self) -> Vec<SecretKey> {
        self.iter()
            .map(|k| SecretKey::from_pkcs8_der(&k.to_pkcs8_der().unwrap()).unwrap())
            .collect()
    }
}

#[test]
fn root_versions_must_increase_by_exactly_one() {
    let r = Repo::new();
    let mut set = r.set();
    assert!(matches!(
        set.update_root(r.root(3)),
        Err(TrustError::VersionMismatch { .. })
    ));
    assert!(matches!(
        set.update_root(r.root(1)),
        Err(TrustError::VersionMismatch { .. })
    ));
    set.update_root(r.root(2)).unwrap();
}

#[test]
fn expired_final_root_is_a_freeze() {
    let r = Repo::new();
    let old = editor::sign(&r.root_md(1, r.now - Duration::days(1)), &[&r.root[0]]).unwrap();
    let set = TrustedSet::new(old, r.now).unwrap(); // loading an expired trusted root is fine
    assert!(matches!(
        set.check_root_expiry(),
        Err(TrustError::Expired { .. })
    ));
}

#[test]
fn timestamp_rollback_is_rejected_and_same_version_kept() {
    let r = Repo::new();
    let mut set = r.set();
    let s = r.snapshot(1, &[], 30);
    set.update_timestamp(r.timestamp(5, 1, &s, 7)).unwrap();
    assert_eq!(
        set.update_timestamp(r.timestamp(5, 1, &s, 7)).unwrap(),
        TimestampUpdate::Unchanged
    );
    assert!(matches!(
        set.update_timestamp(r.timestamp(4, 1, &s, 7)),
        Err(TrustError::Rollback { .. })
    ));
}

#[test]
fn snapshot_version_going_back_in_timestamp_is_rejected() {
    let r = Repo::new();
    let mut set = r.set();
    let s = r.snapshot(3, &[], 30);
    set.update_timestamp(r.timestamp(1, 3, &s, 7)).unwrap();
    assert!(matches!(
        set.update_timestamp(r.timestamp(2, 2, &s, 7)),
        Err(TrustError::Rollback { .. })
    ));
}

#[test]
fn expired_timestamp_is_a_freeze_but_still_sets_the_floor() {
    let r = Repo::new();
    let mut set = r.set();
    let s = r.snapshot(1, &[], 30);
    assert!(matches!(
        set.update_timestamp(r.timestamp(9, 1, &s, -1)),
        Err(TrustError::Expired { .. })
    ));
    assert_eq!(set.timestamp().unwrap().version.get(), 9);
}

#[test]
fn snapshot_not_matching_timestamp_hash_is_mix_and_match() {
    let r = Repo::new();
    let mut set = r.set();
    let s1 = r.snapshot(1, &[], 30);
    let s1b = r.snapshot(1, &[], 29);
    set.update_timestamp(r.timestamp(1, 1, &s1, 7)).unwrap();
    assert!(matches!(
        set.update_snapshot(s1b, false),
        Err(TrustError::HashMismatch { .. })
    ));
}

#[test]
fn snapshot_version_must_be_what_timestamp_names() {
    let r = Repo::new();
    let mut set = r.set();
    let s2 = r.snapshot(2, &[], 30);
    // Timestamp names version 3 but hashes s2's bytes: the hash passes, the version not.
    set.update_timestamp(r.timestamp(1, 3, &s2, 7)).unwrap();
    assert!(matches!(
        set.update_snapshot(s2, false),
        Err(TrustError::VersionMismatch { .. })
    ));
}

#[test]
fn targets_rollback_or_removal_in_snapshot_is_rejected() {
    let r = Repo::new();
    let mut set = r.set();
    let t = r.targets(5, 365);
    let s1 = r.snapshot(1, &[("targets", 5, &t)], 30);
    set.update_timestamp(r.timestamp(1, 1, &s1, 7)).unwrap();
    set.update_snapshot(s1, false).unwrap();
    // A fresh set that trusts s1 via the cache, then sees s2 with targets v4.
    let s1_bytes = set.snapshot().unwrap().bytes().to_vec();
    for s2 in [
        r.snapshot(2, &[("targets", 4, &t)], 30),
        r.snapshot(2, &[], 30),
    ] {
        let mut set = r.set();
        let ts1 = r.timestamp(1, 1, &s1_bytes, 7);
        set.update_timestamp(ts1).unwrap();
        set.update_snapshot(s1_bytes.clone(), true).unwrap();
        // Simulate the next refresh: same process keeps the snapshot floor.
        let err = set.update_snapshot_for_test(r.timestamp(2, 2, &s2, 7), s2);
        assert!(
            matches!(
                err,
                Err(TrustError::Rollback { .. }) | Err(TrustError::RoleRemoved { .. })
            ),
            "{err:?}"
        );
    }
}

impl TrustedSet {
    /// Test helper: accept a newer timestamp and snapshot while keeping the trusted
    /// snapshot as the floor (what a refresh with a cached snapshot does).
    fn update_snapshot_for_test(&mut self, ts: Vec<u8>, snap: Vec<u8>) -> Result<(), TrustError> {
        let keep = self.snapshot.take();
        self.update_timestamp(ts)?;
        self.snapshot = keep;
        self.update_snapshot(snap, false)
    }
}

#[test]
fn targets_version_must_match_snapshot_and_not_be_expired() {
    let r = Repo::new();
    let mut set = r.set();
    let t2 = r.targets(2, 365);
    let s = r.snapshot(1, &[("targets", 3, &t2)], 30);
    set.update_timestamp(r.timestamp(1, 1, &s, 7)).unwrap();
    set.update_snapshot(s, false).unwrap();
    assert!(matches!(
        set.update_targets("targets", "root", t2, false),
        Err(TrustError::VersionMismatch { .. })
    ));

    let mut set = r.set();
    let expired = r.targets(1, -1);
    let s = r.snapshot(1, &[("targets", 1, &expired)], 30);
    set.update_timestamp(r.timestamp(1, 1, &s, 7)).unwrap();
    set.update_snapshot(s, false).unwrap();
    assert!(matches!(
        set.update_targets("targets", "root", expired, false),
        Err(TrustError::Expired { .. })
    ));
}

#[test]
fn wrong_type_is_rejected_even_when_signed() {
    let mut r = Repo::new();
    r.snapshot = SecretKey::from_pkcs8_der(&r.timestamp.to_pkcs8_der().unwrap()).unwrap();
    let mut set = r.set();
    let s = r.snapshot(1, &[], 30);
    let ts = r.timestamp(1, 1, &s, 7);
    set.update_timestamp(ts.clone()).unwrap();
    assert!(matches!(
        set.update_snapshot(ts, true),
        Err(TrustError::Metadata(MetadataError::WrongType { .. }))
    ));
}

#[test]
fn metadata_out_of_order_is_refused() {
    let r = Repo::new();
    let mut set = r.set();
    assert!(matches!(
        set.update_snapshot(r.snapshot(1, &[], 30), true),
        Err(TrustError::Order(_))
    ));
    let set2 = r.loaded(1, 1, 1);
    let mut set2 = set2;
    assert!(matches!(
        set2.update_root(r.root(2)),
        Err(TrustError::Order(_))
    ));
}

#[test]
fn a_role_reached_through_a_second_delegator_must_satisfy_its_keys() {
    let r = Repo::new();
    let qa = key();
    let stranger = key();
    let delegate = |keys: &[&SecretKey], names: &[&str]| {
        let mut t = Targets::empty(nz(1), r.later(365));
        t.delegations = Some(Delegations {
            keys: keys
                .iter()
                .map(|k| (k.public_key().key_id(), Key::from_public(k.public_key())))
                .collect(),
            roles: Some(
                names
                    .iter()
                    .map(|n| DelegatedRole {
                        name: (*n).into(),
                        keyids: keys.iter().map(|k| k.public_key().key_id()).collect(),
                        threshold: nz(1),
                        terminating: false,
                        paths: Some(vec!["*".into()]),
                        path_hash_prefixes: None,
                        unrecognized: Default::default(),
                    })
                    .collect(),
            ),
            succinct_roles: None,
            unrecognized: Default::default(),
        });
        t
    };
    // targets → a (qa key) → shared; targets → b (stranger's key) → shared.
    let top = delegate(&[&qa], &["a", "shared"]);
    let mut top = top;
    if let Some(d) = top.delegations.as_mut() {
        d.keys.insert(
            stranger.public_key().key_id(),
            Key::from_public(stranger.public_key()),
        );
        if let Some(roles) = d.roles.as_mut() {
            roles[1].name = "b".into();
            roles[1].keyids = vec![stranger.public_key().key_id()];
        }
    }
    let top_bytes = editor::sign(&top, &[&r.targets]).unwrap();
    let a = editor::sign(&delegate(&[&qa], &["shared"]), &[&qa]).unwrap();
    let b = editor::sign(&delegate(&[&stranger], &["shared"]), &[&stranger]).unwrap();
    let shared = editor::sign(&Targets::empty(nz(1), r.later(365)), &[&qa]).unwrap();
    let s = r.snapshot(
        1,
        &[
            ("targets", 1, &top_bytes),
            ("a", 1, &a),
            ("b", 1, &b),
            ("shared", 1, &shared),
        ],
        30,
    );
    let mut set = r.set();
    set.update_timestamp(r.timestamp(1, 1, &s, 7)).unwrap();
    set.update_snapshot(s, false).unwrap();
    set.update_targets("targets", "root", top_bytes, false)
        .unwrap();
    set.update_targets("a", "targets", a, false).unwrap();
    set.update_targets("b", "targets", b, false).unwrap();
    set.update_targets("shared", "a", shared, false).unwrap();
    set.recheck_delegated("shared", "a").unwrap();
    // Through b, `shared` must carry the stranger's signature; it does not.
    assert!(matches!(
        set.recheck_delegated("shared", "b"),
        Err(TrustError::Metadata(MetadataError::Threshold { .. }))
    ));
}
