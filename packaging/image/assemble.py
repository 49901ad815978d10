#!/usr/bin/env python3
"""Assemble warrant's own container image (the admission webhook) as an OCI layout.

Usage:
    assemble.py --binary PATH --layout DIR --tag TAG [--ca-bundle FILE]

Writes one linux/amd64 image, FROM scratch in spirit, into the OCI image layout
DIR (created if absent; other entries of its index.json, such as the
`warrant.tuf` artifact of an earlier signing, are kept) and points TAG at it.
Prints the manifest digest ("sha256:<hex>") on stdout.

The single layer holds:

    /usr/local/bin/warrant              the binary (must be statically linked)
    /etc/ssl/certs/ca-certificates.crt  the CA bundle (default: the build machine's)
    /etc/passwd, /etc/group             root and the non-root user warrant (65532)
    /etc/nsswitch.conf                  "hosts: files dns", see below
    /var/lib/warrant/                   $WARRANT_HOME, owned by 65532, mode 0700
    /tmp/                               mode 1777

and the config runs /usr/local/bin/warrant as 65532:65532 (Entrypoint; the
arguments are the Deployment's, default `serve admission --help`).

Why nsswitch.conf: a static glibc resolves names with its built-in `files` and
`dns` services (in libc itself since glibc 2.34). Without the file, Debian 12's
glibc already reads /etc/hosts before asking DNS (e2e/test-image.sh passes
without it); the file states that order for whatever glibc builds the next
image, as Debian's own /etc/nsswitch.conf does ("hosts: files dns").

Deterministic: the same inputs give the same digest (fixed mtimes and owners,
gzip without a time stamp, sorted JSON). Stdlib only, no network.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"
# 2024-01-01T00:00:00Z: any constant keeps the layer reproducible.
FIXED_MTIME = 1704067200
CREATED = "2024-01-01T00:00:00Z"
UID = GID = 65532

PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\nwarrant:x:65532:65532:warrant:/var/lib/warrant:/sbin/nologin\n"
GROUP = b"root:x:0:\nwarrant:x:65532:\n"
NSSWITCH = b"passwd: files\ngroup: files\nhosts: files dns\n"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def atomic_write(path: str, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_blob(layout: str, data: bytes) -> dict:
    digest = digest_of(data)
    path = os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])
    if not os.path.exists(path):
        atomic_write(path, data)
    return {"digest": digest, "size": len(data)}


def layer_tar(entries: list[tuple[str, int, int, bytes | None]]) -> bytes:
    """entries: (path, mode, uid, content or None for a directory), in tar order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, mode, uid, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_MTIME
            info.mode = mode
            info.uid = info.gid = uid
            info.uname = info.gname = "warrant" if uid else "root"
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def gzipped(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def check_static(binary: bytes, path: str) -> None:
    """Refuse a dynamically linked ELF: it would not start in an image without libc."""
    if binary[:4] != b"\x7fELF":
        sys.exit(f"assemble.py: {path} is not an ELF executable")
    if b"/lib64/ld-linux-x86-64.so.2\0" in binary[:4096]:
        sys.exit(
            f"assemble.py: {path} is dynamically linked (it names an ELF interpreter); "
            "build it static: make static"
        )


def ensure_layout(layout: str) -> None:
    marker = os.path.join(layout, "oci-layout")
    if os.path.isdir(layout) and os.listdir(layout) and not os.path.exists(marker):
        sys.exit(f"assemble.py: {layout} is not empty and not an OCI layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    if not os.path.exists(marker):
        atomic_write(marker, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
    index = os.path.join(layout, "index.json")
    if not os.path.exists(index):
        atomic_write(index, json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}).encode())


def assemble(binary_path: str, ca_path: str, layout: str, tag: str, version: str) -> str:
    with open(binary_path, "rb") as f:
        binary = f.read()
    check_static(binary, binary_path)
    with open(ca_path, "rb") as f:
        ca = f.read()
    if b"BEGIN CERTIFICATE" not in ca:
        sys.exit(f"assemble.py: {ca_path} holds no PEM certificate (apt-get install ca-certificates)")
    entries = [
        ("etc", 0o755, 0, None),
        ("etc/group", 0o644, 0, GROUP),
        ("etc/nsswitch.conf", 0o644, 0, NSSWITCH),
        ("etc/passwd", 0o644, 0, PASSWD),
        ("etc/ssl", 0o755, 0, None),
        ("etc/ssl/certs", 0o755, 0, None),
        ("etc/ssl/certs/ca-certificates.crt", 0o644, 0, ca),
        ("tmp", 0o1777, 0, None),
        ("usr", 0o755, 0, None),
        ("usr/local", 0o755, 0, None),
        ("usr/local/bin", 0o755, 0, None),
        ("usr/local/bin/warrant", 0o755, 0, binary),
        ("var", 0o755, 0, None),
        ("var/lib", 0o755, 0, None),
        ("var/lib/warrant", 0o700, UID, None),
    ]
    ensure_layout(layout)
    tar = layer_tar(entries)
    layer = {"mediaType": MT_LAYER_GZIP, **write_blob(layout, gzipped(tar))}
    labels = {
        "org.opencontainers.image.title": "warrant",
        "org.opencontainers.image.description": "warrant admission webhook (warrant serve admission)",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    config = {
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": ["/usr/local/bin/warrant"],
            "Cmd": ["serve", "admission", "--help"],
            "Env": [
                "PATH=/usr/local/bin",
                "WARRANT_HOME=/var/lib/warrant",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "ExposedPorts": {"8443/tcp": {}},
            "WorkingDir": "/var/lib/warrant",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [digest_of(tar)]},
        "history": [{"created": CREATED, "created_by": "packaging/image/assemble.py"}],
    }
    config_desc = {"mediaType": MT_CONFIG, **write_blob(layout, canonical(config))}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": [layer],
        "annotations": labels,
    }
    manifest_desc = write_blob(layout, canonical(manifest))

    index_path = os.path.join(layout, "index.json")
    with open(index_path, "rb") as f:
        index = json.load(f)
    kept = [m for m in index.get("manifests") or [] if (m.get("annotations") or {}).get(REF_NAME) != tag]
    kept.append({"mediaType": MT_MANIFEST, **manifest_desc, "annotations": {REF_NAME: tag}})
    index["manifests"] = kept
    atomic_write(index_path, json.dumps(index, indent=2).encode() + b"\n")
    return manifest_desc["digest"]


def main() -> int:
    p = argparse.ArgumentParser(description="Assemble warrant's webhook image as an OCI layout (no network).")
    p.add_argument("--binary", required=True, help="statically linked warrant")
    p.add_argument("--layout", required=True, help="OCI layout directory (created if absent)")
    p.add_argument("--tag", required=True, help="tag to point at the image")
    p.add_argument("--version", default="", help="org.opencontainers.image.version (default: TAG)")
    p.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt", help="PEM CA bundle (default: %(default)s)")
    a = p.parse_args()
    if not a.tag or a.tag.startswith("_") or a.tag == "warrant.tuf":
        p.error("TAG must be non-empty, not start with '_' and not be warrant.tuf")
    print(assemble(a.binary, a.ca_bundle, a.layout, a.tag, a.version or a.tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
