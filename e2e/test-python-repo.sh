#!/usr/bin/env bash
# warrant's generic TUF client reads a repository that python-tuf wrote.
#
# e2e/make_python_repo.py builds, with python-tuf's Metadata API only, a static
# repository with consistent snapshots, a root chain 1 -> 3 (root key rotated,
# then the timestamp/snapshot key rotated), and a delegation tree with a 2-of-2
# role, a terminating role, succinct hash bins under a delegated role, a nested
# delegation and path patterns that must NOT match. It is served on loopback
# with `python3 -m http.server`, then warrant-conformance:
#
#   * init with 1.root.json, refresh (must reach root version 3);
#   * downloads every expected target, all in one call and one per call, and
#     each file's sha256 must be the one the repository's author intended
#     (e.g. releases/v1.0.txt is qa's version, not prod's);
#   * refuses every name that is listed somewhere but not delegated along the
#     search path (and undelegated/x, listed nowhere), writing no file;
#   * refuses an artifact whose hash bin was changed on disk by one byte (fresh
#     client), while an artifact in an untouched bin still downloads; refuses a
#     target file whose bytes were changed.
#
# python-tuf's own ngclient.Updater is run against the same served repository
# and must agree target by target (which proves the fixture itself is valid).
#
# Needs: bash, python3 with python-tuf and securesystemslib[crypto], curl.
#
#   WARRANT_CONFORMANCE=path   client binary (default: ${CARGO_TARGET_DIR:-target}/release/warrant-conformance)
#   WARRANT_E2E_KEEP=1         keep the temp dir for inspection
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

WC=${WARRANT_CONFORMANCE:-${CARGO_TARGET_DIR:-target}/release/warrant-conformance}
case $WC in
  /*) ;;
  */*) if [[ -e $WC ]]; then WC=$(cd "$(dirname "$WC")" && pwd)/$(basename "$WC")
       else WC=$repo/$WC; fi ;;
  *) WC=$(command -v "$WC" || echo "$WC") ;;
esac
if [[ ! -x $WC ]]; then
  echo "test-python-repo: client binary not found at $WC (cargo build --release, or set WARRANT_CONFORMANCE)" >&2
  exit 2
