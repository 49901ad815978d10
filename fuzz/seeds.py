#!/usr/bin/env python3
"""Generate the fuzz seed corpora under fuzz/corpus/<target>/ (not committed).

Usage: fuzz/seeds.py [WARRANT_BINARY]   (default: target/debug/warrant, then release)

Makes a real repository with the warrant binary in a temp OCI layout (init, a
delegation with a pending version, a signed tag, a root rotation), exports it,
and turns that into seeds: each metadata file alone and chained in spec order
(root, timestamp, snapshot, targets, separated by two NUL bytes) for `envelope`,
the `warrant.tuf` artifact manifest for `oci_listing`, plus hand-written image
references, policies, AdmissionReview bodies and containerd verifier inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def put(target: str, data: bytes) -> None:
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha256(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def binary() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    for profile in ("debug", "release"):
        p = os.path.join(ROOT, "target", profile, "warrant")
        if os.path.exists(p):
            return p
    sys.exit("seeds.py: build warrant first (cargo build), or pass its path")


def repository_seeds(warrant: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, WARRANT_HOME=os.path.join(tmp, "home"), WARRANT_PASSPHRASE="fuzz")
        layout = os.path.join(tmp, "layout")
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "e2e", "make-image.py"), layout, "v1"],
            check=True, stdout=subprocess.DEVNULL,
        )

        def w(*args: str) -> None:
            subprocess.run([warrant, *args], env=env, check=True, stdout=subprocess.DEVNULL)

        repo = f"oci:{layout}"
        w("init", repo)
        w("sign", f"{repo}:v1")
        for k in ("qa1", "qa2", "root2"):
            w("key", "generate", "--name", k)
        w("delegation", "add", repo, "qa", "--key", "qa1", "--key", "qa2", "--threshold", "2")
        w("sign", f"{repo}:v1", "--role", "qa", "--key", "qa1")
        w("key", "rotate", repo, "--role", "root", "--add", "root2")
        export = os.path.join(tmp, "export")
        w("export", repo, export)
        files = {}
        for name in sorted(os.listdir(export)):
            with open(os.path.join(export, name), "rb") as f:
                files[name] = f.read()
            put("metadata", files[name])
            put("envelope", files[name])

        def newest(role: str) -> bytes:
            named = [(int(n.split(".")[0]), n) for n in files if n.endswith(f".{role}.json") and n[0].isdigit()]
            return files[max(named)[1]]

        chain = [files["1.root.json"], files["timestamp.json"], newest("snapshot"), newest("targets")]
        put("envelope", b"\0\0".join(chain))
        put("envelope", b"\0\0".join([newest("root"), *chain[1:]]))
        # The artifact manifest: index.json names it under the warrant.tuf tag.
        with open(os.path.join(layout, "index.json"), "rb") as f:
            index = json.load(f)
        for m in index["manifests"]:
            blob = os.path.join(layout, "blobs", *m["digest"].split(":"))
            with open(blob, "rb") as f:
                data = f.read()
            put("oci_listing", data)
            put("containerd_stdin", json.dumps({k: m[k] for k in ("mediaType", "digest", "size")}).encode())


def hand_written_seeds() -> None:
    d = "sha256:" + "ab" * 32
    for ref in [
        "localhost:5000/team/app:v1", f"registry.example.com/team/app@{d}",
        f"r.example.com:443/a/b/c:v1.2.3@{d}", "oci:/tmp/layout:v1", f"oci:relative/dir@{d}",
        "docker.io/library/alpine:3.20", "alpine", "[::1]:5000/app:v1", "127.0.0.1:5000/x",
    ]:
        put("image_ref", ref.encode())
    put("policy_toml", b'[[repository]]\nmatch = "localhost:5000/team/*"\nroot = "export/1.root.json"\nrequire-roles = ["qa", "prod"]\n')
    put("policy_toml", b'[[repository]]\nmatch = "r.example.com/**"\nroot-keyids = ["' + b"ab" * 32 + b'"]\nroot-threshold = 1\n')
    put("policy_toml", b'[[repository]]\nmatch = "*"\ntofu = true\n')
    spec = {"containers": [{"name": "app", "image": "localhost:5000/team/app:v1"}],
            "initContainers": [{"name": "init", "image": f"r.example.com/i@{d}"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}
    objects = {
        ("", "v1", "Pod"): {"apiVersion": "v1", "kind": "Pod", "spec": spec},
        ("apps", "v1", "Deployment"): {"spec": {"template": {"spec": spec}}},
        ("batch", "v1", "CronJob"): {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}},
        ("batch", "v1", "Job"): {"spec": {"template": {"spec": spec}}},
    }
    for (group, version, kind), obj in objects.items():
        put("admission_review", json.dumps({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"group": group, "version": version, "kind": kind},
                        "operation": "CREATE", "namespace": "team", "object": obj, "oldObject": obj},
        }).encode())
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 401}
    args = f"-name\nlocalhost:5000/team/app:v1\n-digest\n{d}\n-stdin-media-type\n"
    put("containerd_stdin", (args + "application/vnd.oci.descriptor.v1+json").encode() + b"\0" + json.dumps(desc).encode())
    put("containerd_stdin", (args + "application/vnd.containerd.image-verifier.input.v1+json").encode() + b"\0"
        + json.dumps({"descriptor": desc, "operation": "run"}).encode())


def main() -> None:
    repository_seeds(binary())
    hand_written_seeds()
    for t in sorted(os.listdir(CORPUS)):
        print(f"{t}: {len(os.listdir(os.path.join(CORPUS, t)))} seeds")


if __name__ == "__main__":
    main()
