//! Issue #15 part 2, review fixes: the `warrant.requests` tag is a mailbox no
//! verifier reads, so nothing put there (a hostile layer, an image copied onto the
//! tag, one key's hundred requests) may block the channel; and the admin commands
//! that take a requested key leave nothing behind when they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::registry::RegistryFixture;
use common::requests::{Team, s};
use common::*;
use serde_json::{Value, json};

trait AdminKeys {
    fn admin_keyids(&self) -> String;
}

impl AdminKeys for Team {
    fn admin_keyids(&self) -> String {
        self.json("admin", &["key", "list"]).to_string()
    }
}

/// Point the `warrant.requests` tag of `layout` at `manifest`, as anyone with write
/// access to the registry could.
fn set_requests_manifest(layout: &Path, manifest: &Value) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = put_blob(layout, &bytes);
    for e in index["manifests"].as_array_mut().unwrap() {
        if e["annotations"]["org.opencontainers.image.ref.name"] == "warrant.requests" {
            e["digest"] = json!(digest);
            e["size"] = json!(bytes.len());
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn requests_manifest(layout: &Path) -> Value {
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
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Add two hostile layers to the requests manifest: a path-traversal title and a
/// declared size of 10^12 bytes.
fn add_hostile_layers(layout: &Path) {
    let mut m = requests_manifest(layout);
    let blob = put_blob(layout, b"{}");
    let layers = m["layers"].as_array_mut().unwrap();
    let media_type = layers[0]["mediaType"].clone();
    layers.push(json!({
        "mediaType": media_type, "digest": blob, "size": 2,
        "annotations": {"org.opencontainers.image.title": "../../../etc/x.json"}
    }));
    layers.push(json!({
        "mediaType": media_type, "digest": blob, "size": 1_000_000_000_000u64,
        "annotations": {"org.opencontainers.image.title": "huge.json"}
    }));
    set_requests_manifest(layout, &m);
}

/// Review finding 1: a layer that cannot be read safely is listed as invalid (with
/// the reason), never read, blocks no new request, and `--reject` drops it (several
/// ids at once).
#[test]
fn a_hostile_layer_in_the_requests_tag_is_listed_rejectable_and_blocks_nobody() {
    let t = Team::on_layout();
    let alice = t.request("alice", "qa-alice", "qa", "alice");
    add_hostile_layers(&t.w.layout());

    let open = t.open_requests();
    assert_eq!(open.len(), 3, "{open:?}");
    assert_eq!(open[0]["id"], alice["id"]);
    assert_eq!(open[0]["valid"], true);
    for bad in &open[1..] {
        assert_eq!(bad["valid"], false, "{bad}");
        assert!(s(&bad["reason"]).contains("cannot be read safely"), "{bad}");
        assert!(s(&bad["id"]).starts_with("layer-"), "{bad}");
    }
    let human = t.ok("admin", &["key", "requests", &t.repo]);
    assert!(human.stdout.contains("etc/x.json"), "{}", human.stdout);

    // A new requester is not blocked; the unreadable layers cannot be carried on.
    t.request("bob", "qa-bob", "qa", "bob");
    let open = t.open_requests();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.iter().all(|r| r["valid"] == true), "{open:?}");

    // Rejected together, comma-separated; a valid request stays usable.
    add_hostile_layers(&t.w.layout());
    let bad: Vec<String> = t
        .open_requests()
        .iter()
        .filter(|r| r["valid"] == false)
        .map(|r| s(&r["id"]))
        .collect();
    assert_eq!(bad.len(), 2);
    let r = t.ok(
        "admin",
        &["key", "requests", &t.repo, "--reject", &bad.join(",")],
    );
    assert!(
        r.stdout.contains(&bad[0]) && r.stdout.contains(&bad[1]),
        "{}",
        r.stdout
    );
    assert_eq!(t.open_requests().len(), 2);
    t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--request",
            &s(&alice["id"]),
            "--fingerprint",
            &s(&alice["fingerprint"]),
        ],
    );
}

/// Review finding 1: an image copied onto the tag is reported with how to recover;
/// `--clear` resets the tag, and a new request replaces such a tag by itself.
#[test]
fn an_image_on_the_requests_tag_is_reported_and_can_be_replaced() {
    let t = Team::on_layout();
    t.request("alice", "qa-alice", "qa", "alice");
    retag(&t.w.layout(), "warrant.requests", "v1");

    let r = t.run("admin", &["key", "requests", &t.repo]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr.contains("is not a key-request artifact"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--clear"), "{}", r.stderr);
    let r = t.run(
        "admin",
        &["key", "requests", &t.repo, "--reject", "0123456789ab"],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("--clear"), "{}", r.stderr);

    let r = t.ok("admin", &["key", "requests", &t.repo, "--clear"]);
    assert!(r.stdout.contains("held something else"), "{}", r.stdout);
    assert!(t.open_requests().is_empty());
    // The image itself is untouched.
    t.ok("admin", &["sign", &format!("{}:v1", t.repo)]);

    retag(&t.w.layout(), "warrant.requests", "v1");
    let bob = t.request("bob", "qa-bob", "qa", "bob");
    let open = t.open_requests();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], bob["id"]);
}

