#!/usr/bin/env bash
# Benchmarks: print figures, assert nothing.
#   in-process verify/sign on an OCI layout (cargo bench), then the CLI against a
#   local distribution registry (requests, bytes, wall time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo bench --bench verify
cargo bench --bench client --features test-support
cargo bench --bench admission_load
cargo build --release
python3 benches/registry_bench.py "$@"
bash benches/scale.sh
