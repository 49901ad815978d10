#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Mutex;

use base64::Engine as _;
use chrono::Utc;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::admission::cache::CacheSettings;
use crate::admission::verifier::{Verifier, pinned_reference};
use crate::digest::Sha256Digest;

/// Answers by repository name: `good*` trusted, `slow*` trusted after 2 s,
/// `open*` unlisted, `down*` failed, anything else untrusted; the mode is `warn`
/// for repositories under `warn/`, `audit` under `audit/`, else `enforce`.
struct ByName {
    seen: Mutex<Vec<String>>,
}

fn digest() -> Sha256Digest {
    format!("sha256:{}", "ef".repeat(32)).parse().unwrap()
}

impl Verifier for ByName {
    fn verify(&self, image: &ImageRef) -> Verification {
        self.seen.lock().unwrap().push(image.to_string());
        let repo = match &image.location {
            Location::Registry { repository, .. } => repository.clone(),
            _ => String::new(),
        };
        let name = repo.rsplit('/').next().unwrap_or_default().to_owned();
        if name.starts_with("slow") {
            std::thread::sleep(Duration::from_secs(2));
        }
        if name.starts_with("good") || name.starts_with("slow") {
            Verification::Trusted {
                pinned: pinned_reference(image, &digest()).into(),
                digest: digest(),
                expires: Utc::now() + chrono::TimeDelta::days(1),
            }
        } else if name.starts_with("open") {
            Verification::Unlisted
        } else if name.starts_with("down") {
            Verification::Failed("cannot connect".into())
        } else {
            Verification::Untrusted(format!("no signed target in {repo}").into())
        }
    }

    fn mode(&self, image: &ImageRef) -> Mode {
        match &image.location {
            Location::Registry { repository, .. } if repository.starts_with("warn/") => Mode::Warn,
            Location::Registry { repository, .. } if repository.starts_with("audit/") => {
                Mode::Audit
            }
            _ => Mode::Enforce,
        }
    }
}

fn reviewer(deadline_ms: u64) -> (Reviewer, Arc<ByName>) {
    let v = Arc::new(ByName {
        seen: Mutex::new(Vec::new()),
    });
    let metrics = Arc::new(Metrics::default());
    let cache = Arc::new(VerifyCache::new(
        v.clone(),
        &CacheSettings::default(),
        metrics.clone(),
    ));
    (
        Reviewer::new(cache, Duration::from_millis(deadline_ms), metrics),
        v,
    )
}

fn review(kind: (&str, &str), object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
            "resource": {"group": kind.0, "version": "v1", "resource": "x"},
            "operation": "CREATE",
            "namespace": "team",
            "name": "web",
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": null,
            "dryRun": false
        }
    }))
    .unwrap()
}

fn pod(containers: &[&str], init: &[&str]) -> Value {
    let list = |imgs: &[&str], p: &str| -> Vec<Value> {
        imgs.iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("{p}{i}"), "image": im}))
            .collect()
    };
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": list(containers, "c"), "initContainers": list(init, "i")}})
}

fn response(a: &Answer) -> Value {
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    v["response"].clone()
}

