#!/usr/bin/env python3
"""Attacker's toolbox for the warrant e2e demo: tamper with an OCI image layout.

Each subcommand models one attack on an image layout that carries a warrant
TUF repository (DESIGN.md §3: the `warrant.tuf` artifact, one layer per TUF
metadata file, titled with the file name). A correct `warrant verify` must
reject every one of them.

Subcommands:

  retag DIR TAG TO_TAG
      Point TAG at the manifest that TO_TAG points at (index.json only).
      Models a registry that serves a different image under a signed tag.

  flip-byte DIR ROLE
      Change one byte inside the JSON of ROLE's metadata blob (e.g. ROLE=targets
      -> the layer titled N.targets.json), in place. By default one hex digit of
      the first signature is changed; `--where version` bumps a digit of the
      "version" value instead. The blob no longer matches its digest. Models
      corruption or a naive attacker.

  forge-target DIR ROLE TARGET NEW_DIGEST [--length N]
      Rewrite TARGET's hashes.sha256 (and length) in ROLE's metadata to
      NEW_DIGEST, and fix up every OCI digest along the way: store the forged
      JSON as a new, correctly named blob, point the warrant.tuf manifest's
      layer descriptor at it (digest + size), store that manifest as a new blob
      and point the index.json `warrant.tuf` entry at it (digest + size). Only
      TUF itself (signatures, snapshot hashes) can catch this. The length
      defaults to the size of the NEW_DIGEST blob when it is in the layout.

All writes are atomic (temp file + os.replace). Blobs that become garbage are
left in place, as a real attacker would not bother to clean up either.

Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile

REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
PENDING = "vnd.warrant.pending"
TUF_TAG = "warrant.tuf"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class TamperError(Exception):
    """Raised when the layout does not look the way the attack expects."""


# --------------------------------------------------------------------------
# OCI layout helpers
# --------------------------------------------------------------------------


def atomic_write(path: str, data: bytes) -> None:
    """Write data to path atomically (temp file in the same dir + os.replace).

    os.replace also works when the target is read-only, as long as the
    directory is writable.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-tamper-")
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


def normalize_digest(digest: str) -> str:
    """Accept "sha256:<hex>" or a bare hex string; return "sha256:<hex>"."""
    digest = digest.strip().lower()
    if ":" not in digest:
        digest = "sha256:" + digest
    if not DIGEST_RE.match(digest):
        raise TamperError(f"not a sha256 digest: {digest!r}")
    return digest


def blob_path(layout: str, digest: str) -> str:
    """Path of a blob; the digest is validated first (no path traversal)."""
    digest = normalize_digest(digest)
    return os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])


def read_blob(layout: str, digest: str) -> bytes:
    with open(blob_path(layout, digest), "rb") as f:
        return f.read()


