#!/usr/bin/env bash
# Passive signal, errors: "/" answers 503 while /healthz stays 200. vipwarden
# reads nginx's access log and withdraws when web_log.error_ratio stays above
# 5% for 5 s (window 10 s); the http check on /healthz never fails. After the
# repair nothing reaches the withdrawn VIP, so it comes back on probation
# after hold_down (10 s) and stays with healthy traffic.
#
# What is timed: the fault (flag file created) -> the moment the 10 s
# window's 5xx ratio first exceeds 5% (seen by an independent follower of the
# access log, lib/access_window.py; at thousands of requests/s that is
# ~0.5 s: 5% of the window's traffic) -> route gone at the router, which must
# take `for` (5 s), -1 s / +2 s.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=passive-common.sh
source "$(dirname "$0")/passive-common.sh"
VW_NGINX_ACCESS_LOG=1
PS_METRIC=error_ratio
PS_ERR_ABOVE=0.05
PS_LAT_ABOVE_S=1.5
PS_MIN_REQUESTS=20
PS_WRK_TIMEOUT=2s
PS_CONDITION="      - signal: web_log.error_ratio
        above: 0.05
        for: 5s
        restore_below: 0.01
        restore_for: 5s
        min_requests: 20"
PS_FAULT_ON="vw_nginx_fail on"
PS_FAULT_OFF="vw_nginx_fail off"
vw_test_begin "passive: 503s on / (healthz green) withdraw after for=5s; back on probation after hold_down"

ps_start
ps_fault_and_withdraw
ps_assert_reasons
ps_recover
vw_pass "withdrawn on web_log.error_ratio with /healthz green; re-announced after hold_down and stayed ${PS_STABLE_S}s"
