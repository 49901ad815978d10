//! Adopting the webhook (issue #18 item 3): per-entry `mode = "warn" | "audit"`
//! over real HTTPS against a real registry, the policy file reloaded when it
//! changes (validated first: a bad one keeps the old one and says so in
//! `/readyz` and `/metrics`), and namespace opt-out / opt-in in the manifests.

use std::path::Path;

use serde_json::Value;
use warrant::admission::reload::ReloadOutcome;

use crate::support::*;

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_start} not in /metrics:\n{text}"))
}

async fn reload(srv: &Server) -> ReloadOutcome {
    let reloader = std::sync::Arc::clone(srv.running.as_ref().unwrap().policy());
    tokio::task::spawn_blocking(move || reloader.reload_if_changed())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_are_validated_before_they_replace_the_running_policy() {
    let s = signed();
    let host = s.reg.host();
    let file = policy(&s, &host, "");
    let mut srv = serve_with(&s, "verifier", file.clone(), |_| {}).await;
    let evil = pod(pod_spec(&[&s.reg.repo("team/app", ":evil")], &[], &[]));
    let v1 = pod(pod_spec(&[&s.reg.repo("team/app", ":v1")], &[], &[]));

    // enforce (the default): the unsigned image is denied.
    let r = srv.review("/validate", evil.clone()).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(reload(&srv).await, ReloadOutcome::Unchanged);

    // warn: admitted, with a warning kubectl shows; counted.
    policy(&s, &host, "mode = \"warn\"\n");
    assert_eq!(reload(&srv).await, ReloadOutcome::Replaced);
    let r = srv.review("/validate", evil.clone()).await;
    assert_eq!(r["allowed"], true, "{r}");
    let warning = r["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("mode = \"warn\"") && warning.contains("team/app:evil"),
        "{warning}"
    );
    let (_, m) = srv.get("/metrics").await;
    assert_eq!(
        metric(
            &m,
            "warrant_admission_admitted_unverified_total{mode=\"warn\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &m,
            "warrant_admission_policy_reloads_total{result=\"replaced\"}"
        ),
        1
    );

    // audit: admitted without a warning; counted.
    policy(&s, &host, "mode = \"audit\"\n");
    assert_eq!(reload(&srv).await, ReloadOutcome::Replaced);
    let r = srv.review("/validate", evil.clone()).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("warnings").is_none_or(Value::is_null), "{r}");
    let (_, m) = srv.get("/metrics").await;
    assert_eq!(
        metric(
            &m,
            "warrant_admission_admitted_unverified_total{mode=\"audit\"}"
        ),
        1
    );

    // A file that does not parse, then one pinning a root file that is not there:
    // both rejected, the audit policy stays in force, and it is reported.
    for bad in ["[[repository\n".to_owned(), {
        let text = std::fs::read_to_string(&file).unwrap();
        text.replace(&s.root.display().to_string(), "/nonexistent/1.root.json")
    }] {
        std::fs::write(&file, bad).unwrap();
        match reload(&srv).await {
            ReloadOutcome::Rejected(why) => assert!(why.contains("policy"), "{why}"),
            other => panic!("{other:?}"),
        }
        let r = srv.review("/validate", evil.clone()).await;
        assert_eq!(
            r["allowed"], true,
            "the previous (audit) policy is in force: {r}"
        );
        let (code, ready) = srv.get("/readyz").await;
        assert_eq!(code, 200, "{ready}");
        assert!(ready.contains("policy change rejected"), "{ready}");
        let (_, m) = srv.get("/metrics").await;
        assert_eq!(metric(&m, "warrant_admission_policy_stale"), 1);
    }
    assert_eq!(reload(&srv).await, ReloadOutcome::Unchanged);
    let (_, m) = srv.get("/metrics").await;
    assert_eq!(
        metric(
            &m,
            "warrant_admission_policy_reloads_total{result=\"rejected\"}"
        ),
        2
    );

    // A policy that no longer covers team/*: the cached "trusted" answer for v1
    // was decided under the old policy and must not be served.
    let r = srv.review("/validate", v1.clone()).await;
    assert_eq!(r["allowed"], true, "{r}");
    std::fs::write(
        &file,
        format!(
            "[[repository]]\nmatch = \"{host}/other/*\"\nroot = \"{}\"\n",
            s.root.display()
        ),
    )
    .unwrap();
    assert_eq!(reload(&srv).await, ReloadOutcome::Replaced);
    let r = srv.review("/validate", v1).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no trust policy"),
        "{r}"
    );
    let (code, ready) = srv.get("/readyz").await;
    assert_eq!((code, ready.as_str()), (200, "ready\n"));
    let (_, m) = srv.get("/metrics").await;
    assert_eq!(metric(&m, "warrant_admission_policy_stale"), 0);
    srv.stop().await;
}

