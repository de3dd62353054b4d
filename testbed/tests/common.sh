# shellcheck shell=bash
# Test harness sourced by every testbed/tests/NN-*.sh scenario.
#
# A scenario runs against one router, given as $1 (bird | frr | gobgp): it
# builds a fresh lab (two ToRs: BIRD and FRR, or GoBGP and BIRD; nginx;
# vipwarden peering with both), injects one fault
# and measures, at that router, the time from the fault to its effect.
# Exit 0 = pass, 1 = fail. Lines starting with "measured:" are collected by
# run-tests.sh for the summary. A scenario that cannot run on a router says
# why with vw_skip (a "SKIP" line, exit 77).

set -euo pipefail
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

# shellcheck disable=SC2034 # used by the scenarios that source this file
{
VW_TEST_NAME=$(basename "$0" .sh)
VW_ROUTER=${1:-${VW_ROUTER:-bird}}
case $VW_ROUTER in bird | frr | gobgp) ;; *) vw_die "usage: $0 bird|frr|gobgp" ;; esac
VW_OTHER_ROUTER=frr
[[ $VW_ROUTER == bird ]] || VW_OTHER_ROUTER=bird
# vipwarden peers with the router under test and the other one.
VW_PEERS=$VW_ROUTER,$VW_OTHER_ROUTER
VW_RLABEL=$(vw_router_label "$VW_ROUTER")

# Check timing used by every scenario unless it says otherwise.
VW_INTERVAL_MS=1000
VW_TIMEOUT_MS=500
VW_RISE=2
VW_FALL=2
}

vw_test_on_exit() {
  local rc=$1
  if ((rc != 0 && rc != VW_SKIP_RC)); then
    vw_test_dump_logs
    # The reason last: CI shows only the tail of a failed scenario's output.
    printf 'FAIL %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "${VW_FAIL_REASON:-exit $rc, no reason given}"
  fi
  if ((rc == VW_SKIP_RC)); then vw_cleanup 0; else vw_cleanup "$rc"; fi
}

# Tail of every log of the run, to make a CI failure diagnosable.
vw_test_dump_logs() {
  [[ -n ${VW_RUN_DIR:-} ]] || return 0
  local f
  for f in "$VW_RUN_DIR/vipwarden.log" "$(vw_router_log "$VW_ROUTER")"; do
    [[ -s $f ]] || continue
    printf -- '----- last lines of %s\n' "$f"
    grep -v 'Update Group' "$f" | tail -n 25
  done
  printf -- '-----\n'
}

# vw_test_begin "description": fresh run dir, cleanup trap, lab with both
# routers and nginx.
vw_test_begin() {
  printf '=== %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "$1"
  vw_run_dir_init
  trap 'vw_test_on_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  vw_lab_up "$VW_ROUTER" "$VW_OTHER_ROUTER"
}

# vw_skip REASON: this scenario cannot run on this router (say why).
VW_SKIP_RC=77
vw_skip() {
  printf 'SKIP %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "$*"
  exit "$VW_SKIP_RC"
}

# vw_skip_on ROUTER REASON: vw_skip when the router under test is ROUTER.
vw_skip_on() {
  [[ $VW_ROUTER == "$1" ]] || return 0
  shift
  vw_skip "$@"
}

vw_pass() {
  printf 'PASS %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "$*"
  exit 0
}

vw_fail() {
  VW_FAIL_REASON="$*"
  vw_err "$*"
  exit 1
}

vw_assert() {
  local msg=$1
  shift
  "$@" || vw_fail "assertion failed: $msg"
}

# vw_measured LABEL MS: print a measurement in the format run-tests.sh collects.
vw_measured() {
  printf 'measured: %s [%s] = %s ms\n' "$1" "$VW_ROUTER" "$2"
}

# vw_expect_within LABEL MIN_MS MAX_MS VALUE_MS
vw_expect_within() {
  local label=$1 min=$2 max=$3 v=$4
  if ((v < min || v > max)); then
    vw_fail "$label took $v ms, expected between $min and $max ms"
  fi
  vw_info "$label: $v ms (expected $min..$max ms)"
}

# Route presence at the router under test.
has4() { router_has_prefix "$VW_ROUTER" "$VW_VIP4_PREFIX"; }
has6() { router_has_prefix "$VW_ROUTER" "$VW_VIP6_PREFIX"; }
has_both() { has4 && has6; }
has_neither() { ! has4 && ! has6; }
session_up() { router_session_established "$VW_ROUTER"; }

