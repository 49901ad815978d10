//! The verified local target index in the update workflow (issue #13): used when it
//! matches the trusted metadata, never trusted after that metadata changed or after
//! the index was damaged, and rebuilt from verified metadata.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use super::*;
use crate::crypto::{KeyType, SecretKey, Signer as _};
use crate::tuf::local::MetadataDir;
use crate::tuf::memory::{MemoryRemote, MemoryRepository, in_days};
use crate::tuf::metadata::{Delegations, Key, SuccinctRoles, TargetFile, Targets};

fn file(content: &str) -> TargetFile {
    TargetFile {
        length: content.len() as u64,
        hashes: BTreeMap::from([(
            "sha256".to_owned(),
            crate::digest::Sha256Digest::of(content.as_bytes()).hex(),
        )]),
        custom: None,
        unrecognized: Default::default(),
    }
}

fn flat(n: usize, tag: &str) -> Targets {
    let mut t = Targets::empty(NonZeroU64::MIN, in_days(365));
    for i in 0..n {
        t.targets
            .insert(format!("v{i}"), file(&format!("{tag} {i}")));
    }
    t
}

struct Client {
    _tmp: tempfile::TempDir,
    meta: PathBuf,
    index: PathBuf,
}

impl Client {
    fn new(repo: &MemoryRepository) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let meta = tmp.path().join("meta");
        std::fs::create_dir(&meta).unwrap();
        std::fs::write(meta.join("root.json"), repo.root_v1()).unwrap();
        let index = tmp.path().join("index");
        Self {
            _tmp: tmp,
            meta,
            index,
        }
    }

    fn updater(&self, repo: &MemoryRepository) -> Updater<MemoryRemote, MetadataDir> {
        repo.remote.log.borrow_mut().clear();
        let dir = MetadataDir::new(&self.meta).with_index_dir(&self.index);
        Updater::new(repo.remote.clone(), dir, Utc::now(), Limits::default())
            .unwrap()
            .with_target_index()
    }

    /// Refresh and look `name` up, as the conformance client does.
    fn find(&self, repo: &MemoryRepository, name: &str) -> (Option<TargetFile>, bool) {
        let mut up = self.updater(repo);
        up.refresh().unwrap();
        let indexed = up.trusted().is_indexed("targets");
        (up.find_target(name).unwrap().map(|f| f.file), indexed)
    }

    fn index_file(&self, role: &str) -> PathBuf {
        self.index.join(format!("{role}.json.index"))
    }
}

use chrono::Utc;

