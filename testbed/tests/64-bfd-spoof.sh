#!/usr/bin/env bash
# BFD bound to its link and peer (issue 18, RFC 5881): with the session Up, packets that carry the
# router's source address and the session's discriminators but arrive on another link (a veth
# into the node's namespace, reverse-path filtering off so the kernel lets them through) are
# discarded and counted, and the session stays Up:
#  - a Down with the right My/Your Discriminators, from another link;
#  - a `Your Discriminator 0` Down, from another link.
# On BIRD the session runs with Meticulous Keyed SHA1 (RFC 5880 6.7.4; BIRD `authentication
# meticulous keyed sha1`): it comes Up authenticated, and on the router's own link a Down signed
# with a wrong key and an unsigned Down are discarded too. FRR 8.4's bfdd has no authentication:
# that part is skipped there (with the reason printed).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

VW_SPOOF_NS=vw-spoof
VW_SPOOF_NODE=198.51.100.42
VW_SPOOF_PEER=198.51.100.41
SPOOF_COUNT=50
AUTH=0
if [[ $VW_ROUTER == bird ]]; then
  AUTH=1
  # BIRD's router config is written when the lab comes up (vw_test_begin).
  vw_bfd_auth_meticulous 7
fi
# shellcheck source=bfd-common.sh
source "$(dirname "$0")/bfd-common.sh"
vw_test_begin "BFD ignores spoofed Downs from another link$( ((AUTH)) && echo ', and wrongly signed ones')"

node_addr=$(vw_router_peer_addr "$VW_ROUTER")
router_addr=$(vw_router_addr "$VW_ROUTER")

if ((AUTH)); then
  key_file=$VW_RUN_DIR/bfd.key
  (umask 077 && printf '%s\n' "$VW_BFD_PASSWORD" >"$key_file")
  VW_BFD_YAML="{min_tx: ${VW_BFD_INTERVAL_MS}ms, min_rx: ${VW_BFD_INTERVAL_MS}ms, multiplier: $VW_BFD_MULT, auth: {algorithm: meticulous-keyed-sha1, key_id: $VW_BFD_KEY_ID, key_file: $key_file}}"
fi

# The other link: a namespace that claims the router's address and reaches the node's address
# on the router's link through n1-spoof.
vw_netns_create "$VW_SPOOF_NS"
vw_link "$VW_NS_NODE" n1-spoof "$VW_SPOOF_NS" spoof-n1
vw_addr "$VW_NS_NODE" n1-spoof "$VW_SPOOF_NODE/30"
vw_addr "$VW_SPOOF_NS" spoof-n1 "$VW_SPOOF_PEER/30"
vw_in "$VW_SPOOF_NS" ip addr add "$router_addr/32" dev spoof-n1
vw_in "$VW_SPOOF_NS" ip route add "$node_addr/32" dev spoof-n1 src "$router_addr"
vw_in "$VW_SPOOF_NS" ip neigh replace "$node_addr" lladdr "$(vw_in "$VW_NS_NODE" cat /sys/class/net/n1-spoof/address)" dev spoof-n1
# Many hosts run without strict reverse-path filtering: the kernel must let the spoofed packets
# reach the socket, so that vipwarden's own check is what stops them.
vw_in "$VW_NS_NODE" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.n1-spoof.rp_filter=0

vw_bfd_start
st=$(vw_bfd_status)
vw_info "vipwarden status bfd: $st"
if ((AUTH)); then
  [[ $(jq -r .authentication <<<"$st") == meticulous-keyed-sha1 ]] ||
    vw_fail "session not authenticated: $st"
  vw_info "BFD Up at $VW_RLABEL with Meticulous Keyed SHA1 (key id $VW_BFD_KEY_ID)"
else
  vw_info "SKIP (part) authentication on $VW_RLABEL: Debian 12's FRR 8.4 bfdd has no BFD authentication (FRR 10's keychain keyed SHA1 is an HMAC, not RFC 5880 6.7.4: FRR issue 23274)"
fi
our=$(jq -r .local_discriminator <<<"$st")
theirs=$(jq -r .remote_discriminator <<<"$st")
changes0=$(jq -r .state_changes <<<"$st")
((our > 0 && theirs > 0)) || vw_fail "no discriminators in status: $st"

discarded() { vw_bfd_status | jq -r --arg r "$1" '.discarded[$r] // 0'; }
metric() {
  local code
  code=$(vw_api_curl GET /metrics) || true
  [[ $code == 200 ]] || vw_fail "GET /metrics: HTTP $code"
  grep -E "^vipwarden_bfd_discarded_packets_total\{peer=\"$(vw_peer_name)\",reason=\"$1\"\} " "$VW_RUN_DIR/api-body" | awk '{ print $2 }'
}
send() { # NS ARGS...
  local ns=$1
  shift
  vw_in "$ns" python3 "$VW_TESTBED_DIR/lib/bfd_send.py" --dst "$node_addr" --count "$SPOOF_COUNT" --interval-ms 5 "$@" >/dev/null
}
# still_up LABEL: the session stayed Up at both ends, without a state change at ours.
still_up() {
  local s
  s=$(vw_bfd_status)
  [[ $(jq -r .state <<<"$s") == up ]] || vw_fail "$1: vipwarden's BFD session left Up: $s"
  [[ $(jq -r .state_changes <<<"$s") == "$changes0" ]] || vw_fail "$1: BFD state changed: $s"
  bfd_up_at_router || vw_fail "$1: BFD not Up at $VW_RLABEL ($(vw_bfd_router_state "$VW_ROUTER"))"
  has4 || vw_fail "$1: VIP gone at $VW_RLABEL"
}
# expect_counted REASON BEFORE LABEL: status counts SPOOF_COUNT more (status lags a tick).
expect_counted() {
  local reason=$1 before=$2 label=$3 want n
  want=$((before + SPOOF_COUNT))
  counted() { (($(discarded "$reason") >= want)); }
  vw_wait_until now 3000 counted >/dev/null || vw_fail "$label: discarded[$reason] = $(discarded "$reason"), expected >= $want"
  n=$(discarded "$reason")
  vw_info "$label: $((n - before)) of $SPOOF_COUNT discarded as $reason"
}

