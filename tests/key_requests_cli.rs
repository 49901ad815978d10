//! Issue #15 part 2: a collaborator's public key reaches the administrator through
//! the registry (`warrant key request` / `key requests`), and is taken only when the
//! fingerprint read out over another channel matches. Every person works from their
//! own home with only their own private key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::registry::RegistryFixture;
use common::requests::{Team, s};
use common::*;
use serde_json::{Value, json};

/// Only this file asks for the admin's root key id.
trait RootId {
    fn root_id(&self) -> String;
}

impl RootId for Team {
    fn root_id(&self) -> String {
        let keys = self.json("admin", &["key", "list"]);
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "root")
            .unwrap()["keyid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn on_registry(reg: &RegistryFixture) -> Team {
    Team::on_registry(reg, &["v1", "v2"])
}

fn on_layout() -> Team {
    Team::on_layout()
}

/// The README's team walkthrough with a key request: alice asks for `qa`, reads
/// her fingerprint to the admin, who adds her key with it; alice approves and
/// signs; a verifier with only the pinned root key id trusts the result.
#[test]
fn requested_key_joins_a_role_and_signs_what_a_third_home_verifies() {
    let reg = RegistryFixture::start();
    let t = on_registry(&reg);
    let root_id = t.root_id();
    let req = t.request("alice", "qa-alice", "qa", "alice, QA laptop");
    let (id, fp) = (s(&req["id"]), s(&req["fingerprint"]));
    assert_eq!(id.len(), 12);
    assert_eq!(fp.len(), 19, "four groups of four hex digits: {fp}");
    assert_eq!(s(&req["fingerprint_words"]).split(' ').count(), 6);
    let alice_keyid = s(&req["keyid"]);
    assert!(alice_keyid.starts_with(&fp.replace(' ', "")));

    let open = t.open_requests();
    assert_eq!(open.len(), 1, "{open:?}");
    let r = &open[0];
    assert_eq!(r["id"], json!(id));
    assert_eq!(r["role"], "qa");
    assert_eq!(r["fingerprint"], json!(fp));
    assert_eq!(r["note"], "alice, QA laptop");
    assert_eq!(r["valid"], true);
    assert!(r["created"].is_string(), "{r}");
    let human = t.ok("admin", &["key", "requests", &t.repo]);
    assert!(
        human.stdout.contains(&id) && human.stdout.contains(&fp),
        "{}",
        human.stdout
    );

    // The admin types what alice read to them (upper case, no spaces).
    let typed = fp.replace(' ', "").to_uppercase();
    let add = t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--request",
            &id,
            "--fingerprint",
            &typed,
        ],
    );
    assert!(add.stderr.contains("fingerprint matches"), "{}", add.stderr);
    assert!(
        add.stderr.contains(&format!("closed key request {id}")),
        "{}",
        add.stderr
    );
    assert!(t.open_requests().is_empty(), "the request is closed");

    // Alice (who holds only her key) approves the new role and signs v1 with it.
    t.ok("alice", &["approve", &t.repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &t.repo]);
    t.ok(
        "alice",
        &["sign", &format!("{}:v1", t.repo), "--role", "qa"],
    );
    t.ok("admin", &["refresh", &t.repo]);
    let v = t.run(
        "verifier",
        &[
            "verify",
            &format!("{}:v1", t.repo),
            "--root-keyid",
            &root_id,
        ],
    );
    assert_eq!(v.code, 0, "{}", v.text());
    assert!(v.stdout.contains("signed by role qa"), "{}", v.stdout);
    let roles = t.json("verifier", &["delegation", "list", &t.repo]);
    assert_eq!(roles[0]["keyids"][0], json!(alice_keyid));

    // The six-words form works as well (bob, for another role).
    let bob = t.request("bob", "docs-bob", "docs", "bob, docs");
    t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "docs",
            "--request",
            &s(&bob["id"]),
            "--fingerprint",
            &s(&bob["fingerprint_words"]),
        ],
    );
    t.ok("bob", &["approve", &t.repo, "--role", "docs"]);
    t.ok("admin", &["refresh", &t.repo]);
    let roles = t.json("verifier", &["delegation", "list", &t.repo]);
    assert_eq!(roles.as_array().unwrap().len(), 2, "{roles}");
}