# vw_wait_session_up TIMEOUT_MS: the node's session at the router under test.
vw_wait_session_up() {
  local ms
  ms=$(vw_wait_until now "${1:-20000}" session_up) ||
    vw_fail "session to $VW_RLABEL not Established after ${ms} ms (state: $(router_session_state "$VW_ROUTER"))"
  vw_info "session Established at $VW_RLABEL after ${ms} ms"
}

# vw_wait_routes_up TIMEOUT_MS: both VIP prefixes present at the router.
vw_wait_routes_up() {
  local ms
  ms=$(vw_wait_until now "${1:-20000}" has_both) ||
    vw_fail "VIP routes not at $VW_RLABEL after ${ms} ms"
  vw_info "VIP routes at $VW_RLABEL after ${ms} ms"
}

# Start vipwarden and wait until the VIP is announced to the router under
# test (nginx is up at this point).
vw_start_vipwarden_and_wait() {
  vw_vipwarden_start "$@"
  vw_wait_session_up 20000
  vw_wait_routes_up 20000
}

# Number of lines in a log now: fault markers for log-order checks.
vw_log_lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# Peer name of the router under test in vipwarden's config.
vw_peer_name() { echo "tor-$VW_ROUTER"; }

# vw_expect_route_log VERB: vipwarden logged why the route moved, in the
# contract's form, e.g.
#   announced web (203.0.113.10/32, 2001:db8:10::10/128) to tor-bird: ...
#   withdrew web (203.0.113.10/32, ...) from tor-bird: check web failed 2/2: ...
vw_expect_route_log() {
  local verb=$1 prep=to pattern ms
  [[ $verb == withdrew ]] && prep=from
  pattern="$verb web \([^)]*${VW_VIP4_PREFIX//./\\.}[^)]*\) $prep $(vw_peer_name): "
  [[ $verb == withdrew ]] && pattern+=".*check web failed"
  ms=$(vw_wait_until now 2000 vw_vipwarden_log_has "$pattern") ||
    vw_fail "vipwarden logged no line matching /$pattern/"
}

# Not `grep -q`: it stops reading at the first match, sed then dies of SIGPIPE on a long log and
# pipefail turns a match into a failure.
vw_vipwarden_log_has() {
  sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden.log" | grep -E "$1" >/dev/null
}

# ------------------------------------------- passive signals and operations --
# Helpers for the 2x (passive signals) and 3x (operations) scenarios.

# vw_cli ARGS...: the vipwarden CLI inside vw-node1, finding the API through
# the run's config (status, drain, undrain, events).
vw_cli() {
  local bin
  bin=$(vw_vipwarden_bin)
  vw_in "$VW_NS_NODE" "$bin" "$@" --config "$VW_RUN_DIR/vipwarden.yaml"
}

VW_API_LISTEN=127.0.0.1:9180

# vw_api_yaml: top-level YAML for the control API (token file mode 600) and
# a state dir inside the run dir; creates both (token: vw_api_token).
vw_api_yaml() {
  local tok=$VW_RUN_DIR/api-token
  if [[ ! -s $tok ]]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tok")
  fi
  mkdir -p "$VW_RUN_DIR/state"
  printf 'api:\n  listen: %s\n  token_file: %s\nstate_dir: %s\n' \
    "$VW_API_LISTEN" "$tok" "$VW_RUN_DIR/state"
}

vw_api_token() { cat "$VW_RUN_DIR/api-token"; }

# vw_api_curl METHOD PATH [CURL ARGS...]: HTTP status code of a request to
# the API from inside vw-node1 (body in $VW_RUN_DIR/api-body).
vw_api_curl() {
  local method=$1 path=$2
  shift 2
  vw_in "$VW_NS_NODE" curl -sS --max-time 3 -o "$VW_RUN_DIR/api-body" -w '%{http_code}' \
    -X "$method" "$@" "http://$VW_API_LISTEN$path"
}

# vw_status_json: `vipwarden status --json`.
vw_status_json() { vw_cli status --json 2>&1; }

# Load (vw_wrk_start/stop) and the access-log monitor (vw_access_*) are in
# lib/nginx.sh: bench-detect.sh uses them too.

