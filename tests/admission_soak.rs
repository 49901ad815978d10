//! Issue #17 item 5: soak of `warrant serve admission`, the real server process,
//! against the real registry behind a proxy that goes down and comes back
//! (connection refused or reset, alternately) every `WARRANT_SOAK_FLIP_SECONDS`.
//! Reviews of one image each — a signed tag, the same image by digest, an
//! unsigned tag, a signed tag moved to other bytes — go to `/mutate` at a steady
//! `WARRANT_SOAK_RATE` per second. Every request must be answered, and every
//! answer must be right for the registry's state at that moment
//! (`admission_soak/judge.rs` says exactly what that means under the server's
//! answer cache). The server's RSS and open file descriptors are sampled every
//! `WARRANT_SOAK_SAMPLE_SECONDS` (default: each flip period, mid-way) and must
//! stay flat after the warm-up (`admission_soak/usage.rs`).
//!
//! Without settings this is a smoke of 24 s (flips every 6 s) that `make test`
//! runs; `make soak` runs 10 minutes with flips every 30 s. Other settings:
//! `WARRANT_SOAK_RECHECK_SECONDS` (the server's `--recheck`, default a third of
//! the flip period, so each outage outlives the cached answers),
//! `WARRANT_SOAK_GRACE_MS` (default 1000), `WARRANT_SOAK_BIN` (default the
//! `warrant` of this build). Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "admission_soak/judge.rs"]
mod judge;
#[path = "admission_soak/report.rs"]
mod report;
#[path = "admission/support.rs"]
mod support;
#[path = "admission_soak/toggle.rs"]
mod toggle;
#[path = "admission_soak/usage.rs"]
mod usage;

use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use common::registry::RegistryFixture;
use common::*;
use judge::{Judge, Kind, Outcome, Record, Verdict};
use toggle::{Down, ToggleProxy};
use usage::{Sample, growth, usage};

struct Settings {
    seconds: u64,
    flip: u64,
    rate: u64,
    recheck: u64,
    sample: u64,
    grace: Duration,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        let seconds = env_u64("WARRANT_SOAK_SECONDS", 24);
        let flip = env_u64(
            "WARRANT_SOAK_FLIP_SECONDS",
            if seconds >= 300 { 30 } else { 6 },
        )
        .max(1);
        Self {
            seconds,
            flip,
            rate: env_u64("WARRANT_SOAK_RATE", 20).max(1),
            recheck: env_u64("WARRANT_SOAK_RECHECK_SECONDS", (flip / 3).max(1)),
            sample: env_u64("WARRANT_SOAK_SAMPLE_SECONDS", flip).max(1),
            grace: Duration::from_millis(env_u64("WARRANT_SOAK_GRACE_MS", 1000)),
        }
    }
}

/// The registry, the proxy in front of it, and the images behind the proxy.
struct Images {
    /// Kept for the soak's length: stopped on drop.
    _registry: RegistryFixture,
    proxy: ToggleProxy,
    w: World,
    root: std::path::PathBuf,
    /// The manifest digest of the signed `v1`.
    digest: String,
}

impl Images {
    fn reference(&self, kind: Kind) -> String {
        let app = format!("{}/team/app", self.proxy.host());
        match kind {
            Kind::SignedTag => format!("{app}:v1"),
            Kind::SignedDigest => format!("{app}:v1@{}", self.digest),
            Kind::Unsigned => format!("{app}:evil"),
            Kind::Moved => format!("{app}:moved"),
        }
    }

    /// What `/mutate` must pin a signed image to.
    fn pinned(&self, kind: Kind) -> Option<String> {
        match kind {
            Kind::SignedTag => Some(format!("{}@{}", self.reference(kind), self.digest)),
            _ => None,
        }
    }
}

