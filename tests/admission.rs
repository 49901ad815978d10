//! `warrant serve admission` (issue #8) over real HTTPS with the test CA, carrying
//! real AdmissionReview bodies (Pod, Deployment, CronJob), against images in a
//! real registry. This file: what a review answers. `admission/resilience.rs`:
//! deadlines, a registry that is down or silent, the cache, credentials, health,
//! the command line. `admission/rollout.rs`: warn/audit modes, policy reload,
//! namespace opt-in. `admission/manifests.rs`: the Kubernetes manifests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "admission/limits.rs"]
mod limits;
#[path = "admission/manifests.rs"]
mod manifests;
#[path = "admission/resilience.rs"]
mod resilience;
#[path = "admission/rollout.rs"]
mod rollout;
#[path = "admission/support.rs"]
mod support;

use serde_json::{Value, json};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_pod_deployment_and_cronjob_are_allowed_and_pinned_to_the_signed_digests() {
    let s = signed();
    let mut srv = serve(&s, "verifier").await;
    let app = |tag: &str| s.reg.repo("team/app", &format!(":{tag}"));
    let pinned = |tag: &str| format!("{}@{}", app(tag), s.digests[tag]);
    let spec = pod_spec(&[&app("v1"), &app("v2")], &[&app("v1")], &[&app("v2")]);

    // Pod: every list, pinned on /mutate; the patch applies to the object sent.
    let body = pod(spec.clone());
    let r = srv.review("/mutate", body.clone()).await;
    assert_eq!(r["allowed"], true, "{r}");
    let ops = patch_ops(&r);
    let mut object: Value =
        serde_json::from_slice::<Value>(&body).unwrap()["request"]["object"].clone();
    apply(&mut object, &ops);
    assert_eq!(object["spec"]["containers"][0]["image"], pinned("v1"));
    assert_eq!(object["spec"]["containers"][1]["image"], pinned("v2"));
    assert_eq!(object["spec"]["initContainers"][0]["image"], pinned("v1"));
    assert_eq!(
        object["spec"]["ephemeralContainers"][0]["image"],
        pinned("v2")
    );
    assert_eq!(ops.len(), 8, "a test and a replace per image: {ops:?}");
    // /validate answers the same without a patch; so does a dry run.
    let r = srv.review("/validate", body).await;
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none(), "{r}");
    let mut dry: Value = serde_json::from_slice(&pod(spec.clone())).unwrap();
    dry["request"]["dryRun"] = json!(true);
    let r = srv
        .review("/validate", serde_json::to_vec(&dry).unwrap())
        .await;
    assert_eq!(r["allowed"], true);

    // Deployment and CronJob: the template's pointers.
    let template = pod_spec(&[&app("v1"), &app("v2")], &[&app("v1")], &[]);
    let r = srv.review("/mutate", deployment(template)).await;
    assert_eq!(r["allowed"], true);
    let ops = patch_ops(&r);
    assert!(
        ops.contains(&(
            "replace".into(),
            "/spec/template/spec/containers/0/image".into(),
            pinned("v1")
        )),
        "{ops:?}"
    );
    assert!(ops.contains(&(
        "replace".into(),
        "/spec/template/spec/initContainers/0/image".into(),
        pinned("v1")
    )));
    let r = srv
        .review("/mutate", cronjob(pod_spec(&[&app("v2")], &[], &[])))
        .await;
    assert_eq!(r["allowed"], true);
    assert_eq!(
        patch_ops(&r),
        [
            (
                "test".into(),
                "/spec/jobTemplate/spec/template/spec/containers/0/image".into(),
                app("v2")
            ),
            (
                "replace".into(),
                "/spec/jobTemplate/spec/template/spec/containers/0/image".into(),
                pinned("v2")
            ),
        ]
    );
    // Already pinned (by the mutating webhook, or by hand): nothing to patch.
    let r = srv
        .review("/mutate", pod(pod_spec(&[&pinned("v1")], &[], &[])))
        .await;
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none(), "{r}");
    // No images at all, and kinds without pods: allowed.
    for body in [
        pod(pod_spec(&[], &[], &[])),
        review("", "ConfigMap", json!({"data": {"image": app("evil")}})),
    ] {
        assert_eq!(srv.review("/validate", body).await["allowed"], true);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_unknown_and_unparseable_images_are_denied_naming_each() {
    let s = signed();
    let mut srv = serve(&s, "verifier").await;
    let good = s.reg.repo("team/app", ":v1");
    let unsigned = s.reg.repo("team/app", ":evil");
    let no_tuf = s.reg.repo("team/bare", ":v1");
    let missing_tag = s.reg.repo("team/app", ":nope");
    let unlisted = "ghcr.io/someone/app:1";
    let garbage = "Invalid//Image:::";
    for path in ["/validate", "/mutate"] {
        let r = srv
            .review(
                path,
                pod(pod_spec(
                    &[&good, &unsigned, unlisted],
                    &[&no_tuf, garbage],
                    &[&missing_tag],
                )),
            )
            .await;
        assert_eq!(r["allowed"], false, "{r}");
        assert!(r.get("patch").is_none(), "no patch on a denial: {r}");
        assert_eq!(r["status"]["code"], 403);
        let msg = r["status"]["message"].as_str().unwrap();
        for want in [
            "5 of 6 images not trusted".to_owned(),
            format!(
                "image \"{unsigned}\" (containers \"app1\"): not trusted: no signed target \"evil\""
            ),
            format!(
                "image \"{unlisted}\" (containers \"app2\"): no trust policy for ghcr.io/someone/app"
            ),
            format!(
                "image \"{no_tuf}\" (initContainers \"init0\"): not trusted: {} has no TUF repository",
                s.reg.repo("team/bare", "")
            ),
            format!("image \"{garbage}\" (initContainers \"init1\"): unparseable image reference"),
            format!("image \"{missing_tag}\" (ephemeralContainers \"debug0\"): not trusted"),
        ] {
            assert!(msg.contains(&want), "{want}\nnot in: {msg}");
        }
        assert!(
            !msg.contains(&format!("\"{good}\"")),
            "the trusted image is not blamed: {msg}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_400_and_the_server_keeps_serving() {
    let s = signed();
    let mut srv = serve(&s, "verifier").await;
    for body in [
        b"".to_vec(),
        b"not json".to_vec(),
        b"{\"apiVersion\":\"admission.k8s.io/v1\"".to_vec(),
        b"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"x\",\"kind\":{\"kind\":\"Pod\"}}}".to_vec(),
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}".to_vec(),
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"kind\":{\"kind\":\"Pod\"}}}".to_vec(),
        vec![0xff; 1000],
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec(),
    ] {
        for path in ["/validate", "/mutate"] {
            let (status, text) = srv.post(path, body.clone()).await;
            assert_eq!(status, 400, "{path} {:?}: {text}", String::from_utf8_lossy(&body));
        }
    }
    // Too large, announced: refused before reading.
    assert_eq!(raw_post(&s, &srv, 4 * 1024 * 1024, false).await, 413);
    // Too large, chunked (no length announced): cut off at the cap.
    assert_eq!(raw_post(&s, &srv, 4 * 1024 * 1024, true).await, 413);
    // Wrong methods and paths.
    assert_eq!(srv.get("/validate").await.0, 405);
    assert_eq!(srv.post("/healthz", Vec::new()).await.0, 405);
    assert_eq!(srv.get("/nope").await.0, 404);
    // Still serving, and the bad requests were counted.
    assert_eq!(srv.get("/healthz").await, (200, "ok\n".to_owned()));
    let r = srv
        .review(
            "/validate",
            pod(pod_spec(&[&s.reg.repo("team/app", ":v1")], &[], &[])),
        )
        .await;
    assert_eq!(r["allowed"], true);
    let metrics = srv.get("/metrics").await.1;
    assert!(
        metrics.contains(
            "warrant_admission_requests_total{endpoint=\"validate\",result=\"bad_request\"} 10"
        ),
        "{metrics}"
    );
    srv.stop().await;
}
