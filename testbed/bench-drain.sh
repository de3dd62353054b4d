#!/usr/bin/env bash
# What each kind of leave costs under load in an ECMP fabric (issue 12). Three nodes (fleet lab,
# lib/fleet-topology.sh) behind the BIRD ToR, which installs the VIP as a kernel ECMP route (`merge
# paths`, fib_multipath_hash_policy=1: L4 hash); the client reaches the VIP through that ToR only.
# Per case, a bounded python client (lib written below) runs LOAD_S seconds: KA keep-alive
# connections (one GET every 100 ms, each living 2-4 s, then reopened) plus one new connection
# every 50 ms; it counts resets, timeouts and non-2xx, attributing keep-alive failures to the node
# that served the connection. At 2 s node 1 leaves by:
#   abrupt     failing check (nftables drops node 1's own check traffic; nginx keeps serving), drain: withdraw
#   op-withdraw  `vipwarden drain web` with drain: withdraw
#   graceful   `vipwarden drain web`, drain: graceful, drain_period 2s (timed), MED 1000
#   conn-aware `vipwarden drain web`, drain: graceful, drain_until_connections 0, drain_min 1s, drain_period 10s
#   conn-idle  the same with drain_idle 2s: connections silent for 2 s no longer hold the drain
#   sigterm    SIGTERM to vipwarden, shutdown: graceful with the conn-aware settings
# Then the same five on a resilient nexthop group (`ip nexthop ... type resilient`): BIRD exports
# to kernel table 100 and a follower mirrors its ECMP set into the group (neither BIRD 2.0.12 nor
# FRR 8.4 can install one themselves); VW_BENCH_RESILIENT=0 skips it.
# Prints failed requests, connections reset on node 1 / on the other nodes, new connections failed,
# time until node 1 left the ToR's kernel ECMP route and until BGP withdrew it.
# A retrying client (a GET that failed on a reused keep-alive connection before any byte of the
# answer is sent once more on a new connection, as browsers and Go's net/http do) is counted apart.
#   bash testbed/bench-drain.sh        (root; takes the lab lock; ~3.5 min)
# Knobs: VW_BENCH_LOAD_S (8), VW_BENCH_KA (12), VW_BENCH_CASES (abrupt,op-withdraw,graceful,conn-aware,conn-idle,sigterm),
# VW_BENCH_SHORT=1 (op-withdraw, conn-aware and conn-idle, 5 s each: what CI runs as scenario 91, ~1.5 min).
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
# shellcheck source=lib/fleet-topology.sh
source "$VW_TESTBED_DIR/lib/fleet-topology.sh"

LOAD_S=${VW_BENCH_LOAD_S:-8}
KA=${VW_BENCH_KA:-12}
CASES=${VW_BENCH_CASES:-abrupt,op-withdraw,graceful,conn-aware,conn-idle,sigterm}
if [[ ${VW_BENCH_SHORT:-0} == 1 ]]; then
  LOAD_S=${VW_BENCH_LOAD_S:-5}
  CASES=${VW_BENCH_CASES:-op-withdraw,conn-aware,conn-idle}
fi
VW_HOLD_TIME=9
ROWS=()

N1_VIA=$(vw_fleet_node_bird 1)
# Nexthops of the VIP in the BIRD ToR's kernel, and whether node 1 is one of them.
# Resilient fabric: BIRD exports to kernel table 100 and lib's follower (below) mirrors that set into
# resilient nexthop group 100 (members 901-903 = nodes 1-3), which the main table's route uses.
FABRIC="hash"
kernel_nh() {
  if [[ $FABRIC == resilient ]]; then
    vw_in "$VW_NS_BIRD" ip nexthop show id 100 2>/dev/null | grep -o 'group [0-9/]*' | tr '/' '\n' | grep -c . || true
  else
    vw_in "$VW_NS_BIRD" ip route show "$VW_VIP4" | grep -c 'via ' || true
  fi
}
n1_in_kernel() {
  if [[ $FABRIC == resilient ]]; then
    vw_in "$VW_NS_BIRD" ip nexthop show id 100 2>/dev/null | grep -qE 'group ([0-9]+/)*901(/|$| )'
  else
    vw_in "$VW_NS_BIRD" ip route show "$VW_VIP4" | grep -qw "via $N1_VIA"
  fi
}
n1_in_bgp() { vw_birdc show route "$VW_VIP4_PREFIX" protocol node1 2>/dev/null | grep -q 'unicast \[node1'; }
all_three() { [[ $(kernel_nh) == 3 ]]; }

