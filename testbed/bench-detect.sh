#!/usr/bin/env bash
# Crash-to-withdraw, side by side in one run: the same crash of nginx (SIGKILL to its whole process
# group, at a random phase) N times per tool, measured twice: to the withdrawal UPDATE on the wire
# (tcpdump in the ToR's namespace on its link to the node; lib/bgp_wire.py finds the first UPDATE
# from the node that withdraws, dated by the capture, same clock as the kill's $EPOCHREALTIME), and
# to the VIP 203.0.113.10/32 gone at the ToR: at BIRD, watched every 10 ms through BIRD's control
# socket (lib/route_watch.py); at FRR, gone from the ToR's kernel FIB (zebra's removal, seen through
# the kernel's route notifications plus a dump every 10 ms, lib/fib_watch.py). With `-r both` the
# whole sequence runs against BIRD, then against FRR (the lab is rebuilt in between). The load
# average is printed before and after each tool. Tools, one after the other on the same lab:
#   vipwarden, listener check   {type: listener, address: VIP, port: 80}       (defaults: 50 ms,
#                               woken by the kernel's TCP socket-destroy broadcast; definitive)
#   vipwarden, process check    {type: process, pid_file: nginx.pid}           (defaults: 250 ms,
#                               woken by the pidfd; definitive)
#   vipwarden, tcp check        today's defaults: 1 s, timeout 500 ms, rise 2, fall 2
#   ExaBGP healthcheck          curl, --interval/--fast-interval $VW_BENCH_EXA_INTERVAL, rise 2, fall 2
# and the passive reaction: 503s on "/" under load (wrk via BIRD), a 10 s window, `for: 5s` on
# error_ratio > 5%: threshold crossing (seen by an independent follower of the access log,
# lib/access_window.py) to route gone. Also the idle CPU of vipwarden with the 50 ms listener
# check. Prints min/median/max per tool and the announcer's CPU (process tree, % of one core)
# over its trials.
#   bash testbed/bench-detect.sh [-r bird|frr|both]   (root; takes the lab lock; ~10 min a router;
#                                                      default: both)
# Knobs: VW_BENCH_N (15), VW_BENCH_PASSIVE_N (6), VW_BENCH_IDLE_S (30), VW_BENCH_EXA_INTERVAL
# (0.1 s), VW_BENCH_TOOLS (listener,process,tcp,exabgp,passive).
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

N=${VW_BENCH_N:-15}
PASSIVE_N=${VW_BENCH_PASSIVE_N:-6}
IDLE_S=${VW_BENCH_IDLE_S:-30}
EXA_INTERVAL=${VW_BENCH_EXA_INTERVAL:-0.1}
TOOLS=${VW_BENCH_TOOLS:-listener,process,tcp,exabgp,passive}
CLK_TCK=$(getconf CLK_TCK)
VW_NGINX_ACCESS_LOG=1
ROUTERS=both
ROUTER=
ROUTE_LOG=
PCAP=
ROWS=()

usage() {
  echo "usage: $0 [-r bird|frr|both]   (knobs: see the head of this script)" >&2
  exit 2
}
while getopts "r:h" opt; do
  case $opt in
    r) ROUTERS=$OPTARG ;;
    *) usage ;;
  esac
done
case $ROUTERS in
  bird | frr) ;;
  both) ROUTERS="bird frr" ;;
  *) usage ;;
esac

# ------------------------------------------------------------------ helpers --

# Descendants of PID, PID included.
tree() {
  local pid=$1 kids k
  echo "$pid"
  kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
  for k in $kids; do tree "$k"; done
}

