#!/usr/bin/env bash
# kill -9 of vipwarden. The process cannot withdraw anything. On a live host
# the kernel still closes the dead process's TCP sockets (FIN), so the router
# drops the session and its routes at once; the hold timer is only the upper
# bound (it is what fires when the whole host or link dies: see
# 07-hold-timer.sh). The test requires the routes gone within hold time + 2 s
# and reports which mechanism the router logged.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "kill -9 of vipwarden: router withdraws (TCP close or hold timer)"

vw_start_vipwarden_and_wait
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
t0=$(vw_now_ms)
vw_signal vipwarden KILL
ms=$(vw_wait_until "$t0" $(((VW_HOLD_TIME + 5) * 1000)) has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after kill -9"
vw_measured "kill -9 -> route gone" "$ms"
vw_expect_within "kill -9 withdrawal" 0 $(((VW_HOLD_TIME + 2) * 1000)) "$ms"
sleep 0.2
cause=$(tail -n +"$((mark + 1))" "$log" | grep -E -m1 -i 'hold timer expired|connection closed|peer closed the session' || true)
cause=${cause##*> }
cause=${cause##*] }
vw_info "router log: ${cause:-no cause line found}"
vw_pass "route gone from $VW_RLABEL ${ms} ms after kill -9 (router: ${cause:-no cause logged})"
