# Sourced by the install scripts: apt_install_quietly PACKAGE... installs Debian packages
# without letting their maintainer scripts start a service (the tests run their own servers).

apt_install_quietly() {
  [[ $(id -u) == 0 ]] || { echo "error: installing $* needs root (apt-get); run as root or install them by hand" >&2; return 1; }
  # Debian's maintainer scripts ask policy-rc.d before starting a service; 101 = "not now".
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    own_policy=1
  fi
  local status=0
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
  if [[ $own_policy == 1 ]]; then rm -f "$policy"; fi
  return $status
}

# Stops service NAME should a service manager have started it anyway.
stop_service() {
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$1" 2>/dev/null; then
    systemctl stop "$1" || true
    systemctl disable "$1" >/dev/null 2>&1 || true
  fi
}
