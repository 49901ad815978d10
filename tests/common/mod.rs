//! Shared fixtures: OCI image layouts made in-process, and a `warrant` runner with its
//! own homes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// Make (or extend) an OCI layout with a tiny image tagged `tag` whose single
/// "layer" holds `content`. Returns the manifest digest and size.
pub fn make_image(layout: &Path, tag: &str, content: &str) -> (String, u64) {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let layer = content.as_bytes();
    let layer_digest = put_blob(layout, layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    }))
    .unwrap();
    let config_digest = put_blob(layout, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
    }))
    .unwrap();
    let digest = put_blob(layout, &manifest);
    let index_path = layout.join("index.json");
    let mut index: Value = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({"schemaVersion": 2, "manifests": []}));
    let manifests = index["manifests"].as_array_mut().unwrap();
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
    manifests.push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    (digest, manifest.len() as u64)
}

/// Point `tag` at the manifest of `to_tag` (the registry serves something else).
pub fn retag(layout: &Path, tag: &str, to_tag: &str) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    let name = |m: &Value| {
        m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .map(str::to_owned)
    };
    let target = manifests
        .iter()
        .find(|m| name(m).as_deref() == Some(to_tag))
        .unwrap()
        .clone();
    for m in manifests.iter_mut() {
        if name(m).as_deref() == Some(tag) {
            m["digest"] = target["digest"].clone();
            m["size"] = target["size"].clone();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The `warrant.tuf` artifact manifest of a layout (parsed) and its blob path.
pub fn tuf_manifest(layout: &Path) -> (Value, PathBuf) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "warrant.tuf")
        .unwrap()
        .clone();
    let path = blob_path(layout, entry["digest"].as_str().unwrap());
    (
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap(),
        path,
    )
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The blob path of the listed metadata file whose name ends with `suffix`.
pub fn metadata_blob(layout: &Path, suffix: &str) -> PathBuf {
    let (m, _) = tuf_manifest(layout);
    let layer = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
                .ends_with(suffix)
        })
        .unwrap()
        .clone();
    blob_path(layout, layer["digest"].as_str().unwrap())
}

/// Replace the metadata file `suffix` with `new` bytes and fix up every OCI digest
/// (blob, artifact manifest, index.json), as an attacker with write access would.
pub fn replace_metadata_fixing_digests(layout: &Path, suffix: &str, new: &[u8]) {
    let (mut m, _) = tuf_manifest(layout);
    let new_digest = put_blob(layout, new);
    for l in m["layers"].as_array_mut().unwrap() {
        if l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap()
            .ends_with(suffix)
        {
            l["digest"] = json!(new_digest);
            l["size"] = json!(new.len());
        }
    }
    let mbytes = serde_json::to_vec(&m).unwrap();
    let mdigest = put_blob(layout, &mbytes);
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for e in index["manifests"].as_array_mut().unwrap() {
        if e["annotations"]["org.opencontainers.image.ref.name"] == "warrant.tuf" {
            e["digest"] = json!(mdigest);
            e["size"] = json!(mbytes.len());
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A scratch world: a layout, a signer home, and verifier homes.
pub struct World {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl World {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn layout(&self) -> PathBuf {
        self.path("layout")
    }

    /// `oci:<layout>` plus an optional `:tag` suffix.
    pub fn oci(&self, suffix: &str) -> String {
        format!("oci:{}{}", self.layout().display(), suffix)
    }

    fn output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn cmd(&self, home: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_warrant"));
        c.args(args)
            .env("WARRANT_HOME", self.path(home))
            .env("WARRANT_PASSPHRASE", "test passphrase")
            .env_remove("WARRANT_LOG")
            .stdin(std::process::Stdio::null());
        c
    }

    /// Run warrant as the signer (home `signer`).
    pub fn signer(&self, args: &[&str]) -> Run {
        Self::output(self.cmd("signer", args).output().unwrap())
    }

    /// Run warrant as a verifier with its own home.
    pub fn verifier(&self, home: &str, args: &[&str]) -> Run {
        let mut c = self.cmd(home, args);
        c.env_remove("WARRANT_PASSPHRASE");
        Self::output(c.output().unwrap())
    }

    /// Run with an arbitrary prepared command.
    pub fn run(&self, mut c: Command) -> Run {
        Self::output(c.output().unwrap())
    }

    /// init + sign `v1`; returns the path of the exported 1.root.json to pin.
    pub fn signed_v1(&self) -> (PathBuf, String) {
        let (digest, _) = make_image(&self.layout(), "v1", "hello v1");
        make_image(&self.layout(), "evil", "evil");
        let r = self.signer(&["init", &self.oci("")]);
        assert_eq!(r.code, 0, "{}", r.text());
        let r = self.signer(&["sign", &self.oci(":v1")]);
        assert_eq!(r.code, 0, "{}", r.text());
        let export = self.path("export");
        let r = self.signer(&["export", &self.oci(""), export.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.text());
        (export.join("1.root.json"), digest)
    }
}

/// Every file under `dir` with its bytes (to prove a cache is untouched).
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with(".lock") {
                out.push((p.clone(), sha256_hex(&std::fs::read(&p).unwrap())));
            }
        }
    }
    out.sort();
    out
}
pub mod faults;
pub mod hostile;
pub mod matrix;
pub mod registry;
pub mod requests;

/// An `openssl req -x509` CA (P-256) with its key as unencrypted PKCS#8.
pub fn openssl_ca(
    dir: &std::path::Path,
    name: &str,
    days: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
        ])
        .arg(days.to_string())
        .args(["-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}
