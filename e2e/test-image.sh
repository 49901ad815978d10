#!/usr/bin/env bash
# warrant's own container image, the admission webhook (issue #18, item 4), under a
# real Docker daemon:
#
#   * packaging/image/build.sh assembles it from the static binary (FROM scratch:
#     binary, CA bundle, user 65532) and signs it with that binary; assembling
#     again gives the same digest; --pin writes that digest into a kustomization;
#   * it is pushed with its warrant.tuf to a loopback registry, `warrant verify`
#     checks it there, and the daemon pulls exactly the verified digest;
#   * in the container: the binary runs without a libc on disk; a PKCS#11 module
#     fails to load with a clear error (exit 2), never a crash;
#   * the webhook runs as the Deployment runs it (user 65532, read-only root, no
#     capabilities) and reaches the registry by NAME over HTTPS: a stub DNS server
#     on loopback answers for registry.warrant.test (static glibc's getaddrinfo),
#     a name only /etc/hosts knows is found there without asking DNS (the
#     image's /etc/nsswitch.conf: files, then dns), and the CA bundle at the
#     image's path (here with the test CA added) validates the certificate;
#   * one AdmissionReview each: a signed image is allowed and pinned to its
#     digest, an unsigned one is denied.
#
# The registry's storage is served twice: plain HTTP on 127.0.0.1 for the host's
# tools (warrant speaks plain HTTP to loopback registries), and HTTPS on another
# port for the container, which reaches it by name.
#
# Needs root, dockerd, docker, docker-registry, skopeo, openssl and python3 (`bash
# .ci/run` installs them), and the static binary (`make static`; make test builds it).
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
abs() {
  case $1 in
    /*) echo "$1" ;;
    */*) if [[ -e $1 ]]; then echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; else echo "$repo/$1"; fi ;;
    *) command -v "$1" || echo "$1" ;;
  esac
}
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
  if [[ -n $webhook ]]; then docker rm -f "$webhook" >/dev/null 2>&1 || true; fi
  if [[ -n $dockerd_pid ]]; then
    kill "$dockerd_pid" 2>/dev/null || true
    # dockerd unmounts its layers on the way out; wait for it (no fixed sleep).
    while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.2; done
  fi
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ ${WARRANT_E2E_KEEP:-} == 1 ]]; then echo "kept $tmp"; else
    # dockerd leaves mounts below its directories (with host networking, its
    # exec-root's netns/default); unmount them, deepest first, then remove.
    findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
    rm -rf "$tmp" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'echo "test-image: FAILED (line $LINENO: $BASH_COMMAND)" >&2; tail -n 20 "$tmp/dockerd.log" >&2 || true' ERR

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD...: run CMD (no stdin), show its output, fail unless it exits CODE.
# The output is kept in $out.
expect() {
  local want=$1 rc=0; shift
  out=$("$@" </dev/null 2>&1) || rc=$?
  [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/    /'
  if [[ $rc -ne $want ]]; then echo "FAIL: expected exit $want, got $rc: $*" >&2; exit 1; fi
  echo "    -> exit $rc"
}
# wait_for WHAT CMD...: poll CMD until it succeeds; give up after 300 tries.
wait_for() {
  local what=$1 i; shift
  for ((i = 0; i < 300; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what did not come up"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# field KEY...: one field of the JSON document on stdin (strings bare, the rest as JSON).
field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(v if isinstance(v, str) else json.dumps(v))' "$@"
}

name=registry.warrant.test
alias=hosts-only.warrant.test   # in the container's /etc/hosts only; NXDOMAIN from DNS
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
export WARRANT_PASSPHRASE=e2e-passphrase
unset WARRANT_LOG

step "the image: assembled from the static binary and signed by it"
img=$tmp/image
expect 0 env WARRANT_HOME="$tmp/image-keys" bash "$repo/packaging/image/build.sh" \
  --binary "$WARRANT_STATIC" --layout "$img/oci" --tag "$version"
digest=$(tail -n1 <<<"$out")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "build.sh printed no digest"
[[ $(cat "$img/digest") == "$digest" ]] || fail "$img/digest is not $digest"
again=$(python3 "$repo/packaging/image/assemble.py" --binary "$img/warrant" --layout "$tmp/again" --tag "$version")
[[ $again == "$digest" ]] || fail "not reproducible: $digest, then $again"
echo "    $digest (the same when assembled again)"
expect 0 "$WARRANT" --home "$tmp/verifier" verify "oci:$img/oci:$version" --root "$img/root/1.root.json"
grep -q "@$digest" <<<"$out" || fail "verify did not name $digest"
root_before=$(sha256sum <"$img/root/1.root.json")
cp "$repo/plugin-manifest/kubernetes/kustomization.yaml" "$tmp/kustomization.yaml"
expect 0 env WARRANT_HOME="$tmp/image-keys" bash "$repo/packaging/image/build.sh" \
  --binary "$WARRANT_STATIC" --layout "$img/oci" --tag "$version" --pin "$tmp/kustomization.yaml"
[[ $(tail -n1 <<<"$out") == "$digest" ]] || fail "a rebuild changed the digest"
[[ $(sha256sum <"$img/root/1.root.json") == "$root_before" ]] || fail "a rebuild made a new repository (root)"
grep -qx "    digest: $digest" "$tmp/kustomization.yaml" || fail "the kustomization was not pinned to $digest"

step "certificates (make-certs.sh), a stub DNS server, the registry (HTTP and HTTPS), dockerd"
expect 0 bash "$repo/plugin-manifest/kubernetes/make-certs.sh" --out "$tmp/certs" --san "IP:127.0.0.1" --san "DNS:$name" --san "DNS:$alias"
# Read by user 65532 in the container (a throwaway test CA).
chmod 755 "$tmp/certs" && chmod 644 "$tmp/certs"/*
# A loopback address of our own for the DNS server (resolv.conf cannot name a port).
dns_ip=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).53
python3 "$here/dns-stub.py" --listen "$dns_ip:53" "$name=127.0.0.1" 2>"$tmp/dns.log" &
pids+=($!)
wait_for "the DNS stub" grep -q listening "$tmp/dns.log"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$dns_ip" >"$tmp/resolv.conf"
chmod 644 "$tmp/resolv.conf"

port=$(free_port)
tport=$(free_port)
for kind in http https; do
  if [[ $kind == http ]]; then
    listen=127.0.0.1:$port tls=""
  else
    listen=127.0.0.1:$tport tls=", tls: {certificate: $tmp/certs/tls.crt, key: $tmp/certs/tls.key}"
  fi
  printf '%s\n' "version: 0.1" "log: {level: warn}" \
    "storage: {filesystem: {rootdirectory: $tmp/registry}, delete: {enabled: true}}" \
    "http: {addr: $listen$tls}" >"$tmp/registry-$kind.yml"
  /usr/bin/docker-registry serve "$tmp/registry-$kind.yml" >"$tmp/registry-$kind.log" 2>&1 &
  pids+=($!)
done
reg=127.0.0.1:$port
treg=$name:$tport
wait_for registry python3 -c "import urllib.request; urllib.request.urlopen('http://$reg/v2/')"
wait_for "the TLS registry" python3 -c "import ssl, urllib.request; urllib.request.urlopen('https://127.0.0.1:$tport/v2/', context=ssl.create_default_context(cafile='$tmp/certs/ca.crt'))"

mkdir -p "$tmp/docker"
/usr/sbin/dockerd --host "unix://$tmp/docker.sock" --data-root "$tmp/docker/data" \
  --exec-root "$tmp/docker/exec" --pidfile "$tmp/docker.pid" \
  --iptables=false --ip6tables=false --bridge=none \
  --storage-driver="${WARRANT_E2E_STORAGE_DRIVER:-overlay2}" >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST=unix://$tmp/docker.sock DOCKER_CONFIG=$tmp/docker-config
wait_for dockerd docker version
echo "    registry http://$reg and https://$treg, DNS on $dns_ip, dockerd $(docker version --format '{{.Server.Version}}')"

step "publish the image with its trust; verify it there; the daemon pulls the verified digest"
skopeo copy -q --dest-tls-verify=false "oci:$img/oci:$version" "docker://$reg/warrant/warrant:$version"
skopeo copy -q --dest-tls-verify=false "oci:$img/oci:warrant.tuf" "docker://$reg/warrant/warrant:warrant.tuf"
expect 0 "$WARRANT" --home "$tmp/verifier" verify "$reg/warrant/warrant:$version" --root "$img/root/1.root.json"
grep -q "$reg/warrant/warrant@$digest" <<<"$out" || fail "the registry's $version is not $digest"
image=$reg/warrant/warrant@$digest
docker pull -q "$image" >/dev/null
[[ $(docker image inspect --format '{{.Config.User}}' "$image") == 65532:65532 ]] || fail "the image does not run as 65532"
[[ $(docker image inspect --format '{{json .Config.Entrypoint}}' "$image") == '["/usr/local/bin/warrant"]' ]] \
  || fail "unexpected entrypoint"
docker create --name "bundle-check-$$" "$image" >/dev/null
docker cp "bundle-check-$$:/etc/ssl/certs/ca-certificates.crt" "$tmp/bundle-in-image.crt"
docker rm "bundle-check-$$" >/dev/null
cmp -s "$tmp/bundle-in-image.crt" /etc/ssl/certs/ca-certificates.crt || fail "the image's CA bundle is not the build machine's"
echo "    $image: user 65532:65532, the build machine's CA bundle"

step "the static binary runs in the image (no libc on disk)"
expect 0 docker run --rm --network none "$image" --version
[[ $out == "warrant $version" ]] || fail "expected 'warrant $version'"

step "PKCS#11 in the image: a clear error, never a crash"
pkcs11_uri='pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so'
expect 2 docker run --rm --network none -e WARRANT_PKCS11_PIN=0000 "$image" key generate --pkcs11 "$pkcs11_uri"
grep -q 'cannot load PKCS#11 module' <<<"$out" || fail "no clear PKCS#11 error"
if [[ -e /usr/lib/softhsm/libsofthsm2.so ]]; then
  # A real module mounted in: the libraries it needs (libc.so.6, libcrypto) are absent.
  expect 2 docker run --rm --network none -e WARRANT_PKCS11_PIN=0000 \
    -v /usr/lib/softhsm/libsofthsm2.so:/usr/lib/softhsm/libsofthsm2.so:ro "$image" \
    key generate --pkcs11 "$pkcs11_uri"
  grep -q 'cannot load PKCS#11 module' <<<"$out" || fail "no clear PKCS#11 error"
fi

step "demo images: team/app:v1 signed, team/app:evil unsigned"
for t in v1 evil; do
  python3 "$here/make-image.py" "$tmp/demo" "$t" --content "hello $t" >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$tmp/demo:$t" "docker://$reg/team/app:$t"
done
expect 0 "$WARRANT" --home "$tmp/signer" init "$reg/team/app"
expect 0 "$WARRANT" --home "$tmp/signer" sign --output json "$reg/team/app:v1"
v1=$(python3 -c 'import re, sys; print(re.findall(r"sha256:[0-9a-f]{64}", sys.stdin.read())[0])' <<<"$out")
expect 0 "$WARRANT" --home "$tmp/signer" export "$reg/team/app" "$tmp/policy/root"
for host in "$treg" "$alias:$tport"; do
  printf '%s\n' "[[repository]]" "match = \"$host/team/*\"" \
    'root = "/etc/warrant/policy/root/1.root.json"'
done >"$tmp/policy/policy.toml"
chmod -R a+rX "$tmp/policy"
# The test CA where the image keeps its bundle, as an operator mounts a private
# registry's CA (with the public roots kept).
cat /etc/ssl/certs/ca-certificates.crt "$tmp/certs/ca.crt" >"$tmp/bundle.crt"
chmod 644 "$tmp/bundle.crt"

step "the webhook: serve admission in the image, as the Deployment runs it"
wport=$(free_port)
webhook=warrant-webhook-$$
docker run -d --name "$webhook" --network host --add-host "$alias:127.0.0.1" --read-only --cap-drop ALL \
  --security-opt no-new-privileges \
  --tmpfs /var/lib/warrant:uid=65532,gid=65532,mode=0700 --tmpfs /tmp \
  -v "$tmp/resolv.conf:/etc/resolv.conf:ro" \
  -v "$tmp/bundle.crt:/etc/ssl/certs/ca-certificates.crt:ro" \
  -v "$tmp/certs:/etc/warrant/tls:ro" -v "$tmp/policy:/etc/warrant/policy:ro" \
  -e WARRANT_LOG=info \
  "$image" serve admission --listen "127.0.0.1:$wport" \
  --tls-cert /etc/warrant/tls/tls.crt --tls-key /etc/warrant/tls/tls.key \
  --policy /etc/warrant/policy/policy.toml --deadline-ms 8000 >/dev/null
# https METHOD PATH [BODY-FILE]: the webhook's answer body; fails on an HTTP error.
https() {
  python3 -c 'import ssl, sys, urllib.request
ca, url, method = sys.argv[1:4]
data = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None
req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca), timeout=30).read().decode())' \
    "$tmp/certs/ca.crt" "https://127.0.0.1:$wport$2" "$1" "${@:3}"
}
ready=0
for ((i = 0; i < 300; i++)); do if https GET /readyz >/dev/null 2>&1; then ready=1; break; fi; sleep 0.1; done
((ready)) || { docker logs "$webhook" >&2; fail "the webhook is not ready"; }
echo "    ready on https://127.0.0.1:$wport"

# review IMAGE: an AdmissionReview of a Pod running IMAGE, as the API server sends it.
review() {
  python3 -c 'import json, sys
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team"},
       "spec": {"containers": [{"name": "app", "image": sys.argv[1]}]}}
kind = {"group": "", "version": "v1", "kind": "Pod"}
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "7d6c5b4a-0000-4000-8000-000000000001", "kind": kind, "requestKind": kind,
    "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web",
    "namespace": "team", "operation": "CREATE", "userInfo": {"username": "e2e"},
    "object": pod, "oldObject": None, "dryRun": False}}))' "$1"
}

step "a signed image: allowed, and pinned to its digest"
review "$treg/team/app:v1" >"$tmp/review-v1.json"
answer=$(https POST /mutate "$tmp/review-v1.json") || { docker logs "$webhook" >&2; fail "POST /mutate failed"; }
printf '    %s\n' "${answer:0:600}"
[[ $(field response allowed <<<"$answer") == true ]] || { docker logs "$webhook" >&2; fail "the signed image was not allowed"; }
patch=$(field response patch <<<"$answer" | base64 -d)
echo "    patch: $patch"
grep -q "$treg/team/app:v1@$v1" <<<"$patch" || fail "the patch does not pin $v1"

step "a registry named in /etc/hosts only: found there before DNS is asked"
review "$alias:$tport/team/app:v1" >"$tmp/review-alias.json"
answer=$(https POST /validate "$tmp/review-alias.json") || { docker logs "$webhook" >&2; fail "POST /validate failed"; }
printf '    %s\n' "${answer:0:600}"
[[ $(field response allowed <<<"$answer") == true ]] || { docker logs "$webhook" >&2; fail "$alias was not resolved from /etc/hosts"; }
if grep -q "$alias" "$tmp/dns.log"; then fail "DNS was asked for $alias before /etc/hosts"; fi

step "an unsigned image: denied"
review "$treg/team/app:evil" >"$tmp/review-evil.json"
answer=$(https POST /validate "$tmp/review-evil.json") || { docker logs "$webhook" >&2; fail "POST /validate failed"; }
printf '    %s\n' "${answer:0:600}"
[[ $(field response allowed <<<"$answer") == false ]] || fail "the unsigned image was allowed"
field response status message <<<"$answer" | grep -q "team/app:evil" || fail "the denial does not name the image"

step "the registry was reached by name, through the DNS server"
grep -q "$name type 1 -> 1 record" "$tmp/dns.log" || { cat "$tmp/dns.log" >&2; fail "no A query for $name"; }
echo "    $(grep -c "$name" "$tmp/dns.log") DNS queries for $name"

echo
echo "test-image: OK"
