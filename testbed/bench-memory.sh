#!/usr/bin/env bash
# Memory benchmark (issue 23): steady RSS of the release daemon holding
#   - 100k prefixes in one VIP ("prefixes"),
#   - 100k VIPs of one /128 each over 100 tcp checks ("vips"), and after N router restarts,
# `vipwarden check-config`'s peak RSS on both configs, and, side by side in the same run, GoBGP
# (gobgpd, table injected as MRT) and ExaBGP (static routes) holding the same 100k-prefix table
# towards the same BIRD. Prefixes are IPv6 /128s from 2001:db8:a::/108 (documentation space).
#
#   bash testbed/bench-memory.sh                 full run: root, takes the lab lock
#   bash testbed/bench-memory.sh --restarts 5    fewer router restarts (default 20)
#   bash testbed/bench-memory.sh --no-router     no namespaces, no lock: the daemon on loopback
#                                                with its peer unreachable, and check-config
#   options: --kinds "prefixes vips", --peers "gobgp exabgp" (or ""), --settle S (default 5)
#   env: BENCH_MEM_N (default 100000), VIPWARDEN_BIN (default target/release/vipwarden)
#
# Steady RSS: VmRSS after every prefix is at BIRD and S more seconds (no-router: once VmRSS moved
# less than 1% over S seconds, at most 120 s after start). Restarts: BIRD is stopped (SIGTERM) and
# started again; the RSS is read S seconds after the whole table is back at BIRD.
set -euo pipefail
cd "$(dirname "$0")/.."

NO_ROUTER=0
RESTARTS=20
KINDS="prefixes vips"
PEERS="gobgp exabgp"
SETTLE=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-router) NO_ROUTER=1 ;;
    --restarts) RESTARTS=$2; shift ;;
    --kinds) KINDS=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --settle) SETTLE=$2; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
N=${BENCH_MEM_N:-100000}
export BENCH_MEM_N=$N
BIN=${VIPWARDEN_BIN:-target/release/vipwarden}
[[ -x $BIN ]] || cargo build --release --quiet --bin vipwarden
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
TABLE_TIMEOUT_S=180

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
ROWS=()
print_table() {
  echo
  printf '| %-44s | %-40s | %s |\n' measure figure notes
  printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..42})" "-------"
  printf '%s\n' "${ROWS[@]}"
  echo "load average at the end: $(loadavg)"
}
row() { ROWS+=("$(printf '| %-44s | %-40s | %s |' "$1" "$2" "$3")"); echo "  $1: $2 ($3)"; }

echo "bench-memory: N=$N, load average $(loadavg), $(nproc) cores, $("$BIN" --version)"

# ------------------------------------------------------------- check-config --
check_config_rss() {
  local dir=$1 kind
  for kind in $KINDS; do
    local t0 t1 kb
    t0=$(date +%s%3N)
    /usr/bin/time -f '%M' -o "$dir/cc-$kind.rss" "$BIN" check-config --config "$dir/vipwarden-$kind.yaml" \
      >"$dir/cc-$kind.out" 2>&1 || { echo "check-config failed on $kind:"; tail -5 "$dir/cc-$kind.out"; exit 1; }
    t1=$(date +%s%3N)
    kb=$(tail -1 "$dir/cc-$kind.rss")
    row "check-config, $kind" "peak RSS $(mib "$kb")" "$((t1 - t0)) ms"
  done
}

# ---------------------------------------------------------------- no router --
if [[ $NO_ROUTER == 1 ]]; then
  RUN=$(mktemp -d /tmp/vw-mem.XXXXXX)
  PIDS=()
  cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$RUN"
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  svc=$(free_port)
  python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
