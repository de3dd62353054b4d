#!/usr/bin/env bash
# lab-routers: both
# Fleet guard and reloads (issue 17, "every exit"): nodes 2 and 3 fail and leave; node 1 is the
# last healthy announcer. Node 1's config loses the VIP and vipwarden reloads (SIGHUP): the
# removed VIP leaves as at a planned stop, through the gate, so it marks and must not leave.
# Node 2 then recovers: node 1's removed VIP leaves both ToRs after settle. Oracle I1/I2 all along.
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
vw_guard_begin "the VIP removed from the last healthy node's config by a reload: it marks, it does not leave"

t0=$(vw_now_ms)
vw_guard_outage 2 3
ms=$(vw_wait_until "$t0" 20000 vw_fleet_counts_are "1 0" "1 0") ||
  vw_fail "nodes 2 and 3 did not leave ($(vw_fleet_show_counts))"
vw_measured "nginx stopped on nodes 2 and 3 -> only node 1 at both ToRs" "$ms"

# Node 1's config: the guarded VIP replaced by another one (another prefix, same check).
conf=$VW_RUN_DIR/vipwarden1.yaml
python3 - "$conf" "$VW_VIP4_PREFIX" <<'PY'
import sys
path, prefix = sys.argv[1], sys.argv[2]
text = open(path).read()
old = "  - name: web\n    prefixes: [%s]" % prefix
assert old in text, "VIP entry not found in " + path
open(path, "w").write(text.replace(old, "  - name: other\n    prefixes: [203.0.113.99/32]"))
PY
vw_vipwarden_check "$conf" "$VW_RUN_DIR/check-config1-reload.log"
t1=$(vw_now_ms)
vw_guard_fault reload-removes-vip node1
kill -HUP "$(vw_pid_of vipwarden1)"
marked=$(vw_wait_until "$t1" 5000 eval "[[ \$(vw_guard_paths bird) == '1:1' && \$(vw_guard_paths frr) == '1:1' ]]") ||
  vw_fail "node 1's removed VIP not marked at both ToRs 5 s after the reload (bird '$(vw_guard_paths bird)', frr '$(vw_guard_paths frr)')"
vw_measured "reload without the VIP on node 1 -> its route marked at both ToRs" "$marked"
sleep $(((VW_GUARD_SETTLE_MS + 7000) / 1000))
for r in bird frr; do
  vw_guard_has_path 1 "$r" || vw_fail "node 1 left $r $(($(vw_now_ms) - t1)) ms after the reload removed its VIP (paths now: '$(vw_guard_paths "$r")')"
done
reason=$(vw_fleet_reason 1)
echo "node 1: $(vw_fleet_state 1): $reason"
[[ $reason == *"removed from the configuration"* ]] || vw_fail "node 1's status does not say why it holds: '$reason'"

t2=$(vw_now_ms)
vw_guard_svc_start 2
gone=$(vw_wait_until "$t2" 20000 eval "! vw_guard_has_path 1 bird && ! vw_guard_has_path 1 frr") ||
  vw_fail "node 1's removed VIP still announced 20 s after node 2 recovered (bird '$(vw_guard_paths bird)', frr '$(vw_guard_paths frr)')"
vw_measured "node 2 recovered -> node 1's removed VIP gone from both ToRs" "$gone"
vw_guard_verdict
vw_pass "removed VIP held, marked, $(((t2 - t1) / 1000)) s as the last announcer, gone ${gone} ms after node 2 recovered; no I1/I2 break"
