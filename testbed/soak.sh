#!/usr/bin/env bash
# Chaos soak: random faults on a node with two ToRs (BIRD with BFD, FRR), and
# an oracle after each one comparing the routes in BOTH routers' RIBs with
# what the node's state says they must be.
#   soak.sh [-d SECONDS] [-s SEED] [-f FAULT,FAULT...]
#     default 180 s (the CI run); an hour: -d 3600; -f limits the faults drawn.
# Faults: service kill/restart; router restart (SIGKILL); link cut (nftables
# drop on one link for a hold time); SIGSTOP of vipwarden for hold time + 2 s
# (reconnect time to each router printed); SIGHUP with a changed MED; SIGHUP
# with a bad config (YAML error, world-readable key file, invalid value: must
# be refused and the running config kept); drain/undrain over the API; a BFD
# flood (malformed and unknown-discriminator packets to the node, TTL 255);
# a flood of ROUTE-REFRESH (BIRD `reload in`, FRR `clear soft in`); vipwarden
# restarts (SIGTERM planned stop, SIGKILL crash).
# Oracle: service up and not drained -> both prefixes at both routers with the
# current MED; otherwise neither, at either. A fault's expected state must
# hold within a budget; each miss is a mismatch.
# Prints the faults applied, mismatches (goal 0), vipwarden's RSS and open fds
# at start and end (goal: flat; sampled after every fault into
# $VW_RUN_DIR/soak-samples.csv). Exit 0 when there was no mismatch.
set -euo pipefail
TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$TESTBED/lib.sh"

duration=180
seed=$$
only=
while getopts 'd:s:f:h' opt; do
  case $opt in
    d) duration=$OPTARG ;;
    s) seed=$OPTARG ;;
    f) only=$OPTARG ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
  esac
done
RANDOM=$seed
# BFD with BIRD (FRR's bfdd would need its own restart handling in the router restart fault).
export VW_BFD=bird

ROUTERS=(bird frr)
med=100
drained=0
faults=0
mismatches=0
declare -A applied=()

restarts=0
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$(vw_pid_of vipwarden)/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$(vw_pid_of vipwarden)/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

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
SOAK_BFD="{min_tx: ${VW_BFD_INTERVAL_MS}ms, min_rx: ${VW_BFD_INTERVAL_MS}ms, multiplier: $VW_BFD_MULT}"
settle_ms=$((hold_ms + 15000))

write_config() {
  vw_vipwarden_config med="$med" top_extra="$(soak_api_yaml)" bfd="$SOAK_BFD" >"$VW_RUN_DIR/vipwarden.yaml.new"
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

# Reconnect after our own stall: the routers' hold timers expired while we were stopped;
# vipwarden must be back at once (issue 18: 25.8 s behind a grown backoff), not after a backoff.
fault_sigstop() {
  local t0 r ms
  vw_signal_tree vipwarden STOP
  sleep $((VW_HOLD_TIME + 2))
  vw_signal_tree vipwarden CONT
  t0=$(vw_now_ms)
  for r in "${ROUTERS[@]}"; do
    if ms=$(vw_wait_until "$t0" 20000 router_session_established "$r"); then
      printf '  ok       %-34s %s session back in %s ms\n' "SIGSTOP $((VW_HOLD_TIME + 2)) s" "$r" "$ms"
      echo "$r $ms" >>"$VW_RUN_DIR/soak-sigstop.txt"
    else
      printf '  MISMATCH %-34s %s session not back after %s ms\n' "SIGSTOP $((VW_HOLD_TIME + 2)) s" "$r" "$ms"
      mismatches=$((mismatches + 1))
    fi
  done
  # Routes back within the routers' own error wait (BIRD: up to 5 s) plus a few seconds.
  oracle "SIGSTOP/SIGCONT" 12000
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


# A bad config on SIGHUP must be refused whole: the running config (MED, keys) stays.
fault_sighup_bad() {
  local conf=$VW_RUN_DIR/vipwarden.yaml good=$VW_RUN_DIR/vipwarden.yaml.good kind key mark
  cp "$conf" "$good"
  kind=$((RANDOM % 3))
  case $kind in
    0) printf 'vips: [unclosed\n' >>"$conf"; kind="YAML error" ;;
    1)
      key=$VW_RUN_DIR/soak-open.key
      echo soak-md5-key >"$key" && chmod 644 "$key"
      vw_vipwarden_config med="$med" top_extra="$(soak_api_yaml)" peer_extra="    password_file: $key" bfd="$SOAK_BFD" >"$conf"
      kind="world-readable key file"
      ;;
    2) vw_vipwarden_config med=-5 top_extra="$(soak_api_yaml)" bfd="$SOAK_BFD" >"$conf"; kind="invalid MED" ;;
  esac
  mark=$(wc -l <"$VW_RUN_DIR/vipwarden.log")
  vw_signal vipwarden HUP
  if vw_wait_until now 5000 soak_log_after "$mark" "configuration not reloaded, the running one stays" >/dev/null; then
    printf '  ok       %-34s refused, running config kept\n' "SIGHUP bad ($kind)"
  else
    mismatches=$((mismatches + 1))
    printf '  MISMATCH %-34s no refusal logged\n' "SIGHUP bad ($kind)"
  fi
  mv "$good" "$conf"
  oracle "after SIGHUP bad ($kind)" 10000
}

