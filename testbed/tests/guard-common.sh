# shellcheck shell=bash
# Harness for the fleet guard scenarios of issue 17 (45-48, 52-54): the fleet lab with
# VW_FLEET_N nodes (default 3) behind BIRD and FRR, the daemon's own when_blind default, settle
# 3 s, each node with a disable file ($VW_RUN_DIR/disable<i>), and the oracle
# (lib/fleet_oracle.py) sampling both ToRs every 100 ms from the start of the scenario to its
# verdict (vw_guard_verdict): I1 (no node withdrew the last path with its session up, unless
# forced) and I2 (no ToR without the prefix for more than settle + 2 s while a running node has
# a session to it).
VW_FLEET_WHEN_BLIND=${VW_FLEET_WHEN_BLIND:-default}
# shellcheck source=fleet-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/fleet-common.sh"
# shellcheck source=../lib/fleet-guard.sh
source "$VW_TESTBED_DIR/lib/fleet-guard.sh"
VW_FLEET_SETTLE=$((VW_GUARD_SETTLE_MS / 1000))s

vw_fail() {
  vw_err "$*"
  printf 'FAIL %s [both]: %s\n' "$VW_TEST_NAME" "$*"
  VWG_FAILED=1
  exit 1
}

vw_guard_on_exit() {
  local rc=$1 i
  if ((rc != 0)) && [[ -n ${VW_RUN_DIR:-} && -d $VW_RUN_DIR ]]; then
    for ((i = 1; i <= VW_FLEET_N; i++)); do
      [[ -s $VW_RUN_DIR/vipwarden$i.log ]] || continue
      printf -- '----- last lines of vipwarden%s.log\n' "$i"
      sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden$i.log" | tail -n 8
    done
    if [[ -e $VW_RUN_DIR/oracle.pid && ! -s $VW_RUN_DIR/oracle-summary.json ]]; then
      vw_guard_oracle_stop
      [[ -s $VW_RUN_DIR/oracle-summary.json ]] && echo "oracle at the failure: $(vw_guard_summary_line)"
    fi
    if [[ -s $VW_RUN_DIR/oracle.log ]]; then
      printf -- '----- oracle timeline (last 40 lines)\n'
      tail -n 40 "$VW_RUN_DIR/oracle.log"
    fi
    [[ -n ${VWG_FAILED:-} ]] || printf 'FAIL %s [both]: exit %s\n' "$VW_TEST_NAME" "$rc"
  fi
  vw_cleanup "$rc"
}

# vw_guard_begin "description": lab up, every node announced at both ToRs, oracle running.
vw_guard_begin() {
  printf '=== %s [both]: %s\n' "$VW_TEST_NAME" "$1"
  vw_run_dir_init
  trap 'vw_guard_on_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  vw_guard_fleet_up
  vw_guard_oracle_start
}

# Kill nginx on the given nodes at once.
vw_guard_outage() {
  local i
  for i in "$@"; do vw_guard_svc_stop "$i"; done
}

# Wait until every given node is held (status), up to 20 s.
vw_guard_wait_held() {
  local i ms=0
  for i in "$@"; do
    ms=$(vw_wait_until now 20000 eval "[[ \$(vw_fleet_state $i) == held ]]") ||
      vw_fail "node $i not held 20 s after its service stopped: $(vw_fleet_state "$i") ($(vw_fleet_reason "$i"))"
  done
  vw_fleet_show_counts
}

# Stop the oracle, print its figures, fail on any I1/I2 violation.
vw_guard_verdict() {
  vw_guard_oracle_stop
  local line i1 i2
  line=$(vw_guard_summary_line)
  echo "oracle: $line"
  vw_measured "longest absence at BIRD" "$(vw_guard_summary_get 's["tors"]["bird"]["longest_absence_ms"]')"
  vw_measured "longest absence at FRR" "$(vw_guard_summary_get 's["tors"]["frr"]["longest_absence_ms"]')"
  i1=$(vw_guard_summary_get 's["i1"]')
  i2=$(vw_guard_summary_get 's["i2"]')
  if ((i1 + i2 > 0)); then
    vw_guard_violations | head -n 10
    vw_fail "invariants broken: I1 $i1, I2 $i2 samples ($line)"
  fi
}

vw_guard_absence() { vw_guard_summary_get "s[\"tors\"][\"$1\"][\"longest_absence_ms\"]"; }
