#!/usr/bin/env bash
# Router restart: the router under test is killed (SIGKILL, a crash) and
# started again with the same config. vipwarden must reconnect and announce
# again; the other router is not disturbed and keeps the route throughout.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "router crash + restart: route comes back everywhere"

vw_start_vipwarden_and_wait
other_has() { router_has_prefix "$VW_OTHER_ROUTER" "$VW_VIP4_PREFIX" && router_has_prefix "$VW_OTHER_ROUTER" "$VW_VIP6_PREFIX"; }
vw_wait_until now 20000 other_has >/dev/null || vw_fail "VIP not at $(vw_router_label "$VW_OTHER_ROUTER") before the restart"
vw_router_stop "$VW_ROUTER" KILL
sleep 1
t0=$(vw_now_ms)
vw_router_start "$VW_ROUTER"
ms=$(vw_wait_until "$t0" 40000 has_both) || vw_fail "VIP not back at $VW_RLABEL ${ms} ms after its restart"
vw_measured "router restarted -> route back" "$ms"
vw_assert "the other router still has the VIP" other_has
vw_pass "route back at $VW_RLABEL ${ms} ms after restart; $(vw_router_label "$VW_OTHER_ROUTER") kept it"
