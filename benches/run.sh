#!/usr/bin/env bash
# Benchmarks: prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo bench --bench verify
