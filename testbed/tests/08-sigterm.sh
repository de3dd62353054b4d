#!/usr/bin/env bash
# SIGTERM: vipwarden withdraws its routes BEFORE closing the session, sends
# NOTIFICATION Cease/Administrative Shutdown and exits 0.
#
# How the order is proven: polling the router cannot tell "withdrawn, then
# closed" from "closed, routes flushed" when both happen within a few ms. The
# routers' own logs can: both log every received UPDATE (BIRD "debug routes",
# FRR "debug bgp updates in") and the received NOTIFICATION, in the order
# they processed them. If vipwarden skipped the withdrawal, the route removal
# would be logged only AFTER the notification (BIRD "removed" during flush,
# FRR no "withdrawn" line at all). So the test requires, in the lines logged
# after SIGTERM: a withdrawal line for both VIP prefixes, then the
# Administrative Shutdown line.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "SIGTERM: withdraw, then Cease/Administrative Shutdown, exit 0"

vw_start_vipwarden_and_wait
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
pid=$(vw_pid_of vipwarden)
t0=$(vw_now_ms)
vw_signal vipwarden TERM
ms=$(vw_wait_until "$t0" 5000 has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after SIGTERM"
vw_wait_pid_exit "$pid" 10000 || vw_fail "vipwarden still running 10 s after SIGTERM"
exit_ms=$(($(vw_now_ms) - t0))
code=${VW_EXIT_CODE:-unknown}
vw_measured "SIGTERM -> route gone" "$ms"
vw_measured "SIGTERM -> vipwarden exited" "$exit_ms"
sleep 0.3
after=$VW_RUN_DIR/router-after-sigterm.log
tail -n +"$((mark + 1))" "$log" | grep -v 'Update Group' >"$after" || true

vw_assert_withdrawn_before_cease "$after"
[[ $code == 0 ]] || vw_fail "vipwarden exit code $code, expected 0"
vw_pass "withdrawals logged before the Cease at $VW_RLABEL; route gone in ${ms} ms; exit 0 after ${exit_ms} ms"
