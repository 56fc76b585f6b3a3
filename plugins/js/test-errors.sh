#!/usr/bin/env bash
# A JavaScript exception must reach inflow's error with its text: builds
# test/throws.js with the flags plugins/build.sh uses and checks that
# `inflow plugin test` names the TypeError (not only "unreachable").
#
#   plugins/js/test-errors.sh     (after `cargo build --release -p inflow` and `npm ci` here)
set -euo pipefail

js=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$js/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd "$js" && npx --no-install componentize-js test/throws.js --wit "$repo/wit/mapping" --world-name mapping \
  --disable random clocks http fetch-event -o "$out/throws.wasm" >/dev/null)
if "$repo/target/release/inflow" plugin test "$out/throws.wasm" --message '{"body": "{}"}' 2>"$out/stderr"; then
  echo "test-errors: FAIL: the throwing plugin mapped the message" >&2
  exit 1
fi
if grep -q "TypeError" "$out/stderr"; then
  echo "test-errors: ok: $(grep -o 'trapped: .*' "$out/stderr" | cut -c1-200)"
else
  echo "test-errors: FAIL: the exception's text is missing:" >&2
  cat "$out/stderr" >&2
  exit 1
fi
