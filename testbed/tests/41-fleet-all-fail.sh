#!/usr/bin/env bash
# lab-routers: both
# Fleet guard, fail open: nginx stops on all three nodes within 100 ms. Every
# node marks its route, counts after settle, finds no healthy announcer and
# holds: 30 s later the VIP is still at both routers (three paths, all
# marked), the client still reaches a node, and status says why.
# shellcheck source=fleet-common.sh
source "$(dirname "$0")/fleet-common.sh"
vw_fleet_begin "all three services stop together (well within settle): the VIP stays, marked (fail open)"

t0=$(vw_now_ms)
for i in 1 2 3; do vw_fleet_nginx_kill "$i"; done
spread=$(($(vw_now_ms) - t0))
vw_measured "three nginx stops issued within" "$spread"
# What matters is that all three fail within settle (3 s) of each other; on a loaded machine the
# three stops alone can take over 100 ms.
((spread <= 1000)) || vw_fail "the three stops took ${spread} ms (> 1000 ms)"
ms=$(vw_wait_until "$t0" 5000 vw_fleet_counts_are "3 3" "3 3") ||
  vw_fail "the three routes were not all marked within 5 s ($(vw_fleet_show_counts))"
vw_measured "all stopped -> three marked paths at both routers" "$ms"
ms_held=0
for i in 1 2 3; do
  m=$(vw_wait_until "$t0" 10000 eval "[[ \$(vw_fleet_state $i) == held ]]") || vw_fail "node $i not held 10 s after the stops: $(vw_fleet_state "$i")"
  ((m > ms_held)) && ms_held=$m
done
vw_measured "all stopped -> all three nodes held" "$ms_held"
left=$((30000 - ($(vw_now_ms) - t0)))
((left > 0)) && sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
elapsed=$(($(vw_now_ms) - t0))
vw_fleet_counts_are "3 3" "3 3" || vw_fail "after ${elapsed} ms the routers show $(vw_fleet_show_counts), expected 3 marked paths each"
vw_fleet_show_counts
vw_fleet_client_reaches_node || vw_fail "the client no longer reaches a node on the VIP"
reason=$(vw_fleet_reason 1)
echo "node 1 status reason: $reason"
[[ $reason == "held: at "*"203.0.113.10/32: leaving would leave 0 healthy announcers (2 marked"* ]] ||
  vw_fail "status reason does not say why: $reason"
vw_fleet_cli 1 status | grep -i held || true
vw_pass "after ${elapsed} ms all three paths still at BIRD and FRR, all marked; held after ${ms_held} ms; client reaches a node"
