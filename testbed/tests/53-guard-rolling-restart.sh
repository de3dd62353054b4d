#!/usr/bin/env bash
# lab-routers: both
# Fleet guard and a rolling restart during a shared outage (issue 17, point 6): every service
# down, all three nodes held; vipwarden is restarted on each node in turn (SIGTERM, wait for the
# exit, start, wait until its path is back at both ToRs or 15 s). The prefix may never be absent
# at a ToR for longer than one node's restart, and after the last restart all three nodes are
# announced again, marked (the hold survives the restart).
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "rolling restart of every node during a shared outage: the prefix stays"

vw_guard_outage 1 2 3
vw_guard_wait_held 1 2 3
longest=0
for i in 1 2 3; do
  t0=$(vw_now_ms)
  vw_guard_vw_restart "$i"
  stop_ms=$VWG_RESTART_MS
  vw_measured "node $i SIGTERM -> exited and started again" "$stop_ms"
  if ms=$(vw_wait_until "$t0" $((stop_ms + 15000)) eval "vw_guard_has_path $i bird && vw_guard_has_path $i frr"); then
    vw_measured "node $i SIGTERM -> its path back at both ToRs" "$ms"
  else
    echo "node $i: path not back at both ToRs ${ms} ms after SIGTERM (BIRD '$(vw_guard_paths bird)', FRR '$(vw_guard_paths frr)'); $(vw_fleet_state "$i"): $(vw_fleet_reason "$i")"
  fi
  ((ms > longest)) && longest=$ms
done
sleep $(((VW_GUARD_SETTLE_MS + 2000) / 1000))
vw_guard_oracle_stop
absent_b=$(vw_guard_absence bird)
absent_f=$(vw_guard_absence frr)
echo "oracle: $(vw_guard_summary_line)"
vw_measured "longest absence at BIRD" "$absent_b"
vw_measured "longest absence at FRR" "$absent_f"
for r in bird frr; do
  [[ $(vw_fleet_route_counts "$r") == "3 3" ]] || vw_fail "$r after the rolling restart: $(vw_fleet_route_counts "$r") (total marked), expected 3 3"
done
((absent_b <= longest && absent_f <= longest)) ||
  vw_fail "prefix absent ${absent_b} ms at BIRD, ${absent_f} ms at FRR: longer than one node's restart (${longest} ms)"
i1=$(vw_guard_summary_get 's["i1"]')
i2=$(vw_guard_summary_get 's["i2"]')
((i1 + i2 == 0)) || { vw_guard_violations | head; vw_fail "invariants broken: I1 $i1, I2 $i2"; }
vw_pass "rolling restart (longest node restart ${longest} ms): absence BIRD ${absent_b} ms, FRR ${absent_f} ms; 3 marked paths at both after it; no I1/I2 break"
