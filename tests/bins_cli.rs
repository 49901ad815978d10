//! Hash bins on the signing side (issue #13 item 2): re-binning keeps every tag
//! verifiable, a sign rewrites one bin, a tampered bin is refused, python-tuf
//! loads a binned repository, and concurrent signers of different bins lose nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;

/// `role` → version of every role file `warrant.tuf` lists (non-pending).
fn versions(w: &World) -> BTreeMap<String, u64> {
    let (m, _) = tuf_manifest(&w.layout());
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["annotations"].get("vnd.warrant.pending").is_none())
        .filter_map(|l| l["annotations"]["org.opencontainers.image.title"].as_str())
        .filter_map(|t| {
            let (v, role) = t.strip_suffix(".json")?.split_once('.')?;
            Some((role.to_owned(), v.parse::<u64>().ok()?))
        })
        .filter(|(role, _)| role != "root")
        .collect()
}

fn sign_list(w: &World, tags: impl Iterator<Item = usize>) {
    let list = w.path("list.txt");
    let text: String = tags
        .map(|i| format!("{}\n", w.oci(&format!(":t{i}"))))
        .collect();
    std::fs::write(&list, text).unwrap();
    let r = w.signer(&["sign", "--from-file", list.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
}

fn export_root(w: &World, dir: &str) -> (std::path::PathBuf, String) {
    let export = w.path(dir);
    let r = w.signer(&["export", &w.oci(""), export.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    let root = export.join("1.root.json").to_str().unwrap().to_owned();
    (export, root)
}

fn verify(w: &World, home: &str, root: &str, tag: &str) -> Run {
    w.verifier(
        home,
        &["verify", &w.oci(&format!(":{tag}")), "--root", root],
    )
}

#[test]
fn rebinning_past_the_threshold_keeps_every_tag_verifiable() {
    let w = World::new();
    let n = 1030;
    let mut digests = Vec::new();
    for i in 0..n {
        digests.push(make_image(&w.layout(), &format!("t{i}"), &format!("image {i}")).0);
    }
    assert_eq!(w.signer(&["init", &w.oci("")]).code, 0);
    sign_list(&w, 0..1000);
    let flat = versions(&w);
    assert!(
        flat.keys().all(|r| r == "targets" || r == "snapshot"),
        "{flat:?}"
    );
    let (_, root) = export_root(&w, "export");
    // A verifier that trusted the flat repository (and indexed it).
    assert_eq!(verify(&w, "v", &root, "t5").code, 0);
    // 30 more take it past 1,024: one publish moves everything into 512 bins.
    sign_list(&w, 1000..n);
    let binned = versions(&w);
    assert_eq!(binned["targets"], flat["targets"] + 1, "{binned:?}");
    assert_eq!(binned["snapshot"], flat["snapshot"] + 1);
    assert_eq!(
        binned.keys().filter(|r| r.starts_with("bins-")).count(),
        512
    );
    // Every tag verifies, for the verifier that knew the flat repository and for a
    // new one (in steps of 29 through the CLI; python-tuf checks the rest below).
    for i in (0..n).step_by(29).chain([n - 1]) {
        for home in ["v", "fresh"] {
            let r = verify(&w, home, &root, &format!("t{i}"));
            assert_eq!(r.code, 0, "t{i} ({home}): {}", r.text());
            assert!(r.stdout.contains(&digests[i]), "{}", r.stdout);
        }
    }
    // An unsigned name is still unsigned.
    make_image(&w.layout(), "unsigned", "nobody signed this");
    assert_eq!(verify(&w, "v", &root, "unsigned").code, 1);
    // A sign now rewrites one bin, snapshot and timestamp: the top-level role and
    // the other 511 bins keep their versions.
    make_image(&w.layout(), "t0", "image 0, rebuilt");
    let r = w.signer(&["sign", &w.oci(":t0")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let after = versions(&w);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(r, v)| binned.get(*r) != Some(v))
        .map(|(r, _)| r)
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed.iter().any(|r| *r == "snapshot"));
    assert!(changed.iter().any(|r| r.starts_with("bins-")));
    assert_eq!(verify(&w, "v", &root, "t0").code, 0);
    // python-tuf loads the binned repository and finds tags through the bins.
    let (export, _) = export_root(&w, "export2");
    for i in [1usize, 517, n - 1] {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/e2e/interop_updater.py"
            ))
            .arg(&export)
            .arg(format!("t{i}"))
            .arg(&digests[i])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python-tuf t{i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn init_with_fixed_bins_signs_into_bins_and_a_tampered_bin_is_refused() {
    let w = World::new();
    for i in 0..6 {
        make_image(&w.layout(), &format!("t{i}"), &format!("image {i}"));
    }
    assert_eq!(w.signer(&["init", &w.oci(""), "--bins", "16"]).code, 0);
    assert_eq!(w.signer(&["init", &w.oci("x"), "--bins", "12"]).code, 2);
    sign_list(&w, 0..6);
    let v = versions(&w);
    assert_eq!(
        v.keys().filter(|r| r.starts_with("bins-")).count(),
        16,
        "{v:?}"
    );
    let (_, root) = export_root(&w, "export");
    for i in 0..6 {
        assert_eq!(verify(&w, "v", &root, &format!("t{i}")).code, 0);
    }
    // Unsign finds the tag's bin and removes it there.
    let r = w.signer(&["unsign", &w.oci(":t2")]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(verify(&w, "v", &root, "t2").code, 1);
    assert_eq!(verify(&w, "v", &root, "t3").code, 0);
    // Forge t0's bin: point t0 at t1's manifest, fix every OCI digest (what an
    // attacker with registry write access can do), without the bin key.
    let t1 = make_image(&w.layout(), "t1", "image 1").0;
    let (m, _) = tuf_manifest(&w.layout());
    let mut forged = None;
    for l in m["layers"].as_array().unwrap() {
        let title = l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap();
        let bytes = std::fs::read(blob_path(&w.layout(), l["digest"].as_str().unwrap())).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        if title.contains(".bins-") && text.contains("\"t0\"") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let old = v["signed"]["targets"]["t0"]["hashes"]["sha256"]
                .as_str()
                .unwrap()
                .to_owned();
            forged = Some((
                title.to_owned(),
                text.replace(&old, t1.trim_start_matches("sha256:")),
            ));
        }
    }
    let (title, bytes) = forged.unwrap();
    let suffix = title.split_once('.').unwrap().1.to_owned();
    replace_metadata_fixing_digests(&w.layout(), &suffix, bytes.as_bytes());
    retag(&w.layout(), "t0", "t1");
    for home in ["v", "fresh"] {
        let r = verify(&w, home, &root, "t0");
        assert_eq!(r.code, 1, "tampered bin accepted ({home}): {}", r.text());
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn concurrent_signers_writing_to_different_bins_lose_nothing() {
    let reg = common::registry::RegistryFixture::start();
    let w = World::new();
    let jobs = 6;
    for i in 0..jobs {
        make_image(&w.layout(), &format!("t{i}"), &format!("image {i}"));
        reg.push(&w.layout(), &format!("t{i}"), "team/app");
    }
    let repo = reg.repo("team/app", "");
    assert_eq!(w.signer(&["init", &repo, "--bins", "64"]).code, 0);
    // One sign first, so the bins exist before the race.
    let r = w.signer(&["sign", &reg.repo("team/app", ":t0")]);
    assert_eq!(r.code, 0, "{}", r.text());
    let keys = w.path("signer/keys");
    let children: Vec<_> = (1..jobs)
        .map(|i| {
            let home = w.path(&format!("ci{i}"));
            copy_dir(&keys, &home.join("keys"));
            w.cmd(
                &format!("ci{i}"),
                &["sign", &reg.repo("team/app", &format!(":t{i}"))],
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
    let export = w.path("export");
    let r = w.signer(&["export", &repo, export.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    let root = export.join("1.root.json");
    for i in 0..jobs {
        let r = w.verifier(
            "v",
            &[
                "verify",
                &reg.repo("team/app", &format!(":t{i}")),
                "--root",
                root.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "t{i}: {}", r.text());
        assert!(r.stdout.contains("role bins-"), "{}", r.stdout);
    }
}
