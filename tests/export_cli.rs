//! `warrant export` writes only what verified: its `1.root.json` is what verifiers
//! pin, so a registry that swapped the trust data must not get it exported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn export_verifies_first_and_writes_nothing_from_a_tampered_repository() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let genuine_root = std::fs::read(&root).unwrap();
    let repo = w.oci("");
    let out = w.path("out");
    let r = w.signer(&["-o", "json", "export", &repo, out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert!(
        files(&out).contains(&"1.root.json".to_owned()),
        "{:?}",
        files(&out)
    );
    assert!(files(&out).contains(&"timestamp.json".to_owned()));

    // A fresh home has nothing to verify against: a pin is required.
    let r = w.verifier(
        "fresh",
        &["export", &repo, w.path("fresh-out").to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("no trusted root"), "{}", r.stderr);
    let r = w.verifier(
        "pinned",
        &[
            "export",
            &repo,
            w.path("pinned-out").to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());

    // Another repository's root swapped in as 1.root.json, digests fixed up: the
    // signer's own home refuses to export it.
    let other = World::new();
    let (other_root, _) = other.signed_v1();
    replace_metadata_fixing_digests(
        &w.layout(),
        "1.root.json",
        &std::fs::read(&other_root).unwrap(),
    );
    let swapped = w.path("swapped");
    let r = w.signer(&["export", &repo, swapped.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        files(&swapped).is_empty(),
        "nothing written: {:?}",
        files(&swapped)
    );

    // A garbage timestamp: refused too; --unverified writes it, and says so.
    replace_metadata_fixing_digests(&w.layout(), "1.root.json", &genuine_root);
    replace_metadata_fixing_digests(&w.layout(), "timestamp.json", b"\0garbage");
    let garbage = w.path("garbage");
    let r = w.signer(&["export", &repo, garbage.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(files(&garbage).is_empty(), "{:?}", files(&garbage));
    let r = w.signer(&["export", &repo, garbage.to_str().unwrap(), "--unverified"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stderr.contains("without verifying"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(garbage.join("timestamp.json")).unwrap(),
        b"\0garbage"
    );
}
