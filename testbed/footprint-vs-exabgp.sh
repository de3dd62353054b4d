#!/usr/bin/env bash
# Idle footprint of vipwarden next to ExaBGP with its healthcheck, under identical conditions:
# one namespace (vw-fp), one passive gobgpd peer, one web service on the VIP, one HTTP check per
# second, the VIP announced. Each tool runs alone for VW_FP_SECS (default 60) while its whole
# process tree is sampled from /proc: RSS (sum over the tree) and CPU (utime+stime plus the
# children it reaped, e.g. ExaBGP's per-check curl). Prints a side-by-side table.
#   bash testbed/footprint-vs-exabgp.sh
#   env: VW_FP_SECS (default 60), VIPWARDEN_BIN (another build of the daemon; default: build
#   target/release/vipwarden)
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${VW_FP_SECS:-60}
NS=vw-fp
RUN=$(mktemp -d /tmp/vw-fp.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.3
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

need_pkgs() {
    local missing=()
    command -v gobgpd >/dev/null || missing+=(gobgpd)
    command -v exabgp >/dev/null || missing+=(exabgp)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

in_ns() { ip netns exec "$NS" "$@"; }

# start NAME CMD...: runs CMD in the namespace in the background; its PID is recorded for
# cleanup and left in LAST_PID (not printed: a $(...) subshell would lose the record).
LAST_PID=
start() {
    local name=$1
    shift
    # ip netns exec execs the program, so $! is the program itself (no shell in between).
    ip netns exec "$NS" "$@" >"$RUN/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null || true
}

# Descendants of PID, PID included.
tree() {
    local pid=$1 kids
    echo "$pid"
    kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    for k in $kids; do tree "$k"; done
}

tree_rss_kb() {
    local sum=0 p kb
    for p in $(tree "$1"); do
        kb=$(awk '$1 == "VmRSS:" {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)
        sum=$((sum + ${kb:-0}))
    done
    echo "$sum"
}

# utime+stime+cutime+cstime over the tree, in ticks.
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

route_at_peer() {
    in_ns gobgp -u 127.0.0.1 -p 50051 global rib -a ipv4 2>/dev/null | grep -q '203.0.113.10/32'
}

wait_route() {
    for _ in $(seq 300); do
        route_at_peer && return 0
        sleep 0.1
    done
    echo "the VIP never reached the peer; logs in $RUN" >&2
    tail -n 20 "$RUN"/*.log >&2
    return 1
}

# measure NAME PID: samples the tree once a second; prints "name|rss_max_kb|rss_mean_kb|cpu_pct|procs".
measure() {
    local name=$1 pid=$2 t0 t1 rss max=0 total=0 n=0 procs
    t0=$(tree_ticks "$pid")
    for _ in $(seq "$SECS"); do
        sleep 1
        rss=$(tree_rss_kb "$pid")
        total=$((total + rss))
        n=$((n + 1))
        [ "$rss" -gt "$max" ] && max=$rss
    done
    t1=$(tree_ticks "$pid")
    procs=$(tree "$pid" | wc -l)
    echo "$name|$max|$((total / n))|$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.2f", 100 * d / hz / s }')|$procs"
}

setup_namespace() {
    ip netns del "$NS" 2>/dev/null || true
    ip netns add "$NS"
    in_ns ip link set lo up
    for a in 198.51.100.1/32 198.51.100.2/32 203.0.113.10/32; do
        in_ns ip addr add "$a" dev lo
    done
    cat >"$RUN/gobgpd.toml" <<'EOF'
[global.config]
  as = 65000
  router-id = "198.51.100.1"
  local-address-list = ["198.51.100.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.51.100.2"
    peer-as = 65101
  [neighbors.transport.config]
    passive-mode = true
    local-address = "198.51.100.1"
EOF
    start gobgpd gobgpd -f "$RUN/gobgpd.toml" --api-hosts 127.0.0.1:50051 -l warn
    start web python3 -m http.server 80 --bind 203.0.113.10
    sleep 1
}

run_vipwarden() {
    cat >"$RUN/vipwarden.yaml" <<EOF
router_id: 198.51.100.2
local_as: 65101
api: {listen: "127.0.0.1:9180"}
state_dir: $RUN/state
peers: [{name: peer, address: 198.51.100.1, local_address: 198.51.100.2, remote_as: 65000}]
checks:
  - {name: web, type: http, url: "http://203.0.113.10/", interval: 1s, timeout: 500ms, rise: 2, fall: 2}
vips: [{name: web, prefixes: [203.0.113.10/32], checks: [web]}]
EOF
    local pid
    start vipwarden "$VIPWARDEN" run --config "$RUN/vipwarden.yaml"
    pid=$LAST_PID
    wait_route
    measure "vipwarden $("$VIPWARDEN" --version | awk '{print $2}')" "$pid" >>"$RUN/rows"
    stop_pid "$pid"
    for _ in $(seq 100); do route_at_peer || break; sleep 0.1; done
}

run_exabgp() {
    cat >"$RUN/exabgp.conf" <<'EOF'
process watch-web {
    run /usr/bin/python3 -m exabgp healthcheck --cmd "curl -sf http://203.0.113.10/" --ip 203.0.113.10/32 --no-ip-setup --interval 1 --fast-interval 1 --rise 2 --fall 2 --no-syslog --withdraw-on-down;
    encoder text;
}
neighbor 198.51.100.1 {
    router-id 198.51.100.2;
    local-address 198.51.100.2;
    local-as 65101;
    peer-as 65000;
    api { processes [ watch-web ]; }
}
EOF
    local pid
    start exabgp env exabgp.daemon.user=root exabgp.daemon.drop=false exabgp.log.destination=stderr \
        exabgp.api.cli=false exabgp "$RUN/exabgp.conf"
    pid=$LAST_PID
    wait_route
    measure "exabgp $(exabgp --version 2>&1 | awk '/ExaBGP/ {print $3}') + healthcheck" "$pid" >>"$RUN/rows"
    stop_pid "$pid"
}

main() {
    need_pkgs
    if [[ -n ${VIPWARDEN_BIN:-} ]]; then
        VIPWARDEN=$(realpath "$VIPWARDEN_BIN")
    else
        cargo build --release --quiet --bin vipwarden
        VIPWARDEN=$PWD/target/release/vipwarden
    fi
    setup_namespace
    echo "measuring each tool alone for ${SECS}s: VIP announced to a passive gobgpd, HTTP check every second"
    run_vipwarden
    run_exabgp
    local rows=()
    mapfile -t rows <"$RUN/rows"
    echo
    printf '| %-30s | %12s | %13s | %13s | %9s |\n' tool "RSS max MiB" "RSS mean MiB" "CPU % of core" processes
    printf '|%s|%s|%s|%s|%s|\n' "--------------------------------" "--------------" "---------------" "---------------" "-----------"
    local r name max mean cpu procs
    for r in "${rows[@]}"; do
        IFS='|' read -r name max mean cpu procs <<<"$r"
        printf '| %-30s | %12.1f | %13.1f | %13s | %9s |\n' "$name" "$(awk -v k="$max" 'BEGIN{print k/1024}')" \
            "$(awk -v k="$mean" 'BEGIN{print k/1024}')" "$cpu" "$procs"
    done
}

main "$@"
