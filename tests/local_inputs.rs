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
    let r = w.signer(&["key", "import", &f, "--name", "x"]);
    assert_eq!(r.code, 2, "key import FIFO: {}", r.text());
    let r = w.verifier("v", &["verify", &w.oci(":v1"), "--policy", &f]);
    assert_eq!(r.code, 2, "--policy FIFO: {}", r.text());
}

#[test]
fn huge_or_odd_key_names_are_refused_and_the_store_stays_usable() {
    let w = World::new();
    let long = "k".repeat(100_000);
    for bad in [&long[..], "", "-dash", "a/b", "a b", ".hidden"] {
        if bad.is_empty() {
            continue; // empty means "pick a name"
        }
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
