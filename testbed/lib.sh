# shellcheck shell=bash
# Shared helpers for the vipwarden lab. Source this file; it sources the
# topology and router helpers in lib/.
#
# Safety rules these helpers enforce:
#  - every namespace is named vw-* and is recorded in a registry file before
#    anything is started in it; cleanup deletes only registered namespaces;
#  - every process is started by vw_spawn, which records its PID and the
#    kernel start time of that PID; cleanup signals only recorded PIDs whose
#    start time still matches (so a recycled PID is never hit);
#  - addresses come only from 198.51.100.0/24, 203.0.113.0/24, 192.0.2.0/24
#    and 2001:db8::/32, and live only inside the lab's namespaces.

VW_TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VW_REPO_ROOT=$(cd "$VW_TESTBED_DIR/.." && pwd)
VW_POLL_MS=${VW_POLL_MS:-50}

# ---------------------------------------------------------------- logging --

vw_now_ms() { date +%s%3N; }

vw_log() { printf '%s %s\n' "$(date -u +%H:%M:%S.%3N)" "$*" >&2; }
vw_info() { vw_log "INFO  $*"; }
vw_warn() { vw_log "WARN  $*"; }
vw_err() { vw_log "ERROR $*"; }
vw_die() {
  vw_err "$*"
  exit 1
}

# ------------------------------------------------------------ run directory --

# vw_run_dir_init [DIR]: per-lab state directory holding configs, sockets,
# logs and the registries. Default: a fresh temp dir.
vw_run_dir_init() {
  vw_lab_lock
  if [[ -n ${1:-} ]]; then
    VW_RUN_DIR=$1
    mkdir -p "$VW_RUN_DIR"
  else
    VW_RUN_DIR=$(mktemp -d /tmp/vw-lab.XXXXXX)
  fi
  chmod 755 "$VW_RUN_DIR"
  : >>"$VW_RUN_DIR/netns.list"
  : >>"$VW_RUN_DIR/pids.list"
  export VW_RUN_DIR
}

# One lab at a time on a machine: the namespace names are fixed, so a second
# run would purge the first one's namespaces. The lock is held on fd 9 by the
# orchestrating script (not by the daemons: vw_spawn closes fd 9 for them) and
# is released when that script exits.
VW_LOCK_FILE=${VW_LOCK_FILE:-/tmp/vw-lab.lock}
vw_lab_lock() {
  [[ ${VW_LAB_LOCKED:-0} == 1 ]] && return 0
  exec 9>>"$VW_LOCK_FILE"
  if ! flock -n 9; then
    vw_info "another vipwarden lab run holds $VW_LOCK_FILE; waiting (up to 15 min)"
    flock -w 900 9 || vw_die "could not get the lab lock $VW_LOCK_FILE"
  fi
  VW_LAB_LOCKED=1
}

vw_require_run_dir() {
  [[ -n ${VW_RUN_DIR:-} && -d $VW_RUN_DIR ]] || vw_die "VW_RUN_DIR not initialised (call vw_run_dir_init)"
}

# ---------------------------------------------------------------- processes --

# Kernel start time (clock ticks since boot) of PID, or empty if gone.
vw_pid_starttime() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  # Field 22; strip "pid (comm) " first because comm may contain spaces.
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s\n' "${20}"
}

