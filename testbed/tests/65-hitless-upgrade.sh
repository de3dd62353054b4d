#!/usr/bin/env bash
# In-place upgrade (SIGUSR2): vipwarden starts the binary now at its path and
# hands it every Established BGP session and its decision state, then exits.
# VW_UPGRADES (default 5; 50 for the long run) upgrades in a row, the binary
# file replaced before each one (the running one shows "(deleted)"), under
# client load, with BFD (300 ms x 3) where the router has it (BIRD, FRR bfdd;
# on BIRD with Meticulous Keyed SHA1 authentication, so its sequence numbers are handed over).
# Counted at the router: session resets (0), UPDATEs received (0 beyond
# KEEPALIVEs), BFD state changes (0), failed client requests (0); the hand-over
# time (signal to new process ready) as min/median/max. Then a failed upgrade
# (the "binary" is a script that exits at once) leaves the old process serving,
# and so does a refused one (the config changed a peer's hold time, so the new
# process cannot continue the sessions as negotiated).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
N=${VW_UPGRADES:-5}
bfd=0
auth=0
if [[ $VW_ROUTER == bird ]]; then
  # BIRD's BFD with Meticulous Keyed SHA1: the sequence numbers must be handed over too (a new
  # process starting from another number would be dropped by BIRD as out of its window).
  auth=1
  vw_bfd_auth_meticulous 3
fi
if [[ $VW_ROUTER != gobgp ]]; then
  bfd=1
  # shellcheck source=bfd-common.sh
  source "$(dirname "$0")/bfd-common.sh"
fi
vw_test_begin "in-place upgrade x$N under client load: no reset, no UPDATE, no failed request"
if ((auth)); then
  key_file=$VW_RUN_DIR/bfd.key
  (umask 077 && printf '%s\n' "$VW_BFD_PASSWORD" >"$key_file")
  VW_BFD_YAML="{min_tx: ${VW_BFD_INTERVAL_MS}ms, min_rx: ${VW_BFD_INTERVAL_MS}ms, multiplier: $VW_BFD_MULT, auth: {algorithm: meticulous-keyed-sha1, key_id: $VW_BFD_KEY_ID, key_file: $key_file}}"
fi

bindir=$VW_RUN_DIR/bin
mkdir -p "$bindir"
src_bin=$(vw_vipwarden_bin)
cp "$src_bin" "$bindir/vipwarden"
export VIPWARDEN_BIN=$bindir/vipwarden

# gobgpd installs no routes in the kernel FIB: its client load goes through BIRD (the counting
# is at GoBGP all the same).
client_router=$VW_ROUTER
[[ $VW_ROUTER == gobgp ]] && client_router=$VW_OTHER_ROUTER
vw_client_via "$client_router"
# With a fleet section the sessions feed the fleet view: a taken-over session asks its peer for
# its routes again (ROUTE-REFRESH), which must not count as an UPDATE at the router.
fleet_yaml=$'fleet:\n  unhealthy_community: "65101:666"'
if ((bfd)); then vw_bfd_start top_extra="$fleet_yaml"; else vw_start_vipwarden_and_wait top_extra="$fleet_yaml"; fi
client_ok4() { [[ $(vw_client_get "$VW_VIP4") == "served by vw-node1" ]]; }
vw_wait_until now 5000 client_ok4 >/dev/null || vw_fail "client cannot reach http://$VW_VIP4/ via $client_router"
# Let the initial table and End-of-RIB settle before counting.
sleep 1

