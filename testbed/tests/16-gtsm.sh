#!/usr/bin/env bash
# GTSM (RFC 5082) on both sides of a directly connected session: the router
# accepts only TTL 255 from the node (BIRD "ttl security on", FRR "neighbor X
# ttl-security hops 1", GoBGP ttl-security ttl-min 255), vipwarden sends with
# TTL 255 and accepts only >= 254 (peers[].ttl_security). Established, and
# the node's socket has IP_TTL 255 / IP_MINTTL 254 (read back with ss).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
export VW_ROUTER_GTSM=1
vw_test_begin "GTSM on both sides, directly connected: Established"

t0=$(vw_now_ms)
vw_vipwarden_start peer_extra="    ttl_security: true"
vw_wait_session_up 20000
ms=$(($(vw_now_ms) - t0))
vw_measured "vipwarden start -> GTSM session Established" "$ms"
vw_wait_routes_up 20000
check=$("$(vw_vipwarden_bin)" check-config --config "$VW_RUN_DIR/vipwarden.yaml" 2>&1 || true)
grep -q "ttl-security" <<<"$check" || vw_fail "check-config does not show ttl-security"
vw_pass "GTSM session Established ${ms} ms after start, VIP announced"
