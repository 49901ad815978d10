//! Delegated roles, pending signatures, approvals and policies (issue #5), on the
//! real registry, plus bad input on a layout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::registry::RegistryFixture;
use common::*;

/// A registry repository with `v1` and `v2`, initialized, with keys qa1..qa3 and
/// prod1..prod2 in the signer's key store, and its exported root.
struct Team {
    reg: RegistryFixture,
    w: World,
    repo: String,
}

fn team() -> Team {
    let reg = RegistryFixture::start();
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    make_image(&w.layout(), "v2", "two");
    reg.push(&w.layout(), "v1", "team/app");
    reg.push(&w.layout(), "v2", "team/app");
    let repo = reg.repo("team/app", "");
    assert_eq!(w.signer(&["init", &repo]).code, 0);
    for k in ["qa1", "qa2", "qa3", "prod1", "prod2"] {
        assert_eq!(w.signer(&["key", "generate", "--name", k]).code, 0);
    }
    let export = w.path("export");
    assert_eq!(
        w.signer(&["export", &repo, export.to_str().unwrap()]).code,
        0
    );
    Team { reg, w, repo }
}

impl Team {
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.w.signer(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    }

    fn policy(&self, roles: &[&str]) -> String {
        let path = self.w.path(&format!("policy-{}.toml", roles.join("-")));
        let list: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
        std::fs::write(
            &path,
            format!(
                "[[repository]]\nmatch = \"{}/team/*\"\nroot = \"export/1.root.json\"\nrequire-roles = [{}]\n",
                self.reg.host(),
                list.join(", ")
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn verify(&self, home: &str, tag: &str, roles: &[&str]) -> Run {
        self.w.verifier(
            home,
            &[
                "verify",
                &format!("{}:{tag}", self.repo),
                "--policy",
                &self.policy(roles),
            ],
        )
    }
}

#[test]
fn qa_threshold_two_is_pending_until_the_second_key_approves() {
    let t = team();
    t.ok(&[
        "delegation",
        "add",
        &t.repo,
        "qa",
        "--key",
        "qa1",
        "--key",
        "qa2",
        "--threshold",
        "2",
    ]);
    let r = t.ok(&[
        "sign",
        &format!("{}:v1", t.repo),
        "--role",
        "qa",
        "--key",
        "qa1",
    ]);
    assert!(
        r.stdout
            .contains("pending: role qa v2 has 1 of 2 signatures"),
        "{}",
        r.stdout
    );
    let r = t.verify("v", "v1", &["qa"]);
    assert_eq!(r.code, 1, "{}", r.text());
    let r = t.ok(&["--output", "json", "pending", &t.repo]);
    let pending: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(pending[0]["role"], "qa");
    assert_eq!(pending[0]["changes"][0]["target"], "v1");
    let r = t.ok(&["approve", &t.repo, "--role", "qa", "--key", "qa2"]);
    assert!(
        r.stdout
            .contains("published: role qa v2 (2 of 2 signatures)"),
        "{}",
        r.stdout
    );
    let r = t.verify("v", "v1", &["qa"]);
    assert_eq!(r.code, 0, "{}", r.text());
}

#[test]
fn prod_requires_qa_and_prod_on_the_same_digest() {
    let t = team();
    t.ok(&["delegation", "add", &t.repo, "qa", "--key", "qa1"]);
    t.ok(&[
        "delegation",
        "add",
        &t.repo,
        "prod",
        "--key",
        "prod1",
        "--key",
        "prod2",
        "--threshold",
        "2",
    ]);
    t.ok(&["sign", &format!("{}:v1", t.repo), "--role", "prod"]);
    let r = t.verify("v", "v1", &["qa", "prod"]);
    assert_eq!(r.code, 1, "prod only: {}", r.text());
    assert!(r.stderr.contains("role qa did not sign"), "{}", r.stderr);
    t.ok(&["sign", &format!("{}:v1", t.repo), "--role", "qa"]);
    assert_eq!(t.verify("v", "v1", &["qa", "prod"]).code, 0);
    // qa and prod on different digests for v2: qa signs v2's manifest, prod signs
    // v1's manifest under the tag v2 (the tag is then moved to it).
    t.ok(&["sign", &format!("{}:v2", t.repo), "--role", "qa"]);
    RegistryFixture::skopeo_copy(
        &format!("docker://{}:v1", t.repo),
        &format!("docker://{}:v2", t.repo),
        &[],
    );
    t.ok(&["sign", &format!("{}:v2", t.repo), "--role", "prod"]);
    let r = t.verify("v", "v2", &["qa", "prod"]);
    assert_eq!(r.code, 1, "{}", r.text());
}

#[test]
fn two_approvers_at_once_converge() {
    let t = team();
    t.ok(&[
        "delegation",
        "add",
        &t.repo,
        "qa",
        "--key",
        "qa1",
        "--key",
        "qa2",
        "--key",
        "qa3",
        "--threshold",
        "3",
    ]);
    t.ok(&[
        "sign",
        &format!("{}:v1", t.repo),
        "--role",
        "qa",
        "--key",
        "qa1",
    ]);
    let keys = t.w.path("signer/keys");
    let children: Vec<_> = ["qa2", "qa3"]
        .iter()
        .map(|k| {
            let home = t.w.path(&format!("approver-{k}"));
            std::fs::create_dir_all(home.join("keys")).unwrap();
            for e in std::fs::read_dir(&keys).unwrap() {
                let p = e.unwrap().path();
                std::fs::copy(&p, home.join("keys").join(p.file_name().unwrap())).unwrap();
            }
            t.w.cmd(
                &format!("approver-{k}"),
                &["approve", &t.repo, "--role", "qa", "--key", k],
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
    let r = t.verify("v", "v1", &["qa"]);
    assert_eq!(r.code, 0, "{}", r.text());
}

#[test]
fn removed_delegation_targets_are_no_longer_trusted_and_python_tuf_loads_the_repository() {
    let t = team();
    t.ok(&[
        "delegation",
        "add",
        &t.repo,
        "qa",
        "--key",
        "qa1",
        "--paths",
        "v*",
    ]);
    t.ok(&[
        "delegation",
        "add",
        &t.repo,
        "prod",
        "--key",
        "prod1",
        "--key",
        "prod2",
        "--threshold",
        "2",
    ]);
    t.ok(&["sign", &format!("{}:v1", t.repo), "--role", "qa"]);
    // A pending prod version stays invisible to verifiers and to python-tuf.
    t.ok(&[
        "sign",
        &format!("{}:v2", t.repo),
        "--role",
        "prod",
        "--key",
        "prod1",
    ]);
    let export = t.w.path("export2");
    t.ok(&["export", &t.repo, export.to_str().unwrap()]);
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/e2e/interop_export.py"
        ))
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python-tuf: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.verify("v", "v1", &[]).code, 0);
    assert_eq!(t.verify("v", "v2", &[]).code, 1, "pending is invisible");
    t.ok(&["delegation", "remove", &t.repo, "qa"]);
    let r = t.verify("v", "v1", &[]);
    assert_eq!(r.code, 1, "{}", r.text());
    let r = t.ok(&["--output", "json", "delegation", "list", &t.repo]);
    let roles: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(roles.as_array().unwrap().len(), 1);
    assert_eq!(roles[0]["role"], "prod");
}

#[test]
fn bad_delegations_and_approvals_are_refused_and_publish_nothing() {
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    let repo = w.oci("");
    assert_eq!(w.signer(&["init", &repo]).code, 0);
    for k in ["a", "b", "c"] {
        assert_eq!(w.signer(&["key", "generate", "--name", k]).code, 0);
    }
    assert_eq!(
        w.signer(&[
            "delegation",
            "add",
            &repo,
            "qa",
            "--key",
            "a",
            "--key",
            "b",
            "--threshold",
            "2"
        ])
        .code,
        0
    );
    assert_eq!(
        w.signer(&["sign", &w.oci(":v1"), "--role", "qa", "--key", "a"])
            .code,
        0
    );
    let index = || std::fs::read(w.layout().join("index.json")).unwrap();
    let before = index();
    let image = w.oci(":v1");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "delegation",
            "add",
            &repo,
            "x",
            "--key",
            "a",
            "--threshold",
            "0",
        ],
        vec![
            "delegation",
            "add",
            &repo,
            "x",
            "--key",
            "a",
            "--threshold",
            "2",
        ],
        vec!["delegation", "add", &repo, "x", "--key", "nosuchkey"],
        vec!["delegation", "add", &repo, "qa", "--key", "c"],
        vec!["delegation", "add", &repo, "targets", "--key", "c"],
        vec![
            "delegation",
            "add",
            &repo,
            "x",
            "--key",
            "c",
            "--paths",
            "a/b",
        ],
        vec!["delegation", "add", &repo, "x", "--key", "c", "--paths", ""],
        vec![
            "delegation",
            "add",
            &repo,
            "x",
            "--key",
            "c",
            "--from",
            "nosuchrole",
        ],
        vec!["approve", &repo, "--role", "qa", "--key", "c"],
        vec!["approve", &repo, "--role", "qa", "--key", "a"],
        vec!["delegation", "remove", &repo, "nosuchrole"],
        vec!["sign", &image, "--role", "nosuchrole"],
    ];
    for args in cases {
        let r = w.signer(&args);
        assert_eq!(r.code, 2, "{args:?} should be refused: {}", r.text());
        assert!(r.stderr.starts_with("warrant: error: "), "{}", r.stderr);
        assert_eq!(index(), before, "{args:?} published something");
    }
}

/// Issue #14: a pending version in the store that is not a targets role envelope
/// is an integrity failure (exit 1, "not trusted"), not a usage error.
#[test]
fn approving_a_malformed_pending_version_is_not_trusted() {
    let w = World::new();
    w.signed_v1();
    make_image(&w.layout(), "v2", "hello v2");
    // Without the publisher key the next targets version waits in the store.
    let r = w.signer(&["--output", "json", "key", "list"]);
    let keys: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let publisher = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "publisher")
        .unwrap()["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::remove_file(w.path(&format!("signer/keys/{publisher}.key"))).unwrap();
    let r = w.signer(&["sign", &w.oci(":v2")]);
    assert_eq!(r.code, 0, "{}", r.text());
    // init wrote targets v1, signing v1 v2: this sign waits as v3.
    replace_metadata_fixing_digests(&w.layout(), "3.targets.json", b"{\"signatures\": 7}");
    let r = w.signer(&["approve", &w.oci(""), "--role", "targets"]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.stderr
            .contains("not trusted: the pending version of targets"),
        "{}",
        r.stderr
    );
}
