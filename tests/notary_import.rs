//! Issue #16: a Notary v1 repository made by the real `notary` client against a real
//! `notary-server` is imported, verified first, and every signed tag verifies in
//! warrant afterwards; a wrong anchor or a tampered server response imports nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "notary/fixture.rs"]
mod fixture;

use common::{World, make_image, retag};
use fixture::NotaryFixture;

const GUN: &str = "registry.test/team/app";

/// `v1` signed by targets, `v2` by the `targets/releases` delegation whose key the
/// user imported with `notary key import`.
fn notary_repository(w: &World) -> NotaryFixture {
    let n = NotaryFixture::start(&w.path("notary"));
    let (d1, l1) = make_image(&w.layout(), "v1", "hello v1");
    let (d2, l2) = make_image(&w.layout(), "v2", "hello v2");
    n.notary(&["init", GUN]);
    n.notary(&[
        "addhash",
        GUN,
        "v1",
        &l1.to_string(),
        "--sha256",
        d1.trim_start_matches("sha256:"),
    ]);
    n.notary(&["publish", GUN]);
    let (key, cert) = fixture::key_and_cert(&n.dir, "releases");
    n.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/releases",
        cert.to_str().unwrap(),
        "--all-paths",
    ]);
    n.notary(&[
        "key",
        "import",
        key.to_str().unwrap(),
        "--role",
        "targets/releases",
    ]);
    n.notary(&["publish", GUN]);
    n.notary(&[
        "addhash",
        GUN,
        "v2",
        &l2.to_string(),
        "--sha256",
        d2.trim_start_matches("sha256:"),
        "--roles",
        "targets/releases",
    ]);
    n.notary(&["publish", GUN]);
    n
}

fn import(w: &World, n: &NotaryFixture, server: &str, extra: &[&str]) -> common::Run {
    import_with(w, n, server, extra, &fixture::PASSPHRASES)
}

fn import_with(
    w: &World,
    n: &NotaryFixture,
    server: &str,
    extra: &[&str],
    passphrases: &[(&str, &str)],
) -> common::Run {
    let oci = w.oci("");
    let trust = n.trust_dir();
    let ca = n.ca();
    let mut args = vec![
        "import",
        "notary",
        GUN,
        "--server",
        server,
        "--server-ca",
        ca.to_str().unwrap(),
        "--trust-dir",
        trust.to_str().unwrap(),
        "--to",
        &oci,
    ];
    args.extend_from_slice(extra);
    let mut c = w.cmd("signer", &args);
    for (k, _) in fixture::PASSPHRASES {
        c.env_remove(k);
    }
    for (k, v) in passphrases {
        c.env(k, v);
    }
    w.run(c)
}

fn published(w: &World) -> bool {
    std::fs::read_to_string(w.layout().join("index.json"))
        .unwrap()
        .contains("warrant.tuf")
}

#[test]
fn notary_repository_with_releases_delegation_imports_and_every_tag_verifies() {
    let w = World::new();
    let n = notary_repository(&w);
    let r = import(&w, &n, &n.url, &[]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("root key: Notary "), "{}", r.stdout);
    assert!(
        r.stdout.contains("role targets/releases -> releases"),
        "{}",
        r.stdout
    );
    for tag in ["v1", "v2"] {
        let v = w.signer(&["verify", &w.oci(&format!(":{tag}"))]);
        assert_eq!(v.code, 0, "verify {tag}: {}", v.text());
    }
    // A verifier with nothing cached pins the same root key by its new id.
    let new_root_id = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("root key: Notary "))
        .and_then(|l| l.split(" = warrant ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    for tag in ["v1", "v2"] {
        let v = w.verifier(
            "fresh",
            &[
                "verify",
                &w.oci(&format!(":{tag}")),
                "--root-keyid",
                &new_root_id,
            ],
        );
        assert_eq!(v.code, 0, "fresh verify {tag}: {}", v.text());
    }
    // inspect shows the signers `docker trust inspect --pretty` showed: the
    // releases role holding v2, targets holding v1.
    let i = w.signer(&["inspect", &w.oci("")]);
    assert_eq!(i.code, 0, "{}", i.text());
    assert!(i.stdout.contains("releases"), "{}", i.stdout);
    // Signing goes on with the imported releases key.
    make_image(&w.layout(), "v3", "hello v3");
    let s = w.signer(&["sign", &w.oci(":v3"), "--role", "releases"]);
    assert_eq!(s.code, 0, "{}", s.text());
    let v = w.signer(&["verify", &w.oci(":v3")]);
    assert_eq!(v.code, 0, "{}", v.text());
}

