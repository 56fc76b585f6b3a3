#!/usr/bin/env bash
# Mosquitto on a free loopback port, with its own config, store and log in <statedir>.
#
#   mosquitto.sh start <statedir>   start (anonymous access, persistence on), wait until it
#                                   listens, write <statedir>/env (MQTT=127.0.0.1:P), print MQTT.
#                                   A <statedir> used before gets its old port back, so clients
#                                   can reconnect after a stop / start (outage tests).
#   mosquitto.sh start <statedir> --secure
#                                   the same, but TLS with username/password only: a throwaway CA
#                                   and a server certificate for 127.0.0.1 / localhost (made with
#                                   openssl in <statedir>/tls), a password file with one user,
#                                   anonymous access off; <statedir>/env also gets MQTT_CA (CA PEM),
#                                   MQTT_USER and MQTT_PASSWORD (MQTT is then the TLS port).
#   mosquitto.sh stop <statedir> [--keep-port]
#                                   stop it (SIGTERM saves the persistent sessions), wait for the
#                                   exit; --keep-port keeps its port reserved for the next start
#                                   (an outage), so no other rig takes it meanwhile
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The secure variant's fixed credentials: a throwaway broker on loopback, nothing to protect.
SECURE_USER=inflow
SECURE_PASSWORD=inflow-secret-pw

# Makes <statedir>/tls/{ca.pem,ca.key,server.pem,server.key} once (kept across restarts).
make_tls() {
  local dir="$1/tls"
  command -v openssl >/dev/null || die "openssl is not installed: run scripts/install/mosquitto.sh"
  [[ -f $dir/server.pem && -f $dir/server.key && -f $dir/ca.pem ]] && return 0
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=inflow rig test CA" \
      -keyout ca.key -out ca.pem \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.pem
    rm -f server.csr server.ext ca.srl
  ) >"$dir/openssl.out" 2>&1 || { cat "$dir/openssl.out" >&2; die "openssl could not make the test certificates in $dir"; }
}

cmd_start() {
  local secure=0
  if [[ $# == 2 && $2 == --secure ]]; then secure=1; set -- "$1"; fi
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
    if port_in_use "$port" || ! { reserved_by "$port" "$statedir" || claim_port "$port"; }; then
      die "port $port, which this Mosquitto used before, is taken now; use a new statedir"
    fi
    echo "$statedir" >"$PORT_RESERVATIONS/$port/owner"
  else
    port="$(reserve_ports "$statedir" 0)"
    echo "$port" >"$statedir/mosquitto.port"
  fi
  # `user root`: started as root, mosquitto would otherwise switch to user mosquitto and
  # lose access to the statedir. Queues are large so slow subscribers lose nothing in tests.
  local access="allow_anonymous true"
  if [[ $secure == 1 ]]; then
    make_tls "$statedir"
    command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd is missing: run scripts/install/mosquitto.sh"
    mosquitto_passwd -b -c "$statedir/passwd" "$SECURE_USER" "$SECURE_PASSWORD"
    chmod 600 "$statedir/passwd"
    access="allow_anonymous false
password_file $statedir/passwd
cafile $statedir/tls/ca.pem
certfile $statedir/tls/server.pem
keyfile $statedir/tls/server.key"
  fi
  cat >"$statedir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
$access
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
  if [[ $secure == 1 ]]; then
    printf '%s\n' "MQTT_CA=$statedir/tls/ca.pem" "MQTT_USER=$SECURE_USER" "MQTT_PASSWORD=$SECURE_PASSWORD" >>"$statedir/env"
  fi
  echo "127.0.0.1:$port"
}

cmd_stop() {
  local keep_port=0
  if [[ $# == 2 && $2 == --keep-port ]]; then keep_port=1; set -- "$1"; fi
  [[ $# == 1 ]] || usage
  local statedir
  statedir="$(cd "$1" 2>/dev/null && pwd)" || die "no Mosquitto state in '$1'"
  stop_pidfile "$statedir/mosquitto.pid" mosquitto
  [[ $keep_port == 1 ]] || release_ports "$statedir"
  rm -f "$statedir/env"
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  *) usage ;;
esac