session() { vw_router_session_json "$VW_ROUTER"; }
# When the router says the session was established (ms since the epoch).
est_since() {
  local up
  up=$(session | vw_json_get uptime_ms)
  [[ -n $up && $up != None ]] || { echo ""; return; }
  echo $(($(vw_now_ms) - up))
}
updates_in() { session | vw_json_get updates_in; }
# When the router's BFD session came Up (BIRD: state@since columns; FRR: state@start in s).
bfd_since() {
  case $VW_ROUTER in
    bird) vw_birdc show bfd sessions 2>/dev/null | awk -v a="$VW_NODE_BIRD_V4" '$1 == a { print tolower($3) "@" $4 "T" $5; exit }' ;;
    frr) vtysh --vty_socket "$VW_RUN_DIR/frr" -d bfdd -c "show bfd peer $VW_NODE_FRR_V4 json" 2>/dev/null |
      python3 -c 'import json,sys,time; d=json.load(sys.stdin); print(d.get("status","") + "@" + str(round(time.time() - d.get("uptime", 0))))' 2>/dev/null ;;
  esac
}
# Same Up since (FRR: within 2 s, its uptime has a 1 s grain; BIRD: within 5 ms, it prints the
# instant as now minus the session's age, which can move by a millisecond between two calls;
# a real flap re-ups at least a slow-start second later).
bfd_same() {
  [[ $1 == "$2" ]] && return 0
  [[ ${1%@*} == up && ${2%@*} == up ]] || return 1
  local d
  case $VW_ROUTER in
    frr) d=$((${1#*@} - ${2#*@})); ((d >= -2 && d <= 2)) ;;
    bird)
      d=$(($(date -d "${1#*@}" +%s%3N) - $(date -d "${2#*@}" +%s%3N))) || return 1
      ((d >= -5 && d <= 5)) ;;
    *) return 1 ;;
  esac
}

since0=$(est_since)
[[ -n $since0 ]] || vw_fail "session with $VW_RLABEL not Established before the upgrades"
upd0=$(updates_in)
[[ -n $upd0 && $upd0 != None ]] || vw_fail "$VW_RLABEL shows no UPDATE counter"
vw_info "before: session established at $since0 ms, $upd0 UPDATEs received from the node"
if ((bfd)); then
  bfd0=$(bfd_since)
  [[ $bfd0 == up@* ]] || vw_fail "BFD not Up at $VW_RLABEL before the upgrades: $bfd0"
  vw_changes0=$(vw_bfd_status | jq -r .state_changes)
  vw_info "before: BFD at $VW_RLABEL $bfd0, vipwarden counts $vw_changes0 BFD state changes"
  if ((auth)); then
    [[ $(vw_bfd_status | jq -r .authentication) == meticulous-keyed-sha1 ]] ||
      vw_fail "BFD not authenticated: $(vw_bfd_status)"
    vw_info "BFD with $VW_RLABEL authenticated (Meticulous Keyed SHA1, key id $VW_BFD_KEY_ID)"
  fi
fi

# Client load for the whole run (and a hold time past the last upgrade): wrk counts every
# failed request.
wrk_secs=$((N + VW_HOLD_TIME + 4))
vw_wrk_start load "$wrk_secs" 2s
sleep 1

