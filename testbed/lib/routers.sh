# shellcheck shell=bash
# The top-of-rack routers: BIRD 2, FRR bgpd and GoBGP (gobgpd), each in its
# own namespace with its own config, control socket, pid file and log under
# $VW_RUN_DIR. Query helpers take a router name: bird | frr | gobgp.
#
# Session security for the auth scenarios (set before the router starts):
#  VW_ROUTER_PASSWORD=S  TCP-MD5 password for the node's session
#  VW_ROUTER_GTSM=1      GTSM (BIRD "ttl security on", FRR "ttl-security
#                        hops 1", GoBGP ttl-security ttl-min 255)
#  VW_ROUTER_MULTIHOP=N  eBGP multihop N (BIRD "multihop N", FRR
#                        "ebgp-multihop N"): eBGP otherwise sends with TTL 1
#                        and the node must be directly connected
#
# Sourced by lib.sh (topology constants come from lib/topology.sh).

VW_FRR_BGPD=${VW_FRR_BGPD:-/usr/lib/frr/bgpd}

# VW_BFD=bird,frr (a list): those ToRs run BFD with the node (BIRD `protocol bfd` + `bfd on`,
# FRR bfdd + `neighbor X bfd`), 300 ms x 3 as in docs/bfd.md. Empty (default): none.
VW_BFD=${VW_BFD:-}
vw_bfd_on() { [[ ,$VW_BFD, == *,$1,* ]]; }
VW_BFD_INTERVAL_MS=${VW_BFD_INTERVAL_MS:-300}
VW_BFD_MULT=${VW_BFD_MULT:-3}
# BIRD only (FRR 8.4's bfdd has no authentication): VW_BFD_AUTH="keyed sha1" or
# "meticulous keyed sha1" (RFC 5880 6.7.4), with password VW_BFD_PASSWORD and key id
# VW_BFD_KEY_ID. Empty (default): none.
VW_BFD_AUTH=${VW_BFD_AUTH:-}
VW_BFD_PASSWORD=${VW_BFD_PASSWORD:-}
VW_BFD_KEY_ID=${VW_BFD_KEY_ID:-1}

# vw_bfd_auth_meticulous KEY_ID: BIRD's BFD with Meticulous Keyed SHA1 and a fresh random
# password (call before the lab comes up: BIRD's config is written then).
vw_bfd_auth_meticulous() {
  VW_BFD_AUTH="meticulous keyed sha1"
  VW_BFD_KEY_ID=$1
  VW_BFD_PASSWORD=$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')
}

vw_bird_bfd_auth() {
  [[ -n $VW_BFD_AUTH ]] || return 0
  printf '    authentication %s;\n    password "%s" { id %s; };\n' \
    "$VW_BFD_AUTH" "$VW_BFD_PASSWORD" "$VW_BFD_KEY_ID"
}

vw_bird_bfd_protocol() {
  vw_bfd_on bird || return 0
  cat <<EOF
protocol bfd {
  debug { states, events };
  interface "bird-n1" {
    min rx interval $VW_BFD_INTERVAL_MS ms;
    min tx interval $VW_BFD_INTERVAL_MS ms;
    idle tx interval 1000 ms;
    multiplier $VW_BFD_MULT;
$(vw_bird_bfd_auth)
  };
}
EOF
}

# ------------------------------------------------------------------- BIRD --

