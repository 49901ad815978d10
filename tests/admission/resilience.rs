//! Failing closed and staying fast: deadlines, a registry that is down or
//! silent, the shared cache, pull credentials, health and shutdown, the CLI.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::common::registry::RegistryFixture;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_is_denied_within_the_deadline() {
    let mut s = signed();
    let mut srv = serve_with(&s, "verifier", policy(&s, &s.reg.host(), ""), |c| {
        c.deadline = Duration::from_secs(4);
    })
    .await;
    s.reg.stop();
    let image = s.reg.repo("team/app", ":v1");
    let r = srv
        .review("/validate", pod(pod_spec(&[&image], &[], &[])))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    // Denied for the refused connection, not by the deadline (no clock read:
    // the reason says which).
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("image \"{image}\"")) && msg.contains("fail closed"),
        "{msg}"
    );
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(!msg.contains("deadline"), "{msg}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_registry_is_denied_at_the_deadline() {
    let s = signed();
    // Accepts connections (the kernel does) and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = blackhole.local_addr().unwrap().to_string();
    let p = s.w.path("blackhole.toml");
    std::fs::write(
        &p,
        format!("[[repository]]\nmatch = \"{host}/team/*\"\ntofu = true\n"),
    )
    .unwrap();
    let mut srv = serve_with(&s, "verifier", p, |c| {
        c.deadline = Duration::from_millis(1500)
    })
    .await;
    let image = format!("{host}/team/app:v1");
    let r = srv
        .review("/mutate", pod(pod_spec(&[&image], &[], &[])))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("1500 ms deadline") && msg.contains(&image),
        "{msg}"
    );
    assert!(
        srv.get("/metrics")
            .await
            .1
            .contains("warrant_admission_deadline_exceeded_total 1")
    );
    drop(blackhole);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_admissions_ask_the_registry_nothing_until_the_recheck_interval() {
    let s = signed();
    let mut srv = serve_with(&s, "verifier", policy(&s, &s.reg.host(), ""), |c| {
        c.cache.recheck = Duration::from_secs(6);
    })
    .await;
    let v1 = s.reg.repo("team/app", ":v1");
    let body = pod(pod_spec(&[&v1], &[&s.reg.repo("team/app", ":v2")], &[]));
    let first = Instant::now();
    assert_eq!(srv.review("/mutate", body.clone()).await["allowed"], true);
    let before = s.reg.requests().len();
    for _ in 0..50 {
        assert_eq!(srv.review("/mutate", body.clone()).await["allowed"], true);
    }
    assert_eq!(
        s.reg.requests().len(),
        before,
        "warm admissions sent registry requests"
    );
    let metrics = srv.get("/metrics").await.1;
    for line in [
        "warrant_admission_cache_hits_total 100",
        "warrant_admission_cache_misses_total 2",
        "warrant_admission_registry_checks_total 2",
        "warrant_admission_requests_total{endpoint=\"mutate\",result=\"allowed\"} 51",
        "warrant_admission_verifications_total{result=\"trusted\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    // The tag moves to an unsigned manifest: admitted from the cache until the
    // re-check interval ends, denied after it.
    RegistryFixture::skopeo_copy(
        &format!("docker://{}", s.reg.repo("team/app", ":evil")),
        &format!("docker://{v1}"),
        &[],
    );
    assert!(
        first.elapsed() < Duration::from_secs(4),
        "setup too slow for this check"
    );
    assert_eq!(srv.review("/validate", body.clone()).await["allowed"], true);
    tokio::time::sleep(
        Duration::from_secs(6).saturating_sub(first.elapsed()) + Duration::from_millis(300),
    )
    .await;
    let r = srv.review("/validate", body).await;
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("tag was moved"),
        "{r}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admissions_of_one_image_share_one_verification() {
    let s = signed();
    let mut srv = serve(&s, "verifier").await;
    let body = pod(pod_spec(&[&s.reg.repo("team/app", ":v1")], &[], &[]));
    let heads = || requests_to(&s.reg, "HEAD /v2/team/app/manifests/warrant.tuf");
    let before = heads();
    let all =
        futures_util::future::join_all((0..24).map(|_| srv.review("/mutate", body.clone()))).await;
    assert!(all.iter().all(|r| r["allowed"] == true));
    assert_eq!(heads() - before, 1, "one verification for 24 admissions");
    let m = srv.get("/metrics").await.1;
    assert!(
        m.contains("warrant_admission_cache_misses_total 1\n"),
        "{m}"
    );
    assert!(
        m.contains("warrant_admission_registry_checks_total 1\n"),
        "{m}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_credentials_come_from_the_mounted_docker_config() {
    let reg = RegistryFixture::with_auth("alice", "s3cret-pass");
    let scratch = tempfile::tempdir().unwrap();
    let docker = scratch.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pass");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let s = sign_in(reg, Some(&docker));
    let image = s.reg.repo("team/app", ":v1");
    let body = pod(pod_spec(&[&image], &[], &[]));
    let mut with = serve_with(&s, "with", policy(&s, &s.reg.host(), ""), |c| {
        c.network.docker_config = Some(docker.clone());
    })
    .await;
    let r = with.review("/mutate", body.clone()).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(patch_ops(&r).len(), 2);
    with.stop().await;
    let empty = scratch.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut without = serve_with(&s, "without", policy(&s, &s.reg.host(), ""), |c| {
        c.network.docker_config = Some(empty);
    })
    .await;
    let r = without.review("/mutate", body).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(!r.to_string().contains("s3cret"), "{r}");
    without.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() {
    let s = signed();
    let srv = serve(&s, "verifier").await;
    assert_eq!(srv.get("/healthz").await, (200, "ok\n".into()));
    assert_eq!(srv.get("/readyz").await, (200, "ready\n".into()));
    let (status, text) = srv.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "# TYPE warrant_admission_requests_total counter",
        "# TYPE warrant_admission_request_duration_seconds histogram",
        "warrant_admission_request_duration_seconds_bucket{endpoint=\"mutate\",le=\"+Inf\"} 0",
        "# TYPE warrant_admission_cache_hits_total counter",
        "# TYPE warrant_admission_registry_checks_total counter",
        "warrant_admission_cache_entries 0",
    ] {
        assert!(text.contains(name), "{name} not in\n{text}");
    }
    // Shutting down: not ready at once, still answering during the delay.
    let mut srv = srv;
    let r = srv.running.take().unwrap();
    let stopping = tokio::spawn(r.shutdown(Duration::from_millis(800)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(srv.get("/readyz").await.0, 503);
    assert_eq!(srv.get("/healthz").await.0, 200);
    stopping.await.unwrap();
    assert!(
        srv.client
            .get(format!("{}/healthz", srv.base))
            .send()
            .await
            .is_err(),
        "stopped"
    );
}

#[test]
fn serve_admission_runs_from_the_command_line_and_stops_on_sigterm() {
    use std::io::BufRead as _;
    let s = signed();
    let certs = certs(&s.w.path("certs"));
    let policy = policy(&s, &s.reg.host(), "");
    let arg = |p: &Path| p.to_str().unwrap().to_owned();
    let mut c = s.w.cmd(
        "cli",
        &[
            "serve",
            "admission",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &arg(&certs.join("tls.crt")),
            "--tls-key",
            &arg(&certs.join("tls.key")),
            "--policy",
            &arg(&policy),
            "--recheck",
            "10",
            "--deadline-ms",
            "3000",
        ],
    );
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = https_client(&certs.join("ca.crt"));
    let body = pod(pod_spec(&[&s.reg.repo("team/app", ":v1")], &[], &[]));
    let r: Value = rt.block_on(async {
        client
            .post(format!("{base}/mutate"))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(r["response"]["allowed"], true, "{r}");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let ready = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(ready, 503, "not ready once SIGTERM arrived");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");

    // Configuration errors: exit 2 with the reason.
    let r = s.w.run(s.w.cmd(
        "cli",
        &[
            "serve",
            "admission",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.crt",
            "--tls-key",
            &arg(&certs.join("tls.key")),
            "--policy",
            &arg(&policy),
        ],
    ));
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("/nonexistent.crt"), "{}", r.stderr);
    let r = s.w.run(s.w.cmd(
        "cli",
        &[
            "serve",
            "admission",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &arg(&certs.join("tls.crt")),
            "--tls-key",
            &arg(&certs.join("ca.key")),
            "--policy",
            &arg(&policy),
        ],
    ));
    assert_eq!(
        r.code,
        2,
        "a key that is not the certificate's: {}",
        r.text()
    );
}
