//! A team on the real registry, each person in their own home with only their own
//! private key (issue #12): the admin holds root and targets, CI holds the publisher
//! key, alice and bob hold their QA keys, a verifier holds nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::registry::RegistryFixture;
use common::*;

struct Team {
    _reg: RegistryFixture,
    w: World,
    repo: String,
    root_id: String,
}

impl Team {
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
            &[
                "verify",
                &format!("{}:{tag}", self.repo),
                "--root-keyid",
                &self.root_id,
            ],
        )
    }
    fn key_id(&self, home: &str, name: &str) -> String {
        let r = self.ok(home, &["--output", "json", "key", "list"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {home}: {}", r.stdout))["keyid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    /// `member` exports their public key; the admin imports it by file name.
    fn hand_public_key_to_admin(&self, member: &str, name: &str) {
        self.ok(member, &["key", "generate", "--name", name]);
        let r = self.ok(member, &["key", "export", name, "--public"]);
        let file = self.w.path(&format!("{name}.pem"));
        std::fs::write(&file, r.stdout).unwrap();
        self.ok("admin", &["key", "import", file.to_str().unwrap()]);
    }
}

/// init by the admin; the publisher key moved to CI's home (and out of the admin's).
fn team() -> Team {
    let reg = RegistryFixture::start();
    let w = World::new();
    for tag in ["v1", "v2", "v3"] {
        make_image(&w.layout(), tag, tag);
        reg.push(&w.layout(), tag, "team/app");
    }
    let repo = reg.repo("team/app", "");
    let t = Team {
        _reg: reg,
        w,
        repo,
        root_id: String::new(),
    };
    t.ok("admin", &["init", &t.repo]);
    let publisher = t.key_id("admin", "publisher");
    let r = t.ok("admin", &["key", "export", "publisher"]);
    let pem = t.w.path("publisher.pem");
    std::fs::write(&pem, r.stdout).unwrap();
    t.ok("ci", &["key", "import", pem.to_str().unwrap()]);
    std::fs::remove_file(t.w.path(&format!("admin/keys/{publisher}.key"))).unwrap();
    let root_id = t.key_id("admin", "root");
    Team { root_id, ..t }
}

/// Issue #12 items 1 and 2: the README's walkthrough, from separate homes. The
/// admin delegates to alice and bob by their public keys (threshold 2); nothing is
/// stuck at any step, and `status` agrees with `verify` throughout.
#[test]
fn team_walkthrough_from_separate_homes_has_no_dead_end() {
    let t = team();
    t.hand_public_key_to_admin("alice", "qa-alice");
    t.hand_public_key_to_admin("bob", "qa-bob");
    let r = t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--key",
            "qa-alice",
            "--key",
            "qa-bob",
            "--threshold",
            "2",
            "--paths",
            "v*",
        ],
    );
    assert!(
        r.stdout.contains("pending: role qa v1 has 0 of 2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("waiting: role targets"), "{}", r.stdout);
    // CI's refresh does not publish the delegation before the role exists.
    t.ok("ci", &["refresh", &t.repo]);
    let s = t.ok("verifier", &["status", &t.repo, "--root-keyid", &t.root_id]);
    assert!(s.stdout.contains("verifies: yes"), "{}", s.stdout);
    assert_eq!(t.verify("v1").code, 1, "nothing signed v1 yet");

    // Alice reviews and approves the role's first version from her machine; bob too.
    let r = t.ok("alice", &["pending", &t.repo]);
    assert!(r.stdout.contains("qa v1: 0 of 2"), "{}", r.stdout);
    t.ok("alice", &["approve", &t.repo, "--role", "qa"]);
    let r = t.ok("bob", &["approve", &t.repo, "--role", "qa"]);
    assert!(r.stdout.contains("ready: role qa v1"), "{}", r.stdout);
    let r = t.ok("ci", &["refresh", &t.repo]);
    assert!(r.stdout.contains("published: role qa v1"), "{}", r.stdout);
    assert!(r.stdout.contains("published: role targets"), "{}", r.stdout);

    // Alice signs v2 (1 of 2), bob approves, CI publishes: v2 verifies.
    let r = t.ok(
        "alice",
        &["sign", &format!("{}:v2", t.repo), "--role", "qa"],
    );
    assert!(r.stdout.contains("1 of 2"), "{}", r.stdout);
    assert_eq!(t.verify("v2").code, 1, "pending is not trusted");
    // Issue #12 item 6: inspect shows the pending version and who can still approve.
    let r = t.ok("admin", &["inspect", &t.repo]);
    assert!(
        r.stdout.contains("Pending (not trusted until approved):"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("qa v2: 1 of 2 signed; can approve: qa-bob ("),
        "{}",
        r.stdout
    );
    let r = t.ok(
        "verifier",
        &["-o", "json", "inspect", &t.repo, "--root-keyid", &t.root_id],
    );
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["pending"][0]["role"], "qa", "{}", r.stdout);
    assert_eq!(j["pending"][0]["signed_by"].as_array().unwrap().len(), 1);
    assert_eq!(j["pending"][0]["awaiting"].as_array().unwrap().len(), 1);
    t.ok("bob", &["approve", &t.repo, "--role", "qa"]);
    t.ok("ci", &["refresh", &t.repo]);
    let v = t.verify("v2");
    assert_eq!(v.code, 0, "{}", v.text());
    assert!(v.stdout.contains("signed by role qa"), "{}", v.stdout);
    let s = t.ok("verifier", &["status", &t.repo, "--root-keyid", &t.root_id]);
    assert!(s.stdout.contains("verifies: yes"), "{}", s.stdout);

    // Issue #12 item 6: inspect shows the delegation tree and who signed each tag,
    // with key names where this home knows them (the admin imported both).
    let r = t.ok("admin", &["inspect", &t.repo]);
    assert!(r.stdout.contains("Signed tags in"), "{}", r.stdout);
    let line = |needle: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("{needle}: {}", r.stdout))
            .to_owned()
    };
    assert!(line("v2 ").ends_with("qa"), "{}", r.stdout);
    let qa = line("qa ");
    for part in ["targets", "2 of 2", "v*", "qa-alice (", "qa-bob ("] {
        assert!(qa.contains(part), "{part}: {qa}");
    }
    let r = t.ok(
        "verifier",
        &[
            "--output",
            "json",
            "inspect",
            &t.repo,
            "--root-keyid",
            &t.root_id,
        ],
    );
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let qa = j["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["role"] == "qa")
        .expect("qa in roles");
    assert_eq!(qa["delegator"], "targets");
    assert_eq!(qa["threshold"], 2);
    assert_eq!(qa["paths"][0], "v*");
    assert_eq!(qa["signed_by"].as_array().unwrap().len(), 2);
    let v2 = j["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["target"] == "v2")
        .expect("v2 in targets");
    assert_eq!(v2["signed_by_roles"][0], "qa");

    // The admin removes the delegation with only the targets key: CI publishes it.
    t.ok("admin", &["delegation", "remove", &t.repo, "qa"]);
    t.ok("ci", &["refresh", &t.repo]);
    assert_eq!(t.verify("v2").code, 1, "qa no longer vouches for v2");
    let s = t.ok("verifier", &["status", &t.repo, "--root-keyid", &t.root_id]);
    assert!(s.stdout.contains("verifies: yes"), "{}", s.stdout);

    // Added again (alice alone now): its versions continue past the removed
    // ones, so the verifier's cached snapshot sees no rollback.
    t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--key",
            "qa-alice",
            "--paths",
            "v*",
        ],
    );
    let r = t.ok("alice", &["approve", &t.repo, "--role", "qa"]);
    assert!(r.stdout.contains("ready: role qa v3"), "{}", r.stdout);
    t.ok("ci", &["refresh", &t.repo]);
    t.ok(
        "alice",
        &["sign", &format!("{}:v3", t.repo), "--role", "qa"],
    );
    t.ok("ci", &["refresh", &t.repo]);
    let v = t.verify("v3");
    assert_eq!(v.code, 0, "{}", v.text());
}

