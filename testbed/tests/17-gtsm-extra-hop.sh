#!/usr/bin/env bash
# GTSM refuses a peer one hop further away. The node's link to the router is
# rebuilt through an extra namespace (vw-hop) that forwards and proxy-ARPs,
# so the router still sees the node on its connected /30 (as a spoofer on
# another segment would look) but every packet crosses one more hop (TTL
# 255 -> 254).
#  1. control: no GTSM, the router configured for a peer two hops away (eBGP
#     multihop 2; single-hop eBGP sends with TTL 1, which the hop drops) ->
#     the session comes up through the hop;
#  2. GTSM on both sides, the router configured for a directly connected peer
#     (accepts only TTL 255) -> the node's TTL-255 segments arrive with 254:
#     never Established, and vipwarden's status explains the silence.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_skip_on gobgp "the GTSM refusal is proven with BIRD and FRR; GoBGP runs the directly connected GTSM scenario (16)"
printf '=== %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "GTSM with the peer one extra hop away: refused"
vw_run_dir_init
trap 'vw_test_on_exit $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

VW_NS_HOP=vw-hop
VW_LAB_ROUTERS=$VW_ROUTER
vw_topology_up
# Replace the direct node <-> router link by node <-> vw-hop <-> router, same
# addresses and interface names at both ends.
rns=$(vw_router_ns "$VW_ROUTER")
nif=n1-$VW_ROUTER rif=$VW_ROUTER-n1
raddr=$(vw_router_addr "$VW_ROUTER") naddr=$(vw_router_peer_addr "$VW_ROUTER")
case $VW_ROUTER in bird) r6=$VW_BIRD_V6 ;; frr) r6=$VW_FRR_V6 ;; esac
n6=$(vw_router_peer_addr6 "$VW_ROUTER")
vw_in "$VW_NS_NODE" ip link del "$nif"
vw_netns_create "$VW_NS_HOP"
vw_link "$VW_NS_NODE" "$nif" "$VW_NS_HOP" hop-n1
vw_link "$rns" "$rif" "$VW_NS_HOP" hop-r
vw_addr "$VW_NS_NODE" "$nif" "$naddr/30"
vw_addr "$VW_NS_NODE" "$nif" "$n6/64"
vw_addr "$rns" "$rif" "$raddr/30"
vw_addr "$rns" "$rif" "$r6/64"
vw_addr "$VW_NS_HOP" lo 198.51.100.30/32
vw_in "$VW_NS_HOP" ip route add "$naddr/32" dev hop-n1
vw_in "$VW_NS_HOP" ip route add "$raddr/32" dev hop-r
vw_in "$VW_NS_HOP" sysctl -qw net.ipv4.conf.hop-n1.proxy_arp=1 net.ipv4.conf.hop-r.proxy_arp=1
# Packets the hop forwarded (IP ForwDatagrams): proof the session crossed it.
hop_forwarded() { vw_in "$VW_NS_HOP" awk '/^Ip: [0-9]/ {print $7}' /proc/net/snmp; }

# 1. Control: no GTSM anywhere, the session works through the hop.
VW_ROUTER_MULTIHOP=2 vw_router_start "$VW_ROUTER"
vw_nginx_start
VW_PEERS=$VW_ROUTER
vw_vipwarden_start
vw_wait_session_up 20000
fwd=$(hop_forwarded)
((fwd > 0)) || vw_fail "vw-hop forwarded nothing: the session did not cross the extra hop"
vw_info "control: Established through the extra hop without GTSM, router multihop 2 (vw-hop forwarded $fwd packets)"
vw_stop vipwarden TERM 8000
vw_router_stop "$VW_ROUTER" TERM

# 2. GTSM on both sides: the router drops the node's TTL-254 segments.
export VW_ROUTER_GTSM=1
vw_router_start "$VW_ROUTER"
vw_vipwarden_start peer_extra="    ttl_security: true" top_extra="$(vw_api_yaml)"
last_error() {
  vw_status_json | python3 -c 'import json,sys
d = json.load(sys.stdin)
print(next((p.get("last_error") or "") for p in d["peers"] if p["name"] == sys.argv[1]))' "$(vw_peer_name)"
}
# BIRD and FRR accept the TCP handshake on their shared listening socket and
# set the GTSM minimum on the accepted one, so what they refuse is the node's
# data (OPEN, KEEPALIVE) that arrives with TTL 254: the router's session must
# never reach Established, and no route may appear there.
t0=$(vw_now_ms)
window=$((2 * VW_HOLD_TIME * 1000))
states=()
while (($(vw_now_ms) - t0 < window)); do
  st=$(router_session_state "$VW_ROUTER")
  [[ " ${states[*]} " == *" $st "* ]] || states+=("$st")
  [[ $st != Established ]] || vw_fail "$VW_RLABEL reached Established with a peer one hop too far despite GTSM"
  if has4 || has6; then vw_fail "VIP route at $VW_RLABEL despite GTSM"; fi
  sleep 0.5
done
err=$(last_error)
vw_info "router states seen in $((window / 1000)) s: ${states[*]}; vipwarden last_error: $err"
[[ -n $err ]] || vw_fail "vipwarden's status shows no error for the refused session"
vw_pass "without GTSM Established through the extra hop; with GTSM never Established at $VW_RLABEL in $((window / 1000)) s (states: ${states[*]}); vipwarden: \"$err\""
