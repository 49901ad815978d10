//! Trust anchors that cannot be weakened (issue #11 items 1–2, issue #12 item 5), on
//! the real registry, each party in its own home.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::registry::RegistryFixture;
use common::*;

/// A 2-of-2 root repository `team/app` (root keys `ra`, `rb`) with `v1` signed, and
/// an image `evil` pushed next to it.
struct TwoKeyRepo {
    reg: RegistryFixture,
    w: World,
    repo: String,
    ids: Vec<String>,
    root_file: String,
}

fn ok(w: &World, args: &[&str]) -> Run {
    let r = w.signer(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    r
}

fn two_key_repo() -> TwoKeyRepo {
    let reg = RegistryFixture::start();
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    make_image(&w.layout(), "evil", "evil");
    reg.push(&w.layout(), "v1", "team/app");
    reg.push(&w.layout(), "evil", "team/app");
    let repo = reg.repo("team/app", "");
    ok(&w, &["key", "generate", "--name", "ra"]);
    ok(&w, &["key", "generate", "--name", "rb"]);
    let init = ok(
        &w,
        &[
            "--output",
            "json",
            "init",
            &repo,
            "--root-key",
            "ra",
            "--root-key",
            "rb",
            "--root-threshold",
            "2",
        ],
    );
    let init: serde_json::Value = serde_json::from_str(&init.stdout).unwrap();
    let ids: Vec<String> = init["root_keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    ok(&w, &["sign", &format!("{repo}:v1")]);
    let export = w.path("export");
    ok(&w, &["export", &repo, export.to_str().unwrap()]);
    let root_file = export.join("1.root.json").to_str().unwrap().to_owned();
    TwoKeyRepo {
        reg,
        w,
        repo,
        ids,
        root_file,
    }
}

/// Issue #11 item 1: whoever steals root key `ra` alone publishes a fresh repository
/// whose root lists only `ra` with threshold 1; a verifier pinning both keys must
/// not believe it, whatever threshold the forged root declares.
#[test]
fn stolen_root_key_cannot_pass_a_two_key_pin_with_a_fresh_root() {
    let t = two_key_repo();
    let pins = |extra: &[&str]| {
        let mut a = vec![
            "--root-keyid".to_owned(),
            t.ids[0].clone(),
            "--root-keyid".to_owned(),
            t.ids[1].clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let verify = |home: &str, tag: &str, extra: &[&str]| {
        let mut args = vec!["verify".to_owned(), format!("{}:{tag}", t.repo)];
        args.extend(pins(extra));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.w.verifier(home, &args)
    };
    let r = verify("honest", "v1", &[]);
    assert_eq!(r.code, 0, "the genuine 2-of-2 root passes: {}", r.text());

    // The thief (a home holding only `ra`, copied from the admin's store) builds
    // a fresh repository elsewhere and pushes its warrant.tuf over the real one.
    let thief = t.w.path("thief");
    std::fs::create_dir_all(thief.join("keys")).unwrap();
    let keys = t.w.path("signer/keys");
    let ra = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| {
            name.ends_with(".pub.json")
                && std::fs::read_to_string(keys.join(name))
                    .unwrap()
                    .contains("\"ra\"")
        })
        .expect("ra's public key file");
    let ra_id = ra.trim_end_matches(".pub.json");
    for name in [format!("{ra_id}.pub.json"), format!("{ra_id}.key")] {
        std::fs::copy(keys.join(&name), thief.join("keys").join(&name)).unwrap();
    }
    let forged_repo = t.reg.repo("thief/app", "");
    t.reg.push(&t.w.layout(), "evil", "thief/app");
    let mut c =
        t.w.cmd("thief", &["init", &forged_repo, "--root-key", "ra"]);
    c.env("WARRANT_PASSPHRASE", "test passphrase");
    let r = t.w.run(c);
    assert_eq!(r.code, 0, "thief init with ra alone: {}", r.text());
    let r =
        t.w.run(t.w.cmd("thief", &["sign", &format!("{forged_repo}:evil")]));
    assert_eq!(r.code, 0, "{}", r.text());
    RegistryFixture::skopeo_copy(
        &format!("docker://{forged_repo}:warrant.tuf"),
        &format!("docker://{}:warrant.tuf", t.repo),
        &[],
    );

    let r = verify("fresh", "evil", &[]);
    assert_eq!(
        r.code,
        1,
        "a 1-of-1 root must not pass a 2-key pin: {}",
        r.text()
    );
    assert!(
        r.stderr.contains("1 distinct pinned key(s) signed") && r.stderr.contains("requires 2"),
        "{}",
        r.stderr
    );
    // The pin's threshold can be lowered only by whoever writes the pin.
    let r = verify("lenient", "evil", &["--root-threshold", "1"]);
    assert_eq!(
        r.code,
        0,
        "an explicit --root-threshold 1 is obeyed: {}",
        r.text()
    );
    // An impossible threshold is a usage error.
    let r = verify("typo", "v1", &["--root-threshold", "3"]);
    assert_eq!(r.code, 2, "{}", r.text());
    // The same pin from a policy file.
    let policy = t.w.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[repository]]\nmatch = \"{}\"\nroot-keyids = [\"{}\", \"{}\"]\n",
            t.repo, t.ids[0], t.ids[1]
        ),
    )
    .unwrap();
    let r = t.w.verifier(
        "policy",
        &[
            "verify",
            &format!("{}:evil", t.repo),
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.text());
}

/// Issue #11 item 2: after a home trusted a repository once, a pin given now is
/// checked against the cache instead of being ignored; the right pin keeps working,
/// also after root rotations (the cached chain descends from it).
#[test]
fn a_pin_given_to_a_warm_cache_is_checked_not_ignored() {
    let t = two_key_repo();
    let v1 = format!("{}:v1", t.repo);
    let r = t.w.verifier("v", &["verify", &v1, "--root", &t.root_file]);
    assert_eq!(r.code, 0, "{}", r.text());

    // Another repository, with its own root and keys.
    let other = t.reg.repo("other/app", "");
    t.reg.push(&t.w.layout(), "v1", "other/app");
    let init = ok(&t.w, &["--output", "json", "init", &other]);
    let init: serde_json::Value = serde_json::from_str(&init.stdout).unwrap();
    let other_id = init["root_keyids"][0].as_str().unwrap().to_owned();
    let other_export = t.w.path("other-export");
    ok(&t.w, &["export", &other, other_export.to_str().unwrap()]);
    let other_root = other_export.join("1.root.json");

    for (what, args) in [
        (
            "another root file",
            vec!["--root", other_root.to_str().unwrap()],
        ),
        (
            "another repository's key id",
            vec!["--root-keyid", &other_id],
        ),
        (
            "one right key and one foreign key, both required",
            vec!["--root-keyid", &t.ids[0], "--root-keyid", &other_id],
        ),
    ] {
        let mut a = vec!["verify", &v1[..]];
        a.extend(args);
        let r = t.w.verifier("v", &a);
        assert_eq!(r.code, 1, "{what}: {}", r.text());
        assert!(
            r.stderr.contains("this cache trusts a different root"),
            "{what}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("delete"),
            "says how to reset: {}",
            r.stderr
        );
    }
    // A policy changed to pin other keys is not ignored either.
    let policy = t.w.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[repository]]\nmatch = \"{}\"\nroot-keyids = [\"{other_id}\"]\n",
            t.repo
        ),
    )
    .unwrap();
    let r =
        t.w.verifier("v", &["verify", &v1, "--policy", policy.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.text());

    // The right pins still pass: the root file, both key ids, no pin at all.
    for args in [
        vec!["--root", &t.root_file[..]],
        vec!["--root-keyid", &t.ids[0], "--root-keyid", &t.ids[1]],
        vec![],
    ] {
        let mut a = vec!["verify", &v1[..]];
        a.extend(args.iter().copied());
        let r = t.w.verifier("v", &a);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    }

    // After two root rotations the cached root is v3; the v1 pins still agree,
    // because the cached chain descends from them.
    for i in 1..=2 {
        ok(&t.w, &["key", "generate", "--name", &format!("rc{i}")]);
        let old = if i == 1 {
            "ra".to_owned()
        } else {
            format!("rc{}", i - 1)
        };
        ok(
            &t.w,
            &[
                "key",
                "rotate",
                &t.repo,
                "--role",
                "root",
                "--remove",
                &old,
                "--add",
                &format!("rc{i}"),
            ],
        );
    }
    let r = t.w.verifier("v", &["verify", &v1]);
    assert_eq!(r.code, 0, "follows the rotations: {}", r.text());
    for args in [
        vec!["--root", &t.root_file[..]],
        vec!["--root-keyid", &t.ids[0], "--root-keyid", &t.ids[1]],
    ] {
        let mut a = vec!["verify", &v1[..]];
        a.extend(args.iter().copied());
        let r = t.w.verifier("v", &a);
        assert_eq!(r.code, 0, "v1 pin against cached v3 {args:?}: {}", r.text());
    }
    let r = t.w.verifier(
        "v",
        &["verify", &v1, "--root", other_root.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.text());
}

/// Issue #12 item 5: an 8-digit key-id prefix can be ground by an attacker; it is
/// refused when the pin is read (exit 2 naming the entry), not denied at every verify.
#[test]
fn short_key_id_pins_are_refused_when_read() {
    let t = two_key_repo();
    let v1 = format!("{}:v1", t.repo);
    let short = &t.ids[0][..8];
    let r = t.w.verifier("v", &["verify", &v1, "--root-keyid", short]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("32 to 64 hex digits"), "{}", r.stderr);
    let policy = t.w.path("policy.toml");
    std::fs::write(
        &policy,
        format!("[[repository]]\nmatch = \"team/*\"\nroot-keyids = [\"{short}\"]\n"),
    )
    .unwrap();
    let r =
        t.w.verifier("v", &["verify", &v1, "--policy", policy.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("team/*"), "names the entry: {}", r.stderr);
    // A full id prefix of 32 digits pins.
    let r = t.w.verifier(
        "v",
        &[
            "verify",
            &v1,
            "--root-keyid",
            &t.ids[0][..32],
            "--root-keyid",
            &t.ids[1][..32],
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
}

/// Issue #11 item 1 for CA pins: a CA pin counts distinct certified keys that
/// signed, and the policy's `root-threshold` raises that count. A thief holding one
/// certified root key of a 2-of-2 repository builds a fresh 1-of-1 root with it: a
/// CA pin left at its default (1) believes it, which is exactly why the threshold
/// exists; `root-threshold = 2` refuses it.
#[test]
fn a_ca_pin_with_root_threshold_two_refuses_a_fresh_root_signed_by_one_stolen_certified_key() {
    let reg = RegistryFixture::start();
    let w = World::new();
    make_image(&w.layout(), "v1", "one");
    make_image(&w.layout(), "evil", "evil");
    reg.push(&w.layout(), "v1", "team/app");
    reg.push(&w.layout(), "evil", "team/app");
    reg.push(&w.layout(), "evil", "thief/app");
    let repo = reg.repo("team/app", "");
    let (ca, ca_key) = openssl_ca(w.dir.path(), "Team Root CA", 30);
    for name in ["ra", "rb"] {
        ok(&w, &["key", "generate", "--name", name]);
        ok(
            &w,
            &[
                "key",
                "certify",
                name,
                "--ca-cert",
                ca.to_str().unwrap(),
                "--ca-key",
                ca_key.to_str().unwrap(),
                "--days",
                "30",
            ],
        );
    }
    ok(
        &w,
        &[
            "init",
            &repo,
            "--root-key",
            "ra",
            "--root-key",
            "rb",
            "--root-threshold",
            "2",
        ],
    );
    ok(&w, &["sign", &format!("{repo}:v1")]);
    let policy = |name: &str, threshold: Option<u64>| {
        let p = w.path(&format!("{name}.toml"));
        let mut text = format!(
            "[[repository]]\nmatch = \"{}/*/*\"\nca = \"{}\"\n",
            reg.host(),
            ca.display()
        );
        if let Some(n) = threshold {
            text.push_str(&format!("root-threshold = {n}\n"));
        }
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let verify = |home: &str, tag: &str, threshold: Option<u64>| {
        w.verifier(
            home,
            &[
                "verify",
                &format!("{repo}:{tag}"),
                "--policy",
                &policy(home, threshold),
            ],
        )
    };
    let r = verify("honest", "v1", Some(2));
    assert_eq!(r.code, 0, "both certified keys signed: {}", r.text());

    // The thief's home holds ra (key, public key, certificate) and nothing else.
    let thief = w.path("thief");
    std::fs::create_dir_all(thief.join("keys")).unwrap();
    let keys = w.path("signer/keys");
    let ra_id = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.ends_with(".pub.json")
                && std::fs::read_to_string(keys.join(n))
                    .unwrap()
                    .contains("\"ra\"")
        })
        .expect("ra's public key file")
        .trim_end_matches(".pub.json")
        .to_owned();
    for ext in ["pub.json", "key", "crt.pem"] {
        let name = format!("{ra_id}.{ext}");
        std::fs::copy(keys.join(&name), thief.join("keys").join(&name)).unwrap();
    }
    let forged = reg.repo("thief/app", "");
    for args in [
        vec!["init", &forged[..], "--root-key", "ra"],
        vec!["sign", &format!("{forged}:evil")],
    ] {
        let mut c = w.cmd("thief", &args);
        c.env("WARRANT_PASSPHRASE", "test passphrase");
        let r = w.run(c);
        assert_eq!(r.code, 0, "thief {args:?}: {}", r.text());
    }
    RegistryFixture::skopeo_copy(
        &format!("docker://{forged}:warrant.tuf"),
        &format!("docker://{repo}:warrant.tuf"),
        &[],
    );

    let r = verify("default", "evil", None);
    assert_eq!(
        r.code,
        0,
        "the forged root is genuinely certified, so a CA pin at its default threshold of 1 \
         accepts it: {}",
        r.text()
    );
    let r = verify("strict", "evil", Some(2));
    assert_eq!(r.code, 1, "root-threshold = 2 refuses it: {}", r.text());
    assert!(
        r.stderr
            .contains("1 distinct certified key(s) signed, 2 required"),
        "{}",
        r.stderr
    );
}