' "$svc" &
  PIDS+=($!)
  # Nothing listens on the peer's port: the session keeps retrying, nothing is sent.
  for kind in $KINDS; do
    mkdir -p "$RUN/state"
    python3 testbed/bench/memory_configs.py "$RUN" "$kind" 127.0.0.1 "$(free_port)" 127.0.0.1 \
      2001:db8:1::2 "127.0.0.1:$svc" "127.0.0.1:$(free_port)"
  done
  check_config_rss "$RUN"
  for kind in $KINDS; do
    "$BIN" run --config "$RUN/vipwarden-$kind.yaml" >"$RUN/run-$kind.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    t0=$(date +%s)
    prev=0 stable=0 kb=0
    while (($(date +%s) - t0 < 120)); do
      sleep 1
      kill -0 "$pid" 2>/dev/null || { echo "daemon exited:"; tail -5 "$RUN/run-$kind.log"; exit 1; }
      kb=$(rss_kb "$pid")
      if ((prev > 0 && (kb - prev) * 100 < prev && (prev - kb) * 100 < prev)); then
        stable=$((stable + 1))
      else
        stable=0
      fi
      prev=$kb
      ((stable >= SETTLE)) && break
    done
    row "vipwarden, $kind, peer unreachable" "steady RSS $(mib "$kb")" "peak $(mib "$(hwm_kb "$pid")"), $(($(date +%s) - t0)) s"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
  done
  print_table
  exit 0
fi

# -------------------------------------------------------------- with BIRD --
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
NS_NODE=vw-mem-node
NS_TOR=vw-mem-tor
NODE6=2001:db8:1::2
TOR6=2001:db8:1::1
vw_run_dir_init
vw_install_cleanup_trap
RUN=$VW_RUN_DIR
VW_NS_BIRD=$NS_TOR

vw_netns_create "$NS_NODE"
vw_netns_create "$NS_TOR"
vw_link "$NS_NODE" mem-n "$NS_TOR" mem-t
vw_addr "$NS_NODE" mem-n 198.51.100.2/30
vw_addr "$NS_NODE" mem-n "$NODE6/64"
vw_addr "$NS_TOR" mem-t 198.51.100.1/30
vw_addr "$NS_TOR" mem-t "$TOR6/64"

mkdir -p "$RUN/bird" "$RUN/state"
# A plain passive IPv6 session; no kernel protocol (the FIB is not what is measured).
cat >"$RUN/bird/bird.conf" <<EOF
log "$RUN/bird/bird.log" { info, warning, error, fatal };
router id 198.51.100.1;
protocol device { scan time 10; }
protocol bgp node1 {
  local $TOR6 as 65000;
  neighbor $NODE6 as 65101;
  passive on;
  hold time 9;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 5;
  ipv6 { import all; export none; };
}
EOF
bird_start() {
  vw_spawn bird "$NS_TOR" "$RUN/bird/stdout.log" bird -f -c "$RUN/bird/bird.conf" -s "$RUN/bird/bird.ctl" -P "$RUN/bird/bird.pid"
  vw_wait_until now 5000 vw_birdc show status >/dev/null || vw_die "BIRD did not start"
}
bird_routes() { vw_birdc show route count 2>/dev/null | awk '/routes for/ {s += $1} END {print s + 0}'; }
bird_has_all() { (($(bird_routes) >= N)); }
bird_empty() { (($(bird_routes) == 0)); }
# wait_table LABEL: every prefix at BIRD (at most TABLE_TIMEOUT_S); prints ms.
wait_table() {
  local ms
  ms=$(vw_wait_until now $((TABLE_TIMEOUT_S * 1000)) bird_has_all) ||
    vw_die "$1: $(bird_routes) of $N prefixes at BIRD after ${TABLE_TIMEOUT_S}s"
  echo "$ms"
}

svc_port=8081
vw_spawn svc "$NS_NODE" "$RUN/svc.log" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
' "$svc_port"
for kind in $KINDS; do
  python3 testbed/bench/memory_configs.py "$RUN" "$kind" "$TOR6" 179 "$NODE6" "$NODE6" \
    "127.0.0.1:$svc_port" "127.0.0.1:9180"
done
check_config_rss "$RUN"
bird_start