write_client() {
  cat >"$VW_RUN_DIR/load.py" <<'PY'
import json, random, socket, sys, threading, time
vip, dur, nka = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
end = time.monotonic() + dur
lock = threading.Lock()
st = {"req_ok": 0, "req_fail": 0, "reset_by_node": {}, "timeout_by_node": {}, "non2xx": 0,
      "new_ok": 0, "new_fail": 0, "new_reset": 0, "new_timeout": 0, "ka_conns": 0,
      "retried_ok": 0, "retried_fail": 0, "midway": 0}
REQ = b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: keep-alive\r\n\r\n"

class Midway(Exception):
    """The connection broke after part of the response arrived: not safe to retry."""

def one(c):
    c.sendall(REQ)
    data = b""
    while True:
        try:
            chunk = c.recv(4096)
        except OSError:
            if data:
                raise Midway()
            raise
        if not chunk:
            if data:
                raise Midway()
            raise ConnectionResetError("closed by peer")
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if len(body) >= (int(cl[0].split(b":")[1]) if cl else 0):
                break
    ok = data.startswith(b"HTTP/1.1 2")
    node = body.split(b"served by ")[-1].strip().decode() if b"served by" in body else "?"
    return ok, node

def fresh_get():
    """One GET on a new connection; True for a 2xx."""
    c = socket.create_connection((vip, 80), timeout=1)
    try:
        return one(c)[0]
    finally:
        c.close()

# What browsers, Go's net/http and most HTTP client libraries do: a request that fails on a
# *reused* keep-alive connection before any byte of the answer came back is sent again once on a
# new connection (RFC 9110 9.2.2: GET is idempotent). Counted apart, so both client kinds are seen.
def retry_once():
    try:
        bump("retried_ok" if fresh_get() else "retried_fail")
    except (OSError, Midway):
        bump("retried_fail")

def bump(k, node=None):
    with lock:
        if node is None:
            st[k] += 1
        else:
            st[k][node] = st[k].get(node, 0) + 1

def keepalive():
    while time.monotonic() < end:
        life = time.monotonic() + random.uniform(2, 4)
        node = "?"
        used = 0
        try:
            c = socket.create_connection((vip, 80), timeout=1)
        except OSError:
            bump("req_fail"); bump("new_fail"); time.sleep(0.1); continue
        bump("ka_conns")
        try:
            while time.monotonic() < min(life, end):
                ok, node = one(c)
                used += 1
                bump("req_ok" if ok else "req_fail")
                if not ok:
                    bump("non2xx")
                time.sleep(0.1)
        except Midway:
            bump("req_fail"); bump("midway"); bump("reset_by_node", node)
        except socket.timeout:
            bump("req_fail"); bump("timeout_by_node", node)
            if used:
                retry_once()
        except OSError:
            bump("req_fail"); bump("reset_by_node", node)
            if used:
                retry_once()
        finally:
            c.close()

def newconns():
    while time.monotonic() < end:
        try:
            if fresh_get():
                bump("req_ok"); bump("new_ok")
            else:
                bump("req_fail"); bump("non2xx"); bump("new_fail")
        except socket.timeout:
            bump("req_fail"); bump("new_fail"); bump("new_timeout")
        except (OSError, Midway):
            bump("req_fail"); bump("new_fail"); bump("new_reset")
        time.sleep(0.05)

ts = [threading.Thread(target=keepalive) for _ in range(nka)] + [threading.Thread(target=newconns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(st), flush=True)
PY
}

guard_for() {
  case $1 in
    abrupt | op-withdraw) printf '    drain: withdraw\n    shutdown: withdraw\n' ;;
    graceful) printf '    drain: graceful\n    drain_period: 2s\n    drain_until_connections: off\n    depreference: {med: 1000}\n    shutdown: withdraw\n' ;;
    conn-aware | conn-idle | sigterm)
      printf '    drain: graceful\n    drain_period: 10s\n    drain_until_connections: 0\n    drain_min: 1s\n'
      printf '    depreference: {med: 1000}\n    shutdown: graceful\n'
      [[ $1 != conn-idle ]] || printf '    drain_idle: 2s\n'
      ;;
  esac
}

