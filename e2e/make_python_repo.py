#!/usr/bin/env python3
"""Build a static TUF repository with python-tuf, for a generic TUF client.

Usage:
    make_python_repo.py OUTDIR

Everything is made with python-tuf's Metadata API, independently of warrant,
with consistent_snapshot=True, and written as static files to serve over HTTP:

  OUTDIR/metadata/   1.root.json, 2.root.json, 3.root.json, timestamp.json,
                     N.snapshot.json, N.targets.json, N.<role>.json
  OUTDIR/targets/    <dirs>/<sha256>.<basename> for every target file

Root chain: version 2 rotates the root key (signed by the old and the new root
key), version 3 rotates the key shared by timestamp and snapshot (signed by the
new root key). Timestamp and snapshot are signed with the version-3 key only,
so a client that does not follow the chain 1 -> 3 cannot verify them.

Keys: root ECDSA P-256, targets ed25519, snapshot+timestamp one shared ECDSA
key, delegated roles a mix of ed25519 and ECDSA.

Delegations of the top-level targets, in this order:

  1. qa             releases/*     2 of 2 keys (ed25519 + ECDSA), not terminating
  2. prod           releases/v1*   ECDSA, terminating
  3. bins           artifacts/*    ed25519; itself delegates with succinct_roles
                                   (bit_length 4, prefix "bin": bin-0 .. bin-f,
                                   all signed by one shared ECDSA key)
  4. nested-parent  deep/*/*       ed25519; delegates nested-child deep/a/* (ECDSA)
  5. late           releases/*     ed25519 (only reachable where prod's
                                   termination does not cut the search off)

Targets (the expected, reachable ones):

  top.txt              top-level targets
  releases/v2.txt      qa only
  releases/v1.0.txt    in qa AND (different bytes) in prod; qa comes first and
                       does not terminate, so qa's version is the answer
  releases/v1.1.txt    prod only (the search falls through qa to prod)
  releases/v4.txt      late only (prod's path does not match, so prod's
                       termination does not apply)
  artifacts/direct.txt bins itself (before its hash bins are searched)
  artifacts/blob-N     N = 0..19, each in the hash bin succinct_roles picks
  deep/a/file.txt      nested-child

Listed in some role but NOT trusted (not delegated along the search path):

  undelegated/x        nowhere at all
  releases/v3.txt      in prod, whose pattern releases/v1* does not match it
  releases/v1.9.txt    in late; prod (terminating) matches it first
  deep/b/file.txt      in nested-child, whose pattern deep/a/* does not match it
  deep/a/x/y.txt       in nested-child; "*" does not match "/", so neither
                       deep/*/* nor deep/a/* matches a 4-part path
  artifacts/sub/blob   in its hash bin; artifacts/* does not match it

Metadata versions differ per role (and from 1) so a client that builds file
names from the wrong version fails. Snapshot gives length+hashes for some
roles only, timestamp gives them for snapshot.

Prints a JSON summary to stdout:
    {"targets": {name: sha256}, "not_delegated": [name, ...],
     "roles": {name: role that holds the trusted version},
     "bins": {bin role: [target names]}, "versions": {role: version}}

Exit status: 0 on success, 2 on usage errors. Requires python-tuf and
securesystemslib[crypto].
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

try:
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import (
        DelegatedRole,
        Delegations,
        MetaFile,
        Metadata,
        Root,
        Snapshot,
        SuccinctRoles,
        TargetFile,
        Targets,
        Timestamp,
    )
    from tuf.api.serialization.json import JSONSerializer
except ImportError:  # pragma: no cover - environment problem
    print("make_python_repo: python-tuf / securesystemslib[crypto] not installed", file=sys.stderr)
    sys.exit(2)

EXPIRES = (datetime.now(timezone.utc) + timedelta(days=365)).replace(microsecond=0)

# Metadata versions, deliberately all different.
VERSIONS = {
    "targets": 2,
    "qa": 3,
    "prod": 1,
    "bins": 2,
    "nested-parent": 1,
    "nested-child": 4,
    "late": 2,
    "snapshot": 5,
    "timestamp": 7,
}


def bin_version(index: int) -> int:
    return 1 + index % 3


class Repo:
    def __init__(self, outdir: str) -> None:
        self.meta_dir = os.path.join(outdir, "metadata")
        self.targets_dir = os.path.join(outdir, "targets")
        os.makedirs(self.meta_dir, exist_ok=True)
        os.makedirs(self.targets_dir, exist_ok=True)
        self.serializer = JSONSerializer(compact=False)
        self.written: dict[str, bytes] = {}  # role -> bytes of its (single) file

    def add_target(self, targets: Targets, path: str, content: bytes) -> TargetFile:
        """List PATH in TARGETS and store CONTENT as <dirs>/<sha256>.<basename>."""
        tf = TargetFile.from_data(path, content, ["sha256"])
        targets.targets[path] = tf
        dirname, _, basename = path.rpartition("/")
        d = os.path.join(self.targets_dir, *dirname.split("/")) if dirname else self.targets_dir
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{tf.hashes['sha256']}.{basename}"), "wb") as f:
            f.write(content)
        return tf

    def write(self, md: Metadata, filename: str) -> bytes:
        data = md.to_bytes(self.serializer)
        with open(os.path.join(self.meta_dir, filename), "wb") as f:
            f.write(data)
        return data


def new_targets(version: int) -> Targets:
    return Targets(version=version, spec_version="1.0.31", expires=EXPIRES, targets={})


def signed(payload, *signers) -> Metadata:
    md = Metadata(payload)
    for s in signers:
        md.sign(s, append=True)
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a static TUF repository with python-tuf.")
    parser.add_argument("outdir", metavar="OUTDIR")
    args = parser.parse_args(argv)
    repo = Repo(args.outdir)

    # ------------------------------------------------------------ keys
    root1 = CryptoSigner.generate_ecdsa()
    root2 = CryptoSigner.generate_ecdsa()
    targets_key = CryptoSigner.generate_ed25519()
    online1 = CryptoSigner.generate_ecdsa()  # timestamp + snapshot, roots 1-2
    online2 = CryptoSigner.generate_ecdsa()  # timestamp + snapshot, root 3
    qa_ed = CryptoSigner.generate_ed25519()
    qa_ec = CryptoSigner.generate_ecdsa()
    prod_key = CryptoSigner.generate_ecdsa()
    bins_key = CryptoSigner.generate_ed25519()
    bin_key = CryptoSigner.generate_ecdsa()  # shared by all 16 hash bins
    parent_key = CryptoSigner.generate_ed25519()
    child_key = CryptoSigner.generate_ecdsa()
    late_key = CryptoSigner.generate_ed25519()

    def keyid(s: CryptoSigner) -> str:
        return s.public_key.keyid

    summary: dict[str, dict[str, str]] = {"targets": {}, "roles": {}}
    not_delegated = ["undelegated/x"]

    def expect(role: str, tf: TargetFile) -> None:
        summary["targets"][tf.path] = tf.hashes["sha256"]
        summary["roles"][tf.path] = role

    # ------------------------------------------------------------ delegated roles
    qa = new_targets(VERSIONS["qa"])
    expect("qa", repo.add_target(qa, "releases/v2.txt", b"qa: release v2\n"))
    expect("qa", repo.add_target(qa, "releases/v1.0.txt", b"qa: release v1.0 (the one clients must pick)\n"))

    prod = new_targets(VERSIONS["prod"])
    repo.add_target(prod, "releases/v1.0.txt", b"prod: release v1.0 (shadowed by qa)\n")
    expect("prod", repo.add_target(prod, "releases/v1.1.txt", b"prod: release v1.1\n"))
    repo.add_target(prod, "releases/v3.txt", b"prod: v3, outside prod's delegated paths\n")
    not_delegated.append("releases/v3.txt")

    late = new_targets(VERSIONS["late"])
    expect("late", repo.add_target(late, "releases/v4.txt", b"late: release v4\n"))
    repo.add_target(late, "releases/v1.9.txt", b"late: v1.9, cut off by prod's termination\n")
    not_delegated.append("releases/v1.9.txt")

    # bins: a targets role of its own, delegating to 16 succinct hash bins.
    succinct = SuccinctRoles(keyids=[keyid(bin_key)], threshold=1, bit_length=4, name_prefix="bin")
    bins = new_targets(VERSIONS["bins"])
    bins.delegations = Delegations(keys={keyid(bin_key): bin_key.public_key}, succinct_roles=succinct)
    expect("bins", repo.add_target(bins, "artifacts/direct.txt", b"bins: listed by bins itself\n"))
    bin_roles = {name: new_targets(bin_version(i)) for i, name in enumerate(succinct.get_roles())}
    bin_targets: dict[str, list[str]] = {name: [] for name in bin_roles}
    for n in range(20):
        path = f"artifacts/blob-{n}"
        role = succinct.get_role_for_target(path)
        expect(role, repo.add_target(bin_roles[role], path, os.urandom(64 + n)))
        bin_targets[role].append(path)
    sub = "artifacts/sub/blob"
    repo.add_target(bin_roles[succinct.get_role_for_target(sub)], sub, b"bin: artifacts/* does not match sub/\n")
    bin_targets[succinct.get_role_for_target(sub)].append(sub)
    not_delegated.append(sub)

    child = new_targets(VERSIONS["nested-child"])
    expect("nested-child", repo.add_target(child, "deep/a/file.txt", b"nested-child: deep/a/file.txt\n"))
    repo.add_target(child, "deep/b/file.txt", b"nested-child: outside deep/a/*\n")
    repo.add_target(child, "deep/a/x/y.txt", b"nested-child: 4 parts, no pattern matches\n")
    not_delegated += ["deep/b/file.txt", "deep/a/x/y.txt"]
    parent = new_targets(VERSIONS["nested-parent"])
    parent.delegations = Delegations(
        keys={keyid(child_key): child_key.public_key},
        roles={"nested-child": DelegatedRole("nested-child", [keyid(child_key)], 1, False, paths=["deep/a/*"])},
    )

    # ------------------------------------------------------------ top-level targets
    targets = new_targets(VERSIONS["targets"])
    expect("targets", repo.add_target(targets, "top.txt", b"top-level target\n"))
    delegated_keys = [qa_ed, qa_ec, prod_key, bins_key, parent_key, late_key]
    targets.delegations = Delegations(
        keys={keyid(s): s.public_key for s in delegated_keys},
        roles={
            "qa": DelegatedRole("qa", [keyid(qa_ed), keyid(qa_ec)], 2, False, paths=["releases/*"]),
            "prod": DelegatedRole("prod", [keyid(prod_key)], 1, True, paths=["releases/v1*"]),
            "bins": DelegatedRole("bins", [keyid(bins_key)], 1, False, paths=["artifacts/*"]),
            "nested-parent": DelegatedRole("nested-parent", [keyid(parent_key)], 1, False, paths=["deep/*/*"]),
            "late": DelegatedRole("late", [keyid(late_key)], 1, False, paths=["releases/*"]),
        },
    )

    # ------------------------------------------------------------ write targets roles
    role_mds: dict[str, Metadata] = {
        "targets": signed(targets, targets_key),
        "qa": signed(qa, qa_ed, qa_ec),
        "prod": signed(prod, prod_key),
        "bins": signed(bins, bins_key),
        "nested-parent": signed(parent, parent_key),
        "nested-child": signed(child, child_key),
        "late": signed(late, late_key),
    }
    for name, t in bin_roles.items():
        role_mds[name] = signed(t, bin_key)
    role_bytes = {name: repo.write(md, f"{md.signed.version}.{name}.json") for name, md in role_mds.items()}

    # ------------------------------------------------------------ snapshot, timestamp
    snap_meta: dict[str, MetaFile] = {}
    for name, md in role_mds.items():
        data = role_bytes[name]
        if name in ("targets", "nested-child"):  # length + hashes
            snap_meta[f"{name}.json"] = MetaFile(md.signed.version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})
        elif name == "qa":  # length only
            snap_meta[f"{name}.json"] = MetaFile(md.signed.version, len(data))
        else:  # version only
            snap_meta[f"{name}.json"] = MetaFile(md.signed.version)
    snapshot = Snapshot(version=VERSIONS["snapshot"], spec_version="1.0.31", expires=EXPIRES, meta=snap_meta)
    snap_bytes = repo.write(signed(snapshot, online2), f"{snapshot.version}.snapshot.json")
    timestamp = Timestamp(
        version=VERSIONS["timestamp"],
        spec_version="1.0.31",
        expires=EXPIRES,
        snapshot_meta=MetaFile(snapshot.version, len(snap_bytes), {"sha256": hashlib.sha256(snap_bytes).hexdigest()}),
    )
    repo.write(signed(timestamp, online2), "timestamp.json")

    # ------------------------------------------------------------ root chain
    root = Root(version=1, spec_version="1.0.31", expires=EXPIRES, consistent_snapshot=True)
    root.add_key(root1.public_key, Root.type)
    root.add_key(targets_key.public_key, Targets.type)
    root.add_key(online1.public_key, Snapshot.type)
    root.add_key(online1.public_key, Timestamp.type)
    repo.write(signed(root, root1), "1.root.json")

    # v2: rotate the root key; signed by the old and the new root key.
    root.version = 2
    root.revoke_key(keyid(root1), Root.type)
    root.add_key(root2.public_key, Root.type)
    repo.write(signed(root, root1, root2), "2.root.json")

    # v3: rotate the timestamp/snapshot key; signed by the (new) root key.
    root.version = 3
    for role in (Snapshot.type, Timestamp.type):
        root.revoke_key(keyid(online1), role)
        root.add_key(online2.public_key, role)
    repo.write(signed(root, root2), "3.root.json")

    versions = {name: md.signed.version for name, md in role_mds.items()}
    versions.update(root=3, snapshot=snapshot.version, timestamp=timestamp.version)
    out = {
        "targets": summary["targets"],
        "not_delegated": not_delegated,
        "roles": summary["roles"],
        "bins": {k: v for k, v in bin_targets.items() if v},
        "versions": versions,
    }
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
