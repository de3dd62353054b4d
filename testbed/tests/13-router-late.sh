#!/usr/bin/env bash
# vipwarden starts while the router under test is not running (connection
# refused). It must keep retrying and announce the VIP once the router is up;
# the other router is served meanwhile.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "router comes up after vipwarden: retry, then announce"

vw_router_stop "$VW_ROUTER" TERM
vw_vipwarden_start
other_has() { router_has_prefix "$VW_OTHER_ROUTER" "$VW_VIP4_PREFIX" && router_has_prefix "$VW_OTHER_ROUTER" "$VW_VIP6_PREFIX"; }
vw_wait_until now 20000 other_has >/dev/null || vw_fail "VIP not at $(vw_router_label "$VW_OTHER_ROUTER") while $VW_RLABEL is down"
sleep 5 # several refused connection attempts
t0=$(vw_now_ms)
vw_router_start "$VW_ROUTER"
ms=$(vw_wait_until "$t0" 40000 has_both) || vw_fail "VIP not at $VW_RLABEL ${ms} ms after it started"
vw_measured "late router started -> route at router" "$ms"
vw_pass "route at $VW_RLABEL ${ms} ms after it came up; $(vw_router_label "$VW_OTHER_ROUTER") served meanwhile"