fi
python3 -c 'import tuf.ngclient, securesystemslib.signer' 2>/dev/null || {
  echo "test-python-repo: python-tuf / securesystemslib[crypto] not installed" >&2
  exit 2
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warrant-pyrepo.XXXXXX")
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n ${WARRANT_E2E_KEEP:-} ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

# ------------------------------------------------------------------ the repository
srv=$tmp/repo
summary=$tmp/summary.json
python3 "$here/make_python_repo.py" "$srv" >"$summary"
mapfile -t targets < <(python3 -c 'import json,sys; print("\n".join(sorted(json.load(open(sys.argv[1]))["targets"])))' "$summary")
mapfile -t refused < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["not_delegated"]))' "$summary")
((${#targets[@]} > 20)) || fail "summary lists only ${#targets[@]} targets"
echo "repository: ${#targets[@]} targets, ${#refused[@]} names that must be refused, metadata: $(find "$srv/metadata" -type f | wc -l) files"

# ------------------------------------------------------------------ serve it
# Port 0: the server binds a free port and prints it ("... port N ..."); -u so
# the line is not stuck in a buffer.
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$srv" >"$tmp/http.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.* port \([0-9][0-9]*\) .*/\1/p' "$tmp/http.log" | head -n1)
  if [[ -n $port ]] && curl -fsS -o /dev/null "http://127.0.0.1:$port/metadata/timestamp.json" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/http.log" >&2; fail "http.server exited"; }
  port=
  sleep 0.1
done
[[ -n $port ]] || { cat "$tmp/http.log" >&2; fail "http.server did not answer"; }
base=http://127.0.0.1:$port
echo "serving $srv at $base"

# ------------------------------------------------------------------ helpers
# client DIR: a fresh client trusting 1.root.json.
client() {
  rm -rf "$1"
  mkdir -p "$1"
  "$WC" --metadata-dir "$1" init "$srv/metadata/1.root.json" >/dev/null
}
refresh() { "$WC" --metadata-dir "$1" --metadata-url "$base/metadata" refresh; }
# download CLIENT_DIR TARGET_DIR NAME...
download() {
  local dir=$1 td=$2 args=() n
  shift 2
  mkdir -p "$td"
  for n in "$@"; do args+=(--target-name "$n"); done
  "$WC" --metadata-dir "$dir" --metadata-url "$base/metadata" "${args[@]}" \
    --target-base-url "$base/targets" --target-dir "$td" download
}
# check TARGET_DIR NAME...: each downloaded file (quote(name, safe="")) has the sha256 of the summary.
check() {
  python3 - "$summary" "$@" <<'PY'
import hashlib, json, os, sys
from urllib.parse import quote
summary = json.load(open(sys.argv[1]))["targets"]
td, names = sys.argv[2], sys.argv[3:]
bad = 0
for name in names:
    path = os.path.join(td, quote(name, safe=""))
    if not os.path.isfile(path):
        print(f"  {name}: not downloaded ({path} missing)"); bad += 1; continue
    got = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if got != summary[name]:
        print(f"  {name}: sha256 {got}, expected {summary[name]}"); bad += 1
sys.exit(1 if bad else 0)
PY
}
# must_refuse CLIENT_DIR TARGET_DIR NAME: download exits 1 and writes nothing.
must_refuse() {
  local rc=0
  download "$1" "$2" "$3" >"$tmp/refuse.log" 2>&1 || rc=$?
  if [[ $rc -ne 1 ]]; then cat "$tmp/refuse.log" >&2; fail "download of '$3' exited $rc, expected 1"; fi
  if [[ -n $(ls -A "$2") ]]; then fail "refused download of '$3' still wrote: $(ls -A "$2")"; fi
  rm -rf "$2"
  refuse_reason=$(grep -v '^[[:space:]]*$' "$tmp/refuse.log" | tail -n1 || true)
}

# ------------------------------------------------------------------ python-tuf's Updater
# pytuf NAME...: python-tuf (ngclient.Updater, fresh metadata dir, bootstrapped
# with 1.root.json) must download exactly the summary's bytes for each NAME.
# pytuf --refuse NAME...: python-tuf must not trust/download any NAME.
pytuf() {
  python3 - "$base" "$srv/metadata/1.root.json" "$summary" "$@" <<'PY'
import hashlib, json, sys, tempfile
from tuf.ngclient import Updater
base, root_path, summary_path, *names = sys.argv[1:]
refuse = names[:1] == ["--refuse"]
names = names[1:] if refuse else names
expected = json.load(open(summary_path))["targets"]
bad = 0
with tempfile.TemporaryDirectory() as md, tempfile.TemporaryDirectory() as td:
    up = Updater(metadata_dir=md, metadata_base_url=f"{base}/metadata/", target_dir=td,
                 target_base_url=f"{base}/targets/", bootstrap=open(root_path, "rb").read())
    up.refresh()
    root_version = json.load(open(f"{md}/root.json"))["signed"]["version"]
    if root_version != 3:
        print(f"  python-tuf: trusted root is version {root_version}, expected 3"); bad += 1
    for name in names:
        try:
            info = up.get_targetinfo(name)
            path = up.download_target(info) if info is not None else None
        except Exception as e:
            info, path, err = None, None, f"{type(e).__name__}: {e}"
        else:
            err = "not found" if info is None else None
        if refuse:
            if path is not None:
                print(f"  python-tuf: trusted {name!r} (sha256 {info.hashes.get('sha256')}), expected a refusal"); bad += 1
            continue
        if path is None:
            print(f"  python-tuf: {name!r}: {err}"); bad += 1; continue
        got = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if got != expected[name]:
            print(f"  python-tuf: {name!r}: sha256 {got}, expected {expected[name]}"); bad += 1
sys.exit(1 if bad else 0)
PY
}

step "python-tuf ngclient.Updater: downloads every target with the intended bytes, refuses the rest"
pytuf "${targets[@]}" || fail "python-tuf disagrees with the repository summary (fixture bug?)"
pytuf --refuse "${refused[@]}" || fail "python-tuf trusts a name that is not delegated (fixture bug?)"
echo "ok   python-tuf: ${#targets[@]} downloaded, ${#refused[@]} refused"

# ------------------------------------------------------------------ warrant-conformance
step "init with 1.root.json, refresh"
client "$tmp/c-main"
refresh "$tmp/c-main" || fail "refresh exited $?"
v=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signed"]["version"])' "$tmp/c-main/root.json")
[[ $v == 3 ]] || fail "trusted root after refresh is version $v, expected 3"
echo "ok   refresh: trusted root version $v"

step "download all ${#targets[@]} targets in one call"
download "$tmp/c-main" "$tmp/t-all" "${targets[@]}" || fail "download of all targets exited $?"
check "$tmp/t-all" "${targets[@]}" || fail "downloaded bytes differ (one call)"
echo "ok   all targets, sha256 as intended"

step "download each target in its own call (fresh client)"
client "$tmp/c-each"
for n in "${targets[@]}"; do
  download "$tmp/c-each" "$tmp/t-each" "$n" || fail "download of '$n' exited $?"
done
check "$tmp/t-each" "${targets[@]}" || fail "downloaded bytes differ (one per call)"
echo "ok   ${#targets[@]} single downloads, sha256 as intended"

step "names not delegated along the search path are refused"
client "$tmp/c-refuse"
for n in "${refused[@]}"; do
  must_refuse "$tmp/c-refuse" "$tmp/t-refuse" "$n"
  echo "ok   refused $n: $refuse_reason"
done
# Also with a client that has everything cached, and mixed with good names.
must_refuse "$tmp/c-main" "$tmp/t-refuse" undelegated/x
rc=0; download "$tmp/c-main" "$tmp/t-mixed" top.txt undelegated/x >/dev/null 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "download of top.txt + undelegated/x exited $rc, expected 1"
echo "ok   refused undelegated/x (warm client, and mixed with top.txt)"

# ------------------------------------------------------------------ tampering
# The bin holding the most artifacts; one more artifact in another bin.
read -r bin victim other < <(python3 - "$summary" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
bins = {b: [t for t in ts if t in s["targets"]] for b, ts in s["bins"].items()}
bin_ = max(bins, key=lambda b: len(bins[b]))
other = next(t for b, ts in sorted(bins.items()) if b != bin_ for t in ts)
print(bin_, bins[bin_][0], other)
PY
)
binfile=$srv/metadata/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["versions"][sys.argv[2]])' "$summary" "$bin").$bin.json
victim_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["targets"][sys.argv[2]])' "$summary" "$victim")
step "tamper: one byte of $(basename "$binfile") (the sha256 of $victim, inside 'signed')"
cp "$binfile" "$tmp/bin.orig"
python3 - "$binfile" "$victim_sha" <<'PY'
import sys
path, digest = sys.argv[1], sys.argv[2].encode()
data = open(path, "rb").read()
i = data.index(digest)
flipped = b"0" if data[i:i + 1] != b"0" else b"1"
open(path, "wb").write(data[:i] + flipped + data[i + 1:])
PY
cmp -s "$binfile" "$tmp/bin.orig" && fail "tamper did not change $binfile"
client "$tmp/c-tamper"
must_refuse "$tmp/c-tamper" "$tmp/t-tamper" "$victim"
echo "ok   refused $victim (its bin $bin no longer verifies): $refuse_reason"
pytuf --refuse "$victim" || fail "python-tuf trusts $victim from the tampered bin (fixture bug?)"
echo "ok   python-tuf refuses it too"
download "$tmp/c-tamper" "$tmp/t-tamper" "$other" >/dev/null || fail "download of $other (untouched bin) exited $?"
check "$tmp/t-tamper" "$other" || fail "$other: bytes differ"
echo "ok   $other (another bin) still downloads"
cp "$tmp/bin.orig" "$binfile"
rm -rf "$tmp/t-tamper"
client "$tmp/c-tamper"
download "$tmp/c-tamper" "$tmp/t-tamper" "$victim" >/dev/null || fail "download of $victim after restoring its bin exited $?"
check "$tmp/t-tamper" "$victim" || fail "$victim: bytes differ after restore"
echo "ok   restored: $victim downloads again"

step "tamper: one byte of the served file of top.txt (same length)"
top_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["targets"]["top.txt"])' "$summary")
topfile=$srv/targets/$top_sha.top.txt
cp "$topfile" "$tmp/top.orig"
printf 'X' | dd of="$topfile" bs=1 seek=0 conv=notrunc status=none
cmp -s "$topfile" "$tmp/top.orig" && fail "tamper did not change $topfile"
must_refuse "$tmp/c-main" "$tmp/t-top" top.txt
cp "$tmp/top.orig" "$topfile"
echo "ok   refused top.txt with changed bytes: $refuse_reason"

echo "python-repo: warrant-conformance agrees with python-tuf on a python-tuf repository:" \
  "root 1->3, ${#targets[@]} targets (one call and one per call), ${#refused[@]} undelegated names refused," \
  "tampered bin and target refused"