for kind in $KINDS; do
  vw_spawn "vw-$kind" "$NS_NODE" "$RUN/vipwarden-$kind.log" "$BIN" run --config "$RUN/vipwarden-$kind.yaml"
  pid=$(vw_pid_of "vw-$kind")
  ms=$(wait_table "vipwarden $kind")
  sleep "$SETTLE"
  first=$(rss_kb "$pid")
  row "vipwarden, $kind" "steady RSS $(mib "$first")" "table at BIRD ${ms} ms after start; peak $(mib "$(hwm_kb "$pid")")"
  if [[ $kind == vips && $RESTARTS -gt 0 ]]; then
    max=$first min=$first line=""
    for ((i = 1; i <= RESTARTS; i++)); do
      vw_stop bird TERM 5000
      bird_start
      ms=$(wait_table "restart $i")
      sleep "$SETTLE"
      kb=$(rss_kb "$pid")
      ((kb > max)) && max=$kb
      ((kb < min)) && min=$kb
      line+="$((kb / 1024)) "
      echo "  restart $i: table back in ${ms} ms, RSS $(mib "$kb")"
    done
    row "vipwarden, vips, after $RESTARTS BIRD restarts" "RSS $(mib "$kb") (min $(mib "$min"), max $(mib "$max"))" \
      "max $(awk -v a="$max" -v b="$first" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }') of the first steady value; MiB per restart: $line"
  fi
  vw_stop "vw-$kind" TERM 10000
  vw_wait_until now 30000 bird_empty >/dev/null || vw_warn "BIRD still holds $(bird_routes) prefixes"
done

# ------------------------------------------------------- the other speakers --
for peer in $PEERS; do
  case $peer in
    gobgp)
      cat >"$RUN/gobgpd.toml" <<EOF
[global.config]
  as = 65101
  router-id = "198.51.100.2"
  local-address-list = ["$NODE6"]
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$TOR6"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "$NODE6"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
      python3 testbed/lib/mrt_table.py "$RUN/table.mrt" 65101 198.51.100.2 "$NODE6" <"$RUN/prefixes.txt"
      vw_spawn gobgpd "$NS_NODE" "$RUN/gobgpd.log" gobgpd -f "$RUN/gobgpd.toml" --pprof-disable \
        --api-hosts 127.0.0.1:50071 -l warn
      pid=$(vw_pid_of gobgpd)
      vw_wait_until now 5000 vw_in "$NS_NODE" gobgp -u 127.0.0.1 -p 50071 global >/dev/null || vw_die "gobgpd did not start"
      t0=$(vw_now_ms)
      for _ in 1 2 3; do
        vw_in "$NS_NODE" gobgp -u 127.0.0.1 -p 50071 mrt inject global "$RUN/table.mrt" >>"$RUN/inject.log" 2>&1 || true
        vw_wait_until now 20000 bird_has_all >/dev/null && break
      done
      ms=$(wait_table gobgpd)
      sleep "$SETTLE"
      row "GoBGP $(gobgpd --version 2>&1 | awk '{print $NF}'), prefixes" "steady RSS $(mib "$(rss_kb "$pid")")" \
        "table at BIRD $(($(vw_now_ms) - t0 - SETTLE * 1000)) ms after the first inject; peak $(mib "$(hwm_kb "$pid")")"
      vw_stop gobgpd TERM 10000
      ;;
    exabgp)
      {
        echo "neighbor $TOR6 {"
        echo "  router-id 198.51.100.2; local-address $NODE6; local-as 65101; peer-as 65000;"
        echo "  family { ipv6 unicast; }"
        echo "  static {"
        sed "s|.*|    route & next-hop $NODE6;|" "$RUN/prefixes.txt"
        echo "  }"
        echo "}"
      } >"$RUN/exabgp.conf"
      vw_spawn exabgp "$NS_NODE" "$RUN/exabgp.log" env exabgp.daemon.user=root exabgp.daemon.drop=false \
        exabgp.log.destination=stderr exabgp.api.cli=false exabgp "$RUN/exabgp.conf"
      pid=$(vw_pid_of exabgp)
      ms=$(wait_table exabgp)
      sleep "$SETTLE"
      row "ExaBGP $(exabgp --version 2>&1 | awk '/ExaBGP/ {print $3}'), prefixes" "steady RSS $(mib "$(rss_kb "$pid")")" \
        "table at BIRD ${ms} ms after start; peak $(mib "$(hwm_kb "$pid")")"
      vw_stop exabgp TERM 10000
      ;;
    *) vw_die "unknown peer $peer (gobgp, exabgp)" ;;
  esac
  vw_wait_until now 30000 bird_empty >/dev/null || vw_warn "BIRD still holds $(bird_routes) prefixes"
done

print_table
