#!/usr/bin/env bash
# Router restarts a few seconds apart: after the router drops an Established
# session (crash or restart), vipwarden retries at its minimum backoff (1 s)
# instead of growing it, so each restart gets the routes back within about a
# second of the router listening again. (It used to wait 1, 2, 4 s... because
# the backoff only reset after a session had lasted 60 s.)
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "router restarted twice, 3 s down each time: routes back within ~1 s of listening"

vw_start_vipwarden_and_wait
worst=0
for round in 1 2; do
  vw_router_stop "$VW_ROUTER" KILL
  sleep 3
  t0=$(vw_now_ms)
  vw_router_start "$VW_ROUTER"
  ms=$(vw_wait_until "$t0" 20000 has_both) || vw_fail "round $round: VIP not back at $VW_RLABEL ${ms} ms after its restart"
  vw_measured "router down 3 s, restarted -> route back (round $round)" "$ms"
  ((ms > worst)) && worst=$ms
done
# 1 s backoff x 1.25 jitter + router start-up and session set-up; a growing
# backoff gives 4 s and more by the second round.
vw_expect_within "restart -> route back" 0 3000 "$worst"
vw_pass "routes back at $VW_RLABEL within ${worst} ms of each restart"
