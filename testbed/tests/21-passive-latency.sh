#!/usr/bin/env bash
# Passive signal, latency: nginx proxies "/" to a tiny python3 backend in
# vw-node1 (127.0.0.1:8081, lib/slow_backend.py) that sleeps 2 s per request
# while a flag file exists; /healthz is answered by nginx itself and stays
# fast and 200. vipwarden withdraws when web_log.latency_p99 stays above
# 1500ms for 5 s (window 10 s); back on probation after hold_down (10 s).
#
# What is timed: the fault (flag created) -> the moment more than 1% of the
# 10 s window's requests took longer than 1.5 s (p99 above 1500ms, seen by
# the independent access-log follower). Slow requests are logged when they
# complete (2 s after they start) and the window must first lose most of its
# fast requests (4 connections x 2 s = 2 slow requests/s against thousands of
# fast ones a second earlier), so this takes several seconds -> route gone,
# which must take `for` (5 s), -1 s / +2 s.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=passive-common.sh
source "$(dirname "$0")/passive-common.sh"
VW_NGINX_ACCESS_LOG=1
VW_NGINX_UPSTREAM=127.0.0.1:8081
PS_METRIC=latency_p99
PS_ERR_ABOVE=0.05
PS_LAT_ABOVE_S=1.5
PS_MIN_REQUESTS=20
PS_WRK_TIMEOUT=5s
PS_CONDITION="      - signal: web_log.latency_p99
        above: 1500ms
        for: 5s
        restore_below: 500ms
        restore_for: 5s"
PS_FAULT_ON="slow_backend on"
PS_FAULT_OFF="slow_backend off"

slow_backend() {
  case $1 in
    on) : >"$VW_RUN_DIR/slow" ;;
    off) rm -f "$VW_RUN_DIR/slow" ;;
  esac
}

backend_serves() { vw_in "$VW_NS_NODE" curl -sf --max-time 1 "http://$VW_VIP4/" >/dev/null; }

vw_test_begin "passive: p99 latency of / above 1500ms (healthz green) withdraws after for=5s; back on probation after hold_down"
vw_spawn slow-backend "$VW_NS_NODE" "$VW_RUN_DIR/slow-backend.log" \
  python3 "$VW_TESTBED_DIR/lib/slow_backend.py" 127.0.0.1 8081 "$VW_RUN_DIR/slow" 2
vw_wait_until now 5000 backend_serves >/dev/null || vw_fail "slow backend not serving through nginx"
vw_info "slow backend up (PID $(vw_pid_of slow-backend))"

ps_start
ps_fault_and_withdraw
ps_assert_reasons
ps_recover
vw_pass "withdrawn on web_log.latency_p99 with /healthz green; re-announced after hold_down and stayed ${PS_STABLE_S}s"
