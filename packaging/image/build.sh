#!/usr/bin/env bash
# Build and sign warrant's own container image (`make image`):
#
#   1. assemble.py writes the image (static binary, CA bundle, non-root user) into
#      the OCI layout LAYOUT as TAG;
#   2. the binary itself signs it there: `warrant init oci:LAYOUT` the first time
#      (keys under $WARRANT_HOME, default ~/.warrant), then `warrant sign
#      oci:LAYOUT:TAG`; `warrant export` writes the root verifiers pin to
#      LAYOUT/../root/1.root.json;
#   3. with --pin FILE, writes the digest into the kustomization's `images:` entry.
#
# Prints the manifest digest (sha256:...) on its last line, and writes it to
# LAYOUT/../digest.
#
#   build.sh --binary PATH --layout DIR --tag TAG [--pin KUSTOMIZATION]
#
# The key passphrase comes from WARRANT_PASSPHRASE (or a prompt on a terminal).
# WARRANT_IMAGE_INIT_ARGS: options for that first `warrant init`, e.g. "--root-key ID
# --targets-key ID --publisher-key ID" to reuse keys (verifiers pinning the root key
# ids then keep working after a fresh layout).
# Publish both tags, then deploy by digest:
#   skopeo copy oci:LAYOUT:TAG docker://REGISTRY/warrant/warrant:TAG
#   skopeo copy oci:LAYOUT:warrant.tuf docker://REGISTRY/warrant/warrant:warrant.tuf
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binary="" layout="" tag="" pin=""
while (($#)); do
  case $1 in
    --binary) binary=${2:?}; shift 2 ;;
    --layout) layout=${2:?}; shift 2 ;;
    --tag) tag=${2:?}; shift 2 ;;
    --pin) pin=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "image/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "image/build.sh: $*" >&2; exit 2; }
[[ -n $binary && -n $layout && -n $tag ]] || die "--binary, --layout and --tag are required"
[[ -x $binary ]] || die "no binary at $binary: run 'make static' first"
out=$(dirname "$layout")
mkdir -p "$out"

# Symbols are a third of the binary and nothing in the image reads them.
if command -v strip >/dev/null; then
  strip -o "$out/warrant" "$binary"
else
  cp "$binary" "$out/warrant"
fi
binary=$out/warrant
digest=$(python3 "$here/assemble.py" --binary "$binary" --layout "$layout" --tag "$tag")
echo "assembled oci:$layout:$tag = $digest" >&2

has_trust() { # the layout's index names a warrant.tuf artifact (signed before)
  python3 -c 'import json, sys
index = json.load(open(sys.argv[1]))
names = [(m.get("annotations") or {}).get("org.opencontainers.image.ref.name") for m in index.get("manifests") or []]
sys.exit(0 if "warrant.tuf" in names else 1)' "$layout/index.json"
}
if ! has_trust; then
  # shellcheck disable=SC2086 # word splitting intended: options
  "$binary" init "oci:$layout" ${WARRANT_IMAGE_INIT_ARGS:-} >&2
fi
"$binary" sign "oci:$layout:$tag@$digest" >&2
rm -rf "$out/root"
"$binary" export "oci:$layout" "$out/root" >&2
printf '%s\n' "$digest" >"$out/digest"

if [[ -n $pin ]]; then
  grep -Eq '^    digest: sha256:[0-9a-f]{64}$' "$pin" || die "$pin has no 'digest: sha256:...' line under images:"
  sed -i -E "s/^(    digest: )sha256:[0-9a-f]{64}\$/\\1$digest/" "$pin"
  echo "pinned $pin to $digest" >&2
fi
echo "$digest"