fn images(rt: &tokio::runtime::Runtime) -> Images {
    let reg = RegistryFixture::start();
    let proxy = rt.block_on(ToggleProxy::start(&reg.host()));
    let w = World::new();
    for (tag, content) in [
        ("v1", "soak v1"),
        ("evil", "soak evil"),
        ("moved", "soak moved, signed"),
    ] {
        make_image(&w.layout(), tag, content);
        reg.push(&w.layout(), tag, "team/app");
    }
    let repo = format!("{}/team/app", proxy.host());
    let export = w.path("export");
    for args in [
        vec!["init".to_owned(), repo.clone()],
        vec!["sign".to_owned(), format!("{repo}:v1")],
        vec!["sign".to_owned(), format!("{repo}:moved")],
        vec![
            "export".to_owned(),
            repo.clone(),
            export.display().to_string(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = w.signer(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    }
    // The signed tag now names other bytes.
    make_image(&w.layout(), "moved", "soak moved, replaced");
    reg.push(&w.layout(), "moved", "team/app");
    let digest = support::manifest_digest(&reg, "team/app", "v1");
    Images {
        _registry: reg,
        proxy,
        w,
        root: export.join("1.root.json"),
        digest,
    }
}

/// The server process; SIGTERM'd on drop if still running.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(im: &Images, s: &Settings) -> Server {
    let certs = support::certs(&im.w.path("certs"));
    let policy = im.w.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[repository]]\nmatch = \"{}/team/*\"\nroot = \"{}\"\n",
            im.proxy.host(),
            im.root.display()
        ),
    )
    .unwrap();
    let bin = std::env::var("WARRANT_SOAK_BIN").unwrap_or(env!("CARGO_BIN_EXE_warrant").to_owned());
    let arg = |p: &Path| p.display().to_string();
    // `WARRANT_SOAK_SERVER_LOG=FILE`: keep the server's `-v` log there.
    let kept = std::env::var_os("WARRANT_SOAK_SERVER_LOG");
    let log_path = kept
        .clone()
        .map_or_else(|| im.w.path("server.log"), Into::into);
    let log = std::fs::File::create(log_path).unwrap();
    let mut cmd = std::process::Command::new(bin);
    if kept.is_some() {
        cmd.arg("-v");
    }
    let mut child = cmd
        .args(["serve", "admission", "--listen", "127.0.0.1:0"])
        .args(["--tls-cert", &arg(&certs.join("tls.crt"))])
        .args(["--tls-key", &arg(&certs.join("tls.key"))])
        .args(["--policy", &arg(&policy)])
        .args(["--recheck", &s.recheck.to_string()])
        .env("WARRANT_HOME", im.w.path("server-home"))
        .env_remove("WARRANT_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Keep draining, so a later line can never block the server on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");
    Server { child, base }
}

