#!/usr/bin/env bash
# TCP-MD5 (RFC 2385) with the right key: the router has a password for the
# node's session, vipwarden reads the same one from peers[].password_file
# (mode 600) and the session comes up and carries the VIP. The router really
# enforces it: the same router refuses vipwarden without the key (checked in
# 15). The key appears nowhere: not in vipwarden's log, `status --json`,
# the API's /status, nor check-config's output.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
export VW_ROUTER_PASSWORD="vw-md5-$$-Sw0rdf1sh"
vw_test_begin "TCP-MD5 with the right key: Established, key never shown"

key=$VW_RUN_DIR/tor.key
(umask 077 && printf '%s\n' "$VW_ROUTER_PASSWORD" >"$key")
t0=$(vw_now_ms)
vw_vipwarden_start peer_extra="    password_file: $key" top_extra="$(vw_api_yaml)"
vw_wait_session_up 20000
ms=$(($(vw_now_ms) - t0))
vw_measured "vipwarden start -> TCP-MD5 session Established" "$ms"
vw_wait_routes_up 20000
# The node's socket really carries the key (ss shows "md5" for such sockets).
if vw_in "$VW_NS_NODE" ss -tnie "dst $(vw_router_addr "$VW_ROUTER")" 2>/dev/null | grep -qw md5; then
  vw_info "ss shows the node's session socket as md5-signed"
fi
status=$(vw_status_json)
api=$(vw_in "$VW_NS_NODE" curl -sS --max-time 3 "http://$VW_API_LISTEN/status" || true)
check=$("$(vw_vipwarden_bin)" check-config --config "$VW_RUN_DIR/vipwarden.yaml" 2>&1 || true)
for what in log status api check-config; do
  case $what in
    log) text=$(vw_vipwarden_log) ;;
    status) text=$status ;;
    api) text=$api ;;
    check-config) text=$check ;;
  esac
  [[ -n $text ]] || vw_fail "no $what output to inspect"
  if grep -qF "$VW_ROUTER_PASSWORD" <<<"$text"; then vw_fail "the TCP-MD5 key appears in vipwarden's $what"; fi
done
grep -q "tcp-md5" <<<"$check" || vw_fail "check-config does not say the session uses TCP-MD5"
vw_pass "TCP-MD5 session Established ${ms} ms after start, VIP announced; key absent from log, status, API and check-config"
