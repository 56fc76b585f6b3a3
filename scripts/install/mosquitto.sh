#!/usr/bin/env bash
# Installs Debian's Mosquitto broker and clients (mosquitto, mosquitto_pub, mosquitto_sub,
# mosquitto_passwd), openssl (the test certificates of `mosquitto.sh start --secure`) and curl
# (the admin-server e2e test's HTTP client) if missing. The tests run their own Mosquitto (tests/rig/mosquitto.sh), so the distribution's
# service is kept from starting and never left listening on 1883.
set -euo pipefail

if command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null \
  && command -v mosquitto_passwd >/dev/null && command -v openssl >/dev/null && command -v curl >/dev/null; then
  exit 0
fi
[[ $(id -u) == 0 ]] || { echo "error: installing mosquitto needs root (apt-get); run as root or install mosquitto mosquitto-clients openssl curl" >&2; exit 1; }

# Debian's maintainer scripts ask policy-rc.d before starting a service; 101 = "not now".
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  own_policy=1
fi
cleanup() { if [[ $own_policy == 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends mosquitto mosquitto-clients openssl curl >/dev/null

# Should a service manager have started it anyway, stop it.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
  systemctl disable mosquitto >/dev/null 2>&1 || true
fi
if [[ -f /run/mosquitto/mosquitto.pid ]]; then
  kill "$(cat /run/mosquitto/mosquitto.pid)" 2>/dev/null || true
fi
echo "mosquitto $(mosquitto -h 2>/dev/null | head -n 1 | awk '{print $3}') installed" >&2
