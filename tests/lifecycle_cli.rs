//! Key lifecycle on the real registry (issue #6): root rotation chains, targets and
//! publisher key rotation, revocation, unsign, expiry and refresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::registry::RegistryFixture;
use common::*;

struct Repo {
    _reg: RegistryFixture,
    w: World,
    repo: String,
    root: String,
}

fn signed() -> Repo {
    let reg = RegistryFixture::start();
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    reg.push(&w.layout(), "v1", "team/app");
    let repo = reg.repo("team/app", "");
    for args in [
        vec!["init", &repo[..]],
        vec!["sign", &format!("{repo}:v1")[..]],
    ] {
        let r = w.signer(&args);
        assert_eq!(r.code, 0, "{}", r.text());
    }
    let export = w.path("export");
    assert_eq!(
        w.signer(&["export", &repo, export.to_str().unwrap()]).code,
        0
    );
    let root = export.join("1.root.json").to_str().unwrap().to_owned();
    Repo {
        _reg: reg,
        w,
        repo,
        root,
    }
}

impl Repo {
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.w.signer(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    }
    fn verify(&self, home: &str) -> Run {
        self.w.verifier(
            home,
            &["verify", &format!("{}:v1", self.repo), "--root", &self.root],
        )
    }
}

#[test]
fn a_verifier_that_cached_root_v1_follows_a_chain_of_three_rotations() {
    let r = signed();
    assert_eq!(r.verify("cached-v1").code, 0);
    for i in 1..=3 {
        r.ok(&["key", "generate", "--name", &format!("root{i}")]);
        let old = if i == 1 {
            "root".to_owned()
        } else {
            format!("root{}", i - 1)
        };
        r.ok(&[
            "key",
            "rotate",
            &r.repo,
            "--role",
            "root",
            "--remove",
            &old,
            "--add",
            &format!("root{i}"),
        ]);
    }
    let v = r.verify("cached-v1");
    assert_eq!(v.code, 0, "{}", v.text());
    // A fresh verifier pinned to root v1 also walks 1 → 4.
    assert_eq!(r.verify("fresh").code, 0);
    let s = r.ok(&["--output", "json", "inspect", &r.repo]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["roles"][0]["version"], 4);
}

#[test]
fn rotating_the_targets_and_publisher_keys_keeps_verifiers_working() {
    let r = signed();
    assert_eq!(r.verify("cached").code, 0);
    r.ok(&["key", "generate", "--name", "targets2"]);
    r.ok(&["key", "generate", "--name", "publisher2"]);
    r.ok(&[
        "key", "rotate", &r.repo, "--role", "targets", "--remove", "targets", "--add", "targets2",
    ]);
    for role in ["timestamp", "snapshot"] {
        r.ok(&[
            "key",
            "rotate",
            &r.repo,
            "--role",
            role,
            "--remove",
            "publisher",
            "--add",
            "publisher2",
        ]);
    }
    assert_eq!(r.verify("cached").code, 0);
    assert_eq!(r.verify("fresh").code, 0);
    // Signing goes on with the new keys only.
    let r2 =
        r.w.signer(&["sign", &format!("{}:v1", r.repo), "--key", "targets"]);
    assert_eq!(r2.code, 2, "the old targets key is refused: {}", r2.text());
    r.ok(&["sign", &format!("{}:v1", r.repo), "--key", "targets2"]);
}

#[test]
fn unsign_makes_verify_fail() {
    let r = signed();
    assert_eq!(r.verify("v").code, 0);
    r.ok(&["unsign", &format!("{}:v1", r.repo)]);
    let v = r.verify("v");
    assert_eq!(v.code, 1, "{}", v.text());
    assert!(v.stderr.contains("no signed target \"v1\""), "{}", v.stderr);
}

