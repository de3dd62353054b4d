#!/usr/bin/env bash
# process check (pidfd on nginx's master, every 250 ms, fast 50 ms, fall 2):
# nginx crashes (SIGKILL to master and worker at once); the exit is an event and
# the route is gone at the router within 300 ms (asserted loosely: the tight
# figure is testbed/bench-detect.sh's). nginx restarts with a new PID: the check
# re-reads the pid file and the route comes back.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=crash-common.sh
source "$(dirname "$0")/crash-common.sh"
vw_test_begin "process check: nginx crash -> route gone within 300 ms"

crash_begin "process check" check_type=process interval=250ms timeout=100ms
vw_assert "reason names the dead process" \
  vw_vipwarden_log_has "process $CRASH_PID \\(pid file [^)]*\\) (has exited|is not running)"
crash_restart
