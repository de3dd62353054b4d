#!/usr/bin/env bash
# Idle footprint of vipwarden next to ExaBGP with its healthcheck, under identical conditions,
# at 1, 10 and 100 services: one namespace (vw-fp), one passive gobgpd peer, a web server
# answering on every service's VIP, per service one VIP and one HTTP check per second, all VIPs
# announced. ExaBGP runs one healthcheck process per service (its way to watch several). Each
# tool runs alone for VW_FP_SECS (default 60) per service count while its whole process tree is
# sampled from /proc: RSS (sum over the tree) and CPU (utime+stime plus the children it reaped,
# e.g. ExaBGP's per-check curl), and PSS (shared pages split between the processes sharing them).
# Prints a side-by-side table, the load average, and how much of
# the daemon's text layout (link/text-order.txt, see testbed/gen-text-order.sh) the binary has.
#   bash testbed/footprint-vs-exabgp.sh
#   env: VW_FP_SECS (default 60), VW_FP_SERVICES (default "1 10 100"), VIPWARDEN_BIN (another
#   build of the daemon; default: build target/release/vipwarden)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # printf's decimals with a point

SECS=${VW_FP_SECS:-60}
read -r -a SERVICES <<<"${VW_FP_SERVICES:-1 10 100}"
NS=vw-fp
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=lib/standalone.sh
source testbed/lib/standalone.sh

in_ns() { ip netns exec "$NS" "$@"; }
start() { sa_start "$NS" "$@"; }

# Descendants of PID, PID included.
tree() {
    local pid=$1 kids
    echo "$pid"
    kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    for k in $kids; do tree "$k"; done
}

# tree_kb FIELD FILE PID: FIELD (in kB) of /proc/P/FILE summed over PID's tree.
tree_kb() {
    local sum=0 p kb
    for p in $(tree "$3"); do
        kb=$(awk -v f="$1:" '$1 == f {print $2}' /proc/"$p"/"$2" 2>/dev/null || echo 0)
        sum=$((sum + ${kb:-0}))
    done
    echo "$sum"
}

tree_rss_kb() { tree_kb VmRSS status "$1"; }

# Proportional set size: a page shared by N processes counts 1/N in each, so the sum is what the
# tree costs (RSS sums count ExaBGP's shared Python pages once per process).
tree_pss_kb() { tree_kb Pss smaps_rollup "$1"; }

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

# Service i (0-based) is VIP 203.0.113.(10+i)/32.
vip() { echo "203.0.113.$((10 + $1))"; }

routes_at_peer() {
    sa_rib "$NS" 50051 | grep -c '203\.0\.113\.' || true
}

