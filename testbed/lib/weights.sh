# shellcheck shell=bash
# Weighted anycast lab (issue 19): the fleet lab (three nodes, BIRD + FRR
# ToRs) with `vips[].weight` on every node. Node capacities 1:1:2 (1, 1 and
# 2 Gbit/s); FRR's zebra turns the RFC 10005 link bandwidth into kernel
# next-hop weights at the ToR. Each node serves a Prometheus text file on
# 127.0.0.1:9109 in its own namespace (python3 http.server), the lab writes
# `lab_latency_ms` there: a `scale_when` condition on it halves the node's
# weight above 200 (restore below 100). The client reaches the VIP only
# through FRR here (BIRD 2 does plain ECMP).
#
# Source after lib.sh and lib/fleet-topology.sh.

VW_WEIGHT_CAPS=(0 1Gbps 1Gbps 2Gbps)
VW_WEIGHT_SLOW_START=${VW_WEIGHT_SLOW_START:-6s}

# The metrics file node i's signal scrapes.
vw_weights_metrics_file() { echo "$VW_RUN_DIR/metrics$1/metrics"; }

# vw_weights_set_latency I MS: what node i's latency gauge reads from now on.
vw_weights_set_latency() {
  local f tmp
  f=$(vw_weights_metrics_file "$1")
  tmp="$f.tmp"
  printf '# TYPE lab_latency_ms gauge\nlab_latency_ms %s\n' "$2" >"$tmp"
  mv -f "$tmp" "$f"
}

vw_weights_metrics_start() {
  local i=$1 dir=$VW_RUN_DIR/metrics$1
  mkdir -p "$dir"
  vw_weights_set_latency "$i" 10
  vw_spawn "metrics$i" "$(vw_fleet_ns "$i")" "$VW_RUN_DIR/metrics$i.log" \
    python3 -m http.server --bind 127.0.0.1 --directory "$dir" 9109
  vw_wait_until now 5000 vw_in "$(vw_fleet_ns "$i")" curl -sf --max-time 1 \
    http://127.0.0.1:9109/metrics >/dev/null || vw_die "metrics server on node $i did not start"
}

# The per-VIP weight YAML and the signal for node i (fleet-topology's hooks).
vw_weights_node_yaml() {
  local i=$1
  VW_FLEET_GUARD="    weight:
      capacity: ${VW_WEIGHT_CAPS[$i]}
      slow_start: $VW_WEIGHT_SLOW_START
      step: 1s
      min: 10%
      scale_when:
        - signal: lab.latency
          above: 200
          restore_below: 100
          scale: 50%"
  VW_FLEET_TOP="signals:
  - name: lab
    type: prometheus
    url: http://127.0.0.1:9109/metrics
    interval: 200ms
    timeout: 150ms
    window: 1s
    values:
      latency: {gauge: lab_latency_ms}"
}

# Lab up, metrics servers and three weighted vipwardens started, the client
# routed through FRR only.
vw_weights_up() {
  local i
  vw_fleet_up
  for i in 1 2 3; do vw_weights_metrics_start "$i"; done
  for i in 1 2 3; do
    vw_weights_node_yaml "$i"
    vw_fleet_vipwarden_start "$i"
  done
  vw_in "$VW_NS_CLIENT" ip route replace 203.0.113.0/24 via "$VW_FRR_CL_V4"
}

# Kernel next-hop weights for the VIP at the FRR ToR: "W1 W2 W3" in node
# order (0 for a node without a next hop).
vw_weights_tor() {
  local n1 n2 n3
  n1=$(vw_fleet_node_frr 1) n2=$(vw_fleet_node_frr 2) n3=$(vw_fleet_node_frr 3)
  vw_in "$VW_NS_FRR" ip route show "$VW_VIP4" 2>/dev/null | python3 -c '
import re, sys
nodes = sys.argv[1:]
w = {n: 0 for n in nodes}
text = sys.stdin.read()
hops = re.findall(r"nexthop via (\S+) dev \S+ weight (\d+)", text)
hops += [(a, "1") for a in re.findall(r"nexthop via (\S+) dev \S+\s*(?:\n|$)", text)]
if not hops:
    m = re.search(r"via (\S+) dev", text)
    if m:
        hops = [(m.group(1), "1")]
for a, x in hops:
    if a in w:
        w[a] = int(x)
print(*(w[n] for n in nodes))' "$n1" "$n2" "$n3"
}

vw_weights_tor_is() { [[ $(vw_weights_tor) == "$1" ]]; }

# Link bandwidth FRR received from node i, as `show bgp` prints it.
vw_weights_frr_lb() {
  vw_vtysh -c "show bgp ipv4 unicast $VW_VIP4_PREFIX json" 2>/dev/null | python3 -c '
import json, sys
peer = sys.argv[1]
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit()
for p in d.get("paths", []):
    if p.get("peer", {}).get("peerId") == peer:
        print(p.get("extendedCommunity", {}).get("string", "-"))' "$(vw_fleet_node_frr "$1")"
}

# vw_weights_shares N: N short HTTP connections from the client through the
# ToR's ECMP route; prints the percentage served by each node: "P1 P2 P3".
vw_weights_shares() {
  vw_in "$VW_NS_CLIENT" python3 "$VW_TESTBED_DIR/lib/ecmp_shares.py" "$VW_VIP4" 80 "$1"
}
