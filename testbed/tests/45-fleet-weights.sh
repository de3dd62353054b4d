#!/usr/bin/env bash
# lab-routers: both
# Weighted anycast (issue 19): three nodes with capacities 1:1:2 announce the
# VIP with RFC 10005 link bandwidth; FRR (zebra, maximum-paths, nothing else)
# installs kernel next-hop weights 25/25/50 and a client's short connections
# through the ToR follow them within 5 points. A latency condition on node 3
# halves its weight (kernel 33/33/33) and its clearing restores it; node 1
# coming back ramps over slow_start (weights at the ToR printed over time).
# shellcheck source=fleet-common.sh
source "$(dirname "$0")/fleet-common.sh"
# shellcheck source=../lib/weights.sh
source "$VW_TESTBED_DIR/lib/weights.sh"

printf '=== %s [both]: %s\n' "$VW_TEST_NAME" "kernel weights 25/25/50 from capacities 1:1:2; a condition halves one; a returning node ramps"
vw_run_dir_init
trap 'vw_fleet_on_exit $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
VW_WEIGHT_SLOW_START=4s
vw_weights_up

# Full weight everywhere (the slow start ramps all three together, so 25/25/50
# shows early): FRR reads 1, 1 and 2 Gbit/s as bytes per second.
full() {
  [[ $(vw_weights_frr_lb 1) == *"LB:65101:125000000 "* && $(vw_weights_frr_lb 2) == *"LB:65101:125000000 "* &&
    $(vw_weights_frr_lb 3) == *"LB:65101:250000000 "* ]]
}
ms=$(vw_wait_until now 30000 full) ||
  vw_fail "FRR did not get the full link bandwidths 30 s after start: $(vw_weights_frr_lb 1), $(vw_weights_frr_lb 2), $(vw_weights_frr_lb 3)"
vw_measured "start -> full link bandwidth at FRR (slow start 4 s included)" "$ms"
for i in 1 2 3; do echo "FRR received from node $i: $(vw_weights_frr_lb "$i")"; done
vw_wait_until now 2000 vw_weights_tor_is "25 25 50" >/dev/null ||
  vw_fail "kernel weights at the ToR are $(vw_weights_tor), not 25 25 50"
echo "kernel next-hop weights at the ToR: $(vw_weights_tor)"

check_shares() {
  local want=($1) got i d
  read -r -a got <<<"$(vw_weights_shares 600)"
  echo "shares over 600 connections: ${got[*]} (weights ${want[*]})"
  for i in 0 1 2; do
    d=$(python3 -c "print(abs(${got[$i]} - ${want[$i]}))")
    python3 -c "import sys; sys.exit(0 if $d <= 5 else 1)" ||
      vw_fail "node $((i + 1)) got ${got[$i]}% of the connections, weight ${want[$i]} (more than 5 points off)"
  done
}
check_shares "25 25 50"

t0=$(vw_now_ms)
vw_weights_set_latency 3 300
ms=$(vw_wait_until "$t0" 10000 vw_weights_tor_is "33 33 33") ||
  vw_fail "node 3's weight did not halve: kernel $(vw_weights_tor)"
vw_measured "latency above the threshold on node 3 -> kernel weights 33/33/33" "$ms"
grep -q 'weight 2 Gbit/s -> 1 Gbit/s' "$VW_RUN_DIR/vipwarden3.log" ||
  vw_fail "node 3 did not log its weight change"
check_shares "33 33 33"
t0=$(vw_now_ms)
vw_weights_set_latency 3 50
ms=$(vw_wait_until "$t0" 10000 vw_weights_tor_is "25 25 50") ||
  vw_fail "node 3's weight did not come back: kernel $(vw_weights_tor)"
vw_measured "latency back below restore on node 3 -> kernel weights 25/25/50" "$ms"

# Node 1 leaves (service down), then comes back: it ramps from min.
vw_fleet_nginx_kill 1
vw_wait_until now 15000 eval "[[ \$(vw_weights_tor) == '0 '* ]]" >/dev/null ||
  vw_fail "node 1 did not leave: kernel $(vw_weights_tor)"
t1=$(vw_now_ms)
vw_fleet_nginx_start 1
timeline=()
for ((k = 0; k < 40; k++)); do
  w=$(vw_weights_tor)
  now=$(($(vw_now_ms) - t1))
  if [[ ${#timeline[@]} -eq 0 || ${timeline[-1]#* } != "$w" ]]; then
    timeline+=("$now $w")
    printf 'ramp: +%5d ms  kernel weights %s\n' "$now" "$w"
  fi
  [[ $w == "25 25 50" ]] && break
  sleep 0.25
done
[[ ${timeline[-1]#* } == "25 25 50" ]] || vw_fail "node 1 did not reach its full weight 10 s after returning: $(vw_weights_tor)"
# From min (10% of 1 Gbit/s against 3 Gbit/s: weight 3) to 25 in steps: at
# least three values between, never decreasing.
prev=0 steps=0
for e in "${timeline[@]}"; do
  read -r _ w1 _ <<<"$e"
  ((w1 == 0)) && continue
  ((w1 >= prev)) || vw_fail "node 1's weight went down during the ramp: ${timeline[*]}"
  ((w1 > prev)) && steps=$((steps + 1))
  prev=$w1
done
((steps >= 4)) || vw_fail "node 1 reached its weight in $steps steps, not a ramp: ${timeline[*]}"
vw_pass "weights 25/25/50 at the ToR, shares within 5 points, node 3 halved and restored, node 1 ramped in $steps steps"
