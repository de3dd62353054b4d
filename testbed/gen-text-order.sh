#!/usr/bin/env bash
# Writes link/text-order.txt: the functions a running daemon executes, which build.rs hands to
# the linker (lld --symbol-ordering-file) so they sit together at the start of .text.
#
# Why: the kernel maps a binary's text in 64 KB windows around each page a process touches
# (fault-around), so resident text follows how widely the executed code is spread, not how much
# of it runs. In the default layout the ~2 MB that runs is spread over the whole 11.6 MB text
# and ~9 MB of it ends up resident; laid out together, under 3 MB is
# (testbed/footprint-vs-exabgp.sh measures it).
#
# How: the release daemon runs under valgrind's callgrind in a namespace of its own (vw-order)
# against a passive gobgpd, twice: one service with one HTTP check, then the kinds of work a node
# does every day (http, tcp, listener and process checks, an access log and TCP statistics as
# signals, three VIPs), each with /metrics and /v1/status scrapes, a SIGHUP reload and a planned
# stop. Every function of the binary that ran at least once is listed, the first run's first.
# Symbol names carry hashes of the compiler version, the crate's version and the dependencies'
# versions, and ThinLTO adds a hash of the surrounding code to some (".llvm.N"), so re-run this
# after a toolchain, version or Cargo.lock change, or when the footprint benchmark's "text layout"
# line finds fewer of the names; names the linker does not find are ignored.
#   bash testbed/gen-text-order.sh
#   env: VW_ORDER_SECS (default 30: seconds of steady work under callgrind)
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${VW_ORDER_SECS:-30}
NS=vw-order
OUT=link/text-order.txt
# shellcheck source=lib/standalone.sh
source testbed/lib/standalone.sh

in_ns() { ip netns exec "$NS" "$@"; }
start() { sa_start "$NS" "$@"; }

route_at_peer() {
    sa_rib "$NS" 50052 | grep -q "$1"
}

setup_namespace() {
    ip netns add "$NS"
    in_ns ip link set lo up
    local a
    for a in 198.51.100.1/32 198.51.100.2/32 203.0.113.10/32 203.0.113.11/32; do
        in_ns ip addr add "$a" dev lo
    done
    sa_gobgpd "$NS" 50052
    start web python3 -m http.server 80 --bind 203.0.113.10
    echo "$LAST_PID" >"$RUN/web.pid"
    : >"$RUN/access.log"
    sleep 1
}

# The commonest node: one service, one HTTP check, scraped by Prometheus.
# config_head NAME: what both configs share (the node, the API, the peer).
config_head() {
    cat <<EOF
router_id: 198.51.100.2
local_as: 65101
api: {listen: "127.0.0.1:9181"}
state_dir: $RUN/state-$1
peers: [{name: peer, address: 198.51.100.1, local_address: 198.51.100.2, remote_as: 65000}]
EOF
}

write_config_one() {
    config_head one >"$RUN/one.yaml"
    cat >>"$RUN/one.yaml" <<EOF
checks:
  - {name: web, type: http, url: "http://203.0.113.10/", interval: 1s, timeout: 500ms, rise: 2, fall: 2}
vips: [{name: web, prefixes: [203.0.113.10/32], checks: [web]}]
EOF
}

# Every kind of work a node does daily, on top of the above.
write_config_many() {
    config_head many >"$RUN/many.yaml"
    cat >>"$RUN/many.yaml" <<EOF
checks:
  - {name: web_http, type: http, url: "http://203.0.113.10/", interval: 1s, timeout: 500ms}
  - {name: web_tcp, type: tcp, target: "203.0.113.10:80", interval: 1s, timeout: 500ms}
  - {name: web_listen, type: listener, address: 203.0.113.10, port: 80}
  - {name: web_proc, type: process, pid_file: $RUN/web.pid}
signals:
  - {name: web_log, type: access_log, path: $RUN/access.log, format: nginx, window: 30s}
  - {name: tcp, type: tcp_stats, interval: 1s, window: 30s, ports: [80]}
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web_http, web_tcp, web_listen]
    withdraw_when:
      - {signal: web_log.error_ratio, above: 0.5, for: 10s, min_requests: 50}
      - {signal: tcp.accept_queue_fill_max, above: 0.9, for: 5s}
  - {name: web2, prefixes: [203.0.113.11/32], checks: [web_http]}
  # valgrind 3.19 lacks pidfd_open, so this check fails under callgrind (its polling path runs).
  - {name: web3, prefixes: [203.0.113.12/32], checks: [web_proc]}
