#!/usr/bin/env bash
# lab-routers: both
# Fleet guard and operator drains: nodes 2 and 3 fail (and leave, each
# counting node 1 healthy); draining node 1, the last healthy announcer, is
# refused (API 409, CLI exit 1) and changes nothing; with --force it drains
# (marked first), the daemon logs it as forced, and nodes 2 and 3 fail open:
# back, marked, so the prefix never leaves either router.
# shellcheck source=fleet-common.sh
source "$(dirname "$0")/fleet-common.sh"
vw_fleet_begin "an operator drain of the last healthy node is refused; --force drains it"

t0=$(vw_now_ms)
vw_fleet_nginx_kill 2
vw_fleet_nginx_kill 3
ms=$(vw_wait_until "$t0" 15000 vw_fleet_counts_are "1 0" "1 0") ||
  vw_fail "nodes 2 and 3 did not leave ($(vw_fleet_show_counts))"
vw_measured "nginx stopped on nodes 2 and 3 -> only node 1 left at both routers" "$ms"
vw_fleet_show_counts

rc=0
out=$(vw_fleet_cli 1 drain web --reason "lab: drain the last one" 2>&1) || rc=$?
echo "drain without --force (exit $rc): $out"
((rc != 0)) || vw_fail "drain of the last healthy announcer was accepted"
[[ $out == *"refused by the fleet guard"* && $out == *"203.0.113.10/32: leaving would leave 0 healthy announcers"* ]] ||
  vw_fail "refusal does not give the count: $out"
sleep 1
vw_fleet_counts_are "1 0" "1 0" || vw_fail "a refused drain changed the routes: $(vw_fleet_show_counts)"
[[ $(vw_fleet_state 1) == announced ]] || vw_fail "node 1 is $(vw_fleet_state 1) after a refused drain"

t1=$(vw_now_ms)
out=$(vw_fleet_cli 1 drain web --reason "lab: forced" --force 2>&1) || vw_fail "forced drain failed: $out"
echo "drain --force: $out"
# --force skips the count, never the mark and settle (3 s). Node 1 marks, so neither ToR shows a
# healthy announcer any more: nodes 2 and 3 fail open and come back, marked, after the dwell;
# then node 1 leaves. The prefix is never absent.
ms=$(vw_wait_until "$t1" 10000 vw_fleet_counts_are "2 2" "2 2") ||
  vw_fail "forced drain: expected nodes 2 and 3 back marked and node 1 gone ($(vw_fleet_show_counts))"
((ms >= 2900)) || vw_fail "forced drain withdrew after ${ms} ms, before its marked phase"
vw_measured "drain --force -> node 1 gone, nodes 2 and 3 back marked at both routers" "$ms"
[[ $(vw_fleet_state 1) == maintenance ]] || vw_fail "node 1 is $(vw_fleet_state 1) after a forced drain"
for i in 2 3; do
  [[ $(vw_fleet_state "$i") == held ]] || vw_fail "node $i is $(vw_fleet_state "$i"), expected held (fail open)"
done
vw_fleet_show_counts
vw_fleet_client_reaches_node || vw_fail "the client no longer reaches a node on the VIP"
sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden1.log" | grep -E "drain refused by the fleet guard|forced drain" ||
  vw_fail "refusal and forced drain are not both logged"
sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden2.log" | grep -m1 "fail open: back at" ||
  vw_fail "node 2 did not log its fail-open return"
vw_pass "drain refused (exit $rc) with the count; --force: node 1 left both routers after its marked phase, nodes 2 and 3 back marked (fail open) ${ms} ms after the drain; client served"
