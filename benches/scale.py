#!/usr/bin/env python3
"""Scale benchmark against a real registry (issue #13 item 5). For each tag count
and layout (flat top-level targets, 512 hash bins) it builds a signed repository
through the library (examples/scale_build.rs: one publish, not N processes), then
measures, median of --runs:

  sign     `warrant sign` of one more tag by the signer (time, registry requests,
           bytes uploaded = new blobs + manifest)
  cold     `warrant verify` of one tag from a fresh home (time, requests, bytes read)
  warm     the same verify again, nothing changed
  py cold / py warm   python-tuf's ngclient (refresh + get_targetinfo) over HTTP on
           the same repository (`warrant export`), fresh and warm metadata dir

With --notary, the same tag counts through Notary v1 (benches/scale_notary.py:
notary-server with memory storage, `notary lookup` cold and warm) and a second
table of the ratios Notary / warrant.

Prints Markdown tables; asserts nothing. Needs docker-registry, skopeo, python-tuf
(notary and notary-server for --notary) and release builds (benches/scale.sh
builds them).

    python3 benches/scale.py [--sizes 100,10000,100000] [--runs 5] [--notary]
"""
import argparse
import functools
import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
W = os.path.join(REPO, "target/release/warrant")
BUILD = os.path.join(REPO, "target/release/examples/scale_build")
ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH) (/v2/\S*) HTTP/[\d.]+" (\d+) (\d+|-)')
OCI = "application/vnd.oci.image.manifest.v1+json"

