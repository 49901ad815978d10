#!/usr/bin/env bash
# python-tuf reads what warrant writes: every exported file loads and verifies with
# python-tuf's Metadata API, and python-tuf's ngclient Updater refreshes from the
# export (served on loopback) and trusts the signed target — for ed25519 and for
# ECDSA P-256 keys.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
warrant=${WARRANT:-}
if [[ -z $warrant ]]; then   # cargo's output: $CARGO_TARGET_DIR (relative: to the repo) or target
  warrant=${CARGO_TARGET_DIR:-target}/release/warrant
  [[ $warrant == /* ]] || warrant=$repo/$warrant
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/warrant-interop.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for keytype in ed25519 ecdsa; do
  echo "== $keytype"
  home=$tmp/$keytype-home layout=$tmp/$keytype-layout export=$tmp/$keytype-export
  digest=$(python3 "$repo/e2e/make-image.py" "$layout" v1 --content "interop $keytype")
  python3 "$repo/e2e/make-image.py" "$layout" v2 --content "interop $keytype v2" >/dev/null
  export WARRANT_HOME=$home WARRANT_PASSPHRASE=interop
  "$warrant" init "oci:$layout" --key-type "$keytype" >/dev/null
  "$warrant" sign "oci:$layout:v1" >/dev/null
  "$warrant" sign "oci:$layout:v2" >/dev/null
  "$warrant" export "oci:$layout" "$export" >/dev/null
  size=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]+"/index.json")); print([m["size"] for m in d["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")=="v1"][0])' "$layout")
  python3 "$repo/e2e/interop_export.py" "$export"
  python3 "$repo/e2e/interop_updater.py" "$export" v1 "$digest" --length "$size"
  # And python-tuf refuses a target we did not sign.
  if python3 "$repo/e2e/interop_updater.py" "$export" v1 "sha256:$(printf '0%.0s' {1..64})" >/dev/null 2>&1; then
    echo "python-tuf accepted a wrong digest" >&2
    exit 1
  fi
  echo "ok   python-tuf refuses a digest warrant did not sign"
done
echo "interop: python-tuf verifies warrant's repositories (ed25519, ecdsa)"
