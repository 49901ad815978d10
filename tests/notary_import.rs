//! Issue #16: a Notary v1 repository made by the real `notary` client against a real
//! `notary-server` is imported, verified first, and every signed tag verifies in
//! warrant afterwards; a wrong anchor or a tampered server response imports nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "notary/fixture.rs"]
mod fixture;

use common::faults::{Fault, FaultProxy, Inject};
use common::registry::RegistryFixture;
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
    import_to(w, n, server, &w.oci(""), "signer", extra, passphrases)
}

/// `warrant import notary` into `to` as the warrant home `home`.
fn import_to(
    w: &World,
    n: &NotaryFixture,
    server: &str,
    to: &str,
    home: &str,
    extra: &[&str],
    passphrases: &[(&str, &str)],
) -> common::Run {
    let oci = to.to_owned();
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
    let mut c = w.cmd(home, &args);
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
    // The staging repository the import built in is gone.
    let staging = std::fs::read_dir(w.path("signer/staging")).unwrap().count();
    assert_eq!(staging, 0);
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

/// `GET /v2/<gun>/_trust/tuf/<file>` from the Notary server, as it serves it.
fn served(n: &NotaryFixture, gun: &str, file: &str) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(n.ca())
        .arg(format!("{}/v2/{gun}/_trust/tuf/{file}", n.url))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {gun} {file}");
    out.stdout
}

/// The Notary root key id of a root.json (its single root key).
fn notary_root_keyid(root_json: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(root_json).unwrap();
    v["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn root_rotated_twice_is_followed_version_by_version_from_root_v1() {
    let w = World::new();
    let n = notary_repository(&w);
    let cached = n.trust_dir().join(format!("tuf/{GUN}/metadata/root.json"));
    let v1 = w.path("root-v1.json");
    std::fs::copy(&cached, &v1).unwrap();
    n.notary_answering(&["key", "rotate", GUN, "root"], "yes\n");
    n.notary_answering(&["key", "rotate", GUN, "root"], "yes\n");
    // Root v3 is signed by v2's key and its own, not by v1's: only the walk
    // through 2.root.json reaches it.
    let current = notary_root_keyid(&served(&n, GUN, "root.json"));
    assert_ne!(current, notary_root_keyid(&std::fs::read(&v1).unwrap()));
    let r = import(&w, &n, &n.url, &["--root", v1.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(
        r.stdout
            .contains(&format!("root key: Notary {current} = warrant ")),
        "{}",
        r.stdout
    );
    for tag in ["v1", "v2"] {
        let v = w.signer(&["verify", &w.oci(&format!(":{tag}"))]);
        assert_eq!(v.code, 0, "verify {tag}: {}", v.text());
    }
}

/// Root v2 of another repository, served in place of this one's (set before the
/// proxy starts; the proxy takes a plain function).
static FORGED_V2: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

#[test]
fn forged_root_v2_not_signed_by_root_v1_is_refused_and_nothing_is_published() {
    let w = World::new();
    let n = notary_repository(&w);
    let v1 = w.path("root-v1.json");
    std::fs::copy(
        n.trust_dir().join(format!("tuf/{GUN}/metadata/root.json")),
        &v1,
    )
    .unwrap();
    n.notary_answering(&["key", "rotate", GUN, "root"], "yes\n");
    n.notary_answering(&["key", "rotate", GUN, "root"], "yes\n");
    // A well-formed, self-signed root version 2 whose keys v1 never vouched for.
    let other = "registry.test/other";
    n.notary(&["init", other]);
    n.notary(&["publish", other]);
    n.notary_answering(&["key", "rotate", other, "root"], "yes\n");
    let forged = served(&n, other, "2.root.json");
    let parsed: serde_json::Value = serde_json::from_slice(&forged).unwrap();
    assert_eq!(parsed["signed"]["version"], 2);
    FORGED_V2.set(forged).unwrap();
    let proxy = fixture::tampering_proxy(&n, "/2.root.json", |_| FORGED_V2.get().unwrap().clone());
    let r = import(&w, &n, &proxy, &["--root", v1.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("not signed by the trusted root"),
        "{}",
        r.stderr
    );
    assert!(!published(&w));
}

#[test]
fn rsa_signed_delegation_verifies_and_the_import_asks_for_an_ecdsa_key() {
    let w = World::new();
    let n = notary_repository(&w);
    let (d3, l3) = make_image(&w.layout(), "v3", "hello v3");
    let (key, cert) = fixture::rsa_key_and_cert(&n.dir, "ops");
    n.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/ops",
        cert.to_str().unwrap(),
        "--all-paths",
    ]);
    n.notary(&[
        "key",
        "import",
        key.to_str().unwrap(),
        "--role",
        "targets/ops",
    ]);
    n.notary(&["publish", GUN]);
    n.notary(&[
        "addhash",
        GUN,
        "v3",
        &l3.to_string(),
        "--sha256",
        d3.trim_start_matches("sha256:"),
        "--roles",
        "targets/ops",
    ]);
    n.notary(&["publish", GUN]);
    // Notary wrote an rsa-x509 key and an rsapss signature: the dry run verifies
    // them and shows the tag the RSA role signed.
    let targets = n
        .trust_dir()
        .join(format!("tuf/{GUN}/metadata/targets.json"));
    assert!(
        std::fs::read_to_string(targets)
            .unwrap()
            .contains("rsa-x509")
    );
    let r = import(&w, &n, &n.url, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("role targets/ops -> ops"), "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("v3 ") && l.contains(" ops ")),
        "{}",
        r.stdout
    );
    // Importing means re-signing v3 as ops, and warrant does not sign with RSA:
    // refused before anything is written, naming the role to re-key.
    let r = import(&w, &n, &n.url, &[]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(
        r.stderr.contains("targets/ops") && r.stderr.contains("RSA"),
        "{}",
        r.stderr
    );
    assert!(!published(&w));
}

#[test]
fn rsa_key_beside_a_held_ecdsa_key_is_carried_as_a_public_member_of_the_role() {
    let w = World::new();
    let n = notary_repository(&w);
    // releases gets a second key, an RSA certificate nobody here holds (threshold 1).
    let (_, cert) = fixture::rsa_key_and_cert(&n.dir, "ops");
    n.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/releases",
        cert.to_str().unwrap(),
        "--all-paths",
    ]);
    n.notary(&["publish", GUN]);
    let r = import(&w, &n, &n.url, &[]);
    assert_eq!(r.code, 0, "{}", r.text());
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("role targets/releases -> releases"))
        .unwrap();
    assert!(
        line.contains(", ") && line.contains("private key imported"),
        "{line}"
    );
    let v = w.signer(&["verify", &w.oci(":v2")]);
    assert_eq!(v.code, 0, "{}", v.text());
    let list = w.signer(&["--output", "json", "delegation", "list", &w.oci("")]);
    assert_eq!(list.code, 0, "{}", list.text());
    let roles: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let releases = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "releases")
        .unwrap();
    assert_eq!(
        releases["keyids"].as_array().unwrap().len(),
        2,
        "{releases}"
    );
}

