#!/usr/bin/env bash
# Build the Debian package (`make deb`) from an existing release binary:
#
#   1. generates into $TARGET/release/deb-assets/: the man pages (`warrant man
#      --out-dir`), the bash/zsh/fish completions (`warrant completions SHELL`) and
#      the docker CLI plugin link docker-warrant -> ../../../bin/warrant (relative:
#      it resolves to /usr/bin/warrant from /usr/libexec/docker/cli-plugins/);
#   2. runs `cargo deb --no-build` with [package.metadata.deb] of Cargo.toml.
#
# Prints the path of the .deb on its last line.
#
#   CARGO_TARGET_DIR   as for cargo (default: target)
#   CARGO              cargo command (default: cargo)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
target=${CARGO_TARGET_DIR:-target}
[[ $target == /* ]] || target=$repo/$target
bin=$target/release/warrant
cargo=${CARGO:-cargo}
die() { echo "deb/build.sh: $*" >&2; exit 2; }

[[ -x $bin ]] || die "no release binary at $bin: run 'make build' first"
$cargo deb --version >/dev/null 2>&1 \
  || die "cargo-deb is missing: cargo install cargo-deb --locked (bash .ci/run installs it)"

assets=$target/release/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --out-dir "$assets/man"
gzip -9n "$assets/man"/*.1   # Debian policy 12.1: compressed, no time stamp
"$bin" completions bash >"$assets/completions/warrant.bash"
"$bin" completions zsh >"$assets/completions/_warrant"
"$bin" completions fish >"$assets/completions/warrant.fish"
ln -s ../../../bin/warrant "$assets/docker-warrant"
ls "$assets/man"/warrant.1.gz >/dev/null || die "warrant man wrote no warrant.1"

out=$target/debian
mkdir -p "$out"
$cargo deb --no-build --locked --output "$out" >/dev/null
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
deb=$(ls -t "$out"/warrant_"$version"*_amd64.deb | head -n1)
echo "$deb"
