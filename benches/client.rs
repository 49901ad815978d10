//! Criterion: a warm refresh plus one target lookup, in process, for repositories
//! of 1, 100 and 10,000 targets in top-level targets, and 10,000 targets spread over
//! 256 succinct hash bins (where a lookup reads one bin, not all).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use criterion::{Criterion, criterion_group, criterion_main};
use warrant::crypto::Signer as _;
use warrant::digest::Sha256Digest;
use warrant::tuf::delegation::{bin_for, bin_name};
use warrant::tuf::memory::{MemoryRepository, MemoryState, in_days};
use warrant::tuf::metadata::{Delegations, Key, SuccinctRoles, TargetFile, Targets};

fn file(i: usize) -> TargetFile {
    let content = format!("manifest {i}");
    TargetFile {
        length: content.len() as u64,
        hashes: BTreeMap::from([(
            "sha256".to_owned(),
            Sha256Digest::of(content.as_bytes()).hex(),
        )]),
        custom: None,
        unrecognized: Default::default(),
    }
}

fn flat(n: usize) -> MemoryRepository {
    let mut repo = MemoryRepository::new().unwrap();
    let mut t = Targets::empty(NonZeroU64::MIN, in_days(365));
    for i in 0..n {
        t.targets.insert(format!("v{i}"), file(i));
    }
    repo.set_targets("targets", t, None).unwrap();
    repo.publish().unwrap();
    repo
}

fn binned(n: usize) -> MemoryRepository {
    let mut repo = MemoryRepository::new().unwrap();
    let kb = warrant::crypto::SecretKey::generate(warrant::crypto::KeyType::Ed25519).unwrap();
    let bins = SuccinctRoles {
        keyids: vec![kb.public_key().key_id()],
        threshold: NonZeroU64::MIN,
        bit_length: 8,
        name_prefix: "bin".into(),
        unrecognized: Default::default(),
    };
    let mut top = Targets::empty(NonZeroU64::MIN, in_days(365));
    top.delegations = Some(Delegations {
        keys: BTreeMap::from([(kb.public_key().key_id(), Key::from_public(kb.public_key()))]),
        roles: None,
        succinct_roles: Some(bins.clone()),
        unrecognized: Default::default(),
    });
    repo.set_targets("targets", top, None).unwrap();
    let mut per_bin: BTreeMap<String, Targets> = (0..256)
        .map(|b| {
            (
                bin_name(&bins, b),
                Targets::empty(NonZeroU64::MIN, in_days(365)),
            )
        })
        .collect();
    for i in 0..n {
        let name = format!("v{i}");
        if let Some(t) = per_bin.get_mut(&bin_for(&bins, &name)) {
            t.targets.insert(name, file(i));
        }
    }
    for (name, t) in per_bin {
        repo.set_targets(&name, t, Some(&kb)).unwrap();
    }
    repo.publish().unwrap();
    repo
}

fn warm_lookup(c: &mut Criterion, label: &str, repo: &MemoryRepository, target: &str) {
    let local = MemoryState::default();
    let mut up = repo.client(&local).unwrap();
    up.refresh().unwrap();
    assert!(up.find_target(target).unwrap().is_some());
    c.bench_function(label, |b| {
        b.iter(|| {
            let mut up = repo.client(&local).unwrap();
            up.refresh().unwrap();
            up.find_target(target).unwrap().unwrap()
        })
    });
    let fetched = repo.remote.fetched();
    println!("{label}: a warm refresh + lookup fetches {fetched:?}");
}

fn benches(c: &mut Criterion) {
    for n in [1, 100, 10_000] {
        warm_lookup(
            c,
            &format!("warm refresh + lookup, {n} targets"),
            &flat(n),
            "v0",
        );
    }
    warm_lookup(
        c,
        "warm refresh + lookup, 10000 targets in 256 bins",
        &binned(10_000),
        "v0",
    );
}

criterion_group! {
    name = client;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(client);
