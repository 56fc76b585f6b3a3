#!/usr/bin/env bash
# inflow quickstart: on a fresh machine, start a RocketMQ and a Mosquitto (the test rig, loopback
# only), build inflow and the Rust example plugin, run inflow with examples/inflow.toml (one rule
# with the built-in mapping, one with the json-router plugin), send a few messages with
# `inflow send`, show them arriving over MQTT with mosquitto_sub, then stop everything.
#
#   examples/quickstart.sh [--keep] [rocketmq-version]   (default: the first line of tests/rig/versions)
#   INFLOW_BIN=path/to/inflow examples/quickstart.sh   runs that binary (e.g. a release) instead of building one
#
# --keep leaves the brokers and inflow running and prints the console's address (the admin
# server's page); Ctrl-C stops everything.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
keep=0
if [[ ${1:-} == --keep ]]; then
  keep=1
  shift
fi
version="${1:-$(grep -v '^#' tests/rig/versions | awk 'NF {print $1; exit}')}"
work="$(mktemp -d /tmp/inflow-quickstart.XXXXXX)"
inflow_pid="" sub_pid=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  say "stopping everything"
  [[ -n $sub_pid ]] && kill "$sub_pid" 2>/dev/null || true
  if [[ -n $inflow_pid ]] && kill -0 "$inflow_pid" 2>/dev/null; then
    kill -TERM "$inflow_pid"
    wait "$inflow_pid" && echo "inflow exited 0 after SIGTERM" || echo "inflow exited with $?"
  fi
  tests/rig/shared.sh down "$work/rig" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "installing what is missing (Mosquitto, JDK + Maven, RocketMQ $version jars, Rust wasm target)"
scripts/install/mosquitto.sh
scripts/install/rocketmq.sh
if [[ -n ${INFLOW_BIN:-} ]]; then
  say "using $INFLOW_BIN ($("$INFLOW_BIN" --version)); building the Rust example plugin"
else
  say "building inflow and the Rust example plugin"
  cargo build --release -p inflow
fi
plugins/build.sh rust

say "starting RocketMQ $version and Mosquitto on loopback"
eval "$(tests/rig/shared.sh up "$version" "$work/rig")"
echo "RocketMQ name server $INFLOW_TEST_NAMESRV, Mosquitto $INFLOW_TEST_MQTT"
inflow="${INFLOW_BIN:-target/release/inflow}"
for topic in device-commands factory-readings; do
  tests/rig/rocketmq.sh create-topic "$work/rig/rocketmq" "$topic" 4 >/dev/null
done

# The example config, pointed at these brokers and a plugin folder holding the Rust plugin.
mkdir -p "$work/plugins"
cp target/plugins/json-router-rust.wasm "$work/plugins/.json-router.wasm.tmp"
mv "$work/plugins/.json-router.wasm.tmp" "$work/plugins/json-router.wasm"
sed -e "s|^namesrv = .*|namesrv = [\"$INFLOW_TEST_NAMESRV\"]|" \
    -e "s|^url = .*|url = \"mqtt://$INFLOW_TEST_MQTT\"|" \
    -e "s|^dir = .*|dir = \"$work/plugins\"|" \
    examples/inflow.toml >"$work/inflow.toml"
"$inflow" check -c "$work/inflow.toml"

say "subscribing: mosquitto_sub -V mqttv5 -t 'devices/#' -t 'factory/#'"
mqtt_port="${INFLOW_TEST_MQTT##*:}"
mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -V mqttv5 -q 1 -t 'devices/#' -t 'factory/#' \
  -F 'MQTT  %t  qos=%q  %p  %P' >"$work/received.txt" &
sub_pid=$!

say "starting inflow"
INFLOW_LOG=info "$inflow" run -c "$work/inflow.toml" 2>"$work/inflow.log" &
inflow_pid=$!
sleep 3

say "sending messages with inflow send"
send() { "$inflow" send --namesrv "$INFLOW_TEST_NAMESRV" "$@"; }
send --topic device-commands --tag cmd --keys dev1 --property mqttSecondTopic=/room1/lamp --body '{"on":true}'
send --topic device-commands --property mqttSecondTopic=/room2/heater --property qoslevel=2 \
     --property 'mqtt5UserProperty=[{"key":"source","value":"quickstart"}]' --property mqtt5ContentType=application/json \
     --body '{"target":21}'
send --topic factory-readings --tag reading --property site=plant-a --body '{"device":"press-7","temp":21.5,"unit":"C"}'
send --topic factory-readings --tag reading --property site=plant-b --body '{"device":"oven-2","temp":120}'

say "what arrived over MQTT (the plugin drops oven-2: 120 is outside its filter)"
for _ in $(seq 1 30); do
  [[ $(wc -l <"$work/received.txt") -ge 4 ]] && break
  sleep 1
done
sleep 1
cat "$work/received.txt"
say "inflow's log"
cat "$work/inflow.log"

if ((keep)); then
  admin="$(sed -n 's/^listen = "\([^"]*\)".*/\1/p' "$work/inflow.toml")"
  say "the console: http://$admin/   (inflow's log: $work/inflow.log; Ctrl-C stops everything)"
  # Background jobs of a script ignore Ctrl-C: the EXIT trap stops them.
  wait "$inflow_pid"
fi
