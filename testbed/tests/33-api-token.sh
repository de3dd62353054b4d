#!/usr/bin/env bash
# Control API authorisation: POST /v1/vips/web/drain without a token and
# with a wrong token answer 401 and change nothing (the route stays at the
# router); an unknown VIP with the right token answers 404; with the right
# token the drain is accepted and the route leaves.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "API: 401 without/with a wrong token (route stays), 404 for an unknown VIP, right token drains"

vw_start_vipwarden_and_wait top_extra="$(vw_api_yaml)" vip_extra="    drain: withdraw"
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"
token=$(vw_api_token)

expect_code() {
  local want=$1 what=$2 code
  shift 2
  code=$(vw_api_curl "$@") || true
  vw_info "$what: HTTP $code $(head -c 200 "$VW_RUN_DIR/api-body" 2>/dev/null | tr '\n' ' ')"
  [[ $code == "$want" ]] || vw_fail "$what: HTTP $code, expected $want"
}

expect_code 401 "drain without a token" POST /v1/vips/web/drain
expect_code 401 "drain with a wrong token" POST /v1/vips/web/drain -H "Authorization: Bearer wrong-$token"
expect_code 401 "drain with the token but not as Bearer" POST /v1/vips/web/drain -H "Authorization: $token"
sleep 2
vw_assert "route still at $VW_RLABEL after refused drains" has_both
st=$(vw_cli status 2>&1)
grep -Eq '^web +announced' <<<"$st" || { printf '%s\n' "$st" >&2; vw_fail "web not announced in status after refused drains"; }
expect_code 404 "drain of an unknown VIP" POST /v1/vips/nosuchvip/drain -H "Authorization: Bearer $token"
vw_assert "route still at $VW_RLABEL after the 404" has_both

t0=$(vw_now_ms)
code=$(vw_api_curl POST /v1/vips/web/drain -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"reason": "api-token test"}') || true
vw_info "drain with the right token: HTTP $code $(head -c 200 "$VW_RUN_DIR/api-body" | tr '\n' ' ')"
[[ $code == 2?? ]] || vw_fail "drain with the right token: HTTP $code, expected 2xx"
ms=$(vw_wait_until "$t0" 5000 has_neither) || vw_fail "VIP still at $VW_RLABEL ${ms} ms after an authorised drain"
vw_measured "authorised API drain -> route gone" "$ms"
st=$(vw_cli status 2>&1)
grep -Eq '^web .*maintenance.*api-token test' <<<"$st" || { printf '%s\n' "$st" >&2; vw_fail "status does not show the API drain with its reason"; }
vw_pass "401 x3 and 404 changed nothing; the authorised drain withdrew in ${ms} ms"
