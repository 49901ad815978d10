//! Everything on a real OCI registry (issue #4): the CNCF distribution registry,
//! images put in with skopeo, warrant driven as a CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::registry::RegistryFixture;
use common::*;

/// A registry with `app:v1` (signed) and `app:evil` (unsigned) and the pinned root.
struct Signed {
    reg: RegistryFixture,
    w: World,
    root: PathBuf,
    digest: String,
}

fn signed() -> Signed {
    let (reg, w, root) = common::registry::signed_registry();
    // skopeo may compress layers on the way in: the registry's digest is the truth.
    let digest = manifest_digest(&reg, ":v1");
    Signed {
        reg,
        w,
        root,
        digest,
    }
}

impl Signed {
    fn verify(&self, home: &str, suffix: &str) -> Run {
        self.w.verifier(
            home,
            &[
                "verify",
                &self.reg.repo("team/app", suffix),
                "--root",
                self.root.to_str().unwrap(),
            ],
        )
    }
}

#[test]
fn sign_and_verify_against_a_registry() {
    let s = signed();
    let r = s.verify("v", ":v1");
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(
        r.stdout
            .contains(&format!("{}@{}", s.reg.repo("team/app", ""), s.digest)),
        "{}",
        r.stdout
    );
    let r = s.w.verifier(
        "v",
        &["--output", "json", "verify", &s.reg.repo("team/app", ":v1")],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["digest"], s.digest);
    assert_eq!(v["role"], "targets");
    assert!(v["expires"].is_string());
    // Unsigned tag in the same repository.
    let r = s.verify("v", ":evil");
    assert_eq!(r.code, 1, "{}", r.text());
}

#[test]
fn tag_moved_to_an_unsigned_manifest_is_rejected() {
    let s = signed();
    assert_eq!(s.verify("warm", ":v1").code, 0);
    RegistryFixture::skopeo_copy(
        &format!("docker://{}", s.reg.repo("team/app", ":evil")),
        &format!("docker://{}", s.reg.repo("team/app", ":v1")),
        &[],
    );
    for home in ["warm", "cold"] {
        let r = s.verify(home, ":v1");
        assert_eq!(r.code, 1, "{home}: {}", r.text());
        assert!(r.stderr.contains("tag was moved"), "{}", r.stderr);
    }
}

#[test]
fn older_warrant_tuf_replayed_is_rejected_with_the_cache_intact() {
    let s = signed();
    let old = s.w.verifier(
        "probe",
        &[
            "--output",
            "json",
            "verify",
            &s.reg.repo("team/app", ":v1"),
            "--root",
            s.root.to_str().unwrap(),
        ],
    );
    assert_eq!(old.code, 0);
    let old_manifest = tuf_manifest_digest(&s.reg);
    make_image(&s.w.layout(), "v2", "hello v2");
    s.reg.push(&s.w.layout(), "v2", "team/app");
    assert_eq!(
        s.w.signer(&["sign", &s.reg.repo("team/app", ":v2")]).code,
        0
    );
    assert_eq!(s.verify("v", ":v2").code, 0);
    let before = snapshot_dir(&s.w.path("v/trust"));
    RegistryFixture::skopeo_copy(
        &format!(
            "docker://{}",
            s.reg.repo("team/app", &format!("@{old_manifest}"))
        ),
        &format!("docker://{}", s.reg.repo("team/app", ":warrant.tuf")),
        &[],
    );
    assert_eq!(
        tuf_manifest_digest(&s.reg),
        old_manifest,
        "the replay took place"
    );
    let r = s.verify("v", ":v1");
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("rollback"), "{}", r.stderr);
    assert_eq!(snapshot_dir(&s.w.path("v/trust")), before);
}

fn tuf_manifest_digest(reg: &RegistryFixture) -> String {
    manifest_digest(reg, ":warrant.tuf")
}

fn manifest_digest(reg: &RegistryFixture, suffix: &str) -> String {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.repo("team/app", suffix)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sha256:{}", sha256_hex(&out.stdout))
}

