#!/usr/bin/env bash
# Real Apache RocketMQ (name server + one broker) on loopback, for tests, benchmarks
# and the quickstart. Jars come from Maven Central, cached outside the repo.
#
#   rocketmq.sh fetch <version>                        resolve the jars into $INFLOW_CACHE/rocketmq/<version>/lib
#   rocketmq.sh start <version> <statedir> [--acl] [--two-namesrv]
#                                                      start, wait until ready, write <statedir>/env, print NAMESRV;
#                                                      --two-namesrv: a second name server (NAMESRV2), the broker registers with both
#   rocketmq.sh stop <statedir>                        stop broker and name server, wait for both to exit
#   rocketmq.sh restart-broker <statedir>              stop and start the broker on the same ports and store
#   rocketmq.sh stop-broker <statedir>                 stop only the broker (outage tests) ...
#   rocketmq.sh start-broker <statedir>                ... and start it again on the same ports and store
#   rocketmq.sh create-topic <statedir> <topic> [queues]   create (or update) a topic on the broker (default 4 queues)
#   rocketmq.sh kill-namesrv <statedir> <1|2>          kill -9 one name server (fail-over tests)
#
# <statedir>/env (shell syntax): NAMESRV, (NAMESRV2,) BROKER, BROKER_NAME, CLUSTER, VERSION, ROCKETMQ_LIB,
# and with --acl ACCESS_KEY, SECRET_KEY (an admin account; ACL is enforced for everyone else), and on
# 4.x LIMITED_ACCESS_KEY, LIMITED_SECRET_KEY, LIMITED_GROUP: an account that may consume only as
# that group.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
CLUSTER_NAME="InflowCluster"
BROKER_NAME="inflow-broker"
ACL_ACCESS_KEY="inflowAdmin"
ACL_SECRET_KEY="inflow-secret-0123"
LIMITED_ACCESS_KEY="inflowLimited"
LIMITED_SECRET_KEY="inflow-limited-0123"
LIMITED_GROUP="inflow-acl-allowed"
READY_TIMEOUT="${INFLOW_RIG_READY_TIMEOUT:-120}"
# JDK 17 closes the internals RocketMQ's mmap and Netty code reach into.
JDK17_OPENS=(
  --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
)

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

lib_dir() { echo "$INFLOW_CACHE/rocketmq/$1/lib"; }
server_lib_dir() { echo "$INFLOW_CACHE/rocketmq/$1/server-lib"; }

