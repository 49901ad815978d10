#!/usr/bin/env bash
# The Debian package (issue #18, item 6):
#
#   * packaging/deb/build.sh (what `make deb` runs) builds it with cargo-deb from
#     the release binary;
#   * it holds the binary, man pages, bash/zsh/fish completions, the docker CLI
#     plugin link and the containerd snippet, and depends on what the host has;
#   * `dpkg --root` installs it into a scratch root whose package database holds
#     the host's own entries for the package's dependencies (so the dependency
#     check is real; the machine's own /usr is never touched);
#   * the installed `warrant --version` runs, its man page and completions load,
#     and the docker CLI finds the plugin through the packaged link
#     (`docker warrant --help`);
#   * `dpkg -r` removes every file, `dpkg --purge` forgets the package.
#
# Needs dpkg, cargo-deb (`bash .ci/run` installs it) and the docker CLI.
#
#   WARRANT_E2E_KEEP=1   keep the temp dir
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
die() { echo "test-deb: $*" >&2; exit 2; }
for tool in dpkg dpkg-deb docker; do
  command -v "$tool" >/dev/null || die "$tool is missing: bash .ci/run installs it"
done

tmp=$(mktemp -d /tmp/wdeb.XXXXXX)
cleanup() {
  if [[ ${WARRANT_E2E_KEEP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'echo "test-deb: FAILED (line $LINENO: $BASH_COMMAND)" >&2' ERR

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

step "build: packaging/deb/build.sh (cargo deb --no-build)"
expect 0 bash "$repo/packaging/deb/build.sh"
deb=$(tail -n1 <<<"$out")
[[ -f $deb ]] || fail "build.sh named no package"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
[[ $(dpkg-deb -f "$deb" Package) == warrant ]] || fail "not the warrant package"
[[ $(dpkg-deb -f "$deb" Version) == "$version"-* ]] || fail "version is not $version"
dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print ($7 == "->") ? $6 " -> " $8 : $6 }' >"$tmp/contents"
for path in /usr/bin/warrant /usr/share/man/man1/warrant.1.gz /usr/share/man/man1/warrant-verify.1.gz \
  /usr/share/bash-completion/completions/warrant /usr/share/zsh/vendor-completions/_warrant \
  /usr/share/fish/vendor_completions.d/warrant.fish /usr/share/doc/warrant/containerd/config.toml \
  /usr/share/doc/warrant/README.Debian /usr/share/doc/warrant/copyright; do
  grep -q "^$path\$" "$tmp/contents" || fail "$path is not in the package"
done
grep -qx '/usr/libexec/docker/cli-plugins/docker-warrant -> ../../../bin/warrant' "$tmp/contents" \
  || fail "no relative docker-warrant link in the package"
echo "    $deb: $(grep -c . "$tmp/contents") entries; Depends: $(dpkg-deb -f "$deb" Depends)"

step "dpkg --root: install into a scratch root"
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/available"
# The host's status entries of the packages the .deb depends on: dpkg then checks
# the dependencies against what this machine really has.
: >"$root/var/lib/dpkg/status"
for dep in $(dpkg-deb -f "$deb" Depends | sed 's/([^)]*)//g; s/[,|]/ /g'); do
  dpkg-query -s "$dep" | grep -v -e '^Conffiles:' -e '^ /' >>"$root/var/lib/dpkg/status" \
    || fail "the host lacks $dep, which the package depends on"
  echo >>"$root/var/lib/dpkg/status"
  touch "$root/var/lib/dpkg/info/$dep.list" "$root/var/lib/dpkg/info/$dep:$(dpkg --print-architecture).list"
done
expect 0 dpkg --root="$root" -i "$deb"
[[ $(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' warrant) == "install ok installed" ]] \
  || fail "dpkg does not list warrant as installed"

step "the installed files work"
expect 0 "$root/usr/bin/warrant" --version
[[ $out == "warrant $version" ]] || fail "expected 'warrant $version'"
zcat "$root/usr/share/man/man1/warrant.1.gz" | grep -q '^\.TH warrant 1' || fail "warrant.1.gz is not a man page"
expect 0 bash -c "source '$root/usr/share/bash-completion/completions/warrant' && complete -p warrant"
# The docker CLI finds plugins in /usr/libexec/docker/cli-plugins (one of its
# built-in directories); here it is pointed at the scratch root's copy of it.
grep -qa '/usr/libexec/docker/cli-plugins' "$(command -v docker)" \
  || fail "this docker CLI does not search /usr/libexec/docker/cli-plugins"
mkdir -p "$tmp/docker-config"
printf '{"cliPluginsExtraDirs": ["%s"]}\n' "$root/usr/libexec/docker/cli-plugins" >"$tmp/docker-config/config.json"
export DOCKER_CONFIG=$tmp/docker-config
help=$(docker warrant --help 2>&1 </dev/null) || fail "docker warrant --help failed: $help"
grep -q '^Usage: docker warrant' <<<"$help" || fail "docker warrant --help did not run the plugin"
for c in pull run push; do
  grep -Eq "^  $c +" <<<"$help" || fail "docker warrant --help lacks the plugin's $c"
done
echo "    docker warrant --help: $(grep -c . <<<"$help") lines, with pull, run and push"
out=$(docker --help 2>&1 </dev/null) || fail "docker --help failed: $out"
grep 'warrant\*' <<<"$out" | sed 's/^/    docker --help: /' || fail "docker --help does not list the warrant plugin"

step "dpkg -r removes every file; dpkg --purge forgets the package"
expect 0 dpkg --root="$root" -r warrant
left=()
while read -r path _; do
  [[ -d $root$path && ! -L $root$path ]] && continue
  if [[ -e $root$path || -L $root$path ]]; then left+=("$path"); fi
done <"$tmp/contents"
((${#left[@]} == 0)) || fail "left behind: ${left[*]}"
expect 0 dpkg --root="$root" --purge warrant
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' warrant 2>/dev/null || true)
[[ -z $status || $status == *not-installed ]] || fail "dpkg still knows warrant: $status"
[[ -z $(find "$root/usr" -mindepth 1 -not -type d 2>/dev/null) ]] || fail "files left under usr/"
echo "    removed and purged: nothing of it is left"

echo
echo "test-deb: OK"