#[test]
fn registry_down_is_exit_3_with_the_cache_intact() {
    let mut s = signed();
    assert_eq!(s.verify("v", ":v1").code, 0);
    let before = snapshot_dir(&s.w.path("v/trust"));
    s.reg.stop();
    let mut c = s.w.cmd(
        "v",
        &["--timeout", "2", "verify", &s.reg.repo("team/app", ":v1")],
    );
    c.env_remove("WARRANT_PASSPHRASE");
    let r = s.w.run(c);
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(
        r.stderr.contains(&s.reg.host()),
        "names the registry: {}",
        r.stderr
    );
    assert_eq!(snapshot_dir(&s.w.path("v/trust")), before);
}

#[test]
fn warm_verify_costs_two_requests_and_a_pinned_digest_one() {
    let s = signed();
    assert_eq!(s.verify("v", ":v1").code, 0);
    let n = s.reg.requests().len();
    assert_eq!(s.verify("v", ":v1").code, 0);
    let warm: Vec<String> = s.reg.requests().split_off(n);
    assert_eq!(warm.len(), 2, "warm verify requests: {warm:?}");
    assert!(warm.iter().all(|r| r.starts_with("HEAD ")), "{warm:?}");
    let n = s.reg.requests().len();
    assert_eq!(s.verify("v", &format!(":v1@{}", s.digest)).code, 0);
    let pinned: Vec<String> = s.reg.requests().split_off(n);
    assert_eq!(
        pinned,
        vec!["HEAD /v2/team/app/manifests/warrant.tuf".to_owned()]
    );
}

#[test]
fn cold_verify_reads_the_manifest_then_its_blobs_once() {
    let s = signed();
    let n = s.reg.requests().len();
    assert_eq!(s.verify("cold", ":v1").code, 0);
    let cold: Vec<String> = s.reg.requests().split_off(n);
    let blob_gets = cold
        .iter()
        .filter(|r| r.starts_with("GET /v2/team/app/blobs/"))
        .count();
    // timestamp, snapshot, targets (root v1 came from the pin).
    assert_eq!(blob_gets, 3, "{cold:?}");
    assert_eq!(
        cold.iter()
            .filter(|r| r.contains("/manifests/warrant.tuf"))
            .count(),
        2,
        "HEAD + GET: {cold:?}"
    );
}

