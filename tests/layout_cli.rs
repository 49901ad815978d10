//! End to end on an OCI layout: init → sign → verify, and every tampering the
//! foundation issue (#2) lists is rejected with exit 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn init_sign_verify_on_a_layout() {
    let w = World::new();
    let (root, digest) = w.signed_v1();
    let r = w.verifier(
        "v",
        &["verify", &w.oci(":v1"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(
        r.stdout.contains(&format!("@{digest}")),
        "prints the verified digest: {}",
        r.stdout
    );
    // Warm: the cache alone anchors trust now.
    let r = w.verifier("v", &["--output", "json", "verify", &w.oci(":v1")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["digest"], digest);
    assert_eq!(v["role"], "targets");
    assert_eq!(v["target"], "v1");
}

#[test]
fn signing_a_second_tag_keeps_the_first() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    make_image(&w.layout(), "v2", "hello v2");
    assert_eq!(w.signer(&["sign", &w.oci(":v2")]).code, 0);
    for tag in [":v1", ":v2"] {
        let r = w.verifier(
            "v",
            &["verify", &w.oci(tag), "--root", root.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{tag}: {}", r.text());
    }
}

#[test]
fn digest_references_verify_and_pin_the_manifest() {
    let w = World::new();
    let (root, digest) = w.signed_v1();
    let pin = root.to_str().unwrap();
    let r = w.verifier(
        "v",
        &["verify", &w.oci(&format!(":v1@{digest}")), "--root", pin],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    // A digest-only reference is a different target path: unsigned until signed.
    let r = w.verifier(
        "v",
        &["verify", &w.oci(&format!("@{digest}")), "--root", pin],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert_eq!(w.signer(&["sign", &w.oci(&format!("@{digest}"))]).code, 0);
    let r = w.verifier(
        "v",
        &["verify", &w.oci(&format!("@{digest}")), "--root", pin],
    );
    assert_eq!(r.code, 0, "{}", r.text());
}

#[test]
fn tag_moved_to_another_manifest_is_rejected() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let pin = root.to_str().unwrap();
    assert_eq!(
        w.verifier("warm", &["verify", &w.oci(":v1"), "--root", pin])
            .code,
        0
    );
    retag(&w.layout(), "v1", "evil");
    for home in ["warm", "cold"] {
        let r = w.verifier(home, &["verify", &w.oci(":v1"), "--root", pin]);
        assert_eq!(r.code, 1, "{home}: {}", r.text());
        assert!(r.stderr.contains("tag was moved"), "{}", r.stderr);
    }
}

#[test]
fn unsigned_tag_is_rejected() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let r = w.verifier(
        "v",
        &["verify", &w.oci(":evil"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("no signed target \"evil\""),
        "{}",
        r.stderr
    );
}

#[test]
fn one_byte_of_targets_metadata_changed_is_rejected() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let blob = metadata_blob(&w.layout(), ".targets.json");
    let mut bytes = std::fs::read(&blob).unwrap();
    let i = bytes.iter().position(|&b| b == b'v').unwrap();
    bytes[i] = b'w';
    std::fs::write(&blob, &bytes).unwrap();
    let r = w.verifier(
        "cold",
        &["verify", &w.oci(":v1"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.text());
}

#[test]
fn forged_targets_with_fixed_up_oci_digests_is_rejected() {
    // The attacker rewrites targets (same length) and fixes every OCI digest: only
    // TUF (snapshot's hash of targets) can notice.
    let w = World::new();
    let (root, digest) = w.signed_v1();
    retag(&w.layout(), "v1", "evil");
    let blob = metadata_blob(&w.layout(), ".targets.json");
    let text = String::from_utf8(std::fs::read(&blob).unwrap()).unwrap();
    let (evil, _) = make_image(&w.layout(), "evil", "evil");
    let forged = text.replace(
        digest.trim_start_matches("sha256:"),
        evil.trim_start_matches("sha256:"),
    );
    assert_ne!(forged, text);
    replace_metadata_fixing_digests(&w.layout(), ".targets.json", forged.as_bytes());
    let r = w.verifier(
        "cold",
        &["verify", &w.oci(":v1"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr
            .contains("does not match the sha256 recorded in snapshot"),
        "{}",
        r.stderr
    );
}

#[test]
fn forged_snapshot_without_the_publisher_key_is_rejected() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let blob = metadata_blob(&w.layout(), ".snapshot.json");
    let text = String::from_utf8(std::fs::read(&blob).unwrap()).unwrap();
    // Bump an expiry year: the bytes are well-formed but no longer signed.
    let forged = text.replacen("\"expires\":\"20", "\"expires\":\"21", 1);
    assert_ne!(forged, text);
    replace_metadata_fixing_digests(&w.layout(), ".snapshot.json", forged.as_bytes());
    let r = w.verifier(
        "cold",
        &["verify", &w.oci(":v1"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.text());
}

#[test]
fn expired_timestamp_is_rejected() {
    // The clock is read through libc, so faketime moves it (timestamps live 7 days).
    let w = World::new();
    let (root, _) = w.signed_v1();
    let mut c = std::process::Command::new("faketime");
    c.args([
        "-f",
        "+8d",
        env!("CARGO_BIN_EXE_warrant"),
        "verify",
        &w.oci(":v1"),
        "--root",
    ])
    .arg(&root)
    .env("WARRANT_HOME", w.path("late"));
    let r = w.run(c);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("timestamp metadata expired"),
        "{}",
        r.stderr
    );
}

#[test]
fn replaying_an_older_warrant_tuf_is_rejected_with_the_cache_intact() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let pin = root.to_str().unwrap();
    let old_index = std::fs::read(w.layout().join("index.json")).unwrap();
    make_image(&w.layout(), "v2", "hello v2");
    assert_eq!(w.signer(&["sign", &w.oci(":v2")]).code, 0);
    assert_eq!(
        w.verifier("v", &["verify", &w.oci(":v2"), "--root", pin])
            .code,
        0
    );
    let cache_before = snapshot_dir(&w.path("v/trust"));
    // The attacker serves the old (validly signed) warrant.tuf again, keeping v2's tag.
    let mut index: serde_json::Value = serde_json::from_slice(&old_index).unwrap();
    let now: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.layout().join("index.json")).unwrap()).unwrap();
    let v2 = now["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v2")
        .unwrap()
        .clone();
    index["manifests"].as_array_mut().unwrap().push(v2);
    std::fs::write(
        w.layout().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let r = w.verifier("v", &["verify", &w.oci(":v1")]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("rollback"), "{}", r.stderr);
    assert_eq!(
        snapshot_dir(&w.path("v/trust")),
        cache_before,
        "cache must be untouched"
    );
}

#[test]
fn verify_without_cache_or_pin_is_a_usage_error() {
    let w = World::new();
    w.signed_v1();
    let r = w.verifier("nopin", &["verify", &w.oci(":v1")]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("--root"), "says how to pin: {}", r.stderr);
}

#[test]
fn root_keyid_pin_accepts_the_right_keys_and_rejects_others() {
    let w = World::new();
    make_image(&w.layout(), "v1", "x");
    let r = w.signer(&["--output", "json", "init", &w.oci("")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let init: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let root_id = init["root_keyids"][0].as_str().unwrap().to_owned();
    assert_eq!(w.signer(&["sign", &w.oci(":v1")]).code, 0);
    let r = w.verifier("a", &["verify", &w.oci(":v1"), "--root-keyid", &root_id]);
    assert_eq!(r.code, 0, "{}", r.text());
    let other = init["targets_keyid"].as_str().unwrap();
    let r = w.verifier("b", &["verify", &w.oci(":v1"), "--root-keyid", other]);
    assert_eq!(r.code, 1, "{}", r.text());
}

#[test]
fn wrong_passphrase_fails_and_publishes_nothing() {
    let w = World::new();
    w.signed_v1();
    make_image(&w.layout(), "v2", "v2");
    let before = std::fs::read(w.layout().join("index.json")).unwrap();
    let mut c = w.cmd("signer", &["sign", &w.oci(":v2")]);
    c.env("WARRANT_PASSPHRASE", "wrong");
    let r = w.run(c);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("wrong passphrase"), "{}", r.stderr);
    assert!(!r.text().contains("test passphrase") && !r.text().contains("wrong\n"));
    assert_eq!(
        std::fs::read(w.layout().join("index.json")).unwrap(),
        before
    );
}

#[test]
fn init_twice_is_refused() {
    let w = World::new();
    w.signed_v1();
    let r = w.signer(&["init", &w.oci("")]);
    assert_eq!(r.code, 2, "{}", r.text());
}

#[test]
fn bad_references_and_garbage_stores_fail_cleanly() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let pin = root.to_str().unwrap();
    for bad in ["docker://x", "oci:", "oci:/x@sha256:zz"] {
        let r = w.verifier("v", &["verify", bad, "--root", pin]);
        assert_eq!(r.code, 2, "{bad}: {}", r.text());
    }
    let r = w.verifier(
        "v",
        &[
            "verify",
            &format!("oci:{}/missing:v1", w.dir.path().display()),
            "--root",
            pin,
        ],
    );
    assert_eq!(r.code, 3, "{}", r.text());
    for garbage in [&b"{"[..], b"[]", b"{\"manifests\": 7}", &[0xff; 10]] {
        std::fs::write(w.layout().join("index.json"), garbage).unwrap();
        let r = w.verifier("g", &["verify", &w.oci(":v1"), "--root", pin]);
        assert!(r.code == 1 || r.code == 3, "{}", r.text());
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn oversized_metadata_is_rejected_without_reading_it_all() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let mut huge = std::fs::read(metadata_blob(&w.layout(), "timestamp.json")).unwrap();
    huge.extend(std::iter::repeat_n(b' ', 100_000));
    replace_metadata_fixing_digests(&w.layout(), "timestamp.json", &huge);
    let r = w.verifier(
        "cold",
        &["verify", &w.oci(":v1"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("limit"), "{}", r.stderr);
}

#[test]
fn keys_are_listed_and_json_output_parses() {
    let w = World::new();
    let r = w.signer(&["key", "generate", "--type", "ecdsa", "--name", "ci"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let id = r.stdout.trim().to_owned();
    assert_eq!(id.len(), 64);
    let r = w.signer(&["--output", "json", "key", "list"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["keyid"], id);
    assert_eq!(v[0]["keytype"], "ecdsa");
    assert_eq!(v[0]["scheme"], "ecdsa-sha2-nistp256");
}

#[test]
fn inspect_shows_roles_and_targets() {
    let w = World::new();
    let (root, digest) = w.signed_v1();
    let r = w.verifier(
        "i",
        &[
            "--output",
            "json",
            "inspect",
            &w.oci(""),
            "--root",
            root.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["targets"][0]["target"], "v1");
    assert_eq!(
        v["targets"][0]["size"],
        v["targets"][0]["size"].as_u64().unwrap()
    );
    assert!(v["keys"][0]["keyid"].is_string() && v["keys"][0]["keytype"] == "ed25519");
    assert_eq!(v["targets"][0]["digest"], digest);
    let names: Vec<&str> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "targets", "snapshot", "timestamp"]);
}

#[test]
fn ecdsa_p256_repositories_sign_and_verify() {
    // Regression: PEM keys hold newlines; files must be plain JSON, not canonical.
    let w = World::new();
    make_image(&w.layout(), "v1", "p256");
    assert_eq!(
        w.signer(&["init", &w.oci(""), "--key-type", "ecdsa"]).code,
        0
    );
    assert_eq!(w.signer(&["sign", &w.oci(":v1")]).code, 0);
    let export = w.path("export");
    assert_eq!(
        w.signer(&["export", &w.oci(""), export.to_str().unwrap()])
            .code,
        0
    );
    let root = export.join("1.root.json");
    let r = w.verifier(
        "v",
        &["verify", &w.oci(":v1"), "--root", root.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.text());
}

#[test]
fn a_root_that_declares_a_pinned_key_id_for_another_key_is_refused() {
    // The attacker publishes a repository whose root lists *their* key under the key
    // id the verifier pinned, and signs everything with it under that label.
    use std::collections::BTreeMap;
    use std::num::NonZeroU64;
    use warrant::crypto::{KeyId, KeyType, SecretKey, Signer as _};
    use warrant::store::{Location, NewFile, Store};
    use warrant::tuf::editor;
    use warrant::tuf::metadata::{Key, RoleKeys, Targets};

    let w = World::new();
    make_image(&w.layout(), "v1", "real");
    let r = w.signer(&["--output", "json", "init", &w.oci("")]);
    let pinned = serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["root_keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();

    let evil = World::new();
    make_image(&evil.layout(), "v1", "evil");
    let attacker = SecretKey::generate(KeyType::Ed25519).unwrap();
    let label = KeyId(pinned.clone());
    let forge = |value: serde_json::Value| -> Vec<u8> {
        let msg = warrant::tuf::canonical::to_canonical(&value).unwrap();
        let sig = hex::encode(attacker.sign(&msg).unwrap());
        serde_json::to_vec(
            &serde_json::json!({"signatures": [{"keyid": pinned, "sig": sig}], "signed": value}),
        )
        .unwrap()
    };
    let one = NonZeroU64::MIN;
    let later = editor::expiry_in(chrono::Utc::now(), chrono::Duration::days(30));
    let role = RoleKeys {
        keyids: vec![label.clone()],
        threshold: one,
        unrecognized: Default::default(),
    };
    let mut root = editor::new_root(
        &editor::RoleSpec {
            keys: vec![],
            threshold: one,
        },
        &editor::RoleSpec {
            keys: vec![],
            threshold: one,
        },
        &editor::RoleSpec {
            keys: vec![],
            threshold: one,
        },
        &editor::RoleSpec {
            keys: vec![],
            threshold: one,
        },
        later,
    );
    root.keys = BTreeMap::from([(label.clone(), Key::from_public(attacker.public_key()))]);
    for r in root.roles.values_mut() {
        *r = role.clone();
    }
    let store =
        warrant::store::layout::LayoutStore::create_or_open(Location::Layout(evil.layout()))
            .unwrap();
    let image = store
        .resolve(&warrant::store::ImageRef::parse(&evil.oci(":v1")).unwrap())
        .unwrap();
    let mut targets = Targets::empty(one, later);
    targets.targets.insert(
        "v1".into(),
        warrant::tuf::metadata::TargetFile {
            length: image.size,
            hashes: BTreeMap::from([("sha256".to_owned(), image.digest.hex())]),
            custom: None,
            unrecognized: Default::default(),
        },
    );
    let root_b = forge(serde_json::to_value(&root).unwrap());
    let t_b = forge(serde_json::to_value(&targets).unwrap());
    let snap = editor::new_snapshot(
        one,
        later,
        BTreeMap::from([("targets.json".to_owned(), editor::meta_for(one, &t_b))]),
    );
    let s_b = forge(serde_json::to_value(&snap).unwrap());
    let ts = editor::new_timestamp(one, later, one, &s_b);
    let ts_b = forge(serde_json::to_value(&ts).unwrap());
    let files = [
        ("1.root.json", root_b),
        ("1.targets.json", t_b),
        ("1.snapshot.json", s_b),
        ("timestamp.json", ts_b),
    ]
    .map(|(n, b)| NewFile {
        name: n.into(),
        bytes: b,
        pending: false,
    });
    store.publish(&files, None).unwrap();

    let r = evil.verifier(
        "victim",
        &["verify", &evil.oci(":v1"), "--root-keyid", &pinned],
    );
    assert_eq!(
        r.code,
        1,
        "a forged key-id label must not satisfy the pin: {}",
        r.text()
    );
    // On the real repository the full id pins; a short prefix does not (32 bits
    // could be brute-forced): it is refused as a usage error when read (issue
    // #12 item 5; this test asserted exit 1 before).
    assert_eq!(w.signer(&["sign", &w.oci(":v1")]).code, 0);
    let r = w.verifier("full", &["verify", &w.oci(":v1"), "--root-keyid", &pinned]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = w.verifier(
        "short",
        &["verify", &w.oci(":v1"), "--root-keyid", &pinned[..8]],
    );
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("32 to 64 hex digits"), "{}", r.stderr);
}
