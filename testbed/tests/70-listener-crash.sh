#!/usr/bin/env bash
# listener check (sock_diag, every 50 ms, fast 10 ms, fall 2): nginx crashes
# (SIGKILL to master and worker at once); nobody listens on the VIP any more and
# the route is gone at the router within 300 ms (asserted loosely: the tight
# figure is testbed/bench-detect.sh's). nginx restarts: the route comes back.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=crash-common.sh
source "$(dirname "$0")/crash-common.sh"
vw_test_begin "listener check: nginx crash -> route gone within 300 ms"

crash_begin "listener check" check_type=listener interval=50ms timeout=25ms
vw_assert "reason names the missing listener" vw_vipwarden_log_has "nobody listens on $VW_VIP4:80"
crash_restart
