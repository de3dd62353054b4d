#!/usr/bin/env bash
# Bounded soak: random faults on a node with two ToRs (BIRD and FRR), and an
# oracle after each one comparing the routes at BOTH routers with what the
# node's state says they must be.
#   soak.sh [-d SECONDS] [-s SEED]     (default 180 s; an hour: -d 3600)
# Faults: service kill/restart, router restart (SIGKILL), silent link loss
# (nftables drop on one link for a hold time), SIGSTOP of vipwarden for a hold
# time, SIGHUP with a changed MED, drain/undrain over the API, a flood of
# ROUTE-REFRESH from a router (BIRD `reload in`, FRR `clear soft in`).
# Oracle: service up and not drained -> both prefixes at both routers with the
# current MED; otherwise neither, at either. A fault's expected state must
# hold within a budget (hold time + reconnect); each miss is a mismatch.
# Prints the faults applied, mismatches (goal 0), and vipwarden's RSS at start
# and end (goal: flat). Exit 0 when there was no mismatch.
set -euo pipefail
TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$TESTBED/lib.sh"

duration=180
seed=$$
while getopts 'd:s:h' opt; do
  case $opt in
    d) duration=$OPTARG ;;
    s) seed=$OPTARG ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
RANDOM=$seed

ROUTERS=(bird frr)
med=100
drained=0
faults=0
mismatches=0
declare -A applied=()

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$(vw_pid_of vipwarden)/status"; }

has_all() {
  local r p
  for r in "${ROUTERS[@]}"; do
    for p in "$VW_VIP4_PREFIX" "$VW_VIP6_PREFIX"; do
      router_has_prefix "$r" "$p" || return 1
    done
    [[ $(router_med "$r" "$VW_VIP4_PREFIX") == "$med" ]] || return 1
  done
}
has_none() {
  local r p
  for r in "${ROUTERS[@]}"; do
    for p in "$VW_VIP4_PREFIX" "$VW_VIP6_PREFIX"; do
      if router_has_prefix "$r" "$p"; then return 1; fi
    done
  done
}

# oracle WHAT BUDGET_MS: the routers must reach the state the node's state
# implies within BUDGET_MS.
oracle() {
  local what=$1 budget=$2 want=has_all ms
  ((drained == 0)) && vw_nginx_listening || want=has_none
  if ms=$(vw_wait_until now "$budget" "$want"); then
    printf '  ok       %-34s %s in %s ms\n' "$what" "${want#has_}" "$ms"
  else
    mismatches=$((mismatches + 1))
    printf '  MISMATCH %-34s want %s after %s ms; bird: %s; frr: %s\n' "$what" "${want#has_}" "$budget" \
      "$(vw_show_router bird | tr -s ' \n' ' ')" "$(vw_show_router frr | tr -s ' \n' ' ')"
  fi
}

hold_ms=$((VW_HOLD_TIME * 1000))
settle_ms=$((hold_ms + 15000))

write_config() {
  vw_vipwarden_config med="$med" top_extra="$(soak_api_yaml)" >"$VW_RUN_DIR/vipwarden.yaml.new"
  mv "$VW_RUN_DIR/vipwarden.yaml.new" "$VW_RUN_DIR/vipwarden.yaml"
}