# Node 1 fresh with the case's config (no persisted drain), all three paths in the ToR's kernel.
node1_reset() {
  vw_stop vipwarden1 TERM 15000
  vw_in vw-node1 nft delete table inet vwbench 2>/dev/null || true
  rm -rf "$VW_RUN_DIR/state1"
  VW_FLEET_GUARD=$(guard_for "$1") vw_fleet_vipwarden_start 1
  vw_wait_until now 30000 all_three >/dev/null || vw_die "node 1 not back in the ECMP route ($(kernel_nh) nexthops)"
  sleep 1
}

leave() {
  case $1 in
    abrupt)
      vw_in vw-node1 nft -f - <<'EOF'
table inet vwbench {
  chain out { type filter hook output priority 0; oif "lo" tcp dport 80 drop; }
}
EOF
      ;;
    op-withdraw | graceful | conn-aware | conn-idle) vw_fleet_cli 1 drain web --reason bench >/dev/null ;;
    sigterm) vw_signal vipwarden1 TERM ;;
  esac
}

run_case() {
  local c=$1 t0 ms_k ms_b out drain_end
  vw_info "case $c"
  node1_reset "$c"
  rm -f "$VW_RUN_DIR/load-$c.log"
  vw_spawn "load-$c" "$VW_NS_CLIENT" "$VW_RUN_DIR/load-$c.log" python3 "$VW_RUN_DIR/load.py" "$VW_VIP4" "$LOAD_S" "$KA"
  sleep 2
  local mark
  mark=$(wc -l <"$VW_RUN_DIR/vipwarden1.log")
  t0=$(vw_now_ms)
  leave "$c"
  ms_k=$(vw_wait_until "$t0" 15000 vw_not n1_in_kernel) || ms_k=">$ms_k"
  ms_b=$(vw_wait_until "$t0" 15000 vw_not n1_in_bgp) || ms_b=">$ms_b"
  vw_wait_pid_exit "$(vw_pid_of "load-$c")" $(((LOAD_S + 10) * 1000)) || vw_die "load client did not finish"
  out=$(tail -n 1 "$VW_RUN_DIR/load-$c.log")
  # How the drain ended, in vipwarden's own words (connection-aware cases).
  drain_end=$(tail -n +$((mark + 1)) "$VW_RUN_DIR/vipwarden1.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'withdrew web after drain: .*' | tail -n 1 || true)
  ROWS+=("$(python3 - "$c" "$ms_k" "$ms_b" "$out" "$FABRIC" "$drain_end" 2>>"$VW_RUN_DIR/bench-rows.jsonl" <<'PY'
import json, sys
c, k, b, d = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
r, t = d["reset_by_node"], d["timeout_by_node"]
n1 = r.get("vw-node1", 0) + t.get("vw-node1", 0)
oth = sum(v for n, v in list(r.items()) + list(t.items()) if n != "vw-node1")
tot = d["req_ok"] + d["req_fail"]
lost = d["req_fail"] - d["retried_ok"]
print(f"| {c} | {sys.argv[5]} | {d['req_fail']} / {tot} | {lost} | {n1} | {oth} | {d['new_fail']} | {d['non2xx']} | {k} | {b} |")
# One machine-readable line per case, for scenario 91 (the short version CI runs).
oth_resets = sum(v for n, v in r.items() if n != "vw-node1")
print("bench-row: " + json.dumps({"case": c, "fabric": sys.argv[5], "requests": tot, "failed": d["req_fail"],
      "failed_retrying": lost, "node1": n1, "others": oth, "others_resets": oth_resets,
      "new_failed": d["new_fail"], "non2xx": d["non2xx"], "out_of_ecmp_ms": k, "bgp_withdrawn_ms": b, "drain_end": sys.argv[6]}),
      file=sys.stderr)
PY
)")
  vw_info "${ROWS[-1]}"
}

# Can this kernel build a resilient nexthop group at all? (The ToR daemons would have to ask for one.)
resilient_probe() {
  local ns=$VW_NS_BIRD i
  for i in 1 2 3; do
    vw_in "$ns" ip nexthop add id $((900 + i)) via "$(vw_fleet_node_bird "$i")" dev "bird-n$i" 2>/dev/null || return 1
  done
  vw_in "$ns" ip nexthop add id 990 group 901/902/903 type resilient buckets 64 2>&1 || return 1
  vw_in "$ns" ip nexthop del id 990 >/dev/null 2>&1 || true
  for i in 1 2 3; do vw_in "$ns" ip nexthop del id $((900 + i)) >/dev/null 2>&1 || true; done
}

# Switch the ToR to a resilient nexthop group: BIRD's ECMP set goes to table 100, a follower (10 ms
# poll) mirrors it into group 100 (type resilient, 64 buckets) used by the main table's VIP route.
resilient_up() {
  local i conf=$VW_RUN_DIR/bird/bird.conf
  for i in 1 2 3; do
    vw_in "$VW_NS_BIRD" ip nexthop replace id $((900 + i)) via "$(vw_fleet_node_bird "$i")" dev "bird-n$i"
  done
  sed -i 's/^  merge paths on;$/  kernel table 100;\n  merge paths on;/' "$conf"
  vw_birdc configure >/dev/null
  vw_in "$VW_NS_BIRD" ip route del "$VW_VIP4" 2>/dev/null || true
  cat >"$VW_RUN_DIR/follow.py" <<'PY'
import subprocess, sys, time
vip, vias = sys.argv[1], sys.argv[2].split(",")
ids = {v: str(901 + i) for i, v in enumerate(vias)}
cur = None
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    out = subprocess.run(["ip", "route", "show", vip, "table", "100"], capture_output=True, text=True).stdout
    members = sorted(ids[v] for v in vias if f"via {v} " in out)
    if members != cur:
        if members:
            subprocess.run(["ip", "nexthop", "replace", "id", "100", "group", "/".join(members),
                            "type", "resilient", "buckets", "64", "idle_timer", "0"], check=False)
            subprocess.run(["ip", "route", "replace", vip, "nhid", "100"], check=False)
        else:
            subprocess.run(["ip", "route", "del", vip], check=False)
        print(time.time(), members, flush=True)
        cur = members
    time.sleep(0.01)
PY
  vw_spawn follow "$VW_NS_BIRD" "$VW_RUN_DIR/follow.log" python3 "$VW_RUN_DIR/follow.py" "$VW_VIP4" \
    "$(vw_fleet_node_bird 1),$(vw_fleet_node_bird 2),$(vw_fleet_node_bird 3)" 600
  FABRIC=resilient
}

vw_run_dir_init
vw_install_cleanup_trap
vw_fleet_up
# The client goes through the BIRD ToR only: its kernel ECMP route is the one measured.
vw_in "$VW_NS_CLIENT" ip route replace 203.0.113.0/24 via "$VW_BIRD_CL_V4"
for i in 2 3; do vw_fleet_vipwarden_start "$i"; done
write_client
IFS=, read -r -a case_list <<<"$CASES"
for c in "${case_list[@]}"; do run_case "$c"; done
RES="not measured"
if [[ ${VW_BENCH_RESILIENT:-1} == 1 ]] && res=$(resilient_probe 2>&1); then
  resilient_up
  for c in "${case_list[@]}"; do run_case "$c"; done
  RES="measured above (ToR: BIRD's ECMP set mirrored into 'ip nexthop ... type resilient buckets 64' by the bench, since BIRD 2.0.12 installs RTA_MULTIPATH routes and FRR 8.4 zebra hash-threshold groups for BGP multipath: neither asks for a resilient group)"
elif res=$(resilient_probe 2>&1); then
  RES="kernel accepts 'ip nexthop ... type resilient'; BIRD 2.0.12 installs its ECMP routes as RTA_MULTIPATH (no nexthop objects) and FRR 8.4 zebra hash-threshold groups for BGP multipath: not measured"
else
  RES="kernel refuses a resilient nexthop group: ${res:-error}"
fi

echo
echo "ECMP ToR: BIRD 2.0.12, kernel multipath (hash = hash-threshold; resilient = nexthop group type resilient), fib_multipath_hash_policy=1; load ${LOAD_S}s/case, $KA keep-alive conns (2-4 s each) + 20 new conns/s; node 1 leaves at 2 s"
echo
echo "| case | ToR hashing | failed requests | lost by a retrying client | conns reset/timed out on node 1 | on other nodes | new conns failed | non-2xx | out of ECMP (ms) | BGP withdrawn (ms) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
cat "$VW_RUN_DIR/bench-rows.jsonl"
echo
echo "resilient nexthop group: $RES"
