# shellcheck shell=bash
# Harness for the fleet scenarios (40-49): three nodes behind BIRD and FRR at
# once, so each scenario runs once ("# lab-routers: both", honoured by
# run-tests.sh) and reports route counts at both routers.

set -euo pipefail
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
# shellcheck source=../lib/fleet-topology.sh
source "$VW_TESTBED_DIR/lib/fleet-topology.sh"

VW_TEST_NAME=$(basename "$0" .sh)
VW_ROUTER=both
VW_HOLD_TIME=${VW_HOLD_TIME:-9}

vw_fleet_on_exit() {
  local rc=$1 i
  if ((rc != 0)); then
    for i in 1 2 3; do
      [[ -s ${VW_RUN_DIR:-/nonexistent}/vipwarden$i.log ]] || continue
      printf -- '----- last lines of vipwarden%s.log\n' "$i"
      sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden$i.log" | tail -n 15
    done
    printf 'FAIL %s [both]\n' "$VW_TEST_NAME"
  fi
  vw_cleanup "$rc"
}

# vw_fleet_begin "description": lab up, three vipwardens started, every path
# seen at both routers.
vw_fleet_begin() {
  printf '=== %s [both]: %s\n' "$VW_TEST_NAME" "$1"
  vw_run_dir_init
  trap 'vw_fleet_on_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  vw_fleet_up
  local i ms
  for i in 1 2 3; do vw_fleet_vipwarden_start "$i"; done
  ms=$(vw_wait_until now 30000 vw_fleet_counts_are "3 0" "3 0") ||
    vw_fail "not every node announced within 30 s (bird: $(vw_fleet_route_counts bird), frr: $(vw_fleet_route_counts frr))"
  vw_info "all three nodes announced at both routers after ${ms} ms"
}

vw_pass() {
  printf 'PASS %s [both]: %s\n' "$VW_TEST_NAME" "$*"
  exit 0
}

vw_fail() {
  vw_err "$*"
  exit 1
}

vw_measured() {
  printf 'measured: %s [both] = %s ms\n' "$1" "$2"
}

# True if BIRD and FRR show exactly these "TOTAL MARKED" path counts.
vw_fleet_counts_are() {
  [[ $(vw_fleet_route_counts bird) == "$1" && $(vw_fleet_route_counts frr) == "$2" ]]
}

vw_fleet_show_counts() {
  printf 'route counts (paths marked): BIRD %s, FRR %s\n' "$(vw_fleet_route_counts bird)" "$(vw_fleet_route_counts frr)"
}

# VIP state of node i from its status (JSON API via the CLI).
vw_fleet_state() {
  vw_fleet_cli "$1" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(next(v["state"] for v in d["vips"] if v["name"] == "web"))'
}

vw_fleet_reason() {
  vw_fleet_cli "$1" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(next(v["reason"] for v in d["vips"] if v["name"] == "web"))'
}

# The client reaches a node on the VIP: HTTP when a service runs; with every
# service down, a TCP reset from a node ("Connection refused", not "No route
# to host" from a ToR) proves the route still leads to a node.
vw_fleet_client_http() { vw_in "$VW_NS_CLIENT" curl -sS --max-time 1 "http://$VW_VIP4/"; }
vw_fleet_client_reaches_node() {
  local out
  out=$(vw_in "$VW_NS_CLIENT" timeout 2 bash -c "exec 3<>/dev/tcp/$VW_VIP4/80" 2>&1) && return 0
  echo "client: $out"
  [[ $out == *"Connection refused"* ]]
}

# Stop nginx on node i without waiting (for near-simultaneous failures).
vw_fleet_nginx_kill() {
  local pid
  pid=$(vw_pid_of "nginx$1")
  vw_pid_is_ours "$pid" && kill -TERM "$pid"
}
