#!/usr/bin/env bash
# lab-routers: both
# Fleet guard behind ToRs that strip large communities (issue 17, point 4): BIRD's export filter
# deletes every large community, FRR's route-map sets none, so no path a node receives carries
# an identity (and FRR reflects each node's own path back anonymously). Nodes 2 and 3 fail.
# Paths without identity are doubt: the guard must not count them as healthy others, so nodes 2
# and 3 hold (stay announced, marked) at both ToRs for settle + 7 s, and every node WARNs about
# the missing identities.
# shellcheck source=guard-common.sh
source "$(dirname "$0")/guard-common.sh"
VW_FLEET_STRIP_LARGE_BIRD=1
VW_FLEET_STRIP_LARGE_FRR=1
vw_guard_begin "ToRs strip large communities: the guard holds and warns, anonymous paths are not healthy others"

t0=$(vw_now_ms)
vw_guard_outage 2 3
sleep $(((VW_GUARD_SETTLE_MS + 7000) / 1000))
left=""
for r in bird frr; do
  p=$(vw_guard_paths "$r")
  echo "$r paths (node:marked): ${p:-none}"
  for i in 2 3; do
    [[ " $p " == *" $i:"* ]] || left+=" node$i@$r"
  done
done
for i in 1 2 3; do echo "node $i: $(vw_fleet_state "$i"): $(vw_fleet_reason "$i")"; done
warned=0
for i in 1 2 3; do
  if sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden$i.log" | grep -E 'WARN' | grep -iE 'identity|large.communit' >/dev/null; then
    warned=$((warned + 1))
  fi
done
sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden2.log" | grep -E 'WARN' | grep -iE -m2 'identity|large.communit' || true
[[ -z $left ]] || vw_fail "nodes left although the view had no identities:${left} ($(($(vw_now_ms) - t0)) ms after the failures)"
((warned == 3)) || vw_fail "only $warned of 3 nodes WARNed about paths without identity (grep WARN + identity|large communit)"
vw_guard_verdict
vw_pass "nodes 2 and 3 held at both ToRs $(($(vw_now_ms) - t0)) ms after failing; 3/3 nodes warned; no I1/I2 break"
