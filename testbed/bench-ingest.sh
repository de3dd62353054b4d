#!/usr/bin/env bash
# Ingest benchmark: vipwarden's access-log pipeline (parse + 30 s sliding window + evaluation every
# second of log time) next to mtail computing the same counts (requests, 5xx) and a request-time
# histogram over the same generated nginx log. Both are pinned to one CPU; throughput is lines per
# wall-clock second, peak RSS from GNU time. Run at two file sizes to show RSS does not grow with it.
#
# Usage: testbed/bench-ingest.sh            (env: BENCH_SIZES="1000000 4000000", BENCH_CPU=0,
#                                            BENCH_REPEAT=1, BENCH_DIR=testbed/run/bench-ingest,
#                                            BENCH_CONFIG=vipwarden config for `vipwarden replay`)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${BENCH_SIZES:-1000000 4000000}"
CPU="${BENCH_CPU:-0}"
REPEAT="${BENCH_REPEAT:-1}"
WORK="${BENCH_DIR:-testbed/run/bench-ingest}"
mkdir -p "$WORK"

need() { command -v "$1" >/dev/null 2>&1; }
if ! [ -x /usr/bin/time ] || ! need mtail || ! need taskset; then
    echo "installing GNU time / mtail (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time mtail util-linux >/dev/null
fi

cargo build --release --quiet --example genlog --example ingest --bin vipwarden
GENLOG=target/release/examples/genlog
INGEST=target/release/examples/ingest

# The measured path is `vipwarden replay`: parser, sliding window and the VIP policy, on the log's
# own clock. Without BENCH_CONFIG it uses this embedded config (the log path is given on the
# command line; the conditions make the policy do real work every second of log time).
VIPWARDEN=target/release/vipwarden
driver=example
if [ -x "$VIPWARDEN" ] && "$VIPWARDEN" replay --help >/dev/null 2>&1; then
    driver=cli
fi
if [ -z "${BENCH_CONFIG:-}" ]; then
    BENCH_CONFIG="$WORK/bench.yaml"
    cat >"$BENCH_CONFIG" <<'YAML'
router_id: 192.0.2.1
local_as: 65101
peers: [{name: tor, address: 192.0.2.2, remote_as: 65000}]
checks: [{name: web, type: tcp, target: "127.0.0.1:80"}]
signals: [{name: web_log, type: access_log, path: /dev/null, format: nginx, window: 30s}]
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    withdraw_when:
      - {signal: web_log.error_ratio, above: 0.2, for: 10s, restore_below: 0.05}
      - {signal: web_log.latency_p99, above: 5s, for: 10s, restore_below: 1s}
YAML
fi

# run_timed NAME OUTFILE CMD...: pinned run under GNU time; leaves NAME.time and OUTFILE.
run_timed() {
    local name=$1 out=$2
    shift 2
    /usr/bin/time -v -o "$WORK/$name.time" taskset -c "$CPU" "$@" >"$out" 2>"$WORK/$name.err"
}
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
    for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"; }
cpu_s() { awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$1"; }
rss_mib() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }

mtail_prog_dir=testbed/bench
results=()
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(loadavg)
for n in $SIZES; do
    log="$WORK/access-$n.log"
    if ! [ -s "$log" ] || [ "$(wc -l <"$log")" -ne "$n" ]; then
        echo "generating $n lines -> $log"
        "$GENLOG" "$n" "$log"
    fi
    cat "$log" >/dev/null # warm the page cache so both tools read from memory

    best_v="" best_m=""
    for r in $(seq "$REPEAT"); do
        used=$driver
        if [ "$driver" = cli ]; then
            cfg="${BENCH_CONFIG:-}"
            if [ -z "$cfg" ] || ! run_timed "vip-$n-$r" "$WORK/vip-$n.out" \
                "$VIPWARDEN" replay --config "$cfg" --log "$log"; then
                echo "note: 'vipwarden replay' unusable here (set BENCH_CONFIG?); using examples/ingest"
                used=example
            fi
        fi
        if [ "$used" = example ]; then
            run_timed "vip-$n-$r" "$WORK/vip-$n.out" "$INGEST" "$log"
        fi
        w=$(wall_s "$WORK/vip-$n-$r.time")
        if [ -z "$best_v" ] || awk "BEGIN { exit !($w < $(wall_s "$WORK/$best_v.time")) }"; then
            best_v="vip-$n-$r"
        fi

        run_timed "mtail-$n-$r" "$WORK/mtail-$n.out" mtail --one_shot --one_shot_format prometheus \
            --address 127.0.0.1 --port 0 --logtostderr --progs "$mtail_prog_dir" --logs "$log"
        w=$(wall_s "$WORK/mtail-$n-$r.time")
        if [ -z "$best_m" ] || awk "BEGIN { exit !($w < $(wall_s "$WORK/$best_m.time")) }"; then
            best_m="mtail-$n-$r"
        fi
    done

    # mtail prints large counters as floats (1e+06): compare as integers.
    metric() { awk -v m="$1" '$1 ~ "^"m { printf "%d\n", $2 }' "$2"; }
    if [ "$used" = cli ]; then
        # "replayed signal web_log: L lines, R requests, E errors, ..."
        read -r v_req v_err < <(sed -n 's/^replayed signal [^:]*: [0-9]* lines, \([0-9]*\) requests, \([0-9]*\) errors.*/\1 \2/p' "$WORK/vip-$n.out")
    else
        v_req=$(metric requests_total "$WORK/vip-$n.out")
        v_err=$(metric errors_5xx_total "$WORK/vip-$n.out")
    fi
    m_req=$(metric requests_total "$WORK/mtail-$n.out")
    m_err=$(metric errors_5xx_total "$WORK/mtail-$n.out")
    v_wall=$(wall_s "$WORK/$best_v.time")
    m_wall=$(wall_s "$WORK/$best_m.time")
    results+=("$n|vipwarden ($used)|$v_wall|$(cpu_s "$WORK/$best_v.time")|$(rss_mib "$WORK/$best_v.time")|${v_req:-?}|${v_err:-?}")
    results+=("$n|mtail $(mtail --version 2>&1 | awk '{ print $3; exit }')|$m_wall|$(cpu_s "$WORK/$best_m.time")|$(rss_mib "$WORK/$best_m.time")|${m_req:-?}|${m_err:-?}")
    if [ "${v_req:-x}" != "${m_req:-y}" ] || [ "${v_err:-x}" != "${m_err:-y}" ]; then
        echo "WARNING: counts differ at $n lines (vipwarden $v_req/$v_err, mtail $m_req/$m_err)"
    fi
    echo "vipwarden at $n lines:"
    sed 's/^/    /' "$WORK/vip-$n.out"
done

echo
echo "ingest benchmark: nginx log, 1 CPU (taskset -c $CPU), best of $REPEAT; vipwarden driver: $driver"
echo "load average (1/5/15 min) at start: $load_start; at end: $(loadavg)"
echo "(lines/s = lines / wall time; lines/cpu_s = lines / (user+sys), less sensitive to other load)"
printf '%-10s %-24s %7s %7s %11s %11s %8s %9s %8s\n' \
    lines tool wall_s cpu_s lines/s lines/cpu_s rss_MiB requests 5xx
for row in "${results[@]}"; do
    IFS='|' read -r n tool wall cpu rss req err <<<"$row"
    rate=$(awk "BEGIN { printf \"%.0f\", $n / ($wall > 0 ? $wall : 0.001) }")
    crate=$(awk "BEGIN { printf \"%.0f\", $n / ($cpu > 0 ? $cpu : 0.001) }")
    printf '%-10s %-24s %7s %7s %11s %11s %8s %9s %8s\n' \
        "$n" "$tool" "$wall" "$cpu" "$rate" "$crate" "$rss" "$req" "$err"
done
echo
for n in $SIZES; do
    col() { printf '%s\n' "${results[@]}" | awk -F'|' -v n="$n" -v t="$1" -v c="$2" \
        '$1 == n && $2 ~ "^"t { print $c }'; }
    awk -v n="$n" -v vw="$(col vipwarden 3)" -v mw="$(col mtail 3)" \
        -v vc="$(col vipwarden 4)" -v mc="$(col mtail 4)" -v vr="$(col vipwarden 5)" \
        -v mr="$(col mtail 5)" 'BEGIN { if (vw <= 0) vw = 0.01; if (vc <= 0) vc = 0.01;
        printf "%s lines: vipwarden/mtail throughput %.1fx (wall), %.1fx (cpu); peak RSS %s vs %s MiB\n",
            n, mw / vw, mc / vc, vr, mr }'
done
