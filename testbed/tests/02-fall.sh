#!/usr/bin/env bash
# Stop nginx (by its PID): the route is gone within
# fall x interval + timeout + 1 s.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "stop nginx: route withdrawn within fall x interval + timeout + 1 s"

vw_start_vipwarden_and_wait
budget=$((VW_FALL * VW_INTERVAL_MS + VW_TIMEOUT_MS + 1000))
t0=$(vw_now_ms)
vw_nginx_stop
ms=$(vw_wait_until "$t0" $((budget + 5000)) has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after nginx stopped"
vw_measured "nginx stopped -> route gone (fall=$VW_FALL)" "$ms"
vw_expect_within "fall" 0 "$budget" "$ms"
vw_assert "session stays up while withdrawing" session_up
vw_vipwarden_route_log | tail -n 4
vw_expect_route_log withdrew
vw_pass "route withdrawn from $VW_RLABEL ${ms} ms after nginx stopped (budget ${budget} ms)"
