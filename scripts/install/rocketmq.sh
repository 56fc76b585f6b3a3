#!/usr/bin/env bash
# Pre-fetches everything the RocketMQ rig needs, for every version in tests/rig/versions:
# a JDK (17+) and Maven if missing (Debian packages), the name server / broker / client /
# tools jars from Maven Central into ${INFLOW_CACHE:-$HOME/.cache/inflow}/rocketmq/<version>,
# and the compiled Java test tool. Idempotent and quick when everything is cached.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo/tests/rig/common.sh"

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}

if ! command -v javac >/dev/null || ! command -v mvn >/dev/null || [[ $(java_major) -lt 17 ]]; then
  [[ $(id -u) == 0 ]] || die "a JDK 17+ (javac) and Maven are needed; install openjdk-17-jdk-headless and maven"
  echo "installing a JDK and Maven (apt) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >/dev/null
fi

for version in $(rig_versions); do
  "$repo/tests/rig/rocketmq.sh" fetch "$version"
  "$repo/tests/rig/java.sh" "$version" help >/dev/null
done
