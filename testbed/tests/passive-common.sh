# shellcheck shell=bash
# Shared flow of the passive-signal scenarios (20-passive-errors,
# 21-passive-latency), sourced after common.sh. The scenario sets:
#   PS_METRIC     error_ratio | latency_p99 (the signal value under test)
#   PS_CONDITION  the VIP's withdraw_when YAML (one condition)
#   PS_ERR_ABOVE, PS_LAT_ABOVE_S, PS_MIN_REQUESTS  the same thresholds, for
#                 the independent access-log monitor (lib/access_window.py)
#   PS_FAULT_ON / PS_FAULT_OFF  commands that break / repair "/"
#   PS_WRK_TIMEOUT  wrk's --timeout
# Timing shared by both: window 10 s, for 5 s, hold_down 10 s.

PS_WINDOW_S=10
PS_FOR_MS=5000
PS_HOLD_DOWN_MS=10000
PS_RESTORE_FOR_MS=5000
PS_STABLE_S=15

# ps_config_yaml: the signal (top level) and the VIP's conditions.
ps_signal_yaml() {
  cat <<EOF
signals:
  - name: web_log
    type: access_log
    path: $VW_RUN_DIR/nginx/access.log
    format: nginx
    window: ${PS_WINDOW_S}s
EOF
}

ps_vip_yaml() {
  printf '    withdraw_when:\n%s\n    hold_down: %ss\n' "$PS_CONDITION" $((PS_HOLD_DOWN_MS / 1000))
}

# ps_start: access-log monitor, vipwarden (http check on /healthz + the
# condition), client via the router under test, load, and a full window of
# healthy traffic.
ps_start() {
  vw_access_monitor_start "$PS_WINDOW_S" "$PS_ERR_ABOVE" "$PS_LAT_ABOVE_S" "$PS_MIN_REQUESTS" 240
  vw_start_vipwarden_and_wait check_type=http \
    top_extra="$(ps_signal_yaml)" vip_extra="$(ps_vip_yaml)"
  vw_client_via "$VW_ROUTER"
  vw_wrk_start wrk-fault 90 "$PS_WRK_TIMEOUT"
  local ms
  ms=$(vw_wait_until now 10000 vw_access_grows 200) ||
    vw_fail "no client traffic reaches nginx through $VW_RLABEL"
  vw_info "client traffic flows through $VW_RLABEL (after ${ms} ms); letting the ${PS_WINDOW_S}s window fill"
  sleep "$PS_WINDOW_S"
  vw_assert "VIP still announced after a full window of healthy traffic" has_both
  vw_info "window before the fault: $(grep '^tick' "$VW_RUN_DIR/access-window.log" | tail -n 1)"
}

# ps_fault_and_withdraw: break "/", measure flag -> threshold crossing (as
# the independent monitor saw it) -> withdrawal at the router.
ps_fault_and_withdraw() {
  local t_fault ms cross t_wd
  t_fault=$(vw_now_ms)
  eval "$PS_FAULT_ON"
  ms=$(vw_wait_until "$t_fault" 40000 has_neither) ||
    vw_fail "VIP still at $VW_RLABEL ${ms} ms after the fault"
  t_wd=$((t_fault + ms))
  cross=$(vw_access_first_cross "$PS_METRIC" "$t_fault")
  [[ -n $cross ]] || vw_fail "the access-log monitor never saw $PS_METRIC above the threshold"
  PS_T_WITHDRAWN=$t_wd
  vw_measured "fault -> $PS_METRIC above threshold in the ${PS_WINDOW_S}s window (monitor)" $((cross - t_fault))
  vw_measured "$PS_METRIC above threshold -> route gone (for=${PS_FOR_MS}ms)" $((t_wd - cross))
  vw_measured "fault -> route gone" "$ms"
  # The condition trips after `for` above the threshold; the window slides in
  # steps of window/12 and vipwarden evaluates periodically, so allow -1 s /
  # +2 s around `for`, counted from the crossing.
  vw_expect_within "threshold crossing -> withdrawal" $((PS_FOR_MS - 1000)) $((PS_FOR_MS + 2000)) $((t_wd - cross))
  vw_info "budget: crossing at +$((cross - t_fault)) ms + for ${PS_FOR_MS} ms + 2000 ms = $((cross - t_fault + PS_FOR_MS + 2000)) ms after the fault; took ${ms} ms"
}