# Key choices (see testbed/README.md):
#  - passive on: vipwarden connects out, the ToR only listens.
#  - hold time 9 / keepalive 3: hold-timer tests finish in ~10 s.
#  - error wait time 1,5: after a session error (hold timer expiry, closed
#    connection) BIRD by default stays down 60-300 s and refuses the peer;
#    the lab wants the session back within a second.
#  - ipv4 + ipv6 channels on one IPv4 session (MP-BGP): the IPv6 NLRI carries
#    a global IPv6 next hop (vipwarden's next_hop_v6) that lies in the link's
#    2001:db8:1::/64, so BIRD's default "gateway direct" resolves it on
#    bird-n1. No extended next hop (that is for IPv4 NLRI over IPv6 NH).
#  - import all / export none: the ToR accepts what the node says and tells
#    it nothing (vipwarden ignores received routes anyway).
#  - debug { states, routes, events } + ms timestamps: the SIGTERM test reads
#    the order of "withdraw" and "Received: Administrative shutdown" here.
vw_bird_config() {
  local dir=$1
  cat <<EOF
# vipwarden lab: tor-bird (AS $VW_TOR_AS)
log "$dir/bird.log" all;
timeformat log "%F %T.%3f";
timeformat protocol "%F %T.%3f";
timeformat route "%F %T.%3f";
router id $VW_BIRD_V4;

protocol device {
  scan time 2;
}

# Install the learned VIP routes into this namespace's kernel FIB so that the
# client behind the ToR really reaches the node through them.
protocol kernel kernel4 {
  ipv4 { import none; export all; };
}
protocol kernel kernel6 {
  ipv6 { import none; export all; };
}

$(vw_bird_bfd_protocol)

protocol bgp node1 {
  description "vipwarden on vw-node1";$(vw_bfd_on bird && printf '\n  bfd on;')
  local $VW_BIRD_V4 as $VW_TOR_AS;
  neighbor $VW_NODE_BIRD_V4 as $VW_LOCAL_AS;
  passive on;
  hold time $VW_HOLD_TIME;
  startup hold time $VW_HOLD_TIME;
  keepalive time $((VW_HOLD_TIME / 3));
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 5;
  error forget time 10;
$(vw_bird_security)
  debug { states, routes, events };
  ipv4 {
    import all;
    export $(vw_bird_export_filter);
  };
  ipv6 {
    import all;
    export $(vw_bird_export_filter);
  };
}
EOF
  vw_bird_static_routes
}

# VW_ROUTER_EXPORT=N: the ToRs also send the node routes (256 IPv4 /32s from
# 192.0.2.128/25 and 203.0.113.128/25 plus N IPv6 /64s from 2001:db8:f000::/36),
# as a real ToR sending a default or a table would. 0 (default): nothing.
VW_ROUTER_EXPORT=${VW_ROUTER_EXPORT:-0}

vw_bird_export_filter() {
  if ((VW_ROUTER_EXPORT > 0)); then echo "where source = RTS_STATIC"; else echo none; fi
}

# Prefix lists for VW_ROUTER_EXPORT (one a line).
vw_export_prefixes_v4() {
  local i
  for ((i = 128; i < 256; i++)); do printf '192.0.2.%d/32\n203.0.113.%d/32\n' "$i" "$i"; done
}
vw_export_prefixes_v6() {
  local i
  for ((i = 0; i < VW_ROUTER_EXPORT; i++)); do printf '2001:db8:f%03x:%x::/64\n' $((i / 65536)) $((i % 65536)); done
}

vw_bird_static_routes() {
  ((VW_ROUTER_EXPORT > 0)) || return 0
  echo "protocol static export4 { ipv4;"
  vw_export_prefixes_v4 | sed 's/.*/  route & blackhole;/'
  echo "}"
  echo "protocol static export6 { ipv6;"
  vw_export_prefixes_v6 | sed 's/.*/  route & blackhole;/'
  echo "}"
}

vw_bird_security() {
  if [[ -n ${VW_ROUTER_PASSWORD:-} ]]; then printf '  password "%s";\n' "$VW_ROUTER_PASSWORD"; fi
  if [[ ${VW_ROUTER_GTSM:-0} == 1 ]]; then printf '  ttl security on;\n'; fi
  if [[ -n ${VW_ROUTER_MULTIHOP:-} ]]; then printf '  multihop %s;\n' "$VW_ROUTER_MULTIHOP"; fi
  return 0
}

vw_bird_start() {
  local dir=$VW_RUN_DIR/bird
  mkdir -p "$dir"
  vw_bird_config "$dir" >"$dir/bird.conf"
  vw_spawn bird "$VW_NS_BIRD" "$dir/stdout.log" \
    bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid"
  vw_wait_until now 5000 vw_birdc show status >/dev/null ||
    vw_die "BIRD did not start (see $dir/stdout.log)"
  vw_info "BIRD up in $VW_NS_BIRD (PID $(vw_pid_of bird), socket $dir/bird.ctl)"
}