/// The webhooks' namespace selectors as make-certs.sh writes them.
fn selectors(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-manifest/kubernetes/make-certs.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["--out", dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parse = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps([w['namespaceSelector'] \
             for d in yaml.safe_load_all(open(sys.argv[1])) for w in d['webhooks']]))",
            dir.join("webhooks.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        parse.status.success(),
        "{}",
        String::from_utf8_lossy(&parse.stderr)
    );
    serde_json::from_slice(&parse.stdout).unwrap()
}

#[test]
fn namespaces_opt_out_by_label_or_with_opt_in_only_labelled_ones_are_reviewed() {
    let dir = tempfile::tempdir().unwrap();
    let label = |sel: &Value| {
        sel["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "warrant.dev/verify")
            .cloned()
            .unwrap_or_else(|| panic!("no warrant.dev/verify expression: {sel}"))
    };
    let out = selectors(dir.path(), &[]);
    assert_eq!(out.len(), 2);
    for sel in &out {
        let e = label(sel);
        assert_eq!(
            (e["operator"].as_str(), &e["values"]),
            (Some("NotIn"), &serde_json::json!(["disabled"]))
        );
    }
    let opt_in = selectors(dir.path(), &["--opt-in"]);
    assert_eq!(opt_in.len(), 2);
    for sel in &opt_in {
        let e = label(sel);
        assert_eq!(
            (e["operator"].as_str(), &e["values"]),
            (Some("In"), &serde_json::json!(["enabled"]))
        );
        // kube-system and the webhook's own namespace stay excluded either way.
        assert_eq!(
            sel["matchExpressions"][0]["key"],
            "kubernetes.io/metadata.name"
        );
    }
}

/// Every document of `file`, as JSON, via PyYAML.
fn yaml_docs(file: &Path) -> Vec<Value> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cert_manager_variant_issues_the_mounted_secret_and_injects_its_ca_into_both_webhooks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-manifest/kubernetes");
    let certs = yaml_docs(&dir.join("cert-manager/certificate.yaml"));
    let serving = certs
        .iter()
        .find(|d| d["kind"] == "Certificate" && d["spec"]["isCA"] != true)
        .expect("a serving Certificate");
    // The Secret the Deployment mounts, for the Service's DNS name.
    let deployment = yaml_docs(&dir.join("deployment.yaml"));
    let mounted: Vec<&Value> = deployment[0]["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.get("secret").map(|s| &s["secretName"]))
        .collect();
    assert!(
        mounted.contains(&&serving["spec"]["secretName"]),
        "{mounted:?}"
    );
    let dns: Vec<&str> = serving["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        dns.contains(&"warrant-admission.warrant-system.svc"),
        "{dns:?}"
    );
    let inject = format!(
        "{}/{}",
        serving["metadata"]["namespace"].as_str().unwrap(),
        serving["metadata"]["name"].as_str().unwrap()
    );

    // The webhooks: ../webhooks.yaml exactly, but caBundle left to the injector.
    let ours = yaml_docs(&dir.join("cert-manager/webhooks.yaml"));
    let mut base = yaml_docs(&dir.join("webhooks.yaml"));
    assert_eq!(ours.len(), 2);
    for (mine, theirs) in ours.iter().zip(base.iter_mut()) {
        assert_eq!(
            mine["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            inject.as_str()
        );
        let mut mine = mine.clone();
        mine["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        for w in theirs["webhooks"].as_array_mut().unwrap() {
            w["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle");
        }
        assert_eq!(
            &mine, theirs,
            "cert-manager/webhooks.yaml drifted from webhooks.yaml"
        );
    }
    let k = yaml_docs(&dir.join("cert-manager/kustomization.yaml"));
    assert_eq!(
        k[0]["resources"],
        serde_json::json!(["../", "certificate.yaml", "webhooks.yaml"])
    );
}
