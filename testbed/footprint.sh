#!/usr/bin/env bash
# vipwarden's idle footprint, measured in the lab: both BGP sessions up, the
# VIP announced, one tcp check every second. Samples /proc for
# VW_FOOTPRINT_SECS (default 30) and prints a Markdown table for docs/performance.md.
#   testbed/footprint.sh
set -euo pipefail
TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$TESTBED/lib.sh"

SECS=${VW_FOOTPRINT_SECS:-30}
CLK_TCK=$(getconf CLK_TCK)

# utime+stime (ticks) of PID.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

main() {
  bash "$TESTBED/setup.sh"
  VIPWARDEN_BIN=$(vw_vipwarden_bin)
  export VIPWARDEN_BIN
  vw_run_dir_init
  vw_install_cleanup_trap
  vw_lab_up bird frr
  vw_vipwarden_start
  local r pid
  for r in bird frr; do
    vw_wait_until now 30000 router_has_prefix "$r" "$VW_VIP4_PREFIX" >/dev/null ||
      vw_warn "VIP not at $r after 30 s: measuring anyway"
  done
  pid=$(vw_pid_of vipwarden)
  sleep 2 # let start-up settle
  local t0 c0 t1 c1 i rss rss_max=0 rss_sum=0 n=0
  t0=$(vw_now_ms)
  c0=$(cpu_ticks "$pid")
  for ((i = 0; i < SECS; i++)); do
    sleep 1
    rss=$(status_kb "$pid" VmRSS)
    rss_sum=$((rss_sum + rss))
    n=$((n + 1))
    ((rss > rss_max)) && rss_max=$rss
  done
  t1=$(vw_now_ms)
  c1=$(cpu_ticks "$pid")
  local cpu_ms=$(((c1 - c0) * 1000 / CLK_TCK)) wall_ms=$((t1 - t0))
  local threads fds hwm size
  threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  hwm=$(status_kb "$pid" VmHWM)
  size=$(stat -c %s "$VIPWARDEN_BIN")
  echo
  echo "vipwarden idle footprint ($SECS s, 2 BGP peers, 1 tcp check/s, VIP announced; $(nproc) cores)"
  echo
  echo "| metric | value |"
  echo "| --- | --- |"
  printf '| CPU | %s ms over %s s (%s%% of one core) |\n' "$cpu_ms" "$((wall_ms / 1000))" \
    "$(awk -v c="$cpu_ms" -v w="$wall_ms" 'BEGIN {printf "%.2f", 100 * c / w}')"
  printf '| RSS | %s KiB average, %s KiB max, %s KiB peak since start (VmHWM) |\n' "$((rss_sum / n))" "$rss_max" "$hwm"
  printf '| threads | %s |\n' "$threads"
  printf '| open fds | %s |\n' "$fds"
  printf '| binary | %s KiB (%s) |\n' "$((size / 1024))" "$(basename "$VIPWARDEN_BIN")"
}

main "$@"