/// Status of a HEAD of `warrant.tuf` in `repo`, straight to the registry.
fn warrant_tuf_status(reg: &RegistryFixture, repo: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "-H"])
        .arg("Accept: application/vnd.oci.image.manifest.v1+json")
        .arg(format!(
            "http://{}/v2/{repo}/manifests/warrant.tuf",
            reg.host()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn registry_failure_during_the_import_publishes_nothing_and_a_rerun_imports() {
    let w = World::new();
    let n = notary_repository(&w);
    let reg = RegistryFixture::start();
    let proxy = FaultProxy::start(&reg.host());
    let to = |repo: &str| {
        // The manifests byte for byte, so the registry serves what Notary signed.
        for tag in ["v1", "v2"] {
            RegistryFixture::skopeo_copy(
                &format!("oci:{}:{tag}", w.layout().display()),
                &format!("docker://{}", reg.repo(repo, &format!(":{tag}"))),
                &["--preserve-digests"],
            );
        }
        format!("{}/{repo}", proxy.host())
    };
    let p = &fixture::PASSPHRASES;
    // A clean import, counted: the whole repository goes out in one publish (one
    // manifest PUT, after every blob).
    let dest = to("team/count");
    proxy.arm(None);
    let r = import_to(&w, &n, &n.url, &dest, "count", &[], p);
    assert_eq!(r.code, 0, "{}", r.text());
    let seen = proxy.seen();
    let writes: Vec<usize> = seen
        .iter()
        .filter(|s| matches!(s.method.as_str(), "PUT" | "POST" | "PATCH"))
        .map(|s| s.index)
        .collect();
    let manifests: Vec<usize> = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains("/manifests/"))
        .map(|s| s.index)
        .collect();
    assert_eq!(manifests.len(), 1, "{seen:?}");
    assert_eq!(writes.last(), manifests.last(), "{seen:?}");
    // The registry fails for good from the first write, a middle one, and the
    // manifest PUT itself: each time the destination has no warrant.tuf.
    // Last, the manifest PUT answered 201 and never stored (a lost write).
    let cases = [
        (writes[0], Fault::Status(503)),
        (writes[writes.len() / 2], Fault::Status(503)),
        (manifests[0], Fault::Status(503)),
        (manifests[0], Fault::LostPut),
    ];
    let mut last = String::new();
    for (k, (index, fault)) in cases.into_iter().enumerate() {
        let repo = format!("team/case{k}");
        let dest = to(&repo);
        proxy.arm(Some(Inject {
            index,
            fault,
            persist: fault != Fault::LostPut,
        }));
        let r = import_to(&w, &n, &n.url, &dest, &format!("case{k}"), &[], p);
        assert_eq!(r.code, 3, "fault at request {index}: {}", r.text());
        assert_eq!(
            warrant_tuf_status(&reg, &repo),
            "404",
            "fault at request {index}"
        );
        last = dest;
    }
    // The same import again, registry healthy: nothing stands in its way.
    proxy.arm(None);
    let r = import_to(&w, &n, &n.url, &last, "rerun", &[], p);
    assert_eq!(r.code, 0, "{}", r.text());
    for tag in ["v1", "v2"] {
        let v = w.run(w.cmd("rerun", &["verify", &format!("{last}:{tag}")]));
        assert_eq!(v.code, 0, "verify {tag}: {}", v.text());
    }
}
