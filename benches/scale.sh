#!/usr/bin/env bash
# Scale benchmark (issue #13): repositories of 100 / 10,000 / 100,000 signed tags,
# flat and in 512 hash bins, on a local distribution registry; sign one more tag,
# verify cold and warm, python-tuf and Notary v1 (notary lookup) on the same
# repositories / tag counts. Prints figures,
# asserts nothing.
#   benches/scale.sh [--sizes 100,10000,100000] [--runs 5]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bin warrant --bin warrant-conformance --example scale_build
python3 benches/scale.py --notary "$@"
# The same client over plain TUF-over-HTTP repositories built by python-tuf.
python3 benches/scale_tuf.py --sizes "${SCALE_TUF_SIZES:-100,10000,100000}"