# True while PID runs and is not a zombie.
vw_pid_alive() {
  local state
  state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# vw_spawn NAME NETNS LOGFILE CMD...: start CMD in NETNS ("" = host) in the
# background, stdout+stderr to LOGFILE. Records the PID as $VW_RUN_DIR/NAME.pid
# and in pids.list. `ip netns exec` and `setsid` both exec, so the PID
# recorded is the daemon's own. setsid puts the daemon in its own session: a
# Ctrl-C in the terminal reaches only the scripts, whose traps then stop the
# daemons in order (vipwarden first, by SIGTERM).
vw_spawn() {
  vw_require_run_dir
  local name=$1 ns=$2 logfile=$3
  shift 3
  if [[ -n $ns ]]; then
    ip netns exec "$ns" setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  else
    setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  fi
  local pid=$!
  local st
  st=$(vw_pid_starttime "$pid")
  printf '%s %s %s\n' "$pid" "${st:-0}" "$name" >>"$VW_RUN_DIR/pids.list"
  printf '%s\n' "$pid" >"$VW_RUN_DIR/$name.pid"
}

# PID recorded for NAME (empty if none).
vw_pid_of() {
  cat "$VW_RUN_DIR/$1.pid" 2>/dev/null || true
}

# True if PID still is the process we recorded in pids.list.
vw_pid_is_ours() {
  local pid=$1 rec_pid rec_st _name cur
  cur=$(vw_pid_starttime "$pid")
  [[ -n $cur ]] || return 1
  while read -r rec_pid rec_st _name; do
    if [[ $rec_pid == "$pid" ]]; then
      [[ $rec_st == "$cur" || $rec_st == 0 ]] && return 0
    fi
  done <"$VW_RUN_DIR/pids.list"
  return 1
}

# vw_wait_pid_exit PID TIMEOUT_MS: wait for PID to exit (reaps it if it is our
# child). Sets VW_EXIT_CODE when known. Returns 1 on timeout.
vw_wait_pid_exit() {
  local pid=$1 timeout_ms=$2 t0
  t0=$(vw_now_ms)
  VW_EXIT_CODE=
  while vw_pid_alive "$pid"; do
    if (($(vw_now_ms) - t0 > timeout_ms)); then return 1; fi
    sleep 0.02
  done
  if wait "$pid" 2>/dev/null; then VW_EXIT_CODE=0; else VW_EXIT_CODE=$?; fi
  # wait returns 127 when PID is not our child: exit code unknown.
  [[ $VW_EXIT_CODE == 127 ]] && VW_EXIT_CODE=
  return 0
}

# vw_signal NAME SIGNAL: send SIGNAL to the recorded process NAME.
vw_signal() {
  local name=$1 sig=$2 pid
  pid=$(vw_pid_of "$name")
  [[ -n $pid ]] || vw_die "no PID recorded for $name"
  vw_pid_is_ours "$pid" || vw_die "$name (PID $pid) is not running"
  kill "-$sig" "$pid"
}

# PIDs of all descendants of PID (children first found by parent PID).
vw_pid_descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    printf '%s\n' "$child"
    vw_pid_descendants "$child"
  done
}

# vw_signal_tree NAME SIGNAL: SIGNAL to the recorded process and every process
# it started (e.g. SIGSTOP to freeze a daemon together with its helpers).
vw_signal_tree() {
  local name=$1 sig=$2 pid p
  pid=$(vw_pid_of "$name")
  if [[ -z $pid ]] || ! vw_pid_is_ours "$pid"; then vw_die "$name is not running"; fi
  for p in $pid $(vw_pid_descendants "$pid"); do
    kill "-$sig" "$p" 2>/dev/null || true
  done
}

# vw_stop NAME [SIGNAL] [TIMEOUT_MS]: signal the recorded process and wait
# for it to exit; escalate to SIGKILL after TIMEOUT_MS. Sets VW_EXIT_CODE.
vw_stop() {
  local name=$1 sig=${2:-TERM} timeout_ms=${3:-5000} pid
  pid=$(vw_pid_of "$name")
  VW_EXIT_CODE=
  [[ -n $pid ]] || return 0
  if vw_pid_is_ours "$pid" && vw_pid_alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! vw_wait_pid_exit "$pid" "$timeout_ms"; then
      vw_warn "$name (PID $pid) ignored SIG$sig for ${timeout_ms}ms, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      vw_wait_pid_exit "$pid" 2000 || true
    fi
  else
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$VW_RUN_DIR/$name.pid"
}

# Stop every recorded process, newest first.
vw_stop_all() {
  [[ -n ${VW_RUN_DIR:-} && -f $VW_RUN_DIR/pids.list ]] || return 0
  local pid st name
  while read -r pid st name; do
    [[ -n $pid ]] || continue
    if vw_pid_is_ours "$pid" && vw_pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      vw_wait_pid_exit "$pid" 3000 || {
        kill -KILL "$pid" 2>/dev/null || true
        vw_wait_pid_exit "$pid" 2000 || true
      }
    fi
    rm -f "$VW_RUN_DIR/$name.pid"
  done < <(tac "$VW_RUN_DIR/pids.list")
  : >"$VW_RUN_DIR/pids.list"
}

# --------------------------------------------------------------- namespaces --

vw_netns_exists() { [[ -e /run/netns/$1 ]]; }

