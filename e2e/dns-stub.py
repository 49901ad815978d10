#!/usr/bin/env python3
"""A minimal authoritative DNS server over UDP for the e2e tests, stdlib only.

Usage:
    dns-stub.py --listen 127.0.0.1:53 NAME=IPV4 [NAME=IPV4 ...]

Answers A queries for the NAMEs given (case-insensitive) with their address,
other query types for those names with no records (NOERROR), and every other
name with NXDOMAIN. Logs one line per query on stderr, so a test can check the
resolver really asked it. Runs until killed.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys


def parse_question(msg: bytes) -> tuple[str, int, int]:
    """(name, qtype, offset just past the question) of the first question."""
    labels, i = [], 12
    while True:
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(msg[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, _qclass = struct.unpack("!HH", msg[i : i + 4])
    return ".".join(labels).lower(), qtype, i + 4


def answer(msg: bytes, names: dict[str, bytes]) -> tuple[bytes, str]:
    ident, flags = struct.unpack("!HH", msg[:4])
    name, qtype, end = parse_question(msg)
    question = msg[12:end]
    known = name in names
    rcode = 0 if known else 3  # NXDOMAIN
    records = b""
    count = 0
    if known and qtype == 1:  # A
        # Name: a pointer to the question's name (offset 12); TTL 5 s.
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + names[name]
        count = 1
    # QR, opcode copied, AA, RD copied, RA; rcode.
    rflags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    header = struct.pack("!HHHHHH", ident, rflags, 1, count, 0, 0)
    return header + question + records, f"{name} type {qtype} -> {'%d record(s)' % count if known else 'NXDOMAIN'}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:53", metavar="ADDR:PORT")
    p.add_argument("names", nargs="+", metavar="NAME=IPV4")
    a = p.parse_args()
    names = {}
    for item in a.names:
        name, _, ip = item.partition("=")
        names[name.lower().rstrip(".")] = socket.inet_aton(ip)
    host, _, port = a.listen.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    print(f"dns-stub: listening on {a.listen}", file=sys.stderr, flush=True)
    while True:
        msg, peer = sock.recvfrom(4096)
        try:
            reply, what = answer(msg, names)
        except (ValueError, IndexError, struct.error) as e:
            print(f"dns-stub: bad query from {peer}: {e}", file=sys.stderr, flush=True)
            continue
        sock.sendto(reply, peer)
        print(f"dns-stub: {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
