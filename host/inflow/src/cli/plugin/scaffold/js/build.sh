#!/usr/bin/env bash
# Builds {{name}}.wasm with componentize-js, pinned by package-lock.json (npm ci on first use).
# WASI random, clocks and HTTP are left out; stdio stays, as an uncaught exception's text
# goes to stderr, which inflow puts into the trap's error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npx --no-install componentize-js app.js --wit wit --world-name mapping \
  --disable random clocks http fetch-event -o {{name}}.wasm
echo "built {{name}}.wasm"
