#!/usr/bin/env bash
# Broken return path (two uplinks; replies from the VIP leave by uplink B, whose next hop drops
# them): clients' handshakes stall while the tcp/http/https checks on the VIP stay green.
# vipwarden withdraws on the handshakes signal within `for` + 2 s; doctor exits 1 naming the
# missing `from <VIP>` rule and its fix; after applying exactly that fix doctor exits 0, the
# client's handshakes complete and the route returns.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=../lib/two-uplinks.sh
source "$VW_TESTBED_DIR/lib/two-uplinks.sh"
vw_skip_on gobgp "gobgpd does not program a kernel FIB here, so clients cannot reach the VIP through it; BIRD and FRR run this scenario"
vw2_test_begin "broken return path: handshakes signal withdraws, doctor names the fix"

FOR_S=3
vw2_vipwarden_start "    withdraw_when:
      - {signal: hs.half_open, above: 5, for: ${FOR_S}s, restore_below: 1, restore_for: 2s}
    hold_down: 2s"
vw_wait_session_up 20000
ms=$(vw_wait_until now 20000 has4) || vw_fail "VIP not announced to $VW_RLABEL after ${ms} ms"
vw_info "VIP announced to $VW_RLABEL after ${ms} ms (checks green)"
vw_assert "the node reaches its own VIP" vw2_node_ok
vw2_client_ok && vw_fail "client reached the VIP although replies leave by uplink B"
vw_info "client cannot reach http://$VW_VIP4/ (SYN-ACKs leave by uplink B and are dropped)"

# Fault: client traffic arrives through ToR A while the return path is broken.
t0=$(vw_now_ms)
vw2_client_load_start load 15
ms=$(vw_wait_until "$t0" $(((FOR_S + 6) * 1000)) vw_not has4) ||
  vw_fail "VIP still at $VW_RLABEL ${ms} ms after the client traffic started"
half=$(vw2_half_open)
drops=$(vw2_uplb_drops)
vw_info "withdrawn ${ms} ms after the first client SYN; half-open now $half; uplink B dropped $drops packets from the VIP"
vw_vipwarden_log | grep -E "withdrew web" | head -n 2 >&2 || true
vw_vipwarden_log | grep -E "withdrew web .*hs\.half_open" >/dev/null || vw_fail "the withdrawal does not name hs.half_open"
if vw_vipwarden_log | grep -E "check web_(tcp|http|https) (failed|down)" >/dev/null; then
  vw_fail "a check failed: the checks should stay green (they never leave the host)"
fi
# The signal needs a few samples above the threshold before `for` starts: allow for + 2 s from
# the moment half-open passed 5 (within ~1 s of the first SYN at 10 attempts/s) -> for + 3 s.
vw_cli status >&2 || true
vw_expect_within "client SYNs -> withdrawn (for ${FOR_S}s)" 0 $(((FOR_S + 3) * 1000)) "$ms"
vw_measured "broken return path: first client SYN -> withdrawn on hs.half_open (for ${FOR_S}s, half-open $half)" "$ms"

# Doctor names the missing rule and its fix.
rc=0
vw2_doctor >"$VW_RUN_DIR/doctor-broken.txt" 2>&1 || rc=$?
cat "$VW_RUN_DIR/doctor-broken.txt" >&2
((rc == 1)) || vw_fail "doctor exited $rc with the return path broken (expected 1)"
grep -q "no \`from $VW_VIP4\` rule" "$VW_RUN_DIR/doctor-broken.txt" || vw_fail "doctor did not name the missing from-VIP rule"
fix=$(grep -m1 -A3 "policy-rule .*no \`from $VW_VIP4\` rule" "$VW_RUN_DIR/doctor-broken.txt" | sed -n 's/^ *fix: //p' | head -n 1)
[[ $fix == *"ip rule add from $VW_VIP4/32 table"* ]] || vw_fail "doctor's fix is not the from-VIP rule: $fix"
vw_info "doctor exit 1; applying its fix: $fix"
t1=$(vw_now_ms)
vw_in "$VW_NS_NODE" bash -c "$fix"
rc=0
vw2_doctor >"$VW_RUN_DIR/doctor-fixed.txt" 2>&1 || rc=$?
tail -n 1 "$VW_RUN_DIR/doctor-fixed.txt" >&2
((rc == 0)) || { grep -E "^FAIL" -A2 "$VW_RUN_DIR/doctor-fixed.txt" >&2; vw_fail "doctor exited $rc after the fix"; }

ms2=$(vw_wait_until "$t1" 20000 has4) || vw_fail "VIP not back at $VW_RLABEL ${ms2} ms after the fix"
vw_measured "fix applied -> VIP announced again" "$ms2"
vw_wait_until now 5000 vw2_client_ok >/dev/null || vw_fail "client still cannot reach the VIP after the fix"
vw2_client_load_start load2 3
vw_wait_pid_exit "$(vw_pid_of load2)" 8000 || true
ok200=$(grep -c '^200$' "$VW_RUN_DIR/load2.log" || true)
half2=$(vw2_half_open)
vw_info "after the fix: client served; $ok200 of $(wc -l <"$VW_RUN_DIR/load2.log") attempts answered 200; half-open now $half2"
((ok200 > 0 && half2 <= 2)) || vw_fail "handshakes do not complete after the fix (200s: $ok200, half-open $half2)"
vw_pass "withdrawn ${ms} ms after client SYNs began (for ${FOR_S}s, half-open $half, checks green); doctor 1 -> fix -> 0; route back ${ms2} ms after the fix"