/// No verifying command reads `warrant.requests`: neither in the registry's access
/// log, nor when the tag holds garbage (here: an image pushed over it).
#[test]
fn verifiers_never_read_the_requests_tag() {
    let reg = RegistryFixture::start();
    let t = on_registry(&reg);
    let root_id = t.root_id();
    t.ok("admin", &["sign", &format!("{}:v1", t.repo)]);
    t.request("alice", "qa-alice", "qa", "alice");
    let before = reg.requests().len();
    let pin = ["--root-keyid", root_id.as_str()];
    let image = format!("{}:v1", t.repo);
    let verifying: [Vec<&str>; 3] = [
        [&["verify", image.as_str()][..], &pin].concat(),
        [&["status", t.repo.as_str()][..], &pin].concat(),
        [&["inspect", t.repo.as_str()][..], &pin].concat(),
    ];
    for args in &verifying {
        t.ok("verifier", args);
    }
    let log = reg.requests();
    assert!(
        !log[before..].iter().any(|l| l.contains("warrant.requests")),
        "{:?}",
        &log[before..]
    );
    // Garbage under the tag: every verifying command still works, fresh or cached.
    RegistryFixture::skopeo_copy(
        &format!("docker://{}:v2", t.repo),
        &format!("docker://{}:warrant.requests", t.repo),
        &[],
    );
    for home in ["verifier", "fresh-verifier"] {
        for args in &verifying {
            t.ok(home, args);
        }
    }
    // The administrator is told that the tag is not requests, never offered one.
    let r = t.run("admin", &["key", "requests", &t.repo]);
    assert_ne!(r.code, 0, "{}", r.text());
    assert!(r.stderr.contains("warrant.requests"), "{}", r.stderr);
}

/// The registry (or anyone who can write to it) swaps alice's key for its own
/// and re-signs the request with it, keeping her note: the request verifies, but
/// the fingerprint alice reads out is not its key's, so it is refused.
#[test]
fn a_key_swapped_in_the_registry_is_refused_on_fingerprint_mismatch() {
    let reg = RegistryFixture::start();
    let t = on_registry(&reg);
    let alice = t.request("alice", "qa-alice", "qa", "alice, QA laptop");
    let mallory = t.request("mallory", "qa-m", "qa", "alice, QA laptop");
    // Mallory removes alice's request: only his, under her note, is left.
    t.ok(
        "mallory",
        &["key", "requests", &t.repo, "--reject", &s(&alice["id"])],
    );
    let open = t.open_requests();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["note"], "alice, QA laptop");
    assert_eq!(open[0]["valid"], true);
    let listed = s(&open[0]["id"]);
    assert_eq!(listed, s(&mallory["id"]));
    for typed in [s(&alice["fingerprint"]), s(&alice["fingerprint_words"])] {
        let r = t.run(
            "admin",
            &[
                "delegation",
                "add",
                &t.repo,
                "qa",
                "--request",
                &listed,
                "--fingerprint",
                &typed,
            ],
        );
        assert_eq!(r.code, 1, "{}", r.text());
        assert!(
            r.stderr.contains("fingerprint you typed is not"),
            "{}",
            r.stderr
        );
    }
    // Nothing changed: no key imported, no role, the request still open.
    let keys = t.json("admin", &["key", "list"]);
    assert!(!keys.to_string().contains(&s(&mallory["keyid"])), "{keys}");
    let roles = t.json("admin", &["delegation", "list", &t.repo]);
    assert_eq!(roles, json!([]));
    assert_eq!(t.open_requests().len(), 1);
}

