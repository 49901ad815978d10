//! Load bench of `warrant serve admission` on loopback: a real registry (the
//! fixture of the integration tests), three signed images, the webhook in-process
//! on its own 2-worker runtime (as `warrant serve admission` runs it), and a lean
//! HTTP/1.1 + TLS client on one more thread of the same machine, sending
//! `/mutate` reviews of a Pod with 3 images (2 containers, 1 init container).
//!
//! Phases, each bounded in requests and time:
//!
//! * cold: a fresh server and an empty trusted cache, first admission (the full
//!   TUF update of three repositories);
//! * re-check: `--recheck 0`, so every admission goes to the registry (1 HEAD per
//!   image when warrant.tuf is unchanged), concurrent ones sharing a verification;
//! * warm: answers from the cache, at 1 connection (the latency floor) and at 32.
//!
//! `cargo bench --bench admission_load` (prints figures, asserts nothing beyond
//! "every answer was allowed"). Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_rustls::TlsConnector;
use warrant::admission::{Config, Running};

use common::World;
use common::registry::RegistryFixture;

const REPOS: [&str; 3] = ["team/app", "team/sidecar", "team/init"];

struct Setup {
    reg: RegistryFixture,
    w: World,
    policy: PathBuf,
    certs: PathBuf,
}

fn setup() -> Setup {
    let reg = RegistryFixture::start();
    let w = World::new();
    common::make_image(&w.layout(), "v1", "bench image");
    let mut roots = Vec::new();
    for repo in REPOS {
        reg.push(&w.layout(), "v1", repo);
        for args in [
            vec!["init".to_owned(), reg.repo(repo, "")],
            vec!["sign".to_owned(), reg.repo(repo, ":v1")],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = w.signer(&args);
            assert_eq!(r.code, 0, "{}", r.text());
        }
        let export = w.path(&format!("export-{}", repo.replace('/', "-")));
        let r = w.signer(&["export", &reg.repo(repo, ""), export.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.text());
        roots.push((repo, export.join("1.root.json")));
    }
    let mut policy = String::new();
    for (repo, root) in &roots {
        policy.push_str(&format!(
            "[[repository]]\nmatch = \"{}\"\nroot = \"{}\"\n\n",
            reg.repo(repo, ""),
            root.display()
        ));
    }
    let policy_path = w.path("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let certs = w.path("certs");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-manifest/kubernetes/make-certs.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["--out", certs.to_str().unwrap(), "--san", "IP:127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Setup {
        reg,
        w,
        policy: policy_path,
        certs,
    }
}

/// The review body: a Pod with two containers and an init container.
fn pod_review(s: &Setup) -> Bytes {
    let img = |repo: &str| s.reg.repo(repo, ":v1");
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f0c1a9e-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web-7d9f8b6c5-x2x9z", "namespace": "team", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-7d9f8b6c5-x2x9z", "namespace": "team",
                             "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5"}},
                "spec": {
                    "initContainers": [{"name": "migrate", "image": img("team/init"),
                                        "command": ["/migrate"], "resources": {}}],
                    "containers": [
                        {"name": "web", "image": img("team/app"), "ports": [{"containerPort": 8080}],
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                        {"name": "proxy", "image": img("team/sidecar"), "ports": [{"containerPort": 15001}]}
                    ],
                    "restartPolicy": "Always", "serviceAccountName": "web"
                }
            },
            "oldObject": null, "dryRun": false
        }
    });
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

/// Start a server on its own 2-worker runtime (what `serve` builds on 2 cores).
fn server(s: &Setup, home: &str, recheck: Duration) -> (tokio::runtime::Runtime, Running) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Config::new(
        "127.0.0.1:0".parse().unwrap(),
        s.certs.join("tls.crt"),
        s.certs.join("tls.key"),
        s.policy.clone(),
        s.w.path(home),
    );
    c.cache.recheck = recheck;
    c.shutdown_delay = Duration::ZERO;
    let running = rt.block_on(warrant::admission::start(c)).unwrap();
    (rt, running)
}

fn connector(ca: &Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr, tls: &TlsConnector) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tls.connect(name, tcp).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn one(sender: &mut Sender, body: &Bytes) -> Duration {
    let req = hyper::Request::post("/mutate")
        .header("host", "warrant-admission.warrant-system.svc")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let start = Instant::now();
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let took = start.elapsed();
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    assert!(
        status == 200
            && text.contains("\"allowed\":true")
            && text.contains("\"patchType\":\"JSONPatch\""),
        "{status}: {text}"
    );
    took
}