def write_blob(layout: str, data: bytes) -> tuple[str, int]:
    """Store data under its correct sha256 name; return (digest, size)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    atomic_write(blob_path(layout, digest), data)
    return digest, len(data)


def load_index(layout: str) -> dict:
    with open(os.path.join(layout, "index.json"), "rb") as f:
        return json.load(f)


def save_index(layout: str, index: dict) -> None:
    atomic_write(os.path.join(layout, "index.json"), json.dumps(index, indent=2).encode() + b"\n")


def find_ref(index: dict, ref: str) -> dict:
    """Return the (unique) index.json entry whose ref name is ref."""
    hits = [m for m in index.get("manifests") or [] if (m.get("annotations") or {}).get(REF_NAME) == ref]
    if not hits:
        raise TamperError(f"no index.json entry with {REF_NAME}={ref!r}")
    if len(hits) > 1:
        raise TamperError(f"{len(hits)} index.json entries with {REF_NAME}={ref!r}; ambiguous")
    return hits[0]


def role_file_re(role: str) -> re.Pattern:
    """File-name pattern of a role's metadata in the warrant.tuf artifact.

    timestamp is unversioned ("timestamp.json"); every other role is stored
    with its version prefix ("<N>.<role>.json", consistent snapshots).
    """
    if role == "timestamp":
        return re.compile(r"^timestamp\.json$")
    return re.compile(r"^(\d+)\." + re.escape(role) + r"\.json$")


def find_role_layer(manifest: dict, role: str) -> dict:
    """Find the layer holding ROLE's current (non-pending) metadata.

    If several versions are listed (roots always are), take the highest.
    """
    pattern = role_file_re(role)
    candidates = []
    for layer in manifest.get("layers") or []:
        annotations = layer.get("annotations") or {}
        m = pattern.match(annotations.get(TITLE, ""))
        if m and annotations.get(PENDING) != "true":
            version = int(m.group(1)) if m.groups() else 0
            candidates.append((version, layer))
    if not candidates:
        titles = [(l.get("annotations") or {}).get(TITLE) for l in manifest.get("layers") or []]
        raise TamperError(f"no layer for role {role!r} in the {TUF_TAG} manifest (titles: {titles})")
    candidates.sort(key=lambda c: c[0])
    return candidates[-1][1]


def load_tuf_manifest(layout: str) -> tuple[dict, dict, dict]:
    """Return (index, index entry of warrant.tuf, parsed warrant.tuf manifest)."""
    index = load_index(layout)
    entry = find_ref(index, TUF_TAG)
    manifest = json.loads(read_blob(layout, entry["digest"]))
    return index, entry, manifest


# --------------------------------------------------------------------------
# Attacks
# --------------------------------------------------------------------------


def cmd_retag(args: argparse.Namespace) -> None:
    index = load_index(args.dir)
    entry = find_ref(index, args.tag)
    source = find_ref(index, args.to_tag)
    old = entry["digest"]
    # Copy the whole descriptor (mediaType, digest, size, platform, ...) of
    # TO_TAG, but keep TAG's own annotations so the ref name stays TAG.
    annotations = entry.get("annotations")
    entry.clear()
    entry.update({k: v for k, v in source.items() if k != "annotations"})
    entry["annotations"] = annotations
    save_index(args.dir, index)
    print(f"retag: {args.tag}: {old} -> {entry['digest']} (the manifest of {args.to_tag})")


def cmd_flip_byte(args: argparse.Namespace) -> None:
    _, _, manifest = load_tuf_manifest(args.dir)
    layer = find_role_layer(manifest, args.role)
    title = layer["annotations"][TITLE]
    path = blob_path(args.dir, layer["digest"])
    with open(path, "rb") as f:
        data = bytearray(f.read())

    offset = None
    if args.where == "sig":
        # First hex digit of the first signature value: "sig": "<hex>".
        m = re.search(rb'"sig"\s*:\s*"([0-9a-fA-F])', data)
        if m:
            offset = m.start(1)
            old = data[offset]
            # Swap to a different hex digit, keeping the JSON valid.
            data[offset] = ord("0") if old != ord("0") else ord("1")
    if offset is None:
        # --where version, or no signature found: change a digit of the
        # first "version" value in the file (the signed body's own version,
        # or for snapshot/timestamp possibly a meta entry's; either is signed).
        m = re.search(rb'"version"\s*:\s*(\d)', data)
        if not m:
            raise TamperError(f"{title}: found neither a signature nor a version to change")
        offset = m.start(1)
        old = data[offset]
        data[offset] = ord("1") if old != ord("1") else ord("2")

    # Overwrite the blob under its old name: its content no longer matches
    # its digest, exactly what bit rot or a careless attacker produces.
    atomic_write(path, bytes(data))
    print(
        f"flip-byte: {title} (blob {layer['digest']}): byte {offset} "
        f"{chr(old)!r} -> {chr(data[offset])!r}"
    )


def cmd_forge_target(args: argparse.Namespace) -> None:
    index, entry, manifest = load_tuf_manifest(args.dir)
    layer = find_role_layer(manifest, args.role)
    title = layer["annotations"][TITLE]
    metadata = json.loads(read_blob(args.dir, layer["digest"]))

    targets = (metadata.get("signed") or {}).get("targets")
    if not isinstance(targets, dict) or args.target not in targets:
        raise TamperError(f"{title}: no target {args.target!r} (targets: {sorted(targets or {})})")
    new_digest = normalize_digest(args.new_digest)
    length = args.length
    if length is None:
        try:
            length = os.path.getsize(blob_path(args.dir, new_digest))
        except FileNotFoundError:
            length = targets[args.target].get("length")

    # 1. Forge the TUF target: the signatures are left untouched, so they no
    #    longer match the signed body.
    old_hash = (targets[args.target].get("hashes") or {}).get("sha256")
    targets[args.target]["hashes"] = {"sha256": new_digest.split(":", 1)[1]}
    targets[args.target]["length"] = length
    forged = json.dumps(metadata, indent=1, ensure_ascii=False).encode("utf-8")

    # 2. Store the forged metadata as a new, correctly addressed blob and
    #    point the layer descriptor at it (digest + size; annotations kept).
    old_layer = layer["digest"]
    layer["digest"], layer["size"] = write_blob(args.dir, forged)

    # 3. Store the rewritten warrant.tuf manifest as a new blob.
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode("utf-8")
    old_manifest = entry["digest"]
    entry["digest"], entry["size"] = write_blob(args.dir, manifest_bytes)

    # 4. Point the index.json warrant.tuf entry at the new manifest.
    save_index(args.dir, index)
    print(f"forge-target: {title}: target {args.target!r} sha256 {old_hash} -> {new_digest.split(':', 1)[1]}, length {length}")
    print(f"forge-target: {title} blob {old_layer} -> {layer['digest']}")
    print(f"forge-target: {TUF_TAG} manifest {old_manifest} -> {entry['digest']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tamper with an OCI layout holding a warrant TUF repository.")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("retag", help="point TAG at TO_TAG's manifest")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("tag", metavar="TAG")
    p.add_argument("to_tag", metavar="TO_TAG")
    p.set_defaults(func=cmd_retag)

    p = sub.add_parser("flip-byte", help="change one byte of ROLE's metadata blob in place")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("role", metavar="ROLE", help="targets, snapshot, timestamp, root or a delegated role")
    p.add_argument("--where", choices=("sig", "version"), default="sig", help="what to change (default: %(default)s)")
    p.set_defaults(func=cmd_flip_byte)

    p = sub.add_parser("forge-target", help="rewrite a target's hash and fix up all OCI digests")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("role", metavar="ROLE")
    p.add_argument("target", metavar="TARGET", help="target name (the tag)")
    p.add_argument("new_digest", metavar="NEW_DIGEST", help="sha256:<hex> to claim for TARGET")
    p.add_argument("--length", type=int, help="length to claim (default: size of the NEW_DIGEST blob)")
    p.set_defaults(func=cmd_forge_target)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (TamperError, OSError, ValueError, KeyError) as e:
        print(f"tamper: {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