#[test]
fn an_expired_timestamp_is_rejected_and_refresh_makes_it_verify_again() {
    let r = signed();
    r.ok(&["refresh", &r.repo, "--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let v = r.verify("v");
    assert_eq!(v.code, 1, "{}", v.text());
    assert!(
        v.stderr.contains("timestamp metadata expired"),
        "{}",
        v.stderr
    );
    let s = r.w.signer(&["status", &r.repo]);
    assert_eq!(
        s.code,
        1,
        "status exits 1 when a role expired: {}",
        s.text()
    );
    r.ok(&["refresh", &r.repo]);
    assert_eq!(r.verify("v").code, 0);
    assert_eq!(r.ok(&["status", &r.repo]).code, 0);
    // Within three days of expiry, verify and inspect warn (and still succeed).
    r.ok(&["refresh", &r.repo, "--expires", "2d"]);
    let v = r.verify("v");
    assert_eq!(v.code, 0, "{}", v.text());
    assert!(
        v.stderr.contains("warning: timestamp metadata"),
        "{}",
        v.stderr
    );
    let i = r.ok(&["inspect", &r.repo]);
    assert!(
        i.stderr.contains("warning: timestamp metadata"),
        "{}",
        i.stderr
    );
}

#[test]
fn metadata_signed_only_by_a_revoked_key_is_never_trusted_again() {
    // On a layout, so the test can play the attacker who kept the revoked key.
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    make_image(&w.layout(), "evil", "evil");
    let repo = w.oci("");
    for args in [
        vec!["init", &repo[..]],
        vec!["key", "generate", "--name", "t2"],
    ] {
        assert_eq!(w.signer(&args).code, 0);
    }
    assert_eq!(
        w.signer(&["key", "rotate", &repo, "--role", "targets", "--add", "t2"])
            .code,
        0
    );
    assert_eq!(w.signer(&["sign", &w.oci(":v1")]).code, 0);
    let export = w.path("export");
    assert_eq!(
        w.signer(&["export", &repo, export.to_str().unwrap()]).code,
        0
    );
    let pin = export.join("1.root.json");
    assert_eq!(
        w.verifier(
            "v",
            &["verify", &w.oci(":v1"), "--root", pin.to_str().unwrap()]
        )
        .code,
        0
    );
    let r = w.signer(&["key", "revoke", &repo, "targets"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(
        w.verifier("v", &["verify", &w.oci(":v1")]).code,
        0,
        "still signed by t2"
    );
    // The holder of the revoked key (and of the publisher key) signs `evil` as v1.
    forge_with_revoked_key(&w);
    let v = w.verifier("v", &["verify", &w.oci(":evil")]);
    assert_eq!(v.code, 1, "{}", v.text());
    assert!(
        v.stderr
            .contains("targets metadata is not signed by enough keys"),
        "{}",
        v.stderr
    );
    let v = w.verifier(
        "fresh",
        &["verify", &w.oci(":evil"), "--root", pin.to_str().unwrap()],
    );
    assert_eq!(v.code, 1, "{}", v.text());
}

/// Publish a targets version listing `evil`, signed by the revoked `targets` key,
/// with snapshot and timestamp properly signed by the (stolen) publisher key.
fn forge_with_revoked_key(w: &World) {
    use std::collections::BTreeMap;
    use warrant::crypto::keystore::{KeyStore, Passphrase};
    use warrant::store::{Location, NewFile, Store};
    use warrant::tuf::editor;
    use warrant::tuf::metadata::{Snapshot, TargetFile, Targets, Timestamp};
    let keys = KeyStore::new(&w.path("signer"));
    let pass = Passphrase::new("test passphrase".into()).unwrap();
    let load = |name: &str| keys.load(&keys.find(name).unwrap().keyid, &pass).unwrap();
    let (revoked, publisher) = (load("targets"), load("publisher"));
    let store = warrant::store::layout::LayoutStore::open(Location::Layout(w.layout())).unwrap();
    let listing = store.listing().unwrap().unwrap();
    let read = |suffix: &str| -> (String, serde_json::Value) {
        let f = listing
            .files
            .iter()
            .find(|f| f.name.ends_with(suffix) && !f.pending)
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&store.read_file(f, 1 << 20).unwrap()).unwrap();
        (f.name.clone(), v["signed"].clone())
    };
    let (_, t) = read(".targets.json");
    let (_, s) = read(".snapshot.json");
    let (_, ts) = read("timestamp.json");
    let mut t: Targets = serde_json::from_value(t).unwrap();
    let mut s: Snapshot = serde_json::from_value(s).unwrap();
    let mut ts: Timestamp = serde_json::from_value(ts).unwrap();
    let evil = store
        .resolve(&warrant::store::ImageRef::parse(&w.oci(":evil")).unwrap())
        .unwrap();
    t.targets.insert(
        "evil".into(),
        TargetFile {
            length: evil.size,
            hashes: BTreeMap::from([("sha256".to_owned(), evil.digest.hex())]),
            custom: None,
            unrecognized: Default::default(),
        },
    );
    t.version = t.version.checked_add(1).unwrap();
    let t_bytes = editor::sign(&t, &[&revoked]).unwrap();
    s.version = s.version.checked_add(1).unwrap();
    s.meta
        .insert("targets.json".into(), editor::meta_for(t.version, &t_bytes));
    let s_bytes = editor::sign(&s, &[&publisher]).unwrap();
    ts.version = ts.version.checked_add(1).unwrap();
    ts.meta.insert(
        "snapshot.json".into(),
        editor::meta_for(s.version, &s_bytes),
    );
    let ts_bytes = editor::sign(&ts, &[&publisher]).unwrap();
    let mut files: Vec<NewFile> = listing
        .files
        .iter()
        .filter(|f| f.name.ends_with(".root.json"))
        .map(|f| NewFile {
            name: f.name.clone(),
            bytes: store.read_file(f, 1 << 20).unwrap(),
            pending: false,
        })
        .collect();
    files.push(NewFile {
        name: format!("{}.targets.json", t.version),
        bytes: t_bytes,
        pending: false,
    });
    files.push(NewFile {
        name: format!("{}.snapshot.json", s.version),
        bytes: s_bytes,
        pending: false,
    });
    files.push(NewFile {
        name: "timestamp.json".into(),
        bytes: ts_bytes,
        pending: false,
    });
    store.publish(&files, Some(&listing.digest)).unwrap();
}

#[test]
fn a_ca_made_with_openssl_pins_the_root_and_other_cas_or_expired_leaves_are_refused() {
    let reg = RegistryFixture::start();
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    reg.push(&w.layout(), "v1", "team/app");
    let repo = reg.repo("team/app", "");
    let (ca, ca_key) = openssl_ca(w.dir.path(), "Test Root CA", 30);
    let (other_ca, _) = openssl_ca(w.dir.path(), "Other CA", 30);
    let ok = |args: &[&str]| {
        let r = w.signer(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    };
    ok(&["key", "generate", "--name", "rootk"]);
    let r = ok(&[
        "key",
        "certify",
        "rootk",
        "--ca-cert",
        ca.to_str().unwrap(),
        "--ca-key",
        ca_key.to_str().unwrap(),
        "--days",
        "2",
    ]);
    assert!(
        r.stdout.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        r.stdout
    );
    // openssl itself agrees the leaf chains to the CA.
    let leaf = w.path("leaf.pem");
    std::fs::write(&leaf, &r.stdout).unwrap();
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    ok(&["init", &repo, "--root-key", "rootk"]);
    ok(&["sign", &format!("{repo}:v1")]);
    let policy = |name: &str, ca: &std::path::Path| {
        let p = w.path(&format!("{name}.toml"));
        std::fs::write(
            &p,
            format!(
                "[[repository]]\nmatch = \"{}/*/*\"\nca = \"{}\"\n",
                reg.host(),
                ca.display()
            ),
        )
        .unwrap();
        p.to_str().unwrap().to_owned()
    };
    let image = format!("{repo}:v1");
    let r = w.verifier("v", &["verify", &image, "--policy", &policy("good", &ca)]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = w.verifier(
        "other",
        &["verify", &image, "--policy", &policy("other", &other_ca)],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("not issued by"), "{}", r.stderr);
    // Three days later the two-day leaf has expired (the CA and timestamp have not).
    let mut c = std::process::Command::new("faketime");
    c.args([
        "-f",
        "+3d",
        env!("CARGO_BIN_EXE_warrant"),
        "verify",
        &image,
        "--policy",
        &policy("good2", &ca),
    ])
    .env("WARRANT_HOME", w.path("late"));
    let r = w.run(c);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
}

#[test]
fn rotating_and_revoking_a_delegated_roles_keys_keeps_its_targets_trusted() {
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    let repo = w.oci("");
    for args in [
        vec!["init", &repo[..]],
        vec!["key", "generate", "--name", "a"],
        vec!["key", "generate", "--name", "b"],
        vec!["key", "generate", "--name", "c"],
        vec!["delegation", "add", &repo, "qa", "--key", "a"],
    ] {
        let r = w.signer(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    }
    let image = w.oci(":v1");
    assert_eq!(w.signer(&["sign", &image, "--role", "qa"]).code, 0);
    let export = w.path("export");
    assert_eq!(
        w.signer(&["export", &repo, export.to_str().unwrap()]).code,
        0
    );
    let policy = w.path("policy.toml");
    std::fs::write(
        &policy,
        format!("[[repository]]\nmatch = \"oci:{}\"\nroot = \"export/1.root.json\"\nrequire-roles = [\"qa\"]\n", w.layout().display()),
    )
    .unwrap();
    let verify = |home: &str| {
        w.verifier(
            home,
            &["verify", &image, "--policy", policy.to_str().unwrap()],
        )
    };
    assert_eq!(verify("v").code, 0);
    let r = w.signer(&[
        "key", "rotate", &repo, "--role", "qa", "--remove", "a", "--add", "b",
    ]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(verify("v").code, 0, "re-signed by the new key");
    let r = w.signer(&["sign", &image, "--role", "qa", "--key", "a"]);
    assert_eq!(r.code, 2, "the removed key is refused: {}", r.text());
    assert_eq!(
        w.signer(&["key", "rotate", &repo, "--role", "qa", "--add", "c"])
            .code,
        0
    );
    let r = w.signer(&["key", "revoke", &repo, "b"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let v = verify("v");
    assert_eq!(v.code, 0, "{}", v.text());
    let r = w.signer(&["--output", "json", "delegation", "list", &repo]);
    let roles: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(roles[0]["keyids"].as_array().unwrap().len(), 1);
}
