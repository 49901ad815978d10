//! Differential check against python-tuf (issue #17 item 4): a repository on an
//! OCI layout goes through a random sequence of valid updates (signatures,
//! delegations, root and targets key rotations) and invalid ones (tampered roles
//! with every OCI digest fixed up, a missing role file, a pending role short of its
//! threshold, a clock past expiry). After each step the metadata files are copied
//! out of the layout as they are (no verification: that is what is being tested)
//! and both clients decide, from a fresh start pinned to `1.root.json`, whether
//! they trust each signed tag. They must agree every time.
//!
//! `WARRANT_DIFF_SEED` replays a sequence; `make test` runs 10 steps, `make faults`
//! (`WARRANT_FAULTS=full`) 60.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Copy every non-pending metadata file the `warrant.tuf` artifact lists into
/// `dir`, under its TUF name (what a plain TUF HTTP server would serve).
fn raw_export(layout: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let (m, _) = tuf_manifest(layout);
    for l in m["layers"].as_array().unwrap() {
        let a = &l["annotations"];
        if a["vnd.warrant.pending"] == "true" {
            continue;
        }
        let Some(name) = a["org.opencontainers.image.title"].as_str() else {
            continue;
        };
        let bytes = std::fs::read(blob_path(layout, l["digest"].as_str().unwrap())).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn have(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Diff {
    w: World,
    root: String,
    /// Signed tags and their digests.
    tags: Vec<(String, String)>,
    checks: usize,
    decisions: usize,
    faketime: bool,
}

impl Diff {
    fn ok(&self, args: &[&str]) {
        let r = self.w.signer(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    }

    /// Both clients' decision on every tag; panics when they differ. `late`
    /// runs both 400 days in the future (faketime).
    fn agree(&mut self, step: &str, late: bool) -> Vec<bool> {
        let n = self.checks;
        self.checks += 1;
        let export = self.w.path(&format!("raw-{n}"));
        raw_export(&self.w.layout(), &export);
        let mut decisions = Vec::new();
        // v1 and the three newest tags: the oldest ones add time, not coverage.
        let mut tags = self.tags.clone();
        if tags.len() > 4 {
            tags.drain(1..tags.len() - 3);
        }
        for (tag, digest) in tags {
            self.decisions += 1;
            let mut ours = if late {
                let mut c = Command::new("faketime");
                c.args(["-f", "+400d", env!("CARGO_BIN_EXE_warrant")]);
                c
            } else {
                Command::new(env!("CARGO_BIN_EXE_warrant"))
            };
            ours.args([
                "verify",
                &self.w.oci(&format!(":{tag}")),
                "--root",
                &self.root,
            ])
            .env("WARRANT_HOME", self.w.path(&format!("v-{n}-{tag}")))
            .env_remove("WARRANT_PASSPHRASE");
            let ours = self.w.run(ours);
            assert!(
                matches!(ours.code, 0 | 1),
                "{step}: warrant {tag}: {}",
                ours.text()
            );
            let mut theirs = if late {
                let mut c = Command::new("faketime");
                c.args(["-f", "+400d", "python3"]);
                c
            } else {
                Command::new("python3")
            };
            theirs
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/e2e/interop_updater.py"
                ))
                .arg(&export)
                .args([&tag, &digest, "--root", &self.root]);
            let theirs = self.w.run(theirs);
            assert!(
                matches!(theirs.code, 0 | 1),
                "{step}: python-tuf {tag}: {}",
                theirs.text()
            );
            assert_eq!(
                ours.code == 0,
                theirs.code == 0,
                "{step}: tag {tag}: warrant exit {} vs python-tuf exit {}\nwarrant: {}\npython-tuf: {}",
                ours.code,
                theirs.code,
                ours.text(),
                theirs.text()
            );
            decisions.push(ours.code == 0);
        }
        decisions
    }
}

/// xorshift64*, seeded from `WARRANT_DIFF_SEED` or the clock (printed).
fn rng() -> impl FnMut(u64) -> u64 {
    let mut s = std::env::var("WARRANT_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    eprintln!("WARRANT_DIFF_SEED={s}");
    s |= 1;
    move |n| {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[test]
fn warrant_and_python_tuf_agree_on_random_valid_and_invalid_updates() {
    if !have("python3", &["-c", "import tuf"]) {
        eprintln!("python-tuf not installed: differential check skipped");
        return;
    }
    let w = World::new();
    let (root, v1) = w.signed_v1();
    let mut d = Diff {
        root: root.to_str().unwrap().to_owned(),
        tags: vec![("v1".into(), v1)],
        checks: 0,
        decisions: 0,
        faketime: have("faketime", &["-f", "+1d", "true"]),
        w,
    };
    for k in ["root2", "targets2", "qa1", "qa2"] {
        d.ok(&["key", "generate", "--name", k]);
    }
    let steps = if std::env::var("WARRANT_FAULTS").is_ok_and(|v| v == "full") {
        60
    } else {
        10
    };
    let mut next = rng();
    let (mut root2_in, mut roles, mut tally) = (false, 0, [0usize; 2]);
    assert_eq!(d.agree("start", false), vec![true]);
    for n in 0..steps {
        let backup = d.w.path("backup");
        copy_dir(&d.w.layout(), &backup);
        let repo = d.w.oci("");
        let (step, valid) = match next(9) {
            0 | 1 => {
                let tag = format!("t{n}");
                let (digest, _) = make_image(&d.w.layout(), &tag, &tag);
                d.ok(&["sign", &d.w.oci(&format!(":{tag}"))]);
                d.tags.push((tag.clone(), digest));
                (format!("sign {tag}"), true)
            }
            2 => {
                let flag = if root2_in { "--remove" } else { "--add" };
                root2_in = !root2_in;
                d.ok(&["key", "rotate", &repo, "--role", "root", flag, "root2"]);
                (format!("root rotation {flag} root2"), true)
            }
            3 => {
                let role = format!("qa{roles}");
                roles += 1;
                d.ok(&["delegation", "add", &repo, &role, "--key", "qa1"]);
                let tag = format!("q{n}");
                let (digest, _) = make_image(&d.w.layout(), &tag, &tag);
                d.ok(&["sign", &d.w.oci(&format!(":{tag}")), "--role", &role]);
                d.tags.push((tag.clone(), digest));
                (format!("delegation {role} signs {tag}"), true)
            }
            4 => {
                // Threshold 2 with one signature: pending, invisible to verifiers.
                let role = format!("qa{roles}");
                roles += 1;
                d.ok(&[
                    "delegation",
                    "add",
                    &repo,
                    &role,
                    "--key",
                    "qa1",
                    "--key",
                    "qa2",
                    "--threshold",
                    "2",
                ]);
                let tag = format!("p{n}");
                let (digest, _) = make_image(&d.w.layout(), &tag, &tag);
                d.ok(&[
                    "sign",
                    &d.w.oci(&format!(":{tag}")),
                    "--role",
                    &role,
                    "--key",
                    "qa1",
                ]);
                d.tags.push((tag.clone(), digest));
                (format!("{role} below threshold signs {tag}"), true)
            }
            5 => {
                let suffix = ["timestamp.json", "snapshot.json", "targets.json"][next(3) as usize];
                let path = metadata_blob(&d.w.layout(), suffix);
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                v["signed"]["expires"] = serde_json::json!("2099-01-01T00:00:00Z");
                let bytes = serde_json::to_vec(&v).unwrap();
                replace_metadata_fixing_digests(&d.w.layout(), suffix, &bytes);
                (format!("tampered {suffix} (digests fixed up)"), false)
            }
            6 => {
                let path = metadata_blob(&d.w.layout(), "targets.json");
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                v["signatures"] = serde_json::json!([]);
                let bytes = serde_json::to_vec(&v).unwrap();
                replace_metadata_fixing_digests(&d.w.layout(), "targets.json", &bytes);
                ("targets without signatures".to_owned(), false)
            }
            7 => {
                // A hash the snapshot names no longer matches: swap in the
                // previous targets file's bytes under the current name.
                let path = metadata_blob(&d.w.layout(), "targets.json");
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                v["signed"]["targets"] = serde_json::json!({});
                let bytes = serde_json::to_vec(&v).unwrap();
                replace_metadata_fixing_digests(&d.w.layout(), "targets.json", &bytes);
                (
                    "targets emptied (signature and snapshot hash broken)".to_owned(),
                    false,
                )
            }
            _ => ("clock 400 days late".to_owned(), false),
        };
        let late = step.starts_with("clock");
        if late && !d.faketime {
            continue;
        }
        let decisions = d.agree(&step, late);
        tally[usize::from(valid)] += 1;
        if !valid {
            assert!(
                decisions.iter().all(|t| !t),
                "{step}: both clients trusted something: {decisions:?}"
            );
            copy_dir(&backup, &d.w.layout());
        }
    }
    eprintln!(
        "differential: {} steps ({} valid, {} invalid), {} trust decisions, all agreed",
        tally[0] + tally[1],
        tally[1],
        tally[0],
        d.decisions
    );
}