/// Issue #14: on first contact with a key-id pin the anchor check (which reads the
/// repository's first root) and the update share one read of `warrant.tuf`.
#[test]
fn first_contact_with_a_key_id_pin_reads_the_listing_once() {
    let s = signed();
    let root: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.root).unwrap()).unwrap();
    let mut args = vec!["verify".to_owned(), s.reg.repo("team/app", ":v1")];
    for id in root["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .unwrap()
    {
        args.push("--root-keyid".into());
        args.push(id.as_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let n = s.reg.requests().len();
    let r = s.w.verifier("keyid-pin", &args);
    assert_eq!(r.code, 0, "{}", r.text());
    let first: Vec<String> = s.reg.requests().split_off(n);
    assert_eq!(
        first
            .iter()
            .filter(|r| r.starts_with("GET /v2/team/app/manifests/warrant.tuf"))
            .count(),
        1,
        "one listing read: {first:?}"
    );
    let mut blobs: Vec<&String> = first
        .iter()
        .filter(|r| r.starts_with("GET /v2/team/app/blobs/"))
        .collect();
    // 1.root.json (for the pin), timestamp, snapshot, targets: each once.
    assert_eq!(blobs.len(), 4, "{first:?}");
    blobs.dedup();
    assert_eq!(blobs.len(), 4, "no blob read twice: {first:?}");
}

#[test]
fn basic_auth_from_docker_config_and_from_a_credential_helper() {
    let reg = RegistryFixture::with_auth("alice", "s3cret-pass");
    let w = World::new();
    make_image(&w.layout(), "v1", "private");
    reg.push(&w.layout(), "v1", "private/app");
    // Without credentials: a clear access error, exit 3.
    let docker = w.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let mut c = w.cmd("signer", &["init", &reg.repo("private/app", "")]);
    c.env("DOCKER_CONFIG", &docker);
    let r = w.run(c);
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(r.stderr.contains("docker login"), "{}", r.stderr);
    // An auths entry.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pass");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    for args in [
        vec!["init", &reg.repo("private/app", "")[..]],
        vec!["sign", &reg.repo("private/app", ":v1")[..]],
    ] {
        let mut c = w.cmd("signer", &args);
        c.env("DOCKER_CONFIG", &docker);
        let r = w.run(c);
        assert_eq!(r.code, 0, "{}", r.text());
        assert!(!r.text().contains("s3cret-pass"));
    }
    // A credential helper on PATH.
    let bin = w.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-warranttest");
    std::fs::write(&helper, "#!/bin/sh\nread host\necho '{\"ServerURL\":\"'$host'\",\"Username\":\"alice\",\"Secret\":\"s3cret-pass\"}'\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper_config = w.path("docker-helper");
    std::fs::create_dir_all(&helper_config).unwrap();
    std::fs::write(
        helper_config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"warranttest"}}}}"#, reg.host()),
    )
    .unwrap();
    let export = w.path("export");
    let mut c = w.cmd(
        "signer",
        &[
            "export",
            &reg.repo("private/app", ""),
            export.to_str().unwrap(),
        ],
    );
    c.env("DOCKER_CONFIG", &docker);
    assert_eq!(w.run(c).code, 0);
    let mut c = w.cmd(
        "verifier",
        &[
            "verify",
            &reg.repo("private/app", ":v1"),
            "--root",
            export.join("1.root.json").to_str().unwrap(),
        ],
    );
    c.env("DOCKER_CONFIG", &helper_config).env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let r = w.run(c);
    assert_eq!(r.code, 0, "{}", r.text());
}

#[test]
fn eight_concurrent_signers_lose_nothing() {
    let reg = RegistryFixture::start();
    let w = World::new();
    for i in 0..8 {
        make_image(&w.layout(), &format!("t{i}"), &format!("image {i}"));
        reg.push(&w.layout(), &format!("t{i}"), "team/app");
    }
    assert_eq!(w.signer(&["init", &reg.repo("team/app", "")]).code, 0);
    // Eight CI jobs: each its own machine (home) holding copies of the keys.
    let keys = w.path("signer/keys");
    let children: Vec<_> = (0..8)
        .map(|i| {
            let home = w.path(&format!("ci{i}"));
            std::fs::create_dir_all(&home).unwrap();
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
    assert_eq!(
        w.signer(&[
            "export",
            &reg.repo("team/app", ""),
            export.to_str().unwrap()
        ])
        .code,
        0
    );
    for i in 0..8 {
        let r = w.verifier(
            "v",
            &[
                "verify",
                &reg.repo("team/app", &format!(":t{i}")),
                "--root",
                export.join("1.root.json").to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "t{i}: {}", r.text());
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn skopeo_copy_carries_the_trust_to_another_registry_and_to_a_layout() {
    let s = signed();
    let other = RegistryFixture::start();
    for tag in ["v1", "warrant.tuf"] {
        RegistryFixture::skopeo_copy(
            &format!("docker://{}", s.reg.repo("team/app", &format!(":{tag}"))),
            &format!("docker://{}", other.repo("mirror/app", &format!(":{tag}"))),
            &[],
        );
    }
    let pin = s.root.to_str().unwrap();
    let r = s.w.verifier(
        "m",
        &["verify", &other.repo("mirror/app", ":v1"), "--root", pin],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    let layout = s.w.path("airgap");
    for tag in ["v1", "warrant.tuf"] {
        RegistryFixture::skopeo_copy(
            &format!("docker://{}", s.reg.repo("team/app", &format!(":{tag}"))),
            &format!("oci:{}:{tag}", layout.display()),
            &[],
        );
    }
    let r = s.w.verifier(
        "a",
        &[
            "verify",
            &format!("oci:{}:v1", layout.display()),
            "--root",
            pin,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
}