fn flip_last_entry_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn warm_lookup_answers_from_the_index() {
    let mut repo = MemoryRepository::new().unwrap();
    repo.set_targets("targets", flat(50, "a"), None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    let (cold, indexed) = c.find(&repo, "v7");
    assert_eq!(cold, Some(file("a 7")));
    assert!(!indexed, "the first run verifies the role in full");
    assert!(c.index_file("targets").is_file(), "and writes its index");
    let (warm, indexed) = c.find(&repo, "v7");
    assert_eq!(warm, Some(file("a 7")));
    assert!(indexed, "the second run answers from the index");
    assert_eq!(c.find(&repo, "v50").0, None);
}

#[test]
fn corrupted_target_index_is_rebuilt_not_trusted() {
    let mut repo = MemoryRepository::new().unwrap();
    repo.set_targets("targets", flat(50, "a"), None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    c.find(&repo, "v7");
    let good = std::fs::read(c.index_file("targets")).unwrap();
    // Damage every entry's hash text in place, keeping the JSON valid: without the
    // tags this index would now name other digests.
    let text = String::from_utf8_lossy(&good).replace("\"sha256\":\"", "\"sha256\":\"f");
    let mut forged = text.into_bytes();
    forged.truncate(good.len());
    std::fs::write(c.index_file("targets"), &forged).unwrap();
    for name in ["v7", "v0", "v49"] {
        let i: usize = name[1..].parse().unwrap();
        assert_eq!(c.find(&repo, name).0, Some(file(&format!("a {i}"))));
    }
    assert_eq!(
        std::fs::read(c.index_file("targets")).unwrap().len(),
        good.len(),
        "rebuilt"
    );
    assert!(super::super::index::TargetIndex::open(&c.index_file("targets")).is_ok());
    // A single flipped byte in the last entry: found through the rebuilt path too.
    flip_last_entry_byte(&c.index_file("targets"));
    let last = (0..50).map(|i| format!("v{i}")).max().unwrap();
    let i: usize = last[1..].parse().unwrap();
    assert_eq!(c.find(&repo, &last).0, Some(file(&format!("a {i}"))));
}

#[test]
fn truncated_target_index_is_rebuilt_not_trusted() {
    let mut repo = MemoryRepository::new().unwrap();
    repo.set_targets("targets", flat(20, "a"), None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    c.find(&repo, "v1");
    let good = std::fs::read(c.index_file("targets")).unwrap();
    std::fs::write(c.index_file("targets"), &good[..good.len() / 2]).unwrap();
    let (found, indexed) = c.find(&repo, "v1");
    assert_eq!(found, Some(file("a 1")));
    assert!(!indexed, "a truncated index is not used");
    assert_eq!(std::fs::read(c.index_file("targets")).unwrap(), good);
}

#[test]
fn target_index_is_not_trusted_after_the_role_changed() {
    let mut repo = MemoryRepository::new().unwrap();
    repo.set_targets("targets", flat(20, "a"), None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    assert_eq!(c.find(&repo, "v3").0, Some(file("a 3")));
    // v3 re-signed to another image: the old index must not answer.
    repo.set_targets("targets", flat(20, "b"), None).unwrap();
    repo.publish().unwrap();
    let (found, indexed) = c.find(&repo, "v3");
    assert_eq!(found, Some(file("b 3")));
    assert!(!indexed);
    assert_eq!(c.find(&repo, "v3"), (Some(file("b 3")), true));
}

#[test]
fn target_index_is_not_trusted_after_the_cached_role_file_changed() {
    let mut repo = MemoryRepository::new().unwrap();
    repo.set_targets("targets", flat(20, "a"), None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    c.find(&repo, "v3");
    // Someone rewrote the cached role (here: garbage). The index recorded the file
    // it came from, so it stands no more: the role is verified again (the cached
    // garbage fails, so it is downloaded).
    std::fs::write(c.meta.join("targets.json"), b"{}").unwrap();
    let (found, indexed) = c.find(&repo, "v3");
    assert_eq!(found, Some(file("a 3")));
    assert!(!indexed);
    assert!(
        repo.remote.fetched().contains(&"2.targets.json".to_owned()),
        "{:?}",
        repo.remote.fetched()
    );
}

#[test]
fn target_index_is_not_trusted_after_targets_key_rotation() {
    let mut repo = MemoryRepository::new().unwrap();
    repo.set_targets("targets", flat(20, "a"), None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    c.find(&repo, "v3");
    // Root v2 names a new targets key; the same targets bytes (same version) are
    // signed by the old key only, so they must no longer be trusted at all.
    repo.targets_key = SecretKey::generate(KeyType::Ed25519).unwrap();
    repo.publish_root(&[]).unwrap();
    repo.publish().unwrap();
    let mut up = c.updater(&repo);
    assert!(
        up.refresh().is_err(),
        "old-key targets accepted through its index"
    );
}

#[test]
fn expired_role_behind_an_index_is_rejected() {
    let mut repo = MemoryRepository::new().unwrap();
    let mut t = flat(5, "a");
    t.expires = Utc::now() + chrono::Duration::seconds(3);
    repo.set_targets("targets", t, None).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    c.find(&repo, "v1");
    let later = Utc::now() + chrono::Duration::hours(1);
    let dir = MetadataDir::new(&c.meta).with_index_dir(&c.index);
    let mut up = Updater::new(repo.remote.clone(), dir, later, Limits::default())
        .unwrap()
        .with_target_index();
    assert!(matches!(
        up.refresh(),
        Err(ClientError::Trust(TrustError::Expired { .. }))
    ));
}

/// 512 bins: each bin gets its own index; a lookup reads the top-level index and
/// one bin's; a bin re-signed is not answered from its old index.
#[test]
fn binned_roles_are_indexed_per_bin() {
    let mut repo = MemoryRepository::new().unwrap();
    let kb = SecretKey::generate(KeyType::Ed25519).unwrap();
    let succinct = SuccinctRoles {
        keyids: vec![kb.public_key().key_id()],
        threshold: NonZeroU64::MIN,
        bit_length: 9,
        name_prefix: "bin".into(),
        unrecognized: Default::default(),
    };
    let mut top = Targets::empty(NonZeroU64::MIN, in_days(365));
    top.delegations = Some(Delegations {
        keys: BTreeMap::from([(kb.public_key().key_id(), Key::from_public(kb.public_key()))]),
        roles: None,
        succinct_roles: Some(succinct.clone()),
        unrecognized: Default::default(),
    });
    repo.set_targets("targets", top, None).unwrap();
    let name = "v42";
    let bin = crate::tuf::delegation::bin_for(&succinct, name);
    let mut t = Targets::empty(NonZeroU64::MIN, in_days(365));
    t.targets.insert(name.into(), file("a"));
    repo.set_targets(&bin, t.clone(), Some(&kb)).unwrap();
    repo.publish().unwrap();
    let c = Client::new(&repo);
    assert_eq!(c.find(&repo, name).0, Some(file("a")));
    assert!(c.index_file(&bin).is_file());
    let mut up = c.updater(&repo);
    up.refresh().unwrap();
    assert_eq!(
        up.find_target(name).unwrap().map(|f| f.file),
        Some(file("a"))
    );
    assert!(up.trusted().is_indexed(&bin));
    // The bin re-signed: the old bin index must not answer.
    t.targets.insert(name.into(), file("b"));
    repo.set_targets(&bin, t, Some(&kb)).unwrap();
    repo.publish().unwrap();
    assert_eq!(c.find(&repo, name).0, Some(file("b")));
}
