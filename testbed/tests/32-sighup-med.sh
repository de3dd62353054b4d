#!/usr/bin/env bash
# SIGHUP reload without a session reset: MED 100 -> 200 in the file, SIGHUP:
# the router shows MED 200 within ~2 s and the session's Established-since
# time at the router is unchanged (BIRD `show protocols` since, FRR peer
# uptime). Then an INVALID file + SIGHUP changes nothing (route, MED,
# session) and `vipwarden status` shows the refused reload.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "SIGHUP: MED 100 -> 200 without session reset; invalid config changes nothing"

api=$(vw_api_yaml)
vw_start_vipwarden_and_wait top_extra="$api" med=100
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"
vw_assert "MED 100 at start" has_med 100
sleep 2 # some uptime to compare
since0=$(router_session_since_ms) || vw_fail "no session uptime at $VW_RLABEL"
up0=$(router_session_uptime_ms "$VW_ROUTER")
t_up0=$(vw_now_ms)

conf=$VW_RUN_DIR/vipwarden.yaml
vw_vipwarden_config top_extra="$api" med=200 >"$conf.new"
mv "$conf.new" "$conf"
t0=$(vw_now_ms)
vw_signal vipwarden HUP
ms_med=$(vw_wait_until "$t0" 10000 has_med 200) || vw_fail "MED at $VW_RLABEL still $(med4) ${ms_med} ms after SIGHUP"
vw_measured "SIGHUP -> MED 200 at the router" "$ms_med"
vw_expect_within "reload" 0 2500 "$ms_med"
med6_is() { has6 && [[ $(router_med "$VW_ROUTER" "$VW_VIP6_PREFIX") == "$1" ]]; }
vw_wait_until now 5000 med6_is 200 >/dev/null ||
  vw_fail "IPv6 VIP did not get MED 200"
sleep 1.5 # FRR reports the uptime in whole seconds
since1=$(router_session_since_ms) || vw_fail "session at $VW_RLABEL not Established after the reload"
up1=$(router_session_uptime_ms "$VW_ROUTER")
elapsed=$(($(vw_now_ms) - t_up0))
vw_info "session at $VW_RLABEL: since $since0 -> $since1 (uptime ${up0} -> ${up1} ms over ${elapsed} ms)"
# The uptime went on counting: it grew by the time that passed (FRR: 1 s
# resolution), and the Established-since time did not move.
((up1 >= up0 + elapsed - 1100)) || vw_fail "session uptime at $VW_RLABEL went from $up0 to $up1 ms in ${elapsed} ms: the session was reset"
diff=$((since1 - since0))
((diff < 0)) && diff=$((-diff))
((diff < 1500)) || vw_fail "session Established-since moved by ${diff} ms: the session was reset"
vw_measured "session uptime kept counting across SIGHUP (uptime after)" "$up1"

# An invalid file: an unknown key (unknown keys are errors).
vw_vipwarden_config top_extra="$api" med=300 >"$conf.new"
printf 'no_such_key: 1\n' >>"$conf.new"
mv "$conf.new" "$conf"
t1=$(vw_now_ms)
vw_signal vipwarden HUP
# The daemon's own view (GET /v1/status): the refused reload with its error.
reload_error_in_api() {
  [[ $(vw_api_curl GET /v1/status) == 200 ]] && grep -q 'no_such_key' "$VW_RUN_DIR/api-body"
}
ms=$(vw_wait_until "$t1" 5000 reload_error_in_api) || vw_fail "GET /v1/status shows no reload error ${ms} ms after SIGHUP with an invalid file"
vw_measured "SIGHUP (invalid file) -> reload error in GET /v1/status" "$ms"
vw_info "reload error in /v1/status: $(jq -c '.config | {generation, last_reload_error}' "$VW_RUN_DIR/api-body" 2>/dev/null | head -c 300)"
sleep 2
vw_assert "route still announced after the invalid reload" has_both
vw_assert "MED still 200 after the invalid reload (the file said 300)" has_med 200
since2=$(router_session_since_ms) || vw_fail "session down after the invalid reload"
diff=$((since2 - since0))
((diff < 0)) && diff=$((-diff))
((diff < 1500)) || vw_fail "session Established-since moved by ${diff} ms after the invalid reload"
vw_vipwarden_log | grep -A1 'not reloaded' | tail -n 2 >&2 || true
# `vipwarden status` (the CLI, pointed at the daemon's config file as an
# operator would) must show the refused reload too.
st=$(vw_cli status 2>&1) || true
printf '%s\n' "$st" >&2
grep -q 'config reload refused' <<<"$st" ||
  vw_fail "vipwarden status does not show the refused reload (the CLI output is above)"
vw_pass "MED 200 ${ms_med} ms after SIGHUP with the session kept (uptime ${up0} -> ${up1} ms); invalid file refused, nothing changed, status shows it"
