#!/usr/bin/env bash
# Fleet guard chaos test (issue 17): VW_FLEET_N (default 8) nodes announce one VIP behind a BIRD
# ToR (add paths tx) and an FRR ToR (addpath-tx-all-paths); random faults from a seed: nginx
# stops and starts (single and shared outages), operator drains and undrains (a few forced, some
# two at the same instant),
# disable files, link cuts (nftables drops in a node, both directions, one or both links),
# ToR restarts (BIRD, FRR bgpd; one at a time), vipwarden restarts (SIGTERM + start once it
# exits; SIGKILL + start; SIGKILL and start 3-20 s later).
#   fleet-chaos.sh [--seed N] [--duration SECONDS] [--nodes N] [--keep]
#   (defaults: seed from the clock, printed first; 600 s; 8 nodes; --keep keeps the run dir)
# An oracle (lib/fleet_oracle.py) samples both ToRs' RIB for the VIP every 100 ms and checks:
#  I1  no ToR loses the prefix because a running node with its session up withdrew the last
#      path (force-drained nodes excepted);
#  I2  while a ToR is up and a running node has a session to it, the prefix is absent there for
#      at most settle + 2 s.
# Timeline (faults, path-set changes, violations with the samples around them, ms timestamps):
# RUN_DIR/oracle.log. Prints seed, duration, faults by kind, samples, violations, longest absence
# per ToR; exits 1 on any violation. The same seed replays the same faults at the same offsets.
set -euo pipefail
TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$TESTBED/lib.sh"
VW_FLEET_N=${VW_FLEET_N:-8}
# shellcheck source=lib/fleet-topology.sh
source "$TESTBED/lib/fleet-topology.sh"

seed=$(($(date +%s%N) % 1000000))
duration=600
keep=0
while (($#)); do
  case $1 in
    --seed) seed=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --nodes) VW_FLEET_N=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
[[ $seed =~ ^[0-9]+$ && $duration =~ ^[0-9]+$ && $VW_FLEET_N =~ ^[0-9]+$ ]] || { echo "numbers only" >&2; exit 2; }
((VW_FLEET_N >= 2 && VW_FLEET_N <= 14)) || { echo "--nodes: 2..14" >&2; exit 2; }
export VW_FLEET_N
echo "fleet chaos: seed $seed, duration ${duration}s, $VW_FLEET_N nodes (replay: $0 --seed $seed --duration $duration --nodes $VW_FLEET_N)"

# Fleet lab settings: the daemon's own when_blind default (issue 17: hold with a guard), hold
# time 9 s, settle 3 s.
VW_HOLD_TIME=${VW_HOLD_TIME:-9}
VW_FLEET_WHEN_BLIND=${VW_FLEET_WHEN_BLIND:-default}
# shellcheck source=lib/fleet-guard.sh
source "$TESTBED/lib/fleet-guard.sh"
VW_FLEET_SETTLE=$((VW_GUARD_SETTLE_MS / 1000))s

on_exit() {
  local rc=$1
  if [[ -n ${VW_RUN_DIR:-} && -d $VW_RUN_DIR ]]; then
    [[ -e $VW_RUN_DIR/oracle.pid ]] && touch "$VW_RUN_DIR/oracle.stop"
    ((keep)) && VW_KEEP_RUN_DIR=1
  fi
  ((rc == 0)) || echo "fleet chaos: failed or interrupted (exit $rc); replay with --seed $seed"
  vw_cleanup "$rc"
}

vw_run_dir_init
trap 'on_exit $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
plan=$VW_RUN_DIR/plan.txt
python3 "$TESTBED/lib/fleet_chaos_plan.py" "$seed" "$duration" "$VW_FLEET_N" >"$plan"
vw_info "plan: $(wc -l <"$plan") faults in $plan"
t_setup=$(vw_now_ms)
vw_guard_fleet_up
vw_guard_oracle_start
setup_ms=$(($(vw_now_ms) - t_setup))

