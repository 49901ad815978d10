//! Dead ends a new team found (issue #12: every state reachable by the commands is
//! repairable by the commands), each person in their own home on an OCI layout:
//! the admin holds root, targets and the publisher key, alice and bob hold only
//! their own keys, whose public halves the admin imported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

struct Team {
    w: World,
    root_id: String,
}

impl Team {
    fn new() -> Self {
        let w = World::new();
        for tag in ["v1", "v2", "v3"] {
            make_image(&w.layout(), tag, &format!("{tag} content"));
        }
        let t = Self {
            w,
            root_id: String::new(),
        };
        let r = t.ok("admin", &["--output", "json", "init", &t.repo()]);
        let init: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let root_id = init["root_keyids"][0].as_str().unwrap().to_owned();
        for (home, name) in [("alice", "a"), ("bob", "b"), ("carol", "c")] {
            t.ok(home, &["key", "generate", "--name", name]);
            let r = t.ok(home, &["key", "export", name, "--public"]);
            let file = t.w.path(&format!("{name}.pem"));
            std::fs::write(&file, r.stdout).unwrap();
            t.ok("admin", &["key", "import", file.to_str().unwrap()]);
        }
        Self { root_id, ..t }
    }

    fn repo(&self) -> String {
        self.w.oci("")
    }

    fn image(&self, tag: &str) -> String {
        self.w.oci(&format!(":{tag}"))
    }

    fn run(&self, home: &str, args: &[&str]) -> Run {
        self.w.run(self.w.cmd(home, args))
    }

    fn ok(&self, home: &str, args: &[&str]) -> Run {
        let r = self.run(home, args);
        assert_eq!(r.code, 0, "{home} {args:?}: {}", r.text());
        r
    }

    fn verify(&self, tag: &str) -> Run {
        self.w.verifier(
            "verifier",
            &["verify", &self.image(tag), "--root-keyid", &self.root_id],
        )
    }

    /// `delegation add REPO role --key key --threshold 1` by the admin.
    fn delegate(&self, role: &str, key: &str) -> Run {
        let repo = self.repo();
        self.ok(
            "admin",
            &[
                "delegation",
                "add",
                &repo,
                role,
                "--key",
                key,
                "--threshold",
                "1",
            ],
        )
    }

    /// The roles `delegation list` shows (published ones).
    fn listed_roles(&self) -> Vec<String> {
        let r = self.ok(
            "admin",
            &["--output", "json", "delegation", "list", &self.repo()],
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let mut roles: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["role"].as_str().unwrap().to_owned())
            .collect();
        roles.sort();
        roles
    }

    /// The roles `pending` lists.
    fn pending_roles(&self) -> Vec<String> {
        let r = self.ok("admin", &["--output", "json", "pending", &self.repo()]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let mut roles: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["role"].as_str().unwrap().to_owned())
            .collect();
        roles.sort();
        roles
    }
}

#[test]
fn a_second_new_delegation_keeps_the_first_waiting_and_each_approve_makes_progress() {
    let t = Team::new();
    let repo = t.repo();
    t.delegate("r1", "a");
    t.delegate("r2", "b");
    // Both new roles wait with the one delegator version that names them both
    // (the second add used to drop r1, and `pending` then exited 2).
    assert_eq!(t.pending_roles(), ["r1", "r2", "targets"]);
    t.ok("alice", &["approve", &repo, "--role", "r1"]);
    let r = t.ok("admin", &["--output", "json", "pending", &repo]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let r1 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "r1")
        .unwrap();
    assert_eq!(r1["signed"].as_array().unwrap().len(), 1, "{}", r.stdout);
    t.ok("bob", &["approve", &repo, "--role", "r2"]);
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.listed_roles(), ["r1", "r2"]);
    assert!(t.pending_roles().is_empty());
    t.ok("alice", &["sign", &t.image("v1"), "--role", "r1"]);
    t.ok("admin", &["refresh", &repo]);
    let r = t.verify("v1");
    assert_eq!(r.code, 0, "{}", r.text());
}