soak_api_yaml() {
  local tok=$VW_RUN_DIR/api-token
  [[ -s $tok ]] || (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tok")
  mkdir -p "$VW_RUN_DIR/state"
  printf 'api:\n  listen: 127.0.0.1:9180\n  token_file: %s\nstate_dir: %s\n' "$tok" "$VW_RUN_DIR/state"
}

cli() { vw_in "$VW_NS_NODE" "$(vw_vipwarden_bin)" "$@" --config "$VW_RUN_DIR/vipwarden.yaml" >/dev/null 2>&1; }

pick_router() { echo "${ROUTERS[RANDOM % 2]}"; }

fault_service() {
  vw_nginx_stop
  oracle "service killed" "$settle_ms"
  vw_nginx_start
  oracle "service restarted" "$settle_ms"
}

fault_router_restart() {
  local r
  r=$(pick_router)
  vw_router_stop "$r" KILL
  sleep 1
  vw_router_start "$r"
  oracle "$r restarted" 40000
}

fault_link_loss() {
  local r dev
  r=$(pick_router)
  dev=n1-$r
  vw_in "$VW_NS_NODE" nft add table inet vwsoak
  vw_in "$VW_NS_NODE" nft add chain inet vwsoak out '{ type filter hook output priority 0; }'
  vw_in "$VW_NS_NODE" nft add chain inet vwsoak in '{ type filter hook input priority 0; }'
  vw_in "$VW_NS_NODE" nft add rule inet vwsoak out oifname "$dev" drop
  vw_in "$VW_NS_NODE" nft add rule inet vwsoak in iifname "$dev" drop
  # The router's hold timer must take the route away there.
  local lost=0
  vw_wait_until now $((hold_ms + 3000)) vw_not router_has_prefix "$r" "$VW_VIP4_PREFIX" >/dev/null || lost=1
  if ((lost)) && ((drained == 0)) && vw_nginx_listening; then
    mismatches=$((mismatches + 1))
    printf '  MISMATCH %-34s %s kept the route through a dead link\n' "link to $r dropped" "$r"
  else
    printf '  ok       %-34s route left %s\n' "link to $r dropped" "$r"
  fi
  vw_in "$VW_NS_NODE" nft delete table inet vwsoak
  oracle "link to $r restored" 40000
}

fault_sigstop() {
  vw_signal_tree vipwarden STOP
  sleep $((VW_HOLD_TIME + 2))
  vw_signal_tree vipwarden CONT
  oracle "SIGSTOP/SIGCONT" 40000
}

fault_sighup_med() {
  med=$((100 + RANDOM % 900))
  write_config
  vw_signal vipwarden HUP
  oracle "SIGHUP med $med" 10000
}

fault_drain() {
  if ((drained)); then
    cli undrain web && drained=0
    oracle "undrain" "$settle_ms"
  else
    cli drain web --reason soak && drained=1
    oracle "drain" "$settle_ms"
  fi
}

fault_refresh_flood() {
  local i r
  r=$(pick_router)
  for ((i = 0; i < 200; i++)); do
    case $r in
      bird) vw_birdc reload in node1 >/dev/null 2>&1 || true ;;
      frr) vw_vtysh -c "clear bgp ipv4 unicast $VW_NODE_FRR_V4 soft in" >/dev/null 2>&1 || true ;;
    esac
  done
  oracle "ROUTE-REFRESH x200 from $r" 10000
}

FAULTS=(service router_restart link_loss sigstop sighup_med drain refresh_flood)

main() {
  bash "$TESTBED/setup.sh"
  command -v nft >/dev/null || vw_die "nft not found (apt-get install nftables)"
  vw_run_dir_init
  vw_install_cleanup_trap
  vw_lab_up bird frr
  write_config
  "$(vw_vipwarden_bin)" check-config --config "$VW_RUN_DIR/vipwarden.yaml" >/dev/null ||
    vw_die "soak config rejected"
  vw_vipwarden_spawn
  oracle "start" 30000
  local rss0 rss1 end f
  rss0=$(rss_kb)
  end=$(($(date +%s) + duration))
  echo "soak: ${duration} s, seed $seed, vipwarden RSS at start ${rss0} kB"
  while (($(date +%s) < end)); do
    f=${FAULTS[RANDOM % ${#FAULTS[@]}]}
    faults=$((faults + 1))
    applied[$f]=$((${applied[$f]:-0} + 1))
    printf '%s fault %d: %s\n' "$(date -u +%H:%M:%S)" "$faults" "$f"
    "fault_$f"
    vw_pid_is_ours "$(vw_pid_of vipwarden)" || vw_die "vipwarden is gone"
  done
  # End in the normal state, then one last check.
  if ((drained)); then cli undrain web && drained=0; fi
  vw_nginx_listening || vw_nginx_start
  oracle "final" "$settle_ms"
  rss1=$(rss_kb)
  echo
  echo "faults applied: $faults ($(for f in "${!applied[@]}"; do printf '%s=%s ' "$f" "${applied[$f]}"; done))"
  echo "mismatches: $mismatches"
  echo "vipwarden RSS: start ${rss0} kB, end ${rss1} kB"
  ((mismatches == 0))
}

main
