#!/usr/bin/env bash
# BFD comes Up with the router (BIRD `protocol bfd` + `bfd on`; FRR bfdd + `neighbor X bfd`), and
# vipwarden's status shows the negotiated intervals (300 ms x 3: detection 900 ms) and no
# discarded packets.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=bfd-common.sh
source "$(dirname "$0")/bfd-common.sh"
vw_test_begin "BFD Up with the router, negotiated 300 ms x 3"

t0=$(vw_now_ms)
vw_bfd_start
vw_measured "start -> BFD Up at $VW_RLABEL" $(($(vw_now_ms) - t0))
# Status lags by up to a status tick; the router's Poll to fast timers follows its Up.
negotiated() { [[ $(vw_bfd_status | jq -r .detect_time_ms) == 900 ]]; }
vw_wait_until now 5000 negotiated >/dev/null || true
st=$(vw_bfd_status)
vw_info "vipwarden status bfd: $st"
[[ $(jq -r .tx_interval_ms <<<"$st") == 300 ]] || vw_fail "tx interval not 300 ms: $st"
[[ $(jq -r .detect_time_ms <<<"$st") == 900 ]] || vw_fail "detection time not 900 ms: $st"
[[ $(jq -r '.discarded | length' <<<"$st") == 0 ]] || vw_fail "packets discarded: $st"
# Source port from the RFC 5881 range.
port=$(jq -r .local <<<"$st" | sed 's/.*://')
((port >= 49152 && port <= 65535)) || vw_fail "source port $port outside 49152-65535"
vw_pass "BFD Up at $VW_RLABEL, tx 300 ms, detection 900 ms, source port $port"
