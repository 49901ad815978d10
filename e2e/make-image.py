#!/usr/bin/env python3
"""Make a tiny, valid OCI image in an OCI image layout directory, offline.

Usage:
    make-image.py DIR TAG [--content TEXT] [--file NAME]

Creates DIR as an OCI image layout if it does not exist yet (or is empty),
then writes one single-layer linux/amd64 image into it and points the tag TAG
at it (index.json entry annotated org.opencontainers.image.ref.name=TAG).
Any existing entry with the same ref name is replaced; all other entries are
kept. Prints the manifest digest ("sha256:<hex>") on stdout.

Everything is deterministic: the same TEXT always gives the same manifest
digest, and different TEXT gives a different one. The layer is a gzip'd tar
holding one regular file (default name "hello.txt") whose content is TEXT;
the tar entry has a fixed mtime/owner/mode and the gzip header has mtime 0
and no file name.

Every file is written atomically (temporary file in the same directory, fsync,
os.replace), so a concurrent reader never sees a half-written index.json or
blob. Blobs are content-addressed and are not rewritten when already present.

The result is accepted by `skopeo copy oci:DIR:TAG oci:OTHER:TAG`.

Stdlib only, no network.
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

# Media types and annotation keys from the OCI image spec v1.
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"

# Fixed timestamp for the tar entry (2024-01-01T00:00:00Z) so output is
# reproducible; any constant would do.
FIXED_MTIME = 1704067200


def sha256_digest(data: bytes) -> str:
    """Return the OCI digest string ("sha256:<hex>") of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_bytes(obj: object) -> bytes:
    """Serialize JSON deterministically (sorted keys, no whitespace)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def atomic_write(path: str, data: bytes) -> None:
    """Write data to path atomically: temp file in the same dir, fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        # Never leave the temp file behind, whatever went wrong.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_blob(layout: str, data: bytes) -> dict:
    """Store data as a blob; return {"digest": ..., "size": ...}."""
    digest = sha256_digest(data)
    path = os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])
    # Content-addressed: an existing blob with this name already has these
    # bytes (unless someone tampered with it; rewriting is harmless anyway).
    if not os.path.exists(path):
        atomic_write(path, data)
    return {"digest": digest, "size": len(data)}


def make_layer_tar(name: str, content: bytes) -> bytes:
    """Return an uncompressed tar holding one regular file, deterministically."""
    buf = io.BytesIO()
    # USTAR: no PAX extended headers (no atime/ctime), so bytes are stable.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name=name)
        info.size = len(content)
        info.mtime = FIXED_MTIME
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.type = tarfile.REGTYPE
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip data with mtime=0 and no embedded file name (reproducible)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def ensure_layout(layout: str) -> None:
    """Create the OCI layout skeleton if absent; validate it if present."""
    marker = os.path.join(layout, "oci-layout")
    if os.path.isdir(layout) and not os.path.exists(marker) and os.listdir(layout):
        sys.exit(f"make-image: {layout} exists, is not empty and is not an OCI layout (no oci-layout file)")
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    if os.path.exists(marker):
        with open(marker, "rb") as f:
            try:
                version = json.load(f).get("imageLayoutVersion")
            except (ValueError, AttributeError):
                version = None
        if version != LAYOUT_VERSION:
            sys.exit(f"make-image: {marker}: unsupported imageLayoutVersion {version!r}")
    else:
        atomic_write(marker, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
    index_path = os.path.join(layout, "index.json")
    if not os.path.exists(index_path):
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}
        atomic_write(index_path, json.dumps(index, indent=2).encode() + b"\n")


def make_image(layout: str, tag: str, text: str, file_name: str) -> str:
    """Write the image into the layout, tag it, return the manifest digest."""
    ensure_layout(layout)

    # Layer: tar (uncompressed digest = diff_id) then gzip (blob digest).
    tar_bytes = make_layer_tar(file_name, text.encode("utf-8"))
    diff_id = sha256_digest(tar_bytes)
    layer_desc = {"mediaType": MT_LAYER_GZIP, **write_blob(layout, gzip_bytes(tar_bytes))}

    # Image config: minimal but complete per the OCI image spec.
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": f"make-image.py: add /{file_name}"}],
    }
    config_desc = {"mediaType": MT_CONFIG, **write_blob(layout, canonical_bytes(config))}

    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = write_blob(layout, canonical_bytes(manifest))

    # Update index.json: drop any entry already carrying this ref name, keep
    # every other entry (other tags, the warrant.tuf artifact, untagged ones).
    index_path = os.path.join(layout, "index.json")
    with open(index_path, "rb") as f:
        index = json.load(f)
    if not isinstance(index, dict) or index.get("schemaVersion") != 2:
        sys.exit(f"make-image: {index_path}: not an OCI image index (schemaVersion 2)")
    index.setdefault("mediaType", MT_INDEX)
    kept = [
        m
        for m in index.get("manifests") or []
        if (m.get("annotations") or {}).get(REF_NAME) != tag
    ]
    kept.append(
        {
            "mediaType": MT_MANIFEST,
            **manifest_desc,
            "annotations": {REF_NAME: tag},
        }
    )
    index["manifests"] = kept
    atomic_write(index_path, json.dumps(index, indent=2).encode() + b"\n")
    return manifest_desc["digest"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make a tiny deterministic OCI image in an OCI layout directory (no network)."
    )
    parser.add_argument("dir", metavar="DIR", help="OCI image layout directory (created if absent)")
    parser.add_argument("tag", metavar="TAG", help="tag (org.opencontainers.image.ref.name) to point at the image")
    parser.add_argument("--content", default="hello", metavar="TEXT", help="content of the single file in the layer (default: %(default)s)")
    parser.add_argument("--file", default="hello.txt", metavar="NAME", help="name of that file inside the layer (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.tag or args.tag.startswith("_"):
        # skopeo's oci: transport rejects references starting with "_".
        parser.error("TAG must be non-empty and must not start with '_'")
    print(make_image(args.dir, args.tag, args.content, args.file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
