#!/usr/bin/env bash
# vipwarden lab control.
#   lab.sh up [bird] [frr]   build namespaces, links, routers, nginx (state in $VW_LAB_DIR)
#   lab.sh down              stop everything lab.sh started, delete namespaces
#   lab.sh status            sessions and VIP routes at each router
#   lab.sh gobgp-demo        validate the topology with gobgpd as the node's BGP speaker
# The lab stays up between "up" and "down"; state lives in VW_LAB_DIR
# (default /tmp/vw-lab). Tests do not use this and build their own lab.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VW_LAB_DIR=${VW_LAB_DIR:-/tmp/vw-lab}

cmd_up() {
  if [[ -s $VW_LAB_DIR/netns.list ]]; then
    vw_die "lab already up (state in $VW_LAB_DIR); run: $0 down"
  fi
  vw_run_dir_init "$VW_LAB_DIR"
  # On failure half-way, tear down what was built.
  trap 'rc=$?; if ((rc)); then vw_lab_down; fi' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  vw_lab_up "$@"
  cmd_status
}

cmd_down() {
  [[ -d $VW_LAB_DIR ]] || { vw_info "no lab state in $VW_LAB_DIR"; return 0; }
  VW_RUN_DIR=$VW_LAB_DIR
  vw_lab_down
  rm -rf "$VW_LAB_DIR"
  vw_info "lab down"
}

cmd_status() {
  [[ -d $VW_LAB_DIR ]] || { echo "lab is down"; return 0; }
  VW_RUN_DIR=$VW_LAB_DIR
  local r
  for r in bird frr; do
    vw_pid_of "$r" | grep -q . || continue
    vw_show_router "$r"
  done
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up [bird] [frr] | down | status" >&2; exit 2 ;;
  esac
}

main "$@"
