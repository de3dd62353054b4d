#!/usr/bin/env bash
# vipwarden in one command, on a fresh Debian machine (root):
#   sudo testbed/demo.sh
# Installs the lab packages, builds vipwarden, starts two real top-of-rack
# routers (BIRD 2 and FRR) and a backend node with nginx in network
# namespaces, runs vipwarden on the node, then breaks and restores the
# service and shows the VIP route leaving and returning at both routers,
# with the measured times. Cleans everything up on exit (also on Ctrl-C).
# Needs Rust >= 1.89 (README.md, 'The Rust toolchain': rustup on Debian 12,
# trixie-backports or rustup on Debian 13); rebuilds when a source is newer than
# target/release/vipwarden. VIPWARDEN_BIN=/path/to/vipwarden skips the build.
set -euo pipefail
TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$TESTBED/lib.sh"

T_START=0
TIMELINE=()

BOLD='' PLAIN=''
if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
# Add an event to the timeline, stamped relative to the demo's start.
mark() {
  local now
  now=$(vw_now_ms)
  TIMELINE+=("$(printf '%8.3fs  %s' "$((now - T_START))e-3" "$*")")
  printf '   %s\n' "$*"
}

# routes_state ROUTER: present (both VIP prefixes), absent (neither) or partial.
routes_state() {
  local n=0
  router_has_prefix "$1" "$VW_VIP4_PREFIX" && n=$((n + 1))
  router_has_prefix "$1" "$VW_VIP6_PREFIX" && n=$((n + 1))
  case $n in 2) echo present ;; 0) echo absent ;; *) echo partial ;; esac
}

# wait_both STATE T0 WHAT CAUSE: wait until both routers are in STATE
# (present|absent), recording when each got there, relative to T0.
wait_both() {
  local want=$1 t0=$2 what=$3 cause=$4 r now
  local -A reached=()
  while ((${#reached[@]} < 2)); do
    for r in bird frr; do
      [[ -z ${reached[$r]:-} ]] || continue
      if [[ $(routes_state "$r") == "$want" ]]; then
        now=$(vw_now_ms)
        reached[$r]=1
        mark "$(printf '%-5s %s  (%d ms after %s)' "$(vw_router_label "$r")" "$what" $((now - t0)) "$cause")"
      fi
    done
    (($(vw_now_ms) - t0 < 30000)) || vw_die "timed out waiting for the VIP routes to be $want"
    sleep 0.05
  done
}

show_routers() {
  vw_show_router bird | sed 's/^/   /'
  vw_show_router frr | sed 's/^/   /'
  client_probe
}

# What a client behind each ToR gets from http://VIP/ (IPv4 and IPv6).
client_probe() {
  local r vip out
  for r in bird frr; do
    vw_client_via "$r"
    for vip in "$VW_VIP4" "[$VW_VIP6]"; do
      out=$(vw_client_get "$vip" 2>&1) || out="no service (${out#curl: })"
      printf '   client -> http://%s/ via %-4s: %s\n' "$vip" "$(vw_router_label "$r")" "$out"
    done
  done
}

main() {
  [[ $(id -u) -eq 0 ]] || vw_die "run as root (network namespaces): sudo $0"
  say "1/7 packages (bird2, frr, gobgpd, nginx-light, ...)"
  bash "$TESTBED/setup.sh"

  say "2/7 vipwarden binary"
  VIPWARDEN_BIN=$(vw_vipwarden_bin)
  export VIPWARDEN_BIN
  echo "   $VIPWARDEN_BIN"

  say "3/7 lab: vw-tor-bird (BIRD, AS 65000), vw-tor-frr (FRR, AS 65000), vw-node1 (nginx + vipwarden, AS 65101), vw-client"
  vw_run_dir_init
  trap 'vw_cleanup $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  vw_lab_up bird frr 2>&1 | sed 's/^/   /'
  T_START=$(vw_now_ms)

  say "4/7 start vipwarden (config below: tcp check of $VW_VIP4:80 every 1s, rise 2, fall 2)"
  vw_vipwarden_config >"$VW_RUN_DIR/demo-config.yaml"
  sed 's/^/   | /' "$VW_RUN_DIR/demo-config.yaml"
  local t0
  t0=$(vw_now_ms)
  vw_vipwarden_start 2>/dev/null
  mark "vipwarden started"
  wait_both present "$t0" "has the VIP routes" "vipwarden start"
  echo
  show_routers
  echo "   vipwarden said:"
  vw_vipwarden_route_log | sed 's/^/   > /'

  say "5/7 break the service: stop nginx (kill PID $(vw_pid_of nginx))"
  t0=$(vw_now_ms)
  vw_nginx_stop
  mark "nginx stopped"
  wait_both absent "$t0" "withdrew the VIP routes" "nginx stopped"
  echo
  show_routers
  echo "   vipwarden said:"
  vw_vipwarden_route_log | tail -n 2 | sed 's/^/   > /'

  say "6/7 restore the service: start nginx"
  t0=$(vw_now_ms)
  vw_nginx_start 2>/dev/null
  mark "nginx started"
  wait_both present "$t0" "has the VIP routes again" "nginx started"
  echo
  show_routers
  echo "   vipwarden said:"
  vw_vipwarden_route_log | tail -n 2 | sed 's/^/   > /'

  say "7/7 stop vipwarden (SIGTERM: withdraw, then close the sessions)"
  t0=$(vw_now_ms)
  local pid
  pid=$(vw_pid_of vipwarden)
  vw_signal vipwarden TERM
  mark "SIGTERM sent to vipwarden"
  wait_both absent "$t0" "withdrew the VIP routes" "SIGTERM"
  vw_wait_pid_exit "$pid" 10000 || vw_die "vipwarden did not exit within 10 s of SIGTERM"
  mark "vipwarden exited with code ${VW_EXIT_CODE:-?} ($(($(vw_now_ms) - t0)) ms after SIGTERM)"

  say "timeline (seconds since the lab was up)"
  printf '   %s\n' "${TIMELINE[@]}"
  echo
  echo "   Check settings: interval 1s, timeout 500ms, rise 2, fall 2 -> expect a withdrawal"
  echo "   within ~2.5 s of the failure and a re-announcement ~1-2 s after recovery."
  say "cleaning up (namespaces and processes)"
}

main "$@"
