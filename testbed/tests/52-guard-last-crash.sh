#!/usr/bin/env bash
# lab-routers: both
# Fleet guard, fail open both ways (issue 17, point 5): every service down, all held; node 1
# recovers and nodes 2 and 3 leave (as designed); then node 1's machine crashes (vipwarden
# SIGKILL, not restarted). Nodes 2 and 3 must come back, marked, at both ToRs within settle + 2 s
# of node 1's path disappearing (oracle I2) and stay.
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "the last healthy node crashes after the others left: they return, marked, within settle + 2 s"

vw_guard_outage 1 2 3
vw_guard_wait_held 1 2 3
t0=$(vw_now_ms)
vw_guard_svc_start 1
ms=$(vw_wait_until "$t0" 20000 vw_fleet_counts_are "1 0" "1 0") ||
  vw_fail "nodes 2 and 3 did not leave after node 1 recovered ($(vw_fleet_show_counts))"
vw_measured "nginx back on node 1 -> only node 1 (unmarked) at both ToRs" "$ms"
sleep 1
t1=$(vw_now_ms)
vw_guard_vw_crash 1
for r in bird frr; do
  ms=$(vw_wait_until "$t1" 20000 eval "[[ \$(vw_fleet_route_counts $r) == '2 2' ]]") ||
    vw_fail "$r: nodes 2 and 3 not back 20 s after node 1 crashed (now $(vw_fleet_route_counts "$r"))"
  vw_measured "node 1 crashed -> nodes 2 and 3 back, marked, at $r" "$ms"
  ((ms <= VW_GUARD_BUDGET_MS + 1000)) || vw_fail "$r: nodes 2 and 3 back only ${ms} ms after the crash (budget ${VW_GUARD_BUDGET_MS} ms)"
done
sleep 3
vw_fleet_counts_are "2 2" "2 2" || vw_fail "nodes 2 and 3 did not stay: $(vw_fleet_show_counts)"
vw_guard_verdict
vw_pass "nodes 2 and 3 back, marked, at both ToRs after node 1 crashed; absence BIRD $(vw_guard_absence bird) ms, FRR $(vw_guard_absence frr) ms; no I1/I2 break"
