#!/usr/bin/env bash
# `make fuzz`: build the fuzz targets, then run each for FUZZ_SECONDS (default 60)
# on its corpus (seeded by seeds.py when missing) and print executions and crashes.
# Exits non-zero when any target found a crash. Stable Rust with RUSTC_BOOTSTRAP=1
# (cargo-fuzz needs -Zsanitizer); a nightly toolchain works the same without it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs=${FUZZ_SECONDS:-60}
toolchain=${FUZZ_TOOLCHAIN:-+stable}
export RUSTC_BOOTSTRAP=1
if ! cargo $toolchain fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
  exit 2
fi
[[ -d corpus ]] || python3 seeds.py || exit 2
started=$(date +%s)
cargo $toolchain fuzz build || exit 2
echo "fuzz: build took $(( $(date +%s) - started ))s"
failed=0
for t in $(cargo $toolchain fuzz list); do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  log=$(mktemp)
  cargo $toolchain fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  found=$(( $(ls "artifacts/$t" | wc -l) - before ))
  printf 'fuzz: %-18s %10s executions in %ss, corpus %s, crashes %s\n' \
    "$t" "${runs:-?}" "$secs" "$(ls "corpus/$t" | wc -l)" "$found"
  if (( rc != 0 || found > 0 )); then
    failed=1
    tail -n 40 "$log"
  fi
  rm -f "$log"
done
exit $failed
