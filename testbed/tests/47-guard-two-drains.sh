#!/usr/bin/env bash
# lab-routers: both
# Fleet guard and concurrent drains (issue 17, point 2): node 3 fails and leaves; nodes 1 and 2
# are the last two healthy announcers. Both are drained at the same instant (two CLI calls in
# parallel). With min_healthy_others 1 at most one of them may leave a ToR, never both: each
# ToR keeps a path of node 1 or 2 (checked for settle + 7 s), and the oracle sees no I1/I2 break.
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "two drains of the last two healthy nodes at the same instant: never both leave"

t0=$(vw_now_ms)
vw_guard_outage 3
ms=$(vw_wait_until "$t0" 20000 vw_fleet_counts_are "2 0" "2 0") ||
  vw_fail "node 3 did not leave ($(vw_fleet_show_counts))"
vw_measured "nginx stopped on node 3 -> nodes 1 and 2 left at both ToRs" "$ms"

t1=$(vw_now_ms)
vw_guard_drain 1 &
p1=$!
vw_guard_drain 2 &
p2=$!
wait "$p1" "$p2" || true
vw_measured "two drain commands issued and answered" "$(($(vw_now_ms) - t1))"
for i in 1 2; do
  ans=$(cat "$VW_RUN_DIR/drain$i.out" 2>/dev/null || echo "no answer")
  echo "drain node $i: $ans"
  [[ $ans == "exit 0:"* || $ans == *"refused by the fleet guard"* ]] || vw_fail "the drain of node $i did not reach its daemon: $ans"
done
sleep $(((VW_GUARD_SETTLE_MS + 7000) / 1000))
for r in bird frr; do
  p=$(vw_guard_paths "$r")
  echo "$r paths (node:marked): ${p:-none}"
  [[ " $p " == *" 1:"* || " $p " == *" 2:"* ]] ||
    vw_fail "both drained nodes left $r (paths now: '${p}'); node 1: $(vw_fleet_reason 1); node 2: $(vw_fleet_reason 2)"
done
for i in 1 2; do echo "node $i: $(vw_fleet_state "$i"): $(vw_fleet_reason "$i")"; done
vw_guard_verdict
vw_pass "after two simultaneous drains node 1 or 2 still at both ToRs $(($(vw_now_ms) - t1)) ms later (BIRD: $(vw_guard_paths bird); FRR: $(vw_guard_paths frr)); no I1/I2 break"
