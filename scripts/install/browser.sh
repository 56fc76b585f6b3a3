#!/usr/bin/env bash
# Installs what the console's browser test (tests/e2e/console.rs) drives: Debian's headless
# Chromium and its WebDriver (chromium, chromium-driver), and Selenium from PyPI in the venv
# $INFLOW_CACHE/console/venv. Idempotent: what is there already costs a check.
# Selenium is given both paths by the test, so Selenium Manager downloads nothing.
set -euo pipefail

readonly SELENIUM_VERSION=4.51.0

venv=${INFLOW_CACHE:-$HOME/.cache/inflow}/console/venv

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  [[ $(id -u) == 0 ]] || { echo "error: installing chromium needs root (apt-get); run as root or install chromium chromium-driver" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

if [[ ! -x $venv/bin/pip ]]; then
  python3 -m venv "$venv"
fi
if [[ $("$venv/bin/pip" show selenium 2>/dev/null | sed -n 's/^Version: //p') != "$SELENIUM_VERSION" ]]; then
  "$venv/bin/pip" install --disable-pip-version-check --quiet "selenium==$SELENIUM_VERSION"
fi
