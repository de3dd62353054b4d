# shellcheck shell=bash
# Helpers for the BFD scenarios (60-64). Sourced after common.sh.
#
# The router under test runs BFD with the node (300 ms x 3, detection 900 ms); the other router
# does not, so one fault on the node measures both paths at once: the route leaves the router
# under test through BFD and the other one through its 9 s hold timer.

VW_BFD=$VW_ROUTER
VW_BFD_YAML="{min_tx: ${VW_BFD_INTERVAL_MS}ms, min_rx: ${VW_BFD_INTERVAL_MS}ms, multiplier: $VW_BFD_MULT}"
VW_BFD_DETECT_MS=$((VW_BFD_INTERVAL_MS * VW_BFD_MULT))

bfd_up_at_router() { [[ $(vw_bfd_router_state "$VW_ROUTER") == up ]]; }
other_has_v4() { router_has_prefix "$VW_OTHER_ROUTER" "$VW_VIP4_PREFIX"; }

# vw_bfd_start: vipwarden with BFD to the router under test; waits for routes at both routers,
# then for BFD Up at the router under test and in vipwarden's status.
vw_bfd_start() {
  vw_start_vipwarden_and_wait bfd="$VW_BFD_YAML" "$@"
  local ms
  ms=$(vw_wait_until now 10000 bfd_up_at_router) ||
    vw_fail "BFD not Up at $VW_RLABEL after ${ms} ms (state: $(vw_bfd_router_state "$VW_ROUTER"))"
  vw_info "BFD Up at $VW_RLABEL after ${ms} ms"
  ms=$(vw_wait_until now 5000 vw_bfd_status_up) || vw_fail "vipwarden status does not show BFD up: $(vw_status_json)"
  vw_wait_until now 20000 other_has_v4 >/dev/null || vw_fail "VIP not at $(vw_router_label "$VW_OTHER_ROUTER")"
}

# The node's BFD view of the router under test, from `vipwarden status --json`.
vw_bfd_status() {
  vw_status_json | jq -c --arg p "$(vw_peer_name)" '.peers[] | select(.name == $p) | .bfd'
}
vw_bfd_status_up() { [[ $(vw_bfd_status | jq -r .state) == up ]]; }

# vw_node_blackhole: every packet in and out of the node's links dropped (silent link failure;
# this kernel has no netem). Goes away with the namespace.
vw_node_blackhole() {
  vw_in "$VW_NS_NODE" nft -f - <<'NFT'
table inet vwbfd {
  chain in { type filter hook input priority -300; iifname != "lo" drop; }
  chain out { type filter hook output priority -300; oifname != "lo" drop; }
}
NFT
}

# Epoch ms of the first line after line MARK of FILE matching ERE (BIRD "2026-11-30 07:12:25.474",
# FRR "2026/11/30 07:12:25.474" timestamps, local time); empty if none.
vw_log_time_ms() {
  local file=$1 mark=$2 re=$3 line
  line=$(tail -n +"$((mark + 1))" "$file" 2>/dev/null | grep -E -m1 "$re") || return 0
  date -d "$(awk '{ print $1, $2 }' <<<"$line" | tr / -)" +%s%3N 2>/dev/null || true
}

# What each router logs when BFD takes the BGP session down.
vw_bfd_down_re() {
  case $1 in
    bird) echo 'BFD session down' ;;
    frr) echo 'Cease/BFD Down|ADJCHANGE.*Down BFD down' ;;
  esac
}

# vw_bfd_measure_loss T0 LABEL: waits for the route to leave the router under test (BFD) and then
# the other router (hold timer); prints both and checks the BFD figure against detection + 200 ms.
# Polling asks the router for the IPv4 VIP only (one birdc/vtysh call per poll, ~20-60 ms), then
# checks that the IPv6 VIP went too; the router's own log time of the BFD event is printed as well.
vw_bfd_measure_loss() {
  local t0=$1 label=$2 ms hold logged log=$3 mark=$4
  ms=$(vw_wait_until "$t0" $(((VW_HOLD_TIME + 5) * 1000)) vw_not has4) ||
    vw_fail "VIP still at $VW_RLABEL ${ms} ms after $label"
  vw_wait_until now 2000 vw_not has6 >/dev/null || vw_fail "IPv6 VIP still at $VW_RLABEL"
  hold=$(vw_wait_until "$t0" $(((VW_HOLD_TIME + 5) * 1000)) vw_not other_has_v4) ||
    vw_fail "VIP still at $(vw_router_label "$VW_OTHER_ROUTER") ${hold} ms after $label"
  vw_measured "$label -> route gone at $VW_RLABEL (BFD ${VW_BFD_INTERVAL_MS}ms x $VW_BFD_MULT)" "$ms"
  logged=$(vw_log_time_ms "$log" "$mark" "$(vw_bfd_down_re "$VW_ROUTER")")
  if [[ -n $logged ]]; then
    vw_measured "$label -> $VW_RLABEL logged BGP down by BFD" $((logged - t0))
  else
    vw_fail "$VW_RLABEL did not log the session going down by BFD (/$(vw_bfd_down_re "$VW_ROUTER")/)"
  fi
  VW_ROUTER=$VW_OTHER_ROUTER vw_measured "$label -> route gone at $(vw_router_label "$VW_OTHER_ROUTER") (hold timer ${VW_HOLD_TIME}s, no BFD)" "$hold"
  vw_expect_within "BFD detection" 0 $((VW_BFD_DETECT_MS + 200)) "$ms"
  ((hold > ms)) || vw_fail "the hold-timer router ($hold ms) was not slower than BFD ($ms ms)"
  VW_BFD_MS=$ms
  VW_HOLD_MS=$hold
}