vw_birdc() {
  birdc -s "$VW_RUN_DIR/bird/bird.ctl" "$@"
}

# -------------------------------------------------------------------- FRR --

# Key choices:
#  - zebra + bgpd, each with its own pid file, config and sockets in the run
#    dir (zebra runs as user frr, so the dir is owned by frr): bgpd resolves
#    next hops through zebra like a real ToR, and the VIP routes land in the
#    namespace's kernel FIB for the client's traffic. VW_FRR_ZEBRA=0 runs
#    bgpd alone with --no_zebra (next hops then count as reachable).
#  - "no bgp ebgp-requires-policy": FRR >= 7.4 otherwise drops every eBGP
#    route in and out (RFC 8212) unless a route-map is applied.
#  - neighbor passive, timers 3 9, explicit activate for both families on the
#    one IPv4 session.
#  - hostname capability is left at its default (on): FRR sends capability
#    73 (FQDN) in its OPEN; vipwarden must ignore unknown capabilities.
#  - log-neighbor-changes + debug bgp updates/neighbor-events to a file with
#    ms precision: the SIGTERM test reads the order of events there.
vw_frr_config() {
  local dir=$1
  cat <<EOF
! vipwarden lab: tor-frr (AS $VW_TOR_AS)
frr defaults traditional
hostname tor-frr
log file $dir/bgpd.log debugging
log timestamp precision 3
debug bgp neighbor-events
debug bgp updates in
!
router bgp $VW_TOR_AS
 bgp router-id $VW_FRR_V4
 bgp log-neighbor-changes
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor $VW_NODE_FRR_V4 remote-as $VW_LOCAL_AS
 neighbor $VW_NODE_FRR_V4 description vipwarden on vw-node1
 neighbor $VW_NODE_FRR_V4 passive
 neighbor $VW_NODE_FRR_V4 timers $((VW_HOLD_TIME / 3)) $VW_HOLD_TIME
$(vw_bfd_on frr && printf ' neighbor %s bfd profile node\n' "$VW_NODE_FRR_V4")
$(vw_frr_security)
 !
 no bgp network import-check
 address-family ipv4 unicast
  neighbor $VW_NODE_FRR_V4 activate
$(if ((VW_ROUTER_EXPORT > 0)); then vw_export_prefixes_v4 | sed 's/^/  network /'; fi)
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor $VW_NODE_FRR_V4 activate
$(if ((VW_ROUTER_EXPORT > 0)); then vw_export_prefixes_v6 | sed 's/^/  network /'; fi)
 exit-address-family
!
EOF
}

vw_frr_security() {
  if [[ -n ${VW_ROUTER_PASSWORD:-} ]]; then printf ' neighbor %s password %s\n' "$VW_NODE_FRR_V4" "$VW_ROUTER_PASSWORD"; fi
  if [[ ${VW_ROUTER_GTSM:-0} == 1 ]]; then printf ' neighbor %s ttl-security hops 1\n' "$VW_NODE_FRR_V4"; fi
  if [[ -n ${VW_ROUTER_MULTIHOP:-} ]]; then printf ' neighbor %s ebgp-multihop %s\n' "$VW_NODE_FRR_V4" "$VW_ROUTER_MULTIHOP"; fi
  return 0
}

VW_FRR_ZEBRA=${VW_FRR_ZEBRA:-1}

vw_frr_zebra_start() {
  local dir=$1
  printf 'hostname tor-frr\nlog file %s/zebra.log informational\n' "$dir" >"$dir/zebra.conf"
  vw_spawn frr-zebra "$VW_NS_FRR" "$dir/zebra.stdout.log" \
    "${VW_FRR_BGPD%/*}/zebra" -f "$dir/zebra.conf" -i "$dir/zebra.pid" \
    --vty_socket "$dir" -z "$dir/zserv.api" -A 127.0.0.1 -P 0
  vw_wait_until now 10000 test -S "$dir/zserv.api" >/dev/null ||
    vw_die "FRR zebra did not start (see $dir/zebra.stdout.log)"
}

