//! The Kubernetes manifests parse, name the right API versions and agree with
//! each other and with the server; the certificate script fills caBundle.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::certs;

/// Every manifest, as JSON documents (file name, document), via PyYAML.
fn manifests(dir: &Path) -> Vec<(String, Value)> {
    let script = r#"
import json, sys, yaml, pathlib
out = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for d in yaml.safe_load_all(p.read_text()):
        if d is not None:
            out.append([p.name, d])
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .expect("python3 (with python3-yaml) is needed to parse the manifests");
    assert!(
        out.status.success(),
        "YAML does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<(String, Value)>>(&out.stdout).unwrap()
}

#[test]
fn manifests_parse_and_name_the_right_api_versions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-manifest/kubernetes");
    let docs = manifests(&dir);
    let kinds: BTreeMap<String, String> = docs
        .iter()
        .map(|(_, d)| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["apiVersion"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (kind, version) in [
        ("Namespace", "v1"),
        ("ServiceAccount", "v1"),
        ("ConfigMap", "v1"),
        ("Service", "v1"),
        ("Deployment", "apps/v1"),
        ("PodDisruptionBudget", "policy/v1"),
        (
            "MutatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
        ),
        (
            "ValidatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
        ),
        ("Kustomization", "kustomize.config.k8s.io/v1beta1"),
        ("NetworkPolicy", "networking.k8s.io/v1"),
    ] {
        assert_eq!(kinds.get(kind).map(String::as_str), Some(version), "{kind}");
    }
    let doc = |kind: &str| {
        docs.iter()
            .find(|(_, d)| d["kind"] == kind)
            .unwrap()
            .1
            .clone()
    };

    let ns = doc("Namespace")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    for (_, d) in docs
        .iter()
        .filter(|(_, d)| d["metadata"]["namespace"].is_string())
    {
        assert_eq!(d["metadata"]["namespace"], ns.as_str(), "{d}");
    }

    let dep = doc("Deployment");
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // The webhook's image is deployed by digest only (issue #18): the kustomization
    // replaces the Deployment's untagged name with newName@digest, and `make image`
    // writes that digest.
    let image = c["image"].as_str().unwrap();
    assert!(!image.contains('@') && !image.rsplit('/').next().unwrap().contains(':'));
    let pin = doc("Kustomization")["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == image)
        .cloned()
        .unwrap_or_else(|| panic!("no images: entry for {image}"));
    let hex = pin["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(pin.get("newTag").is_none(), "a tag next to the digest");
    // The image's user (packaging/image/assemble.py) is the one the pod runs as.
    let assemble = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/image/assemble.py"),
    )
    .unwrap();
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(assemble.contains(&format!("UID = GID = {uid}\n")));
    assert_eq!(c["command"], json!(["/usr/local/bin/warrant"]));
    assert!(assemble.contains(r#""Entrypoint": ["/usr/local/bin/warrant"]"#));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&args[..2], ["serve", "admission"]);
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} missing"))
    };
    let deadline_ms: u64 = flag("deadline-ms").parse().unwrap();
    // The mounts the flags name exist: the Secret, the ConfigMap, a writable home.
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for f in [flag("tls-cert"), flag("tls-key"), flag("policy")] {
        assert!(mounts.iter().any(|m| f.starts_with(m)), "{f} not mounted");
    }
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["value"]
            .clone()
    };
    assert!(mounts.contains(&env("WARRANT_HOME").as_str().unwrap()));
    assert!(mounts.contains(&env("DOCKER_CONFIG").as_str().unwrap()));

    // The policy in the ConfigMap is one warrant accepts.
    let policy = doc("ConfigMap")["data"]["policy.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    warrant::policy::Policy::parse(&policy, Path::new("/etc/warrant/policy/policy.toml")).unwrap();

    // The NetworkPolicy selects the webhook's pods and admits only named
    // sources, on the serving port only (issue #11 item 11).
    let netpol = doc("NetworkPolicy");
    let selector = netpol["spec"]["podSelector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(&dep["spec"]["template"]["metadata"]["labels"][k], v, "{k}");
    }
    assert_eq!(netpol["spec"]["policyTypes"], json!(["Ingress"]));
    let port = flag("listen")
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(c["ports"][0]["containerPort"], port);
    let rules = netpol["spec"]["ingress"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        let from = rule["from"]
            .as_array()
            .expect("a rule without from admits everyone");
        assert!(!from.is_empty(), "{rule}");
        assert_eq!(
            rule["ports"],
            json!([{"protocol": "TCP", "port": port}]),
            "{rule}"
        );
    }
    for limit in [
        "max-images-per-review",
        "max-connections",
        "max-connections-per-ip",
    ] {
        assert!(flag(limit).parse::<u64>().unwrap() > 0, "{limit}");
    }

    let svc = doc("Service");
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let w = &doc(kind)["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail", "{kind}");
        assert_eq!(w["sideEffects"], "None", "{kind}");
        assert_eq!(w["admissionReviewVersions"], json!(["v1"]));
        let timeout = w["timeoutSeconds"].as_u64().unwrap();
        assert!(
            (1..=30).contains(&timeout) && deadline_ms < timeout * 1000,
            "{kind}: the deadline must be below the timeout"
        );
        let svc_ref = &w["clientConfig"]["service"];
        assert_eq!(svc_ref["name"], svc["metadata"]["name"]);
        assert_eq!(svc_ref["namespace"], ns.as_str());
        assert_eq!(
            svc_ref["path"],
            if kind.starts_with("Mutating") {
                "/mutate"
            } else {
                "/validate"
            }
        );
        let sel = &w["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(sel["key"], "kubernetes.io/metadata.name");
        assert_eq!(sel["operator"], "NotIn");
        assert!(
            sel["values"]
                .as_array()
                .unwrap()
                .contains(&json!("kube-system"))
        );
        assert!(
            sel["values"]
                .as_array()
                .unwrap()
                .contains(&json!(ns.as_str()))
        );
        let resources: Vec<String> = w["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                let g = r["apiGroups"][0].as_str().unwrap().to_owned();
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |x| format!("{g}/{}", x.as_str().unwrap()))
            })
            .collect();
        for want in [
            "/pods",
            "/pods/ephemeralcontainers",
            "apps/deployments",
            "apps/replicasets",
            "apps/statefulsets",
            "apps/daemonsets",
            "batch/jobs",
            "batch/cronjobs",
        ] {
            assert!(
                resources.iter().any(|r| r == want),
                "{kind} misses {want}: {resources:?}"
            );
        }
    }

    // The script fills caBundle with the CA that signed the serving certificate.
    let scratch = tempfile::tempdir().unwrap();
    let out = certs(&scratch.path().join("certs"));
    let filled = manifests(&out);
    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    let webhooks: Vec<&Value> = filled
        .iter()
        .map(|(_, d)| d)
        .filter(|d| {
            d["kind"]
                .as_str()
                .unwrap()
                .ends_with("WebhookConfiguration")
        })
        .collect();
    assert_eq!(webhooks.len(), 2);
    for w in webhooks {
        let bundle = w["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()
            .unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(bundle)
                .unwrap(),
            ca
        );
    }
    let secret = filled
        .iter()
        .find(|(_, d)| d["kind"] == "Secret")
        .unwrap()
        .1
        .clone();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    // Re-running keeps the CA (so caBundle stays valid) and renews the leaf.
    let leaf = std::fs::read(out.join("tls.crt")).unwrap();
    certs(&out);
    assert_eq!(std::fs::read(out.join("ca.crt")).unwrap(), ca);
    assert_ne!(std::fs::read(out.join("tls.crt")).unwrap(), leaf);

    // kubectl (when installed) builds the kustomization.
    if let Ok(o) = std::process::Command::new("kubectl")
        .args(["kustomize", dir.to_str().unwrap()])
        .output()
    {
        assert!(
            o.status.success(),
            "kubectl kustomize: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
