#!/usr/bin/env bash
# Silent link failure of the node (nftables drops every packet in the node's namespace): the
# router with BFD drops the route within the detection time + 200 ms; the router without BFD
# only when its 9 s hold timer expires. Both figures are printed.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=bfd-common.sh
source "$(dirname "$0")/bfd-common.sh"
vw_test_begin "silent link loss: BFD ($VW_BFD_DETECT_MS ms) vs hold timer (${VW_HOLD_TIME}s)"

vw_bfd_start
log=$(vw_router_log "$VW_ROUTER")
mark=$(vw_log_lines "$log")
t0=$(vw_now_ms)
vw_node_blackhole
vw_bfd_measure_loss "$t0" "link loss" "$log" "$mark"
vw_pass "route gone at $VW_RLABEL in $VW_BFD_MS ms (BFD), at $(vw_router_label "$VW_OTHER_ROUTER") in $VW_HOLD_MS ms (hold timer)"