soak_log_after() { tail -n +"$(($1 + 1))" "$VW_RUN_DIR/vipwarden.log" | grep "$2" >/dev/null; }

# Malformed and unknown-discriminator BFD control packets (TTL 255) from BIRD's side: counted
# and discarded, the BFD session stays Up, nothing moves.
fault_bfd_flood() {
  local sent
  # A restart just before leaves BFD in its 1 s slow start; the flood must hit an Up session,
  # or "still up" would judge the start-up, not the flood.
  if ! vw_wait_until now 15000 soak_bfd_up >/dev/null; then
    mismatches=$((mismatches + 1))
    printf '  MISMATCH %-34s BFD at bird: %s\n' "BFD not up before the flood" "$(vw_bfd_router_state bird)"
    return
  fi
  sent=$(vw_in "$VW_NS_BIRD" python3 - "$VW_NODE_BIRD_V4" <<'PY'
import os, random, socket, struct, sys, time
dst = (sys.argv[1], 3784)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
n, end = 0, time.monotonic() + 5
while time.monotonic() < end and n < 50000:
    kind = n % 4
    if kind == 0:
        pkt = os.urandom(random.randint(0, 64))          # garbage
    elif kind == 1:                                       # wrong version
        pkt = struct.pack("!BBBBIIIII", 0x40, 0xC0, 3, 24, 7, 9, 300000, 300000, 0)
    elif kind == 2:                                       # length field lies
        pkt = struct.pack("!BBBBIIIII", 0x20, 0xC0, 3, 60, 7, 9, 300000, 300000, 0)
    else:                                                 # Up, unknown discriminators
        pkt = struct.pack("!BBBBIIIII", 0x20, 0xC0, 3, 24, random.getrandbits(32) | 1,
                          random.getrandbits(32) | 1, 300000, 300000, 0)
    try:
        s.sendto(pkt, dst)
    except OSError:
        pass
    n += 1
print(n)
PY
  ) || sent=0
  if [[ $(vw_bfd_router_state bird) == up ]]; then
    printf '  ok       %-34s BFD still up at bird\n' "BFD flood ($sent packets)"
  else
    mismatches=$((mismatches + 1))
    printf '  MISMATCH %-34s BFD at bird: %s\n' "BFD flood ($sent packets)" "$(vw_bfd_router_state bird)"
  fi
  oracle "after BFD flood" 10000
}

# Planned stop (withdraw, Cease) or crash (routers notice by BFD / hold timer), then a fresh
# start from the same config and state directory (a drain survives it).
fault_restart() {
  local sig=TERM
  ((RANDOM % 2)) && sig=KILL
  vw_stop vipwarden "$sig" 15000
  restarts=$((restarts + 1))
  want_none_or_drained "vipwarden SIG$sig"
  vw_vipwarden_spawn
  oracle "vipwarden restarted after SIG$sig" 30000
}

