#!/usr/bin/env bash
# Installs Debian's Prometheus server and promtool if missing: the admin e2e tests start their
# own Prometheus on a free loopback port to scrape inflow, and lint the exposition and
# docs/alerts.yml with promtool. The distribution's service is kept from starting.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
apt_install_quietly prometheus
stop_service prometheus
echo "$(prometheus --version 2>&1 | head -n 1) installed" >&2
