//! The delegation search bound seen from the signing side (issue #17): a verifier
//! visits at most 32 roles (targets included, as python-tuf), so `delegation add`
//! never makes a role that could be signed but never found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn the_last_role_within_the_search_bound_is_found_and_one_more_is_refused() {
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    let repo = w.oci("");
    let ok = |args: &[&str]| {
        let r = w.signer(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    };
    ok(&["init", &repo]);
    ok(&["key", "generate", "--name", "dev"]);
    // 31 roles that all match every tag, so a lookup walks them in order.
    for i in 1..=31 {
        ok(&[
            "delegation",
            "add",
            &repo,
            &format!("r{i:02}"),
            "--key",
            "dev",
        ]);
    }
    // The 31st role is the 32nd visited: signed there, a fresh verifier finds it.
    ok(&["sign", &w.oci(":v1"), "--role", "r31"]);
    let export = w.path("export");
    ok(&["export", &repo, export.to_str().unwrap()]);
    let root = export.join("1.root.json");
    let r = w.verifier(
        "v",
        &[
            "-o",
            "json",
            "verify",
            &w.oci(":v1"),
            "--root",
            root.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["role"], "r31", "{}", r.stdout);
    // One more could never be found: refused as a configuration error, nothing
    // published.
    let before = snapshot_dir(&w.layout());
    let r = w.signer(&["delegation", "add", &repo, "r32", "--key", "dev"]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(
        r.stderr.contains("at most 32 roles") && r.stderr.contains("31 delegated roles"),
        "{}",
        r.stderr
    );
    assert_eq!(before, snapshot_dir(&w.layout()), "nothing published");
}
