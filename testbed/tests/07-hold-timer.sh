#!/usr/bin/env bash
# Hold timer: vipwarden is frozen (SIGSTOP: process alive, TCP open, no
# KEEPALIVEs) like a hung host. The router must drop the session when its
# hold timer expires: between hold - keepalive - 1 s (the last KEEPALIVE can
# be up to one keepalive interval old) and hold + 2 s. After SIGCONT
# vipwarden must notice, reconnect and announce again.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "frozen vipwarden (SIGSTOP): hold timer withdraws, recovery after SIGCONT"

vw_start_vipwarden_and_wait
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
t0=$(vw_now_ms)
vw_signal_tree vipwarden STOP
ms=$(vw_wait_until "$t0" $(((VW_HOLD_TIME + 5) * 1000)) has_neither) || {
  vw_signal_tree vipwarden CONT
  vw_fail "VIP still at $VW_RLABEL ${ms} ms after freezing vipwarden"
}
vw_measured "SIGSTOP -> route gone (hold ${VW_HOLD_TIME}s)" "$ms"
sleep 0.2
cause=$(tail -n +"$((mark + 1))" "$log" | grep -E -m1 -i 'hold timer expired' || true)
vw_signal_tree vipwarden CONT
[[ -n $cause ]] || vw_fail "router did not log a hold timer expiry"
vw_info "router log: $cause"
vw_expect_within "hold timer" $(((VW_HOLD_TIME - VW_HOLD_TIME / 3 - 1) * 1000)) $(((VW_HOLD_TIME + 2) * 1000)) "$ms"
t1=$(vw_now_ms)
ms2=$(vw_wait_until "$t1" 30000 has_both) || vw_fail "VIP not re-announced ${ms2} ms after SIGCONT"
vw_measured "SIGCONT -> route back" "$ms2"
vw_pass "hold timer withdrew after ${ms} ms; route back ${ms2} ms after SIGCONT"
