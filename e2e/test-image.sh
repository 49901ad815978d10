#!/usr/bin/env bash
# warrant's own container image, the admission webhook (issue #18, item 4), under a
# real Docker daemon:
#
#   * packaging/image/build.sh assembles it from the static binary (FROM scratch:
#     binary, CA bundle, user 65532) and signs it with that binary; assembling
#     again gives the same digest;
#   * it is pushed with its warrant.tuf to a loopback registry, `warrant verify`
#     checks it, the daemon pulls exactly the verified digest; the kustomization
#     pin mechanism writes that digest;
#   * in the container: the binary runs without a libc on disk; a PKCS#11 module
#     fails to load with a clear error (exit 2), no crash;
#   * the webhook runs as the Deployment runs it (user 65532, read-only root, no
#     capabilities) and reaches the registry by NAME over HTTPS: a stub DNS server
#     on loopback answers for registry.warrant.test (static glibc's getaddrinfo,
#     /etc/nsswitch.conf of the image), and the CA bundle at the image's path
#     (here with the test CA) validates the registry's certificate;
#   * one AdmissionReview each: a signed image is allowed and pinned to its
#     digest, an unsigned one is denied.
#
# The registry's storage is served twice: plain HTTP on 127.0.0.1 for the host's
# tools (warrant talks plain HTTP to loopback registries), HTTPS on another port
# for the container, by name.
#
# Needs root, dockerd, docker, docker-registry, skopeo, openssl, python3 (`bash
# .ci/run` installs them) and the static binary (`make static`).
#
#   WARRANT=path          host-side binary (default: $CARGO_TARGET_DIR or target, /release/warrant)
#   WARRANT_STATIC=path   the binary for the image (default: .../x86_64-unknown-linux-gnu/release/warrant)
#   WARRANT_E2E_KEEP=1    keep the temp dir (dockerd is stopped either way)
#   WARRANT_E2E_STORAGE_DRIVER=vfs   when overlay2 is unavailable
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-target}
[[ $target == /* ]] || target=$repo/$target
abs() { case $1 in /*) echo "$1" ;; */*) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;; *) command -v "$1" || echo "$1" ;; esac; }
WARRANT=$(abs "${WARRANT:-$target/release/warrant}")
WARRANT_STATIC=$(abs "${WARRANT_STATIC:-$target/x86_64-unknown-linux-gnu/release/warrant}")
die() { echo "test-image: $*" >&2; exit 2; }
[[ -x $WARRANT ]] || die "no warrant binary at $WARRANT"
[[ -x $WARRANT_STATIC ]] || die "no static binary at $WARRANT_STATIC: run 'make static' (make test does)"
[[ $(id -u) == 0 ]] || die "dockerd needs root: run as root (bash .ci/run does)"
for tool in /usr/sbin/dockerd docker /usr/bin/docker-registry skopeo openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing: bash .ci/run installs it"
done

