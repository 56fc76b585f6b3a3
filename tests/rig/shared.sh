#!/usr/bin/env bash
# The shared brokers of one test run: a RocketMQ of one version and a Mosquitto.
#
#   shared.sh up <version> <statedir>   start both (under <statedir>/rocketmq, <statedir>/mosquitto)
#                                       and print the exports the Rust harness reads:
#                                         eval "$(tests/rig/shared.sh up 4.9.8 "$dir")"
#   shared.sh down <statedir>           stop both (whatever of them runs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
  up)
    [[ $# == 3 ]] || die "usage: $0 up <version> <statedir>"
    version="$2"; statedir="$3"
    mkdir -p "$statedir"
    statedir="$(cd "$statedir" && pwd)"
    "$RIG_DIR/rocketmq.sh" start "$version" "$statedir/rocketmq" >/dev/null
    if ! "$RIG_DIR/mosquitto.sh" start "$statedir/mosquitto" >/dev/null; then
      "$RIG_DIR/rocketmq.sh" stop "$statedir/rocketmq" || true
      die "Mosquitto did not start"
    fi
    # shellcheck disable=SC1091
    NAMESRV="$(source "$statedir/rocketmq/env" && echo "$NAMESRV")"
    MQTT="$(source "$statedir/mosquitto/env" && echo "$MQTT")"
    echo "export INFLOW_TEST_ROCKETMQ_VERSION=$version"
    echo "export INFLOW_TEST_NAMESRV=$NAMESRV"
    echo "export INFLOW_TEST_ROCKETMQ_DIR=$statedir/rocketmq"
    echo "export INFLOW_TEST_MQTT=$MQTT"
    ;;
  down)
    [[ $# == 2 ]] || die "usage: $0 down <statedir>"
    status=0
    if [[ -f $2/mosquitto/mosquitto.conf ]]; then "$RIG_DIR/mosquitto.sh" stop "$2/mosquitto" || status=1; fi
    if [[ -f $2/rocketmq/rig.state ]]; then "$RIG_DIR/rocketmq.sh" stop "$2/rocketmq" || status=1; fi
    exit $status
    ;;
  *)
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
