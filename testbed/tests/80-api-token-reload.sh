#!/usr/bin/env bash
# API token reload without a restart: the token file turned 0644 + SIGHUP is
# refused on reload (the running token stays, the log says so), check-config
# refuses it too, and the CLI names the file's mode as the problem; chmod 600
# + SIGHUP and the CLI drains (route leaves; status --check exits 1); a new
# token + SIGHUP: the old token gets 401, the CLI (reading the new file)
# undrains, the route comes back and status --check exits 0.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "API: token file fixed and rotated with SIGHUP, no restart"

api=$(vw_api_yaml)
tok=$VW_RUN_DIR/api-token
vw_start_vipwarden_and_wait top_extra="$api"
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"

chmod 644 "$tok"
vw_signal vipwarden HUP
sleep 0.5
vw_vipwarden_log_has "API token file refused: .*world-readable.*previous token stays" ||
  vw_fail "no log line saying the 0644 file is refused and the previous token stays"
out=$(vw_cli check-config 2>&1) && vw_fail "check-config accepted a 0644 token file: $out"
grep -q "world-readable" <<<"$out" || vw_fail "check-config does not name the mode: $out"
out=$(vw_cli drain web --reason lab80 2>&1) && vw_fail "CLI drain with a 0644 token file succeeded: $out"
vw_info "CLI drain with a 0644 token file: $out"
grep -q "mode or owner is unsafe, not because of who you are" <<<"$out" || vw_fail "the CLI does not name the file's mode: $out"
vw_cli status 2>&1 | grep -q "world-readable" || vw_fail "status does not show the refused token file"
vw_assert "route still at $VW_RLABEL after the refused drain" has_both

chmod 600 "$tok"
vw_signal vipwarden HUP
sleep 0.5
vw_vipwarden_log_has "API token in .* unchanged" || vw_fail "no log line saying the token file is fine again"
t0=$(vw_now_ms)
out=$(vw_cli drain web --reason lab80 2>&1) || vw_fail "drain after chmod 600 + SIGHUP failed: $out"
ms=$(vw_wait_until "$t0" 5000 has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after the drain"
vw_measured "chmod 600 + SIGHUP, then CLI drain -> route gone" "$ms"
rc=0; line=$(vw_cli status --check 2>&1) || rc=$?
[[ $rc == 1 && $line == WARNING:*"web maintenance ("*"lab80)"* ]] || vw_fail "status --check while drained: rc $rc: $line"

old=$(cat "$tok")
(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tok.new") && mv "$tok.new" "$tok"
vw_signal vipwarden HUP
sleep 0.5
vw_vipwarden_log_has "API token replaced" || vw_fail "no log line saying the token was replaced"
code=$(vw_api_curl POST /v1/vips/web/undrain -H "Authorization: Bearer $old") || true
[[ $code == 401 ]] || vw_fail "old token after rotation: HTTP $code, expected 401"
t0=$(vw_now_ms)
out=$(vw_cli undrain web 2>&1) || vw_fail "undrain with the rotated token failed: $out"
ms2=$(vw_wait_until "$t0" 10000 has_both) || vw_fail "VIP not back at $VW_RLABEL ${ms2} ms after undrain"
vw_measured "token rotated + SIGHUP, then CLI undrain -> route back" "$ms2"
vw_wait_until now 5000 vw_cli status --check >/dev/null || vw_fail "status --check not 0 with every VIP announced: $(vw_cli status --check 2>&1)"
vw_pass "0644 refused with the mode named; fixed and rotated by SIGHUP alone (drain ${ms} ms, undrain ${ms2} ms)"