struct Stats {
    n: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let i = ((self.lat.len() as f64 * p).ceil() as usize).clamp(1, self.lat.len()) - 1;
        self.lat[i]
    }
    fn print(&self, label: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label:<44} {:>7} req {:>9.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   p99.9 {:>7.3} ms   max {:>7.3} ms",
            self.n,
            self.n as f64 / self.elapsed.as_secs_f64(),
            ms(self.pct(0.50)),
            ms(self.pct(0.99)),
            ms(self.pct(0.999)),
            ms(*self.lat.last().unwrap()),
        );
    }
}

/// `total` requests (at most `max` time) over `conns` keep-alive connections.
fn load(
    addr: SocketAddr,
    ca: &Path,
    body: &Bytes,
    conns: usize,
    total: usize,
    max: Duration,
) -> Stats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = connector(ca);
        let mut senders = Vec::new();
        for _ in 0..conns {
            senders.push(connect(addr, &tls).await);
        }
        let issued = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|mut sender| {
                let issued = Arc::clone(&issued);
                let body = body.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(total / conns + 1);
                    while issued.fetch_add(1, Ordering::Relaxed) < total && start.elapsed() < max {
                        lat.push(one(&mut sender, &body).await);
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::with_capacity(total);
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed();
        lat.sort_unstable();
        Stats {
            n: lat.len(),
            elapsed,
            lat,
        }
    })
}

fn main() {
    // `cargo bench` passes --bench; anything else (`cargo test --benches`) only
    // checks that it builds and starts.
    if !std::env::args().any(|a| a == "--bench") {
        println!("admission_load: run with `cargo bench --bench admission_load`");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!("setting up: registry, 3 repositories signed, serving certificate ...");
    let s = setup();
    let body = pod_review(&s);
    let ca = s.certs.join("ca.crt");
    println!(
        "admission of a Pod with 3 images ({} B review) to /mutate, loopback, {} cores",
        body.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Cold: new server, empty trusted cache, first admission.
    let mut cold = Vec::new();
    for round in 0..5 {
        let (rt, running) = server(&s, &format!("cold-{round}"), Duration::from_secs(30));
        let st = load(
            running.local_addr(),
            &ca,
            &body,
            1,
            1,
            Duration::from_secs(30),
        );
        cold.extend(st.lat);
        rt.block_on(running.shutdown(Duration::ZERO));
    }
    cold.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<44} {:>7} req   min {:>7.3} ms   median {:>7.3} ms   max {:>7.3} ms",
        "cold (empty trust cache, 3 TUF updates)",
        cold.len(),
        ms(cold[0]),
        ms(cold[cold.len() / 2]),
        ms(cold[cold.len() - 1])
    );

    // Every admission goes to the registry (the trusted metadata is warm).
    let (rt, running) = server(&s, "recheck", Duration::ZERO);
    load(
        running.local_addr(),
        &ca,
        &body,
        1,
        3,
        Duration::from_secs(30),
    );
    let before = s.reg.requests().len();
    load(
        running.local_addr(),
        &ca,
        &body,
        1,
        100,
        Duration::from_secs(30),
    )
    .print("re-check every admission, 1 connection");
    let per = (s.reg.requests().len() - before) as f64 / 100.0;
    println!("{:<44} {per:.1} registry requests per admission", "");
    load(
        running.local_addr(),
        &ca,
        &body,
        32,
        2_000,
        Duration::from_secs(30),
    )
    .print("re-check every admission, 32 connections");
    rt.block_on(running.shutdown(Duration::ZERO));
    drop(rt);

    // Warm.
    let (rt, running) = server(&s, "warm", Duration::from_secs(300));
    let addr = running.local_addr();
    load(addr, &ca, &body, 32, 5_000, Duration::from_secs(30));
    let before = s.reg.requests().len();
    load(addr, &ca, &body, 1, 5_000, Duration::from_secs(20)).print("warm, 1 connection");
    load(addr, &ca, &body, 32, 100_000, Duration::from_secs(20)).print("warm, 32 connections");
    println!(
        "{:<44} {} registry requests during the warm phases",
        "",
        s.reg.requests().len() - before
    );
    let metrics = rt.block_on(async {
        let m = running.metrics().render(running.cache().len());
        running.shutdown(Duration::ZERO).await;
        m
    });
    for l in metrics.lines().filter(|l| {
        l.starts_with("warrant_admission_cache_")
            || l.starts_with("warrant_admission_registry_checks")
    }) {
        println!("  {l}");
    }
}
