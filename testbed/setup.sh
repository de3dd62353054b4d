#!/usr/bin/env bash
# Install what the vipwarden lab needs on a Debian machine (run as root).
# Idempotent: installs only the packages that are missing, so a second run
# does no network access at all.
set -euo pipefail

# command-to-check  package
REQUIRED=(
  "bird:bird2"
  "birdc:bird2"
  "/usr/lib/frr/bgpd:frr"
  "vtysh:frr"
  "gobgpd:gobgpd"
  "gobgp:gobgpd"
  "nginx:nginx-light"
  "wrk:wrk"
  "ip:iproute2"
  "python3:python3"
  "jq:jq"
  "curl:curl"
  "ps:procps"
  "dbus-daemon:dbus-daemon"
  "nft:nftables"
  # promtool: `promtool check metrics` on /metrics and `check rules` on deploy/ (unit tests, lab 81).
  "promtool:prometheus"
  # chromium: the replay plot is rendered headless in a unit test (offline.rs).
  "chromium:chromium"
)

log() { printf '%s setup: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

have() {
  local cmd=$1
  if [[ $cmd == /* ]]; then [[ -x $cmd ]]; else command -v "$cmd" >/dev/null 2>&1; fi
}

missing_packages() {
  local entry cmd pkg
  local -A want=()
  for entry in "${REQUIRED[@]}"; do
    cmd=${entry%%:*}
    pkg=${entry#*:}
    have "$cmd" || want[$pkg]=1
  done
  # The gobgpd stand-in (standin/vipwarden-standin.py) needs PyYAML.
  python3 -c 'import yaml' >/dev/null 2>&1 || want[python3-yaml]=1
  if ((${#want[@]})); then printf '%s\n' "${!want[@]}" | sort; fi
}

main() {
  if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (network namespaces, apt-get)"
    exit 1
  fi
  local -a pkgs
  mapfile -t pkgs < <(missing_packages)
  if ((${#pkgs[@]} == 0)); then
    log "all lab packages present"
  else
    log "installing: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d 101 keeps Debian from starting the host's own bird/frr/nginx
    # services during install where an init system exists; the lab never uses
    # them and runs its own instances inside namespaces.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      created_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
      { ((created_policy)) && rm -f "$policy"; exit 1; }
    ((created_policy)) && rm -f "$policy"
    log "installed: ${pkgs[*]}"
  fi
  if ! command -v cargo >/dev/null 2>&1 && [[ ! -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
    log "note: cargo not found; set VIPWARDEN_BIN to a built vipwarden binary"
  fi
}

main "$@"
