#!/usr/bin/env bash
# The C bindings in plugins/c/bindings are generated from wit/mapping by
# wit-bindgen and committed, so a C toolchain needs no generator (compiling
# wit-bindgen-cli takes minutes). This regenerates them into a temp folder and
# fails if they differ from the committed ones.
#
#   plugins/c/check-bindings.sh           check (skipped, exit 0, without the generator)
#   plugins/c/check-bindings.sh --write   regenerate in place after a WIT change
#
# The generator: `wit-bindgen` on PATH, else the one
# `scripts/install/guest-toolchains.sh c-bindgen` installs.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bindings=$repo/plugins/c/bindings
readonly WIT_BINDGEN_VERSION=$(sed -n 's/^readonly WIT_BINDGEN_CLI_VERSION=//p' "$repo/scripts/install/guest-toolchains.sh")

generator=$(command -v wit-bindgen || echo "${INFLOW_CACHE:-$HOME/.cache/inflow}/guest/cargo/bin/wit-bindgen")
if [[ ! -x $generator ]]; then
  echo "check-bindings: skipped: no wit-bindgen (scripts/install/guest-toolchains.sh c-bindgen installs it)"
  exit 0
fi
if [[ $("$generator" --version) != *" $WIT_BINDGEN_VERSION" ]]; then
  echo "check-bindings: skipped: $("$generator" --version) is not the pinned $WIT_BINDGEN_VERSION"
  exit 0
fi

fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
"$generator" c "$repo/wit/mapping" --world mapping --out-dir "$fresh" >/dev/null
if [[ ${1-} == --write ]]; then
  rm -rf "$bindings" && mkdir -p "$bindings" && cp "$fresh"/* "$bindings"/
  echo "check-bindings: wrote ${bindings#"$repo"/}"
elif diff -r "$bindings" "$fresh"; then
  echo "check-bindings: plugins/c/bindings match wit/mapping"
else
  echo "check-bindings: plugins/c/bindings are stale: run plugins/c/check-bindings.sh --write" >&2
  exit 1
fi