# utime+stime+cutime+cstime over the tree, in clock ticks.
tree_ticks() {
  local sum=0 p stat
  for p in $(tree "$1"); do
    stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    sum=$((sum + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$sum"
}

cpu_pct() { # TICKS WALL_MS
  awk -v d="$1" -v hz="$CLK_TCK" -v ms="$2" 'BEGIN { printf "%.2f", 100 * d / hz / (ms / 1000) }'
}

# First "up"/"gone" at or after MS in the watcher's log, within TIMEOUT_MS.
wait_event() {
  local kind=$1 since=$2 timeout=$3 t0 hit
  t0=$(vw_now_ms)
  while :; do
    hit=$(awk -v k="$kind" -v t="$since" '$1 == k && $2 >= t { print $2; exit }' "$ROUTE_LOG")
    if [[ -n $hit ]]; then
      echo "$hit"
      return 0
    fi
    (($(vw_now_ms) - t0 > timeout)) && return 1
    sleep 0.01
  done
}

route_up_now() { [[ $(tail -n 1 "$ROUTE_LOG" 2>/dev/null | cut -d' ' -f1) == up ]]; }

wait_up() {
  local ms
  ms=$(vw_wait_until now "${1:-30000}" route_up_now) || vw_die "VIP not at $ROUTER after ${ms} ms"
}

stats() { # prints "min median max" of the numbers on stdin
  sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2); print v[1], m, v[NR] }'
}

stats_f() { # like stats, for decimals: "min median max"
  sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f %.2f\n", v[1], m, v[NR] }'
}

now_us() { echo "${EPOCHREALTIME/./}"; }

# The withdrawal UPDATE on the wire at or after US (capture time, us), within 5 s; empty if none.
wire_withdrawal() {
  local since=$1 i hit
  for i in $(seq 100); do
    hit=$(python3 "$VW_TESTBED_DIR/lib/bgp_wire.py" "$PCAP" "$(node_addr)" "$since" withdraw)
    [[ -n $hit ]] && break
    sleep 0.05
  done
  echo "${hit:-}"
}

# One crash at a random phase; prints "wire_ms router_ms": crash -> withdrawal UPDATE on the wire,
# crash -> gone at the ToR.
trial() {
  local t_kill t_gone pid t_kill_us t_wire
  wait_up
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 1 + r / 32768 }')"
  route_up_now || vw_die "route flapped before the crash"
  pid=$(vw_pid_of nginx)
  t_kill_us=$(now_us)
  # vw_spawn starts nginx under setsid: its PID is its process group (master + worker).
  kill -KILL -- "-$pid"
  t_kill=$((t_kill_us / 1000))
  vw_wait_pid_exit "$pid" 5000 || true
  t_gone=$(wait_event gone "$t_kill" 20000) || vw_die "VIP still at $ROUTER 20 s after the crash"
  t_wire=$(wire_withdrawal "$t_kill_us")
  [[ -n $t_wire ]] || vw_die "no withdrawal UPDATE on the wire after the crash"
  echo "$(awk -v w="$t_wire" -v k="$t_kill_us" 'BEGIN { printf "%.2f", (w - k) / 1000 }') $((t_gone - t_kill))"
  vw_nginx_start >/dev/null 2>&1
  wait_event up "$t_gone" 30000 >/dev/null || vw_die "VIP not back at $ROUTER 30 s after nginx restarted"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# trials NAME ROOT_PID: N trials; appends a table row.
trials() {
  local name=$1 pid=$2 ticks0 t0 out wire ms all=() wires=() i load0
  load0=$(loadavg)
  ticks0=$(tree_ticks "$pid")
  t0=$(vw_now_ms)
  for i in $(seq "$N"); do
    out=$(trial)
    read -r wire ms <<<"$out"
    all+=("$ms")
    wires+=("$wire")
    vw_info "$ROUTER, $name: crash $i/$N -> withdrawal on the wire after $wire ms, gone at $ROUTER after $ms ms"
  done
  local cpu
  cpu=$(cpu_pct $(($(tree_ticks "$pid") - ticks0)) $(($(vw_now_ms) - t0)))
  read -r mn md mx < <(printf '%s\n' "${all[@]}" | stats)
  read -r wmn wmd wmx < <(printf '%s\n' "${wires[@]}" | stats_f)
  ROWS+=("$ROUTER|$name|$N|$wmn|$wmd|$wmx|$mn|$md|$mx|$cpu|$load0 -> $(loadavg)")
  vw_info "$ROUTER, $name: wire min $wmn median $wmd max $wmx ms; $ROUTER min $mn median $md max $mx ms; CPU $cpu % of a core"
  printf '%s, %s: wire %s; %s %s\n' "$ROUTER" "$name" "${wires[*]}" "$ROUTER" "${all[*]}" >>"$VW_RUN_DIR/samples.txt"
}

