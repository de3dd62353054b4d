# shellcheck shell=bash
# Fleet guard lab (issue 17): the faults of the chaos test and the guard scenarios (45-49,
# 52-54) on the fleet lab (fleet-topology.sh), and the oracle (fleet_oracle.py) that samples both
# ToRs every 100 ms and checks the guard's invariants. Source after lib.sh and fleet-topology.sh.
#
# The oracle reads the lab's intent from $VW_RUN_DIR/chaos-state (which ToR is up, which
# vipwarden runs, which node was force-drained, which one is in a planned stop); every helper
# below that changes one of those rewrites it, and every fault is appended to faults.log
# ("EPOCH_MS kind args") which the oracle copies into its timeline with the ToR samples.

VW_GUARD_SETTLE_MS=${VW_GUARD_SETTLE_MS:-3000}
# I2: how long a ToR may lack the prefix while a running node has a session to it.
VW_GUARD_BUDGET_MS=${VW_GUARD_BUDGET_MS:-$((VW_GUARD_SETTLE_MS + 2000))}
# A planned stop of a held node waits a bounded time (issue 17: fleet.stop_hold_limit, set here
# for every node); past it the daemon withdraws and exits, and the oracle lets it leave. The
# driver kills a node still running 10 s after that.
VW_GUARD_STOP_BOUND_MS=${VW_GUARD_STOP_BOUND_MS:-10000}
VW_FLEET_EXTRA="${VW_FLEET_EXTRA:-}
  stop_hold_limit: $((VW_GUARD_STOP_BOUND_MS / 1000))s"

declare -gA VWG_RUN=() VWG_FORCED=() VWG_STOP=() VWG_CUT=() VWG_TOR_UP=() VWG_FAULTS=()
VWG_TOR_UP[bird]=1
VWG_TOR_UP[frr]=1

vw_guard_state_write() {
  local i f=$VW_RUN_DIR/chaos-state
  {
    printf 'tor bird up=%s\ntor frr up=%s\n' "${VWG_TOR_UP[bird]}" "${VWG_TOR_UP[frr]}"
    for ((i = 1; i <= VW_FLEET_N; i++)); do
      printf 'node %s run=%s forced=%s stop=%s cut=%s\n' "$i" "${VWG_RUN[$i]:-0}" "${VWG_FORCED[$i]:-0}" \
        "${VWG_STOP[$i]:-0}" "${VWG_CUT[$i]:-none}"
    done
  } >"$f.new"
  mv "$f.new" "$f"
}

# vw_guard_fault KIND ARGS...: log a fault (ms timestamp) for the oracle's timeline and count it.
vw_guard_fault() {
  local kind=$1
  shift
  VWG_FAULTS[$kind]=$((${VWG_FAULTS[$kind]:-0} + 1))
  printf '%s %s %s\n' "$(vw_now_ms)" "$kind" "$*" >>"$VW_RUN_DIR/faults.log"
  vw_info "fault: $kind $*"
}

vw_guard_faults_summary() {
  local k total=0 out=""
  for k in $(printf '%s\n' "${!VWG_FAULTS[@]}" | sort); do
    out+=" $k=${VWG_FAULTS[$k]}"
    total=$((total + VWG_FAULTS[$k]))
  done
  printf '%s (total %s)\n' "${out# }" "$total"
}

# ------------------------------------------------------------------ oracle --

vw_guard_oracle_start() {
  rm -f "$VW_RUN_DIR/oracle.stop" "$VW_RUN_DIR/oracle-summary.json"
  : >>"$VW_RUN_DIR/faults.log"
  vw_guard_state_write
  vw_spawn oracle "" "$VW_RUN_DIR/oracle.stdout.log" \
    python3 "$VW_TESTBED_DIR/lib/fleet_oracle.py" --run-dir "$VW_RUN_DIR" --prefix "$VW_VIP4_PREFIX" \
    --nodes "$VW_FLEET_N" --interval-ms "${VW_GUARD_INTERVAL_MS:-100}" --budget-ms "$VW_GUARD_BUDGET_MS" \
    --stop-bound-ms "$VW_GUARD_STOP_BOUND_MS" --duration-s "${VW_GUARD_ORACLE_MAX_S:-7200}"
  vw_wait_until now 5000 grep -q "oracle start" "$VW_RUN_DIR/oracle.log" >/dev/null ||
    vw_die "the oracle did not start (see $VW_RUN_DIR/oracle.stdout.log)"
}