tmp=$(mktemp -d /tmp/wim.XXXXXX)   # short: dockerd's socket paths must fit 108 bytes
chmod 755 "$tmp"
pids=() dockerd_pid="" webhook=""
cleanup() {
  [[ -z $webhook ]] || docker rm -f "$webhook" >/dev/null 2>&1 || true
  if [[ -n $dockerd_pid ]]; then
    kill "$dockerd_pid" 2>/dev/null || true
    while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.2; done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ ${WARRANT_E2E_KEEP:-} == 1 ]]; then echo "kept $tmp"; else
    umount -R "$tmp/docker" 2>/dev/null || true
    rm -rf "$tmp" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'echo "test-image: FAILED (line $LINENO: $BASH_COMMAND)" >&2; tail -n 20 "$tmp/dockerd.log" >&2 || true' ERR

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD...: run CMD (no stdin), show its output, fail unless it exits CODE ($out keeps it).
expect() {
  local want=$1 rc=0; shift
  out=$("$@" </dev/null 2>&1) || rc=$?
  [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/    /'
  if [[ $rc -ne $want ]]; then echo "FAIL: expected exit $want, got $rc: $*" >&2; exit 1; fi
  echo "    -> exit $rc"
}
wait_for() {
  local what=$1 i; shift
  for ((i = 0; i < 300; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what did not come up"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[int(k)] if k.isdigit() else v[k]
print(v if isinstance(v,str) else json.dumps(v))' "$@"; }

name=registry.warrant.test
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)

step "the image: assembled from the static binary and signed by it"
export WARRANT_PASSPHRASE=e2e-passphrase
unset WARRANT_LOG
img=$tmp/image
expect 0 env WARRANT_HOME="$tmp/image-keys" bash "$repo/packaging/image/build.sh" \
  --binary "$WARRANT_STATIC" --layout "$img/oci" --tag "$version"
digest=$(tail -n1 <<<"$out")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "build.sh printed no digest"
[[ $(cat "$img/digest") == "$digest" ]] || fail "$img/digest is not $digest"
again=$(python3 "$repo/packaging/image/assemble.py" --binary "$img/warrant" --layout "$tmp/again" --tag "$version")
[[ $again == "$digest" ]] || fail "not reproducible: $again, then $digest"
echo "    $digest (the same when assembled again)"
expect 0 "$WARRANT" verify "oci:$img/oci:$version" --root "$img/root/1.root.json"
grep -q "@$digest" <<<"$out" || fail "verify did not name $digest"
cp "$repo/plugin-manifest/kubernetes/kustomization.yaml" "$tmp/kustomization.yaml"
expect 0 env WARRANT_HOME="$tmp/image-keys" bash "$repo/packaging/image/build.sh" \
  --binary "$WARRANT_STATIC" --layout "$img/oci" --tag "$version" --pin "$tmp/kustomization.yaml"
grep -qx "    digest: $digest" "$tmp/kustomization.yaml" || fail "the kustomization was not pinned to $digest"

step "certificates (make-certs.sh), a stub DNS server, the registry (HTTP and HTTPS), dockerd"
expect 0 bash "$repo/plugin-manifest/kubernetes/make-certs.sh" --out "$tmp/certs" --san "IP:127.0.0.1" --san "DNS:$name"
chmod 755 "$tmp/certs" && chmod 644 "$tmp/certs"/*   # read by user 65532 in the container (a test CA)
# A loopback address of our own for the DNS server (resolv.conf cannot name a port).
dns_ip=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).53
python3 "$here/dns-stub.py" --listen "$dns_ip:53" "$name=127.0.0.1" 2>"$tmp/dns.log" &
pids+=($!)
wait_for "the DNS stub" grep -q listening "$tmp/dns.log"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$dns_ip" >"$tmp/resolv.conf"
chmod 644 "$tmp/resolv.conf"

port=$(free_port) tport=$(free_port)
for kind in http https; do
  if [[ $kind == http ]]; then listen=127.0.0.1:$port tls=""
  else listen=127.0.0.1:$tport tls="tls: {certificate: $tmp/certs/tls.crt, key: $tmp/certs/tls.key}"; fi
  cat >"$tmp/registry-$kind.yml" <<EOF2
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $tmp/registry}, delete: {enabled: true}}
http: {addr: $listen, $tls}
EOF2
  /usr/bin/docker-registry serve "$tmp/registry-$kind.yml" >"$tmp/registry-$kind.log" 2>&1 &
  pids+=($!)
done
reg=127.0.0.1:$port
treg=$name:$tport
wait_for registry python3 -c "import urllib.request; urllib.request.urlopen('http://$reg/v2/')"
wait_for "TLS registry" python3 -c "import ssl,urllib.request; urllib.request.urlopen('https://127.0.0.1:$tport/v2/', context=ssl.create_default_context(cafile='$tmp/certs/ca.crt'))"

mkdir -p "$tmp/docker"
/usr/sbin/dockerd --host "unix://$tmp/docker.sock" --data-root "$tmp/docker/data" \
  --exec-root "$tmp/docker/exec" --pidfile "$tmp/docker.pid" \
  --iptables=false --ip6tables=false --bridge=none \
  --storage-driver="${WARRANT_E2E_STORAGE_DRIVER:-overlay2}" >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST=unix://$tmp/docker.sock DOCKER_CONFIG=$tmp/docker-config
wait_for dockerd docker version
echo "    registry http://$reg and https://$treg, DNS $dns_ip, dockerd $(docker version --format '{{.Server.Version}}')"

step "publish the image with its trust; verify it; the daemon pulls the verified digest"
skopeo copy -q --dest-tls-verify=false "oci:$img/oci:$version" "docker://$reg/warrant/warrant:$version"
skopeo copy -q --dest-tls-verify=false "oci:$img/oci:warrant.tuf" "docker://$reg/warrant/warrant:warrant.tuf"
expect 0 "$WARRANT" --home "$tmp/verifier" verify "$reg/warrant/warrant:$version" --root "$img/root/1.root.json"
grep -q "is $reg/warrant/warrant@$digest" <<<"$out" || fail "the registry's $version is not $digest"
docker pull -q "$reg/warrant/warrant@$digest" >/dev/null
image=$reg/warrant/warrant@$digest
[[ $(docker image inspect --format '{{.Config.User}}' "$image") == 65532:65532 ]] || fail "the image does not run as 65532"
[[ $(docker image inspect --format '{{json .Config.Entrypoint}}' "$image") == '["/usr/local/bin/warrant"]' ]] \
  || fail "unexpected entrypoint"
docker create --name bundle-check "$image" >/dev/null
docker cp bundle-check:/etc/ssl/certs/ca-certificates.crt "$tmp/bundle-in-image.crt"
docker rm bundle-check >/dev/null
cmp -s "$tmp/bundle-in-image.crt" /etc/ssl/certs/ca-certificates.crt || fail "the image's CA bundle is not the build machine's"
echo "    $image: user 65532:65532, the build machine's CA bundle"

step "the static binary runs in the image (no libc on disk)"
expect 0 docker run --rm --network none "$image" --version
[[ $out == "warrant $version" ]] || fail "expected 'warrant $version'"

step "PKCS#11 in the image: a clear error, never a crash"
expect 2 docker run --rm --network none -e WARRANT_PKCS11_PIN=0000 "$image" \
  key generate --pkcs11 'pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so'
grep -q 'cannot load PKCS#11 module' <<<"$out" || fail "no clear PKCS#11 error"
if [[ -e /usr/lib/softhsm/libsofthsm2.so ]]; then
  # A real module, mounted in: its own libraries (libc.so.6, libcrypto) are absent.
  expect 2 docker run --rm --network none -e WARRANT_PKCS11_PIN=0000 \
    -v /usr/lib/softhsm/libsofthsm2.so:/usr/lib/softhsm/libsofthsm2.so:ro "$image" \
    key generate --pkcs11 'pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so'
  grep -q 'cannot load PKCS#11 module' <<<"$out" || fail "no clear PKCS#11 error"
fi

step "demo images: team/app:v1 signed, team/app:evil unsigned"
for t in v1 evil; do
  python3 "$here/make-image.py" "$tmp/demo" "$t" --content "hello $t" >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$tmp/demo:$t" "docker://$reg/team/app:$t"
done
expect 0 "$WARRANT" --home "$tmp/signer" init "$reg/team/app"
expect 0 "$WARRANT" --home "$tmp/signer" sign "$reg/team/app:v1"
v1=$(sed -n 's/.* = \(sha256:[0-9a-f]\{64\}\) .*/\1/p' <<<"$out" | head -n1)
[[ -n $v1 ]] || fail "sign printed no digest"
expect 0 "$WARRANT" --home "$tmp/signer" export "$reg/team/app" "$tmp/policy/root"
cat >"$tmp/policy/policy.toml" <<EOF
[[repository]]
match = "$treg/team/*"
root = "/etc/warrant/policy/root/1.root.json"
