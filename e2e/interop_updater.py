#!/usr/bin/env python3
"""Run python-tuf's real client (ngclient.Updater) against a `warrant export` dir.

Usage:
    interop_updater.py EXPORT_DIR TAG SHA256 [--length N] [--root FILE]

Serves EXPORT_DIR over HTTP on 127.0.0.1 (a free port, in a thread), bootstraps
an Updater with EXPORT_DIR/1.root.json (or --root FILE) in a fresh temp
metadata dir, runs refresh() (the full TUF client workflow: root rotation,
timestamp, snapshot, targets, with consistent snapshots the Updater fetches
N.root.json, timestamp.json, N.snapshot.json, N.targets.json), then looks up
TAG with get_targetinfo(TAG), which searches delegations too.

SHA256 is the expected manifest digest, "sha256:<hex>" or bare hex; --length
optionally checks the target length too.

Exit status: 0 when python-tuf trusts TAG with that digest, 1 when it does not
(refresh failed, target missing or different), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import sys
import tempfile
import threading

try:
    from tuf.ngclient import Updater
except ImportError:  # pragma: no cover - environment problem
    print("interop_updater: python-tuf is not installed (pip install tuf)", file=sys.stderr)
    sys.exit(2)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that logs requests to stderr in a compact form."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib name
        print(f"  http: {format % args}", file=sys.stderr)


def serve(directory: str) -> http.server.ThreadingHTTPServer:
    """Serve directory on 127.0.0.1:<free port> from a daemon thread."""
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="tuf-http", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a `warrant export` dir with python-tuf's ngclient.Updater.")
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    parser.add_argument("tag", metavar="TAG", help="target name to look up (the image tag)")
    parser.add_argument("sha256", metavar="SHA256", help="expected sha256 of the target (sha256:<hex> or <hex>)")
    parser.add_argument("--length", type=int, help="expected target length (manifest size in bytes)")
    parser.add_argument("--root", metavar="FILE", help="trusted root to bootstrap with (default: EXPORT_DIR/1.root.json)")
    args = parser.parse_args(argv)

    expected = args.sha256.lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        parser.error(f"SHA256 must be 64 hex digits, got {args.sha256!r}")
    root_path = args.root or os.path.join(args.export_dir, "1.root.json")
    try:
        with open(root_path, "rb") as f:
            root_bytes = f.read()
    except OSError as e:
        parser.error(f"cannot read trusted root: {e}")

    server = serve(os.path.abspath(args.export_dir))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory(prefix="warrant-interop-") as metadata_dir:
            # Seed the metadata dir the classic way too (root.json), so the
            # check does not depend on how a python-tuf version bootstraps.
            with open(os.path.join(metadata_dir, "root.json"), "wb") as f:
                f.write(root_bytes)
            try:
                updater = Updater(
                    metadata_dir=metadata_dir,
                    metadata_base_url=f"{base}/",
                    target_base_url=f"{base}/targets/",  # unused: we never download targets
                    bootstrap=root_bytes,
                )
                updater.refresh()
                info = updater.get_targetinfo(args.tag)
            except Exception as e:  # any TUF or download error = not trusted
                print(f"interop_updater: python-tuf refresh/lookup FAILED: {type(e).__name__}: {e}")
                return 1
            fetched = sorted(os.listdir(metadata_dir))
    finally:
        server.shutdown()
        server.server_close()

    print(f"interop_updater: refresh OK; trusted metadata: {', '.join(fetched)}")
    if info is None:
        print(f"interop_updater: FAIL: no target {args.tag!r} in the trusted metadata")
        return 1
    got = info.hashes.get("sha256")
    print(f"interop_updater: target {info.path!r}: length {info.length}, sha256 {got}")
    if got != expected:
        print(f"interop_updater: FAIL: sha256 differs from the expected {expected}")
        return 1
    if args.length is not None and info.length != args.length:
        print(f"interop_updater: FAIL: length differs from the expected {args.length}")
        return 1
    print("interop_updater: python-tuf trusts the target: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