# vipwarden log without colours.
vw_vipwarden_log() { sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden.log"; }

# Established-since of the node's session at the router under test, in epoch
# ms (now - uptime): unchanged as long as the session was never reset.
router_session_since_ms() {
  local up
  up=$(router_session_uptime_ms "$VW_ROUTER")
  [[ -n $up && $up != None ]] || return 1
  echo $(($(vw_now_ms) - up))
}

# Route attributes at the router under test (IPv4 VIP).
med4() { router_med "$VW_ROUTER" "$VW_VIP4_PREFIX"; }
communities4() { router_communities "$VW_ROUTER" "$VW_VIP4_PREFIX"; }
has_gshut() { has4 && [[ " $(communities4) " == *" 65535:0 "* ]]; }
has_med() { has4 && [[ $(med4) == "$1" ]]; }

# vw_assert_withdrawn_before_cease FILE: the router's log lines after a stop (FILE) must show both
# VIP withdrawals before the Cease/Administrative Shutdown NOTIFICATION. Polling cannot order two
# events milliseconds apart; the router's own log can. Leaves the line numbers in VW_W4_LINE and
# VW_CEASE_LINE.
vw_assert_withdrawn_before_cease() {
  local after=$1 w4 w6 cease
  line_of() { grep -n -m1 -E "$1" "$after" | cut -d: -f1; }
  case $VW_ROUTER in
    bird)
      w4=$(line_of "ipv4 > removed .*${VW_VIP4_PREFIX//./\\.}")
      w6=$(line_of "ipv6 > removed .*$VW_VIP6_PREFIX")
      cease=$(line_of "Received: Administrative shutdown")
      ;;
    frr)
      w4=$(line_of "rcvd UPDATE about ${VW_VIP4_PREFIX//./\\.} .*withdrawn")
      w6=$(line_of "rcvd UPDATE about $VW_VIP6_PREFIX .*withdrawn")
      cease=$(line_of "NOTIFICATION: received from neighbor .* 6/2 ")
      ;;
    gobgp)
      w4=$(line_of "\"withdrawals\":\\[[^]]*\"${VW_VIP4_PREFIX//./\\.}\"")
      w6=$(line_of "\"type\":15,[^]]*\"$VW_VIP6_PREFIX\".*received update")
      cease=$(line_of "$VW_GOBGP_CEASE_RE")
      ;;
  esac
  vw_info "router log after SIGTERM (line numbers): withdraw v4=${w4:-none} v6=${w6:-none} cease=${cease:-none}"
  grep -E 'removed|withdrawn|NOTIFICATION|Received|closed|ADJCHANGE|received notification|Peer Down' "$after" | head -n 8 >&2 || true
  [[ -n $cease ]] || vw_fail "router logged no Cease/Administrative Shutdown NOTIFICATION"
  [[ -n $w4 && $w4 -lt $cease ]] || vw_fail "IPv4 VIP not withdrawn before the NOTIFICATION (withdraw line ${w4:-none}, cease line $cease)"
  [[ -n $w6 && $w6 -lt $cease ]] || vw_fail "IPv6 VIP not withdrawn before the NOTIFICATION (withdraw line ${w6:-none}, cease line $cease)"
  # shellcheck disable=SC2034 # read by the calling test (timestamps)
  VW_W4_LINE=$w4
  # shellcheck disable=SC2034 # read by the calling test (timestamps)
  VW_CEASE_LINE=$cease
}

# ------------------------------------------------------------------ GoBGP --
# GoBGP runs the core scenarios (rise, fall, recover, IPv6, attributes,
# SIGTERM, router restart, a full table to the node) and the session-security
# ones; the rest test router-independent vipwarden behaviour that BIRD and FRR
# already cover, so they skip on GoBGP to keep CI time down. A scenario that
# needs GoBGP adds its number here.
VW_GOBGP_SCENARIOS=${VW_GOBGP_SCENARIOS:-"01 02 03 04 05 08 09 12 14 15 16 17 18 65"}
# GoBGP's "Peer Down" line for a received Cease / Administrative Shutdown.
VW_GOBGP_CEASE_RE='"Code":6,.*"Subcode":2|notification-received code 6\(cease\) subcode 2'
if [[ $VW_ROUTER == gobgp && " $VW_GOBGP_SCENARIOS " != *" ${VW_TEST_NAME%%-*} "* ]]; then
  case ${VW_TEST_NAME%%-*} in
    10) vw_skip "gobgpd does not install routes in the kernel FIB (that needs zebra), so no client traffic can flow through it" ;;
    *) vw_skip "router-independent vipwarden behaviour, covered on BIRD and FRR; GoBGP runs the core set ($VW_GOBGP_SCENARIOS) to keep CI time down" ;;
  esac
fi
