#!/usr/bin/env bash
# The Docker CLI plugin against a real Docker daemon (issue #18, items 1 and 2):
#
#   * starts its own dockerd (Debian's docker.io) and a registry on loopback;
#   * makes a runnable image from busybox-static (`docker import`, no internet);
#   * `docker warrant push` pushes it through the daemon and signs the digest the
#     push reported, even when the tag is moved right after the push;
#   * `docker warrant pull` pulls exactly the verified digest and tags it;
#     options may follow IMAGE (`--platform`, `-q`) as with `docker pull`;
#   * `docker warrant run --rm IMAGE echo hi` runs it; its output is checked;
#   * an unsigned tag is refused and nothing is pulled;
#   * a tag moved in the registry between the verify and docker's pull still
#     yields the verified digest (docker is only ever given REPO@sha256:...);
#   * a tampered tag (moved to other content) is refused by pull and run, and
#     nothing is pulled or run.
#
# Needs root (dockerd), dockerd, the docker CLI, docker-registry, busybox-static
# and skopeo: `bash .ci/run` installs them. No network beyond loopback.
#
#   WARRANT=path/to/warrant   binary (default: $CARGO_TARGET_DIR or target, /release/warrant)
#   WARRANT_E2E_KEEP=1        keep the temp dir (dockerd is stopped either way)
#   WARRANT_E2E_STORAGE_DRIVER=vfs   when overlay2 is unavailable
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
die() { echo "test-docker-daemon: $*" >&2; exit 2; }
[[ -x $WARRANT ]] || die "no warrant binary at $WARRANT"
[[ $(id -u) == 0 ]] || die "dockerd needs root: run as root (bash .ci/run does)"
for tool in /usr/sbin/dockerd docker /usr/bin/docker-registry skopeo python3; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install docker.io docker-registry skopeo (bash .ci/run installs them)"
done
# busybox-static's /bin/busybox (a dynamic busybox would not run in the image:
# the import below checks that it runs).
busybox=/bin/busybox
[[ -x $busybox ]] || die "busybox-static is missing: apt-get install busybox-static"

