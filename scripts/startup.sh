#!/usr/bin/env bash
# Start-up time of an inflow binary: from exec to the "inflow running" log line, with
# examples/inflow.toml (its two rules, one with the Rust json-router plugin) against the rig's
# brokers. The first run compiles the plugin into an empty cache; the others load it from there,
# as a restarted service does.
#
#   eval "$(tests/rig/shared.sh up 4.9.8 /tmp/inflow-startup)"; plugins/build.sh rust
#   scripts/startup.sh <inflow-binary> [runs]        (default 5 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: $0 <inflow-binary> [runs]}"
runs="${2:-5}"
: "${INFLOW_TEST_NAMESRV:?not set: start the brokers with tests/rig/shared.sh up (see the top of $0)}"
: "${INFLOW_TEST_MQTT:?not set: start the brokers with tests/rig/shared.sh up}"
: "${INFLOW_TEST_ROCKETMQ_DIR:?not set: start the brokers with tests/rig/shared.sh up}"
plugin=target/plugins/json-router-rust.wasm
[[ -f $plugin ]] || { echo "$plugin is missing: run plugins/build.sh rust" >&2; exit 1; }

work="$(mktemp -d /tmp/inflow-startup.XXXXXX)"
pid=""
cleanup() {
  [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

for topic in device-commands factory-readings; do
  tests/rig/rocketmq.sh create-topic "$INFLOW_TEST_ROCKETMQ_DIR" "$topic" 4 >/dev/null
done
mkdir -p "$work/plugins"
cp "$plugin" "$work/plugins/json-router.wasm"
# The admin server on a free port: another inflow (a test, the quickstart) may hold 9464.
sed -e "s|^namesrv = .*|namesrv = [\"$INFLOW_TEST_NAMESRV\"]|" \
    -e "s|^url = .*|url = \"mqtt://$INFLOW_TEST_MQTT\"|" \
    -e "s|^dir = .*|dir = \"$work/plugins\"\ncache_dir = \"$work/cache\"|" \
    -e "s|^listen = .*|listen = \"127.0.0.1:0\"|" \
    examples/inflow.toml >"$work/inflow.toml"

for run in $(seq 1 "$runs"); do
  : >"$work/log"
  start=$(date +%s%N)
  INFLOW_LOG=info "$bin" run -c "$work/inflow.toml" 2>"$work/log" &
  pid=$!
  until grep -q "inflow running" "$work/log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; echo "inflow exited before it was running" >&2; exit 1; }
    sleep 0.005
  done
  took=$((($(date +%s%N) - start) / 1000000))
  kill -TERM "$pid" && wait "$pid" || true
  pid=""
  cache=warm; ((run == 1)) && cache="cold (plugin compiled)"
  echo "run $run: ${took} ms to \"inflow running\", plugin cache $cache"
done