EOF
}

# Appends a few nginx lines every half second (bounded: the run's length and then some).
write_access_log() {
    local i n=$((SECS * 2 + 240))
    for i in $(seq "$n"); do
        printf '203.0.113.77 - - [%s] "GET /item/%d HTTP/1.1" 200 612 "-" "curl/7.88" 0.00%d\n' \
            "$(date -u '+%d/%b/%Y:%H:%M:%S +0000')" "$i" $((i % 10)) >>"$RUN/access.log"
        sleep 0.5
    done
}

# profile NAME PREFIX: runs the daemon with $RUN/NAME.yaml under callgrind until PREFIX is at the
# peer, then SECS of work (scrapes every 2 s, a SIGHUP half-way), then a planned stop; leaves
# $RUN/NAME.callgrind.
profile() {
    local name=$1 prefix=$2 pid ok= t
    start "$name" valgrind --tool=callgrind --demangle=no --callgrind-out-file="$RUN/$name.callgrind" \
        "$BIN" run --config "$RUN/$name.yaml"
    pid=$LAST_PID
    echo "$name: the daemon under callgrind (startup, then ${SECS}s of work)"
    for _ in $(seq 600); do
        if route_at_peer "$prefix"; then ok=1 && break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if [[ -z $ok ]]; then
        echo "$prefix never reached the peer; daemon log:" >&2
        tail -n 30 "$RUN/$name.log" >&2
        exit 1
    fi
    for t in $(seq "$SECS"); do
        if ((t % 2 == 0)); then
            in_ns curl -sf -o /dev/null http://127.0.0.1:9181/metrics || true
            in_ns curl -sf -o /dev/null http://127.0.0.1:9181/v1/status || true
        fi
        ((t == SECS / 2)) && kill -HUP "$pid"
        sleep 1
    done
    # callgrind writes its file at exit: give it time.
    sa_stop "$pid" 30
    [ -s "$RUN/$name.callgrind" ] || {
        echo "callgrind wrote nothing; daemon log:" >&2
        tail -n 30 "$RUN/$name.log" >&2
        exit 1
    }
    # The peer forgets the routes with the session; wait so the next run starts clean.
    for _ in $(seq 100); do route_at_peer "$prefix" || break; sleep 0.1; done
}

main() {
    sa_init vw-order "$NS"
    sa_need valgrind gobgpd curl
    cargo build --release --quiet --bin vipwarden
    BIN=$PWD/target/release/vipwarden
    setup_namespace
    write_config_one
    write_config_many
    profile one 203.0.113.10/32
    write_access_log &
    SA_PIDS+=("$!")
    profile many 203.0.113.11/32
    mkdir -p "$(dirname "$OUT")"
    {
        echo "# Functions the release daemon executed, for lld --symbol-ordering-file (build.rs): first"
        echo "# those of one service with one HTTP check, then those more kinds of work add."
        echo "# Written by testbed/gen-text-order.sh; re-run it after a toolchain, version or Cargo.lock"
        echo "# change, or when testbed/footprint-vs-exabgp.sh finds fewer of these names in the binary."
        echo "# $(rustc --version) (the rustc on PATH, which cargo uses unless told otherwise)"
        python3 testbed/lib/callgrind_symbols.py "$BIN" "$RUN/one.callgrind" "$RUN/many.callgrind"
    } >"$RUN/text-order.txt"
    mv "$RUN/text-order.txt" "$OUT"
    echo "$OUT: $(grep -vc '^#' "$OUT") functions"
}

main "$@"
