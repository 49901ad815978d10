//! Hostile local inputs (issue #11 item 12): files that are FIFOs, names that are
//! huge, duplicate key names (issue #12 item 7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn fifo(w: &World, name: &str) -> String {
    let path = w.path(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path.to_str().unwrap().to_owned()
}

/// Each would block forever on `open` of a FIFO; each is refused at once (exit 2).
/// The test harness's own timeout is the safety net; no timing is asserted.
#[test]
fn fifo_in_place_of_a_pin_passphrase_or_key_file_is_refused_not_waited_on() {
    let w = World::new();
    w.signed_v1();
    let f = fifo(&w, "fifo");
    let r = w.verifier("v", &["verify", &w.oci(":v1"), "--root", &f]);
    assert_eq!(r.code, 2, "--root FIFO: {}", r.text());
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    let mut c = w.cmd(
        "signer",
        &["--passphrase-file", &f, "sign", &w.oci(":evil")],
    );
    c.env_remove("WARRANT_PASSPHRASE");
    let r = w.run(c);
    assert_eq!(r.code, 2, "--passphrase-file FIFO: {}", r.text());
    // A missing passphrase file is named as such, not as the key store.
    let missing = w.path("no-such-passphrase");
    let mut c = w.cmd(
        "signer",
        &[
            "--passphrase-file",
            missing.to_str().unwrap(),
            "sign",
            &w.oci(":evil"),
        ],
    );
    c.env_remove("WARRANT_PASSPHRASE");
    let r = w.run(c);
    assert_eq!(r.code, 2, "missing --passphrase-file: {}", r.text());
    assert!(
        r.stderr.contains("cannot read the passphrase file"),
        "{}",
        r.stderr
    );
    let r = w.signer(&["key", "import", &f, "--name", "x"]);
    assert_eq!(r.code, 2, "key import FIFO: {}", r.text());
    let r = w.verifier("v", &["verify", &w.oci(":v1"), "--policy", &f]);
    assert_eq!(r.code, 2, "--policy FIFO: {}", r.text());
}

#[test]
fn huge_or_odd_key_names_are_refused_and_the_store_stays_usable() {
    let w = World::new();
    let long = "k".repeat(100_000);
    for bad in [&long[..], "-dash", "a/b", "a b", ".hidden"] {
        let r = w.signer(&["key", "generate", "--name", bad]);
        assert_eq!(r.code, 2, "{:?}: {}", &bad[..bad.len().min(20)], r.text());
    }
    let r = w.signer(&["key", "generate", "--name", "qa-alice.2"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = w.signer(&["key", "list"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("qa-alice.2"), "{}", r.stdout);
}

/// Issue #12 item 7 and item 2: a name finds one key, so a second key of the same
/// name is refused; an imported key keeps the name of its file.
#[test]
fn duplicate_key_names_are_refused_and_import_keeps_the_file_name() {
    let w = World::new();
    assert_eq!(w.signer(&["key", "generate", "--name", "alice"]).code, 0);
    let r = w.signer(&["key", "generate", "--name", "alice"]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("already has a key named"), "{}", r.stderr);
    // Two unnamed keys get distinct names.
    assert_eq!(w.signer(&["key", "generate"]).code, 0);
    assert_eq!(w.signer(&["key", "generate"]).code, 0);
    // Alice exports her public key; the admin imports it from qa-alice.pem.
    let r = w.signer(&["key", "export", "alice", "--public"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let pem = w.path("qa-alice.pem");
    std::fs::write(&pem, &r.stdout).unwrap();
    let r = w.verifier("admin", &["key", "import", pem.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = w.verifier("admin", &["key", "list"]);
    assert!(r.stdout.contains("qa-alice"), "{}", r.stdout);
}

/// Issue #12 item 7: signing a tag again with the digest it already has publishes
/// nothing (verifiers' caches stay warm) and says so; a moved tag signs anew.
#[test]
fn re_signing_an_unchanged_tag_is_a_no_op_that_says_so() {
    let w = World::new();
    w.signed_v1();
    let index = || std::fs::read(w.layout().join("index.json")).unwrap();
    let before = index();
    let r = w.signer(&["sign", &w.oci(":v1")]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("unchanged"), "{}", r.stdout);
    assert_eq!(index(), before, "nothing published");
    make_image(&w.layout(), "v1", "moved v1");
    let r = w.signer(&["sign", &w.oci(":v1")]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("published"), "{}", r.stdout);
}

/// Issue #12 item 7: a pull on one platform fetches `TAG@sha256:<child>` of a
/// signed multi-platform index; the child is trusted when the signed index lists
/// it, and only then.
#[test]
fn platform_manifest_of_a_signed_index_verifies_and_others_do_not() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let (amd64, amd64_size) = make_image(&w.layout(), "amd64", "amd64 layer");
    let (arm64, arm64_size) = make_image(&w.layout(), "arm64", "arm64 layer");
    let (stray, _) = make_image(&w.layout(), "stray", "not in the index");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64,
             "size": amd64_size, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm64,
             "size": arm64_size, "platform": {"architecture": "arm64", "os": "linux"}}
        ]
    }))
    .unwrap();
    let index_digest = put_blob(&w.layout(), &index);
    let index_path = w.layout().join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }));
    std::fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
    let r = w.signer(&["sign", &w.oci(":multi")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let pin = root.to_str().unwrap();
    let r = w.verifier(
        "v",
        &["verify", &w.oci(&format!(":multi@{arm64}")), "--root", pin],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains(&format!("@{arm64}")), "{}", r.stdout);
    assert!(r.stdout.contains("multi-platform index"), "{}", r.stdout);
    let r = w.verifier(
        "v",
        &["verify", &w.oci(&format!(":multi@{stray}")), "--root", pin],
    );
    assert_eq!(
        r.code,
        1,
        "a manifest the index does not list: {}",
        r.text()
    );
    let r = w.verifier(
        "v",
        &[
            "verify",
            &w.oci(&format!(":multi@{index_digest}")),
            "--root",
            pin,
        ],
    );
    assert_eq!(r.code, 0, "the index itself: {}", r.text());
}
