//! Issue #13 through the CLI: many tags in one publish, and the verified local
//! target index under attack (corrupted, or the metadata under it changed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;

use common::*;

/// The versions of `role` and of snapshot the layout's `warrant.tuf` lists.
fn listed_version(w: &World, role: &str) -> u64 {
    let (m, _) = tuf_manifest(&w.layout());
    let suffix = format!(".{role}.json");
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["annotations"]["org.opencontainers.image.title"].as_str())
        .filter_map(|t| t.strip_suffix(&suffix)?.parse::<u64>().ok())
        .max()
        .unwrap()
}

fn world_with_tags(n: usize) -> World {
    let w = World::new();
    for i in 0..n {
        make_image(&w.layout(), &format!("t{i}"), &format!("image {i}"));
    }
    let r = w.signer(&["init", &w.oci("")]);
    assert_eq!(r.code, 0, "{}", r.text());
    w
}

#[test]
fn many_tags_are_signed_in_one_publish() {
    let w = world_with_tags(6);
    let before = (
        listed_version(&w, "targets"),
        listed_version(&w, "snapshot"),
    );
    let list = w.path("tags.txt");
    std::fs::write(
        &list,
        format!("# CI tags\n{}\n\n{}\n", w.oci(":t2"), w.oci(":t3")),
    )
    .unwrap();
    let r = w.signer(&[
        "sign",
        &w.oci(":t0"),
        &w.oci(":t1"),
        "--from-file",
        list.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(r.stdout.matches(" = sha256:").count(), 4, "{}", r.stdout);
    // One new targets version, one snapshot: one publish for four tags.
    assert_eq!(listed_version(&w, "targets"), before.0 + 1);
    assert_eq!(listed_version(&w, "snapshot"), before.1 + 1);
    // From standard input too.
    let mut c = w.cmd("signer", &["sign", "--from-file", "-"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "{}\n{}",
        w.oci(":t4"),
        w.oci(":t5")
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed_version(&w, "targets"), before.0 + 2);
    let (root, _) = export_root(&w);
    for i in 0..6 {
        let r = w.verifier("v", &["verify", &w.oci(&format!(":t{i}")), "--root", &root]);
        assert_eq!(r.code, 0, "t{i}: {}", r.text());
    }
}

#[test]
fn same_tag_twice_is_signed_once_and_no_reference_is_a_usage_error() {
    let w = world_with_tags(2);
    let r = w.signer(&["sign", &w.oci(":t0"), &w.oci(":t0")]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(r.stdout.matches(" = sha256:").count(), 1, "{}", r.stdout);
    let r = w.signer(&["sign"]);
    assert_eq!(r.code, 2, "{}", r.text());
    let empty = w.path("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let r = w.signer(&["sign", "--from-file", empty.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.text());
}

fn export_root(w: &World) -> (String, std::path::PathBuf) {
    let export = w.path("export");
    let r = w.signer(&["export", &w.oci(""), export.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    (
        export.join("1.root.json").to_str().unwrap().to_owned(),
        export,
    )
}

/// The verifier's index files under home `v`.
fn index_files(w: &World) -> Vec<std::path::PathBuf> {
    snapshot_dir(&w.path("v/trust"))
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect()
}

#[test]
fn corrupted_target_index_is_rebuilt_not_trusted_by_verify() {
    let w = world_with_tags(3);
    let r = w.signer(&["sign", &w.oci(":t0"), &w.oci(":t1")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let (root, _) = export_root(&w);
    let verify = |tag: &str| w.verifier("v", &["verify", &w.oci(tag), "--root", &root]);
    assert_eq!(verify(":t0").code, 0);
    let files = index_files(&w);
    assert_eq!(files.len(), 1, "{files:?}");
    let good = std::fs::read(&files[0]).unwrap();
    // Swap the two entries' digests in place (same length): a forged index.
    let text = String::from_utf8_lossy(&good).into_owned();
    let digests: Vec<&str> = text
        .match_indices("\"sha256\":\"")
        .map(|(i, _)| &text[i + 10..i + 74])
        .collect();
    assert_eq!(digests.len(), 2);
    let forged = text
        .replace(digests[0], "X")
        .replace(digests[1], digests[0])
        .replace('X', digests[1]);
    std::fs::write(&files[0], forged.as_bytes()).unwrap();
    // t0's manifest is still what t0 is signed as; with the forged index trusted,
    // verify would report a mismatch (or accept t1's digest for t0).
    let r = verify(":t0");
    assert_eq!(r.code, 0, "{}", r.text());
    let r = verify(":t1");
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(std::fs::read(&files[0]).unwrap(), good, "rebuilt");
    // An unsigned tag stays unsigned whatever the index says.
    assert_eq!(verify(":t2").code, 1);
}

#[test]
fn target_index_is_not_trusted_after_a_tag_is_re_signed() {
    let w = world_with_tags(2);
    let r = w.signer(&["sign", &w.oci(":t0")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let (root, _) = export_root(&w);
    let verify = |tag: &str| w.verifier("v", &["verify", &w.oci(tag), "--root", &root]);
    assert_eq!(verify(":t0").code, 0);
    assert_eq!(verify(":t0").code, 0, "warm");
    // t0 moves to a new image and is signed again: the old index must not make the
    // verifier accept (or refuse) by the old entry.
    make_image(&w.layout(), "t0", "image 0, rebuilt");
    let r = w.signer(&["sign", &w.oci(":t0")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let r = verify(":t0");
    assert_eq!(r.code, 0, "{}", r.text());
}

/// Issue #13 item 4: what one `warrant sign` costs against a real registry, once
/// the signer has seen the repository (find the tag's digest, read the current
/// warrant.tuf, upload the changed blobs, put the manifest, confirm).
#[test]
fn one_sign_costs_at_most_twelve_requests() {
    let reg = common::registry::RegistryFixture::start();
    let w = World::new();
    for i in 0..4 {
        make_image(&w.layout(), &format!("t{i}"), &format!("image {i}"));
        reg.push(&w.layout(), &format!("t{i}"), "team/app");
    }
    let r = w.signer(&["init", &reg.repo("team/app", "")]);
    assert_eq!(r.code, 0, "{}", r.text());
    for i in 0..3 {
        let r = w.signer(&["sign", &reg.repo("team/app", &format!(":t{i}"))]);
        assert_eq!(r.code, 0, "{}", r.text());
    }
    let n = reg.requests().len();
    let r = w.signer(&["sign", &reg.repo("team/app", ":t3")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let sign: Vec<String> = reg.requests().split_off(n);
    eprintln!("{} requests:\n{}", sign.len(), sign.join("\n"));
    for r in sign
        .iter()
        .filter(|r| r.starts_with("GET /v2/team/app/blobs/"))
    {
        let hex = r.rsplit(':').next().unwrap();
        let p = reg.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ));
        eprintln!(
            "{}",
            String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default())
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    assert!(
        sign.len() <= 12,
        "{} requests:\n{}",
        sign.len(),
        sign.join("\n")
    );
}
