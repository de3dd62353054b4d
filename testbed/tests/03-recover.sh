#!/usr/bin/env bash
# Start nginx again after an outage: the route is back after rise x interval.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "restart nginx: route back after rise"

vw_start_vipwarden_and_wait
vw_nginx_stop
ms=$(vw_wait_until now 10000 has_neither) || vw_fail "VIP not withdrawn after nginx stopped"
vw_info "withdrawn after ${ms} ms; restarting nginx"
t0=$(vw_now_ms)
vw_nginx_start
ms=$(vw_wait_until "$t0" 15000 has_both) || vw_fail "VIP not back at $VW_RLABEL ${ms} ms after nginx restart"
vw_measured "nginx restarted -> route back (rise=$VW_RISE)" "$ms"
vw_expect_within "rise" $(((VW_RISE - 1) * VW_INTERVAL_MS - 100)) $((VW_RISE * VW_INTERVAL_MS + 1000)) "$ms"
vw_vipwarden_route_log | tail -n 4
vw_pass "route back at $VW_RLABEL ${ms} ms after nginx restart"
