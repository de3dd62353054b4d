#!/usr/bin/env bash
# Weighted anycast benchmark (issue 19). The fleet lab (lib/fleet-topology.sh) with `vips[].weight`
# on all three nodes (capacities 1:1:2, lib/weights.sh); the client reaches the VIP only through
# the FRR ToR, whose zebra installs the RFC 10005 link bandwidth as kernel next-hop weights
# (fib_multipath_hash_policy=1: L4 hash). Prints:
#   - the kernel weights at the ToR against the shares a client measured over CONNS short
#     connections, for: all healthy; node 3 halved by its latency condition;
#   - node 3 marked by the fleet guard (service down): the link bandwidth FRR received (min) and
#     the kernel weights;
#   - the time from a condition's crossing (the lab writes the gauge node 3 scrapes every 200 ms)
#     to the new weight in the ToR's kernel, RUNS times, and back;
#   - node 1's weight at the ToR over time while it ramps after coming back (slow_start 10s).
#   bash testbed/bench-weights.sh     (root; takes the lab lock; ~1.5 min)
# Knobs: VW_BENCH_CONNS (3000), VW_BENCH_RUNS (5).
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
# shellcheck source=lib/fleet-topology.sh
source "$VW_TESTBED_DIR/lib/fleet-topology.sh"
# shellcheck source=lib/weights.sh
source "$VW_TESTBED_DIR/lib/weights.sh"

CONNS=${VW_BENCH_CONNS:-3000}
RUNS=${VW_BENCH_RUNS:-5}
VW_HOLD_TIME=9
VW_WEIGHT_SLOW_START=10s
VW_FLEET_SETTLE=8s

vw_run_dir_init
vw_install_cleanup_trap
vw_weights_up
# Full weight everywhere first: during the slow start all three ramp together, so 25/25/50 shows
# early and a crossing then waits for the ramp's step.
full() {
  [[ $(vw_weights_frr_lb 1) == *"LB:65101:125000000 "* && $(vw_weights_frr_lb 2) == *"LB:65101:125000000 "* &&
    $(vw_weights_frr_lb 3) == *"LB:65101:250000000 "* ]]
}
vw_wait_until now 40000 full >/dev/null || vw_die "FRR did not get the full link bandwidths"
vw_wait_until now 2000 vw_weights_tor_is "25 25 50" >/dev/null ||
  vw_die "kernel weights at the ToR are $(vw_weights_tor), not 25 25 50"

SHARES=()
measure() {
  local label=$1 w s
  w=$(vw_weights_tor)
  s=$(vw_weights_shares "$CONNS" 2>/dev/null)
  SHARES+=("$(printf '%-28s weights %-10s shares %s' "$label" "$w" "$s")")
}

measure "all healthy (1:1:2)"

CROSS=()
T0S=()
for ((r = 1; r <= RUNS; r++)); do
  sleep 1.2 # past the last change's step
  t0=$(vw_now_ms)
  vw_weights_set_latency 3 300
  ms=$(vw_wait_until "$t0" 10000 vw_weights_tor_is "33 33 33") || vw_die "node 3 not halved: $(vw_weights_tor)"
  CROSS+=("halve $ms")
  T0S+=("$t0")
  ((r == 1)) && measure "node 3 halved (1:1:1)"
  sleep 1.2
  t0=$(vw_now_ms)
  vw_weights_set_latency 3 50
  ms=$(vw_wait_until "$t0" 10000 vw_weights_tor_is "25 25 50") || vw_die "node 3 not restored: $(vw_weights_tor)"
  CROSS+=("restore $ms")
  T0S+=("$t0")
done

# Node 3's service fails: the fleet guard marks it for `settle` (8 s here) before it leaves; a
# marked VIP announces `min` (10% of 2 Gbit/s = 25000000 bytes/s), together with
# GRACEFUL_SHUTDOWN, which FRR honours (LOCAL_PREF 0): the path leaves the multipath set, so
# the kernel shows the other two only. Printed: what FRR received and what the kernel has.
n3_at_min() { [[ $(vw_weights_frr_lb 3) == *"LB:65101:25000000 "* ]]; }
vw_fleet_nginx_stop 3
vw_wait_until now 5000 n3_at_min >/dev/null || vw_die "node 3 not at min at FRR: $(vw_weights_frr_lb 3)"
MARKED="node 3 marked: FRR received $(vw_weights_frr_lb 3); kernel weights $(vw_weights_tor)"
vw_fleet_nginx_start 3

# Node 1 leaves and comes back: its weight at the ToR while it ramps (after node 3's own ramp).
vw_wait_until now 30000 full >/dev/null || vw_die "node 3 did not come back: $(vw_weights_frr_lb 3)"
sleep 1
vw_fleet_nginx_stop 1
vw_wait_until now 15000 eval "[[ \$(vw_weights_tor) == '0 '* ]]" >/dev/null || vw_die "node 1 did not leave"
t1=$(vw_now_ms)
vw_fleet_nginx_start 1
RAMP=()
for ((k = 0; k < 80; k++)); do
  w=$(vw_weights_tor)
  now=$(($(vw_now_ms) - t1))
  if [[ ${#RAMP[@]} -eq 0 || ${RAMP[-1]#* } != "$w" ]]; then RAMP+=("$now $w"); fi
  [[ $w == "25 25 50" ]] && break
  sleep 0.2
done

echo
echo "== kernel next-hop weights at the FRR ToR vs shares of $CONNS short connections (%, nodes 1 2 3)"
printf '%s\n' "${SHARES[@]}"
echo
echo "== condition crossing on node 3 -> new weight in the ToR's kernel (ms; gauge scraped every 200 ms)"
printf '%s\n' "${CROSS[@]}" | python3 -c '
import sys, statistics
d = {}
for line in sys.stdin:
    k, v = line.split()
    d.setdefault(k, []).append(int(v))
for k, v in d.items():
    print(f"{k:8} runs {len(v)}  median {statistics.median(v):.0f}  min {min(v)}  max {max(v)}  all {v}")'
echo "crossing -> vipwarden's weight change (its log), per crossing in order (ms):"
sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden3.log" | grep 'vip web weight [12] Gbit/s -> [12] Gbit/s' |
  python3 -c '
import sys, datetime
t0s = [int(x) for x in sys.argv[1:]]
ts = []
for line in sys.stdin:
    t = datetime.datetime.strptime(line.split()[0][:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    ts.append(int(t.timestamp() * 1000))
print(" ".join(str(t - t0) for t0, t in zip(t0s, ts)))' "${T0S[@]}"
echo
echo "== $MARKED"
echo
echo "== node 1 returning: kernel weights at the ToR over time (slow_start $VW_WEIGHT_SLOW_START, step 1s, min 10%)"
for e in "${RAMP[@]}"; do
  read -r t w <<<"$e"
  printf '+%6d ms  %s\n' "$t" "$w"
done
grep -h 'weight .* -> ' "$VW_RUN_DIR/vipwarden1.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 12 | sed 's/^/node1 log: /'
