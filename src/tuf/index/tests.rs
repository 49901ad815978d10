//! The index format on its own: round trip, and every kind of damage detected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use super::*;
use crate::crypto::{KeyType, SecretKey, Signer as _};
use crate::tuf::metadata::TargetFile;
use crate::tuf::verify::{Authority, Untrusted};

fn file(i: usize) -> TargetFile {
    TargetFile {
        length: i as u64,
        hashes: BTreeMap::from([("sha256".into(), format!("{i:064x}"))]),
        custom: None,
        unrecognized: Default::default(),
    }
}

/// A verified targets role of `n` targets `v0..v{n-1}`, and its index file.
fn indexed(n: usize) -> (tempfile::TempDir, std::path::PathBuf, Verified<Targets>) {
    let key = SecretKey::generate(KeyType::Ed25519).unwrap();
    let mut t = Targets::empty(NonZeroU64::MIN, crate::tuf::memory::in_days(9));
    for i in 0..n {
        t.targets.insert(format!("v{i}"), file(i));
    }
    let bytes = crate::tuf::editor::sign(&t, &[&key]).unwrap();
    let keys = BTreeMap::from([(
        key.public_key().key_id(),
        crate::tuf::metadata::Key::from_public(key.public_key()),
    )]);
    let ids = vec![key.public_key().key_id()];
    let auth = Authority {
        keys: &keys,
        keyids: &ids,
        threshold: NonZeroU64::MIN,
    };
    let verified: Verified<Targets> = Untrusted::parse("targets", bytes)
        .unwrap()
        .verify(auth)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targets.json.index");
    let fp = authority_fingerprint(auth);
    std::fs::write(&path, build(&verified, &fp, "stamp").unwrap()).unwrap();
    (dir, path, verified)
}

#[test]
fn every_target_is_found_and_absent_ones_are_not() {
    for n in [0, 1, 2, 7, 300] {
        let (_d, path, verified) = indexed(n);
        let index = TargetIndex::open(&path).unwrap();
        assert_eq!(index.header().count, n as u64);
        for (name, f) in &verified.targets {
            assert_eq!(index.lookup(name).unwrap().as_ref(), Some(f), "{name}");
        }
        for absent in ["", "v", "v00", "w", "v9999", "\u{10ffff}"] {
            assert_eq!(index.lookup(absent).unwrap(), None, "{absent}");
        }
    }
}

#[test]
fn a_flipped_byte_anywhere_is_detected() {
    let (_d, path, verified) = indexed(40);
    let good = std::fs::read(&path).unwrap();
    // Every byte position, flipped: the open or a lookup of every name fails, or
    // every answer is still the verified one (a flip in a part no lookup reads).
    for at in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        std::fs::write(&path, &bad).unwrap();
        let Ok(index) = TargetIndex::open(&path) else {
            continue;
        };
        for (name, f) in &verified.targets {
            match index.lookup(name) {
                Err(IndexError::Corrupt { .. }) => {}
                Ok(found) => assert_eq!(found.as_ref(), Some(f), "byte {at} changed {name}"),
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}

#[test]
fn truncated_or_empty_index_is_refused() {
    let (_d, path, _) = indexed(10);
    let good = std::fs::read(&path).unwrap();
    for len in [0, 10, 40, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..len]).unwrap();
        assert!(TargetIndex::open(&path).is_err(), "length {len} accepted");
    }
}

#[test]
fn entries_spliced_from_another_index_do_not_verify() {
    let (_d1, p1, _) = indexed(10);
    let (_d2, p2, _) = indexed(10);
    // Same shape, other role bytes (other key): swap the entry areas.
    let a = std::fs::read(&p1).unwrap();
    let b = std::fs::read(&p2).unwrap();
    let header_end = TargetIndex::open(&p1).unwrap().table_at as usize;
    let mut spliced = a[..header_end].to_vec();
    spliced.extend_from_slice(&b[header_end..]);
    assert_eq!(spliced.len(), a.len(), "same shape");
    std::fs::write(&p1, &spliced).unwrap();
    let index = TargetIndex::open(&p1).unwrap();
    assert!(matches!(
        index.lookup("v3"),
        Err(IndexError::Corrupt { .. })
    ));
}

#[test]
fn authority_fingerprint_changes_with_keys_and_threshold() {
    let k1 = SecretKey::generate(KeyType::Ed25519).unwrap();
    let k2 = SecretKey::generate(KeyType::Ed25519).unwrap();
    let keys: BTreeMap<_, _> = [&k1, &k2]
        .iter()
        .map(|k| {
            (
                k.public_key().key_id(),
                crate::tuf::metadata::Key::from_public(k.public_key()),
            )
        })
        .collect();
    let one = vec![k1.public_key().key_id()];
    let both = vec![k1.public_key().key_id(), k2.public_key().key_id()];
    let auth = |ids: &[crate::crypto::KeyId], t: u64| {
        authority_fingerprint(Authority {
            keys: &keys,
            keyids: ids,
            threshold: NonZeroU64::new(t).unwrap(),
        })
    };
    assert_eq!(auth(&one, 1), auth(&one, 1));
    assert_ne!(auth(&one, 1), auth(&both, 1));
    assert_ne!(auth(&both, 1), auth(&both, 2));
    let reversed = vec![k2.public_key().key_id(), k1.public_key().key_id()];
    assert_eq!(auth(&both, 2), auth(&reversed, 2));
}
