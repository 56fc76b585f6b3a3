#!/usr/bin/env bash
# Builds a release operators can install: inflow for x86_64-unknown-linux-musl (one static
# binary, runs on any x86-64 Linux whatever its libc) with the dist profile (fat LTO, no debug
# info, symbol names kept for backtraces), packs it with the systemd unit, the example config,
# the README, the install notes and the licence into
#   target/release-dist/inflow-<version>-x86_64-linux.tar.gz
# then runs the quickstart against that very binary. Takes many minutes (fat LTO); not part of
# scripts/test.sh.
#
#   scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
step() { printf '\n==> %s  (%s)\n' "$*" "$(date +%T)"; }

step "install: the musl target, musl-gcc and make (ring, wasmtime and jemalloc build C for it)"
rustup target add "$target"
if ! command -v musl-gcc >/dev/null || ! command -v make >/dev/null; then
  sudo=""; ((EUID)) && sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq musl-tools make
fi

step "build: cargo build --profile dist -p inflow --target $target"
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --locked --profile dist -p inflow --target "$target"
bin="target/$target/dist/inflow"
# A dynamic binary would run only beside a compatible libc: stop the release. Rust's musl target
# links a static PIE (kept for ASLR), of which ldd says "statically linked"; a dynamic one lists
# its libraries as "name => path".
linked=$(ldd "$bin" 2>&1 || true)
echo "ldd: $linked"
if [[ $linked == *"=>"* ]]; then
  echo "$bin is dynamically linked" >&2; exit 1
fi
"$bin" --version
version=$("$bin" --version | awk '{print $2}')

name="inflow-$version-x86_64-linux"
out=target/release-dist
stage="$out/$name"
step "package: $out/$name.tar.gz"
rm -rf "$stage" && mkdir -p "$stage"
install -m 0755 "$bin" "$stage/inflow"
install -m 0644 examples/inflow.service examples/inflow.toml README.md LICENSE "$stage/"
install -m 0644 examples/release/INSTALL.md "$stage/INSTALL.md"
tar -C "$out" --owner=0 --group=0 -czf "$out/$name.tar.gz" "$name"
ls -l "$stage/inflow" "$out/$name.tar.gz"

step "quickstart against $stage/inflow"
INFLOW_BIN="$PWD/$stage/inflow" examples/quickstart.sh
