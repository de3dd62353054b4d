#!/usr/bin/env bash
# Operator drain, graceful: `vipwarden drain web` keeps the route for
# drain_period (10 s) with GRACEFUL_SHUTDOWN (65535:0, RFC 8326) and MED 1000,
# then withdraws it; `vipwarden status` shows maintenance; `vipwarden undrain
# web` announces it again (checks are passing) with the normal attributes.
# The CLI runs in vw-node1 and finds the API through the config's `api:`.
# (shutdown: withdraw keeps the lab's cleanup SIGTERM quick; drain_until_connections: off makes
# the drain timed, which is what this test measures: 90 covers connection-aware drains.)
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
DRAIN_PERIOD_MS=10000
vw_test_begin "graceful drain: 65535:0 + MED 1000 for drain_period, then withdrawn; undrain re-announces"

vw_start_vipwarden_and_wait top_extra="$(vw_api_yaml)" vip_extra="    drain: graceful
    drain_period: $((DRAIN_PERIOD_MS / 1000))s
    drain_until_connections: off
    depreference: {med: 1000}
    shutdown: withdraw"
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"
vw_assert "MED 100 before the drain" has_med 100
vw_assert "no 65535:0 before the drain" vw_not has_gshut

draining() { has_gshut && has_med 1000; }
t0=$(vw_now_ms)
vw_cli drain web --reason lab >&2 || vw_fail "vipwarden drain web failed"
ms_g=$(vw_wait_until "$t0" 5000 draining) ||
  vw_fail "no 65535:0 + MED 1000 at $VW_RLABEL ${ms_g} ms after the drain (communities: $(communities4), MED $(med4))"
vw_info "at $VW_RLABEL while draining: $(vw_show_router "$VW_ROUTER" | sed -n 2p | tr -s ' ')"
# Until it is withdrawn, the route must carry the drain attributes throughout.
while has4; do
  if ! draining && has4; then vw_fail "route at $VW_RLABEL lost 65535:0/MED 1000 before the withdrawal: $(communities4) MED $(med4)"; fi
  (($(vw_now_ms) - t0 < DRAIN_PERIOD_MS + 10000)) || vw_fail "route still at $VW_RLABEL $((DRAIN_PERIOD_MS + 10000)) ms after the drain"
  sleep 0.05
done
ms_w=$(vw_wait_until "$t0" 5000 has_neither) || vw_fail "IPv6 VIP still at $VW_RLABEL after the IPv4 one left"
vw_measured "drain -> 65535:0 + MED 1000 at the router" "$ms_g"
vw_measured "drain -> route withdrawn (drain_period=${DRAIN_PERIOD_MS}ms)" "$ms_w"
vw_measured "de-preferred route held for" $((ms_w - ms_g))
# ms_w counts from before the CLI call (which takes a few hundred ms on a busy
# 2-core machine), so it is at least drain_period; the held time is measured
# between two router observations.
vw_expect_within "drain -> withdrawn" "$DRAIN_PERIOD_MS" $((DRAIN_PERIOD_MS + 2500)) "$ms_w"
vw_expect_within "graceful period at the router" $((DRAIN_PERIOD_MS - 1000)) $((DRAIN_PERIOD_MS + 2000)) $((ms_w - ms_g))
vw_assert "session stays up through the drain" session_up

# The route has left the router: status must say maintenance (state column).
in_maintenance() { vw_cli status 2>/dev/null | grep -Eq '^web +maintenance .*lab'; }
ms_m=$(vw_wait_until now 3000 in_maintenance) || {
  vw_cli status >&2 || true
  vw_fail "vipwarden status does not show web in maintenance (reason lab) ${ms_m} ms after the route left"
}
vw_cli status >&2 || true
vw_info "status showed maintenance ${ms_m} ms after the route left the router"

undrained() { has_both && has_med 100 && ! has_gshut; }
t1=$(vw_now_ms)
vw_cli undrain web >&2 || vw_fail "vipwarden undrain web failed"
ms_u=$(vw_wait_until "$t1" 10000 undrained) || vw_fail "VIP not back (MED 100, no 65535:0) at $VW_RLABEL ${ms_u} ms after undrain"
vw_measured "undrain -> route back (MED 100, no 65535:0)" "$ms_u"
vw_expect_within "undrain" 0 3000 "$ms_u"
vw_pass "65535:0 + MED 1000 after ${ms_g} ms, withdrawn after ${ms_w} ms (held $((ms_w - ms_g)) ms); undrain re-announced in ${ms_u} ms"