# Stop the oracle and leave its summary in $VW_RUN_DIR/oracle-summary.json.
vw_guard_oracle_stop() {
  touch "$VW_RUN_DIR/oracle.stop"
  vw_wait_until now 5000 test -s "$VW_RUN_DIR/oracle-summary.json" >/dev/null ||
    vw_warn "the oracle wrote no summary (see $VW_RUN_DIR/oracle.stdout.log)"
  vw_stop oracle TERM 3000
}

# vw_guard_summary_get EXPR: a value from the oracle's summary (python expression on `s`).
vw_guard_summary_get() {
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$VW_RUN_DIR/oracle-summary.json" "$1"
}

# One line: samples, violations and the longest absences per ToR.
vw_guard_summary_line() {
  python3 - "$VW_RUN_DIR/oracle-summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["tors"]
print("samples %d (bird %d, frr %d), I1 breaks %d, I2 breaking samples %d; longest absence: "
      "bird %d ms (with a running node's session up: %d ms), frr %d ms (%d ms); oracle ticks late %d/%d"
      % (s["samples"], t["bird"]["samples"], t["frr"]["samples"], s["i1"], s["i2"],
         t["bird"]["longest_absence_ms"], t["bird"]["longest_qualifying_absence_ms"],
         t["frr"]["longest_absence_ms"], t["frr"]["longest_qualifying_absence_ms"],
         s["late_ticks"], s["ticks"]))
EOF
}

vw_guard_violations() { grep -E 'VIOLATION' "$VW_RUN_DIR/oracle.log" || true; }

# ------------------------------------------------------------------ nodes --

# Start vipwarden on node i (disable file $VW_RUN_DIR/disable<i> configured) and record it.
vw_guard_vw_start() {
  local i=$1
  VW_FLEET_TOP="${VW_FLEET_TOP:-}${VW_FLEET_TOP:+$'\n'}disable_file: $VW_RUN_DIR/disable$i" vw_fleet_vipwarden_start "$i"
  VWG_RUN[$i]=1
  VWG_STOP[$i]=0
  vw_guard_state_write
}

# Lab up with VW_FLEET_N nodes; vipwardens started VW_GUARD_STAGGER_MS apart (the 2-core CI
# machine); waits until every node is announced unmarked at both ToRs.
vw_guard_fleet_up() {
  local i ms want
  vw_fleet_up
  for ((i = 1; i <= VW_FLEET_N; i++)); do
    vw_guard_vw_start "$i"
    sleep "$(printf '0.%03d' "${VW_GUARD_STAGGER_MS:-300}")"
  done
  want="$VW_FLEET_N 0"
  ms=$(vw_wait_until now 60000 vw_guard_counts_are "$want" "$want") ||
    vw_die "not every node announced within 60 s (bird: $(vw_fleet_route_counts bird), frr: $(vw_fleet_route_counts frr))"
  vw_info "all $VW_FLEET_N nodes announced at both ToRs after ${ms} ms"
}

# True if BIRD and FRR show exactly these "TOTAL MARKED" path counts.
vw_guard_counts_are() {
  [[ $(vw_fleet_route_counts bird) == "$1" && $(vw_fleet_route_counts frr) == "$2" ]]
}

vw_guard_svc_stop() {
  local pid
  vw_guard_fault svc-stop "node$1"
  # SIGTERM without waiting, so that several services fail within milliseconds.
  pid=$(vw_pid_of "nginx$1")
  if [[ -n $pid ]] && vw_pid_is_ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
}

vw_guard_svc_start() {
  vw_guard_fault svc-start "node$1"
  # A killed nginx may still be exiting; reap it first.
  vw_stop "nginx$1" TERM 3000
  vw_fleet_nginx_start "$1"
}

# vw_guard_drain I [--force]: operator drain through the CLI in node i's namespace (bounded);
# logs the CLI's answer and keeps it in $VW_RUN_DIR/drain<i>.out ("exit N: text").
vw_guard_drain() {
  local i=$1 force=${2:-} rc=0 out
  vw_guard_fault "drain${force:+-force}" "node$i"
  if [[ -n $force ]]; then
    VWG_FORCED[$i]=1
    vw_guard_state_write
  fi
  # shellcheck disable=SC2086 # $force: empty or one word
  out=$(vw_in "$(vw_fleet_ns "$i")" timeout 10 "$(vw_vipwarden_bin)" drain web --reason "guard lab" $force \
    --config "$VW_RUN_DIR/vipwarden$i.yaml" 2>&1) || rc=$?
  printf 'exit %s: %s\n' "$rc" "$(tr '\n' ' ' <<<"$out" | cut -c1-400)" >"$VW_RUN_DIR/drain$i.out"
  printf '    drain node%s%s: %s\n' "$i" "${force:+ (forced)}" "$(cat "$VW_RUN_DIR/drain$i.out")" >&2
  return 0
}

