#!/usr/bin/env bash
# Builds the example mapping plugin (json-router) in each language, each with
# its own ordinary toolchain, into target/plugins/json-router-<lang>.wasm.
#
#   plugins/build.sh [rust|python|js|c|all]...      (default: all)
#
# Installs missing toolchains first (scripts/install/guest-toolchains.sh).
# A language whose sources, WIT and toolchain version are unchanged since its
# last build is skipped (Rust is left to cargo, which is quick when nothing
# changed). Outputs are written beside and renamed into place, so the folder
# can be watched by inflow itself.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
plugins=$repo/plugins
wit=$repo/wit/mapping
out=$repo/target/plugins
work=$repo/target/guest-build
guest=${INFLOW_CACHE:-$HOME/.cache/inflow}/guest
mkdir -p "$out" "$work"

# publish <built file> <lang>: atomic rename into target/plugins, unless the
# same bytes are there already (a watcher would reload an unchanged plugin).
publish() {
  local built=$1 lang=$2 dest=$out/json-router-$2.wasm
  if cmp -s "$built" "$dest"; then
    echo "plugins/build.sh: $lang unchanged (${dest#"$repo"/})"
    return
  fi
  cp "$built" "$dest.partial"
  mv "$dest.partial" "$dest"
  echo "plugins/build.sh: $lang -> ${dest#"$repo"/} ($(stat -c %s "$dest") bytes)"
}

# up_to_date <lang> <tool version> <input files...>: true when the output
# exists and was built from exactly these inputs (plus the WIT and this
# script); else remembers the stamp for record_stamp.
up_to_date() {
  local lang=$1 version=$2
  shift 2
  stamp_file=$work/$lang.inputs
  stamp=$({ echo "$version"; sha256sum "$@" "$wit"/*.wit "${BASH_SOURCE[0]}"; } | sha256sum | cut -d' ' -f1)
  if [[ -f $out/json-router-$lang.wasm && -f $stamp_file && $(cat "$stamp_file") == "$stamp" ]]; then
    echo "plugins/build.sh: $lang up to date (target/plugins/json-router-$lang.wasm)"
    return 0
  fi
  return 1
}

record_stamp() { echo "$stamp" >"$stamp_file"; }

build_rust() {
  CARGO_TARGET_DIR=$repo/target/guest-rust cargo build --quiet --release --locked \
    --manifest-path "$plugins/rust/Cargo.toml" --target wasm32-wasip2
  publish "$repo/target/guest-rust/wasm32-wasip2/release/json_router.wasm" rust
}

build_python() {
  local tool=$guest/venv/bin/componentize-py
  up_to_date python "$("$tool" --version)" "$plugins/python/app.py" && return
  (cd "$plugins/python" && "$tool" -d "$wit" -w mapping componentize app -o "$work/python.wasm")
  publish "$work/python.wasm" python
  record_stamp
}

build_js() {
  local js=$plugins/js
  up_to_date js "$(cat "$js/package-lock.json")" "$js/app.js" && return
  # WASI features off but stdio: the plugin needs no clock, random or HTTP, while
  # stderr is where the engine writes an uncaught exception (inflow keeps its
  # tail for the trap report; stdout is discarded).
  (cd "$js" && npx --no-install componentize-js app.js --wit "$wit" --world-name mapping \
    --disable random clocks http fetch-event -o "$work/js.wasm")
  publish "$work/js.wasm" js
  record_stamp
}

build_c() {
  local c=$plugins/c bindings=$plugins/c/bindings
  local wasm_tools=$guest/venv/bin/wasm-tools
  up_to_date c "$("$wasm_tools" --version) $(clang --version | head -1)" \
    "$c"/*.c "$c"/*.h "$bindings"/* && return
  # The bindings are committed (plugins/c/check-bindings.sh keeps them in step
  # with the WIT); wasi-libc (preview1) core module, then the reactor adapter
  # turns it into a component importing WASI preview2, as inflow expects.
  clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -Wl,--strip-debug -Wall -Wextra -Werror \
    -I "$bindings" -o "$work/c-core.wasm" \
    "$c"/*.c "$bindings/mapping.c" "$bindings/mapping_component_type.o"
  "$wasm_tools" component new "$work/c-core.wasm" \
    --adapt "wasi_snapshot_preview1=$guest/wasi_snapshot_preview1.reactor.wasm" -o "$work/c.wasm"
  publish "$work/c.wasm" c
  record_stamp
}

languages=("$@")
((${#languages[@]})) && [[ ${languages[*]} != all ]] || languages=(rust python js c)
for lang in "${languages[@]}"; do
  case $lang in
    rust | python | js | c) ;;
    *)
      echo "plugins/build.sh: unknown language '$lang'; use rust, python, js, c or all" >&2
      exit 2
      ;;
  esac
done
"$repo/scripts/install/guest-toolchains.sh" "${languages[@]}"
for lang in "${languages[@]}"; do
  "build_$lang"
done