# While vipwarden is down nothing may be announced (a crash: within BFD/hold time).
want_none_or_drained() {
  local ms
  if ms=$(vw_wait_until now $((hold_ms + 3000)) has_none); then
    printf '  ok       %-34s none in %s ms\n' "$1" "$ms"
  else
    mismatches=$((mismatches + 1))
    printf '  MISMATCH %-34s routes kept while vipwarden is down\n' "$1"
  fi
}

FAULTS=(service router_restart link_loss sigstop sighup_med sighup_bad drain bfd_flood refresh_flood restart)
if [[ -n $only ]]; then IFS=, read -r -a FAULTS <<<"$only"; fi

sample() { printf '%s,%s,%s,%s\n' "$(date +%s)" "$(vw_pid_of vipwarden)" "$(rss_kb)" "$(fds)" >>"$VW_RUN_DIR/soak-samples.csv"; }

main() {
  bash "$TESTBED/setup.sh"
  command -v nft >/dev/null || vw_die "nft not found (apt-get install nftables)"
  local f
  for f in "${FAULTS[@]}"; do declare -F "fault_$f" >/dev/null || vw_die "unknown fault $f"; done
  vw_run_dir_init
  vw_install_cleanup_trap
  vw_lab_up bird frr
  write_config
  "$(vw_vipwarden_bin)" check-config --config "$VW_RUN_DIR/vipwarden.yaml" >/dev/null ||
    vw_die "soak config rejected"
  vw_vipwarden_spawn
  oracle "start" 30000
  vw_wait_until now 10000 soak_bfd_up >/dev/null || vw_die "BFD not up at bird"
  local rss0 rss1 fd0 fd1 end
  rss0=$(rss_kb)
  fd0=$(fds)
  echo "time,pid,rss_kb,fds" >"$VW_RUN_DIR/soak-samples.csv"
  sample
  end=$(($(date +%s) + duration))
  echo "soak: ${duration} s, seed $seed, faults ${FAULTS[*]}; vipwarden RSS at start ${rss0} kB, ${fd0} fds"
  while (($(date +%s) < end)); do
    f=${FAULTS[RANDOM % ${#FAULTS[@]}]}
    faults=$((faults + 1))
    applied[$f]=$((${applied[$f]:-0} + 1))
    printf '%s fault %d: %s\n' "$(date -u +%H:%M:%S)" "$faults" "$f"
    "fault_$f"
    vw_pid_is_ours "$(vw_pid_of vipwarden)" || vw_die "vipwarden is gone"
    sample
  done
  # End in the normal state, then one last check.
  if ((drained)); then cli undrain web && drained=0; fi
  vw_nginx_listening || vw_nginx_start
  oracle "final" "$settle_ms"
  rss1=$(rss_kb)
  fd1=$(fds)
  echo
  echo "faults applied: $faults ($(for f in "${!applied[@]}"; do printf '%s=%s ' "$f" "${applied[$f]}"; done))"
  echo "mismatches: $mismatches"
  echo "vipwarden restarts: $restarts (RSS/fds below: the first process at start, the last at end)"
  echo "vipwarden RSS: start ${rss0} kB, end ${rss1} kB; open fds: start ${fd0}, end ${fd1}"
  awk -F, 'NR > 1 { if (!($2 in lo) || $3 < lo[$2]) lo[$2] = $3; if ($3 > hi[$2]) hi[$2] = $3; n[$2]++ }
    END { for (p in n) printf "  pid %s: %d samples, RSS %d..%d kB\n", p, n[p], lo[p], hi[p] }' \
    "$VW_RUN_DIR/soak-samples.csv"
  if [[ -s $VW_RUN_DIR/soak-sigstop.txt ]]; then
    awk '{ n[$1]++; s[$1] += $2; if ($2 > m[$1]) m[$1] = $2 }
      END { for (r in n) printf "reconnect after SIGSTOP (hold + 2 s): %s %d times, mean %d ms, max %d ms\n", r, n[r], s[r] / n[r], m[r] }' \
      "$VW_RUN_DIR/soak-sigstop.txt"
  fi
  ((mismatches == 0))
}

soak_bfd_up() { [[ $(vw_bfd_router_state bird) == up ]]; }

main