# ---------------------------------------------------------------- vipwarden --

vw_yaml() { # CHECK_YAML [VIP_EXTRA] [TOP_EXTRA]
  cat <<EOF
router_id: $VW_NODE_BIRD_V4
local_as: $VW_LOCAL_AS
state_dir: $VW_RUN_DIR/state
peers:
  - {name: tor-$ROUTER, address: $(vw_router_addr "$ROUTER"), remote_as: $VW_TOR_AS, local_address: $(node_addr), hold_time: ${VW_HOLD_TIME}s}
checks:
  - $1
vips:
  - name: web
    prefixes: [$VW_VIP4_PREFIX]
    checks: [web]
${2:-}
${3:-}
EOF
}

start_vw() { # CHECK_YAML [VIP_EXTRA] [TOP_EXTRA]
  local conf=$VW_RUN_DIR/vipwarden.yaml bin
  bin=$(vw_vipwarden_bin)
  vw_yaml "$@" >"$conf"
  vw_vipwarden_check "$conf"
  vw_spawn vipwarden "$VW_NS_NODE" "$VW_RUN_DIR/vipwarden.log" "$bin" run --config "$conf"
  wait_up 30000
}

stop_tool() { # NAME
  local t
  t=$(vw_now_ms)
  vw_stop "$1" TERM 5000
  wait_event gone "$t" 15000 >/dev/null || true
  # Let BIRD settle the closed session before the next speaker connects.
  sleep 2
}

bench_vw() { # LABEL CHECK_YAML
  vw_info "=== vipwarden, $1"
  start_vw "$2"
  trials "vipwarden, $1" "$(vw_pid_of vipwarden)"
  stop_tool vipwarden
}

idle_cpu() {
  vw_info "=== vipwarden idle with a 50 ms listener check, ${IDLE_S}s"
  start_vw "{name: web, type: listener, address: $VW_VIP4, port: 80}"
  sleep 2
  local pid ticks0 t0
  pid=$(vw_pid_of vipwarden)
  ticks0=$(tree_ticks "$pid")
  t0=$(vw_now_ms)
  sleep "$IDLE_S"
  IDLE_CPU=$(cpu_pct $(($(tree_ticks "$pid") - ticks0)) $(($(vw_now_ms) - t0)))
  stop_tool vipwarden
}

# ------------------------------------------------------------------- ExaBGP --

bench_exabgp() {
  vw_info "=== ExaBGP healthcheck, interval $EXA_INTERVAL s"
  cat >"$VW_RUN_DIR/exabgp.conf" <<EOF
process watch-web {
    run /usr/bin/python3 -m exabgp healthcheck --cmd "curl -sf --max-time 1 http://$VW_VIP4/" --ip $VW_VIP4_PREFIX --no-ip-setup --interval $EXA_INTERVAL --fast-interval $EXA_INTERVAL --timeout 1 --rise 2 --fall 2 --no-syslog --withdraw-on-down;
    encoder text;
}
neighbor $(vw_router_addr "$ROUTER") {
    router-id $VW_NODE_BIRD_V4;
    local-address $(node_addr);
    local-as $VW_LOCAL_AS;
    peer-as $VW_TOR_AS;
    api { processes [ watch-web ]; }
}
EOF
  vw_spawn exabgp "$VW_NS_NODE" "$VW_RUN_DIR/exabgp.log" env exabgp.daemon.user=root \
    exabgp.daemon.drop=false exabgp.log.destination=stderr exabgp.api.cli=false \
    exabgp "$VW_RUN_DIR/exabgp.conf"
  wait_up 60000
  trials "ExaBGP $(exabgp --version 2>&1 | awk '/ExaBGP/ {print $3; exit}') healthcheck ${EXA_INTERVAL}s" "$(vw_pid_of exabgp)"
  stop_tool exabgp
}