/// A client trusting the test CA that keeps few idle connections, so the
/// server's open fds after a burst of slow answers are not idle client sockets.
fn client(ca: &Path) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(4)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn send(client: reqwest::Client, url: String, image: String, uid: String) -> Outcome {
    let mut body: Value =
        serde_json::from_slice(&support::pod(support::pod_spec(&[&image], &[], &[]))).unwrap();
    body["request"]["uid"] = Value::String(uid.clone());
    let r = match client.post(url).json(&body).send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Unanswered(format!("transport: {e}")),
    };
    let status = r.status().as_u16();
    let text = match r.text().await {
        Ok(t) => t,
        Err(e) => return Outcome::Unanswered(format!("body: {e}")),
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return Outcome::Unanswered(format!("HTTP {status}: {text}"));
    };
    let resp = &v["response"];
    if status != 200 || resp["uid"] != uid.as_str() {
        return Outcome::Unanswered(format!("HTTP {status}, uid {}: {text}", resp["uid"]));
    }
    match resp["allowed"].as_bool() {
        Some(true) => {
            let pin = resp["patch"].as_str().map(|p| {
                let raw = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
                let ops: Vec<Value> = serde_json::from_slice(&raw).unwrap();
                ops.iter()
                    .find(|o| o["op"] == "replace")
                    .and_then(|o| o["value"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            });
            Outcome::Allowed(pin)
        }
        Some(false) => Outcome::Denied(
            resp["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => Outcome::Unanswered(format!("no verdict: {text}")),
    }
}

/// Everything the soak's tasks share.
struct Run {
    im: Arc<Images>,
    pid: u32,
    start: Instant,
    end: Instant,
    in_flight: Arc<AtomicUsize>,
}

impl Run {
    fn sample(&self) -> Sample {
        let (rss_kib, fds) = usage(self.pid);
        let now = Instant::now();
        Sample {
            at: now - self.start,
            rss_kib,
            fds,
            in_flight: self.in_flight.load(Ordering::SeqCst),
            registry_up: self.im.proxy.timeline().up_throughout(now, now),
        }
    }

    /// The registry: up for the first period, down for the next (refused, then
    /// reset the time after), and so on until the end; up again at the end.
    async fn flip(self: Arc<Self>, flip: Duration) {
        let mut n = 1u32;
        while self.start + flip * n < self.end {
            tokio::time::sleep_until((self.start + flip * n).into()).await;
            match n % 4 {
                1 => self.im.proxy.down(Down::Refused).await,
                3 => self.im.proxy.down(Down::Reset).await,
                _ => self.im.proxy.up().await,
            }
            n += 1;
        }
    }

    /// A sample in the middle of each period (never at a switch), then at `every`.
    async fn samples(self: Arc<Self>, first: Duration, every: Duration) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut at = self.start + first;
        while at < self.end {
            tokio::time::sleep_until(at.into()).await;
            samples.push(self.sample());
            at += every;
        }
        samples
    }

    /// One review every 1/rate s, the images in turn; every answer judged later.
    async fn load(self: Arc<Self>, client: reqwest::Client, url: String, rate: u64) -> Vec<Record> {
        let total = (self.end - self.start).as_secs() * rate;
        let mut requests = Vec::with_capacity(total as usize);
        for i in 0..total {
            let at = self.start + Duration::from_secs(i) / rate as u32;
            tokio::time::sleep_until(at.into()).await;
            let kind = Kind::ALL[i as usize % Kind::ALL.len()];
            let (client, url, image) = (client.clone(), url.clone(), self.im.reference(kind));
            let in_flight = Arc::clone(&self.in_flight);
            requests.push(tokio::spawn(async move {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let sent = Instant::now();
                let outcome = send(client, url, image, format!("soak-{i}")).await;
                let answered = Instant::now();
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Record {
                    kind,
                    sent,
                    answered,
                    outcome,
                }
            }));
        }
        let mut records = Vec::with_capacity(requests.len());
        for r in requests {
            records.push(r.await.unwrap());
        }
        records
    }
}

#[test]
fn admission_answers_every_review_rightly_while_the_registry_comes_and_goes_and_stays_flat() {
    let s = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let im = Arc::new(images(&rt));
    let mut server = start_server(&im, &s);
    let pid = server.child.id();
    let client = client(&im.w.path("certs/ca.crt"));
    let flip = Duration::from_secs(s.flip);
    let warm_up = Duration::from_secs(60).min(flip * 2);
    println!(
        "soak: {} s at {}/s, registry down/up every {} s (refused and reset in turn), \
         --recheck {} s, grace {} ms, samples every {} s from {} ms (warm-up {} s), server pid {pid}",
        s.seconds,
        s.rate,
        s.flip,
        s.recheck,
        s.grace.as_millis(),
        s.sample,
        (flip / 2).as_millis(),
        warm_up.as_secs()
    );
    let start = Instant::now();
    let run = Arc::new(Run {
        im: Arc::clone(&im),
        pid,
        start,
        end: start + Duration::from_secs(s.seconds),
        in_flight: Arc::new(AtomicUsize::new(0)),
    });
    let (records, samples, metrics) = rt.block_on(async {
        let flipper = tokio::spawn(Arc::clone(&run).flip(flip));
        let sampler =
            tokio::spawn(Arc::clone(&run).samples(flip / 2, Duration::from_secs(s.sample)));
        let url = format!("{}/mutate", server.base);
        let records = Arc::clone(&run).load(client.clone(), url, s.rate).await;
        flipper.await.unwrap();
        let mut samples = sampler.await.unwrap();
        // Once more when every answer is in, the registry back, and idle client
        // connections had time to close.
        im.proxy.up().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(run.sample());
        let metrics = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (records, samples, metrics)
    });
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died"
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = server.child.wait().unwrap();

    let timeline = im.proxy.timeline();
    let pinned = |k: Kind| im.pinned(k);
    let judge = Judge {
        timeline: &timeline,
        recheck: Duration::from_secs(s.recheck),
        grace: s.grace,
        pinned: &pinned,
    };
    report::report(&records, &samples, &judge, &metrics);
    assert!(exit.success(), "the server exited {exit} after SIGTERM");
    assert_eq!(
        records.len() as u64,
        s.seconds * s.rate,
        "every request was sent"
    );
    let count = |f: &dyn Fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
    let wrong = count(&|r| matches!(judge.judge(r), Verdict::Wrong(_)));
    let unanswered = count(&|r| matches!(judge.judge(r), Verdict::Unanswered(_)));
    assert_eq!(
        (wrong, unanswered),
        (0, 0),
        "wrong and unanswered answers (listed above)"
    );
    // Not vacuous: the outages were seen, and so was the registry's return.
    let failed_closed = count(&|r| report::outcome_class(&r.outcome) == 3);
    let signed_allowed = count(&|r| r.kind.signed() && report::outcome_class(&r.outcome) == 1);
    assert!(
        failed_closed > 0,
        "no review was denied for an unreachable registry"
    );
    assert!(signed_allowed > 0, "no signed image was allowed");
    if let Some(g) = growth(&samples, warm_up) {
        panic!("not flat: {g}");
    }
}
