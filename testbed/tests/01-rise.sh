#!/usr/bin/env bash
# Route appears after rise x interval once nginx is up.
# vipwarden starts while nginx is down: the session comes up but nothing is
# announced. Then nginx starts (t0); the VIP must reach the router after
# `rise` consecutive passing checks: between (rise-1) x fast_interval (the
# first pass can land just after t0; after it the check re-probes every
# fast_interval, default interval/5, to confirm) and rise x interval + 1 s
# (check phase and propagation).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "route appears after rise x interval once nginx is up"

vw_nginx_stop
vw_vipwarden_start
vw_wait_session_up 20000
if [[ $VW_ROUTER == frr ]]; then
  # FRR advertises the hostname capability by default; a session that comes
  # up proves vipwarden copes with it. Record that it really was offered.
  adv=$(vw_vtysh -c "show bgp neighbors $VW_NODE_FRR_V4 json" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(next(iter(d.values()))["neighborCapabilities"].get("hostName",{}).get("advHostName",""))')
  vw_info "FRR hostname capability advertised: ${adv:-no}"
fi
# Contract: vipwarden never advertises graceful restart.
if router_peer_advertised_gr "$VW_ROUTER"; then
  vw_fail "$VW_RLABEL received a graceful restart capability from vipwarden"
fi
vw_info "no graceful restart capability received from vipwarden (as required)"
# With the service down the VIP must stay unannounced.
sleep $(((VW_RISE + 1) * VW_INTERVAL_MS / 1000))
vw_assert "no VIP route while nginx is down" has_neither

t0=$(vw_now_ms)
vw_nginx_start
ms=$(vw_wait_until "$t0" 15000 has_both) || vw_fail "VIP not announced to $VW_RLABEL ${ms} ms after nginx start"
vw_measured "nginx up -> route at router (rise=$VW_RISE x ${VW_INTERVAL_MS}ms)" "$ms"
vw_expect_within "rise" $(((VW_RISE - 1) * VW_INTERVAL_MS / 5 - 100)) $((VW_RISE * VW_INTERVAL_MS + 1000)) "$ms"
vw_vipwarden_route_log | tail -n 4
vw_expect_route_log announced
vw_pass "route at $VW_RLABEL ${ms} ms after nginx came up"