# ------------------------------------------------------------------ passive --

bench_passive() {
  vw_info "=== passive: 503 surge under load, for 5s"
  local signal_yaml vip_yaml
  signal_yaml="signals:
  - {name: web_log, type: access_log, path: $VW_RUN_DIR/nginx/access.log, format: nginx, window: 10s}"
  # hold_down > window: when the VIP comes back, the 503s have left both windows.
  vip_yaml="    withdraw_when:
      - {signal: web_log.error_ratio, above: 0.05, for: 5s, restore_below: 0.01, restore_for: 1s, min_requests: 20}
    hold_down: 12s"
  vw_access_monitor_start 10 0.05 1.5 20 900
  start_vw "{name: web, type: listener, address: $VW_VIP4, port: 80}" "$vip_yaml" "$signal_yaml"
  vw_client_via "$ROUTER"
  vw_wrk_start wrk 900 2s
  local pid ticks0 t0 i t_fault t_gone cross all=() lead=()
  pid=$(vw_pid_of vipwarden)
  ticks0=$(tree_ticks "$pid")
  t0=$(vw_now_ms)
  for i in $(seq "$PASSIVE_N"); do
    wait_up 60000
    vw_wait_until now 10000 vw_access_grows 200 >/dev/null || vw_die "no client traffic reaches nginx"
    sleep 2
    t_fault=$(vw_now_ms)
    vw_nginx_fail on
    t_gone=$(wait_event gone "$t_fault" 30000) || vw_die "VIP still at $ROUTER 30 s after the 503s began"
    vw_nginx_fail off
    cross=$(vw_access_first_cross error_ratio "$t_fault")
    [[ -n $cross ]] || vw_die "the access-log monitor saw no crossing"
    all+=($((t_gone - cross)))
    lead+=($((cross - t_fault)))
    vw_info "passive $i/$PASSIVE_N: 503s on -> crossing $((cross - t_fault)) ms -> withdrawn $((t_gone - cross)) ms later"
  done
  local cpu
  cpu=$(cpu_pct $(($(tree_ticks "$pid") - ticks0)) $(($(vw_now_ms) - t0)))
  vw_wrk_stop wrk
  read -r mn md mx < <(printf '%s\n' "${all[@]}" | stats)
  ROWS+=("$ROUTER|vipwarden, passive error_ratio for 5s (crossing -> withdraw)|$PASSIVE_N|-|-|-|$mn|$md|$mx|$cpu|-")
  printf '%s, passive crossing->gone: %s\n%s, passive fault->crossing: %s\n' "$ROUTER" "${all[*]}" "$ROUTER" "${lead[*]}" >>"$VW_RUN_DIR/samples.txt"
  stop_tool vipwarden
}

# --------------------------------------------------------------------- main --

# The node's address on the link to $ROUTER.
node_addr() { vw_router_peer_addr "$ROUTER"; }

