#!/usr/bin/env bash
# lab-routers: both
# Fleet guard and disable files (issue 17, point 2): nodes 2 and 3 fail and leave; node 1 is
# the last healthy announcer. A disable file appears on node 1: it marks its route (maintenance
# is an exit like any other) but must not leave: the prefix stays at both ToRs (oracle I1/I2,
# checked for settle + 7 s).
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "disable file on the last healthy node: it marks, it does not leave"

t0=$(vw_now_ms)
vw_guard_outage 2 3
ms=$(vw_wait_until "$t0" 20000 vw_fleet_counts_are "1 0" "1 0") ||
  vw_fail "nodes 2 and 3 did not leave ($(vw_fleet_show_counts))"
vw_measured "nginx stopped on nodes 2 and 3 -> only node 1 at both ToRs" "$ms"

t1=$(vw_now_ms)
vw_guard_disable 1
marked=$(vw_wait_until "$t1" 5000 eval "[[ \$(vw_guard_paths bird) == '1:1' && \$(vw_guard_paths frr) == '1:1' ]]") &&
  vw_measured "disable file on node 1 -> its route marked at both ToRs" "$marked" || marked=none
sleep $(((VW_GUARD_SETTLE_MS + 7000) / 1000))
for r in bird frr; do
  vw_guard_has_path 1 "$r" || vw_fail "node 1 left $r $(($(vw_now_ms) - t1)) ms after its disable file (paths now: '$(vw_guard_paths "$r")'; node 1: $(vw_fleet_reason 1))"
done
echo "node 1: $(vw_fleet_state 1): $(vw_fleet_reason 1)"
vw_guard_verdict
vw_pass "node 1 still announced at both ToRs $(($(vw_now_ms) - t1)) ms after its disable file (marked after ${marked} ms); no I1/I2 break"
