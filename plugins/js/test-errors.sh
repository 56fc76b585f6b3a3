#!/usr/bin/env bash
# A JavaScript exception must reach inflow's error: builds test/throws.js with
# the flags plugins/build.sh and the guide use and checks what `inflow plugin
# test` reports: with the guide's catch pattern the TypeError's message and
# stack; escaping the export, a trap carrying the engine's stderr (the stack),
# not only "unreachable".
#
#   plugins/js/test-errors.sh     (after `cargo build --release -p inflow`; installs componentize-js)
set -euo pipefail

js=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$js/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$repo/scripts/install/guest-toolchains.sh" js >/dev/null
(cd "$js" && npx --no-install componentize-js test/throws.js --wit "$repo/wit/mapping" --world-name mapping \
  --disable random clocks http fetch-event -o "$out/throws.wasm" >/dev/null)
# One message caught by the guide's pattern, one escaping: plugin test exits 1 (both fail) and
# prints each result.
if "$repo/target/release/inflow" plugin test "$out/throws.wasm" \
  --message '[{"body": "caught"}, {"body": "escaped"}]' >"$out/stdout" 2>"$out/stderr"; then
  echo "test-errors: FAIL: the throwing plugin mapped the messages" >&2
  exit 1
fi
# check <jq path> <text>: the result at that path contains the text.
check() {
  if ! jq -e --arg text "$2" "$1 | strings | contains(\$text)" "$out/stdout" >/dev/null; then
    echo "test-errors: FAIL: $1 does not contain \"$2\":" >&2
    cat "$out/stdout" "$out/stderr" >&2
    exit 1
  fi
}
check '.[0].error' 'TypeError: '
check '.[0].error' 'body.reading is null'
check '.[0].error' 'readCelsius@'
check '.[1].failure' 'trapped'
check '.[1].failure' "the plugin's stderr"
check '.[1].failure' 'mapMessage'
echo "test-errors: ok: caught: $(jq -r '.[0].error' "$out/stdout" | cut -c1-160)"
echo "test-errors: ok: escaped: $(jq -r '.[1].failure' "$out/stdout" | cut -c1-160)"
