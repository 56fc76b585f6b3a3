#!/usr/bin/env bash
# Mosquitto on a free loopback port, with its own config, store and log in <statedir>.
#
#   mosquitto.sh start <statedir>   start (anonymous access, persistence on), wait until it
#                                   listens, write <statedir>/env (MQTT=127.0.0.1:P), print MQTT.
#                                   A <statedir> used before gets its old port back, so clients
#                                   can reconnect after a stop / start (outage tests).
#   mosquitto.sh stop <statedir>    stop it (SIGTERM saves the persistent sessions), wait for the exit
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd_start() {
  [[ $# == 1 ]] || usage
  local statedir port
  mkdir -p "$1"
  statedir="$(cd "$1" && pwd)"
  command -v mosquitto >/dev/null || die "mosquitto is not installed: run scripts/install/mosquitto.sh"
  if pid_alive "$(cat "$statedir/mosquitto.pid" 2>/dev/null || true)"; then
    die "a Mosquitto already runs in $statedir; stop it first: $0 stop $statedir"
  fi
  if [[ -f $statedir/mosquitto.port ]]; then
    port="$(cat "$statedir/mosquitto.port")"
    mkdir -p "$PORT_RESERVATIONS"
    if port_in_use "$port" || ! claim_port "$port"; then
      die "port $port, which this Mosquitto used before, is taken now; use a new statedir"
    fi
    echo "$statedir" >"$PORT_RESERVATIONS/$port/owner"
  else
    port="$(reserve_ports "$statedir" 0)"
    echo "$port" >"$statedir/mosquitto.port"
  fi
  # `user root`: started as root, mosquitto would otherwise switch to user mosquitto and
  # lose access to the statedir. Queues are large so slow subscribers lose nothing in tests.
  cat >"$statedir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
user $(id -un)
persistence true
persistence_location $statedir/
autosave_interval 1
max_queued_messages 1000000
log_dest file $statedir/mosquitto.log
log_type error
log_type warning
log_type notice
connection_messages true
CONF
  nohup mosquitto -c "$statedir/mosquitto.conf" >>"$statedir/mosquitto.out" 2>&1 </dev/null &
  echo $! >"$statedir/mosquitto.pid"
  local deadline=$((SECONDS + 20))
  until port_in_use "$port"; do
    if ! pid_alive "$(cat "$statedir/mosquitto.pid")" || ((SECONDS >= deadline)); then
      show_log_tail "$statedir/mosquitto.log"
      show_log_tail "$statedir/mosquitto.out"
      stop_pidfile "$statedir/mosquitto.pid" mosquitto
      release_ports "$statedir"
      die "mosquitto did not start listening on 127.0.0.1:$port"
    fi
    sleep 0.1
  done
  echo "MQTT=127.0.0.1:$port" >"$statedir/env"
  echo "127.0.0.1:$port"
}

cmd_stop() {
  [[ $# == 1 ]] || usage
  local statedir
  statedir="$(cd "$1" 2>/dev/null && pwd)" || die "no Mosquitto state in '$1'"
  stop_pidfile "$statedir/mosquitto.pid" mosquitto
  release_ports "$statedir"
  rm -f "$statedir/env"
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  *) usage ;;
esac
