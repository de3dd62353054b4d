#!/usr/bin/env bash
# Prove the lab without vipwarden: gobgpd on vw-node1 (one instance per ToR)
# announces the VIPs; both BIRD and FRR must show them with the expected
# AS_PATH, next hops, MED and communities, install them in their FIB (the
# client is served), honour a prepend, and drop them on withdraw.
# Exit 0 when the lab, the router configs and the query helpers all work.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FAILS=0
check() {
  local what=$1
  shift
  if "$@"; then
    printf '  ok    %s\n' "$what"
  else
    printf '  FAIL  %s\n' "$what"
    FAILS=$((FAILS + 1))
  fi
}

expect_eq() { [[ $1 == "$2" ]] || { vw_err "got '$1', want '$2'"; return 1; }; }

both_present() { router_has_prefix "$1" "$VW_VIP4_PREFIX" && router_has_prefix "$1" "$VW_VIP6_PREFIX"; }
both_absent() { ! router_has_prefix "$1" "$VW_VIP4_PREFIX" && ! router_has_prefix "$1" "$VW_VIP6_PREFIX"; }
client_served() { vw_client_via "$1" && [[ $(vw_client_get "$VW_VIP4") == "served by vw-node1" && $(vw_client_get "[$VW_VIP6]") == "served by vw-node1" ]]; }

verify_router() {
  local r=$1 prepend_path=$2 nh4 nh6 ms
  case $r in
    bird) nh4=$VW_NODE_BIRD_V4 nh6=$VW_NODE_BIRD_V6 ;;
    frr) nh4=$VW_NODE_FRR_V4 nh6=$VW_NODE_FRR_V6 ;;
  esac
  ms=$(vw_wait_until now 30000 both_present "$r") || true
  check "$r: both VIP prefixes present (${ms} ms)" both_present "$r"
  check "$r: IPv4 AS_PATH [$prepend_path]" expect_eq "$(router_as_path "$r" "$VW_VIP4_PREFIX")" "$prepend_path"
  check "$r: IPv6 AS_PATH [$prepend_path]" expect_eq "$(router_as_path "$r" "$VW_VIP6_PREFIX")" "$prepend_path"
  check "$r: IPv4 next hop $nh4" expect_eq "$(router_next_hop "$r" "$VW_VIP4_PREFIX")" "$nh4"
  check "$r: IPv6 next hop $nh6 (MP-BGP over IPv4 session)" expect_eq "$(router_next_hop "$r" "$VW_VIP6_PREFIX")" "$nh6"
  check "$r: MED 100" expect_eq "$(router_med "$r" "$VW_VIP4_PREFIX")" 100
  check "$r: community 65101:100" expect_eq "$(router_communities "$r" "$VW_VIP4_PREFIX")" 65101:100
  check "$r: large community 65101:1:2" expect_eq "$(router_large_communities "$r" "$VW_VIP6_PREFIX")" 65101:1:2
}

main() {
  bash "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
  vw_run_dir_init
  vw_install_cleanup_trap
  vw_lab_up bird frr
  local r ms
  for r in bird frr; do vw_gobgp_start "$r"; done
  for r in bird frr; do vw_gobgp_announce "$r" 0; done
  echo "gobgpd announces the VIPs (prepend 0):"
  for r in bird frr; do
    verify_router "$r" "65101"
    check "$r: session Established" router_session_established "$r"
    check "$r: client served through the route" client_served "$r"
  done
  echo "re-announce with AS_PATH prepend 2:"
  for r in bird frr; do vw_gobgp_announce "$r" 2; done
  sleep 1
  for r in bird frr; do
    check "$r: AS_PATH [65101 65101 65101]" expect_eq "$(router_as_path "$r" "$VW_VIP4_PREFIX")" "65101 65101 65101"
  done
  echo "withdraw:"
  for r in bird frr; do vw_gobgp_withdraw "$r"; done
  for r in bird frr; do
    ms=$(vw_wait_until now 5000 both_absent "$r") || true
    check "$r: both VIP prefixes gone (${ms} ms)" both_absent "$r"
    check "$r: session still Established" router_session_established "$r"
  done
  if ((FAILS)); then
    echo "topology: $FAILS check(s) failed"
    exit 1
  fi
  echo "topology: all checks passed"
}

main "$@"