# wait_routes N: until the peer has N of the VIPs.
wait_routes() {
    for _ in $(seq 600); do
        [ "$(routes_at_peer)" -ge "$1" ] && return 0
        sleep 0.1
    done
    echo "the peer has $(routes_at_peer) of $1 VIPs; logs in $RUN" >&2
    tail -n 20 "$RUN"/*.log >&2
    return 1
}

wait_no_routes() {
    for _ in $(seq 100); do
        [ "$(routes_at_peer)" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "the peer still has $(routes_at_peer) VIPs 10 s after the tool stopped; logs in $RUN" >&2
    return 1
}

# measure NAME PID: samples the tree once a second; prints
# "name|rss_max_kb|rss_mean_kb|pss_mean_kb|cpu_pct|procs".
measure() {
    local name=$1 pid=$2 t0 t1 rss max=0 total=0 pss=0 n=0 procs
    t0=$(tree_ticks "$pid")
    for _ in $(seq "$SECS"); do
        sleep 1
        rss=$(tree_rss_kb "$pid")
        total=$((total + rss))
        pss=$((pss + $(tree_pss_kb "$pid")))
        n=$((n + 1))
        [ "$rss" -gt "$max" ] && max=$rss
    done
    t1=$(tree_ticks "$pid")
    procs=$(tree "$pid" | wc -l)
    echo "$name|$max|$((total / n))|$((pss / n))|$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.2f", 100 * d / hz / s }')|$procs"
}

setup_namespace() {
    ip netns add "$NS"
    in_ns ip link set lo up
    local a i max=0
    for i in "${SERVICES[@]}"; do ((i > max)) && max=$i; done
    for a in 198.51.100.1/32 198.51.100.2/32; do
        in_ns ip addr add "$a" dev lo
    done
    for ((i = 0; i < max; i++)); do
        in_ns ip addr add "$(vip "$i")/32" dev lo
    done
    sa_gobgpd "$NS" 50051
    start web python3 -m http.server 80 --bind 0.0.0.0
    sleep 1
}

run_vipwarden() {
    local n=$1 i pid
    {
        cat <<EOF
router_id: 198.51.100.2
local_as: 65101
api: {listen: "127.0.0.1:9180"}
state_dir: $RUN/state
peers: [{name: peer, address: 198.51.100.1, local_address: 198.51.100.2, remote_as: 65000}]
checks:
EOF
        for ((i = 0; i < n; i++)); do
            echo "  - {name: web$i, type: http, url: \"http://$(vip "$i")/\", interval: 1s, timeout: 500ms, rise: 2, fall: 2}"
        done
        echo "vips:"
        for ((i = 0; i < n; i++)); do
            echo "  - {name: web$i, prefixes: [$(vip "$i")/32], checks: [web$i]}"
        done
    } >"$RUN/vipwarden.yaml"
    start vipwarden "$VIPWARDEN" run --config "$RUN/vipwarden.yaml"
    pid=$LAST_PID
    wait_routes "$n"
    measure "$n|vipwarden $("$VIPWARDEN" --version | awk '{print $2}')" "$pid" >>"$RUN/rows"
    sa_stop "$pid"
    wait_no_routes
}

run_exabgp() {
    local n=$1 i pid
    {
        for ((i = 0; i < n; i++)); do
            cat <<EOF
process watch-web$i {
    run /usr/bin/python3 -m exabgp healthcheck --cmd "curl -sf http://$(vip "$i")/" --ip $(vip "$i")/32 --no-ip-setup --interval 1 --fast-interval 1 --rise 2 --fall 2 --no-syslog --withdraw-on-down;
    encoder text;
}
EOF
        done
        echo "neighbor 198.51.100.1 {"
        echo "    router-id 198.51.100.2;"
        echo "    local-address 198.51.100.2;"
        echo "    local-as 65101;"
        echo "    peer-as 65000;"
        printf '    api { processes [ %s ]; }\n' "$(for ((i = 0; i < n; i++)); do printf 'watch-web%d ' "$i"; done)"
        echo "}"
    } >"$RUN/exabgp.conf"
    start exabgp env exabgp.daemon.user=root exabgp.daemon.drop=false exabgp.log.destination=stderr \
        exabgp.api.cli=false exabgp "$RUN/exabgp.conf"
    pid=$LAST_PID
    wait_routes "$n"
    measure "$n|exabgp $(exabgp --version 2>&1 | awk '/ExaBGP/ {print $3}') + healthcheck" "$pid" >>"$RUN/rows"
    sa_stop "$pid"
    wait_no_routes
}

# How many of link/text-order.txt's functions the binary has (build.rs places them first).
text_layout() {
    local order=link/text-order.txt
    [ -f "$order" ] || { echo "no $order"; return; }
    python3 - "$VIPWARDEN" "$order" <<'PYEOF'
import subprocess, sys
out = subprocess.run(["nm", "-S", "--defined-only", sys.argv[1]], capture_output=True, text=True).stdout
have = {}
for line in out.splitlines():
    f = line.split()
    if len(f) == 4:
        have[f[3]] = (int(f[0], 16), int(f[1], 16))
want = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
found = [have[w] for w in want if w in have]
if not have:
    print("unknown (the binary has no symbol table)")
elif not found:
    print(f"none of the {len(want)} functions of {sys.argv[2]} is in the binary: re-run testbed/gen-text-order.sh")
else:
    span = max(a + n for a, n in found) - min(a for a, _ in found)
    size = sum(n for _, n in found)
    where = "together" if span <= 1.25 * size else "NOT together (a linker without --symbol-ordering-file?)"
    print(f"{len(found)} of {len(want)} functions of {sys.argv[2]} in the binary, {size / 1e6:.1f} MB, {where}")
PYEOF
}

mib() { awk -v k="$1" 'BEGIN { print k / 1024 }'; }

main() {
    sa_init vw-fp "$NS"
    sa_need gobgpd exabgp curl
    sa_vipwarden
    setup_namespace
    echo "measuring each tool alone for ${SECS}s per service count (${SERVICES[*]}): VIPs announced"
    echo "to a passive gobgpd, an HTTP check per service every second"
    local n
    for n in "${SERVICES[@]}"; do
        run_vipwarden "$n"
        run_exabgp "$n"
    done
    local rows=()
    mapfile -t rows <"$RUN/rows"
    echo
    printf '| %8s | %-30s | %12s | %13s | %13s | %13s | %9s |\n' services tool "RSS max MiB" "RSS mean MiB" "PSS mean MiB" "CPU % of core" processes
    printf '|%s|%s|%s|%s|%s|%s|%s|\n' "----------" "--------------------------------" "--------------" "---------------" "---------------" "---------------" "-----------"
    local r name max mean pss cpu procs
    for r in "${rows[@]}"; do
        IFS='|' read -r n name max mean pss cpu procs <<<"$r"
        printf '| %8s | %-30s | %12.1f | %13.1f | %13.1f | %13s | %9s |\n' "$n" "$name" "$(mib "$max")" \
            "$(mib "$mean")" "$(mib "$pss")" "$cpu" "$procs"
    done
    echo
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "text layout: $(text_layout)"
}

main "$@"