/// Issue #12 item 1, exactly: the admin also holds a QA key, so the new role is
/// complete at once but the publisher key is elsewhere. Before, CI's refresh
/// published targets without qa and every later command failed.
#[test]
fn delegation_added_without_the_publisher_key_is_published_whole_by_refresh() {
    let t = team();
    t.ok("admin", &["key", "generate", "--name", "qa-admin"]);
    let r = t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--key",
            "qa-admin",
            "--paths",
            "v*",
        ],
    );
    assert!(r.stdout.contains("ready: role qa v1"), "{}", r.stdout);
    let r = t.ok("ci", &["refresh", &t.repo]);
    assert!(r.stdout.contains("published: role qa v1"), "{}", r.stdout);
    assert!(r.stdout.contains("published: role targets"), "{}", r.stdout);
    t.ok(
        "admin",
        &["sign", &format!("{}:v3", t.repo), "--role", "qa"],
    );
    t.ok("ci", &["refresh", &t.repo]);
    let v = t.verify("v3");
    assert_eq!(v.code, 0, "{}", v.text());
    for cmd in [
        vec!["pending", &t.repo[..]],
        vec!["refresh", &t.repo[..]],
        vec!["delegation", "list", &t.repo[..]],
    ] {
        t.ok("ci", &cmd);
    }
}

