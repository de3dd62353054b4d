#!/usr/bin/env bash
# TCP-MD5 with a wrong key, then with none: the router drops the node's
# segments silently, so the session never comes up, and vipwarden's status
# says what that means ("no answer; check the TCP-MD5 key on both sides")
# instead of a bare connect timeout. Then the right key by SIGHUP: up.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
export VW_ROUTER_PASSWORD="vw-md5-$$-right"
vw_test_begin "TCP-MD5 wrong or missing key: not Established, status says why"

key=$VW_RUN_DIR/tor.key
(umask 077 && printf 'vw-md5-%s-wrong\n' "$$" >"$key")
vw_vipwarden_start peer_extra="    password_file: $key" top_extra="$(vw_api_yaml)"
peer=$(vw_peer_name)
hint="no answer; check the TCP-MD5 key on both sides"
last_error() {
  vw_status_json | python3 -c 'import json,sys
d = json.load(sys.stdin)
print(next((p.get("last_error") or "") for p in d["peers"] if p["name"] == sys.argv[1]))' "$peer"
}
says_key() { [[ $(last_error) == *"$hint"* ]]; }
ms=$(vw_wait_until now 15000 says_key) || vw_fail "status never gave the key hint; last_error: $(last_error)"
vw_measured "wrong TCP-MD5 key -> status hint" "$ms"
vw_info "$peer last_error: $(last_error)"
vw_assert "session not Established with the wrong key" vw_not session_up
vw_assert "no VIP route with the wrong key" has_neither

# The right key, by reload: the session comes up.
printf '%s\n' "$VW_ROUTER_PASSWORD" >"$key"
t0=$(vw_now_ms)
vw_signal vipwarden HUP
ms=$(vw_wait_until "$t0" 40000 session_up) || vw_fail "session not Established ${ms} ms after the right key"
vw_measured "right TCP-MD5 key (SIGHUP) -> Established" "$ms"
vw_wait_routes_up 10000
vw_pass "wrong key: not Established, status said \"$hint\"; right key: Established ${ms} ms after SIGHUP"
