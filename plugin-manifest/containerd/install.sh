#!/usr/bin/env bash
# Install warrant as containerd's image verifier (containerd 2.1+; 2.0 for
# transfer-service pulls such as `ctr image pull` only). Run as root.
#
#   install.sh [--binary PATH] [--bin-dir DIR] [--allow-no-policy]
#
#   --binary PATH      the warrant binary to install (default: `warrant` in PATH)
#   --bin-dir DIR      containerd's verifier bin_dir (default /opt/containerd/image-verifier/bin)
#   --allow-no-policy  install even without /etc/warrant/policy.toml (every pull
#                      is then blocked until the policy exists)
#   DESTDIR=/stage     install under a staging root (packaging, tests)
#
# What it does, idempotently:
#   /usr/local/bin/warrant                          the binary (0755)
#   /etc/warrant/policy.toml.example                a policy to start from
#   /var/lib/warrant/                               the shared trust cache (0700)
#   $BIN_DIR/warrant -> /usr/local/bin/warrant      the verifier (linked last, atomically)
# and checks that the installed verifier answers containerd's calling convention.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binary=$(command -v warrant || true)
bin_dir=/opt/containerd/image-verifier/bin
allow_no_policy=0
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
    --allow-no-policy) allow_no_policy=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
dest=${DESTDIR:-}
die() { echo "install.sh: $*" >&2; exit 1; }

[[ -n $binary && -x $binary ]] \
  || die "no warrant binary: pass --binary PATH (build one with 'cargo build --release')"
"$binary" --version >/dev/null || die "$binary does not run"

prefix_bin=/usr/local/bin/warrant
install -d -m 0755 "$dest/usr/local/bin" "$dest/etc/warrant" "$dest$bin_dir"
install -d -m 0700 "$dest/var/lib/warrant"
if [[ $(readlink -f "$binary") != $(readlink -f "$dest$prefix_bin" 2>/dev/null || true) ]]; then
  install -m 0755 "$binary" "$dest$prefix_bin.new"
  mv -f "$dest$prefix_bin.new" "$dest$prefix_bin"
fi
install -m 0644 "$here/policy.toml.example" "$dest/etc/warrant/policy.toml.example"

# The verifier must answer in containerd's convention before containerd sees it:
# a descriptor that is not one is blocked with a reason on one line.
answer=$(printf '{}\n' | WARRANT_POLICY=/nonexistent WARRANT_HOME="$dest/var/lib/warrant" \
  "$dest$prefix_bin" -name smoke.invalid/check:1 \
  -digest sha256:0000000000000000000000000000000000000000000000000000000000000000 \
  -stdin-media-type application/vnd.oci.descriptor.v1+json) && rc=0 || rc=$?
[[ $rc == 1 && $answer == "blocked: "* ]] \
  || die "the installed warrant does not act as a containerd verifier (exit $rc: $answer)"

if [[ ! -f $dest/etc/warrant/policy.toml && $allow_no_policy != 1 ]]; then
  die "write /etc/warrant/policy.toml first (start from /etc/warrant/policy.toml.example):
  once the verifier is linked, every pull without a matching policy entry is blocked.
  Re-run this script afterwards, or pass --allow-no-policy to link it now."
fi

# Linked last and renamed into place, so containerd never runs half an install.
ln -sfn "$prefix_bin" "$dest$bin_dir/.warrant.new"
mv -fT "$dest$bin_dir/.warrant.new" "$dest$bin_dir/warrant"
echo "installed: $bin_dir/warrant -> $prefix_bin (policy /etc/warrant/policy.toml, cache /var/lib/warrant)"

if command -v containerd >/dev/null 2>&1 && [[ -z $dest ]]; then
  version=$(containerd --version | grep -oE 'v?[0-9]+\.[0-9]+' | head -n1 | tr -d v)
  major=${version%%.*} minor=${version#*.}
  if ((major < 2)); then
    echo "warning: containerd $version has no image verifiers; upgrade to 2.1 or later" >&2
  elif ((major == 2 && minor < 1)); then
    echo "warning: containerd $version runs verifiers only for transfer-service pulls (ctr); Kubernetes (CRI) pulls need 2.1 or later" >&2
  fi
fi
echo "containerd runs the verifier on its next pull; no restart needed unless you change config.toml."