# Processes still inside namespace NS are lab leftovers (the vw- prefix is
# ours): stop them by PID, then delete the namespace.
vw_netns_purge() {
  local ns=$1 pid
  [[ $ns == vw-* ]] || vw_die "refusing to touch namespace $ns (not vw-*)"
  vw_netns_exists "$ns" || return 0
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 0.3
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  ip netns del "$ns" 2>/dev/null || true
}

# vw_netns_create NS: create and register NS with lo up. A stale namespace of
# the same name (from a crashed run) is purged first.
vw_netns_create() {
  vw_require_run_dir
  local ns=$1
  [[ $ns == vw-* ]] || vw_die "namespace name must start with vw-: $ns"
  if vw_netns_exists "$ns"; then
    vw_warn "namespace $ns exists (stale lab?), purging it"
    vw_netns_purge "$ns"
  fi
  ip netns add "$ns"
  printf '%s\n' "$ns" >>"$VW_RUN_DIR/netns.list"
  vw_in "$ns" ip link set lo up
  # No DAD delays and no router solicitations: addresses are usable at once.
  vw_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 || true
  vw_in "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1 || true
}

vw_in() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

vw_netns_delete_all() {
  [[ -n ${VW_RUN_DIR:-} && -f $VW_RUN_DIR/netns.list ]] || return 0
  local ns
  while read -r ns; do
    [[ -n $ns ]] && vw_netns_purge "$ns"
  done < <(tac "$VW_RUN_DIR/netns.list")
  : >"$VW_RUN_DIR/netns.list"
}

# vw_link NS_A IF_A NS_B IF_B: veth pair between two namespaces.
vw_link() {
  local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4
  ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
  vw_in "$ns_a" ip link set "$if_a" up
  vw_in "$ns_b" ip link set "$if_b" up
}

vw_addr() {
  local ns=$1 dev=$2 addr=$3
  if [[ $addr == *:* ]]; then
    vw_in "$ns" ip -6 addr add "$addr" dev "$dev" nodad
  else
  vw_in "$ns" ip addr add "$addr" dev "$dev"
  fi
}

# ------------------------------------------------------------------ cleanup --

# vw_cleanup: stop processes, delete namespaces. Keeps the run dir (logs)
# when VW_KEEP_RUN_DIR=1 or the script is failing; removes it otherwise.
vw_cleanup() {
  local rc=${1:-0}
  trap - EXIT INT TERM
  [[ -n ${VW_RUN_DIR:-} && -d ${VW_RUN_DIR:-/nonexistent} ]] || return 0
  vw_stop_all
  vw_netns_delete_all
  if [[ $rc -ne 0 || ${VW_KEEP_RUN_DIR:-0} == 1 ]]; then
    vw_info "logs kept in $VW_RUN_DIR"
  else
    rm -rf "$VW_RUN_DIR"
  fi
}

# Install the cleanup trap: runs on normal exit, failure and Ctrl-C/TERM.
vw_install_cleanup_trap() {
  trap 'vw_cleanup $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------- waiting --

# vw_wait_until T0_MS TIMEOUT_MS CMD...: poll CMD every VW_POLL_MS until it
# succeeds. Prints the elapsed ms since T0_MS (a vw_now_ms value taken when
# the fault was injected) on stdout. Returns 1 on timeout (still printing the
# elapsed ms). Pass T0_MS=now to measure from the call.
vw_wait_until() {
  local t0=$1 timeout_ms=$2 now
  shift 2
  [[ $t0 == now ]] && t0=$(vw_now_ms)
  while :; do
    if "$@" >/dev/null 2>&1; then
      now=$(vw_now_ms)
      printf '%s\n' $((now - t0))
      return 0
    fi
    now=$(vw_now_ms)
    if ((now - t0 >= timeout_ms)); then
      printf '%s\n' $((now - t0))
      return 1
    fi
    sleep "$(printf '0.%03d' "$VW_POLL_MS")"
  done
}

# Negation helper for vw_wait_until: vw_wait_until ... vw_not router_has_prefix ...
vw_not() { ! "$@"; }

# shellcheck source=lib/routers.sh
source "$VW_TESTBED_DIR/lib/routers.sh"
# shellcheck source=lib/nginx.sh
source "$VW_TESTBED_DIR/lib/nginx.sh"
# shellcheck source=lib/topology.sh
source "$VW_TESTBED_DIR/lib/topology.sh"
