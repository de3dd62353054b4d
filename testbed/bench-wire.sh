#!/usr/bin/env bash
# Decision to wire, side by side in one run: how long a route change takes from the moment the
# node decides it to the UPDATE on the link, and from the operator's trigger to the wire.
#
# Two namespaces joined by a veth pair: the node (vw-wire-n, 198.51.100.2) and a passive gobgpd
# ToR (vw-wire-t, 198.51.100.1); tcpdump on the ToR's end of the link dates every UPDATE from the
# node (lib/bgp_wire.py, capture clock = the wall clock). The trigger is a maintenance file,
# created and removed N times each (VW_WIRE_N, default 150), VW_WIRE_GAP_MS (default 200) apart:
#   vipwarden   vips[].disable_file; the decision is the route-change log line ("vip web announced
#               -> withdrawn: ..."), dated in microseconds when the daemon decides, before it
#               hands the routes to the session
#   ExaBGP      healthcheck --disable FILE at --interval/--fast-interval 0.1 s (its fastest
#               working setting); its decision is made in the healthcheck process and is not
#               dated finer than the second, so only trigger to wire is printed for it
# Each decision is matched to the first UPDATE after it that moves the route the same way
# (announce or withdraw) before the next trigger, each UPDATE used once; a trigger or decision
# without one is counted as "no wire", never charged to a later UPDATE. p50/p99/max (nearest
# rank) over the matched ones. Prints the load average.
#   bash testbed/bench-wire.sh         (root; ~5 min)
#   env: VW_WIRE_N, VW_WIRE_GAP_MS, VIPWARDEN_BIN (another build; default: build the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # $EPOCHREALTIME and printf's decimals with a point

N=${VW_WIRE_N:-150}
GAP_MS=${VW_WIRE_GAP_MS:-200}
NODE=vw-wire-n
TOR=vw-wire-t
# shellcheck source=lib/standalone.sh
source testbed/lib/standalone.sh

route_at_tor() {
    sa_rib "$TOR" 50053 | grep -q '203.0.113.10/32'
}

