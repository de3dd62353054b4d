# shellcheck shell=bash
# Shared flow of the fast-check crash scenarios (70-listener-crash, 71-process-crash), sourced
# after common.sh: nginx crashes (SIGKILL to master and worker at once), the route must be gone
# at the router within 300 ms (asserted loosely: the tight figures are testbed/bench-detect.sh's),
# then nginx restarts with a new PID and the route comes back. The scenario names the check and
# asserts the reason vipwarden logged, between crash_begin and crash_restart.

# shellcheck disable=SC2034 # read by lib.sh's vw_wait_until: poll the router every 10 ms
VW_POLL_MS=10

# crash_begin KIND CONFIG_KEY=VALUE...: vipwarden with the check (vw_vipwarden_config keys),
# then the crash. Sets CRASH_PID (nginx's master before the crash) and CRASH_GONE_MS.
crash_begin() {
  local kind=$1
  shift
  vw_start_vipwarden_and_wait "$@"
  CRASH_PID=$(vw_pid_of nginx)
  vw_pid_is_ours "$CRASH_PID" || vw_fail "nginx is not running"
  local t0
  t0=$(vw_now_ms)
  kill -KILL -- "-$CRASH_PID" # vw_spawn ran nginx under setsid: its PID is its process group
  CRASH_GONE_MS=$(vw_wait_until "$t0" 5000 vw_not has4) ||
    vw_fail "VIP still at $VW_RLABEL ${CRASH_GONE_MS} ms after nginx crashed"
  vw_measured "nginx crash -> route gone ($kind)" "$CRASH_GONE_MS"
  vw_expect_within "crash -> withdrawn" 0 300 "$CRASH_GONE_MS"
  vw_assert "IPv6 VIP withdrawn too" has_neither
  vw_assert "session stays up while withdrawing" session_up
  vw_expect_route_log withdrew
}

# crash_restart: nginx starts again (a new master PID, which the process check must pick up
# from the pid file) and the route comes back; PASS.
crash_restart() {
  vw_wait_pid_exit "$CRASH_PID" 2000 || true
  vw_nginx_start
  [[ $(vw_pid_of nginx) != "$CRASH_PID" ]] || vw_fail "nginx restarted with the same PID"
  local ms
  ms=$(vw_wait_until now 5000 has_both) || vw_fail "VIP not back ${ms} ms after nginx restarted"
  vw_measured "nginx restarted -> route back (rise 2)" "$ms"
  vw_pass "route gone from $VW_RLABEL ${CRASH_GONE_MS} ms after nginx crashed; back ${ms} ms after restart"
}
