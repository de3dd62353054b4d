#!/usr/bin/env bash
# listener check (sock_diag, every 50 ms, fast 10 ms, fall 2): nginx crashes
# (SIGKILL to master and worker at once); nobody listens on the VIP any more and
# the route is gone at the router within 300 ms (asserted loosely: the tight
# figure is testbed/bench-detect.sh's). nginx restarts: the route comes back.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
VW_POLL_MS=10
vw_test_begin "listener check: nginx crash -> route gone within 300 ms"

vw_start_vipwarden_and_wait check_type=listener interval=50ms timeout=25ms
pid=$(vw_pid_of nginx)
vw_pid_is_ours "$pid" || vw_fail "nginx is not running"
t0=$(vw_now_ms)
kill -KILL -- "-$pid" # vw_spawn ran nginx under setsid: its PID is its process group
gone=$(vw_wait_until "$t0" 5000 vw_not has4) || vw_fail "VIP still at $VW_RLABEL ${gone} ms after nginx crashed"
vw_measured "nginx crash -> route gone (listener check)" "$gone"
vw_expect_within "crash -> withdrawn" 0 300 "$gone"
vw_assert "IPv6 VIP withdrawn too" has_neither
vw_assert "session stays up while withdrawing" session_up
vw_expect_route_log withdrew
vw_assert "reason names the missing listener" vw_vipwarden_log_has "nobody listens on $VW_VIP4:80"
vw_wait_pid_exit "$pid" 2000 || true
vw_nginx_start
ms=$(vw_wait_until now 5000 has_both) || vw_fail "VIP not back ${ms} ms after nginx restarted"
vw_measured "nginx restarted -> route back (rise 2)" "$ms"
vw_pass "route gone from $VW_RLABEL ${gone} ms after nginx crashed; back ${ms} ms after restart"
