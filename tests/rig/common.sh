# Shared helpers for the rig scripts (sourced, not run).

RIG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFLOW_CACHE="${INFLOW_CACHE:-$HOME/.cache/inflow}"
# Ports handed out by the rig are reserved here (one directory per port) so that
# rigs started at the same time on one machine never pick the same port.
PORT_RESERVATIONS="${INFLOW_RIG_PORTS_DIR:-${TMPDIR:-/tmp}/inflow-rig-ports}"

die() {
  echo "error: $*" >&2
  exit 1
}

# The RocketMQ versions listed in tests/rig/versions (comments and blank lines skipped).
rig_versions() {
  grep -v -E '^\s*(#|$)' "$RIG_DIR/versions" | awk '{print $1}'
}

# server_version <version>: the version of the name server / broker jars for a rig version
# (the server= field of its line in tests/rig/versions, else the version itself).
server_version() {
  local line
  line="$(grep -E "^$1(\s|$)" "$RIG_DIR/versions" || true)"
  if [[ $line =~ server=([0-9.]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo "$1"; fi
}

port_in_use() {
  ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

# claim_port <port>: takes the reservation of a port; one whose owner's statedir is gone (a
# rig that was never stopped, e.g. after a crash) is taken over.
claim_port() {
  local dir="$PORT_RESERVATIONS/$1" owner
  mkdir "$dir" 2>/dev/null && return 0
  owner="$(cat "$dir/owner" 2>/dev/null || true)"
  if [[ -n $owner && ! -d $owner ]]; then
    rm -rf "$dir"
    mkdir "$dir" 2>/dev/null && return 0
  fi
  return 1
}

# reserved_by <port> <statedir>: whether <statedir> holds the reservation of <port> already.
reserved_by() {
  [[ $(cat "$PORT_RESERVATIONS/$1/owner" 2>/dev/null) == "$2" ]]
}

# reserve_ports <statedir> <offset>...: picks a base port B such that every B+offset is
# free and unreserved, reserves them for <statedir> and prints B. B is drawn from the 12 000
# ports below the kernel's ephemeral range (20000-32000 by default), so neither outgoing
# connections nor listeners on port 0 (admin servers, Prometheus) ever take these ports.
reserve_ports() {
  local statedir="$1"; shift
  mkdir -p "$PORT_RESERVATIONS"
  local ephemeral_low bottom=20000 attempt base offset port ok taken
  read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
  if ((ephemeral_low - 12010 >= 1024)); then bottom=$((ephemeral_low - 12010)); fi
  for attempt in $(seq 1 200); do
    base=$((bottom + RANDOM % 12000))
    ok=1; taken=()
    for offset in "$@"; do
      port=$((base + offset))
      if port_in_use "$port" || ! claim_port "$port"; then
        ok=0; break
      fi
      taken+=("$port")
      echo "$statedir" >"$PORT_RESERVATIONS/$port/owner"
    done
    if [[ $ok == 1 ]]; then
      echo "$base"
      return 0
    fi
    for port in "${taken[@]}"; do rm -rf "$PORT_RESERVATIONS/$port"; done
  done
  die "no free loopback ports found in $bottom-$((bottom + 12000)) (reservations in $PORT_RESERVATIONS)"
}

# release_ports <statedir>: frees every port reserved for <statedir>.
release_ports() {
  local statedir="$1" owner
  [[ -d $PORT_RESERVATIONS ]] || return 0
  for owner in "$PORT_RESERVATIONS"/*/owner; do
    [[ -f $owner ]] || continue
    if [[ $(cat "$owner" 2>/dev/null) == "$statedir" ]]; then
      rm -rf "$(dirname "$owner")"
    fi
  done
}

pid_alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null
}

# stop_pidfile <pidfile> <what>: TERM, wait up to INFLOW_RIG_STOP_TIMEOUT (60) s, then KILL;
# waits for the exit. A loaded 2-core machine can take 20 s for a 5.x broker's shutdown hooks,
# and a clean shutdown is what persists consumer offsets.
stop_pidfile() {
  local pidfile="$1" what="$2" pid i limit="${INFLOW_RIG_STOP_TIMEOUT:-60}"
  [[ -f $pidfile ]] || return 0
  pid="$(cat "$pidfile")"
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((limit * 10))); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    if pid_alive "$pid"; then
      echo "warning: $what (pid $pid) ignored SIGTERM for $limit s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do
        pid_alive "$pid" || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$pidfile"
}

# wait_port <port> <seconds>: true once something listens on 127.0.0.1:<port>.
wait_port() {
  local port="$1" deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    port_in_use "$port" && return 0
    sleep 0.1
  done
  return 1
}

# show_log_tail <file>: the last lines of a log, for error messages.
show_log_tail() {
  echo "---- last lines of $1 ----" >&2
  tail -n 40 "$1" >&2 2>/dev/null || echo "(no log)" >&2
  echo "----" >&2
}

# resolve_jars <dest> <group:artifact:version>...: the artifacts and their runtime dependencies
# from Maven Central into <dest> (skipped when <dest>/.complete exists). Callers serialize
# fetches of one <dest> themselves (flock).
resolve_jars() {
  local dest="$1"; shift
  [[ -f $dest/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn (Apache Maven) is not installed: apt-get install -y maven"
  local work coords group artifact version
  mkdir -p "$(dirname "$dest")"
  work="$(mktemp -d "$(dirname "$dest")/.fetch.XXXXXX")"
  {
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
    echo "<groupId>inflow.rig</groupId><artifactId>rig-jars</artifactId><version>1</version><packaging>pom</packaging><dependencies>"
    for coords in "$@"; do
      IFS=: read -r group artifact version <<<"$coords"
      echo "<dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>"
    done
    echo '</dependencies></project>'
  } >"$work/pom.xml"
  echo "fetching $* from Maven Central into $dest ..." >&2
  # -U: retry artifacts whose earlier download failed instead of trusting the cached failure.
  if ! mvn -q -B -U -f "$work/pom.xml" \
      org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$work/lib" >"$work/mvn.log" 2>&1; then
    grep -E 'ERROR|Could not' "$work/mvn.log" | head -n 5 >&2
    rm -rf "$work"
    die "could not resolve $* from Maven Central; see the mvn errors above"
  fi
  touch "$work/lib/.complete"
  rm -rf "$dest"
  mv "$work/lib" "$dest"
  rm -rf "$work"
}
