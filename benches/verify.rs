//! Verify and sign cost on an OCI layout, measured in-process (median of N runs).
//! Prints figures; asserts nothing. Run with `make bench` or `cargo bench --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use warrant::crypto::keystore::PassphraseSource;
use warrant::ops::Context;
use warrant::ops::init::{InitOptions, init};
use warrant::ops::sign::{SignOptions, sign};
use warrant::ops::trust::Pin;
use warrant::ops::verify::verify;
use warrant::store::{ImageRef, Location};

#[path = "../tests/common/mod.rs"]
mod common;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ctx(home: &Path, pass: &Path) -> Context {
    Context::new(
        home.to_owned(),
        PassphraseSource::new(Some(pass.to_owned())),
    )
}

fn time<F: FnMut(usize)>(n: usize, mut f: F) -> Duration {
    median(
        (0..n)
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    // `cargo bench` passes --bench; test runners (cargo test --all-targets, nextest
    // --list) must not run a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "bench").unwrap();
    let layout = dir.path().join("layout");
    let tags: Vec<usize> = match std::env::var("WARRANT_BENCH_TAGS") {
        Ok(v) => v.split(',').filter_map(|t| t.parse().ok()).collect(),
        Err(_) => vec![1, 100],
    };
    for &n in &tags {
        let layout = layout.join(n.to_string());
        for i in 0..n {
            common::make_image(&layout, &format!("v{i}"), &format!("content {i}"));
        }
        let signer = ctx(&dir.path().join(format!("signer{n}")), &pass);
        let loc = Location::parse(&format!("oci:{}", layout.display())).unwrap();
        init(
            &signer,
            &loc,
            &InitOptions {
                root_keys: vec![],
                root_threshold: std::num::NonZeroU64::MIN,
                targets_key: None,
                publisher_key: None,
                key_type: warrant::crypto::KeyType::Ed25519,
                bins: Default::default(),
            },
        )
        .unwrap();
        let sign_tag = |i: usize| {
            let image = ImageRef::parse(&format!("oci:{}:v{i}", layout.display())).unwrap();
            let opts = SignOptions {
                pin: Pin::FirstUse,
                ..SignOptions::default()
            };
            sign(&signer, &image, &opts).unwrap();
        };
        let sign_time = time(n.min(20), sign_tag);
        (20..n).for_each(sign_tag);
        let root = dir.path().join(format!("root{n}.json"));
        warrant::ops::export::export(
            &signer,
            &loc,
            &dir.path().join(format!("export{n}")),
            &warrant::pin::Pin::FirstUse,
            false,
        )
        .unwrap();
        std::fs::copy(dir.path().join(format!("export{n}/1.root.json")), &root).unwrap();
        let image = ImageRef::parse(&format!("oci:{}:v0", layout.display())).unwrap();
        let cold = time(30, |i| {
            let v = ctx(&dir.path().join(format!("cold{n}-{i}")), &pass);
            verify(&v, &image, &Pin::RootFile(root.clone())).unwrap();
        });
        let warm_ctx = ctx(&dir.path().join(format!("warm{n}")), &pass);
        verify(&warm_ctx, &image, &Pin::RootFile(root.clone())).unwrap();
        // WARRANT_BENCH_PROFILE=N: spin N warm verifies (for perf record).
        if let Some(spin) = std::env::var("WARRANT_BENCH_PROFILE")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            for _ in 0..spin {
                verify(&warm_ctx, &image, &Pin::None).unwrap();
            }
        }
        let warm = time(200, |_| {
            verify(&warm_ctx, &image, &Pin::None).unwrap();
        });
        println!(
            "layout, {n:>3} targets: sign {:>8.2} ms (includes 2 scrypt key decryptions)   verify cold {:>7.3} ms   verify warm {:>7.3} ms",
            sign_time.as_secs_f64() * 1e3,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3
        );
    }
}