# bench_router R: the lab with ToR R alone, every tool in $TOOLS against it.
bench_router() {
  ROUTER=$1
  vw_info "===== ToR $ROUTER"
  vw_lab_up "$ROUTER"
  ROUTE_LOG=$VW_RUN_DIR/route-$ROUTER.log
  PCAP=$VW_RUN_DIR/bgp-$ROUTER.pcap
  local ns
  ns=$(vw_router_ns "$ROUTER")
  # -U: each packet is written at once; -Z root: keep writing into the run dir.
  vw_spawn tcpdump "$ns" "$VW_RUN_DIR/tcpdump-$ROUTER.log" tcpdump -i "$ROUTER-n1" -U -n -Z root \
    -w "$PCAP" "tcp port 179 and src host $(node_addr)"
  echo "load average at start ($ROUTER): $(loadavg)"
  if [[ $ROUTER == bird ]]; then
    vw_spawn route-watch "" "$ROUTE_LOG" python3 "$VW_TESTBED_DIR/lib/route_watch.py" \
      "$VW_RUN_DIR/bird/bird.ctl" "$VW_VIP4_PREFIX" 10 3600
  else
    vw_spawn route-watch "$ns" "$ROUTE_LOG" python3 "$VW_TESTBED_DIR/lib/fib_watch.py" \
      "$VW_VIP4_PREFIX" 10 3600
  fi
  if [[ ,$TOOLS, == *,listener,* ]]; then
    # Once per run: the idle cost does not depend on the router.
    [[ -n $IDLE_CPU ]] || idle_cpu
    bench_vw "listener check, defaults (destroy event; 50 ms poll)" \
      "{name: web, type: listener, address: $VW_VIP4, port: 80}"
  fi
  if [[ ,$TOOLS, == *,process,* ]]; then
    bench_vw "process check, defaults (pidfd event; 250 ms poll)" \
      "{name: web, type: process, pid_file: $VW_RUN_DIR/nginx/nginx.pid}"
  fi
  if [[ ,$TOOLS, == *,tcp,* ]]; then
    bench_vw "tcp check, defaults (1 s, fast 200 ms)" "{name: web, type: tcp, target: '$VW_VIP4:80'}"
  fi
  if [[ ,$TOOLS, == *,exabgp,* ]]; then bench_exabgp; fi
  if [[ ,$TOOLS, == *,passive,* ]]; then bench_passive; fi
  vw_lab_down
}

main() {
  [[ $(id -u) -eq 0 ]] || vw_die "run as root (network namespaces)"
  if [[ ,$TOOLS, == *,exabgp,* ]] && ! command -v exabgp >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq exabgp >/dev/null
  fi
  vw_run_dir_init "${VW_BENCH_DIR:-}"
  vw_install_cleanup_trap
  vw_vipwarden_bin >/dev/null
  : >"$VW_RUN_DIR/samples.txt"
  IDLE_CPU=
  local r
  for r in $ROUTERS; do bench_router "$r"; done

  echo
  echo "crash of nginx (SIGKILL to master and worker) -> withdrawal UPDATE on the wire (tcpdump at the ToR) and 203.0.113.10/32 gone at the ToR (BIRD: its table, polled every 10 ms; FRR: its kernel FIB, route notifications)"
  printf '| %-5s | %-64s | %6s | %-26s | %-20s | %16s | %-30s |\n' ToR tool trials "wire ms min/median/max" "ToR ms min/med/max" "CPU % of a core" "load average before -> after"
  printf '|%s|%s|%s|%s|%s|%s|%s|\n' "-------" "$(printf -- '-%.0s' {1..66})" "--------" "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..22})" "------------------" "$(printf -- '-%.0s' {1..32})"
  local row tor name n wmn wmd wmx mn md mx cpu load
  for row in "${ROWS[@]}"; do
    IFS='|' read -r tor name n wmn wmd wmx mn md mx cpu load <<<"$row"
    printf '| %-5s | %-64s | %6s | %-26s | %-20s | %16s | %-30s |\n' "$tor" "$name" "$n" "$wmn / $wmd / $wmx" "$mn / $md / $mx" "$cpu" "$load"
  done
  if [[ -n $IDLE_CPU ]]; then echo "idle vipwarden with a 50 ms listener check: $IDLE_CPU % of a core over ${IDLE_S}s"; fi
  echo "samples: $(tr '\n' ';' <"$VW_RUN_DIR/samples.txt")"
}

main "$@"