# bfdd (needs zebra: bgpd registers its BFD peers through zebra). Profile "node" carries the
# lab's timers; bgpd creates the single-hop session for the neighbour.
vw_frr_bfdd_start() {
  local dir=$1
  [[ $VW_FRR_ZEBRA == 1 ]] || vw_die "BFD with FRR needs zebra (VW_FRR_ZEBRA=1)"
  cat >"$dir/bfdd.conf" <<EOF
hostname tor-frr
log file $dir/bfdd.log debugging
log timestamp precision 3
debug bfd peer
debug bfd zebra
!
bfd
 profile node
  receive-interval $VW_BFD_INTERVAL_MS
  transmit-interval $VW_BFD_INTERVAL_MS
  detect-multiplier $VW_BFD_MULT
 !
!
EOF
  vw_spawn frr-bfdd "$VW_NS_FRR" "$dir/bfdd.stdout.log" \
    "${VW_FRR_BGPD%/*}/bfdd" -f "$dir/bfdd.conf" -i "$dir/bfdd.pid" --vty_socket "$dir" \
    -z "$dir/zserv.api" --bfdctl "$dir/bfdd.sock" -A 127.0.0.1 -P 0 -u frr -g frr
  vw_wait_until now 10000 test -S "$dir/bfdd.vty" >/dev/null ||
    vw_die "FRR bfdd did not start (see $dir/bfdd.stdout.log)"
}

# vw_bfd_router_state ROUTER: the router's BFD session state with the node (up, down, init, ...).
vw_bfd_router_state() {
  case $1 in
    bird) vw_birdc show bfd sessions 2>/dev/null | awk -v a="$VW_NODE_BIRD_V4" '$1 == a { print tolower($3); exit }' ;;
    frr) vtysh --vty_socket "$VW_RUN_DIR/frr" -d bfdd -c "show bfd peer $VW_NODE_FRR_V4 json" 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' 2>/dev/null ;;
  esac
}

vw_frr_start() {
  local dir=$VW_RUN_DIR/frr zebra_opt=(--no_zebra)
  mkdir -p "$dir"
  vw_frr_config "$dir" >"$dir/bgpd.conf"
  if [[ $VW_FRR_ZEBRA == 1 ]]; then
    # zebra drops privileges to user frr: it must own the directory.
    chown frr:frr "$dir" 2>/dev/null || true
    vw_frr_zebra_start "$dir"
    zebra_opt=(-z "$dir/zserv.api")
  fi
  if vw_bfd_on frr; then vw_frr_bfdd_start "$dir"; fi
  vw_spawn frr "$VW_NS_FRR" "$dir/stdout.log" \
    "$VW_FRR_BGPD" "${zebra_opt[@]}" --skip_runas \
    -f "$dir/bgpd.conf" -i "$dir/bgpd.pid" --vty_socket "$dir" \
    -A 127.0.0.1 -P 0
  vw_wait_until now 10000 vw_vtysh -c 'show bgp summary' >/dev/null ||
    vw_die "FRR bgpd did not start (see $dir/stdout.log)"
  vw_info "FRR bgpd up in $VW_NS_FRR (PID $(vw_pid_of frr), vty socket dir $dir)"
}

vw_vtysh() {
  vtysh --vty_socket "$VW_RUN_DIR/frr" -d bgpd "$@"
}

# ------------------------------------------------------------------ GoBGP --

# Key choices:
#  - passive-mode: vipwarden connects out, as with BIRD and FRR.
#  - idle-hold-time-after-reset 1: after a session error gobgpd otherwise
#    refuses the peer for 30 s; the lab wants it back within a second.
#  - ipv4 + ipv6 unicast on the one IPv4 session (MP-BGP).
#  - gobgpd does not program the kernel FIB (that needs zebra): the client
#    cannot be served through it, so the traffic scenario skips it.
#  - debug log (JSON lines): "received update" lines carry NLRI and
#    withdrawals, read by the SIGTERM order check.
#  - the gRPC API on the namespace's loopback, port VW_GOBGP_TOR_API.
VW_GOBGP_TOR_API=${VW_GOBGP_TOR_API:-50070}