check_version() {
  [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "'$1' is not a RocketMQ version; the rig serves: $(rig_versions | paste -sd' ')"
}

# ---- fetch ------------------------------------------------------------------

# rocketmq_jars <dest> <version> <artifact>...: org.apache.rocketmq:<artifact>:<version> and
# their runtime dependencies into <dest>.
rocketmq_jars() {
  local dest="$1" version="$2" artifact coords=(); shift 2
  for artifact in "$@"; do coords+=("org.apache.rocketmq:$artifact:$version"); done
  resolve_jars "$dest" "${coords[@]}"
}

cmd_fetch() {
  [[ $# == 1 ]] || usage
  local version="$1" root
  check_version "$version"
  root="$INFLOW_CACHE/rocketmq/$version"
  [[ -f $(lib_dir "$version")/.complete && -f $(server_lib_dir "$version")/.complete ]] && return 0
  mkdir -p "$root"
  # One fetch per version at a time; the others wait, then find it done.
  exec 9>"$root/.fetch.lock"
  flock 9
  rocketmq_jars "$(lib_dir "$version")" "$version" rocketmq-client rocketmq-tools
  rocketmq_jars "$(server_lib_dir "$version")" "$(server_version "$version")" rocketmq-namesrv rocketmq-broker
  exec 9>&-
}

# ---- start / stop -----------------------------------------------------------

abs_statedir() {
  [[ -n ${1:-} ]] || usage
  mkdir -p "$1"
  (cd "$1" && pwd)
}

# 4.x loads these and exits without them; 5.x ships its own logging config.
write_logback_configs() {
  local conf="$1" logs="$2" name
  for name in namesrv broker tools; do
    cat >"$conf/logback_$name.xml" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$logs/$name.log</file>
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{20} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
XML
  done
}

# write_acl_config <conf> <major>: an admin account with known keys (and on 4.x one limited to a
# consumer group); everyone else is refused.
write_acl_config() {
  local conf="$1" major="$2"
  if [[ $major == 4 ]]; then
    echo "aclEnable=true" >>"$conf/broker.conf"
    cat >"$conf/plain_acl.yml" <<YML
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: $ACL_ACCESS_KEY
    secretKey: $ACL_SECRET_KEY
    whiteRemoteAddress:
    admin: true
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: PUB|SUB
  - accessKey: $LIMITED_ACCESS_KEY
    secretKey: $LIMITED_SECRET_KEY
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: DENY
    groupPerms:
      - $LIMITED_GROUP=SUB
YML
  else
    # ACL 2.0: the initial user is a super user; the broker's own inner client uses it too.
    cat >>"$conf/broker.conf" <<CONF
authenticationEnabled=true
authorizationEnabled=true
authenticationProvider=org.apache.rocketmq.auth.authentication.provider.DefaultAuthenticationProvider
authenticationMetadataProvider=org.apache.rocketmq.auth.authentication.provider.LocalAuthenticationMetadataProvider
authorizationProvider=org.apache.rocketmq.auth.authorization.provider.DefaultAuthorizationProvider
authorizationMetadataProvider=org.apache.rocketmq.auth.authorization.provider.LocalAuthorizationMetadataProvider
authConfigPath=$(dirname "$conf")/auth
initAuthenticationUser={"username":"$ACL_ACCESS_KEY","password":"$ACL_SECRET_KEY"}
innerClientAuthenticationCredentials={"accessKey":"$ACL_ACCESS_KEY","secretKey":"$ACL_SECRET_KEY"}
CONF
  fi
}

# launch <statedir> <name> <heap> <main class> <args...>: starts a server JVM in the background.
launch() {
  local statedir="$1" name="$2" heap="$3" main="$4"; shift 4
  local out="$statedir/logs/$name.out"
  [[ -f $out ]] && mv "$out" "$out.1"
  # shellcheck disable=SC1091
  source "$statedir/rig.state"
  ROCKETMQ_HOME="$statedir/home" nohup "$JAVA" $heap -XX:+UseSerialGC "${JDK17_OPENS[@]}" \
    -Duser.home="$statedir" -Drocketmq.home.dir="$statedir/home" \
    -cp "$(server_lib_dir "$VERSION")/*" "$main" "$@" >"$out" 2>&1 </dev/null &
  echo $! >"$statedir/$name.pid"
}

# wait_boot <statedir> <name>: waits for "boot success" in its output; on failure shows the log.
wait_boot() {
  local statedir="$1" name="$2" deadline=$((SECONDS + READY_TIMEOUT)) pid
  pid="$(cat "$statedir/$name.pid")"
  while ! grep -q "boot success" "$statedir/logs/$name.out" 2>/dev/null; do
    if ! pid_alive "$pid"; then
      show_log_tail "$statedir/logs/$name.out"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$statedir/logs/$name.out"
      echo "error: the RocketMQ $name did not report 'boot success' within ${READY_TIMEOUT}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# wait_registered <statedir>: waits until the name server lists the broker (mqadmin clusterList).
wait_registered() {
  local statedir="$1" deadline=$((SECONDS + READY_TIMEOUT)) listing
  source "$statedir/rig.state"
  while ((SECONDS < deadline)); do
    listing="$("$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Duser.home="$statedir" \
      -Drocketmq.home.dir="$statedir/home" -cp "$(lib_dir "$VERSION")/*" \
      org.apache.rocketmq.tools.command.MQAdminStartup clusterList -n "127.0.0.1:$NAMESRV_PORT" 2>&1 || true)"
    if grep -q "127.0.0.1:$BROKER_PORT" <<<"$listing"; then
      return 0
    fi
    sleep 0.5
  done
  echo "$listing" | tail -n 10 >&2
  show_log_tail "$statedir/logs/broker.out"
  echo "error: the broker did not register with the name server 127.0.0.1:$NAMESRV_PORT within ${READY_TIMEOUT}s" >&2
  return 1
}

start_broker() {
  local statedir="$1"
  launch "$statedir" broker "-Xms256m -Xmx512m" org.apache.rocketmq.broker.BrokerStartup \
    -c "$statedir/home/conf/broker.conf"
  wait_boot "$statedir" broker && wait_registered "$statedir"
}

cmd_start() {
  [[ $# -ge 2 ]] || usage
  local version="$1" statedir acl=0 two_namesrv=0 major base namesrv_addrs
  statedir="$(abs_statedir "$2")"
  shift 2
  for option in "$@"; do
    case "$option" in
      --acl) acl=1 ;;
      --two-namesrv) two_namesrv=1 ;;
      *) die "unknown option '$option' (only --acl, --two-namesrv)" ;;
    esac
  done
  check_version "$version"
  if pid_alive "$(cat "$statedir/namesrv.pid" 2>/dev/null || true)"; then
    die "a RocketMQ rig already runs in $statedir; stop it first: $0 stop $statedir"
  fi
  cmd_fetch "$version"
  major="${version%%.*}"
  mkdir -p "$statedir/home/conf" "$statedir/logs" "$statedir/store"
  rm -f "$statedir/env"

  # Name server on B; broker on B+3 with its VIP channel on B+3-2 and HA on B+4; a second
  # name server on B+5.
  if [[ $two_namesrv == 1 ]]; then
    base="$(reserve_ports "$statedir" 0 1 3 4 5)"
    namesrv_addrs="127.0.0.1:$base;127.0.0.1:$((base + 5))"
    echo "listenPort=$((base + 5))" >"$statedir/home/conf/namesrv2.conf"
  else
    base="$(reserve_ports "$statedir" 0 1 3 4)"
    namesrv_addrs="127.0.0.1:$base"
  fi
  cat >"$statedir/rig.state" <<STATE
VERSION=$version
NAMESRV_PORT=$base
BROKER_PORT=$((base + 3))
ACL=$acl
STATE
  echo "listenPort=$base" >"$statedir/home/conf/namesrv.conf"
  cat >"$statedir/home/conf/broker.conf" <<CONF
brokerClusterName=$CLUSTER_NAME
brokerName=$BROKER_NAME
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=$namesrv_addrs
brokerIP1=127.0.0.1
listenPort=$((base + 3))
haListenPort=$((base + 4))
storePathRootDir=$statedir/store
storePathCommitLog=$statedir/store/commitlog
autoCreateTopicEnable=true
mappedFileSizeCommitLog=104857600
maxIndexNum=400000
maxHashSlotNum=100000
diskMaxUsedSpaceRatio=95
waitTimeMillsInSendQueue=3000
osPageCacheBusyTimeOutMills=5000
CONF
  [[ $major == 4 ]] && write_logback_configs "$statedir/home/conf" "$statedir/logs"
  [[ $acl == 1 ]] && write_acl_config "$statedir/home/conf" "$major"

  launch "$statedir" namesrv "-Xms64m -Xmx128m -XX:TieredStopAtLevel=1" org.apache.rocketmq.namesrv.NamesrvStartup \
    -c "$statedir/home/conf/namesrv.conf"
  if [[ $two_namesrv == 1 ]]; then
    launch "$statedir" namesrv2 "-Xms64m -Xmx128m -XX:TieredStopAtLevel=1" org.apache.rocketmq.namesrv.NamesrvStartup \
      -c "$statedir/home/conf/namesrv2.conf"
  fi
  if ! wait_boot "$statedir" namesrv || { [[ $two_namesrv == 1 ]] && ! wait_boot "$statedir" namesrv2; } \
    || ! start_broker "$statedir"; then
    stop_all "$statedir"
    die "RocketMQ $version did not start (logs in $statedir/logs)"
  fi

  {
    echo "NAMESRV=127.0.0.1:$base"
    [[ $two_namesrv == 1 ]] && echo "NAMESRV2=127.0.0.1:$((base + 5))"
    echo "BROKER=127.0.0.1:$((base + 3))"
    echo "BROKER_NAME=$BROKER_NAME"
    echo "CLUSTER=$CLUSTER_NAME"
    echo "VERSION=$version"
    echo "ROCKETMQ_LIB=$(lib_dir "$version")"
    if [[ $acl == 1 ]]; then
      echo "ACCESS_KEY=$ACL_ACCESS_KEY"
      echo "SECRET_KEY=$ACL_SECRET_KEY"
      if [[ $major == 4 ]]; then
        echo "LIMITED_ACCESS_KEY=$LIMITED_ACCESS_KEY"
        echo "LIMITED_SECRET_KEY=$LIMITED_SECRET_KEY"
        echo "LIMITED_GROUP=$LIMITED_GROUP"
      fi
    fi
  } >"$statedir/env.tmp"
  mv "$statedir/env.tmp" "$statedir/env"
  echo "127.0.0.1:$base"
}

stop_all() {
  local statedir="$1"
  stop_pidfile "$statedir/broker.pid" "RocketMQ broker"
  stop_pidfile "$statedir/namesrv.pid" "RocketMQ name server"
  stop_pidfile "$statedir/namesrv2.pid" "second RocketMQ name server"
  release_ports "$statedir"
}

cmd_stop() {
  [[ $# == 1 ]] || usage
  local statedir
  statedir="$(abs_statedir "$1")"
  [[ -f $statedir/rig.state ]] || die "no RocketMQ rig in $statedir (no rig.state)"
  stop_all "$statedir"
  rm -f "$statedir/env"
}

running_statedir() {
  local statedir
  statedir="$(abs_statedir "$1")"
  [[ -f $statedir/env ]] || die "no running RocketMQ rig in $statedir (no env); start one first"
  echo "$statedir"
}

cmd_stop_broker() {
  [[ $# == 1 ]] || usage
  local statedir
  statedir="$(running_statedir "$1")"
  stop_pidfile "$statedir/broker.pid" "RocketMQ broker"
}

cmd_start_broker() {
  [[ $# == 1 ]] || usage
  local statedir
  statedir="$(running_statedir "$1")"
  if pid_alive "$(cat "$statedir/broker.pid" 2>/dev/null || true)"; then
    die "the broker in $statedir is running already"
  fi
  start_broker "$statedir" || die "the broker did not come back (logs in $statedir/logs)"
}

cmd_restart_broker() {
  [[ $# == 1 ]] || usage
  cmd_stop_broker "$1"
  cmd_start_broker "$1"
}

cmd_create_topic() {
  [[ $# == 2 || $# == 3 ]] || usage
  local statedir topic="$2" queues="${3:-4}" creds=()
  statedir="$(running_statedir "$1")"
  # shellcheck disable=SC1091
  source "$statedir/env"
  [[ -n ${ACCESS_KEY:-} ]] && creds=(--ak "$ACCESS_KEY" --sk "$SECRET_KEY")
  "$RIG_DIR/java.sh" "$VERSION" create-topic --namesrv "$NAMESRV" --cluster "$CLUSTER" \
    --topic "$topic" --queues "$queues" "${creds[@]}" >/dev/null
}

cmd_kill_namesrv() {
  [[ $# == 2 && ($2 == 1 || $2 == 2) ]] || usage
  local statedir pidfile pid
  statedir="$(running_statedir "$1")"
  pidfile="$statedir/namesrv.pid"
  [[ $2 == 2 ]] && pidfile="$statedir/namesrv2.pid"
  [[ -f $pidfile ]] || die "no name server $2 in $statedir (start with --two-namesrv for a second one)"
  pid="$(cat "$pidfile")"
  kill -KILL "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do sleep 0.1; done
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1"; shift
  case "$cmd" in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart-broker) cmd_restart_broker "$@" ;;
    stop-broker) cmd_stop_broker "$@" ;;
    start-broker) cmd_start_broker "$@" ;;
    create-topic) cmd_create_topic "$@" ;;
    kill-namesrv) cmd_kill_namesrv "$@" ;;
    *) usage ;;
  esac
}
main "$@"
