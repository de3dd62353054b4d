#!/usr/bin/env bash
# Records the lab's BGP (tcp/179) and BFD (udp/3784) traffic for the fuzz corpus: runs the given
# scenarios against the given routers with tcpdump in vipwarden's namespace (vw-node1), one pcap
# per namespace instance. Seeds are then cut out of the pcaps by pcap-seeds.py.
#   fuzz/seed/capture-lab.sh OUTDIR ROUTER SCENARIO...
# e.g. fuzz/seed/capture-lab.sh /tmp/pcaps frr 01-rise 05-attributes 12-routes-from-router
# Needs tcpdump (apt-get install tcpdump) and a release binary (VIPWARDEN_BIN or target/release).
set -euo pipefail
out=$1 router=$2
shift 2
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
stop=$out/.stop
rm -f "$stop"

# Poll for the node namespace; each time a new instance appears, capture in it until it goes.
# Bounded: stops when the scenarios are done (stop file) or after 30 minutes.
watch() {
  local n=0 deadline=$((SECONDS + 1800)) pid ino last=
  while [[ ! -e $stop ]] && ((SECONDS < deadline)); do
    ino=$(stat -c %i /run/netns/vw-node1 2>/dev/null || true)
    if [[ -n $ino && $ino != "$last" ]]; then
      last=$ino n=$((n + 1))
      ip netns exec vw-node1 tcpdump -i any -U -s 0 -w "$out/$router-$n.pcap" \
        'tcp port 179 or udp port 3784' >/dev/null 2>&1 &
      pid=$!
      # The lab's cleanup kills every process in the namespace, tcpdump included.
      while [[ -e /run/netns/vw-node1 && ! -e $stop ]] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
}
watch &
watcher=$!
trap 'touch "$stop"; wait "$watcher" 2>/dev/null || true' EXIT
for t in "$@"; do
  bash "$repo/testbed/run-tests.sh" -T -r "$router" -t "$t" || true
done
