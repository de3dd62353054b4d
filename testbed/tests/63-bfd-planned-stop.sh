#!/usr/bin/env bash
# Planned stop (SIGTERM) with BFD: withdrawals, then Cease, then BFD AdminDown. The router must
# log no BFD failure (BIRD "BFD session down" / FRR "BFD down", bfdd "control-expired") and still
# see the withdrawals before the Cease. AdminDown comes after the Cease because BIRD 2.0.12 closes
# BGP with "BFD session down" on a neighbour's AdminDown (measured here; RFC 5882 3.2 says it
# should not); FRR 8.4's bfdd then logs "up -> down reason:neighbor-down", not a detection expiry.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=bfd-common.sh
source "$(dirname "$0")/bfd-common.sh"
vw_test_begin "planned stop with BFD: Cease, then AdminDown; no BFD failure at the router"

vw_bfd_start
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
bfdlog=$VW_RUN_DIR/frr/bfdd.log
bmark=$(vw_log_lines "$bfdlog")
pid=$(vw_pid_of vipwarden)
t0=$(vw_now_ms)
vw_signal vipwarden TERM
vw_wait_pid_exit "$pid" 10000 || vw_fail "vipwarden still running 10 s after SIGTERM"
vw_measured "SIGTERM -> vipwarden exited" $(($(vw_now_ms) - t0))
# Longer than a detection time: a missing AdminDown would show as an expiry by now.
sleep 1.5
after=$VW_RUN_DIR/router-after-sigterm.log
tail -n +"$((mark + 1))" "$log" | grep -v 'Update Group' >"$after" || true
if [[ $VW_ROUTER == frr ]]; then
  tail -n +"$((bmark + 1))" "$bfdlog" >"$VW_RUN_DIR/bfdd-after-sigterm.log" || true
  grep -E -i 'state-change|down' "$VW_RUN_DIR/bfdd-after-sigterm.log" | head -n 5 >&2 || true
fi
vw_assert_withdrawn_before_cease "$after"
grep -E -m3 -i 'bfd' "$after" >&2 || true
failure_re='BFD session down|BFD down|detect(ion)? time'
if grep -E -i -q "$failure_re" "$after"; then
  vw_fail "router logged a BFD failure: $(grep -E -i -m1 "$failure_re" "$after")"
fi
if [[ $VW_ROUTER == frr ]] && grep -E -i -q 'reason:control-expired' "$VW_RUN_DIR/bfdd-after-sigterm.log"; then
  vw_fail "bfdd logged a detection time expiry"
fi
grep -q 'sent AdminDown (planned stop)' <(vw_vipwarden_log) || vw_fail "vipwarden did not log its AdminDown"
if [[ $VW_ROUTER == frr ]]; then
  grep -q 'up -> down reason:neighbor-down' "$VW_RUN_DIR/bfdd-after-sigterm.log" ||
    vw_fail "bfdd did not see our AdminDown (no 'up -> down reason:neighbor-down')"
fi
vw_pass "withdrawals, then Cease, then AdminDown; the router logged no BFD failure"