PY_CLIENT = r"""
import sys
from tuf.ngclient import Updater
meta, url, tdir, name = sys.argv[1:5]
u = Updater(meta, url + "/", tdir, url + "/targets/", bootstrap=None)
u.refresh()
assert u.get_targetinfo(name) is not None, name
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_entries(path):
    with open(path, errors="replace") as f:
        return [m.groups() for m in map(ACCESS.search, f) if m]


def run(cmd, env, out=subprocess.DEVNULL):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr}")
    return (time.perf_counter() - t) * 1000, p


def listing(host, repo):
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/warrant.tuf", headers={"Accept": OCI})
    body = urllib.request.urlopen(req).read()
    m = json.loads(body)
    return {l["digest"]: l["size"] for l in m["layers"]}, len(body)


def serve(directory):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=directory))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def measure(tmp, host, log_path, n, bins, runs, verifier=W, python=True):
    repo = f"scale/n{n}-{'bins' if bins else 'flat'}"
    ref = f"{host}/{repo}"
    signer = dict(os.environ, WARRANT_HOME=os.path.join(tmp, f"signer-{n}-{bins}"), WARRANT_PASSPHRASE="bench")
    run([W, "init", ref, "--bins", "512" if bins else "none"], signer)
    t, p = run([BUILD, ref, str(n)], signer)
    build_s = t / 1000
    layout = os.path.join(tmp, "layout")
    for i in range(runs + 1):
        tag = f"probe{i}"
        subprocess.run([sys.executable, os.path.join(REPO, "e2e/make-image.py"), layout, tag, "--content",
                        f"probe {n} {bins} {i}"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{tag}",
                        f"docker://{ref}:{tag}"], check=True)

    def cost(cmd, env):
        before = len(log_entries(log_path))
        ms, _ = run(cmd, env)
        time.sleep(0.05)
        new = log_entries(log_path)[before:]
        read = sum(int(b) for m, _, _, b in new if b != "-" and m == "GET")
        return ms, len(new), read

    signs = []
    for i in range(1, runs + 1):
        old, _ = listing(host, repo)
        ms, reqs, _ = cost([W, "sign", f"{ref}:probe{i}"], signer)
        new, msize = listing(host, repo)
        uploaded = sum(s for d, s in new.items() if d not in old) + msize
        signs.append((ms, reqs, uploaded))
    export = os.path.join(tmp, f"export-{n}-{bins}")
    run([W, "export", ref, export], signer)
    root = os.path.join(export, "1.root.json")
    colds, warms = [], []
    for i in range(runs):
        env = dict(os.environ, WARRANT_HOME=os.path.join(tmp, f"v-{n}-{bins}-{i}"))
        colds.append(cost([verifier, "verify", f"{ref}:probe1", "--root", root], env))
        warms.append(cost([verifier, "verify", f"{ref}:probe1"], env))
    httpd = serve(export)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    py_cold, py_warm = [], []
    for i in range(min(runs, 3) if python else 0):
        meta = tempfile.mkdtemp(dir=tmp)
        shutil.copy(root, os.path.join(meta, "root.json"))
        cmd = [sys.executable, "-c", PY_CLIENT, meta, url, tmp, "probe1"]
        py_cold.append(run(cmd, os.environ)[0])
        py_warm.append(run(cmd, os.environ)[0])
    httpd.shutdown()
    med = lambda rows, k: statistics.median(r[k] for r in rows)
    return {
        "n": n, "layout": "512 bins" if bins else "flat", "build_s": build_s,
        "sign": (med(signs, 0), med(signs, 1), med(signs, 2)),
        "cold": (med(colds, 0), med(colds, 1), med(colds, 2)),
        "warm": (med(warms, 0), med(warms, 1), med(warms, 2)),
        "py": (statistics.median(py_cold or [0]), statistics.median(py_warm or [0])),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--verifier", default=W, help="the warrant binary that verifies (e.g. an older build)")
    ap.add_argument("--no-python", action="store_true")
    ap.add_argument("--notary", action="store_true", help="also Notary v1 on the same tag counts, with ratios")
    args = ap.parse_args()
    results = {}
    tmp = tempfile.mkdtemp(prefix="warrant-scale.")
    host = f"127.0.0.1:{free_port()}"
    config = os.path.join(tmp, "config.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\n"
                f"storage:\n  filesystem:\n    rootdirectory: {tmp}/data\nhttp:\n  addr: {host}\n")
    log_path = os.path.join(tmp, "registry.log")
    log = open(log_path, "w")
    reg = subprocess.Popen(["/usr/bin/docker-registry", "serve", config], stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        print("| tags | layout | sign: ms / requests / bytes up | verify cold: ms / requests / bytes read "
              "| verify warm: ms / requests / bytes read | python-tuf cold / warm | py/warrant warm |")
        print("|---|---|---|---|---|---|---|")
        for n in map(int, args.sizes.split(",")):
            for bins in (False, True):
                r = measure(tmp, host, log_path, n, bins, args.runs, args.verifier, not args.no_python)
                results[(n, bins)] = r
                s, c, w, (pc, pw) = r["sign"], r["cold"], r["warm"], r["py"]
                print(f"| {n:,} | {r['layout']} | {s[0]:.0f} ms / {s[1]:.0f} / {s[2] / 1024:.1f} KiB "
                      f"| {c[0]:.0f} ms / {c[1]:.0f} / {c[2] / 1024:.1f} KiB "
                      f"| {w[0]:.0f} ms / {w[1]:.0f} / {w[2]:.0f} B "
                      f"| {pc:.0f} / {pw:.0f} ms | {pw / w[0]:.0f}x |", flush=True)
        if args.notary:
            notary_table(tmp, results, args.runs)
    finally:
        reg.kill()
        reg.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def notary_table(tmp, results, runs):
    """Notary v1 at each tag count, and Notary's lookup time over warrant's verify."""
    sys.path.insert(0, HERE)
    import scale_notary

    notary = scale_notary.Notary(tmp)
    try:
        print("\n| tags | notary: publish of all tags / targets.json | notary lookup cold / warm "
              "| warrant verify cold / warm, flat | notary/warrant cold / warm, flat "
              "| warrant verify cold / warm, 512 bins | notary/warrant cold / warm, 512 bins |")
        print("|---|---|---|---|---|---|---|")
        for n in sorted({n for n, _ in results}):
            r = scale_notary.measure(tmp, notary, n, runs)
            row = f"| {n:,} | {r['publish_ms']:.0f} ms / {r['targets_kib']:.0f} KiB | {r['cold']:.0f} / {r['warm']:.0f} ms"
            for bins in (False, True):
                w = results.get((n, bins))
                if w is None:
                    row += " | not run | not run"
                    continue
                c, m = w["cold"][0], w["warm"][0]
                row += f" | {c:.0f} / {m:.0f} ms | {r['cold'] / c:.1f}x / {r['warm'] / m:.1f}x"
            print(row + " |", flush=True)
    finally:
        notary.stop()


if __name__ == "__main__":
    main()
