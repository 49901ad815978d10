//! Issue #11 item 11, "one Pod can stall everyone": the work one review may start
//! is bounded (distinct images, time, a share of the verification pool), and slow
//! or flooding clients are shed before they can starve health probes and reviews.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The value of a counter or gauge line of `/metrics` (0 when absent).
async fn metric(srv: &Server, name: &str) -> u64 {
    let text = srv.get("/metrics").await.1;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_review_with_thousands_of_images_cannot_starve_others() {
    let s = signed();
    let mut srv = serve(&s, "verifier").await;
    let tags: Vec<String> = (0..5000)
        .map(|i| s.reg.repo("team/app", &format!(":unsigned-{i}")))
        .collect();
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    let flood = pod(pod_spec(&refs, &[], &[]));
    let (client, url) = (srv.client.clone(), format!("{}/validate", srv.base));
    let flooding = tokio::spawn(async move {
        let started = Instant::now();
        let r = client.post(url).body(flood).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        (v["response"].clone(), started.elapsed())
    });
    // "Then immediately": once the flood is being worked on, or already answered.
    let safety = Instant::now() + Duration::from_secs(60);
    while !flooding.is_finished() && metric(&srv, "warrant_admission_cache_misses_total").await < 32
    {
        assert!(Instant::now() < safety, "the flood never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let r = srv
        .review(
            "/validate",
            pod(pod_spec(&[&s.reg.repo("team/app", ":v2")], &[], &[])),
        )
        .await;
    let signed_took = started.elapsed();
    let (flood, flood_took) = flooding.await.unwrap();
    eprintln!(
        "figures: signed review {signed_took:?} (allowed={}), flood review {flood_took:?}",
        r["allowed"]
    );
    assert_eq!(r["allowed"], true, "the signed image was starved: {r}");
    assert_eq!(flood["allowed"], false, "{flood}");
    let msg = flood["status"]["message"].as_str().unwrap();
    assert!(msg.contains("5000 distinct images"), "{msg}");
    assert!(msg.contains("at most 64"), "{msg}");
    assert!(msg.contains("--max-images-per-review"), "{msg}");
    // The refused review started no registry work at all: the one check is the
    // signed image's.
    assert_eq!(
        metric(&srv, "warrant_admission_registry_checks_total").await,
        1
    );
    srv.stop().await;
}