log=$VW_RUN_DIR/vipwarden.log
mark0=$(vw_log_lines "$log")
# Route changes vipwarden logged since the upgrades began (per peer and per VIP).
route_changes() { tail -n +"$((mark0 + 1))" "$log" | sed 's/\x1b\[[0-9;]*m//g' | grep -E '(announced|withdrew|updated) web \(|vip web [a-z]+ -> ' || true; }
times=()
for ((i = 1; i <= N; i++)); do
  # Replace the file at the binary's path (a package upgrade does the same).
  cp "$src_bin" "$bindir/vipwarden.new"
  mv -f "$bindir/vipwarden.new" "$bindir/vipwarden"
  old=$(vw_pid_of vipwarden)
  mark=$(vw_log_lines "$log")
  if ((i == N)); then
    # The last one through the CLI, which waits for the new process and says what it took.
    out=$(vw_cli upgrade 2>&1) || vw_fail "vipwarden upgrade failed: $out"
    vw_info "vipwarden upgrade: $(tr '\n' ' ' <<<"$out")"
    [[ $out =~ PID\ $old\ .*-\>\ PID\ [0-9]+ && $out == *"2 BGP sessions"* ]] || vw_fail "unexpected output of vipwarden upgrade: $out"
  else
    kill -USR2 "$old"
  fi
  done_line() { tail -n +"$((mark + 1))" "$log" | sed 's/\x1b\[[0-9;]*m//g' | grep -E -m1 'upgrade done:|in-place upgrade failed'; }
  vw_wait_until now 15000 done_line >/dev/null || vw_fail "upgrade $i: no result logged within 15 s"
  line=$(done_line)
  [[ $line == *"upgrade done:"* ]] || vw_fail "upgrade $i failed: ${line##*upgrade failed}"
  new=$(sed -E 's/.*handed over to PID ([0-9]+) in.*/\1/' <<<"$line")
  ms=$(sed -E 's/.* in ([0-9]+) ms;.*/\1/' <<<"$line")
  [[ $new =~ ^[0-9]+$ && $ms =~ ^[0-9]+$ ]] || vw_fail "upgrade $i: cannot read the result line: $line"
  vw_wait_pid_exit "$old" 5000 || vw_fail "upgrade $i: old process $old still running"
  vw_pid_alive "$new" || vw_fail "upgrade $i: new process $new is not running"
  printf '%s %s %s\n' "$new" "$(vw_pid_starttime "$new")" vipwarden >>"$VW_RUN_DIR/pids.list"
  printf '%s\n' "$new" >"$VW_RUN_DIR/vipwarden.pid"
  times+=("$ms")
  last_upgrade=$(vw_now_ms)
  sleep 0.3
done

# A hold time after the last upgrade: the new process keeps the session with its KEEPALIVEs.
while (($(vw_now_ms) - last_upgrade < (VW_HOLD_TIME + 1) * 1000)); do sleep 0.2; done
vw_wait_pid_exit "$(vw_pid_of load)" $(((wrk_secs + 5) * 1000)) || vw_fail "wrk did not finish"
since1=$(est_since)
upd1=$(updates_in)
[[ -n $since1 ]] || vw_fail "session with $VW_RLABEL not Established after $N upgrades"
drift=$((since1 - since0))
((drift < 0)) && drift=$((-drift))
resets=0
((drift > 2500)) && resets=1
updates=$((upd1 - upd0))
wlog=$VW_RUN_DIR/load.log
requests=$(grep -Eo '[0-9]+ requests in' "$wlog" | grep -Eo '^[0-9]+' || echo 0)
failed=0
if grep -q 'Socket errors' "$wlog"; then
  failed=$(grep 'Socket errors' "$wlog" | grep -Eo '[0-9]+' | paste -sd+ | bc)
fi
if grep -q 'Non-2xx' "$wlog"; then
  failed=$((failed + $(grep 'Non-2xx' "$wlog" | grep -Eo '[0-9]+' | tail -1)))
fi
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
min=$(head -1 <<<"$sorted")
max=$(tail -1 <<<"$sorted")
med=$(sed -n "$(((N + 1) / 2))p" <<<"$sorted")
vw_measured "hand-over time min (signal to new process ready)" "$min"
vw_measured "hand-over time median" "$med"
vw_measured "hand-over time max" "$max"
vw_info "$N upgrades: session resets at $VW_RLABEL $resets (established-at drift ${drift} ms), UPDATEs received $updates, client requests $requests, failed $failed"
bfd_changes=0
bfd_note=""
if ((bfd)); then
  bfd1=$(bfd_since)
  bfd_same "$bfd0" "$bfd1" || bfd_changes=1
  vw_changes1=$(vw_bfd_status | jq -r .state_changes)
  ((vw_changes1 == vw_changes0)) || bfd_changes=$((vw_changes1 - vw_changes0))
  bfd_note="router $bfd0 -> $bfd1, vipwarden's count $vw_changes0 -> $vw_changes1"
  vw_info "BFD state changes: $bfd_changes ($bfd_note)"