tmp=$(mktemp -d /tmp/wdd.XXXXXX)   # short: dockerd's socket paths must fit 108 bytes
dockerd_pid="" registry_pid=""
cleanup() {
  if [[ -n $dockerd_pid ]]; then
    kill "$dockerd_pid" 2>/dev/null || true
    # dockerd unmounts its layers on the way out; wait for it (no fixed sleep).
    while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.2; done
  fi
  [[ -z $registry_pid ]] || kill "$registry_pid" 2>/dev/null || true
  if [[ ${WARRANT_E2E_KEEP:-} == 1 ]]; then echo "kept $tmp"; else
    umount -R "$tmp/docker" 2>/dev/null || true
    rm -rf "$tmp" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'echo "test-docker-daemon: FAILED (line $LINENO: $BASH_COMMAND)" >&2; tail -n 20 "$tmp/dockerd.log" >&2 || true' ERR

step() { printf '\n==> %s\n' "$*"; }
# expect CODE CMD...: run CMD (no stdin), show its output, fail unless it exits CODE.
# The output is kept in $out.
expect() {
  local want=$1 rc=0; shift
  out=$("$@" </dev/null 2>&1) || rc=$?
  [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/    /'
  if [[ $rc -ne $want ]]; then echo "FAIL: expected exit $want, got $rc: $*" >&2; exit 1; fi
  echo "    -> exit $rc"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_for WHAT CMD...: poll CMD until it succeeds; give up after 300 tries.
wait_for() {
  local what=$1 i; shift
  for ((i = 0; i < 300; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what did not come up"
}

step "a registry and a Docker daemon of our own"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $tmp/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
/usr/bin/docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
reg=127.0.0.1:$port
wait_for registry python3 -c "import urllib.request; urllib.request.urlopen('http://$reg/v2/')"

mkdir -p "$tmp/docker"
/usr/sbin/dockerd --host "unix://$tmp/docker.sock" --data-root "$tmp/docker/data" \
  --exec-root "$tmp/docker/exec" --pidfile "$tmp/docker.pid" \
  --iptables=false --ip6tables=false --bridge=none \
  --storage-driver="${WARRANT_E2E_STORAGE_DRIVER:-overlay2}" >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST=unix://$tmp/docker.sock
wait_for dockerd docker version
echo "    dockerd $(docker version --format '{{.Server.Version}}'), docker CLI $(docker version --format '{{.Client.Version}}'), registry $reg"

export DOCKER_CONFIG=$tmp/docker-config WARRANT_INSECURE_REGISTRIES=$reg
unset WARRANT_LOG
expect 0 "$WARRANT" install docker-plugin

step "runnable images from busybox-static (docker import, no base image)"
make_image() { # make_image TAG TEXT
  local root=$tmp/rootfs-$1
  mkdir -p "$root/bin"
  cp "$busybox" "$root/bin/busybox"
  for l in sh echo cat ls true; do ln -sf busybox "$root/bin/$l"; done
  printf '%s\n' "$2" >"$root/hello"
  tar -C "$root" -cf "$tmp/$1.tar" .
  docker import --change 'CMD ["/bin/sh"]' "$tmp/$1.tar" "$reg/demo/app:$1" >/dev/null
}
make_image v1 "hello from v1"
make_image evil "evil"
docker run --rm --network none "$reg/demo/app:v1" cat /hello | grep -qx "hello from v1" \
  || fail "the imported image does not run"

step "the signer: warrant init, then docker warrant push signs what the push reported"
export WARRANT_PASSPHRASE=e2e-passphrase
signer=$tmp/signer
expect 0 "$WARRANT" --home "$signer" init "$reg/demo/app"
rc=0
docker warrant push --home "$signer" --output json "$reg/demo/app:v1" \
  >"$tmp/push.json" 2>"$tmp/push.log" </dev/null || rc=$?
sed 's/^/    /' "$tmp/push.log" "$tmp/push.json"
[[ $rc == 0 ]] || fail "docker warrant push exited $rc"
pushed=$(sed -n 's/^v1: digest: \(sha256:[0-9a-f]\{64\}\) size: .*/\1/p' "$tmp/push.log" | tail -n1)
signed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$tmp/push.json")
[[ -n $pushed && $pushed == "$signed" ]] || fail "signed $signed, but docker push reported ${pushed:-nothing}"
echo "    docker push reported $pushed; warrant signed $signed"
expect 0 "$WARRANT" --home "$signer" export "$reg/demo/app" "$tmp/export"
# Unsigned: a plain docker push of another tag.
docker push -q "$reg/demo/app:evil" >/dev/null

step "docker warrant push signs the pushed digest even when the tag moves right after the push"
# The plugin as docker starts it, with a docker whose push is followed at once by
# someone moving the tag to the unsigned image: warrant must not re-resolve the tag.
make_image v2 "hello from v2"
cat >"$tmp/docker-moved-after-push" <<EOF
#!/usr/bin/env bash
docker "\$@"; rc=\$?
if [[ \$1 == push ]]; then
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \\
    docker://$reg/demo/app:evil docker://$reg/demo/app:v2 >&2
  echo "(the registry's v2 now points at the evil image)" >&2
fi
exit \$rc
EOF
chmod +x "$tmp/docker-moved-after-push"
rc=0
DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND="$tmp/docker-moved-after-push" WARRANT_PASSPHRASE=e2e-passphrase \
  "$DOCKER_CONFIG/cli-plugins/docker-warrant" warrant push --home "$signer" -o json "$reg/demo/app:v2" \
  >"$tmp/push2.json" 2>"$tmp/push2.log" </dev/null || rc=$?
sed 's/^/    /' "$tmp/push2.log" "$tmp/push2.json"
[[ $rc == 0 ]] || fail "docker warrant push exited $rc"
pushed2=$(sed -n 's/^v2: digest: \(sha256:[0-9a-f]\{64\}\) size: .*/\1/p' "$tmp/push2.log" | tail -n1)
signed2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$tmp/push2.json")
now2=$(skopeo inspect --raw --tls-verify=false "docker://$reg/demo/app:v2" | sha256sum | cut -d' ' -f1)
[[ -n $pushed2 && $pushed2 == "$signed2" ]] || fail "signed $signed2, but docker push reported ${pushed2:-nothing}"
[[ sha256:$now2 != "$signed2" ]] || fail "the tag was not moved: the check proves nothing"
echo "    signed $signed2 (the pushed digest); the registry's v2 is now sha256:$now2"

step "the verifier: a policy pinning the exported root; the daemon starts empty"
export WARRANT_HOME=$tmp/verifier
unset WARRANT_PASSPHRASE
mkdir -p "$WARRANT_HOME"
cat >"$WARRANT_HOME/policy.toml" <<EOF
[[repository]]
match = "$reg/demo/*"
root = "$tmp/export/1.root.json"
EOF
evil_id=$(docker image inspect --format '{{.Id}}' "$reg/demo/app:evil")
v1_id=$(docker image inspect --format '{{.Id}}' "$reg/demo/app:v1")
docker image rm -f "$reg/demo/app:v1" "$reg/demo/app:v2" "$reg/demo/app:evil" >/dev/null
images() { docker image ls -q --no-trunc | sort -u | tr '\n' ' '; }
[[ -z $(images) ]] || fail "the daemon still has images: $(images)"

step "v2's tag was moved after its push: verifying it fails, nothing is pulled"
expect 1 docker warrant pull "$reg/demo/app:v2"
[[ -z $(images) ]] || fail "something was pulled: $(images)"

step "docker warrant pull: exactly the verified digest, tagged"
expect 0 docker warrant pull "$reg/demo/app:v1"
grep -q "trusted: $reg/demo/app:v1 is $reg/demo/app@$signed" <<<"$out" || fail "no trusted line for $signed"
[[ $(docker image inspect --format '{{.Id}}' "$reg/demo/app:v1") == "$v1_id" ]] || fail "v1 is not the signed image"
docker image inspect --format '{{json .RepoDigests}}' "$reg/demo/app:v1" | grep -q "$reg/demo/app@$signed" \
  || fail "the pulled image is not $signed"
echo "    $reg/demo/app:v1 = $v1_id, from $reg/demo/app@$signed"

step "docker warrant run --rm IMAGE echo hi: runs the verified digest"
expect 0 docker warrant run --rm --network none "$reg/demo/app:v1" echo hi
[[ $(tail -n1 <<<"$out") == hi ]] || fail "expected the container to say hi"
expect 0 docker warrant run --rm --network=none -e GREETING=hello "$reg/demo/app:v1" cat /hello
[[ $(tail -n1 <<<"$out") == "hello from v1" ]] || fail "the container ran something else"

step "options after IMAGE, as docker pull takes them"
docker image rm -f "$reg/demo/app:v1" >/dev/null
expect 0 docker warrant pull "$reg/demo/app:v1" --platform linux/amd64 -q
[[ $(tail -n1 <<<"$out") == "$reg/demo/app@$signed" ]] || fail "-q: expected docker's quiet line"
[[ $(docker image inspect --format '{{.Id}}' "$reg/demo/app:v1") == "$v1_id" ]] || fail "v1 is not the signed image"
expect 2 docker warrant pull "$reg/demo/app:v1" "$reg/demo/app:evil"

step "an unsigned tag is refused, and nothing is pulled"
docker image rm -f "$reg/demo/app:v1" >/dev/null
expect 1 docker warrant pull "$reg/demo/app:evil"
expect 1 docker warrant run --rm --network none "$reg/demo/app:evil" echo pwned
[[ $out != *pwned* ]] || fail "the unsigned image ran"
[[ -z $(images) ]] || fail "something was pulled: $(images)"

step "a tag moved in the registry between verify and pull: still the verified digest"
# The plugin is started as docker starts it, with a docker that first moves the tag.
cat >"$tmp/docker-moving-tag" <<EOF
#!/usr/bin/env bash
if [[ \$1 == pull ]]; then
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    docker://$reg/demo/app:evil docker://$reg/demo/app:v1 >&2
  echo "(the registry's v1 now points at the evil image)" >&2
fi
exec docker "\$@"
EOF
chmod +x "$tmp/docker-moving-tag"
expect 0 env DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND="$tmp/docker-moving-tag" \
  "$DOCKER_CONFIG/cli-plugins/docker-warrant" warrant pull "$reg/demo/app:v1"
[[ $(docker image inspect --format '{{.Id}}' "$reg/demo/app:v1") == "$v1_id" ]] || fail "v1 is not the signed image"
[[ $(docker image inspect --format '{{.Id}}' "$reg/demo/app:v1") != "$evil_id" ]]
echo "    local v1 = $v1_id (signed); the registry's v1 = the evil image"

step "the tampered tag (v1 now names other content) is refused by pull and run"
docker image rm -f "$reg/demo/app:v1" >/dev/null
expect 1 docker warrant pull "$reg/demo/app:v1"
expect 1 docker warrant run --rm --network none "$reg/demo/app:v1" echo pwned
[[ $out != *pwned* ]] || fail "the tampered image ran"
[[ -z $(images) ]] || fail "something was pulled: $(images)"

echo
echo "test-docker-daemon: OK"