vw_guard_undrain() {
  local i=$1 rc=0 out
  vw_guard_fault undrain "node$i"
  out=$(vw_in "$(vw_fleet_ns "$i")" timeout 10 "$(vw_vipwarden_bin)" undrain web --reason "guard lab" \
    --config "$VW_RUN_DIR/vipwarden$i.yaml" 2>&1) || rc=$?
  ((rc == 0)) || printf '    undrain node%s: exit %s: %s\n' "$i" "$rc" "$(tr '\n' ' ' <<<"$out" | cut -c1-300)" >&2
  VWG_FORCED[$i]=0
  vw_guard_state_write
}

vw_guard_disable() {
  vw_guard_fault disable-file "node$1"
  touch "$VW_RUN_DIR/disable$1"
}

vw_guard_enable() {
  vw_guard_fault disable-file-removed "node$1"
  rm -f "$VW_RUN_DIR/disable$1"
}

# vw_guard_cut I bird|frr|both: nftables drops on node i's link(s), both directions.
vw_guard_cut() {
  local i=$1 which=$2 ns l
  ns=$(vw_fleet_ns "$i")
  vw_guard_fault link-cut "node$i $which"
  vw_in "$ns" nft add table inet vwguard
  vw_in "$ns" nft add chain inet vwguard in '{ type filter hook input priority 0; policy accept; }'
  vw_in "$ns" nft add chain inet vwguard out '{ type filter hook output priority 0; policy accept; }'
  for l in bird frr; do
    [[ $which == both || $which == "$l" ]] || continue
    vw_in "$ns" nft add rule inet vwguard in iifname "n$i-$l" drop
    vw_in "$ns" nft add rule inet vwguard out oifname "n$i-$l" drop
  done
  VWG_CUT[$i]=$which
  vw_guard_state_write
}

vw_guard_restore() {
  local i=$1 ns
  ns=$(vw_fleet_ns "$i")
  vw_guard_fault link-restore "node$i"
  vw_in "$ns" nft delete table inet vwguard 2>/dev/null || true
  VWG_CUT[$i]=none
  vw_guard_state_write
}

# ToR restarts: BIRD whole, FRR's bgpd (zebra keeps running, as on a box restarting bgpd).
vw_guard_tor_stop() {
  local tor=$1
  vw_guard_fault tor-stop "$tor"
  VWG_TOR_UP[$tor]=0
  vw_guard_state_write
  case $tor in
    bird) vw_stop bird TERM 5000 ;;
    frr) vw_stop frr TERM 5000 ;;
  esac
}

vw_guard_tor_start() {
  local tor=$1 dir
  vw_guard_fault tor-start "$tor"
  case $tor in
    bird)
      dir=$VW_RUN_DIR/bird
      vw_spawn bird "$VW_NS_BIRD" "$dir/stdout.log" \
        bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid"
      vw_wait_until now 5000 vw_birdc show status >/dev/null || vw_warn "BIRD did not answer 5 s after its restart"
      ;;
    frr)
      dir=$VW_RUN_DIR/frr
      vw_spawn frr "$VW_NS_FRR" "$dir/stdout.log" \
        "$VW_FRR_BGPD" -z "$dir/zserv.api" --skip_runas \
        -f "$dir/bgpd.conf" -i "$dir/bgpd.pid" --vty_socket "$dir" -A 127.0.0.1 -P 0
      vw_wait_until now 10000 vw_vtysh -c 'show bgp summary' >/dev/null || vw_warn "FRR bgpd did not answer 10 s after its restart"
      ;;
  esac
  VWG_TOR_UP[$tor]=1
  vw_guard_state_write
}

# Planned stop (SIGTERM) without waiting; vw_guard_reap restarts it once it exited.
vw_guard_vw_term() {
  local i=$1 pid
  pid=$(vw_pid_of "vipwarden$i")
  if [[ -z $pid ]] || ! vw_pid_is_ours "$pid" || ((${VWG_STOP[$i]:-0} != 0)); then
    vw_info "vipwarden$i not running or already stopping: SIGTERM skipped"
    return 0
  fi
  vw_guard_fault vw-sigterm "node$i"
  VWG_STOP[$i]=$(vw_now_ms)
  vw_guard_state_write
  kill -TERM "$pid" 2>/dev/null || true
}