#[test]
fn removing_a_delegation_still_waiting_for_its_first_signature_cancels_it() {
    let t = Team::new();
    let repo = t.repo();
    t.delegate("r1", "a");
    t.delegate("r2", "b");
    // Used to say "has no delegated role r1".
    t.ok("admin", &["delegation", "remove", &repo, "r1"]);
    assert_eq!(t.pending_roles(), ["r2", "targets"]);
    t.ok("bob", &["approve", &repo, "--role", "r2"]);
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.listed_roles(), ["r2"]);
    assert!(t.pending_roles().is_empty());
    // The name is free again.
    t.delegate("r1", "a");
    t.ok("alice", &["approve", &repo, "--role", "r1"]);
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.listed_roles(), ["r1", "r2"]);
}

#[test]
fn rotating_a_role_while_another_delegation_waits_keeps_the_waiting_one() {
    let t = Team::new();
    let repo = t.repo();
    t.delegate("qa", "a");
    t.ok("alice", &["approve", &repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &repo]);
    t.ok("alice", &["sign", &t.image("v1"), "--role", "qa"]);
    t.ok("admin", &["refresh", &repo]);
    t.delegate("ops", "b");
    t.ok(
        "admin",
        &["key", "rotate", &repo, "--role", "qa", "--add", "c"],
    );
    // ops still waits for bob (the rotation used to drop it, and bob's approve
    // then failed with "no longer delegates to ops").
    assert!(t.pending_roles().contains(&"ops".to_owned()));
    t.ok("bob", &["approve", &repo, "--role", "ops"]);
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.listed_roles(), ["ops", "qa"]);
    let r = t.verify("v1");
    assert_eq!(r.code, 0, "{}", r.text());
}

impl Team {
    /// A published role `role` with the members' `keys` and `threshold`: every
    /// member approves its first version and the admin publishes it.
    fn published_role(&self, role: &str, members: &[(&str, &str)], threshold: &str) {
        let repo = self.repo();
        let mut args = vec!["delegation", "add", &repo, role, "--threshold", threshold];
        for (_, key) in members {
            args.extend(["--key", key]);
        }
        self.ok("admin", &args);
        for (home, _) in members {
            self.ok(home, &["approve", &repo, "--role", role]);
        }
        self.ok("admin", &["refresh", &repo]);
        assert!(self.listed_roles().contains(&role.to_owned()));
    }

    /// The signatures the pending version of `role` holds.
    fn pending_signed(&self, role: &str) -> usize {
        let r = self.ok("admin", &["--output", "json", "pending", &self.repo()]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["role"] == role)
            .unwrap_or_else(|| panic!("no pending {role}: {}", r.stdout))["signed"]
            .as_array()
            .unwrap()
            .len()
    }
}

#[test]
fn renew_refuses_to_replace_a_pending_version_and_keeps_its_signatures() {
    let t = Team::new();
    let repo = t.repo();
    t.published_role("qa", &[("alice", "a"), ("bob", "b")], "2");
    t.ok(
        "alice",
        &["renew", &repo, "--role", "qa", "--expires", "90d"],
    );
    assert_eq!(t.pending_signed("qa"), 1);
    // Used to replace it with a fresh version signed by nobody ("0 of 2").
    let r = t.run("admin", &["renew", &repo, "--role", "qa"]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("warrant approve"), "{}", r.text());
    assert_eq!(t.pending_signed("qa"), 1);
    t.ok("bob", &["approve", &repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &repo]);
    let r = t.ok("admin", &["--output", "json", "pending", &repo]);
    assert_eq!(r.stdout.trim(), "[]");
}

#[test]
fn signing_targets_while_a_new_delegation_waits_stacks_on_the_waiting_version() {
    let t = Team::new();
    let repo = t.repo();
    t.delegate("r1", "a");
    // Used to exit 2 advising a `refresh` that could not help.
    t.ok("admin", &["sign", &t.image("v1")]);
    // Published together with r1 once alice signs its first version.
    assert_eq!(t.verify("v1").code, 1);
    assert_eq!(t.pending_roles(), ["r1", "targets"]);
    t.ok("alice", &["approve", &repo, "--role", "r1"]);
    t.ok("admin", &["refresh", &repo]);
    let r = t.verify("v1");
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(t.listed_roles(), ["r1"]);
}

#[test]
fn the_publisher_signing_into_targets_publishes_a_ready_delegation_with_it() {
    let t = Team::new();
    let repo = t.repo();
    t.delegate("r1", "a");
    // alice holds no publisher key: targets and r1 are ready, not published.
    let r = t.ok("alice", &["approve", &repo, "--role", "r1"]);
    assert!(r.stdout.contains("ready"), "{}", r.text());
    // The admin holds it: the sign publishes the ready version with v1 in it.
    t.ok("admin", &["sign", &t.image("v1")]);
    let r = t.verify("v1");
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(t.listed_roles(), ["r1"]);
    assert!(t.pending_roles().is_empty());
}