vw_gobgp_tor_config() {
  cat <<EOF
# vipwarden lab: tor-gobgp (AS $VW_TOR_AS)
[global.config]
  as = $VW_TOR_AS
  router-id = "$VW_GOBGP_V4"
  port = 179
  local-address-list = ["$VW_GOBGP_V4"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$VW_NODE_GOBGP_V4"
    peer-as = $VW_LOCAL_AS
    description = "vipwarden on vw-node1"
$(if [[ -n ${VW_ROUTER_PASSWORD:-} ]]; then printf '    auth-password = "%s"\n' "$VW_ROUTER_PASSWORD"; fi)
  [neighbors.transport.config]
    passive-mode = true
    local-address = "$VW_GOBGP_V4"
  [neighbors.timers.config]
    hold-time = $VW_HOLD_TIME
    keepalive-interval = $((VW_HOLD_TIME / 3))
    connect-retry = 1
    idle-hold-time-after-reset = 1
$(if [[ ${VW_ROUTER_GTSM:-0} == 1 ]]; then printf '  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = 255\n'; fi)
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
}

vw_gobgp_tor_start() {
  local dir=$VW_RUN_DIR/gobgp
  mkdir -p "$dir"
  vw_gobgp_tor_config >"$dir/gobgpd.toml"
  vw_spawn gobgp "$VW_NS_GOBGP" "$dir/gobgpd.log" \
    gobgpd -f "$dir/gobgpd.toml" --pprof-disable --api-hosts "127.0.0.1:$VW_GOBGP_TOR_API" --log-level debug
  vw_wait_until now 5000 vw_gobgp_tor_cli global >/dev/null ||
    vw_die "gobgpd did not start (see $dir/gobgpd.log)"
  if ((VW_ROUTER_EXPORT > 0)); then vw_gobgp_tor_export; fi
  vw_info "gobgpd up in $VW_NS_GOBGP (PID $(vw_pid_of gobgp), API 127.0.0.1:$VW_GOBGP_TOR_API)"
}

vw_gobgp_tor_cli() {
  vw_in "$VW_NS_GOBGP" gobgp -u 127.0.0.1 -p "$VW_GOBGP_TOR_API" "$@"
}

# VW_ROUTER_EXPORT for GoBGP: gobgpd has no static routes in its config and a
# CLI call per route takes ~10 ms, so the table goes in as one MRT
# TABLE_DUMP_V2 file (lib/mrt_table.py) through `gobgp mrt inject global`.
vw_gobgp_tor_export() {
  local t0 mrt=$VW_RUN_DIR/gobgp/export.mrt
  t0=$(vw_now_ms)
  { vw_export_prefixes_v4; vw_export_prefixes_v6; } |
    python3 "$VW_TESTBED_DIR/lib/mrt_table.py" "$mrt" "$VW_TOR_AS" "$VW_GOBGP_V4" "$VW_GOBGP_V6" ||
    vw_die "cannot write $mrt"
  # gobgp 3.10's inject exits before the tail of its stream reaches gobgpd
  # (mrt_table.py writes the table twice for that); check the RIB holds the
  # whole table, and inject again if not (same paths: no duplicates).
  local want=$((256 + VW_ROUTER_EXPORT)) have=0 try
  for try in 1 2 3 4 5; do
    vw_gobgp_tor_cli mrt inject global "$mrt" >"$VW_RUN_DIR/gobgp/inject.log" 2>&1 ||
      vw_die "gobgp mrt inject failed (see $VW_RUN_DIR/gobgp/inject.log)"
    [[ ! -s $VW_RUN_DIR/gobgp/inject.log ]] ||
      vw_die "gobgp mrt inject complained: $(head -n 3 "$VW_RUN_DIR/gobgp/inject.log")"
    vw_wait_until now 3000 vw_gobgp_tor_rib_has "$want" >/dev/null && break
  done
  have=$(vw_gobgp_tor_rib_count)
  ((have >= want)) || vw_die "gobgpd holds $have of $want export routes after $try injects"
  vw_info "gobgpd: export table ($want routes) injected in $(($(vw_now_ms) - t0)) ms ($try inject(s))"
}

# Routes in gobgpd's global RIB, both families.
vw_gobgp_tor_rib_count() {
  local af n total=0
  for af in ipv4 ipv6; do
    n=$(vw_gobgp_tor_cli global rib -a "$af" summary | sed -n 's/.*Destination: \([0-9]*\).*/\1/p')
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
vw_gobgp_tor_rib_has() { (($(vw_gobgp_tor_rib_count) >= $1)); }

# ----------------------------------------------------------- both routers --

vw_router_start() {
  case $1 in
    bird) vw_bird_start ;;
    frr) vw_frr_start ;;
    gobgp) vw_gobgp_tor_start ;;
    *) vw_die "unknown router $1" ;;
  esac
}