#[test]
fn rotated_notary_root_is_followed_from_the_root_trusted_before() {
    let w = World::new();
    let n = notary_repository(&w);
    let before = w.path("root-before.json");
    std::fs::copy(
        n.trust_dir().join(format!("tuf/{GUN}/metadata/root.json")),
        &before,
    )
    .unwrap();
    n.notary_answering(&["key", "rotate", GUN, "root"], "yes\n");
    let r = import(&w, &n, &n.url, &["--root", before.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    // The imported root key is the new one, which the old root did not list.
    let old_root = std::fs::read_to_string(&before).unwrap();
    let imported = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("root key: Notary "))
        .and_then(|l| l.split(' ').next())
        .unwrap();
    assert!(!old_root.contains(imported), "{}", r.stdout);
    for tag in ["v1", "v2"] {
        let v = w.signer(&["verify", &w.oci(&format!(":{tag}"))]);
        assert_eq!(v.code, 0, "verify {tag}: {}", v.text());
    }
}

#[test]
fn root_of_another_notary_repository_is_refused_and_nothing_is_published() {
    let w = World::new();
    let n = notary_repository(&w);
    n.notary(&["init", "registry.test/other"]);
    n.notary(&["publish", "registry.test/other"]);
    let wrong = n
        .trust_dir()
        .join("tuf/registry.test/other/metadata/root.json");
    let r = import(&w, &n, &n.url, &["--root", wrong.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("not signed by the trusted root"),
        "{}",
        r.stderr
    );
    assert!(!published(&w));
}

#[test]
fn targets_altered_by_the_server_is_refused_and_nothing_is_published() {
    let w = World::new();
    let n = notary_repository(&w);
    let proxy = fixture::tampering_proxy(&n, "/targets.json", |body| {
        // Re-point a tag to another manifest, same size: the snapshot's hash catches it.
        let text = String::from_utf8(body).unwrap();
        let at = text.find("\"sha256\":\"").unwrap() + 10;
        let flipped = if &text[at..=at] == "A" { "B" } else { "A" };
        format!("{}{flipped}{}", &text[..at], &text[at + 1..]).into_bytes()
    });
    let r = import(&w, &n, &proxy, &[]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("does not match its listed sha256"),
        "{}",
        r.stderr
    );
    assert!(!published(&w));
}

#[test]
fn targets_longer_than_the_snapshot_lists_is_refused_as_untrusted() {
    let w = World::new();
    let n = notary_repository(&w);
    let proxy = fixture::tampering_proxy(&n, "/targets.json", |mut body| {
        body.extend_from_slice(&[b' '; 4096]);
        body
    });
    let r = import(&w, &n, &proxy, &[]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("longer than the"), "{}", r.stderr);
    assert!(!published(&w));
}

#[test]
fn server_targets_older_than_the_trust_dir_saw_is_refused_as_rollback() {
    let w = World::new();
    let n = notary_repository(&w);
    // The user's notary client last saw targets version 99: the server's is older.
    let cached = n
        .trust_dir()
        .join(format!("tuf/{GUN}/metadata/targets.json"));
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cached).unwrap()).unwrap();
    v["signed"]["version"] = 99.into();
    std::fs::write(&cached, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = import(&w, &n, &n.url, &[]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("older than the trusted 99"),
        "{}",
        r.stderr
    );
    assert!(!published(&w));
}

#[test]
fn releases_tags_without_the_releases_key_import_nothing() {
    let w = World::new();
    let n = notary_repository(&w);
    // The delegation passphrase is withheld: the releases key cannot be unlocked.
    let r = import_with(&w, &n, &n.url, &[], &fixture::PASSPHRASES[..3]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("targets/releases"), "{}", r.stderr);
    assert!(!published(&w));
}

#[test]
fn drifted_tag_is_shown_and_refused_unless_allowed() {
    let w = World::new();
    let n = notary_repository(&w);
    retag(&w.layout(), "v1", "v2");
    let r = import(&w, &n, &n.url, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("drift"), "{}", r.stdout);
    assert!(r.stdout.contains("nothing published"), "{}", r.stdout);
    assert!(!published(&w));
    let r = import(&w, &n, &n.url, &[]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(!published(&w));
    let r = import(&w, &n, &n.url, &["--allow-drift"]);
    assert_eq!(r.code, 0, "{}", r.text());
    // The signed digest was carried over, so the drifted tag does not verify.
    assert_eq!(w.signer(&["verify", &w.oci(":v2")]).code, 0);
    assert_eq!(w.signer(&["verify", &w.oci(":v1")]).code, 1);
}