#[test]
fn a_second_member_signing_stacks_on_a_ready_version_of_the_role() {
    let t = Team::new();
    let repo = t.repo();
    t.published_role("dev", &[("alice", "a"), ("bob", "b")], "1");
    let r = t.ok("alice", &["sign", &t.image("v2"), "--role", "dev"]);
    assert!(r.stdout.contains("ready"), "{}", r.text());
    // Used to exit 2 ("sign again after that").
    let r = t.ok("bob", &["sign", &t.image("v3"), "--role", "dev"]);
    assert!(r.stdout.contains("ready"), "{}", r.text());
    t.ok("admin", &["refresh", &repo]);
    for tag in ["v2", "v3"] {
        let r = t.verify(tag);
        assert_eq!(r.code, 0, "{tag}: {}", r.text());
    }
}

#[test]
fn a_sign_that_cannot_stack_on_a_ready_version_exits_3_retry_later() {
    let t = Team::new();
    let repo = t.repo();
    t.published_role("dev", &[("alice", "a"), ("bob", "b")], "2");
    t.ok("alice", &["sign", &t.image("v2"), "--role", "dev"]);
    let r = t.ok("bob", &["approve", &repo, "--role", "dev"]);
    assert!(r.stdout.contains("ready"), "{}", r.text());
    // alice alone cannot meet the threshold of 2 again: the ready version stays.
    let r = t.run("alice", &["sign", &t.image("v3"), "--role", "dev"]);
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(r.stderr.contains("warrant refresh"), "{}", r.text());
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.verify("v2").code, 0);
    t.ok("alice", &["sign", &t.image("v3"), "--role", "dev"]);
    assert_eq!(t.pending_signed("dev"), 1);
}

#[test]
fn rotating_a_member_key_waits_until_the_remaining_members_re_sign_the_role() {
    let t = Team::new();
    let repo = t.repo();
    t.published_role("qa", &[("alice", "a"), ("bob", "b")], "2");
    t.ok("alice", &["sign", &t.image("v1"), "--role", "qa"]);
    t.ok("bob", &["approve", &repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.verify("v1").code, 0);
    let r = t.ok(
        "admin",
        &[
            "key", "rotate", &repo, "--role", "qa", "--remove", "b", "--add", "c",
        ],
    );
    // The new delegation waits for qa re-signed by a and c: published at once, it
    // made qa "not signed by enough keys" and every qa tag untrusted.
    assert!(r.stdout.contains("waiting"), "{}", r.text());
    let r = t.verify("v1");
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(t.pending_roles(), ["qa", "targets"]);
    t.ok("alice", &["approve", &repo, "--role", "qa"]);
    assert_eq!(t.verify("v1").code, 0);
    t.ok("carol", &["approve", &repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &repo]);
    assert!(t.pending_roles().is_empty());
    let r = t.verify("v1");
    assert_eq!(r.code, 0, "{}", r.text());
    let r = t.ok("admin", &["--output", "json", "delegation", "list", &repo]);
    let c = t.ok("carol", &["--output", "json", "key", "list"]);
    let c: serde_json::Value = serde_json::from_str(&c.stdout).unwrap();
    let c_id = c[0]["keyid"].as_str().unwrap();
    assert!(r.stdout.contains(c_id), "{}", r.stdout);
}

#[test]
fn revoking_a_key_while_a_delegation_waits_leaves_pending_usable() {
    let t = Team::new();
    let repo = t.repo();
    t.published_role("qa", &[("alice", "a"), ("carol", "c")], "1");
    t.delegate("ops", "b");
    // The revocation takes effect at once, built on the published targets: the
    // waiting delegation is cancelled with its first version (its leftover
    // pending file made `pending` exit 2 with "no role ops").
    t.ok("admin", &["key", "revoke", &repo, "a"]);
    assert!(!t.pending_roles().contains(&"ops".to_owned()));
    t.delegate("ops", "b");
    t.ok("bob", &["approve", &repo, "--role", "ops"]);
    t.ok("carol", &["approve", &repo, "--role", "qa"]);
    t.ok("admin", &["refresh", &repo]);
    assert_eq!(t.listed_roles(), ["ops", "qa"]);
}