# Stop the router (SIGKILL = crash): BIRD, or FRR's bgpd and zebra.
vw_router_stop() {
  local r=$1 sig=${2:-TERM}
  vw_stop "$r" "$sig" 5000
  if [[ $r == frr ]]; then vw_stop frr-zebra "$sig" 5000; fi
}

vw_router_log() {
  case $1 in
    bird) printf '%s\n' "$VW_RUN_DIR/bird/bird.log" ;;
    frr) printf '%s\n' "$VW_RUN_DIR/frr/bgpd.log" ;;
    gobgp) printf '%s\n' "$VW_RUN_DIR/gobgp/gobgpd.log" ;;
  esac
}

vw_router_label() {
  case $1 in bird) echo "BIRD" ;; frr) echo "FRR" ;; gobgp) echo "GoBGP" ;; *) echo "$1" ;; esac
}

# The node's address as seen by router R.
vw_router_peer_addr() {
  case $1 in bird) echo "$VW_NODE_BIRD_V4" ;; frr) echo "$VW_NODE_FRR_V4" ;; gobgp) echo "$VW_NODE_GOBGP_V4" ;; esac
}

# The node's IPv6 address on the link to router R (its IPv6 next hop).
vw_router_peer_addr6() {
  case $1 in bird) echo "$VW_NODE_BIRD_V6" ;; frr) echo "$VW_NODE_FRR_V6" ;; gobgp) echo "$VW_NODE_GOBGP_V6" ;; esac
}

# Router R's own address on the link to the node.
vw_router_addr() {
  case $1 in bird) echo "$VW_BIRD_V4" ;; frr) echo "$VW_FRR_V4" ;; gobgp) echo "$VW_GOBGP_V4" ;; esac
}

# Router R's namespace.
vw_router_ns() {
  case $1 in bird) echo "$VW_NS_BIRD" ;; frr) echo "$VW_NS_FRR" ;; gobgp) echo "$VW_NS_GOBGP" ;; esac
}

# vw_router_route_json ROUTER PREFIX: normalized JSON for PREFIX at ROUTER:
# {"present": bool, "as_path": [[type, [asn...]]...], "as_path_str": "...",
#  "communities": [...], "large_communities": [...], "next_hop": "...",
#  "med": N}
vw_router_route_json() {
  local r=$1 p=$2 af=ipv4
  [[ $p == *:* ]] && af=ipv6
  case $r in
    bird) vw_birdc show route "$p" all 2>&1 | python3 "$VW_TESTBED_DIR/lib/route_query.py" bird-route "$p" ;;
    frr) vw_vtysh -c "show bgp $af unicast $p json" 2>&1 | python3 "$VW_TESTBED_DIR/lib/route_query.py" frr-route "$p" ;;
    gobgp) vw_gobgp_tor_cli global rib -a "$af" "$p" -j 2>&1 | python3 "$VW_TESTBED_DIR/lib/route_query.py" gobgp-route "$p" ;;
    *) vw_die "unknown router $r" ;;
  esac
}

vw_json_get() {
  python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1:]:
    v=v[k] if not isinstance(v,list) else v[int(k)]
print(" ".join(map(str,v)) if isinstance(v,list) else ("true" if v is True else "false" if v is False else v))' "$@"
}

# Fast presence check, used in tight polling loops.
router_has_prefix() {
  local r=$1 p=$2 af=ipv4 out
  [[ $p == *:* ]] && af=ipv6
  case $r in
    bird)
      out=$(vw_birdc show route "$p" 2>/dev/null) || return 1
      # A route line starts with the prefix; "Network not found" otherwise.
      grep -q "^${p}[[:space:]]" <<<"$out"
      ;;
    frr)
      out=$(vw_vtysh -c "show bgp $af unicast $p json" 2>/dev/null) || return 1
      grep -q '"paths"' <<<"$out" && grep -q '"valid":true' <<<"$(tr -d ' \n' <<<"$out")"
      ;;
    gobgp)
      out=$(vw_gobgp_tor_cli global rib -a "$af" "$p" -j 2>/dev/null) || return 1
      grep -q "\"$p\":\[{" <<<"$out"
      ;;
    *) vw_die "unknown router $r" ;;
  esac
}

