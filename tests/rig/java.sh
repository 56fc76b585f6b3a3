#!/usr/bin/env bash
# Runs tests/rig/java/RmqTool.java (producer / consumer / admin on the official RocketMQ
# Java client) with the client jars of a rig version:
#   java.sh <version> <subcommand> [options]      (java.sh <version> help lists them)
#   java.sh <version> bridge [options]            tests/rig/java/Bridge.java: RocketMQ -> MQTT with
#                                                 Eclipse Paho, the benchmark's comparison
# The sources are compiled once per version and source hash into the cache, so repeated calls
# skip javac. Extra JVM flags: RMQTOOL_JAVA_OPTS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PAHO_VERSION=1.2.5

[[ $# -ge 1 ]] || die "usage: $0 <version> <subcommand> [options]   (versions: $(rig_versions | paste -sd' '))"
version="$1"; shift
lib="$INFLOW_CACHE/rocketmq/$version/lib"
[[ -f $lib/.complete ]] || "$RIG_DIR/rocketmq.sh" fetch "$version"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
JAVAC="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
main=RmqTool
sources=("$RIG_DIR/java/RmqTool.java")
classpath="$lib/*"
if [[ ${1:-} == bridge ]]; then
  # The bridge reuses RmqTool's option parsing and consumer set-up, so both compile together.
  paho="$INFLOW_CACHE/paho/$PAHO_VERSION/lib"
  if [[ ! -f $paho/.complete ]]; then
    mkdir -p "$(dirname "$paho")"
    exec 9>"$(dirname "$paho")/.fetch.lock"
    flock 9
    resolve_jars "$paho" "org.eclipse.paho:org.eclipse.paho.client.mqttv3:$PAHO_VERSION"
    exec 9>&-
  fi
  main=Bridge
  sources+=("$RIG_DIR/java/Bridge.java")
  classpath="$classpath:$paho/*"
fi
classes="$INFLOW_CACHE/rocketmq/$version/${main,,}-$(cat "${sources[@]}" | sha256sum | cut -c1-16)"
if [[ ! -f $classes/$main.class ]]; then
  command -v "$JAVAC" >/dev/null || die "javac (JDK 17+) is not installed: apt-get install -y openjdk-17-jdk-headless"
  tmp="$(mktemp -d "$classes.XXXXXX")"
  "$JAVAC" -nowarn -XDsuppressNotes -encoding UTF-8 -d "$tmp" -cp "$classpath" "${sources[@]}" || { rm -rf "$tmp"; die "$main.java does not compile against RocketMQ $version"; }
  # Another caller may have won the race; either copy is the same.
  mv -T "$tmp" "$classes" 2>/dev/null || rm -rf "$tmp"
fi

# The client writes its own logs under user.home/logs: keep them out of $HOME. Logback
# (on the 4.x classpath through rocketmq-tools) logs to stdout unless configured: send only
# its errors, to stderr, so stdout stays JSON.
tool_home="$INFLOW_CACHE/rocketmq/tool-home"
mkdir -p "$tool_home"
if [[ ! -f $tool_home/logback.xml ]]; then
  cat >"$tool_home/logback.xml.$$" <<'XML'
<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>rmqtool-log: %level %logger{20} - %msg%n</pattern></encoder>
  </appender>
  <root level="ERROR"><appender-ref ref="STDERR"/></root>
</configuration>
XML
  mv "$tool_home/logback.xml.$$" "$tool_home/logback.xml"
fi
# shellcheck disable=SC2086
exec "$JAVA" -Xms64m -Xmx512m ${RMQTOOL_JAVA_OPTS:-} \
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
  -Duser.home="$tool_home" -Drocketmq.client.logUseSlf4j=false -Dlogback.configurationFile="$tool_home/logback.xml" \
  -cp "$classes:$classpath" "$main" "$@"