# 1. A Down with the right discriminators, from the other link.
wi0=$(discarded wrong_interface)
send "$VW_SPOOF_NS" --src "$router_addr" --my "$theirs" --your "$our" --state down --diag 3
expect_counted wrong_interface "$wi0" "spoofed Down from another link"
still_up "spoofed Down from another link"

# 2. A Your Discriminator 0 Down, from the other link.
wi1=$(discarded wrong_interface)
send "$VW_SPOOF_NS" --src "$router_addr" --my "$theirs" --your 0 --state down --diag 3
expect_counted wrong_interface "$wi1" "Your Discriminator 0 Down from another link"
still_up "Your Discriminator 0 Down from another link"
n=$(metric wrong_interface)
[[ -n $n ]] && ((n >= wi1 + SPOOF_COUNT)) || vw_fail "metric vipwarden_bfd_discarded_packets_total{reason=\"wrong_interface\"} = ${n:-absent}"
vw_info "metric: vipwarden_bfd_discarded_packets_total{peer=\"$(vw_peer_name)\",reason=\"wrong_interface\"} $n"

if ((AUTH)); then
  # 3. On the router's own link, from its address: a Down signed with a wrong key, then an
  # unsigned Down. The signed ones sweep the sequence numbers after the last one status shows
  # as accepted (status lags by seconds; BIRD advances it every 300 ms and the 6.7.4 window is
  # last+1..last+9): those inside the window reach the digest check and are refused there
  # (auth_digest), the others by the window (auth_sequence). All must be refused, some by the
  # digest.
  ns=$(vw_router_ns "$VW_ROUTER")
  ad0=$(discarded auth_digest)
  as0=$(discarded auth_sequence)
  seq=$(vw_bfd_status | jq -r .auth_sequence_received)
  [[ $seq =~ ^[0-9]+$ ]] || vw_fail "no authenticated sequence number in status: $(vw_bfd_status)"
  send "$ns" --src "$router_addr" --my "$theirs" --your "$our" --state down --diag 3 \
    --auth meticulous-keyed-sha1 --key-id "$VW_BFD_KEY_ID" --key "not-$VW_BFD_PASSWORD" \
    --seq $(((seq + 1) % 4294967296)) --seq-step 1
  refused() { (($(discarded auth_digest) + $(discarded auth_sequence) >= ad0 + as0 + SPOOF_COUNT)); }
  vw_wait_until now 3000 refused >/dev/null ||
    vw_fail "wrongly signed Downs: auth_digest $(discarded auth_digest), auth_sequence $(discarded auth_sequence); expected $SPOOF_COUNT more than $ad0 + $as0"
  dig=$(($(discarded auth_digest) - ad0))
  vw_info "Down signed with a wrong key, router's link: $dig of $SPOOF_COUNT discarded as auth_digest, $(($(discarded auth_sequence) - as0)) as auth_sequence"
  ((dig > 0)) || vw_fail "no wrongly signed Down reached the digest check"
  still_up "Down signed with a wrong key"
  am0=$(discarded auth_missing)
  send "$ns" --src "$router_addr" --my "$theirs" --your "$our" --state down --diag 3
  expect_counted auth_missing "$am0" "unsigned Down, router's link"
  still_up "unsigned Down"
  n=$(metric auth_digest)
  [[ -n $n ]] && ((n >= ad0 + dig)) || vw_fail "metric vipwarden_bfd_discarded_packets_total{reason=\"auth_digest\"} = ${n:-absent}"
  # BIRD accepted our signed packets all along: no authentication failure in its log.
  if grep -q "Authentication failed" "$(vw_router_log bird)"; then
    vw_fail "BIRD logged an authentication failure: $(grep -m1 'Authentication failed' "$(vw_router_log bird)")"
  fi
fi
vw_info "final status bfd: $(vw_bfd_status | jq -c '{state, authentication, ifindex, state_changes, discarded}')"
# Discards are logged at most once a minute per reason: every round above ran within a minute,
# so wrong_interface (two rounds) has exactly one line.
lines=$(vw_vipwarden_log | grep -c "BFD $(vw_peer_name): discarded packets: .*wrong_interface" || true)
vw_vipwarden_log | grep "discarded packets" | sed 's/^/  vipwarden: /' >&2 || true
((lines == 1)) || vw_fail "expected one log line for wrong_interface discards, got $lines"
vw_pass "BFD stayed Up at $VW_RLABEL through $((AUTH ? 4 : 2)) x $SPOOF_COUNT spoofed Downs, every one discarded and counted$( ((AUTH)) && echo ' (Meticulous Keyed SHA1 with BIRD)')"