# AS_PATH as printed by the router, normalised to "65101 65101" (sets shown
# as {a b}).
router_as_path() { vw_router_route_json "$1" "$2" | vw_json_get as_path_str; }
# Communities "a:b" space separated, sorted.
router_communities() { vw_router_route_json "$1" "$2" | vw_json_get communities; }
# Large communities "a:b:c" space separated, sorted.
router_large_communities() { vw_router_route_json "$1" "$2" | vw_json_get large_communities; }
router_next_hop() { vw_router_route_json "$1" "$2" | vw_json_get next_hop; }
router_med() { vw_router_route_json "$1" "$2" | vw_json_get med; }

# vw_router_session_json ROUTER: {"state": "Established"|..., "uptime_ms": N|null}
vw_router_session_json() {
  local r=$1 peer
  peer=$(vw_router_peer_addr "$r")
  case $r in
    bird) vw_birdc show protocols all node1 2>&1 | python3 "$VW_TESTBED_DIR/lib/route_query.py" bird-session "$peer" ;;
    frr) vw_vtysh -c "show bgp neighbors $peer json" 2>&1 | python3 "$VW_TESTBED_DIR/lib/route_query.py" frr-session "$peer" ;;
    gobgp) vw_gobgp_tor_cli neighbor "$peer" -j 2>&1 | python3 "$VW_TESTBED_DIR/lib/route_query.py" gobgp-session "$peer" ;;
  esac
}

# BGP FSM state of the session to the node: Established, Active, Idle, ...
router_session_state() { vw_router_session_json "$1" | vw_json_get state; }
# Milliseconds since the session reached Established (empty when down).
router_session_uptime_ms() { vw_router_session_json "$1" | vw_json_get uptime_ms; }
router_session_established() { [[ $(router_session_state "$1") == Established ]]; }

# vw_show_router ROUTER: one-screen view of the session and the VIP routes.
vw_show_router() {
  local r=$1 p state up
  state=$(router_session_state "$r")
  up=$(router_session_uptime_ms "$r")
  if [[ $state == Established ]]; then
    printf '%-5s session to node1: %s (up %s s)\n' "$(vw_router_label "$r")" "$state" "$((up / 1000))"
  else
    printf '%-5s session to node1: %s\n' "$(vw_router_label "$r")" "${state:-unknown}"
  fi
  for p in "$VW_VIP4_PREFIX" "$VW_VIP6_PREFIX"; do
    if router_has_prefix "$r" "$p"; then
      vw_router_route_json "$r" "$p" | python3 "$VW_TESTBED_DIR/lib/route_query.py" format-route "$p"
    else
      printf '      %-21s (no route)\n' "$p"
    fi
  done
}

# True if the node advertised the graceful restart capability in its OPEN
# (vipwarden must not: a restarting vipwarden must not leave stale routes).
router_peer_advertised_gr() {
  local r=$1 peer
  peer=$(vw_router_peer_addr "$r")
  case $r in
    bird)
      vw_birdc show protocols all node1 | sed -n '/Neighbor capabilities/,/Session:/p' | grep -q 'Graceful restart'
      ;;
    frr)
      vw_vtysh -c "show bgp neighbors $peer json" | python3 -c 'import json,sys
d = next(iter(json.load(sys.stdin).values()))
gr = d.get("neighborCapabilities", {}).get("gracefulRestartCapability", "")
sys.exit(0 if "eceived" in gr else 1)'
      ;;
    gobgp)
      vw_gobgp_tor_cli neighbor "$peer" -j | python3 -c 'import json,sys
d = json.load(sys.stdin)
caps = d.get("state", {}).get("remote_cap", []) or []
sys.exit(0 if any("GracefulRestart" in c.get("type_url", "") for c in caps) else 1)'
      ;;
  esac
}
