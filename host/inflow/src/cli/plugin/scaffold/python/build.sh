#!/usr/bin/env bash
# Builds {{name}}.wasm with componentize-py (the bindings are generated from wit/ on the way).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
componentize_py=$(command -v componentize-py || echo "${INFLOW_CACHE:-$HOME/.cache/inflow}/guest/venv/bin/componentize-py")
if [[ ! -x $componentize_py ]]; then
  echo "build.sh: no componentize-py: run scripts/install/guest-toolchains.sh python from an inflow checkout, or pip install componentize-py==0.25.1" >&2
  exit 1
fi
"$componentize_py" -d wit -w mapping componentize app -o {{name}}.wasm
echo "built {{name}}.wasm"