/// Review finding 1 on a registry (no compare-and-swap): an image copied onto the
/// tag with skopeo is replaced by the next request, and `--clear` empties the tag.
#[test]
fn an_image_copied_onto_the_requests_tag_of_a_registry_is_replaced_by_a_new_request() {
    let reg = RegistryFixture::start();
    let t = Team::on_registry(&reg, &["v1"]);
    t.request("alice", "qa-alice", "qa", "alice");
    RegistryFixture::skopeo_copy(
        &format!("docker://{}", reg.repo("team/app", ":v1")),
        &format!("docker://{}", reg.repo("team/app", ":warrant.requests")),
        &[],
    );
    let r = t.run("admin", &["key", "requests", &t.repo]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("--clear"), "{}", r.stderr);

    let r = t.run("bob", &["key", "generate", "--name", "qa-bob"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = t.ok(
        "bob",
        &["key", "request", &t.repo, "--role", "qa", "--key", "qa-bob"],
    );
    assert!(r.stderr.contains("is replaced"), "{}", r.stderr);
    assert_eq!(t.open_requests().len(), 1);
    let c = t.json("admin", &["key", "requests", &t.repo, "--clear"]);
    assert_eq!(c["dropped"], 1, "{c}");
    assert!(t.open_requests().is_empty());
}

/// Review finding 2: one key cannot fill the mailbox: asking again for the same
/// role replaces the previous request; another role is another request. Finding 3:
/// the requester is shown both admin commands. `--reject` is repeatable.
#[test]
fn one_key_has_one_open_request_per_role() {
    let t = Team::on_layout();
    let first = t.request("alice", "alice", "qa", "first");
    for n in 0..3 {
        t.request("alice", "alice", "qa", &format!("again {n}"));
    }
    let open = t.open_requests();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["note"], "again 2");
    assert_ne!(open[0]["id"], first["id"]);

    let r = t.ok(
        "alice",
        &[
            "key", "request", &t.repo, "--role", "docs", "--key", "alice",
        ],
    );
    assert!(
        r.stdout.contains("warrant delegation add") && r.stdout.contains("--add-request"),
        "both admin commands: {}",
        r.stdout
    );
    let open = t.open_requests();
    assert_eq!(open.len(), 2, "{open:?}");
    let ids: Vec<String> = open.iter().map(|r| s(&r["id"])).collect();
    t.ok(
        "admin",
        &[
            "key", "requests", &t.repo, "--reject", &ids[0], "--reject", &ids[1],
        ],
    );
    assert!(t.open_requests().is_empty());
}

/// Review finding 4: top-level roles other than root are not asked for; root is,
/// with a warning.
#[test]
fn top_level_roles_are_refused_and_root_is_asked_for_with_a_warning() {
    let t = Team::on_layout();
    t.ok("carol", &["key", "generate", "--name", "carol"]);
    for role in ["targets", "snapshot", "timestamp"] {
        let r = t.run(
            "carol",
            &["key", "request", &t.repo, "--role", role, "--key", "carol"],
        );
        assert_eq!(r.code, 2, "{role}: {}", r.text());
        assert!(
            r.stderr.contains("one does not ask to join"),
            "{}",
            r.stderr
        );
    }
    assert!(t.open_requests().is_empty());
    let r = t.ok(
        "carol",
        &[
            "key", "request", &t.repo, "--role", "root", "--key", "carol",
        ],
    );
    assert!(r.stderr.contains("ROOT key holder"), "{}", r.stderr);
}

/// Review finding 4: a change that fails after the requested key was taken leaves
/// the admin's key store as it was, and the request open.
#[test]
fn a_refused_change_takes_the_requested_key_out_of_the_key_store_again() {
    let t = Team::on_layout();
    let alice = t.request("alice", "alice", "qa", "alice");
    let add = |req: &Value| {
        t.run(
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
        )
    };
    assert_eq!(add(&alice).code, 0);
    t.ok("alice", &["approve", &t.repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &t.repo]);
    let bob = t.request("bob", "bob", "qa", "bob");
    let r = add(&bob);
    assert_ne!(r.code, 0, "qa exists already: {}", r.text());
    assert!(
        r.stderr.contains("removed from the key store again"),
        "{}",
        r.stderr
    );
    assert!(
        !t.admin_keyids().contains(&s(&bob["keyid"])),
        "bob's key stayed in the admin's key store"
    );
    assert_eq!(t.open_requests().len(), 1);
    t.ok(
        "admin",
        &[
            "key",
            "rotate",
            &t.repo,
            "--role",
            "qa",
            "--add-request",
            &s(&bob["id"]),
            "--fingerprint",
            &s(&bob["fingerprint"]),
        ],
    );
    assert!(t.admin_keyids().contains(&s(&bob["keyid"])));
}

/// Review finding 5: adding a requested root key says that key did not sign, and
/// warns that with threshold 1 any single root key holder can sign a new root.
#[test]
fn adding_a_requested_root_key_says_who_signed_and_warns_of_threshold_one() {
    let t = Team::on_layout();
    let carol = t.request("carol", "carol", "root", "carol, second root key");
    let r = t.ok(
        "admin",
        &[
            "key",
            "rotate",
            &t.repo,
            "--role",
            "root",
            "--add-request",
            &s(&carol["id"]),
            "--fingerprint",
            &s(&carol["fingerprint"]),
        ],
    );
    assert!(
        r.stdout.contains("signed by the root keys held here"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("did not sign root v2"), "{}", r.stderr);
    assert!(
        r.stderr.contains("root threshold is 1 of 2 keys"),
        "{}",
        r.stderr
    );
}
