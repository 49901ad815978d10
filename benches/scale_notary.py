#!/usr/bin/env python3
"""Notary v1 on the scale benchmark's tag counts (issue #13 item 5): a real
notary-server (Debian package `notary`, `"storage": {"backend": "memory"}`, a
local TLS certificate made with openssl, as tests/notary/fixture.rs does) and the
real `notary` client.

Populating: `notary addhash` is an offline operation that stages one change file
in the client's changelist directory (`<trust_dir>/tuf/<GUN>/changelist/`); one
process per target costs a process start each, too slow for 100,000. So one real
`notary addhash` is run, and its change file is the template for the other N-1,
written straight into the changelist in the same format (JSON with the target's
length and sha256, base64); then one `notary publish` signs and uploads them all.
The publish time is reported too (it is Notary's equivalent of building the
repository, not of one `warrant sign`).

Measured, median of --runs: `notary lookup GUN probe` with a fresh trust
directory (cold: TOFU of root, then timestamp, snapshot, targets) and the same
lookup again (warm: the cached metadata, a new timestamp check).

    python3 benches/scale_notary.py [--sizes 100,10000] [--runs 3]

Used by benches/scale.py --notary, which prints the ratios to warrant's verify.
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid

PASSPHRASES = {
    "NOTARY_ROOT_PASSPHRASE": "root pass",
    "NOTARY_TARGETS_PASSPHRASE": "targets pass",
    "NOTARY_SNAPSHOT_PASSPHRASE": "snapshot pass",
    "NOTARY_DELEGATION_PASSPHRASE": "delegation pass",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Notary:
    """notary-server on a free loopback port, and a client config per trust dir."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "notary")
        os.makedirs(self.dir)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl(self.dir, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=warrant bench CA")
        openssl(self.dir, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
        with open(os.path.join(self.dir, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        openssl(self.dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
        port = free_port()
        config = {
            "server": {"http_addr": f"127.0.0.1:{port}",
                       "tls_key_file": os.path.join(self.dir, "server.key"),
                       "tls_cert_file": os.path.join(self.dir, "server.crt")},
            "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
            "logging": {"level": "warn"},
            "storage": {"backend": "memory"},
        }
        with open(os.path.join(self.dir, "server.json"), "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.server = subprocess.Popen(["notary-server", "-config", os.path.join(self.dir, "server.json")],
                                       stdout=self.log, stderr=self.log)
        self.url = f"https://127.0.0.1:{port}"
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.025)
        self.env = dict(os.environ, **PASSPHRASES)
        self.signer = self.config("signer")

    def config(self, name):
        """A client config whose trust dir is `name` (a fresh one is a cold client)."""
        path = os.path.join(self.dir, f"{name}.json")
        with open(path, "w") as f:
            json.dump({"trust_dir": os.path.join(self.dir, name),
                       "remote_server": {"url": self.url, "root_ca": os.path.join(self.dir, "ca.crt")}}, f)
        return path

    def run(self, config, *args):
        t = time.perf_counter()
        p = subprocess.run(["notary", "-c", config, *args], env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"notary {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return (time.perf_counter() - t) * 1000, p.stdout

    def stop(self):
        self.server.kill()
        self.server.wait()


def stage(notary, gun, n):
    """Stage N targets: `tag0`…`tag{N-2}` and `probe`, one real addhash as the template."""
    probe = hashlib.sha256(b"probe").hexdigest()
    notary.run(notary.signer, "addhash", gun, "probe", "5", "--sha256", probe)
    changes = os.path.join(notary.dir, "signer", "tuf", gun, "changelist")
    template = None
    for name in sorted(os.listdir(changes)):
        with open(os.path.join(changes, name)) as f:
            change = json.load(f)
        if change.get("path") == "probe":
            template = change
    assert template is not None, os.listdir(changes)
    assert json.loads(base64.b64decode(template["data"])) == {
        "length": 5, "hashes": {"sha256": base64.b64encode(bytes.fromhex(probe)).decode()}}, template
    # Names sort after the real ones: `<nanoseconds, 20 digits>_<uuid>.change`.
    t0 = time.time_ns()
    for i in range(n - 1):
        digest = hashlib.sha256(f"tag{i}".encode()).digest()
        data = {"length": 1000 + i, "hashes": {"sha256": base64.b64encode(digest).decode()}}
        change = dict(template, path=f"tag{i}", data=base64.b64encode(json.dumps(data).encode()).decode())
        with open(os.path.join(changes, f"{t0 + i + 1:020d}_{uuid.uuid4()}.change"), "w") as f:
            json.dump(change, f, separators=(",", ":"))


def measure(tmp, notary, n, runs):
    gun = f"scale/n{n}"
    notary.run(notary.signer, "init", gun)
    t = time.perf_counter()
    stage(notary, gun, n)
    staged_s = time.perf_counter() - t
    publish_ms, _ = notary.run(notary.signer, "publish", gun)
    colds, warms = [], []
    for i in range(runs):
        config = notary.config(f"lookup-{n}-{i}")
        ms, out = notary.run(config, "lookup", gun, "probe")
        assert out.startswith("probe sha256:"), out
        colds.append(ms)
        warms.append(notary.run(config, "lookup", gun, "probe")[0])
    listed = os.path.join(notary.dir, f"lookup-{n}-0", "tuf", gun, "metadata", "targets.json")
    return {
        "n": n, "staged_s": staged_s, "publish_ms": publish_ms,
        "cold": statistics.median(colds), "warm": statistics.median(warms),
        "targets_kib": os.path.getsize(listed) / 1024,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,10000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="warrant-scale-notary.")
    notary = Notary(tmp)
    try:
        print("| targets | staged | notary publish | targets.json | lookup cold | lookup warm |")
        print("|---|---|---|---|---|---|")
        for n in map(int, args.sizes.split(",")):
            r = measure(tmp, notary, n, args.runs)
            print(f"| {n:,} | {r['staged_s']:.1f} s | {r['publish_ms']:.0f} ms | {r['targets_kib']:.0f} KiB "
                  f"| {r['cold']:.0f} ms | {r['warm']:.0f} ms |", flush=True)
    finally:
        notary.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
