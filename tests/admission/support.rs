//! Fixtures of the admission tests: a signed registry, the webhook on a free
//! port with the install script's certificate, an HTTPS client trusting it, and
//! AdmissionReview bodies as the API server sends them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use warrant::admission::{Config, Running};

use crate::common::registry::RegistryFixture;
use crate::common::*;

/// A registry with `team/app:v1` and `:v2` signed, `:evil` unsigned, and
/// `team/bare` holding an image but no TUF repository.
pub struct Signed {
    pub reg: RegistryFixture,
    pub w: World,
    pub root: PathBuf,
    pub digests: BTreeMap<&'static str, String>,
}

pub fn manifest_digest(reg: &RegistryFixture, repo: &str, tag: &str) -> String {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.repo(repo, &format!(":{tag}"))))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sha256:{}", sha256_hex(&out.stdout))
}

pub fn sign_in(reg: RegistryFixture, docker: Option<&Path>) -> Signed {
    let w = World::new();
    for (tag, content) in [("v1", "hello v1"), ("v2", "hello v2"), ("evil", "evil")] {
        make_image(&w.layout(), tag, content);
        reg.push(&w.layout(), tag, "team/app");
    }
    reg.push(&w.layout(), "v1", "team/bare");
    let signer = |args: &[&str]| {
        let mut c = w.cmd("signer", args);
        if let Some(d) = docker {
            c.env("DOCKER_CONFIG", d);
        }
        let r = w.run(c);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    };
    signer(&["init", &reg.repo("team/app", "")]);
    signer(&["sign", &reg.repo("team/app", ":v1")]);
    signer(&["sign", &reg.repo("team/app", ":v2")]);
    let export = w.path("export");
    signer(&[
        "export",
        &reg.repo("team/app", ""),
        export.to_str().unwrap(),
    ]);
    let digests = if reg.creds.is_none() {
        ["v1", "v2", "evil"]
            .into_iter()
            .map(|t| (t, manifest_digest(&reg, "team/app", t)))
            .collect()
    } else {
        BTreeMap::new()
    };
    Signed {
        reg,
        w,
        root: export.join("1.root.json"),
        digests,
    }
}

pub fn signed() -> Signed {
    sign_in(RegistryFixture::start(), None)
}

/// The serving certificate, made by the install script itself (so the script is
/// tested too), for 127.0.0.1.
pub fn certs(dir: &Path) -> PathBuf {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-manifest/kubernetes/make-certs.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["--out", dir.to_str().unwrap(), "--san", "IP:127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_owned()
}

/// A policy trusting `host/team/*` under the exported root.
pub fn policy(s: &Signed, host: &str, extra: &str) -> PathBuf {
    let p =
        s.w.path(&format!("policy-{}.toml", host.replace([':', '.'], "-")));
    std::fs::write(
        &p,
        format!(
            "[[repository]]\nmatch = \"{host}/team/*\"\nroot = \"{}\"\n{extra}",
            s.root.display()
        ),
    )
    .unwrap();
    p
}

pub struct Server {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
}

pub fn https_client(ca: &Path) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn serve_with(
    s: &Signed,
    home: &str,
    policy: PathBuf,
    tweak: impl FnOnce(&mut Config),
) -> Server {
    let certs = certs(&s.w.path("certs"));
    let mut c = Config::new(
        "127.0.0.1:0".parse().unwrap(),
        certs.join("tls.crt"),
        certs.join("tls.key"),
        policy,
        s.w.path(home),
    );
    c.deadline = Duration::from_secs(5);
    c.network.timeout = Duration::from_secs(5);
    c.shutdown_delay = Duration::ZERO;
    tweak(&mut c);
    let running = warrant::admission::start(c).await.unwrap();
    Server {
        base: format!("https://{}", running.local_addr()),
        running: Some(running),
        client: https_client(&certs.join("ca.crt")),
    }
}

pub async fn serve(s: &Signed, home: &str) -> Server {
    serve_with(s, home, policy(s, &s.reg.host(), ""), |_| {}).await
}

impl Server {
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POST a review; the response part of the answer (uid checked).
    pub async fn review(&self, path: &str, body: Vec<u8>) -> Value {
        let (status, text) = self.post(path, body).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], UID);
        v["response"].clone()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(Duration::ZERO).await;
        }
    }
}

pub const UID: &str = "b4b5e9a2-8c7d-4f4e-9a51-6f1c1d2e3f40";

pub fn review(group: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "name": "web", "namespace": "team", "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap()
}

pub fn pod_spec(containers: &[&str], init: &[&str], ephemeral: &[&str]) -> Value {
    let list = |imgs: &[&str], prefix: &str| -> Vec<Value> {
        imgs.iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("{prefix}{i}"), "image": im, "imagePullPolicy": "IfNotPresent"}))
            .collect()
    };
    json!({
        "containers": list(containers, "app"),
        "initContainers": list(init, "init"),
        "ephemeralContainers": list(ephemeral, "debug"),
        "restartPolicy": "Always"
    })
}

pub fn pod(spec: Value) -> Vec<u8> {
    review(
        "",
        "Pod",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team"}, "spec": spec}),
    )
}

pub fn deployment(spec: Value) -> Vec<u8> {
    review(
        "apps",
        "Deployment",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}}),
    )
}

pub fn cronjob(spec: Value) -> Vec<u8> {
    review(
        "batch",
        "CronJob",
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
               "spec": {"schedule": "0 3 * * *",
                        "jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
    )
}

pub fn patch_ops(response: &Value) -> Vec<(String, String, String)> {
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let ops: Vec<Value> = serde_json::from_slice(&raw).unwrap();
    ops.iter()
        .map(|o| {
            (
                o["op"].as_str().unwrap().to_owned(),
                o["path"].as_str().unwrap().to_owned(),
                o["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Apply an RFC 6902 patch of test/replace operations, as the API server would.
pub fn apply(object: &mut Value, ops: &[(String, String, String)]) {
    for (op, path, value) in ops {
        let at = object.pointer_mut(path).unwrap();
        match op.as_str() {
            "test" => assert_eq!(at, &json!(value), "test op failed at {path}"),
            "replace" => *at = json!(value),
            other => panic!("unexpected op {other}"),
        }
    }
}

/// POST `len` bytes (with `Transfer-Encoding: chunked`, or a `Content-Length`)
/// over a raw TLS stream, reading while writing; the response's status code.
pub async fn raw_post(s: &Signed, srv: &Server, len: usize, chunked: bool) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ca = std::fs::read(s.w.path("certs/ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let addr = srv.running.as_ref().unwrap().local_addr();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {len}")
    };
    tls.write_all(format!("POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{framing}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Write in a task of its own and read at the same time: the server answers
    // as soon as the cap is passed, and closes without reading the rest.
    let (mut rd, mut wr) = tokio::io::split(tls);
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            let (head, tail) = if chunked {
                (format!("{:x}\r\n", chunk.len()), &b"\r\n"[..])
            } else {
                (String::new(), &b""[..])
            };
            if wr.write_all(head.as_bytes()).await.is_err()
                || wr.write_all(&chunk).await.is_err()
                || wr.write_all(tail).await.is_err()
            {
                return;
            }
            sent += chunk.len();
        }
        if chunked {
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut buf = vec![0u8; 64];
    let n = rd.read(&mut buf).await.unwrap();
    writer.abort();
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

pub fn requests_to(reg: &RegistryFixture, what: &str) -> usize {
    reg.requests().iter().filter(|r| r.contains(what)).count()
}
