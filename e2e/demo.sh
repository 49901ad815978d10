#!/usr/bin/env bash
# warrant demo: sign an image in an OCI image layout, verify it with a pinned
# root, then show that three attacks on the layout are rejected.
#
# Run by `make demo` (after `cargo build --release`) and by e2e/run-all.sh.
# Needs: bash, python3 (stdlib only), the warrant binary. No network.
#
#   WARRANT=path/to/warrant   binary to use (default: $CARGO_TARGET_DIR/release/warrant,
#                             $CARGO_TARGET_DIR defaulting to target)
#   WARRANT_DEMO_KEEP=1       keep the temp dir for inspection
#
# Exit status: 0 when every step behaved as expected, non-zero otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

# Resolve the binary to an absolute path (we never cd, but stay safe): a bare
# name is looked up in PATH, a relative path is tried from the current dir
# and then from the repository root.
WARRANT=${WARRANT:-${CARGO_TARGET_DIR:-target}/release/warrant}
case $WARRANT in
  /*) ;;
  */*) if [[ -e $WARRANT ]]; then WARRANT=$(cd "$(dirname "$WARRANT")" && pwd)/$(basename "$WARRANT")
       else WARRANT=$repo/$WARRANT; fi ;;
  *) WARRANT=$(command -v "$WARRANT" || echo "$WARRANT") ;;
esac
if [[ ! -x $WARRANT ]]; then
  echo "demo: warrant binary not found at $WARRANT (run 'cargo build --release' or set WARRANT)" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warrant-demo.XXXXXX")
cleanup() {
  if [[ ${WARRANT_DEMO_KEEP:-} == 1 ]]; then echo "demo: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'echo "demo: FAILED (line $LINENO: $BASH_COMMAND)" >&2' ERR

# The signer's keys live in their own home. The passphrase protecting them
# is a fixed string here; a real CI job takes it from a secret store
# (e.g. a masked CI secret exported as WARRANT_PASSPHRASE), never from the repo.
export WARRANT_HOME=$tmp/signer-home
export WARRANT_PASSPHRASE=demo-passphrase

layout=$tmp/layout
pristine=$tmp/layout.pristine

# ---------------------------------------------------------------- helpers

step() { printf '\n==> %s\n' "$*"; }

# Show a command the way a reader would type it: "warrant" for the binary,
# $tmp for the temp dir.
show() {
  local s="$*"
  s=${s//"$WARRANT"/warrant}
  printf '$ %s\n' "${s//"$tmp"/\$tmp}"
}

# run CMD...: show it, run it with no stdin (nothing may prompt), and let
# set -e stop the demo if it fails.
run() { show "$@"; "$@" </dev/null; }

# expect_exit CODE CMD...: run CMD, print its output (indented), and fail the
# demo unless it exits with CODE.
expect_exit() {
  local want=$1; shift
  local out rc=0
  show "$@"
  out=$("$@" </dev/null 2>&1) || rc=$?
  if [[ -n $out ]]; then printf '%s\n' "$out" | sed 's/^/    /'; fi
  if [[ $rc -ne $want ]]; then
    echo "demo: FAIL: expected exit $want, got $rc from: $*" >&2
    exit 1
  fi
  echo "    -> exit $rc, as expected"
}

# expect_verify CODE HOME REF: `warrant verify` as a separate verifier, who
# has their own WARRANT_HOME (a new dir = cold cache), no passphrase, and pins
# trust with the exported root.json; fail the demo unless it exits with CODE.
expect_verify() {
  expect_exit "$1" env -u WARRANT_PASSPHRASE WARRANT_HOME="$2" \
    "$WARRANT" verify "$3" --root "$tmp/root.json"
}

# Put the layout back the way it was before a tamper.
restore() { rm -rf "$layout"; cp -a "$pristine" "$layout"; }

tamper() { python3 "$here/tamper.py" "$@"; }

# ---------------------------------------------------------------- setup

step "make an OCI image layout with two images: v1 (good) and evil"
digest_v1=$(python3 "$here/make-image.py" "$layout" v1 --content "hello v1")
digest_evil=$(python3 "$here/make-image.py" "$layout" evil --content "evil")
echo "v1   -> $digest_v1"
echo "evil -> $digest_evil"

step "warrant init: generate root, targets and publisher keys; publish the TUF repository"
run "$WARRANT" init "oci:$layout"

step "warrant sign: add v1 ($digest_v1) as a TUF target"
run "$WARRANT" sign "oci:$layout:v1"

step "warrant export: write the TUF metadata files; 1.root.json is what verifiers pin"
run "$WARRANT" export "oci:$layout" "$tmp/export"
ls "$tmp/export"
cp "$tmp/export/1.root.json" "$tmp/root.json"
echo "pinned root: sha256 $(sha256sum "$tmp/root.json" | cut -d' ' -f1)"

step "verify v1 as a separate verifier (own home, pinned root): trusted"
expect_verify 0 "$tmp/verifier-home" "oci:$layout:v1"

# Every tamper starts from this exact state and is undone afterwards.
cp -a "$layout" "$pristine"

# ---------------------------------------------------------------- tamper 1

step "tamper 1: the registry serves the evil manifest under the signed tag v1"
run tamper retag "$layout" v1 evil
echo "-- verifier with a warm cache:"
expect_verify 1 "$tmp/verifier-home" "oci:$layout:v1"
echo "-- fresh verifier:"
expect_verify 1 "$tmp/verifier-t1" "oci:$layout:v1"
restore

# ---------------------------------------------------------------- tamper 2

step "tamper 2: one byte of the targets metadata blob is changed"
run tamper flip-byte "$layout" targets
expect_verify 1 "$tmp/verifier-t2" "oci:$layout:v1"
restore

# ---------------------------------------------------------------- tamper 3

step "tamper 3: v1 retagged to evil AND targets metadata forged to match, OCI digests fixed up"
# The attacker points v1 at the evil image and rewrites the signed target so
# its hash matches evil; every OCI digest/size is recomputed, so the layout is
# self-consistent. Only the TUF signatures (and snapshot) stand in the way.
run tamper retag "$layout" v1 evil
run tamper forge-target "$layout" targets v1 "$digest_evil"
expect_verify 1 "$tmp/verifier-t3" "oci:$layout:v1"
restore

# ---------------------------------------------------------------- sanity

step "restored layout: v1 verifies again (the rejections were caused by the tampering)"
expect_verify 0 "$tmp/verifier-final" "oci:$layout:v1"

echo
echo "demo: sign → verify OK; 3 tampers rejected"
