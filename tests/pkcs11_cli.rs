//! Keys that never leave hardware (issue #15), with a SoftHSM2 token per test under
//! its own `SOFTHSM2_CONF`, against the real registry: root and targets keys on the
//! token, signing, root moved from the token to a file key and back, verification by
//! warrant and python-tuf, and nothing secret under `$WARRANT_HOME`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::registry::RegistryFixture;
use common::*;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Hsm {
    w: World,
    conf: std::path::PathBuf,
}

impl Hsm {
    /// A fresh token labelled `warrant` (user PIN 1234).
    fn new() -> Self {
        let w = World::new();
        let tokens = w.path("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = w.path("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\n", tokens.display()),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "warrant",
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util (Debian package softhsm2)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { w, conf }
    }

    fn uri(object: &str) -> String {
        format!("pkcs11:token=warrant;object={object}?module-path={MODULE}")
    }

    fn run(&self, home: &str, pin: &str, args: &[&str]) -> Run {
        let mut c = self.w.cmd(home, args);
        c.env("SOFTHSM2_CONF", &self.conf)
            .env("WARRANT_PKCS11_PIN", pin);
        self.w.run(c)
    }

    fn ok(&self, home: &str, args: &[&str]) -> Run {
        let r = self.run(home, "1234", args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    }

    fn key_id(&self, name: &str) -> String {
        let r = self.ok("signer", &["--output", "json", "key", "list"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {}", r.stdout))["keyid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[test]
fn root_and_targets_on_a_token_sign_rotate_and_verify() {
    let hsm = Hsm::new();
    let reg = RegistryFixture::start();
    make_image(&hsm.w.layout(), "v1", "one");
    make_image(&hsm.w.layout(), "v2", "two");
    reg.push(&hsm.w.layout(), "v1", "team/app");
    reg.push(&hsm.w.layout(), "v2", "team/app");
    let repo = reg.repo("team/app", "");

    // ECDSA P-256 root and Ed25519 targets generated on the token.
    hsm.ok(
        "signer",
        &[
            "key",
            "generate",
            "--pkcs11",
            &Hsm::uri("root-1"),
            "--type",
            "ecdsa",
        ],
    );
    hsm.ok(
        "signer",
        &[
            "key",
            "generate",
            "--pkcs11",
            &Hsm::uri("targets-1"),
            "--type",
            "ed25519",
        ],
    );
    let list = hsm.ok("signer", &["key", "list"]);
    assert!(
        list.stdout
            .contains("on token: pkcs11:token=warrant;object=root-1"),
        "{}",
        list.stdout
    );
    let root_id = hsm.key_id("root-1");
    let targets_id = hsm.key_id("targets-1");

    hsm.ok(
        "signer",
        &[
            "init",
            &repo,
            "--root-key",
            "root-1",
            "--targets-key",
            "targets-1",
        ],
    );
    hsm.ok("signer", &["sign", &format!("{repo}:v1")]);
    let v = hsm.w.verifier(
        "v",
        &["verify", &format!("{repo}:v1"), "--root-keyid", &root_id],
    );
    assert_eq!(v.code, 0, "{}", v.text());

    // Nothing secret of a token key under $WARRANT_HOME: no private key file.
    for id in [&root_id, &targets_id] {
        assert!(!hsm.w.path(&format!("signer/keys/{id}.key")).exists());
    }
    for entry in std::fs::read_dir(hsm.w.path("signer/keys")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!text.contains("1234"), "the PIN is never written");
    }

    // A wrong PIN is a configuration error that says so, and publishes nothing.
    let r = hsm.run("signer", "0000", &["sign", &format!("{repo}:v2")]);
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(
        r.stderr.contains("PIN for token \"warrant\" was refused"),
        "{}",
        r.stderr
    );
    assert!(!r.text().contains("0000"), "the PIN is never echoed");

    // Root moves from the token to a file key and back; verifiers follow.
    hsm.ok("signer", &["key", "generate", "--name", "root-file"]);
    hsm.ok(
        "signer",
        &[
            "key",
            "rotate",
            &repo,
            "--role",
            "root",
            "--remove",
            "root-1",
            "--add",
            "root-file",
        ],
    );
    hsm.ok(
        "signer",
        &[
            "key",
            "rotate",
            &repo,
            "--role",
            "root",
            "--remove",
            "root-file",
            "--add",
            "root-1",
        ],
    );
    hsm.ok("signer", &["sign", &format!("{repo}:v2")]);
    for tag in ["v1", "v2"] {
        let v = hsm.w.verifier("v", &["verify", &format!("{repo}:{tag}")]);
        assert_eq!(v.code, 0, "{tag}: {}", v.text());
    }

    // python-tuf checks every signature the token made, independently of warrant.
    let export = hsm.w.path("export");
    hsm.ok("signer", &["export", &repo, export.to_str().unwrap()]);
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/e2e/interop_export.py"
        ))
        .arg(&export)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python-tuf: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_errors_say_what_to_do() {
    let hsm = Hsm::new();
    for (uri, expect) in [
        (
            format!("pkcs11:token=nope;object=k?module-path={MODULE}"),
            "no PKCS#11 token labelled \"nope\"",
        ),
        (
            "pkcs11:token=warrant;object=k?module-path=/nonexistent/module.so".to_owned(),
            "cannot load PKCS#11 module",
        ),
        (
            format!("pkcs11:token=warrant;object=k?module-path={MODULE}&pin-value=1234"),
            "pin-value is refused",
        ),
        // In the path part too: it would otherwise be kept in the stored URI.
        (
            format!("pkcs11:token=warrant;object=k;pin-value=1234?module-path={MODULE}"),
            "pin-value is refused",
        ),
    ] {
        let r = hsm.run("signer", "1234", &["key", "generate", "--pkcs11", &uri]);
        assert_eq!(r.code, 2, "{uri}: {}", r.text());
        assert!(r.stderr.contains(expect), "{uri}: {}", r.stderr);
    }
    let r = hsm.run(
        "signer",
        "1234",
        &["key", "import", "--pkcs11", &Hsm::uri("missing")],
    );
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(
        r.stderr.contains("no private key \"missing\""),
        "{}",
        r.stderr
    );
    // An existing token key registered in a second home signs there too.
    hsm.ok(
        "signer",
        &[
            "key",
            "generate",
            "--pkcs11",
            &Hsm::uri("shared"),
            "--type",
            "ecdsa",
        ],
    );
    hsm.ok("other", &["key", "import", "--pkcs11", &Hsm::uri("shared")]);
    let r = hsm.ok("other", &["key", "list"]);
    assert!(
        r.stdout.contains("shared") && r.stdout.contains("on token:"),
        "{}",
        r.stdout
    );
    // Its private half cannot be exported: it is not in the store.
    let r = hsm.run("other", "1234", &["key", "export", "shared"]);
    assert_ne!(r.code, 0, "{}", r.text());
}
