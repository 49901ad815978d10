#!/usr/bin/env bash
# warrant where images are pulled (issue #7), end to end with the release binary:
#
#   * Docker CLI plugin, with the real docker client (no daemon): `warrant install
#     docker-plugin`, docker lists it, `docker help warrant` works, and `docker
#     warrant verify` on an OCI layout exits 0 for the signed tag and 1 for the
#     unsigned one;
#   * containerd verifier: plugin-manifest/containerd/install.sh into a staging
#     root refuses to link the verifier before a policy exists, then links it
#     atomically; the installed binary answers containerd's calling convention.
#
# Needs: bash, python3 (stdlib), the docker CLI, the warrant binary. No network.
#
#   WARRANT=path/to/warrant   binary to use (default: ${CARGO_TARGET_DIR:-target}/release/warrant)
#   WARRANT_E2E_KEEP=1        keep the temp dir for inspection
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

WARRANT=${WARRANT:-${CARGO_TARGET_DIR:-target}/release/warrant}
case $WARRANT in
  /*) ;;
  */*) if [[ -e $WARRANT ]]; then WARRANT=$(cd "$(dirname "$WARRANT")" && pwd)/$(basename "$WARRANT")
       else WARRANT=$repo/$WARRANT; fi ;;
  *) WARRANT=$(command -v "$WARRANT" || echo "$WARRANT") ;;
esac
[[ -x $WARRANT ]] || { echo "test-plugins: no warrant binary at $WARRANT" >&2; exit 2; }
command -v docker >/dev/null || { echo "test-plugins: the docker CLI is required (docker-ce-cli)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warrant-plugins.XXXXXX")
cleanup() { if [[ ${WARRANT_E2E_KEEP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'echo "test-plugins: FAILED (line $LINENO: $BASH_COMMAND)" >&2' ERR

step() { printf '\n==> %s\n' "$*"; }
# expect CODE CMD...: run CMD (no stdin), show its output, fail unless it exits CODE.
expect() {
  local want=$1 out rc=0; shift
  out=$("$@" </dev/null 2>&1) || rc=$?
  [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/    /'
  if [[ $rc -ne $want ]]; then echo "FAIL: expected exit $want, got $rc: $*" >&2; exit 1; fi
  echo "    -> exit $rc"
}

export DOCKER_CONFIG=$tmp/docker WARRANT_PASSPHRASE=e2e-passphrase
unset WARRANT_LOG

step "a signed image (v1) and an unsigned one (evil) in an OCI layout"
layout=$tmp/layout
python3 "$here/make-image.py" "$layout" v1 --content "hello v1" >/dev/null
python3 "$here/make-image.py" "$layout" evil --content "evil" >/dev/null
WARRANT_HOME=$tmp/signer "$WARRANT" init "oci:$layout" >/dev/null
WARRANT_HOME=$tmp/signer "$WARRANT" sign "oci:$layout:v1" >/dev/null
WARRANT_HOME=$tmp/signer "$WARRANT" export "oci:$layout" "$tmp/export" >/dev/null

step "warrant install docker-plugin; docker lists it"
expect 0 "$WARRANT" install docker-plugin
[[ -L $DOCKER_CONFIG/cli-plugins/docker-warrant ]]
docker --help | grep -E '^\s+warrant\*\s'
docker info --format '{{json .ClientInfo.Plugins}}' | grep -q '"Name":"warrant"'
help_text=$(docker help warrant)
grep -qE '^\s+pull\s+Verify' <<<"$help_text" || { echo "FAIL: docker help warrant lacks pull" >&2; exit 1; }

step "docker warrant verify: exit 0 for the signed tag, 1 for the unsigned one"
export WARRANT_HOME=$tmp/verifier
unset WARRANT_PASSPHRASE
expect 0 docker warrant verify "oci:$layout:v1" --root "$tmp/export/1.root.json"
expect 1 docker warrant verify "oci:$layout:evil"
expect 2 docker warrant pull "oci:$layout:v1"

step "containerd: install.sh into a staging root refuses to link before a policy exists"
stage=$tmp/stage
expect 1 env DESTDIR="$stage" bash "$repo/plugin-manifest/containerd/install.sh" --binary "$WARRANT"
[[ ! -e $stage/opt/containerd/image-verifier/bin/warrant ]]
[[ -x $stage/usr/local/bin/warrant && -f $stage/etc/warrant/policy.toml.example ]]
[[ $(stat -c %a "$stage/var/lib/warrant") == 700 ]]

step "with a policy it links the verifier (and again, idempotently)"
printf 'default = "allow"\n' >"$stage/etc/warrant/policy.toml"
expect 0 env DESTDIR="$stage" bash "$repo/plugin-manifest/containerd/install.sh" --binary "$WARRANT"
expect 0 env DESTDIR="$stage" bash "$repo/plugin-manifest/containerd/install.sh" --binary "$WARRANT"
[[ $(readlink "$stage/opt/containerd/image-verifier/bin/warrant") == /usr/local/bin/warrant ]]
[[ $(ls -A "$stage/opt/containerd/image-verifier/bin") == warrant ]]

step "the installed binary answers as containerd calls it"
digest=sha256:$(printf x | sha256sum | cut -d' ' -f1)
answer=$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":2}\n' "$digest" \
  | WARRANT_POLICY=$stage/etc/warrant/policy.toml WARRANT_HOME=$stage/var/lib/warrant \
    "$stage/usr/local/bin/warrant" -name docker.io/library/alpine:3.20 -digest "$digest" \
    -stdin-media-type application/vnd.oci.descriptor.v1+json)
echo "    $answer"
[[ $answer == "allowed unverified: "* ]]

echo
echo "test-plugins: OK"