run_action() {
  local action=$1 a=${2:-} b=${3:-}
  case $action in
    svc-stop) vw_guard_svc_stop "$a" ;;
    svc-start) vw_guard_svc_start "$a" ;;
    drain) vw_guard_drain "$a" ;;
    drain-force) vw_guard_drain "$a" --force ;;
    drain-pair)
      # Both CLI calls in flight at once; counted here (the subshells' counts are lost).
      # (wait by PID: the daemons are this shell's children too).
      vw_guard_drain "$a" &
      local p1=$!
      vw_guard_drain "$b" &
      wait "$p1" "$!" || true
      VWG_FAULTS[drain]=$((${VWG_FAULTS[drain]:-0} + 2))
      ;;
    undrain) vw_guard_undrain "$a" ;;
    disable) vw_guard_disable "$a" ;;
    enable) vw_guard_enable "$a" ;;
    cut) vw_guard_cut "$a" "$b" ;;
    restore) vw_guard_restore "$a" ;;
    tor-stop) vw_guard_tor_stop "$a" ;;
    tor-start) vw_guard_tor_start "$a" ;;
    vw-term) vw_guard_vw_term "$a" ;;
    vw-kill) vw_guard_vw_kill "$a" ;;
    vw-crash) vw_guard_vw_crash "$a" ;;
    vw-start)
      if vw_pid_alive "$(vw_pid_of "vipwarden$a")"; then
        vw_info "vipwarden$a already runs: start skipped"
      else
        vw_guard_fault vw-start "node$a"
        vw_guard_vw_start "$a"
      fi
      ;;
    episode)
      # A timeline marker, not a fault.
      printf '%s episode %s\n' "$(vw_now_ms)" "$a" >>"$VW_RUN_DIR/faults.log"
      vw_info "episode: $a"
      episodes+=("$a")
      ;;
    *) vw_die "unknown action in the plan: $action" ;;
  esac
}

t0=$(vw_now_ms)
late_max=0
episodes=()
while read -r -u 3 off action a b; do
  due=$((t0 + off))
  # Bounded: the plan ends at --duration; each wait step is 200 ms.
  while (($(vw_now_ms) < due)); do
    vw_guard_reap
    left=$((due - $(vw_now_ms)))
    ((left > 0)) && sleep "0.$(printf '%03d' $((left > 200 ? 200 : left)))"
  done
  late=$(($(vw_now_ms) - due))
  ((late > late_max)) && late_max=$late
  run_action "$action" "$a" "$b"
done 3<"$plan"
# Let the last recoveries converge (every held node back to health leaves again), still under
# the oracle, with planned stops reaped.
t_end=$(($(vw_now_ms) + VW_GUARD_SETTLE_MS + 7000))
while (($(vw_now_ms) < t_end)); do
  vw_guard_reap
  sleep 0.2
done
run_ms=$(($(vw_now_ms) - t0))
vw_guard_oracle_stop

i1=$(vw_guard_summary_get 's["i1"]')
i2=$(vw_guard_summary_get 's["i2"]')
echo
echo "================ fleet chaos summary"
echo "seed:        $seed"
echo "duration:    ${duration}s planned, $((run_ms / 1000)).$(printf '%03d' $((run_ms % 1000)))s run (lab setup $((setup_ms / 1000)) s; faults at most ${late_max} ms late)"
echo "nodes:       $VW_FLEET_N behind BIRD + FRR, settle $((VW_GUARD_SETTLE_MS / 1000)) s, I2 budget ${VW_GUARD_BUDGET_MS} ms"
echo "episodes:    ${#episodes[@]}: $(printf '%s\n' "${episodes[@]}" | sort | uniq -c | awk '{printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1}')"
echo "faults:      $(vw_guard_faults_summary)"
echo "oracle:      $(vw_guard_summary_line)"
echo "violations:  I1 $i1, I2 $i2 samples (goal 0)"
if ((i1 + i2 > 0)); then
  echo "violation lines (context in $VW_RUN_DIR/oracle.log):"
  vw_guard_violations | head -n 40 | sed 's/^/  /'
fi
echo "timeline:    $VW_RUN_DIR/oracle.log$( ((keep || i1 + i2 > 0)) || echo ' (removed; --keep keeps it)')"
echo "fleet chaos: seed $seed: I1 $i1 I2 $i2"
((i1 + i2 == 0))
