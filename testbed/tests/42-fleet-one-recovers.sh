#!/usr/bin/env bash
# lab-routers: both
# Fleet guard, recovery: all three nodes are held (services down); nginx
# comes back on node 1: it is announced unmarked, and nodes 2 and 3 leave
# within settle + 2 s.
# shellcheck source=fleet-common.sh
source "$(dirname "$0")/fleet-common.sh"
vw_fleet_begin "one node recovers: it is announced unmarked, the two others leave within settle + 2 s"

t0=$(vw_now_ms)
for i in 1 2 3; do vw_fleet_nginx_kill "$i"; done
for i in 1 2 3; do
  vw_wait_until "$t0" 15000 eval "[[ \$(vw_fleet_state $i) == held ]]" >/dev/null ||
    vw_fail "node $i not held: $(vw_fleet_state "$i")"
done
vw_fleet_show_counts
t1=$(vw_now_ms)
vw_fleet_nginx_start 1
ms_up=$(vw_wait_until "$t1" 10000 eval "[[ \$(vw_fleet_state 1) == announced ]]") ||
  vw_fail "node 1 not announced again 10 s after nginx restarted: $(vw_fleet_state 1)"
vw_measured "nginx back on node 1 -> node 1 announced unmarked" "$ms_up"
ms=$(vw_wait_until "$t1" 15000 vw_fleet_counts_are "1 0" "1 0") ||
  vw_fail "nodes 2 and 3 did not leave ($(vw_fleet_show_counts))"
vw_measured "nginx back on node 1 -> nodes 2 and 3 gone at both routers" "$ms"
left=$((ms - ms_up))
vw_measured "node 1 unmarked -> nodes 2 and 3 gone" "$left"
((left <= 5000)) || vw_fail "nodes 2 and 3 left ${left} ms after node 1 was unmarked (> settle 3 s + 2 s)"
vw_fleet_show_counts
for i in 2 3; do echo "node $i: $(vw_fleet_reason "$i")"; done
body=$(vw_fleet_client_http) || vw_fail "client not served by node 1"
[[ $body == "served by vw-node1" ]] || vw_fail "unexpected answer: $body"
vw_pass "node 1 unmarked ${ms_up} ms after nginx restarted; nodes 2-3 gone ${left} ms later (limit 5000); client served by node 1"