fn patch_of(r: &Value) -> Value {
    assert_eq!(r["patchType"], "JSONPatch");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(r["patch"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_images_are_allowed_and_pinned_on_mutate_only() {
    let (r, seen) = reviewer(1000);
    let body = review(
        ("", "Pod"),
        pod(&["h.io/t/good:1", "h.io/t/good:1"], &["h.io/t/good2"]),
    );
    let v = response(&r.review(Endpoint::Validate, &body).await);
    assert_eq!(v["allowed"], true);
    assert!(v.get("patch").is_none() && v.get("status").is_none(), "{v}");
    let v = response(&r.review(Endpoint::Mutate, &body).await);
    assert_eq!(v["allowed"], true);
    let d = digest();
    assert_eq!(
        patch_of(&v),
        json!([
            {"op": "test", "path": "/spec/containers/0/image", "value": "h.io/t/good:1"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": format!("h.io/t/good:1@{d}")},
            {"op": "test", "path": "/spec/containers/1/image", "value": "h.io/t/good:1"},
            {"op": "replace", "path": "/spec/containers/1/image", "value": format!("h.io/t/good:1@{d}")},
            {"op": "test", "path": "/spec/initContainers/0/image", "value": "h.io/t/good2"},
            {"op": "replace", "path": "/spec/initContainers/0/image", "value": format!("h.io/t/good2:latest@{d}")},
        ])
    );
    // Two distinct images, each verified once across both requests.
    assert_eq!(seen.seen.lock().unwrap().len(), 2);
    // An image already in its pinned form needs no patch.
    let pinned = format!("h.io/t/good:1@{d}");
    let v = response(
        &r.review(Endpoint::Mutate, &review(("", "Pod"), pod(&[&pinned], &[])))
            .await,
    );
    assert_eq!(v["allowed"], true);
    assert!(v.get("patch").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_untrusted_image_is_named_with_its_reason_and_nothing_is_patched() {
    let (r, _) = reviewer(1000);
    let body = review(
        ("", "Pod"),
        pod(
            &["h.io/t/good:1", "h.io/t/evil:1", "Not A Ref"],
            &["oci:/etc/layout:v1", "h.io/t/down:1"],
        ),
    );
    let v = response(&r.review(Endpoint::Mutate, &body).await);
    assert_eq!(v["allowed"], false);
    assert!(v.get("patch").is_none());
    assert_eq!(v["status"]["code"], 403);
    let msg = v["status"]["message"].as_str().unwrap();
    for want in [
        "4 of 5 images not trusted",
        "image \"h.io/t/evil:1\" (containers \"c1\"): no signed target in t/evil",
        "image \"Not A Ref\" (containers \"c2\"): unparseable image reference",
        "image \"oci:/etc/layout:v1\" (initContainers \"i0\"): not a registry image",
        "image \"h.io/t/down:1\" (initContainers \"i1\"): could not be verified, denied (fail closed): cannot connect",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert!(!msg.contains("good"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_images_are_admitted_with_a_warning_and_not_pinned() {
    let (r, _) = reviewer(1000);
    let body = review(("", "Pod"), pod(&["h.io/t/open:1", "h.io/t/good:1"], &[]));
    let v = response(&r.review(Endpoint::Mutate, &body).await);
    assert_eq!(v["allowed"], true);
    let ops = patch_of(&v);
    assert_eq!(
        ops.as_array().unwrap().len(),
        2,
        "only the verified image: {ops}"
    );
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("admitted unverified")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_mode_admits_with_a_warning_and_audit_mode_admits_silently_both_counted() {
    let (r, _) = reviewer(1000);
    let body = review(
        ("", "Pod"),
        pod(
            &["h.io/warn/evil:1", "h.io/audit/evil:1", "h.io/warn/down:1"],
            &["h.io/t/good:1"],
        ),
    );
    let v = response(&r.review(Endpoint::Mutate, &body).await);
    assert_eq!(v["allowed"], true, "{v}");
    assert!(v.get("status").is_none(), "{v}");
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("mode = \"warn\""), "{warnings:?}");
    assert!(
        warnings[0].contains("\"h.io/warn/evil:1\"") && warnings[0].contains("would be denied"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("h.io/warn/down:1"), "{warnings:?}");
    assert!(
        !warnings.iter().any(|w| w.contains("audit")),
        "{warnings:?}"
    );
    // Only the verified image is pinned.
    assert_eq!(patch_of(&v).as_array().unwrap().len(), 2);
    assert_eq!(r.metrics.admitted_unverified_count(Mode::Warn), 2);
    assert_eq!(r.metrics.admitted_unverified_count(Mode::Audit), 1);
    let text = r.metrics.render(0);
    assert!(text.contains("warrant_admission_admitted_unverified_total{mode=\"warn\"} 2"));
    assert!(text.contains("warrant_admission_admitted_unverified_total{mode=\"audit\"} 1"));
    // An enforced image in the same pod still denies it; the warnings stay.
    let body = review(
        ("", "Pod"),
        pod(&["h.io/warn/evil:1", "h.io/t/evil:1"], &[]),
    );
    let v = response(&r.review(Endpoint::Validate, &body).await);
    assert_eq!(v["allowed"], false);
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("h.io/warn/evil:1")
    );
    let msg = v["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("1 of 2 images not trusted") && msg.contains("h.io/t/evil:1"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_without_images_deletes_and_dry_runs_are_answered() {
    let (r, seen) = reviewer(1000);
    for (kind, object) in [
        (
            ("", "ConfigMap"),
            json!({"data": {"image": "h.io/t/evil:1"}}),
        ),
        (("", "Pod"), json!({"spec": {"containers": []}})),
        (("apps", "Deployment"), json!({"spec": {}})),
        (("", "Pod"), Value::Null),
    ] {
        let v = response(&r.review(Endpoint::Validate, &review(kind, object)).await);
        assert_eq!(v["allowed"], true);
    }
    assert!(seen.seen.lock().unwrap().is_empty());
    let mut dry: Value =
        serde_json::from_slice(&review(("", "Pod"), pod(&["h.io/t/evil:1"], &[]))).unwrap();
    dry["request"]["dryRun"] = json!(true);
    let v = response(
        &r.review(Endpoint::Validate, &serde_json::to_vec(&dry).unwrap())
            .await,
    );
    assert_eq!(v["allowed"], false, "a dry run gets the real answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_verification_is_denied_at_the_deadline() {
    let (r, seen) = reviewer(300);
    let body = review(("", "Pod"), pod(&["h.io/t/slow:1", "h.io/t/good:1"], &[]));
    let v = response(&r.review(Endpoint::Validate, &body).await);
    assert_eq!(v["allowed"], false);
    let msg = v["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("\"h.io/t/slow:1\"") && msg.contains("300 ms deadline"),
        "{msg}"
    );
    assert!(!msg.contains("good"), "{msg}");
    // The verification went on in the background: a retry is answered from it
    // (denied again while it runs, allowed once it is done), never by another.
    let safety = Instant::now() + Duration::from_secs(30);
    while response(&r.review(Endpoint::Validate, &body).await)["allowed"] != true {
        assert!(Instant::now() < safety, "never allowed");
    }
    let slow = seen
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|i| i.contains("slow"))
        .count();
    assert_eq!(slow, 1, "one verification of the slow image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_objects_are_denied_and_odd_bodies_are_400() {
    let (r, _) = reviewer(1000);
    let odd = review(
        ("", "Pod"),
        json!({"spec": {"containers": [{"name": "a", "image": 7}]}}),
    );
    let v = response(&r.review(Endpoint::Validate, &odd).await);
    assert_eq!(v["allowed"], false);
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .contains("is not a string")
    );
    let mut wrong_version: Value = serde_json::from_slice(&review(("", "Pod"), json!({}))).unwrap();
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_uid = wrong_version.clone();
    no_uid["apiVersion"] = json!("admission.k8s.io/v1");
    no_uid["request"]["uid"] = json!("");
    let mut no_kind = no_uid.clone();
    no_kind["request"]["uid"] = json!("u");
    no_kind["request"]["kind"] = json!(null);
    for body in [
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe".to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#
            .to_vec(),
        serde_json::to_vec(&wrong_version).unwrap(),
        serde_json::to_vec(&no_uid).unwrap(),
        serde_json::to_vec(&no_kind).unwrap(),
    ] {
        let a = r.review(Endpoint::Mutate, &body).await;
        assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&body));
        assert_eq!(a.outcome, Outcome::BadRequest);
    }
}

#[test]
fn kubelet_image_names_are_normalized_and_oci_paths_refused() {
    let ok = |s: &str| image_for_kubelet(s).unwrap().to_string();
    assert_eq!(ok("nginx"), "docker.io/library/nginx:latest");
    assert_eq!(ok("me/app:1"), "docker.io/me/app:1");
    assert_eq!(ok("localhost:5000/app"), "localhost:5000/app:latest");
    assert!(image_for_kubelet("oci:/var/lib/x:v1").is_err());
    assert!(image_for_kubelet("UPPER/case:1").is_err());
    assert!(image_for_kubelet("").is_err());
    assert!(image_for_kubelet("a b").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever the bytes, the answer is a 400 or a well-formed review; never a
    /// panic.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (r, _) = reviewer(100);
        let a = rt.block_on(r.review(Endpoint::Mutate, &body));
        prop_assert!(a.status == 400 || a.status == 200);
    }

    /// Arbitrary JSON where the object and its containers go: denied or allowed
    /// with a well-formed response, never a panic.
    #[test]
    fn arbitrary_objects_never_panic(
        kind in prop_oneof![Just(("", "Pod")), Just(("apps", "Deployment")), Just(("batch", "CronJob"))],
        object in arb_json(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (r, _) = reviewer(100);
        let spec = json!({"spec": {"containers": object.clone(), "template": {"spec": object.clone()}}});
        for o in [object, spec] {
            let a = rt.block_on(r.review(Endpoint::Mutate, &review(kind, o)));
            prop_assert_eq!(a.status, 200);
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z/:.@]{0,12}".prop_map(Value::from),
        Just(json!("h.io/t/good:1")),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("image".to_owned()),
                    Just("name".to_owned()),
                    Just("containers".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn update(old: Value, new: Value, sub_resource: Option<&str>) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&review(("", "Pod"), new)).unwrap();
    v["request"]["operation"] = json!("UPDATE");
    v["request"]["oldObject"] = old;
    if let Some(s) = sub_resource {
        v["request"]["subResource"] = json!(s);
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_judged_by_the_images_they_introduce() {
    let (r, seen) = reviewer(1000);
    // An old Pod whose image would not verify today: a label change passes.
    let old = pod(&["h.io/t/evil:1"], &[]);
    let mut relabeled = old.clone();
    relabeled["metadata"]["labels"] = json!({"x": "y"});
    let v = response(
        &r.review(Endpoint::Mutate, &update(old.clone(), relabeled, None))
            .await,
    );
    assert_eq!(v["allowed"], true);
    assert!(v.get("patch").is_none(), "nothing re-pinned: {v}");
    assert!(seen.seen.lock().unwrap().is_empty());
    // Changing the image to another untrusted one is denied.
    let v = response(
        &r.review(
            Endpoint::Validate,
            &update(old.clone(), pod(&["h.io/t/evil:2"], &[]), None),
        )
        .await,
    );
    assert_eq!(v["allowed"], false);
    // `kubectl debug`: only the ephemeral container is checked and pinned.
    let mut debugged = old.clone();
    debugged["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "h.io/t/good:dbg"}]);
    let v = response(
        &r.review(
            Endpoint::Mutate,
            &update(old, debugged, Some("ephemeralcontainers")),
        )
        .await,
    );
    assert_eq!(v["allowed"], true);
    let ops = patch_of(&v);
    assert_eq!(ops[1]["path"], "/spec/ephemeralContainers/0/image");
    assert_eq!(ops.as_array().unwrap().len(), 2, "{ops}");
}

/// `flood*` images take two seconds each and are not trusted; the rest are trusted
/// at once.
struct Flood {
    calls: std::sync::atomic::AtomicUsize,
}

impl Verifier for Flood {
    fn verify(&self, image: &ImageRef) -> Verification {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if image.to_string().contains("/flood") {
            std::thread::sleep(Duration::from_secs(2));
            return Verification::Untrusted("no signed target".into());
        }
        Verification::Trusted {
            pinned: pinned_reference(image, &digest()).into(),
            digest: digest(),
            expires: Utc::now() + chrono::TimeDelta::days(1),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_review_cannot_take_the_whole_verification_pool() {
    let v = Arc::new(Flood {
        calls: Default::default(),
    });
    let metrics = Arc::new(Metrics::default());
    let cache = Arc::new(VerifyCache::new(
        v.clone(),
        &CacheSettings::default(),
        metrics.clone(),
    ));
    let r = Arc::new(
        Reviewer::new(cache.clone(), Duration::from_secs(3), metrics.clone())
            .limited(ReviewLimits::default()),
    );
    // 64 images (the cap) of two seconds each: 8 seconds of a pool of 16.
    let flood: Vec<String> = (0..64).map(|i| format!("h.io/t/flood{i}:1")).collect();
    let flood: Vec<&str> = flood.iter().map(String::as_str).collect();
    let body = review(("", "Pod"), pod(&flood, &[]));
    let flooding = tokio::spawn({
        let r = Arc::clone(&r);
        async move { response(&r.review(Endpoint::Validate, &body).await) }
    });
    let safety = Instant::now() + Duration::from_secs(30);
    while v.calls.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < safety, "the flood never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Without a share, this image would queue behind all 64 in the pool, start
    // after 6 seconds and miss its 3 s deadline.
    let good = review(("", "Pod"), pod(&["h.io/t/good:1"], &[]));
    let answer = response(&r.review(Endpoint::Validate, &good).await);
    assert_eq!(answer["allowed"], true, "{answer}");
    let flood = flooding.await.unwrap();
    assert_eq!(flood["allowed"], false);
    let msg = flood["status"]["message"].as_str().unwrap();
    assert!(msg.contains("turn did not come"), "{msg}");
    // Once answered, the flood starts nothing more: what ran is what had its
    // turn (4 at a time, two seconds each, for 3 seconds: 8), not 64.
    while cache.in_flight() > 0 {
        assert!(Instant::now() < safety, "verifications never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ran = v.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(ran <= 1 + 4 * 2, "{ran} verifications ran");
}
