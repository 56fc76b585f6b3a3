#!/usr/bin/env bash
# Installs Debian's Mosquitto broker and clients (mosquitto, mosquitto_pub, mosquitto_sub,
# mosquitto_passwd), openssl (the test certificates of `mosquitto.sh start --secure`) and curl
# (the admin-server e2e test's HTTP client) if missing. The tests run their own Mosquitto (tests/rig/mosquitto.sh), so the distribution's
# service is kept from starting and never left listening on 1883.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

if command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null \
  && command -v mosquitto_passwd >/dev/null && command -v openssl >/dev/null && command -v curl >/dev/null; then
  exit 0
fi
apt_install_quietly mosquitto mosquitto-clients openssl curl
stop_service mosquitto
if [[ -f /run/mosquitto/mosquitto.pid ]]; then
  kill "$(cat /run/mosquitto/mosquitto.pid)" 2>/dev/null || true
fi
echo "mosquitto $(mosquitto -h 2>/dev/null | head -n 1 | awk '{print $3}') installed" >&2
