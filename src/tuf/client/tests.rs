//! The workflow over an in-memory remote: what is fetched, in which order, with
//! which caps, and what is trusted afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use chrono::{Duration, Utc};

use super::*;
use crate::crypto::{KeyType, SecretKey, Signer};
use crate::tuf::editor;
use crate::tuf::metadata::{DelegatedRole, Delegations, Key, SuccinctRoles, TargetFile, Targets};

fn nz(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

fn key() -> SecretKey {
    SecretKey::generate(KeyType::Ed25519).unwrap()
}

type Mem = crate::tuf::memory::MemoryRemote;
type Local = crate::tuf::memory::MemoryState;

/// Test shorthand over the library's in-memory repository.
struct Repo(crate::tuf::memory::MemoryRepository);

impl std::ops::Deref for Repo {
    type Target = crate::tuf::memory::MemoryRepository;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Repo {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Repo {
    fn new() -> Self {
        Self(crate::tuf::memory::MemoryRepository::new().unwrap())
    }
    fn publish_root(&mut self, old: &[&SecretKey]) {
        self.0.publish_root(old).unwrap();
    }
    fn set_targets(&mut self, role: &str, t: Targets, signer: Option<&SecretKey>) {
        self.0.set_targets(role, t, signer).unwrap();
    }
    fn publish(&mut self) {
        self.0.publish().unwrap();
    }
    fn client(&self, local: &Local) -> Updater<Mem, Local> {
        self.0.client(local).unwrap()
    }
    fn fetched(&self) -> Vec<String> {
        self.remote.fetched()
    }
}

fn in_days(d: i64) -> chrono::DateTime<Utc> {
    editor::expiry_in(Utc::now(), Duration::days(d))
}

fn target(content: &[u8]) -> TargetFile {
    TargetFile {
        length: content.len() as u64,
        hashes: BTreeMap::from([(
            "sha256".to_owned(),
            crate::digest::Sha256Digest::of(content).hex(),
        )]),
        custom: None,
        unrecognized: Default::default(),
    }
}

fn delegate(t: &mut Targets, name: &str, k: &SecretKey, paths: &[&str], terminating: bool) {
    let d = t.delegations.get_or_insert_with(|| Delegations {
        keys: BTreeMap::new(),
        roles: Some(Vec::new()),
        succinct_roles: None,
        unrecognized: Default::default(),
    });
    d.keys
        .insert(k.public_key().key_id(), Key::from_public(k.public_key()));
    d.roles.get_or_insert_with(Vec::new).push(DelegatedRole {
        name: name.into(),
        keyids: vec![k.public_key().key_id()],
        threshold: nz(1),
        terminating,
        paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
        path_hash_prefixes: None,
        unrecognized: Default::default(),
    });
}

#[test]
fn unchanged_metadata_is_not_downloaded_again() {
    let repo = Repo::new();
    let local = Local::default();
    repo.client(&local).refresh().unwrap();
    assert_eq!(
        repo.fetched(),
        [
            "2.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "1.targets.json"
        ]
    );
    repo.client(&local).refresh().unwrap();
    assert_eq!(repo.fetched(), ["2.root.json", "timestamp.json"]);
}

#[test]
fn every_download_is_capped() {
    let repo = Repo::new();
    repo.client(&Local::default()).refresh().unwrap();
    let log = repo.remote.log.borrow().clone();
    let limits = Limits::default();
    assert_eq!(log[0], ("2.root.json".to_owned(), limits.root));
    assert_eq!(log[1], ("timestamp.json".to_owned(), limits.timestamp));
    // Snapshot and targets: exactly the length their referrer recorded.
    let len = |n: &str| repo.remote.files.borrow()[n].len() as u64;
    assert_eq!(
        log[2],
        ("1.snapshot.json".to_owned(), len("1.snapshot.json"))
    );
    assert_eq!(log[3], ("1.targets.json".to_owned(), len("1.targets.json")));
}

#[test]
fn endless_timestamp_is_rejected() {
    let repo = Repo::new();
    let mut big = repo.remote.files.borrow()["timestamp.json"].clone();
    big.extend(std::iter::repeat_n(b' ', 20_000));
    repo.remote
        .files
        .borrow_mut()
        .insert("timestamp.json".into(), big);
    let err = repo.client(&Local::default()).refresh().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Fetch {
                source: FetchError {
                    kind: FetchErrorKind::TooLarge,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_chain_of_root_rotations_is_followed_from_v1() {
    let mut repo = Repo::new();
    for _ in 0..3 {
        let old = std::mem::replace(&mut repo.root_keys, vec![key()]);
        repo.publish_root(&[&old[0]]);
    }
    let mut up = repo.client(&Local::default());
    up.refresh().unwrap();
    assert_eq!(up.trusted().root().version.get(), 4);
}

#[test]
fn a_root_skipping_the_old_keys_breaks_the_chain() {
    let mut repo = Repo::new();
    repo.root_keys = vec![key()];
    repo.publish_root(&[]); // not signed by the v1 root key
    let err = repo.client(&Local::default()).refresh().unwrap_err();
    assert!(
        err.to_string().contains("not signed by enough keys"),
        "{err}"
    );
}

#[test]
fn fast_forward_recovery_after_the_online_key_rotates() {
    let mut repo = Repo::new();
    // The online key is compromised: timestamp and snapshot pushed to version 1000.
    repo.timestamp_version = 999;
    repo.snapshot_version = 999;
    repo.publish();
    let local = Local::default();
    repo.client(&local).refresh().unwrap();
    // Root rotates the online key; the repository restarts at low versions.
    repo.online = key();
    let old = std::mem::replace(&mut repo.root_keys, vec![key()]);
    repo.publish_root(&[&old[0]]);
    repo.timestamp_version = 0;
    repo.snapshot_version = 0;
    repo.publish();
    let mut up = repo.client(&local);
    up.refresh().unwrap();
    assert_eq!(up.trusted().timestamp().unwrap().version.get(), 1);
}

#[test]
fn metadata_signed_by_a_rotated_out_key_is_rejected() {
    let mut repo = Repo::new();
    let local = Local::default();
    repo.client(&local).refresh().unwrap();
    let old_online = std::mem::replace(&mut repo.online, key());
    let old_root = std::mem::replace(&mut repo.root_keys, vec![key()]);
    repo.publish_root(&[&old_root[0]]);
    // The repository keeps signing with the old key.
    repo.online = old_online;
    repo.publish();
    let err = repo.client(&local).refresh().unwrap_err();
    assert!(
        err.to_string()
            .contains("timestamp metadata is not signed by enough keys"),
        "{err}"
    );
}

#[test]
fn delegation_search_is_preorder_in_list_order_and_honours_terminating() {
    let mut repo = Repo::new();
    let (ka, kb, kc, kd) = (key(), key(), key(), key());
    let mut top = Targets::empty(nz(1), in_days(365));
    delegate(&mut top, "a", &ka, &["*"], false);
    delegate(&mut top, "b", &kb, &["*"], true);
    delegate(&mut top, "c", &kc, &["*"], false);
    repo.set_targets("targets", top, None);
    let mut a = Targets::empty(nz(1), in_days(365));
    delegate(&mut a, "d", &kd, &["x*"], false);
    repo.set_targets("a", a, Some(&ka));
    let mut d = Targets::empty(nz(1), in_days(365));
    d.targets.insert("x1".into(), target(b"from d"));
    repo.set_targets("d", d, Some(&kd));
    let mut b = Targets::empty(nz(1), in_days(365));
    b.targets.insert("y1".into(), target(b"from b"));
    repo.set_targets("b", b, Some(&kb));
    let mut c = Targets::empty(nz(1), in_days(365));
    c.targets.insert("z1".into(), target(b"from c"));
    c.targets.insert("x1".into(), target(b"from c"));
    repo.set_targets("c", c, Some(&kc));
    repo.publish();

    let mut up = repo.client(&Local::default());
    up.refresh().unwrap();
    repo.remote.log.borrow_mut().clear();
    let found = up.find_target("x1").unwrap().unwrap();
    assert_eq!((found.role.as_str(), found.file), ("d", target(b"from d")));
    assert_eq!(repo.fetched(), ["1.a.json", "1.d.json"]);
    let found = up.find_target("y1").unwrap().unwrap();
    assert_eq!(found.role, "b");
    // b is terminating: c is never searched, so z1 is not found.
    assert!(up.find_target("z1").unwrap().is_none());
    assert!(!repo.fetched().contains(&"1.c.json".to_owned()));
}

#[test]
fn delegation_search_is_bounded_and_survives_cycles() {
    let mut repo = Repo::new();
    let k = key();
    let mut top = Targets::empty(nz(1), in_days(365));
    delegate(&mut top, "r0", &k, &["*"], false);
    repo.set_targets("targets", top, None);
    // r0 → r1 → ... → r39, and r39 → r0 (a cycle); the target is at the end.
    for i in 0..40 {
        let mut t = Targets::empty(nz(1), in_days(365));
        delegate(&mut t, &format!("r{}", (i + 1) % 40), &k, &["*"], false);
        if i == 39 {
            t.targets.insert("deep".into(), target(b"x"));
        }
        repo.set_targets(&format!("r{i}"), t, Some(&k));
    }
    repo.publish();
    let mut up = repo.client(&Local::default());
    up.refresh().unwrap();
    assert!(
        up.find_target("deep").unwrap().is_none(),
        "visits at most 32 roles"
    );
    assert!(up.find_target("absent").unwrap().is_none(), "a cycle ends");
}

#[test]
fn a_hash_bin_lookup_reads_only_its_bin() {
    let mut repo = Repo::new();
    let kb = key();
    let bins = SuccinctRoles {
        keyids: vec![kb.public_key().key_id()],
        threshold: nz(1),
        bit_length: 8,
        name_prefix: "bin".into(),
        unrecognized: Default::default(),
    };
    let mut top = Targets::empty(nz(1), in_days(365));
    top.delegations = Some(Delegations {
        keys: BTreeMap::from([(kb.public_key().key_id(), Key::from_public(kb.public_key()))]),
        roles: None,
        succinct_roles: Some(bins.clone()),
        unrecognized: Default::default(),
    });
    repo.set_targets("targets", top, None);
    for n in 0..256u32 {
        let name = crate::tuf::delegation::bin_name(&bins, n);
        let mut t = Targets::empty(nz(1), in_days(365));
        if name == crate::tuf::delegation::bin_for(&bins, "app:v1") {
            t.targets.insert("app:v1".into(), target(b"v1"));
        }
        repo.set_targets(&name, t, Some(&kb));
    }
    repo.publish();
    let mut up = repo.client(&Local::default());
    up.refresh().unwrap();
    repo.remote.log.borrow_mut().clear();
    let found = up.find_target("app:v1").unwrap().unwrap();
    assert_eq!(repo.fetched(), [format!("1.{}.json", found.role)]);
}

#[test]
fn a_same_named_role_grafted_under_another_delegator_cannot_stand_in() {
    // targets → releases (key r) → "qa" (key r); targets → qa (key q).
    // The qa metadata is signed by r only: found through releases, it must still
    // satisfy the real delegation's keys before a policy can count it.
    let mut repo = Repo::new();
    let (kr, kq) = (key(), key());
    let mut top = Targets::empty(nz(1), in_days(365));
    delegate(&mut top, "releases", &kr, &["*"], false);
    delegate(&mut top, "qa", &kq, &["*"], false);
    repo.set_targets("targets", top, None);
    let mut releases = Targets::empty(nz(1), in_days(365));
    delegate(&mut releases, "qa", &kr, &["*"], false);
    repo.set_targets("releases", releases, Some(&kr));
    let mut qa = Targets::empty(nz(1), in_days(365));
    qa.targets.insert("v1".into(), target(b"evil"));
    repo.set_targets("qa", qa, Some(&kr));
    repo.publish();
    let mut up = repo.client(&Local::default());
    up.refresh().unwrap();
    let err = up.find_target_in_role("v1", "qa").unwrap_err();
    assert!(
        err.to_string()
            .contains("qa metadata is not signed by enough keys"),
        "{err}"
    );
}
