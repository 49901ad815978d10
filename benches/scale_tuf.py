#!/usr/bin/env python3
"""Scale benchmark over plain TUF-over-HTTP: python-tuf builds repositories of N
targets (flat, or spread over 512 succinct hash bins), a local HTTP server serves
them, and each client downloads one target cold (empty metadata dir) and warm
(same metadata, nothing changed), through the tuf-conformance client CLI
(warrant-conformance) and python-tuf's ngclient. Prints a table; asserts nothing.

    python3 benches/scale_tuf.py [--sizes 100,10000,100000] [--runs 5]
        [--client PATH ...] [--no-python]
"""
import argparse
import hashlib
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import partial

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROBE = "v7"
COMPACT = JSONSerializer(compact=True)


def write(meta_dir, name, md):
    """Write md; its snapshot entry records version and length (what bounds the
    download), as python-tuf's repository examples do."""
    data = md.to_bytes(COMPACT)
    with open(os.path.join(meta_dir, name), "wb") as f:
        f.write(data)
    return MetaFile(1, length=len(data))


def build(root_dir, n, bins):
    """Write a consistent-snapshot repository with n targets under root_dir."""
    meta_dir = os.path.join(root_dir, "metadata")
    tgt_dir = os.path.join(root_dir, "targets")
    os.makedirs(meta_dir)
    os.makedirs(tgt_dir)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    signers = {r: CryptoSigner.generate_ed25519() for r in ("root", "timestamp", "snapshot", "targets", "bins")}
    root = Metadata(Root(expires=expires, consistent_snapshot=True))
    for role in ("root", "timestamp", "snapshot", "targets"):
        root.signed.add_key(signers[role].public_key, role)
    targets = Metadata(Targets(expires=expires))
    files = {}
    for i in range(n):
        content = f"image manifest {i}\n".encode()
        name = f"v{i}"
        files[name] = TargetFile(len(content), {"sha256": hashlib.sha256(content).hexdigest()}, name)
        if name == PROBE:
            with open(os.path.join(tgt_dir, f"{files[name].hashes['sha256']}.{name}"), "wb") as f:
                f.write(content)
    snapshot = Metadata(Snapshot(expires=expires))
    if bins:
        bit_length = (bins - 1).bit_length()
        succinct = SuccinctRoles([], 1, bit_length, "bin")
        targets.signed.delegations = Delegations({}, succinct_roles=succinct)
        targets.signed.add_key(signers["bins"].public_key)
        per_bin = {name: Metadata(Targets(expires=expires)) for name in succinct.get_roles()}
        for name, tf in files.items():
            per_bin[succinct.get_role_for_target(name)].signed.targets[name] = tf
        for name, md in per_bin.items():
            md.sign(signers["bins"])
            snapshot.signed.meta[f"{name}.json"] = write(meta_dir, f"1.{name}.json", md)
    else:
        targets.signed.targets = files
    targets.sign(signers["targets"])
    snapshot.signed.meta["targets.json"] = write(meta_dir, "1.targets.json", targets)
    for role, md in (("root", root), ("snapshot", snapshot)):
        md.sign(signers[role])
        md.to_file(os.path.join(meta_dir, f"1.{role}.json"), COMPACT)
    timestamp = Metadata(Timestamp(expires=expires))
    timestamp.sign(signers["timestamp"])
    timestamp.to_file(os.path.join(meta_dir, "timestamp.json"), COMPACT)
    size = os.path.getsize(os.path.join(meta_dir, "1.targets.json"))
    return os.path.join(meta_dir, "1.root.json"), size


def serve(directory):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = partial(Quiet, directory=directory)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


PY_CLIENT = r"""
import sys
from tuf.ngclient import Updater
meta, url, tdir = sys.argv[1:4]
u = Updater(meta, url + "/metadata/", tdir, url + "/targets/", bootstrap=None)
u.refresh()
info = u.get_targetinfo(sys.argv[4])
assert info is not None
if u.find_cached_target(info) is None:
    u.download_target(info)
"""


def timed(cmd):
    """Wall ms and peak RSS (KiB, from GNU time: a forked child's own rusage would
    count the Python parent's pages) of one run; raises on failure."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd, check=True,
                       stdout=subprocess.DEVNULL)
        ms = (time.perf_counter() - t) * 1000
        return ms, int(rss.read().split()[-1])


def measure(kind, exe, root_file, url, runs, work):
    """Median cold and warm wall ms, and peak RSS of the warm runs."""
    cold, warm, rss = [], [], 0
    for _ in range(runs):
        meta = tempfile.mkdtemp(dir=work)
        tdir = tempfile.mkdtemp(dir=work)
        if kind == "conformance":
            base = [exe, "--metadata-dir", meta]
            subprocess.run(base + ["init", root_file], check=True)
            cmd = base + ["--metadata-url", url + "/metadata", "--target-name", PROBE,
                          "--target-base-url", url + "/targets", "--target-dir", tdir, "download"]
        else:
            shutil.copy(root_file, os.path.join(meta, "root.json"))
            cmd = [sys.executable, "-c", PY_CLIENT, meta, url, tdir, PROBE]
        cold.append(timed(cmd)[0])
        ms, peak = timed(cmd)
        warm.append(ms)
        rss = max(rss, peak)
        shutil.rmtree(meta)
        shutil.rmtree(tdir)
    return statistics.median(cold), statistics.median(warm), rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--client", action="append",
                    help="NAME=PATH of a tuf-conformance client (default: target/release/warrant-conformance)")
    ap.add_argument("--no-python", action="store_true")
    args = ap.parse_args()
    clients = [c.split("=", 1) for c in (args.client or
               [f"warrant={os.path.join(REPO, 'target/release/warrant-conformance')}"])]
    if not args.no_python:
        clients.append(("python-tuf", None))
    work = tempfile.mkdtemp(prefix="warrant-scale.")
    print(f"| targets | layout | targets.json | " +
          " | ".join(f"{n} cold | {n} warm | {n} warm RSS" for n, _ in clients) + " |")
    print("|---|---|---|" + "---|---|---|" * len(clients))
    try:
        for n in map(int, args.sizes.split(",")):
            for bins in (0, 512):
                repo = tempfile.mkdtemp(dir=work)
                root_file, size = build(repo, n, bins)
                httpd = serve(repo)
                url = f"http://127.0.0.1:{httpd.server_address[1]}"
                cells = []
                for name, exe in clients:
                    kind = "python" if exe is None else "conformance"
                    c, w, rss = measure(kind, exe, root_file, url, args.runs, work)
                    cells.append(f"{c:.0f} ms | {w:.0f} ms | {rss / 1024:.0f} MiB")
                httpd.shutdown()
                shutil.rmtree(repo)
                layout = f"{bins} bins" if bins else "flat"
                print(f"| {n:,} | {layout} | {size / 1024:.0f} KiB | " + " | ".join(cells) + " |",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
