#!/usr/bin/env bash
# Graceful stop: with `shutdown: graceful` and drain_period 8 s, SIGTERM
# keeps the session Established and the route announced with 65535:0 for
# the drain period, then withdraws it BEFORE the NOTIFICATION Cease (proven
# from the router's log, as in 08-sigterm), and vipwarden exits 0.
# (drain_until_connections: off: a timed drain, the period is what is measured.)
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
DRAIN_PERIOD_MS=8000
vw_test_begin "graceful SIGTERM: 65535:0 for drain_period with the session up, withdraw, then Cease; exit 0"

vw_start_vipwarden_and_wait vip_extra="    shutdown: graceful
    drain_period: $((DRAIN_PERIOD_MS / 1000))s
    drain_until_connections: off"
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
pid=$(vw_pid_of vipwarden)
t0=$(vw_now_ms)
vw_signal vipwarden TERM
ms_g=$(vw_wait_until "$t0" 5000 has_gshut) || vw_fail "no 65535:0 at $VW_RLABEL ${ms_g} ms after SIGTERM (communities: $(communities4))"
vw_info "at $VW_RLABEL while stopping: $(vw_show_router "$VW_ROUTER" | sed -n 2p | tr -s ' ')"
while has4; do
  session_up || vw_fail "session at $VW_RLABEL left Established $(($(vw_now_ms) - t0)) ms after SIGTERM, while the route was still there"
  has_gshut || ! has4 || vw_fail "route at $VW_RLABEL lost 65535:0 during the drain period"
  (($(vw_now_ms) - t0 < DRAIN_PERIOD_MS + 10000)) || vw_fail "route still at $VW_RLABEL $((DRAIN_PERIOD_MS + 10000)) ms after SIGTERM"
  sleep 0.05
done
ms_w=$(vw_wait_until "$t0" 5000 has_neither) || vw_fail "IPv6 VIP still at $VW_RLABEL after the IPv4 one left"
vw_wait_pid_exit "$pid" 10000 || vw_fail "vipwarden still running 10 s after the route left"
exit_ms=$(($(vw_now_ms) - t0))
code=${VW_EXIT_CODE:-unknown}
rm -f "$VW_RUN_DIR/vipwarden.pid"
vw_measured "SIGTERM -> 65535:0 at the router" "$ms_g"
vw_measured "SIGTERM -> route gone (drain_period=${DRAIN_PERIOD_MS}ms)" "$ms_w"
vw_measured "SIGTERM -> vipwarden exited" "$exit_ms"
vw_expect_within "graceful stop period" $((DRAIN_PERIOD_MS - 500)) $((DRAIN_PERIOD_MS + 2000)) $((ms_w - ms_g))

sleep 0.3
after=$VW_RUN_DIR/router-after-sigterm.log
tail -n +"$((mark + 1))" "$log" | grep -v 'Update Group' >"$after" || true
ts_of() { sed -n "${1}p" "$after" | grep -oE '[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}' | head -n 1; }
vw_assert_withdrawn_before_cease "$after"
vw_info "router log times: withdraw v4 $(ts_of "$VW_W4_LINE"), Cease $(ts_of "$VW_CEASE_LINE")"
[[ $code == 0 ]] || vw_fail "vipwarden exit code $code, expected 0"
vw_pass "65535:0 after ${ms_g} ms with the session up, withdrawn after ${ms_w} ms before the Cease; exit 0 after ${exit_ms} ms"
