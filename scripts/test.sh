#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
#
# Installs what is missing (Mosquitto, the RocketMQ jars, the guest toolchains, headless
# Chromium with Selenium for the console test),
# builds everything in release, runs the unit tests, builds the example plugins,
# then runs the end-to-end tests once per RocketMQ version against a real name
# server + broker and a real Mosquitto, all on loopback.
#
#   scripts/test.sh                 # everything
#   INFLOW_TEST_VERSIONS=4.9.8 scripts/test.sh   # one broker version only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export INFLOW_CACHE=${INFLOW_CACHE:-$HOME/.cache/inflow}
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s  (%s)\n' "$*" "$(date +%T)"; }

step "install: mosquitto, prometheus, rocketmq jars, guest toolchains, browser"
scripts/install/mosquitto.sh
scripts/install/prometheus.sh
scripts/install/rocketmq.sh
scripts/install/guest-toolchains.sh
scripts/install/browser.sh

step "build (release)"
cargo build --release --workspace --bins

step "unit tests"
cargo test --release --workspace --exclude inflow-e2e

step "example plugins"
plugins/build.sh all

# Each broker version gets fresh brokers, stopped however the run ends.
state=$(mktemp -d "${TMPDIR:-/tmp}/inflow-test.XXXXXX")
trap 'tests/rig/shared.sh down "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

versions=${INFLOW_TEST_VERSIONS:-$(awk '!/^#/ && NF {print $1}' tests/rig/versions)}
failed=()
for version in $versions; do
    step "end-to-end tests against RocketMQ $version"
    tests/rig/shared.sh down "$state" >/dev/null 2>&1 || true
    rm -rf "${state:?}"/*
    eval "$(tests/rig/shared.sh up "$version" "$state")"
    # Every test binary runs even when one fails, and so does every version.
    cargo test --release -p inflow-e2e --no-fail-fast -- --test-threads=2 || failed+=("$version")
done
if ((${#failed[@]})); then
    step "end-to-end tests failed against RocketMQ ${failed[*]}"
    exit 1
fi
step "all tests passed"
