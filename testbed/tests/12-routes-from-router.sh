#!/usr/bin/env bash
# The ToR sends the node a table (as real ToRs send a default route or more):
# 256 IPv4 /32s and VW_ROUTER_EXPORT (default 2000) IPv6 /64s, the IPv6 ones
# over the IPv4 session with the ToR's IPv6 next hop (FRR: global +
# link-local, a 32-byte MP_REACH next hop). vipwarden must parse and ignore
# them: the session stays up for two hold times without a reset, and the VIP
# still comes and goes with the service.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
export VW_ROUTER_EXPORT=${VW_ROUTER_EXPORT_COUNT:-2000}
vw_test_begin "router sends $VW_ROUTER_EXPORT IPv6 + 256 IPv4 routes to the node"

vw_start_vipwarden_and_wait
peer=$(vw_router_peer_addr "$VW_ROUTER")
# Routes the router has sent to the node (gobgpd may still be loading its
# injected table when the session comes up: wait for the whole table).
count_sent() {
  local sent n af
  case $VW_ROUTER in
    bird) sent=$(vw_birdc show protocols all node1 | awk '/exported/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^exported/) s += $i} END {print s + 0}') ;;
    frr)
      sent=0
      for af in ipv4 ipv6; do
        n=$(vw_vtysh -c "show bgp $af unicast neighbors $peer advertised-routes json" |
          python3 -c 'import json,sys; print(json.load(sys.stdin).get("totalPrefixCounter", 0))')
        sent=$((sent + n))
      done
      ;;
    gobgp)
      sent=0
      for af in ipv4 ipv6; do
        n=$(vw_gobgp_tor_cli neighbor "$peer" adj-out -a "$af" -j | python3 -c 'import json,sys; print(len(json.load(sys.stdin) or {}))')
        sent=$((sent + n))
      done
      ;;
  esac
  echo "$sent"
}
whole_table_sent() { (($(count_sent) >= 256 + VW_ROUTER_EXPORT)); }
vw_wait_until now 30000 whole_table_sent >/dev/null || true
sent=$(count_sent)
vw_info "$VW_RLABEL advertised $sent routes to the node"
((sent >= 256 + VW_ROUTER_EXPORT)) || vw_fail "$VW_RLABEL advertised only $sent routes"

up0=$(router_session_uptime_ms "$VW_ROUTER")
soak=$((2 * VW_HOLD_TIME + 2))
vw_info "soaking ${soak} s (two hold times)"
sleep "$soak"
up1=$(router_session_uptime_ms "$VW_ROUTER")
vw_assert "session still Established" session_up
((up1 - up0 >= (soak - 1) * 1000)) || vw_fail "session was reset during the soak (uptime ${up0} -> ${up1} ms)"
vw_assert "VIP still announced" has_both
if vw_vipwarden_log_has "session with $(vw_peer_name) (failed|closed)|NOTIFICATION"; then
  vw_vipwarden_log_has "NOTIFICATION" && grep -a NOTIFICATION "$VW_RUN_DIR/vipwarden.log" | head -3 >&2
  vw_fail "vipwarden logged a session failure while receiving the table"
fi
t0=$(vw_now_ms)
vw_nginx_stop
ms=$(vw_wait_until "$t0" 8000 has_neither) || vw_fail "VIP not withdrawn with the table loaded"
vw_measured "nginx stopped -> route gone (router sent $sent routes)" "$ms"
vw_pass "$sent routes received, session up $((up1 / 1000)) s without reset; VIP withdrawn in ${ms} ms"