/// Four requesters publishing at once all end up listed (the publish re-reads
/// and retries like `warrant.tuf` publishing).
#[test]
fn concurrent_requesters_lose_no_request() {
    let reg = RegistryFixture::start();
    let t = on_registry(&reg);
    let homes = ["r1", "r2", "r3", "r4"];
    for h in homes {
        t.ok(h, &["key", "generate", "--name", h]);
    }
    let children: Vec<_> = homes
        .iter()
        .map(|h| {
            t.w.cmd(
                h,
                &[
                    "key", "request", &t.repo, "--role", "qa", "--key", h, "--note", h,
                ],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut notes: Vec<String> = t.open_requests().iter().map(|r| s(&r["note"])).collect();
    notes.sort();
    assert_eq!(notes, homes);
}

/// The `warrant.requests` manifest of a layout, and the path of its blob.
fn requests_manifest(layout: &Path) -> (Value, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "warrant.requests")
        .unwrap()
        .clone();
    let path = blob_path(layout, entry["digest"].as_str().unwrap());
    (
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap(),
        index,
    )
}

/// Rewrite request file `title` with `f`, fixing every OCI digest on the way, as
/// someone with write access to the storage would.
fn tamper_request(layout: &Path, title: &str, f: impl Fn(&mut Value)) {
    let (mut m, mut index) = requests_manifest(layout);
    for l in m["layers"].as_array_mut().unwrap() {
        if l["annotations"]["org.opencontainers.image.title"] == title {
            let path = blob_path(layout, l["digest"].as_str().unwrap());
            let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            f(&mut doc);
            let bytes = serde_json::to_vec(&doc).unwrap();
            l["digest"] = json!(put_blob(layout, &bytes));
            l["size"] = json!(bytes.len());
        }
    }
    let mbytes = serde_json::to_vec(&m).unwrap();
    let mdigest = put_blob(layout, &mbytes);
    for e in index["manifests"].as_array_mut().unwrap() {
        if e["annotations"]["org.opencontainers.image.ref.name"] == "warrant.requests" {
            e["digest"] = json!(mdigest);
            e["size"] = json!(mbytes.len());
        }
    }
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// In an OCI layout (the same store code as a registry): a request whose
/// signature no longer verifies is listed as invalid and refused, and so is an
/// expired one; `--reject` removes a request; `key rotate --add-request` takes a
/// key like `delegation add --request`.
#[test]
fn invalid_and_expired_requests_are_listed_as_such_and_never_used() {
    let t = on_layout();
    let req = t.request("alice", "qa-alice", "qa", "alice");
    let (id, fp) = (s(&req["id"]), s(&req["fingerprint"]));
    tamper_request(&t.w.layout(), &format!("{id}.json"), |d| {
        d["signed"]["note"] = json!("alice (changed after signing)");
    });
    let open = t.open_requests();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["valid"], false);
    assert!(
        s(&open[0]["reason"]).contains("proof of possession"),
        "{open:?}"
    );
    let bad_id = s(&open[0]["id"]);
    assert!(
        open[0]["fingerprint"].is_null(),
        "an invalid request offers no key"
    );
    let r = t.run(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--request",
            &bad_id,
            "--fingerprint",
            &fp,
        ],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("is not valid"), "{}", r.stderr);
    let human = t.ok("admin", &["key", "requests", &t.repo]);
    assert!(
        human.stdout.contains("invalid (never offered"),
        "{}",
        human.stdout
    );
    t.ok("admin", &["key", "requests", &t.repo, "--reject", &bad_id]);
    assert!(t.open_requests().is_empty());

    // Made eight days ago with the default lifetime of seven: expired.
    t.ok("old", &["key", "generate", "--name", "old"]);
    let mut c = Command::new("faketime");
    c.arg("-f").arg("-8d").arg(env!("CARGO_BIN_EXE_warrant"));
    c.args([
        "-o", "json", "key", "request", &t.repo, "--role", "qa", "--key", "old",
    ])
    .env("WARRANT_HOME", t.w.path("old"))
    .env("WARRANT_PASSPHRASE", "test passphrase");
    let r = t.w.run(c);
    assert_eq!(r.code, 0, "{}", r.text());
    let old: Value = serde_json::from_str(&r.stdout).unwrap();
    let open = t.open_requests();
    assert_eq!(open.len(), 1);
    assert!(s(&open[0]["reason"]).starts_with("expired"), "{open:?}");
    let r = t.run(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--request",
            &s(&old["id"]),
            "--fingerprint",
            &s(&old["fingerprint"]),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("expired"), "{}", r.stderr);

    // A fresh request prunes the expired one; rotate takes a second key for qa.
    let bob = t.request("bob", "qa-bob", "qa", "bob");
    let carol = t.request("carol", "qa-carol", "qa", "carol");
    assert_eq!(t.open_requests().len(), 2, "the expired request was pruned");
    t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--request",
            &s(&bob["id"]),
            "--fingerprint",
            &s(&bob["fingerprint_words"]),
        ],
    );
    t.ok("bob", &["approve", &t.repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &t.repo]);
    let r = t.run(
        "admin",
        &[
            "key",
            "rotate",
            &t.repo,
            "--role",
            "docs",
            "--add-request",
            &s(&carol["id"]),
            "--fingerprint",
            &s(&carol["fingerprint"]),
        ],
    );
    assert_eq!(r.code, 2, "carol asked for qa, not docs: {}", r.text());
    t.ok(
        "admin",
        &[
            "key",
            "rotate",
            &t.repo,
            "--role",
            "qa",
            "--add-request",
            &s(&carol["id"]),
            "--fingerprint",
            &s(&carol["fingerprint"]),
        ],
    );
    assert!(t.open_requests().is_empty());
    let roles = t.json("admin", &["delegation", "list", &t.repo]);
    let keyids = roles[0]["keyids"].to_string();
    assert!(keyids.contains(&s(&bob["keyid"])) && keyids.contains(&s(&carol["keyid"])));
}

/// A key on a PKCS#11 token (SoftHSM2) signs its own request like a file key, and
/// the admin adds it; its holder then approves the role's first version with it.
#[test]
fn a_token_key_can_request_a_role() {
    let t = on_layout();
    let tokens = t.w.path("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = t.w.path("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\n", tokens.display()),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "warrant",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (Debian package softhsm2)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alice = |args: &[&str]| {
        let mut c = t.w.cmd("alice", args);
        c.env("SOFTHSM2_CONF", &conf)
            .env("WARRANT_PKCS11_PIN", "1234")
            .env_remove("WARRANT_PASSPHRASE");
        let r = t.w.run(c);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    };
    let uri = "pkcs11:token=warrant;object=qa-alice?module-path=/usr/lib/softhsm/libsofthsm2.so";
    alice(&["key", "generate", "--pkcs11", uri, "--name", "qa-alice"]);
    let r = alice(&[
        "-o", "json", "key", "request", &t.repo, "--role", "qa", "--key", "qa-alice",
    ]);
    let req: Value = serde_json::from_str(&r.stdout).unwrap();
    let open = t.open_requests();
    assert_eq!(open[0]["valid"], true, "{open:?}");
    t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--request",
            &s(&req["id"]),
            "--fingerprint",
            &s(&req["fingerprint"]),
        ],
    );
    let r = alice(&["approve", &t.repo, "--role", "qa"]);
    assert!(r.stdout.contains("role qa v1"), "{}", r.stdout);
}
