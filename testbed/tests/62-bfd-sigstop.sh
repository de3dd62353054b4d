#!/usr/bin/env bash
# vipwarden frozen (SIGSTOP, a hung host): its BFD thread stops too, so the router with BFD drops
# the route within the detection time + 200 ms; the router without BFD after its hold timer.
# After SIGCONT the routes come back.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=bfd-common.sh
source "$(dirname "$0")/bfd-common.sh"
vw_test_begin "frozen vipwarden: BFD ($VW_BFD_DETECT_MS ms) vs hold timer (${VW_HOLD_TIME}s)"

vw_bfd_start
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
t0=$(vw_now_ms)
vw_signal_tree vipwarden STOP
trap 'vw_signal_tree vipwarden CONT 2>/dev/null || true; vw_test_on_exit $?' EXIT
vw_bfd_measure_loss "$t0" "SIGSTOP" "$log" "$mark"
vw_signal_tree vipwarden CONT
t1=$(vw_now_ms)
ms=$(vw_wait_until "$t1" 30000 has_both) || vw_fail "VIP not back at $VW_RLABEL ${ms} ms after SIGCONT"
vw_measured "SIGCONT -> route back at $VW_RLABEL" "$ms"
vw_pass "route gone at $VW_RLABEL in $VW_BFD_MS ms (BFD), at $(vw_router_label "$VW_OTHER_ROUTER") in $VW_HOLD_MS ms (hold timer); back ${ms} ms after SIGCONT"
