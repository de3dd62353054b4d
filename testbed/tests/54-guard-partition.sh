#!/usr/bin/env bash
# lab-routers: both
# Fleet guard and a partition (issue 17, point 7): four nodes; nodes 1 and 2 lose their links to
# FRR (nftables drops, both directions) until FRR's hold timer drops their sessions; then the
# services of nodes 3 and 4, the only ones FRR still has, fail. BIRD still shows nodes 1 and 2
# healthy, but that must not make 3 and 4 leave FRR: they stay there, marked, and FRR never
# loses the prefix (checked for settle + 7 s). Leaving BIRD is allowed (it keeps 1 and 2).
# shellcheck source=guard-common.sh
VW_FLEET_N=4
VW_HOLD_TIME=6
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "one ToR partitioned from half the nodes: the other ToR's view does not make nodes leave it"

t0=$(vw_now_ms)
vw_guard_cut 1 frr
vw_guard_cut 2 frr
ms=$(vw_wait_until "$t0" $((VW_HOLD_TIME * 1000 + 5000)) eval "[[ \$(vw_guard_paths frr) == '3:0 4:0' ]]") ||
  vw_fail "FRR did not drop nodes 1 and 2 within hold time + 5 s (paths: '$(vw_guard_paths frr)')"
vw_measured "nodes 1 and 2 cut from FRR -> FRR has only nodes 3 and 4" "$ms"
t1=$(vw_now_ms)
vw_guard_outage 3 4
sleep $(((VW_GUARD_SETTLE_MS + 7000) / 1000))
pb=$(vw_guard_paths bird)
pf=$(vw_guard_paths frr)
echo "BIRD paths (node:marked): ${pb:-none}; FRR: ${pf:-none}"
for i in 3 4; do echo "node $i: $(vw_fleet_state "$i"): $(vw_fleet_reason "$i")"; done
[[ -n $pf ]] || vw_fail "FRR lost the prefix $(($(vw_now_ms) - t1)) ms after nodes 3 and 4 failed (BIRD: '$pb'), partition still on"
[[ $pb == "1:0 2:0" ]] && echo "nodes 3 and 4 left BIRD (it keeps 1 and 2): per-ToR decision" ||
  echo "nodes 3 and 4 did not both leave BIRD ('$pb'): allowed, but not the per-ToR decision"
vw_guard_verdict
vw_pass "FRR kept the prefix (paths '$pf') with nodes 1-2 cut off and 3-4 failed; BIRD '$pb'; no I1/I2 break"
