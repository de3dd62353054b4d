#!/usr/bin/env bash
# lab-routers: both
# Fleet guard chaos, the CI version of testbed/fleet-chaos.sh: eight nodes behind BIRD and FRR,
# seed 36, 120 s of random faults (service failures and shared outages, drains, disable files,
# link cuts, ToR restarts, vipwarden SIGTERM/SIGKILL restarts), the oracle sampling both ToRs
# every 100 ms. Fails on any sample breaking I1 or I2 (see fleet-chaos.sh).
set -euo pipefail
name=$(basename "$0" .sh)
here=$(cd "$(dirname "$0")" && pwd)
echo "=== $name [both]: 8 nodes, seed 36, 120 s of faults, oracle every 100 ms"
rc=0
out=$(bash "$here/../fleet-chaos.sh" --seed "${VW_CHAOS_SEED:-36}" --duration "${VW_CHAOS_DURATION:-120}" --nodes 8 2>&1) || rc=$?
printf '%s\n' "$out"
line=$(grep -m1 '^oracle:' <<<"$out" | sed 's/^oracle: *//')
faults=$(grep -m1 '^faults:' <<<"$out" | sed 's/^faults: *//')
if ((rc == 0)); then
  printf 'PASS %s [both]: %s; faults: %s\n' "$name" "$line" "$faults"
else
  printf 'FAIL %s [both]: exit %s; %s; faults: %s\n' "$name" "$rc" "${line:-no oracle summary}" "$faults"
  exit 1
fi