fi
asked=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -c "asked $(vw_peer_name) to send its routes again" || true)
vw_info "ROUTE-REFRESH requests to $VW_RLABEL after the upgrades: $asked"
((asked >= N)) || vw_fail "the new processes asked $VW_RLABEL for its routes $asked times in $N upgrades (the fleet view would stay empty)"
((resets == 0)) || vw_fail "session with $VW_RLABEL was reset (established at $since0 -> $since1)"
((bfd_changes == 0)) || vw_fail "BFD state changed during the upgrades ($bfd_note)"
((updates == 0)) || vw_fail "$VW_RLABEL received $updates UPDATEs during the upgrades"
((failed == 0)) || vw_fail "$failed client requests failed during the upgrades"
((requests > 0)) || vw_fail "wrk made no requests"
changes=$(route_changes)
[[ -z $changes ]] || vw_fail "vipwarden logged route changes during the upgrades: $(head -3 <<<"$changes")"

# A failed upgrade: the "binary" exits at once; the old process serves on.
printf '#!/bin/sh\nexit 3\n' >"$bindir/vipwarden.new"
chmod +x "$bindir/vipwarden.new"
mv -f "$bindir/vipwarden.new" "$bindir/vipwarden"
old=$(vw_pid_of vipwarden)
mark=$(vw_log_lines "$log")
kill -USR2 "$old"
fail_line() { tail -n +"$((mark + 1))" "$log" | sed 's/\x1b\[[0-9;]*m//g' | grep -E -m1 'in-place upgrade failed|upgrade done:'; }
vw_wait_until now 15000 fail_line >/dev/null || vw_fail "failed upgrade: nothing logged within 15 s"
line=$(fail_line)
[[ $line == *"in-place upgrade failed"* ]] || vw_fail "the broken binary was taken: $line"
vw_info "failed upgrade logged: ${line##*upgrade failed, }"
sleep 1
vw_pid_alive "$old" || vw_fail "old process $old is gone after the failed upgrade"
client_ok4 || vw_fail "client not served after the failed upgrade"
since2=$(est_since)
upd2=$(updates_in)
drift=$((since2 - since0))
((drift < 0)) && drift=$((-drift))
((drift <= 2500)) || vw_fail "session with $VW_RLABEL was reset by the failed upgrade"
((upd2 == upd1)) || vw_fail "$VW_RLABEL received $((upd2 - upd1)) UPDATEs after the failed upgrade"
changes=$(route_changes)
[[ -z $changes ]] || vw_fail "vipwarden logged route changes after the failed upgrade: $(head -3 <<<"$changes")"
cp "$src_bin" "$bindir/vipwarden"

# A refused state: the new binary reads a config where the peers' hold time changed, so it
# cannot continue those sessions as negotiated; it says why and exits, the old one serves on.
conf=$VW_RUN_DIR/vipwarden.yaml
cp "$conf" "$conf.orig"
sed -i -E "s/^( *hold_time: ).*/\1$((VW_HOLD_TIME + 21))s/" "$conf"
grep -q "hold_time: $((VW_HOLD_TIME + 21))s" "$conf" || vw_fail "could not change hold_time in $conf"
mark=$(vw_log_lines "$log")
kill -USR2 "$old"
vw_wait_until now 15000 fail_line >/dev/null || vw_fail "refused upgrade: nothing logged within 15 s"
line=$(fail_line)
[[ $line == *"refused the state"*hold_time* ]] || vw_fail "a changed hold_time was not refused: $line"
vw_info "refused upgrade logged: ${line##*upgrade failed, }"
cp "$conf.orig" "$conf"
sleep 0.5
vw_pid_alive "$old" || vw_fail "old process $old is gone after the refused upgrade"
((($(updates_in) == upd1))) || vw_fail "$VW_RLABEL received UPDATEs after the refused upgrade"
client_ok4 || vw_fail "client not served after the refused upgrade"
vw_pass "$N upgrades: 0 resets, 0 UPDATEs${bfd_note:+, 0 BFD state changes}, 0 of $requests requests failed at $VW_RLABEL; hand-over min/median/max $min/$med/$max ms; a failed and a refused upgrade left PID $old serving"