# ps_assert_reasons: the active check never went down and vipwarden named
# the signal value with its figures.
ps_assert_reasons() {
  local line
  if vw_vipwarden_log | grep -E 'check web down'; then
    vw_fail "the http check on /healthz went down: the withdrawal was not from the passive signal alone"
  fi
  if vw_vipwarden_log | grep -E 'check web failed' >&2; then
    vw_warn "single /healthz probe failures above (check stayed up)"
  fi
  line=$(vw_vipwarden_log | grep -E "web_log\.$PS_METRIC [0-9.]+[a-z]* > [0-9.]+" | head -n 1)
  [[ -n $line ]] || vw_fail "vipwarden logged no line naming web_log.$PS_METRIC with figures"
  vw_info "vipwarden: ${line#* }"
  vw_vipwarden_route_log | tail -n 2
}

# ps_recover: repair; the route stays withdrawn for at least hold_down (no
# traffic reaches a withdrawn VIP), comes back (on probation, or from fresh
# good evidence such as vipwarden's own /healthz probes in the same log) and
# stays with healthy traffic.
ps_recover() {
  local t_fix ms back t_back i clear latest
  vw_wrk_stop wrk-fault
  t_fix=$(vw_now_ms)
  eval "$PS_FAULT_OFF"
  ms=$(vw_wait_until "$PS_T_WITHDRAWN" $((PS_HOLD_DOWN_MS + 20000)) has_both) ||
    vw_fail "VIP not back at $VW_RLABEL ${ms} ms after the withdrawal"
  back=$ms
  t_back=$((PS_T_WITHDRAWN + back))
  vw_measured "route gone -> re-announced (hold_down=${PS_HOLD_DOWN_MS}ms)" "$back"
  vw_measured "repair -> re-announced" $((t_back - t_fix))
  # Never before hold_down. After it, the VIP comes back at once on
  # probation when the window holds no fresh evidence, or once fresh evidence
  # has been good for restore_for. Requests still in flight when the route
  # left (their client's FIN no longer reaches the node) are logged after the
  # withdrawal and keep bad evidence in the window until they age out: the
  # monitor's last "clear" of the value marks that moment.
  clear=$(awk -v m="$PS_METRIC" '$1 == "clear" && $2 == m { t = $3 } END { print t }' "$VW_RUN_DIR/access-window.log")
  [[ -n $clear ]] || clear=$PS_T_WITHDRAWN
  vw_measured "route gone -> last bad request left the ${PS_WINDOW_S}s window (monitor)" $((clear - PS_T_WITHDRAWN))
  latest=$((clear - PS_T_WITHDRAWN + PS_RESTORE_FOR_MS))
  ((latest > PS_HOLD_DOWN_MS)) || latest=$PS_HOLD_DOWN_MS
  vw_expect_within "withdrawn time" $((PS_HOLD_DOWN_MS - 200)) $((latest + 2000)) "$back"
  vw_info "vipwarden: $(vw_vipwarden_log | grep -E 'vip web withdrawn -> announced' | tail -n 1 | cut -d' ' -f3-)"
  vw_wrk_start wrk-healthy "$PS_STABLE_S" "$PS_WRK_TIMEOUT"
  for ((i = 0; i < PS_STABLE_S * 4; i++)); do
    has_both || vw_fail "VIP withdrawn again $((i * 250)) ms into healthy traffic"
    sleep 0.25
  done
  vw_wrk_stop wrk-healthy
  ps_wrk_healthy_check "$VW_RUN_DIR/wrk-healthy.log"
  vw_assert "VIP still announced after ${PS_STABLE_S}s of healthy traffic" has_both
}

# ps_wrk_healthy_check LOG: wrk served requests, none non-2xx, no timeouts.
ps_wrk_healthy_check() {
  local log=$1 reqs
  reqs=$(awk '/requests in/ {print $1}' "$log")
  vw_info "healthy phase: $(grep -E 'requests in|Non-2xx|Socket errors' "$log" | tr -s ' ' | paste -sd';')"
  [[ -n $reqs && $reqs -gt 0 ]] || vw_fail "wrk served no requests in the healthy phase (see $log)"
  if grep -q 'Non-2xx' "$log"; then vw_fail "non-2xx responses in the healthy phase: $(grep Non-2xx "$log")"; fi
  if grep -q 'Socket errors' "$log"; then vw_fail "socket errors in the healthy phase: $(grep 'Socket errors' "$log")"; fi
}
