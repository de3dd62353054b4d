#!/usr/bin/env bash
# Data plane follows the control plane: a client behind the ToR reaches nginx
# on the VIP (IPv4 and IPv6) through the route the ToR learned from
# vipwarden and installed in its kernel FIB; when nginx dies the route leaves
# the ToR's FIB, and when nginx is back the client is served again.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "client traffic through the ToR follows the announcement"

vw_client_via "$VW_ROUTER"
vw_start_vipwarden_and_wait
client_ok4() { [[ $(vw_client_get "$VW_VIP4") == "served by vw-node1" ]]; }
client_ok6() { [[ $(vw_client_get "[$VW_VIP6]") == "served by vw-node1" ]]; }
fib_has_vip() { vw_router_fib_has "$VW_ROUTER" "$VW_VIP4" || vw_router_fib_has "$VW_ROUTER" "$VW_VIP6"; }
vw_wait_until now 5000 client_ok4 >/dev/null || vw_fail "client cannot reach http://$VW_VIP4/ via $VW_RLABEL"
vw_wait_until now 5000 client_ok6 >/dev/null || vw_fail "client cannot reach http://[$VW_VIP6]/ via $VW_RLABEL"
vw_info "client served over IPv4 and IPv6 via $VW_RLABEL"

t0=$(vw_now_ms)
vw_nginx_stop
ms=$(vw_wait_until "$t0" 8000 vw_not fib_has_vip) || vw_fail "VIP still in $VW_RLABEL's FIB ${ms} ms after nginx stopped"
vw_measured "nginx stopped -> VIP out of the ToR FIB" "$ms"
err=$(vw_client_get "$VW_VIP4" 2>&1 || true)
vw_info "client now gets: ${err:-nothing}"

t0=$(vw_now_ms)
vw_nginx_start
ms2=$(vw_wait_until "$t0" 15000 client_ok4) || vw_fail "client not served ${ms2} ms after nginx restart"
vw_measured "nginx restarted -> client served again via ToR" "$ms2"
vw_assert "IPv6 client served again" client_ok6
vw_pass "VIP left $VW_RLABEL's FIB ${ms} ms after the failure; client served again ${ms2} ms after recovery"
