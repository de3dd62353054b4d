#!/usr/bin/env bash
# lab-routers: both
# Fleet guard, ToR restarts while the whole fleet is held (issue 17, point 1): three nodes,
# every service down, all held (announced, marked) at BIRD and FRR. BIRD restarts alone, then
# both ToRs restart together (for every node, "the only ToR" of its view restarting; when_blind
# left at the daemon's default). The guard must keep holding: after each restart every node
# announces again, marked, within settle + 2 s of its session coming back, and the prefix is
# never missing longer (oracle I1/I2).
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "ToR restarts while every node is held: the held routes come back within settle + 2 s"

vw_guard_outage 1 2 3
vw_guard_wait_held 1 2 3

# Established sessions of the three nodes at ROUTER.
sessions_up() {
  case $1 in
    bird) [[ $(vw_birdc show protocols 2>/dev/null | grep -c 'Established') == 3 ]] ;;
    frr) [[ $(vw_vtysh -c 'show bgp ipv4 unicast summary json' 2>/dev/null |
      python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin).get("peers",{}).values() if p.get("state")=="Established"))' 2>/dev/null) == 3 ]] ;;
  esac
}

# back ROUTER T0: waits (bounded 30 s) for the sessions and then 3 marked paths at ROUTER; sets
# BACK_MS to the ms from the sessions being up to the paths being back.
back() {
  local r=$1 t0=$2 ms_s ms
  ms_s=$(vw_wait_until "$t0" 30000 sessions_up "$r") || vw_fail "$r: sessions not back 30 s after its restart"
  ms=$(vw_wait_until "$t0" 30000 eval "[[ \$(vw_fleet_route_counts $r) == '3 3' ]]") ||
    vw_fail "$r: the three held routes did not come back within 30 s of its restart (now $(vw_fleet_route_counts "$r"); sessions up after ${ms_s} ms)"
  vw_measured "$r restarted -> sessions up" "$ms_s"
  vw_measured "$r restarted -> 3 marked paths again" "$ms"
  (( ms - ms_s <= VW_GUARD_BUDGET_MS )) ||
    vw_fail "$r: held routes back $((ms - ms_s)) ms after the sessions (budget ${VW_GUARD_BUDGET_MS} ms)"
  BACK_MS=$((ms - ms_s))
}

vw_guard_tor_stop bird
sleep 2
t0=$(vw_now_ms)
vw_guard_tor_start bird
back bird "$t0"
a=$BACK_MS
vw_fleet_counts_are "3 3" "3 3" || vw_fail "after BIRD's restart: $(vw_fleet_show_counts)"

vw_guard_tor_stop bird
vw_guard_tor_stop frr
sleep 2
t0=$(vw_now_ms)
vw_guard_tor_start bird
vw_guard_tor_start frr
back bird "$t0"
b1=$BACK_MS
back frr "$t0"
b2=$BACK_MS
sleep $(((VW_GUARD_SETTLE_MS + 3000) / 1000))
vw_fleet_counts_are "3 3" "3 3" || vw_fail "settle + 3 s after both ToRs restarted: $(vw_fleet_show_counts), expected 3 marked paths each"
vw_guard_verdict
vw_pass "held routes back at BIRD ${a} ms after its sessions; after both ToRs restarted: BIRD ${b1} ms, FRR ${b2} ms after the sessions; 3 marked paths at both; no I1/I2 break"
