#!/usr/bin/env bash
# The IPv6 VIP arrives through MP-BGP over the IPv4 session, with the
# configured global IPv6 next hop, and leaves with the IPv4 one.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "IPv6 VIP over the IPv4 session (MP-BGP)"

vw_start_vipwarden_and_wait
peer=$(vw_router_peer_addr "$VW_ROUTER")
vw_assert "session address $peer is IPv4" test "${peer//[0-9.]/}" = ""
want_nh=$(vw_router_peer_addr6 "$VW_ROUTER")
nh=$(router_next_hop "$VW_ROUTER" "$VW_VIP6_PREFIX")
vw_info "$VW_VIP6_PREFIX at $VW_RLABEL: next hop $nh, as_path $(router_as_path "$VW_ROUTER" "$VW_VIP6_PREFIX")"
[[ $nh == "$want_nh" ]] || vw_fail "IPv6 next hop is '$nh', expected $want_nh"
comms=$(router_communities "$VW_ROUTER" "$VW_VIP6_PREFIX")
[[ $comms == 65101:100 ]] || vw_fail "IPv6 route communities '$comms', expected 65101:100"
if [[ $VW_ROUTER == bird ]]; then
  # BIRD resolved the next hop on the link (gateway direct), not unreachable.
  vw_birdc show route "$VW_VIP6_PREFIX" | grep -q "via $want_nh on bird-n1" ||
    vw_fail "BIRD did not resolve $want_nh on bird-n1"
fi
t0=$(vw_now_ms)
vw_nginx_stop
ms=$(vw_wait_until "$t0" 8000 vw_not has6) || vw_fail "IPv6 VIP not withdrawn"
vw_measured "nginx stopped -> IPv6 route gone" "$ms"
vw_pass "IPv6 VIP with next hop $nh via IPv4 session $peer; withdrawn in ${ms} ms"
