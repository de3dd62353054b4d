#!/usr/bin/env bash
# Connection-aware graceful drain: keep-alive connections from vw-client to
# the VIP stay open while `vipwarden drain web` runs (drain: graceful,
# drain_period 20 s, drain_min 1 s, drain_until_connections left at its
# default, 0); the route
# must stay (de-preferred) while they are open and leave the router once they
# close (the client closes them after HOLD_MS), well before drain_period.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
DRAIN_PERIOD_MS=20000
HOLD_MS=3000
vw_test_begin "connection-aware drain: route withdrawn when keep-alive connections close, before drain_period"

vw_start_vipwarden_and_wait top_extra="$(vw_api_yaml)" vip_extra="    drain: graceful
    drain_period: $((DRAIN_PERIOD_MS / 1000))s
    drain_min: 1s
    depreference: {med: 1000}
    shutdown: withdraw"
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"

# 4 keep-alive HTTP/1.1 connections, one request each every 250 ms, closed
# after HOLD_MS; prints what each connection got (bounded in time and count).
cat >"$VW_RUN_DIR/keepalive.py" <<PY
import socket, time, sys
vip, hold = sys.argv[1], float(sys.argv[2])
conns = [socket.create_connection((vip, 80), timeout=2) for _ in range(4)]
print("open", len(conns), flush=True)
ok = bad = 0
end = time.monotonic() + hold
while time.monotonic() < end:
    for c in conns:
        try:
            c.sendall(b"HEAD / HTTP/1.1\r\nHost: vip\r\nConnection: keep-alive\r\n\r\n")
            data = c.recv(65536)
            ok += data.startswith(b"HTTP/1.1 200")
            bad += not data.startswith(b"HTTP/1.1 200")
        except OSError as e:
            bad += 1
            print("error", e, flush=True)
    time.sleep(0.25)
for c in conns:
    c.close()
print("closed ok", ok, "bad", bad, flush=True)
PY
vw_spawn keepalive "$VW_NS_CLIENT" "$VW_RUN_DIR/keepalive.log" \
  python3 "$VW_RUN_DIR/keepalive.py" "$VW_VIP4" "$(awk "BEGIN{print $HOLD_MS/1000}")"
opened() { grep -q '^open 4' "$VW_RUN_DIR/keepalive.log"; }
vw_wait_until now 3000 opened >/dev/null || vw_fail "keep-alive client did not connect: $(cat "$VW_RUN_DIR/keepalive.log")"

t0=$(vw_now_ms)
vw_cli drain web --reason lab >&2 || vw_fail "vipwarden drain web failed"
ms_g=$(vw_wait_until "$t0" 5000 has_gshut) || vw_fail "no 65535:0 at $VW_RLABEL after the drain"
closed() { grep -q '^closed' "$VW_RUN_DIR/keepalive.log"; }
# The route must stay, de-preferred, for as long as the connections are open.
while ! closed; do
  has4 || vw_fail "route left $VW_RLABEL $(($(vw_now_ms) - t0)) ms after the drain while connections were open"
  (($(vw_now_ms) - t0 < HOLD_MS + 5000)) || vw_fail "client did not close: $(cat "$VW_RUN_DIR/keepalive.log")"
  sleep 0.05
done
ms_c=$(($(vw_now_ms) - t0))
ms_w=$(vw_wait_until "$t0" "$DRAIN_PERIOD_MS" vw_not has4) ||
  vw_fail "route still at $VW_RLABEL ${ms_w} ms after the drain although the connections closed at ${ms_c} ms"
vw_info "client: $(tr '\n' ' ' <"$VW_RUN_DIR/keepalive.log")"
grep -q 'bad 0' "$VW_RUN_DIR/keepalive.log" || vw_fail "requests failed during the drain: $(cat "$VW_RUN_DIR/keepalive.log")"
vw_vipwarden_log_has 'withdrew web after drain: 0 connections left after' ||
  vw_fail "no 'withdrew web after drain: 0 connections left' line: $(vw_vipwarden_log | grep -i drain | tail -3)"
vw_info "$(vw_vipwarden_log | grep -o 'withdrew web after drain.*' | tail -1)"
# The drain's progress is in the events (from and to both draining): the open connections
# (4, plus any check connection of the moment) before they close.
events=$(vw_cli events --json) || vw_fail "vipwarden events failed"
progress=$(python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["from"] == "draining" and e["to"] == "draining"]
print("; ".join(e["reason"] for e in ev))' <<<"$events")
vw_info "drain progress in the events: $progress"
[[ $progress =~ drain:\ [4-9]\ connections\ left\ after ]] ||
  vw_fail "no event with the 4 open connections left: $progress"
vw_measured "drain -> 65535:0 at the router" "$ms_g"
vw_measured "drain -> client closed its connections" "$ms_c"
vw_measured "drain -> route withdrawn (drain_period=${DRAIN_PERIOD_MS}ms)" "$ms_w"
vw_measured "connections closed -> route withdrawn" $((ms_w - ms_c))
# Not before the connections closed (asserted above; the client's HOLD_MS began before t0).
vw_expect_within "drain -> withdrawn" "$ms_c" $((DRAIN_PERIOD_MS - 5000)) "$ms_w"
vw_pass "route held ${ms_c} ms while 4 keep-alive connections were open, withdrawn ${ms_w} ms after the drain ($((ms_w - ms_c)) ms after they closed; drain_period ${DRAIN_PERIOD_MS} ms), no failed request"
