#!/usr/bin/env bash
# Hairpin and triage: with the return path broken the node reaches its own VIP (checks green)
# while the client cannot; check-config and doctor flag the checks as local; `vipwarden probe`
# stops at step 1 (SYNs arrive, handshakes stall) and names the return path; after the fix the
# probe completes all four steps (arrival, connect, TLS, answer).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=../lib/two-uplinks.sh
source "$VW_TESTBED_DIR/lib/two-uplinks.sh"
vw_skip_on gobgp "gobgpd does not program a kernel FIB here, so clients cannot reach the VIP through it; BIRD and FRR run this scenario"
vw2_test_begin "hairpin: local checks flagged; probe ladder broken and fixed"

vw2_vipwarden_start
vw_wait_session_up 20000
vw_wait_until now 20000 has4 >/dev/null || vw_fail "VIP not announced to $VW_RLABEL"

# Hairpin: the node reaches its own VIP, the client does not.
vw_assert "the node reaches its own VIP" vw2_node_ok
vw2_client_ok && vw_fail "client reached the VIP although replies leave by uplink B"
vw_info "hairpin: node -> $VW_VIP4 served; client -> $VW_VIP4 fails (route announced, checks green)"
n=$(grep -c "local: does not cross the fabric" "$VW_RUN_DIR/check-config.log" || true)
grep "local: does not cross the fabric" "$VW_RUN_DIR/check-config.log" | head -n 3 >&2
((n == 3)) || vw_fail "check-config marked $n of 3 checks local"
vw2_doctor >"$VW_RUN_DIR/doctor.txt" 2>&1 || true
grep -E "^WARN hairpin" "$VW_RUN_DIR/doctor.txt" >&2 || true
n=$(grep -c "^WARN hairpin .*local: check web_" "$VW_RUN_DIR/doctor.txt" || true)
((n == 3)) || vw_fail "doctor flagged $n of 3 checks as local"

# Broken: probe with client traffic on 443.
vw2_client_load_start load 6 "https://$VW_VIP4/"
sleep 1
rc=0
t0=$(vw_now_ms)
vw2_probe "$VW_VIP4:443" --watch 3s >"$VW_RUN_DIR/probe-broken.txt" 2>&1 || rc=$?
ms=$(($(vw_now_ms) - t0))
cat "$VW_RUN_DIR/probe-broken.txt" >&2
((rc == 1)) || vw_fail "probe exited $rc with the return path broken (expected 1)"
grep -Eq "probe: stopped at step (1|2)" "$VW_RUN_DIR/probe-broken.txt" || vw_fail "probe did not stop at step 1 or 2"
grep -q "points to: the return path" "$VW_RUN_DIR/probe-broken.txt" || vw_fail "probe did not point to the return path"
vw_measured "probe, return path broken: stopped at step 1 after" "$ms"
vw_stop load INT 5000

vw2_fix_return_path
vw_wait_until now 5000 vw2_client_ok >/dev/null || vw_fail "client still cannot reach the VIP after the fix"
vw2_client_load_start load2 6 "https://$VW_VIP4/"
sleep 1
rc=0
t0=$(vw_now_ms)
vw2_probe "$VW_VIP4:443" --watch 3s >"$VW_RUN_DIR/probe-fixed.txt" 2>&1 || rc=$?
ms=$(($(vw_now_ms) - t0))
cat "$VW_RUN_DIR/probe-fixed.txt" >&2
((rc == 0)) || vw_fail "probe exited $rc after the fix"
grep -q "probe: all 4 steps passed" "$VW_RUN_DIR/probe-fixed.txt" || vw_fail "probe did not complete all four steps"
vw_measured "probe, fixed: all four steps in" "$ms"
vw_pass "node reached its own VIP while the client could not; 3/3 checks flagged local; probe stopped at step 1 broken, passed 4/4 fixed"
