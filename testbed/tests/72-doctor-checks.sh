#!/usr/bin/env bash
# doctor counts every check type (issue 22): with nginx up, the process, tcp and exec checks are
# `ok` lines and an exec check that hangs is one FAIL saying it was killed at its timeout (doctor
# does not wait for it); with nginx killed, the dead process is one `service` FAIL whose fix
# starts it, with the silent port 80 (both VIPs) and the refused tcp check as its evidence, not a
# FAIL per VIP. doctor runs without the daemon, so nothing here depends on the router: BIRD runs
# it.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_skip_on frr "doctor's checks do not involve the router; BIRD runs this scenario"
vw_skip_on gobgp "doctor's checks do not involve the router; BIRD runs this scenario"
vw_test_begin "doctor: process, tcp and exec checks count; a dead service is one FAIL"

conf=$VW_RUN_DIR/vipwarden.yaml
vw_vipwarden_config check_type=process | awk -v vip="$VW_VIP4" '
  { print }
  /^checks:$/ {
    printf "  - {name: vip_tcp, type: tcp, target: \"%s:80\"}\n", vip
    print "  - {name: ok_exec, type: exec, command: [/bin/true]}"
    print "  - {name: slow_exec, type: exec, command: [/bin/sleep, \"30\"], interval: 5s, timeout: 1s}"
  }' | sed 's/^    checks: \[web\]$/    checks: [web, vip_tcp, ok_exec]/' >"$conf"
grep -q 'checks: \[web, vip_tcp, ok_exec\]' "$conf" || vw_fail "config generation changed: no VIP check list to extend"
vw_vipwarden_check "$conf"
bin=$(vw_vipwarden_bin)

# doctor_run NAME: doctor in the node (no daemon: the session states are a WARN), output in
# $VW_RUN_DIR/NAME.txt; sets ms to its wall time.
doctor_run() {
  local t0 rc=0
  t0=$(vw_now_ms)
  vw_in "$VW_NS_NODE" timeout 20 "$bin" doctor --config "$conf" >"$VW_RUN_DIR/$1.txt" 2>&1 || rc=$?
  ms=$(($(vw_now_ms) - t0))
  ((rc == 0 || rc == 1)) || { cat "$VW_RUN_DIR/$1.txt" >&2; vw_fail "doctor exited $rc"; }
}
# fails FILE: the FAIL lines about services, listeners and checks.
fails() { grep -E '^FAIL (service|listener|check) ' "$1" || true; }

doctor_run doctor-up
grep -E '^(ok|WARN|FAIL) +(service|listener|check) ' "$VW_RUN_DIR/doctor-up.txt" >&2 || true
vw_measured "doctor with a 1 s exec timeout (service up)" "$ms"
# 1 s of IPReversePathFilter watching, the 1 s exec timeout in parallel with it, startup.
vw_expect_within "doctor with a hanging exec check" 0 6000 "$ms"
grep -Eq '^ok +check +check web \(process\) passes now: process [0-9]+ running' "$VW_RUN_DIR/doctor-up.txt" ||
  vw_fail "no ok line for the process check"
grep -Eq '^ok +check +check vip_tcp \(tcp\) passes now' "$VW_RUN_DIR/doctor-up.txt" ||
  vw_fail "no ok line for the tcp check"
grep -Eq '^ok +check +check ok_exec \(exec\) passes now: exit 0' "$VW_RUN_DIR/doctor-up.txt" ||
  vw_fail "no ok line for the exec check"
n=$(fails "$VW_RUN_DIR/doctor-up.txt" | wc -l)
((n == 1)) || vw_fail "service up: $n FAIL lines about services, listeners and checks (expected 1, slow_exec)"
fails "$VW_RUN_DIR/doctor-up.txt" | grep -q 'check slow_exec (exec): `/bin/sleep 30` did not finish within its timeout of 1.0 s and was killed' ||
  vw_fail "the hanging exec check is not the FAIL"

# Fault: nginx dies (SIGKILL to its process group: the pid file stays, naming a dead process).
pid=$(vw_pid_of nginx)
vw_pid_is_ours "$pid" || vw_fail "nginx is not running"
kill -KILL -- "-$pid"
vw_wait_pid_exit "$pid" 2000 || vw_fail "nginx did not exit"
doctor_run doctor-down
cat "$VW_RUN_DIR/doctor-down.txt" >&2
vw_measured "doctor, nginx killed" "$ms"
fails "$VW_RUN_DIR/doctor-down.txt" >"$VW_RUN_DIR/fails-down.txt"
n=$(wc -l <"$VW_RUN_DIR/fails-down.txt")
((n == 2)) || vw_fail "nginx killed: $n FAIL lines about services, listeners and checks (expected 2: the service and slow_exec)"
grep -Eq "^FAIL service +check web \(process\): process $pid \(pid file [^)]*\) (is not running|has exited): VIP web stays withdrawn" "$VW_RUN_DIR/fails-down.txt" ||
  vw_fail "no service FAIL naming the dead process"
grep -q "fix: start the service; it must write its pid to $VW_RUN_DIR/nginx/nginx.pid" "$VW_RUN_DIR/doctor-down.txt" ||
  vw_fail "the service FAIL does not say how to fix it"
grep -Eq "evidence: sock_diag: nothing listens on port 80 \(wanted on $VW_VIP4:80, \[$VW_VIP6\]:80" "$VW_RUN_DIR/doctor-down.txt" ||
  vw_fail "the silent port 80 on both VIPs is not evidence of the service FAIL"
grep -Eq 'evidence: check vip_tcp \(tcp\) now: .*refused' "$VW_RUN_DIR/doctor-down.txt" ||
  vw_fail "the refused tcp check is not evidence of the service FAIL"
vw_pass "service up: process, tcp, exec ok and the hanging exec one FAIL (doctor took $ms ms); nginx killed: one service FAIL with port 80 on both VIPs and the refused tcp check as evidence"
