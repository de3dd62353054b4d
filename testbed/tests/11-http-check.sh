#!/usr/bin/env bash
# HTTP check: the VIP follows the status code of http://VIP/healthz, not
# just the open port. nginx keeps running and listening; its health endpoint
# switches to 503 (drain) and back to 200.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "http check: 503 from /healthz withdraws, 200 re-announces"

vw_start_vipwarden_and_wait check_type=http
budget=$((VW_FALL * VW_INTERVAL_MS + VW_TIMEOUT_MS + 1000))
t0=$(vw_now_ms)
vw_nginx_drain on
ms=$(vw_wait_until "$t0" $((budget + 5000)) has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after /healthz started answering 503"
vw_measured "/healthz 503 -> route gone" "$ms"
vw_expect_within "fall (http)" 0 "$budget" "$ms"
vw_assert "nginx still listening (only the health endpoint failed)" vw_nginx_listening
t0=$(vw_now_ms)
vw_nginx_drain off
ms2=$(vw_wait_until "$t0" 15000 has_both) || vw_fail "VIP not back ${ms2} ms after /healthz answered 200 again"
vw_measured "/healthz 200 -> route back" "$ms2"
vw_expect_within "rise (http)" $(((VW_RISE - 1) * VW_INTERVAL_MS - 100)) $((VW_RISE * VW_INTERVAL_MS + 1000)) "$ms2"
vw_vipwarden_route_log | tail -n 4
vw_pass "503 withdrew in ${ms} ms, 200 re-announced in ${ms2} ms"
