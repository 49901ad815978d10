#!/usr/bin/env python3
"""Check a `warrant export` directory with python-tuf, independently of warrant.

Usage:
    interop_export.py EXPORT_DIR [--allow-expired]

EXPORT_DIR holds the TUF metadata files as `warrant export` writes them
(consistent-snapshot names): 1.root.json, 2.root.json, ..., timestamp.json,
N.snapshot.json, N.targets.json and N.<delegated role>.json.

Every file is parsed by python-tuf (`Metadata.from_bytes`), which proves the
bytes are spec-compatible, then checked:

  * root chain: versions 1..N are all present; each root N is signed by a
    threshold of root N-1's root keys AND of its own root keys;
  * timestamp, snapshot, targets: signed by a threshold of the latest root's
    keys for that role;
  * delegated roles (including succinct hash bins): signed by a threshold of
    their delegator's keys for them;
  * timestamp's snapshot meta names the snapshot file present (version, and
    length/hashes when given); snapshot's meta versions (and length/hashes
    when given) match the role files present; every delegated role file is
    listed in the snapshot and reachable from targets (a listed role nothing
    delegates to any more is noted, not failed: a removed role keeps its entry);
  * nothing is expired (unless --allow-expired).

Prints a summary and exits 0 when every check passed, 1 on any failure,
2 on usage errors. Requires python-tuf (`pip install tuf`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from urllib.parse import quote, unquote

try:
    from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
except ImportError:  # pragma: no cover - environment problem, not a check failure
    print("interop_export: python-tuf is not installed (pip install tuf)", file=sys.stderr)
    sys.exit(2)

ROOT_RE = re.compile(r"^(\d+)\.root\.json$")
VERSIONED_RE = re.compile(r"^(\d+)\.(.+)\.json$")


class Checker:
    """Accumulates failures so one run reports every problem, not just the first."""

    def __init__(self, export_dir: str, allow_expired: bool) -> None:
        self.dir = export_dir
        self.allow_expired = allow_expired
        self.failures: list[str] = []
        self.root_name = "root"  # file name of the latest root, once known
        self.lines: list[str] = []

    # ------------------------------------------------------------ utilities

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        print(f"FAIL {msg}")

    def ok(self, msg: str) -> None:
        print(f"ok   {msg}")

    def read(self, name: str) -> bytes:
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def load(self, name: str, expected_type: type) -> Metadata | None:
        """Parse a file with python-tuf and check the role type."""
        try:
            md = Metadata.from_bytes(self.read(name))
        except Exception as e:  # python-tuf raises several exception types
            self.fail(f"{name}: python-tuf cannot load it: {type(e).__name__}: {e}")
            return None
        if not isinstance(md.signed, expected_type):
            self.fail(f"{name}: is a {md.signed.type!r}, expected {expected_type.type!r}")
            return None
        return md

    def verify(self, delegator: Metadata, delegator_name: str, role: str, md: Metadata, name: str) -> bool:
        """delegator.verify_delegate(role, md), recording the outcome."""
        try:
            delegator.verify_delegate(role, md)
        except Exception as e:
            self.fail(f"{name}: {role} threshold not met (keys from {delegator_name}): {type(e).__name__}: {e}")
            return False
        self.ok(f"{name}: {role} threshold met (keys from {delegator_name})")
        return True

    def check_expiry(self, md: Metadata, name: str) -> None:
        if md.signed.is_expired():
            msg = f"{name}: expired at {md.signed.expires.isoformat()}"
            if self.allow_expired:
                print(f"warn {msg} (allowed)")
            else:
                self.fail(msg)

    def check_metafile(self, meta, data: bytes, what: str) -> None:
        """Check length/hashes of a MetaFile against the bytes, when present."""
        if meta.length is None and not meta.hashes:
            return
        try:
            meta.verify_length_and_hashes(data)
        except Exception as e:
            self.fail(f"{what}: length/hashes do not match the file: {e}")
        else:
            self.ok(f"{what}: length/hashes match")

    # ------------------------------------------------------------ the checks

    def run(self) -> int:
        try:
            names = sorted(os.listdir(self.dir))
        except OSError as e:
            print(f"interop_export: cannot read {self.dir}: {e}", file=sys.stderr)
            return 2
        root = self.check_roots(names)
        if root is None:
            return self.finish()

        timestamp = snapshot = None
        if "timestamp.json" not in names:
            self.fail("timestamp.json: missing")
        else:
            timestamp = self.load("timestamp.json", Timestamp)
        if timestamp is not None:
            self.verify(root, self.root_name, Timestamp.type, timestamp, "timestamp.json")
            self.check_expiry(timestamp, "timestamp.json")
            snapshot = self.check_snapshot(names, root, timestamp)
        if snapshot is not None:
            self.check_targets(names, root, snapshot)
        return self.finish()

    def check_roots(self, names: list[str]) -> Metadata | None:
        """Verify the root chain 1..N; return the latest root (or None)."""
        versions = sorted(int(m.group(1)) for n in names if (m := ROOT_RE.match(n)))
        if not versions:
            self.fail("no N.root.json files")
            return None
        if versions != list(range(1, versions[-1] + 1)):
            self.fail(f"root versions are not contiguous from 1: {versions}")
            return None
        prev: Metadata | None = None
        for v in versions:
            name = f"{v}.root.json"
            md = self.load(name, Root)
            if md is None:
                return None
            if md.signed.version != v:
                self.fail(f"{name}: contains version {md.signed.version}")
                return None
            if prev is not None:
                # Rotation: the new root must satisfy the old root's threshold...
                if not self.verify(prev, f"{v - 1}.root.json", Root.type, md, name):
                    return None
            # ...and its own (also how version 1 is self-checked).
            if not self.verify(md, name, Root.type, md, name):
                return None
            prev = md
        assert prev is not None
        if not prev.signed.consistent_snapshot:
            self.fail(f"{versions[-1]}.root.json: consistent_snapshot is false (warrant always sets it)")
        self.root_name = f"{versions[-1]}.root.json"
        self.check_expiry(prev, self.root_name)
        self.lines.append(f"root: versions 1..{versions[-1]}, consistent_snapshot={prev.signed.consistent_snapshot}")
        return prev

    def check_snapshot(self, names: list[str], root: Metadata, timestamp: Metadata) -> Metadata | None:
        meta = timestamp.signed.snapshot_meta
        name = f"{meta.version}.snapshot.json"
        self.lines.append(f"timestamp: version {timestamp.signed.version} -> snapshot {meta.version}")
        if name not in names:
            others = [n for n in names if n.endswith(".snapshot.json")]
            self.fail(f"timestamp.json names snapshot version {meta.version}, but {name} is missing (present: {others})")
            return None
        self.ok(f"timestamp.json: snapshot meta version {meta.version} matches {name}")
        self.check_metafile(meta, self.read(name), f"timestamp.json snapshot meta for {name}")
        snapshot = self.load(name, Snapshot)
        if snapshot is None:
            return None
        if snapshot.signed.version != meta.version:
            self.fail(f"{name}: contains version {snapshot.signed.version}")
        self.verify(root, self.root_name, Snapshot.type, snapshot, name)
        self.check_expiry(snapshot, name)
        if "targets.json" not in snapshot.signed.meta:
            self.fail(f"{name}: has no meta entry for targets.json")
        self.lines.append(f"snapshot: version {snapshot.signed.version}, {len(snapshot.signed.meta)} role(s)")
        return snapshot

    def role_file(self, snapshot: Metadata, role: str) -> tuple[str, bytes] | None:
        """Find the file of ROLE at the version the snapshot names, check it."""
        meta = snapshot.signed.meta.get(f"{role}.json")
        if meta is None:
            return None
        # python-tuf's Updater URL-quotes role names (a delegated role may
        # contain "/"); accept the plain name too.
        for candidate in (f"{meta.version}.{role}.json", f"{meta.version}.{quote(role, '')}.json"):
            if os.path.exists(os.path.join(self.dir, candidate)):
                data = self.read(candidate)
                self.check_metafile(meta, data, f"snapshot meta for {candidate}")
                return candidate, data
        self.fail(f"snapshot names {role} version {meta.version}, but {meta.version}.{role}.json is missing")
        return None

    def check_targets(self, names: list[str], root: Metadata, snapshot: Metadata) -> None:
        found = self.role_file(snapshot, Targets.type)
        if found is None:
            return
        name, _ = found
        targets = self.load(name, Targets)
        if targets is None:
            return
        if targets.signed.version != snapshot.signed.meta["targets.json"].version:
            self.fail(f"{name}: contains version {targets.signed.version}, snapshot says {snapshot.signed.meta['targets.json'].version}")
        self.verify(root, self.root_name, Targets.type, targets, name)
        self.check_expiry(targets, name)

        # Walk the delegation graph breadth-first from top-level targets.
        seen = {Targets.type}
        total_targets = len(targets.signed.targets)
        self.lines.append(f"targets: version {targets.signed.version}, {total_targets} target(s): {', '.join(sorted(targets.signed.targets)) or '-'}")
        queue: list[tuple[str, Metadata]] = [(Targets.type, targets)]
        while queue:
            delegator_name, delegator = queue.pop(0)
            delegations = delegator.signed.delegations
            if delegations is None:
                continue
            if delegations.roles is not None:
                children = list(delegations.roles)
            elif delegations.succinct_roles is not None:
                children = list(delegations.succinct_roles.get_roles())
            else:
                children = []
            for child in children:
                if child in seen:
                    continue
                seen.add(child)
                found = self.role_file(snapshot, child)
                if found is None:
                    # Allowed by the spec (a client then finds no targets in
                    # it), but worth knowing.
                    print(f"note {child}: delegated by {delegator_name} but not in the snapshot")
                    continue
                child_name, _ = found
                md = self.load(child_name, Targets)
                if md is None:
                    continue
                if md.signed.version != snapshot.signed.meta[f"{child}.json"].version:
                    self.fail(f"{child_name}: contains version {md.signed.version}")
                if self.verify(delegator, delegator_name, child, md, child_name):
                    self.check_expiry(md, child_name)
                    total_targets += len(md.signed.targets)
                    self.lines.append(f"{child}: version {md.signed.version}, {len(md.signed.targets)} target(s), delegated by {delegator_name}")
                    queue.append((child, md))

        # A role the snapshot lists but nothing delegates to is a removed one:
        # warrant keeps its snapshot entry on purpose (spec 5.5.5: a new snapshot
        # must not drop a role a verifier's trusted snapshot lists), and no search
        # reaches it. Noted, not failed.
        for meta_name in snapshot.signed.meta:
            role = meta_name[: -len(".json")]
            if role not in seen:
                self.lines.append(f"snapshot lists {meta_name}, no longer delegated (a removed role)")
        # Every versioned role file in the export should be the one listed.
        for n in names:
            m = VERSIONED_RE.match(n)
            if not m or m.group(2) in (Root.type, Snapshot.type):
                continue
            role = unquote(m.group(2))
            listed = snapshot.signed.meta.get(f"{role}.json")
            if listed is None:
                self.fail(f"{n}: not listed in the snapshot")
            elif listed.version != int(m.group(1)):
                self.fail(f"{n}: snapshot lists {role} version {listed.version}, not {m.group(1)}")
        self.lines.append(f"total: {total_targets} target(s) in {len(seen)} role(s)")

    def finish(self) -> int:
        print()
        print(f"summary for {self.dir}:")
        for line in self.lines:
            print(f"  {line}")
        if self.failures:
            print(f"interop_export: {len(self.failures)} check(s) FAILED")
            return 1
        print("interop_export: python-tuf accepts every file: OK")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a `warrant export` directory with python-tuf.")
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    parser.add_argument("--allow-expired", action="store_true", help="report expired metadata as a warning, not a failure")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.export_dir):
        parser.error(f"{args.export_dir}: not a directory")
    return Checker(args.export_dir, args.allow_expired).run()


if __name__ == "__main__":
    sys.exit(main())