# Crash (SIGKILL) and start again at once.
vw_guard_vw_kill() {
  local i=$1 pid
  vw_guard_fault vw-kill9 "node$i"
  pid=$(vw_pid_of "vipwarden$i")
  VWG_RUN[$i]=0
  vw_guard_state_write
  if [[ -n $pid ]] && vw_pid_is_ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  vw_stop "vipwarden$i" KILL 3000
  vw_guard_vw_start "$i"
}

# SIGKILL node i's vipwarden and leave it down (a crash of the machine); vw_guard_vw_start
# brings it back.
vw_guard_vw_crash() {
  local i=$1
  vw_guard_fault vw-crash "node$i"
  VWG_RUN[$i]=0
  vw_guard_state_write
  vw_stop "vipwarden$i" KILL 3000
}

# Restart every node whose planned stop completed; SIGKILL one that exceeded the bound
# (+ 10 s: the bound is the daemon's, the lab only keeps the run bounded).
vw_guard_reap() {
  local i pid now
  now=$(vw_now_ms)
  for ((i = 1; i <= VW_FLEET_N; i++)); do
    ((${VWG_STOP[$i]:-0} != 0)) || continue
    pid=$(vw_pid_of "vipwarden$i")
    if [[ -n $pid ]] && vw_pid_alive "$pid"; then
      if ((now - VWG_STOP[$i] > VW_GUARD_STOP_BOUND_MS + 10000)); then
        vw_guard_fault vw-stop-timeout "node$i"
        vw_warn "vipwarden$i still running $((now - VWG_STOP[$i])) ms after SIGTERM: SIGKILL"
        VWG_RUN[$i]=0
        vw_guard_state_write
        vw_stop "vipwarden$i" KILL 3000
      else
        continue
      fi
    fi
    vw_info "vipwarden$i exited $((now - VWG_STOP[$i])) ms after SIGTERM; starting it again"
    VWG_RUN[$i]=0
    vw_stop "vipwarden$i" TERM 1000
    vw_guard_fault vw-start "node$i"
    vw_guard_vw_start "$i"
  done
}

# Blocking planned restart of node i (SIGTERM, wait for exit within the bound, start again):
# sets VWG_RESTART_MS to the ms from SIGTERM to the new process.
vw_guard_vw_restart() {
  local i=$1 t0
  t0=$(vw_now_ms)
  vw_guard_vw_term "$i"
  vw_wait_until "$t0" $((VW_GUARD_STOP_BOUND_MS + 10000)) eval "! vw_pid_alive \$(vw_pid_of vipwarden$i)" >/dev/null || true
  vw_guard_reap
  VWG_RESTART_MS=$(($(vw_now_ms) - t0))
}

# vw_guard_paths TOR: "node:marked" of every path for the VIP at TOR (e.g. "1:0 2:1").
vw_guard_paths() {
  case $1 in
    # birdc exits non-zero on "Network not found": no path is an answer, not an error.
    bird) { vw_birdc show route "$VW_VIP4_PREFIX" all 2>/dev/null || true; } | python3 -c '
import re, sys
cur = None; out = {}
for line in sys.stdin:
    m = re.search(r"unicast \[node(\d+)\b", line)
    if m:
        cur = int(m.group(1)); out[cur] = 0
    elif cur is not None and "BGP.community" in line and "(65101,666)" in line:
        out[cur] = 1
print(" ".join("%d:%d" % kv for kv in sorted(out.items())))' ;;
    frr) { vw_vtysh -c "show bgp ipv4 unicast $VW_VIP4_PREFIX json" 2>/dev/null || true; } | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    d = {}
out = {}
for p in d.get("paths", []):
    a = p.get("peer", {}).get("peerId", "0.0.0.0")
    n = (int(a.rsplit(".", 1)[1]) - 6) // 16 + 1
    out[n] = 1 if "65101:666" in p.get("community", {}).get("string", "") else 0
print(" ".join("%d:%d" % kv for kv in sorted(out.items())))' ;;
  esac
}

# True if node i has a path at TOR (marked or not).
vw_guard_has_path() { [[ " $(vw_guard_paths "$2") " == *" $1:"* ]]; }
