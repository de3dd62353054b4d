#!/usr/bin/env bash
# lab-routers: both
# Fleet guard, one node fails: three nodes announce the VIP behind BIRD and
# FRR (both sending every path); nginx on node 3 stops. Node 3 alone leaves,
# after its marked phase (settle 3 s); nodes 1 and 2 stay; the client is
# served throughout.
# shellcheck source=fleet-common.sh
source "$(dirname "$0")/fleet-common.sh"
vw_fleet_begin "one node's service stops: that node alone leaves, the client is still served"
vw_fleet_show_counts

t0=$(vw_now_ms)
vw_fleet_nginx_stop 3
ms_marked=$(vw_wait_until "$t0" 5000 vw_fleet_counts_are "3 1" "3 1") ||
  vw_fail "node 3's route was not marked at both routers within 5 s ($(vw_fleet_show_counts))"
vw_measured "nginx stopped on node 3 -> route marked at both routers" "$ms_marked"
ms=$(vw_wait_until "$t0" 10000 vw_fleet_counts_are "2 0" "2 0") ||
  vw_fail "node 3 did not leave within 10 s ($(vw_fleet_show_counts))"
vw_measured "nginx stopped on node 3 -> node 3 gone at both routers (settle 3 s)" "$ms"
vw_fleet_show_counts
((ms >= 3000)) || vw_fail "node 3 left after ${ms} ms, before its 3 s marked phase"
for i in 1 2; do
  s=$(vw_fleet_state "$i")
  [[ $s == announced ]] || vw_fail "node $i is $s, expected announced"
done
s=$(vw_fleet_state 3)
[[ $s == withdrawn ]] || vw_fail "node 3 is $s, expected withdrawn"
echo "node 3: $(vw_fleet_reason 3)"
served=0
for _ in 1 2 3 4 5 6; do
  body=$(vw_fleet_client_http) || vw_fail "client request failed after node 3 left"
  [[ $body == "served by vw-node1" || $body == "served by vw-node2" ]] || vw_fail "unexpected answer: $body"
  served=$((served + 1))
done
vw_pass "node 3 marked after ${ms_marked} ms, gone at both routers after ${ms} ms; nodes 1-2 announced; client served ${served}/6"
