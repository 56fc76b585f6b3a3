#!/usr/bin/env bash
# Builds {{name}}.wasm: clang against wasi-libc makes a preview1 core module, the
# WASI preview1 reactor adapter turns it into a component. bindings/ is generated
# from wit/ by wit-bindgen c (inflow keeps them in plugins/c/bindings).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
guest=${INFLOW_CACHE:-$HOME/.cache/inflow}/guest
wasm_tools=$(command -v wasm-tools || echo "$guest/venv/bin/wasm-tools")
adapter=$guest/wasi_snapshot_preview1.reactor.wasm
for need in "$wasm_tools" "$adapter" /usr/lib/wasm32-wasi/libc.a; do
  if [[ ! -e $need ]]; then
    echo "build.sh: $need is missing: run scripts/install/guest-toolchains.sh c from an inflow checkout" >&2
    exit 1
  fi
done
clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -Wl,--strip-debug -Wall -Wextra \
  -I bindings -o core.wasm ./*.c bindings/mapping.c bindings/mapping_component_type.o
"$wasm_tools" component new core.wasm --adapt "wasi_snapshot_preview1=$adapter" -o {{name}}.wasm
rm core.wasm
echo "built {{name}}.wasm"
