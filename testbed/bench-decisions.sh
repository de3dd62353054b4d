#!/usr/bin/env bash
# Decision-batch benchmark: N VIPs (N = 1k, 10k, 100k; one /32 each) over 100 TCP checks of one
# local listener, all passing with rise 1, and one BGP session to a minimal router on loopback
# (testbed/bench/fake_router.py) that counts prefixes and times the daemon's silences.
#
# Prints per N: the decision batch (first to last "vip ... -> announced" in the daemon's log, its own
# clock), start -> all N prefixes at the router, the longest silence of the session (the router
# offers hold time 9 s: a silence near 9 s is a reset), NOTIFICATIONs and sessions (1 = no reset),
# and peak RSS.
#
# Loopback only, no namespaces, no lab lock needed. Usage:
#   testbed/bench-decisions.sh            (env: BENCH_SIZES="1000 10000 100000",
#                                          VIPWARDEN_BIN=target/release/vipwarden, BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${BENCH_SIZES:-1000 10000 100000}"
BIN="${VIPWARDEN_BIN:-target/release/vipwarden}"
WORK="${BENCH_DIR:-testbed/run/bench-decisions}"
CHECKS=100
LIMIT_S=120
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
[ -x "$BIN" ] || cargo build --release --quiet --bin vipwarden

pids=()
failed=0
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

printf '%8s %14s %16s %16s %6s %8s %10s\n' VIPS "batch (ms)" "all at router" "longest silence" NOTIF sessions "peak RSS"
for n in $SIZES; do
    dir="$WORK/n$n"
    rm -rf "$dir"
    mkdir -p "$dir/state"
    bgp=$(free_port)
    svc=$(free_port)
    api=$(free_port)
    python3 testbed/bench/fake_router.py --port "$bgp" --service-port "$svc" --hold 9 \
        --expect "$n" --out "$dir/router.json" --limit "$LIMIT_S" &
    router=$!
    pids+=("$router")
    python3 - "$dir/vipwarden.yaml" "$n" "$CHECKS" "$bgp" "$svc" "$api" "$dir/state" <<'PY'
import ipaddress, sys
path, n, checks, bgp, svc, api, state = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
with open(path, "w") as f:
    f.write(f"router_id: 192.0.2.1\nlocal_as: 65101\nstate_dir: {state}\napi: {{listen: '127.0.0.1:{api}'}}\n")
    f.write(f"peers:\n  - {{name: tor, address: 127.0.0.1, port: {bgp}, remote_as: 65000, next_hop_v4: 192.0.2.1}}\n")
    f.write("checks:\n")
    for c in range(checks):
        f.write(f"  - {{name: c{c}, type: tcp, target: '127.0.0.1:{svc}', interval: 1s, timeout: 500ms, rise: 1, fall: 1}}\n")
    f.write("vips:\n")
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for v in range(n):
        f.write(f"  - {{name: v{v}, prefixes: ['{ipaddress.IPv4Address(base + v)}/32'], checks: [c{v % checks}]}}\n")
PY
    sleep 0.3
    /usr/bin/time -f '%M' -o "$dir/rss" "$BIN" run --log-format json --config "$dir/vipwarden.yaml" \
        >"$dir/stdout" 2>"$dir/vipwarden.log" &
    daemon=$!
    pids+=("$daemon")
    # A daemon that exits early (bad config) ends the run at once.
    while kill -0 "$router" 2>/dev/null; do
        kill -0 "$daemon" 2>/dev/null || kill "$router" 2>/dev/null || true
        sleep 0.2
    done
    wait "$router" || true
    [ -s "$dir/router.json" ] || { echo "N=$n: no result; daemon log:"; tail -5 "$dir/vipwarden.log"; failed=1; continue; }
    # $daemon is GNU time; its child is vipwarden (a planned stop, so time writes the peak RSS).
    child=$(pgrep -P "$daemon" || true)
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    python3 - "$n" "$dir" <<'PY'
import json, sys, datetime
n, d = int(sys.argv[1]), sys.argv[2]
ts = []
for line in open(f"{d}/vipwarden.log"):
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if e.get("to") == "announced":
        ts.append(datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")))
r = json.load(open(f"{d}/router.json"))
batch = (max(ts) - min(ts)).total_seconds() * 1000 if ts else float("nan")
rss = open(f"{d}/rss").read().split()[-1]
all_at = f"{r['all_at_s'] * 1000:.0f} ms" if r["all_at_s"] is not None else f"NOT ({r['prefixes']})"
print(f"{n:8d} {batch:14.0f} {all_at:>16} {r['max_gap_s'] * 1000:13.0f} ms {r['notifications']:6d} {r['sessions']:8d} {int(rss) // 1024:7d} MB")
PY
done
# A size that gave no result makes the whole run fail: a benchmark that cannot run is not a figure.
exit "$failed"
