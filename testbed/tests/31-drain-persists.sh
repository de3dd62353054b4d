#!/usr/bin/env bash
# Drains survive a crash: drain (strategy withdraw), kill -9 vipwarden,
# start it again with the same config and state_dir. The session comes back
# but the route must NOT (watched for rise x interval + 5 s after the
# session is Established again); status shows maintenance with the reason;
# `vipwarden undrain web` announces it again.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
REASON=lab-persist-check
WATCH_MS=$((VW_RISE * VW_INTERVAL_MS + 5000))
vw_test_begin "drain persists across kill -9 + restart; undrain brings the route back"

vw_start_vipwarden_and_wait top_extra="$(vw_api_yaml)" vip_extra="    drain: withdraw"
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"
t0=$(vw_now_ms)
vw_cli drain web --reason "$REASON" >&2 || vw_fail "vipwarden drain web failed"
ms=$(vw_wait_until "$t0" 5000 has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after the drain"
vw_measured "drain (withdraw) -> route gone" "$ms"
vw_info "state_dir: $(ls "$VW_RUN_DIR/state")"

pid=$(vw_pid_of vipwarden)
vw_signal vipwarden KILL
vw_wait_pid_exit "$pid" 5000 || vw_fail "vipwarden survived kill -9"
rm -f "$VW_RUN_DIR/vipwarden.pid"
vw_wait_until now 5000 vw_not session_up >/dev/null || vw_fail "session at $VW_RLABEL still up after kill -9"
t1=$(vw_now_ms)
vw_vipwarden_spawn
ms=$(vw_wait_until "$t1" 20000 session_up) || vw_fail "session to $VW_RLABEL not back ${ms} ms after the restart"
vw_measured "restart -> session Established again" "$ms"
t2=$(vw_now_ms)
while (($(vw_now_ms) - t2 < WATCH_MS)); do
  if has4 || has6; then vw_fail "drained VIP re-announced at $VW_RLABEL $(($(vw_now_ms) - t2)) ms after the session came back"; fi
  sleep 0.1
done
vw_info "route stayed away for ${WATCH_MS} ms after the session was Established"
vw_assert "session up (vipwarden running, only the VIP drained)" session_up

st=$(vw_cli status 2>&1) || vw_fail "vipwarden status failed: $st"
printf '%s\n' "$st" >&2
grep -Eq "^web .*maintenance.*$REASON" <<<"$st" || vw_fail "status does not show web in maintenance with reason $REASON"

t3=$(vw_now_ms)
vw_cli undrain web >&2 || vw_fail "vipwarden undrain web failed"
ms=$(vw_wait_until "$t3" 10000 has_both) || vw_fail "VIP not back at $VW_RLABEL ${ms} ms after undrain"
vw_measured "undrain -> route back" "$ms"
vw_expect_within "undrain" 0 3000 "$ms"
vw_pass "drain survived kill -9 + restart (no route for ${WATCH_MS} ms, status maintenance: $REASON); undrain re-announced in ${ms} ms"