impl Team {
    /// Run as `home` with the clock `days` ahead (faketime moves libc's clock).
    fn later(&self, days: u32, home: &str, args: &[&str]) -> Run {
        let mut c = std::process::Command::new("faketime");
        c.arg("-f")
            .arg(format!("+{days}d"))
            .arg(env!("CARGO_BIN_EXE_warrant"))
            .args(args)
            .env("WARRANT_HOME", self.w.path(home))
            .env("WARRANT_PASSPHRASE", "test passphrase")
            .stdin(std::process::Stdio::null());
        self.w.run(c)
    }
}

/// Issue #12 item 4: after a year root and targets have expired; `renew` by the
/// admin (root and targets keys) and CI's `refresh` bring verify back, and a
/// verifier that cached the old root follows the renewed one.
#[test]
fn expired_root_and_targets_are_renewed_and_verify_comes_back() {
    let t = team();
    t.ok("admin", &["sign", &format!("{}:v1", t.repo)]);
    t.ok("ci", &["refresh", &t.repo]);
    assert_eq!(t.verify("v1").code, 0);
    let image = format!("{}:v1", t.repo);
    let verify_late = || {
        t.later(
            400,
            "verifier",
            &["verify", &image, "--root-keyid", &t.root_id],
        )
    };
    let r = verify_late();
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    assert!(
        r.stderr.contains("warrant renew"),
        "names the command: {}",
        r.stderr
    );
    let r = t.later(
        400,
        "admin",
        &["renew", &t.repo, "--role", "root", "--role", "targets"],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("published: root v2"), "{}", r.stdout);
    assert!(r.stdout.contains("ready: role targets"), "{}", r.stdout);
    let r = t.later(400, "ci", &["refresh", &t.repo]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = verify_late();
    assert_eq!(r.code, 0, "{}", r.text());
    let r = t.later(
        400,
        "verifier",
        &["status", &t.repo, "--root-keyid", &t.root_id],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("verifies: yes"), "{}", r.stdout);
}

/// Issue #12 item 3: the admin revokes alice's compromised key with the targets
/// key alone; what only she vouched for is untrusted at once, `status` says the
/// repository does not verify, and bob's review and approval restore it.
#[test]
fn revoke_needs_only_the_delegators_key_and_untrusts_until_re_signed() {
    let t = team();
    t.hand_public_key_to_admin("alice", "qa-alice");
    t.hand_public_key_to_admin("bob", "qa-bob");
    t.ok(
        "admin",
        &[
            "delegation",
            "add",
            &t.repo,
            "qa",
            "--key",
            "qa-alice",
            "--key",
            "qa-bob",
            "--threshold",
            "1",
            "--paths",
            "v*",
        ],
    );
    t.ok("alice", &["approve", &t.repo, "--role", "qa"]);
    t.ok("ci", &["refresh", &t.repo]);
    t.ok(
        "alice",
        &["sign", &format!("{}:v2", t.repo), "--role", "qa"],
    );
    t.ok("ci", &["refresh", &t.repo]);
    assert_eq!(t.verify("v2").code, 0);

    let r = t.ok("admin", &["key", "revoke", &t.repo, "qa-alice"]);
    assert!(r.stdout.contains("pending: role qa"), "{}", r.stdout);
    t.ok("ci", &["refresh", &t.repo]);
    let v = t.verify("v2");
    assert_eq!(v.code, 1, "signed only by the revoked key: {}", v.text());
    assert!(v.stderr.contains("revoked key"), "{}", v.stderr);
    let s = t.run("verifier", &["status", &t.repo, "--root-keyid", &t.root_id]);
    assert_eq!(s.code, 1, "status agrees with verify: {}", s.text());
    assert!(s.stdout.contains("verifies: no"), "{}", s.stdout);

    // Bob reviews what he re-signs (every target of the role shows) and approves.
    let r = t.ok("bob", &["pending", &t.repo]);
    assert!(r.stdout.contains("added    v2"), "{}", r.stdout);
    t.ok("bob", &["approve", &t.repo, "--role", "qa"]);
    t.ok("ci", &["refresh", &t.repo]);
    let v = t.verify("v2");
    assert_eq!(v.code, 0, "{}", v.text());
    let s = t.run("verifier", &["status", &t.repo, "--root-keyid", &t.root_id]);
    assert_eq!(s.code, 0, "{}", s.text());
    // Alice's key can no longer sign for qa.
    let r = t.run(
        "alice",
        &["sign", &format!("{}:v3", t.repo), "--role", "qa"],
    );
    assert_ne!(r.code, 0, "{}", r.text());
}
