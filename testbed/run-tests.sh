#!/usr/bin/env bash
# Run every lab scenario (testbed/tests/NN-*.sh) against BIRD, FRR and GoBGP.
#   run-tests.sh [-r bird|frr|gobgp]... [-t PATTERN] [-T]
# First validates the lab itself with gobgpd (validate-topology.sh; -T skips
# it), so a broken lab is told apart from a vipwarden failure.
# Prints one PASS/FAIL/SKIP line per (scenario, router), the measured times,
# and finally exactly "lab: N passed, N failed, N skipped". A scenario that
# cannot run on a router exits 77 with a "SKIP ...: reason" line. Exits
# non-zero on any failure.
# Full output of each run: $VW_TEST_LOG_DIR (default /tmp/vw-test-logs).
set -euo pipefail
TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$TESTBED/lib.sh"

routers=()
pattern=
topology=1
while getopts 'r:t:Th' opt; do
  case $opt in
    r) routers+=("$OPTARG") ;;
    t) pattern=$OPTARG ;;
    T) topology=0 ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
  esac
done
((${#routers[@]})) || routers=(bird frr gobgp)

main() {
  trap 'exit 130' INT
  trap 'exit 143' TERM
  bash "$TESTBED/setup.sh"
  # Resolve (and if needed build) the binary once, not in every scenario.
  VIPWARDEN_BIN=$(vw_vipwarden_bin)
  export VIPWARDEN_BIN
  vw_info "vipwarden binary: $VIPWARDEN_BIN"

  local logdir=${VW_TEST_LOG_DIR:-/tmp/vw-test-logs}
  rm -rf "$logdir"
  mkdir -p "$logdir"
  local passed=0 failed=0 skipped=0 t r name out rc reason failures=() measurements=()
  if ((topology)); then
    out=$logdir/00-topology.gobgpd.log
    if bash "$TESTBED/validate-topology.sh" >"$out" 2>&1; then
      passed=$((passed + 1))
      echo "PASS 00-topology [gobgpd]: lab, router configs and query helpers verified with gobgpd"
    else
      failed=$((failed + 1))
      failures+=("00-topology [gobgpd]: $out")
      echo "FAIL 00-topology [gobgpd] — the lab itself is broken; see $out"
      grep -E 'FAIL|ERROR' "$out" | sed 's/^/    /' || true
    fi
  fi
  for t in "$TESTBED"/tests/[0-9]*.sh; do
    name=$(basename "$t" .sh)
    [[ -z $pattern || $name == *$pattern* ]] || continue
    # A scenario that needs both ToRs at once (e.g. the fleet lab) runs once.
    local run_on=("${routers[@]}")
    if grep -q '^# lab-routers: both' "$t"; then run_on=(both); fi
    for r in "${run_on[@]}"; do
      out=$logdir/$name.$r.log
      rc=0
      bash "$t" "$r" >"$out" 2>&1 || rc=$?
      if ((rc == 130 || rc == 143)); then
        echo "interrupted during $name [$r]; the scenario cleaned up after itself"
        exit "$rc"
      fi
      if ((rc == 77)); then
        skipped=$((skipped + 1))
        grep -m1 '^SKIP ' "$out" || echo "SKIP $name [$r]: (no reason given)"
      elif ((rc == 0)); then
        passed=$((passed + 1))
        grep -m1 '^PASS ' "$out" || echo "PASS $name [$r]"
      else
        failed=$((failed + 1))
        # The scenario's own last line says why (common.sh vw_test_on_exit).
        reason=$(grep '^FAIL ' "$out" | tail -n 1 | sed 's/^FAIL [^:]*: //' | cut -c1-300)
        failures+=("$name [$r]: ${reason:-exit $rc} ($out)")
        echo "FAIL $name [$r] (exit $rc): ${reason:-no reason given}"
        echo "  last lines of $out:"
        tail -n 40 "$out" | sed 's/^/    /'
      fi
      mapfile -t -O "${#measurements[@]}" measurements < <(grep '^measured: ' "$out" || true)
    done
  done
  echo
  echo "measured times (fault -> effect at the router):"
  printf '  %s\n' "${measurements[@]#measured: }"
  if ((failed)); then
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
  fi
  echo "lab: $passed passed, $failed failed, $skipped skipped"
  ((failed == 0))
}

main
