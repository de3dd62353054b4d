#!/usr/bin/env bash
# lab-routers: both
# Fleet guard without ADD-PATH: both ToRs send only their best path. Every
# node warns that its view is partial (with the router-side line to add).
# All three services stop: the best paths the ToRs show are marked nodes, no
# peer gives a full view, so each guard is blind and follows when_blind
# (hold here): the VIP stays, and status says "blind".
# shellcheck source=fleet-common.sh
source "$(dirname "$0")/fleet-common.sh"
VW_FLEET_ADDPATH_BIRD=0
VW_FLEET_ADDPATH_FRR=0
VW_FLEET_WHEN_BLIND=hold
vw_fleet_begin "ToRs without add-path: the guard is blind and follows when_blind (hold)"

for i in 1 2 3; do
  sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden$i.log" | grep "is partial for IPv4.*add paths tx" >/dev/null ||
    vw_fail "node $i did not warn about its partial view"
done
sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden1.log" | grep -m1 "is partial for IPv4"
t0=$(vw_now_ms)
for i in 1 2 3; do vw_fleet_nginx_kill "$i"; done
for i in 1 2 3; do
  ms=$(vw_wait_until "$t0" 15000 eval "[[ \$(vw_fleet_state $i) == held ]]") ||
    vw_fail "node $i not held: $(vw_fleet_state "$i") ($(vw_fleet_reason "$i"))"
done
vw_measured "all stopped, no add-path -> all three held (blind)" "$ms"
reason=$(vw_fleet_reason 1)
echo "node 1: $reason"
[[ $reason == "held: at "*"no view (no ADD-PATH), when_blind: hold"* ]] || vw_fail "reason does not say blind: $reason"
sleep 5
vw_fleet_counts_are "3 3" "3 3" || vw_fail "routes changed while held: $(vw_fleet_show_counts)"
vw_fleet_show_counts
vw_fleet_cli 1 status --json | python3 -c '
import json, sys
v = next(v for v in json.load(sys.stdin)["vips"] if v["name"] == "web")
f = v["fleet"]
print("status fleet: guard", f["guard"], "| blind", [p["blind"] for p in f["prefixes"]], "| warning:", f["warnings"][0])
assert all(p["blind"] for p in f["prefixes"])'
vw_pass "no add-path at either ToR: all three nodes held as blind (when_blind: hold) ${ms} ms after the stops; 3 marked paths stay at both routers"
