#!/usr/bin/env python3
"""Registry benchmark: requests, bytes and wall time of warrant verify (warm and
cold) and sign against a local CNCF distribution registry. Prints figures; asserts
nothing. Needs docker-registry and skopeo (installed by .ci/run) and a release build.

    python3 benches/registry_bench.py [--runs N] [--warrant PATH]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH) (/v2/\S*) HTTP/[\d.]+" (\d+) (\d+|-)')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_entries(path):
    with open(path, errors="replace") as f:
        return [m.groups() for m in map(ACCESS.search, f) if m]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warrant", default=os.path.join(REPO, "target/release/warrant"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="warrant-bench.")
    port = free_port()
    host = f"127.0.0.1:{port}"
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
        layout = os.path.join(tmp, "layout")
        for i in range(args.runs + 1):
            subprocess.run([sys.executable, os.path.join(REPO, "e2e/make-image.py"), layout, f"t{i}",
                            "--content", f"bench {i}"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:t{i}",
                            f"docker://{host}/bench/app:t{i}"], check=True)
        env = dict(os.environ, WARRANT_HOME=os.path.join(tmp, "signer"), WARRANT_PASSPHRASE="bench")
        w = args.warrant
        subprocess.run([w, "init", f"{host}/bench/app"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([w, "export", f"{host}/bench/app", os.path.join(tmp, "export")], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        root = os.path.join(tmp, "export", "1.root.json")

        def phase(name, cmds):
            times, reqs, nbytes = [], [], []
            for cmd, cmd_env in cmds:
                before = len(log_entries(log_path))
                t = time.perf_counter()
                subprocess.run(cmd, env=cmd_env, check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - t)
                time.sleep(0.05)
                new = log_entries(log_path)[before:]
                reqs.append(len(new))
                nbytes.append(sum(int(b) for *_, b in new if b != "-" and _[0] == "GET"))
            print(f"{name:<14} requests {statistics.median(reqs):>4.0f}   bytes read {statistics.median(nbytes):>7.0f}"
                  f"   wall median {statistics.median(times) * 1e3:>7.1f} ms  (n={len(times)})")

        phase("sign", [([w, "sign", f"{host}/bench/app:t{i}"], env) for i in range(args.runs)])
        ver = lambda home: dict(os.environ, WARRANT_HOME=os.path.join(tmp, home))
        phase("verify cold", [([w, "verify", f"{host}/bench/app:t0", "--root", root], ver(f"cold{i}"))
                              for i in range(args.runs)])
        subprocess.run([w, "verify", f"{host}/bench/app:t0", "--root", root], env=ver("warm"), check=True,
                       stdout=subprocess.DEVNULL)
        phase("verify warm", [([w, "verify", f"{host}/bench/app:t0"], ver("warm")) for _ in range(args.runs)])
        digest = subprocess.run([w, "--output", "json", "verify", f"{host}/bench/app:t0"], env=ver("warm"),
                                check=True, capture_output=True, text=True).stdout
        import json
        d = json.loads(digest)["digest"]
        phase("verify tag@dig", [([w, "verify", f"{host}/bench/app:t0@{d}"], ver("warm")) for _ in range(args.runs)])
    finally:
        reg.kill()
        reg.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