# wait_route yes|no
wait_route() {
    for _ in $(seq 300); do
        if [[ $1 == yes ]]; then route_at_tor && return 0; else route_at_tor || return 0; fi
        sleep 0.1
    done
    echo "the ToR never saw the route $([[ $1 == yes ]] && echo come || echo go); logs in $RUN" >&2
    tail -n 20 "$RUN"/*.log >&2
    exit 1
}

setup() {
    ip netns add "$NODE"
    ip netns add "$TOR"
    ip link add vw-wire0 netns "$NODE" type veth peer name vw-wire1 netns "$TOR"
    ip -n "$NODE" link set lo up
    ip -n "$TOR" link set lo up
    ip -n "$NODE" addr add 198.51.100.2/24 dev vw-wire0
    ip -n "$TOR" addr add 198.51.100.1/24 dev vw-wire1
    ip -n "$NODE" link set vw-wire0 up
    ip -n "$TOR" link set vw-wire1 up
    ip -n "$NODE" addr add 203.0.113.10/32 dev lo
    sa_gobgpd "$TOR" 50053
    sa_start "$NODE" web python3 -m http.server 80 --bind 203.0.113.10
    sleep 1
}

# toggle NAME: creates and removes the maintenance file N times each, GAP_MS apart, recording
# each trigger ("US withdraw|announce") in $RUN/NAME.triggers.
toggle() {
    local name=$1 i gap
    gap=$(awk -v ms="$GAP_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
    : >"$RUN/$name.triggers"
    for i in $(seq "$N"); do
        echo "${EPOCHREALTIME/./} withdraw" >>"$RUN/$name.triggers"
        : >"$RUN/disable"
        sleep "$gap"
        echo "${EPOCHREALTIME/./} announce" >>"$RUN/$name.triggers"
        rm -f "$RUN/disable"
        sleep "$gap"
    done
}

# capture NAME: tcpdump of BGP on the ToR's end of the link into $RUN/NAME.pcap; PID in LAST_PID.
capture() {
    sa_start "$TOR" "tcpdump-$1" tcpdump -i vw-wire1 --immediate-mode -U -n -s 0 -w "$RUN/$1.pcap" tcp port 179
    sleep 1
}

run_vipwarden() {
    cat >"$RUN/vipwarden.yaml" <<EOF
router_id: 198.51.100.2
local_as: 65101
api: {listen: "127.0.0.1:9182"}
state_dir: $RUN/state
peers: [{name: tor, address: 198.51.100.1, local_address: 198.51.100.2, remote_as: 65000}]
checks:
  - {name: web, type: listener, address: 203.0.113.10, port: 80}
vips: [{name: web, prefixes: [203.0.113.10/32], checks: [web], disable_file: $RUN/disable}]
EOF
    local pid cap
    rm -f "$RUN/disable"
    capture vipwarden
    cap=$LAST_PID
    sa_start "$NODE" vipwarden "$VIPWARDEN" run --config "$RUN/vipwarden.yaml"
    pid=$LAST_PID
    wait_route yes
    sleep 1
    toggle vipwarden
    sleep 1
    sa_stop "$pid"
    wait_route no
    sa_stop "$cap"
}

run_exabgp() {
    cat >"$RUN/exabgp.conf" <<EOF
process watch-web {
    run /usr/bin/python3 -m exabgp healthcheck --cmd "curl -sf http://203.0.113.10/" --ip 203.0.113.10/32 --no-ip-setup --interval 0.1 --fast-interval 0.1 --rise 1 --fall 1 --no-syslog --withdraw-on-down --disable $RUN/disable;
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
    local pid cap
    rm -f "$RUN/disable"
    capture exabgp
    cap=$LAST_PID
    sa_start "$NODE" exabgp env exabgp.daemon.user=root exabgp.daemon.drop=false exabgp.log.destination=stderr \
        exabgp.api.cli=false exabgp "$RUN/exabgp.conf"
    pid=$LAST_PID
    wait_route yes
    sleep 1
    toggle exabgp
    sleep 1
    sa_stop "$pid"
    wait_route no
    sa_stop "$cap"
}

# report NAME TOOL [DAEMON_LOG]: one table row from the triggers, the capture and, for vipwarden,
# the decisions in the daemon's log.
report() {
    python3 - "$RUN/$1.triggers" "$RUN/$1.wire" "$2" "${3:-}" <<'PYEOF'
import bisect, datetime, math, re, sys

triggers = [(int(t), k) for t, k in (l.split() for l in open(sys.argv[1]))]
wire = [(int(t), k) for t, k in (l.split() for l in open(sys.argv[2]))]
tool, log = sys.argv[3], sys.argv[4]

def match(starts, kind_of, bounds):
    """For each start (us), the first unused UPDATE of its kind at or after it and before the
    next trigger (bounds: the trigger times): (latencies, misses). An UPDATE is used once, so a
    cycle that put nothing on the wire is a miss, never charged to a later cycle's UPDATE."""
    used, lat, misses = set(), [], 0
    for us, kind in zip(starts, kind_of):
        j = bisect.bisect_right(bounds, us)
        end = bounds[j] if j < len(bounds) else float("inf")
        i = bisect.bisect_left(wire, (us, ""))
        hit = next((n for n in range(i, len(wire)) if wire[n][0] >= end or
                    (wire[n][1] == kind and n not in used)), None)
        if hit is None or wire[hit][0] >= end:
            misses += 1
        else:
            used.add(hit)
            lat.append(wire[hit][0] - us)
    return lat, misses

def stats(xs):
    """p50 / p99 / max in ms (nearest rank)."""
    if not xs:
        return "-"
    xs = sorted(xs)
    rank = lambda q: xs[max(0, math.ceil(q * len(xs)) - 1)]
    return f"{rank(0.5) / 1000:.2f} / {rank(0.99) / 1000:.2f} / {xs[-1] / 1000:.2f}"

bounds = [t for t, _ in triggers]
trig_wire, trig_missed = match(bounds, [k for _, k in triggers], bounds)

decisions = []
if log:
    line = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s+INFO vip web (\w+) -> (\w+): (.*)")
    for l in open(log):
        m = line.match(l)
        # Only the maintenance file's decisions (not the first announcement or the planned stop).
        if not m or not ("disable file" in m.group(4) or "out of maintenance" in m.group(4)):
            continue
        at = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
        # announced, draining (drain attributes) and held (by the guard) keep the route out.
        kind = "withdraw" if m.group(3) in ("withdrawn", "maintenance") else "announce"
        decisions.append((round(at.timestamp() * 1_000_000), kind))
dec_wire, dec_missed = match([d for d, _ in decisions], [k for _, k in decisions], bounds)

dec = f"{len(decisions)} ({dec_missed})" if log else "-"
print(f"| {tool:28} | {len(triggers):8} | {trig_missed:7} | {stats(trig_wire):>26} | "
      f"{dec:>12} | {stats(dec_wire) if log else 'n/a':>26} |")
PYEOF
}

main() {
    sa_init vw-wire "$NODE" "$TOR"
    sa_need gobgpd exabgp tcpdump curl
    sa_vipwarden
    setup
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "vipwarden: $N maintenance-file cycles, ${GAP_MS} ms apart"
    run_vipwarden
    echo "ExaBGP healthcheck: the same"
    run_exabgp
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    local t
    for t in vipwarden exabgp; do
        python3 testbed/lib/bgp_wire.py "$RUN/$t.pcap" 198.51.100.2 0 list >"$RUN/$t.wire"
    done
    echo
    printf '| %-28s | %8s | %7s | %26s | %12s | %26s |\n' tool triggers "no wire" "trigger to wire ms p50/p99/max" "decisions (no wire)" "decision to wire ms p50/p99/max"
    printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------------" "----------" "---------" "----------------------------" "--------------" "----------------------------"
    report vipwarden "vipwarden $("$VIPWARDEN" --version | awk '{print $2}')" "$RUN/vipwarden.log"
    report exabgp "exabgp $(exabgp --version 2>&1 | awk '/ExaBGP/ {print $3}') + healthcheck"
}

main "$@"
