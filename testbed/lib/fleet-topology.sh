# shellcheck shell=bash
# Fleet lab (issue 8): three nodes announcing one shared VIP behind two ToRs
# that send every path back (RFC 7911 ADD-PATH), and a client using ECMP.
#
#                vw-client  (ECMP 203.0.113.0/24 via both ToRs)
#               192.0.2.2 |            | 192.0.2.6
#          vw-tor-bird (AS 65000)   vw-tor-frr (AS 65000)
#          add paths tx, export all  addpath-tx-all-paths, maximum-paths 3
#            |      |      |           |      |      |
#         vw-node1  vw-node2  vw-node3   (each: vipwarden AS 65101,
#                                         nginx on 203.0.113.10 on lo)
# Node i's links: to BIRD 198.51.100.(16(i-1)+2)/30 (ToR side +1 less),
#                 to FRR  198.51.100.(16(i-1)+6)/30 (ToR side +5).
#
# Source after lib.sh. Same namespaces names as the one-node lab (vw-node1,
# vw-tor-bird, vw-tor-frr, vw-client) plus vw-node2/3: the lab lock
# (vw_run_dir_init) keeps runs apart; vw_cleanup removes everything.
#
#   VW_FLEET_ADDPATH_BIRD=0 / VW_FLEET_ADDPATH_FRR=0: that ToR sends only its
#   best path (scenario 44, a ToR without add-path).

VW_FLEET_N=${VW_FLEET_N:-3}
VW_FLEET_ADDPATH_BIRD=${VW_FLEET_ADDPATH_BIRD:-1}
VW_FLEET_ADDPATH_FRR=${VW_FLEET_ADDPATH_FRR:-1}
VW_FLEET_UNHEALTHY=65101:666
# VW_FLEET_STRIP_LARGE_BIRD=1 / VW_FLEET_STRIP_LARGE_FRR=1: that ToR deletes every large
# community from what it sends to the nodes (the nodes lose the identities; scenario 48).
VW_FLEET_STRIP_LARGE_BIRD=${VW_FLEET_STRIP_LARGE_BIRD:-0}
VW_FLEET_STRIP_LARGE_FRR=${VW_FLEET_STRIP_LARGE_FRR:-0}

vw_fleet_ns() { echo "vw-node$1"; }
# Node i's address on its BIRD link / FRR link, and the ToR ends.
vw_fleet_node_bird() { echo "198.51.100.$((16 * ($1 - 1) + 2))"; }
vw_fleet_tor_bird() { echo "198.51.100.$((16 * ($1 - 1) + 1))"; }
vw_fleet_node_frr() { echo "198.51.100.$((16 * ($1 - 1) + 6))"; }
vw_fleet_tor_frr() { echo "198.51.100.$((16 * ($1 - 1) + 5))"; }
# Router id of node i (its BIRD-link address), as carried in its identity community.
vw_fleet_router_id() { vw_fleet_node_bird "$1"; }

vw_fleet_topology_up() {
  local i ns
  vw_info "fleet lab: $VW_FLEET_N nodes, BIRD + FRR ToRs, ECMP client"
  vw_netns_create "$VW_NS_BIRD"
  vw_netns_create "$VW_NS_FRR"
  vw_netns_create "$VW_NS_CLIENT"
  for ((i = 1; i <= VW_FLEET_N; i++)); do
    ns=$(vw_fleet_ns "$i")
    vw_netns_create "$ns"
    vw_link "$ns" "n$i-bird" "$VW_NS_BIRD" "bird-n$i"
    vw_addr "$ns" "n$i-bird" "$(vw_fleet_node_bird "$i")/30"
    vw_addr "$VW_NS_BIRD" "bird-n$i" "$(vw_fleet_tor_bird "$i")/30"
    vw_link "$ns" "n$i-frr" "$VW_NS_FRR" "frr-n$i"
    vw_addr "$ns" "n$i-frr" "$(vw_fleet_node_frr "$i")/30"
    vw_addr "$VW_NS_FRR" "frr-n$i" "$(vw_fleet_tor_frr "$i")/30"
    vw_addr "$ns" lo "$VW_VIP4/32"
    # Replies to the client go back through either ToR.
    vw_in "$ns" ip route add 192.0.2.0/30 via "$(vw_fleet_tor_bird "$i")"
    vw_in "$ns" ip route add 192.0.2.4/30 via "$(vw_fleet_tor_frr "$i")"
  done
  vw_link "$VW_NS_CLIENT" cl-bird "$VW_NS_BIRD" bird-cl
  vw_addr "$VW_NS_CLIENT" cl-bird "$VW_CLIENT_BIRD_V4/30"
  vw_addr "$VW_NS_BIRD" bird-cl "$VW_BIRD_CL_V4/30"
  vw_link "$VW_NS_CLIENT" cl-frr "$VW_NS_FRR" frr-cl
  vw_addr "$VW_NS_CLIENT" cl-frr "$VW_CLIENT_FRR_V4/30"
  vw_addr "$VW_NS_FRR" frr-cl "$VW_FRR_CL_V4/30"
  # Per-flow ECMP at the client and at both ToRs.
  local n
  for n in "$VW_NS_CLIENT" "$VW_NS_BIRD" "$VW_NS_FRR"; do
    vw_in "$n" sysctl -qw net.ipv4.fib_multipath_hash_policy=1
  done
  vw_in "$VW_NS_CLIENT" ip route replace 203.0.113.0/24 \
    nexthop via "$VW_BIRD_CL_V4" nexthop via "$VW_FRR_CL_V4"
}

vw_fleet_bird_config() {
  local dir=$1 i addpath="" export="export all;"
  ((VW_FLEET_ADDPATH_BIRD)) && addpath="add paths tx;"
  ((VW_FLEET_STRIP_LARGE_BIRD)) && export="export filter { bgp_large_community.delete([(*, *, *)]); accept; };"
  cat <<EOF
# vipwarden fleet lab: tor-bird (AS $VW_TOR_AS), every path to every node
log "$dir/bird.log" all;
timeformat log "%F %T.%3f";
timeformat protocol "%F %T.%3f";
timeformat route "%F %T.%3f";
router id 198.51.100.1;
protocol device { scan time 2; }
protocol kernel kernel4 {
  merge paths on;
  ipv4 { import none; export all; };
}
EOF
  for ((i = 1; i <= VW_FLEET_N; i++)); do
    cat <<EOF
protocol bgp node$i {
  local $(vw_fleet_tor_bird "$i") as $VW_TOR_AS;
  neighbor $(vw_fleet_node_bird "$i") as $VW_LOCAL_AS;
  passive on;
  hold time $VW_HOLD_TIME;
  keepalive time $((VW_HOLD_TIME / 3));
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 5;
  error forget time 10;
  debug { states, routes, events };
  ipv4 { import all; $export $addpath };
}
EOF
  done
}

vw_fleet_frr_config() {
  local dir=$1 i peer
  cat <<EOF
! vipwarden fleet lab: tor-frr (AS $VW_TOR_AS), every path to every node
frr defaults traditional
hostname tor-frr
log file $dir/bgpd.log debugging
log timestamp precision 3
debug bgp neighbor-events
debug bgp updates in
!
router bgp $VW_TOR_AS
 bgp router-id $VW_FRR_CL_V4
 bgp log-neighbor-changes
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
EOF
  for ((i = 1; i <= VW_FLEET_N; i++)); do
    peer=$(vw_fleet_node_frr "$i")
    printf ' neighbor %s remote-as %s\n neighbor %s passive\n neighbor %s timers %s %s\n' \
      "$peer" "$VW_LOCAL_AS" "$peer" "$peer" $((VW_HOLD_TIME / 3)) "$VW_HOLD_TIME"
  done
  printf ' !\n address-family ipv4 unicast\n  maximum-paths %s\n' "$VW_FLEET_N"
  for ((i = 1; i <= VW_FLEET_N; i++)); do
    peer=$(vw_fleet_node_frr "$i")
    printf '  neighbor %s activate\n' "$peer"
    ((VW_FLEET_ADDPATH_FRR)) && printf '  neighbor %s addpath-tx-all-paths\n' "$peer"
    ((VW_FLEET_STRIP_LARGE_FRR)) && printf '  neighbor %s route-map strip-large out\n' "$peer"
  done
  printf ' exit-address-family\n!\n'
  ((VW_FLEET_STRIP_LARGE_FRR)) && printf 'route-map strip-large permit 10\n set large-community none\n!\n'
  return 0
}

vw_fleet_routers_start() {
  local dir=$VW_RUN_DIR/bird
  mkdir -p "$dir"
  vw_fleet_bird_config "$dir" >"$dir/bird.conf"
  vw_spawn bird "$VW_NS_BIRD" "$dir/stdout.log" \
    bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid"
  vw_wait_until now 5000 vw_birdc show status >/dev/null || vw_die "BIRD did not start"
  dir=$VW_RUN_DIR/frr
  mkdir -p "$dir"
  vw_fleet_frr_config "$dir" >"$dir/bgpd.conf"
  chown frr:frr "$dir" 2>/dev/null || true
  vw_frr_zebra_start "$dir"
  vw_spawn frr "$VW_NS_FRR" "$dir/stdout.log" \
    "$VW_FRR_BGPD" -z "$dir/zserv.api" --skip_runas \
    -f "$dir/bgpd.conf" -i "$dir/bgpd.pid" --vty_socket "$dir" -A 127.0.0.1 -P 0
  vw_wait_until now 10000 vw_vtysh -c 'show bgp summary' >/dev/null || vw_die "FRR bgpd did not start"
}

# nginx on node i: answers "served by vw-nodeI" on the VIP.
vw_fleet_nginx_start() {
  local i=$1 dir=$VW_RUN_DIR/nginx$1
  mkdir -p "$dir"
  vw_nginx_conf "$dir" conns=64 "listen $VW_VIP4:80;" "$(vw_nginx_text / "served by vw-node$i")" >"$dir/nginx.conf"
  vw_nginx_spawn "nginx$i" "$(vw_fleet_ns "$i")" "$dir"
}

vw_fleet_nginx_stop() { vw_stop "nginx$1" TERM 5000; }

vw_fleet_up() {
  local i
  vw_fleet_topology_up
  vw_fleet_routers_start
  for ((i = 1; i <= VW_FLEET_N; i++)); do vw_fleet_nginx_start "$i"; done
  vw_info "fleet lab up (run dir $VW_RUN_DIR)"
}

# VW_FLEET_WHEN_BLIND (default hold); "default" leaves the key out (the daemon's own default).
vw_fleet_when_blind_line() {
  [[ ${VW_FLEET_WHEN_BLIND:-hold} == default ]] || printf '      when_blind: %s\n' "${VW_FLEET_WHEN_BLIND:-hold}"
}

# vipwarden config for node i. Extra YAML for the VIP (indented 4) in
# $VW_FLEET_GUARD, under fleet: (indented 2) in $VW_FLEET_EXTRA, top-level extra in $VW_FLEET_TOP.
vw_fleet_vipwarden_config() {
  local i=$1
  cat <<EOF
# Generated by testbed/lib/fleet-topology.sh for vw-node$i.
router_id: $(vw_fleet_router_id "$i")
local_as: $VW_LOCAL_AS
api:
  listen: 127.0.0.1:9180
  token_file: $VW_RUN_DIR/api-token
# Per node and per run: drains must not leak into another node or run.
state_dir: $VW_RUN_DIR/state$i
peers:
  - name: tor-bird
    address: $(vw_fleet_tor_bird "$i")
    remote_as: $VW_TOR_AS
    local_address: $(vw_fleet_node_bird "$i")
    hold_time: ${VW_HOLD_TIME}s
  - name: tor-frr
    address: $(vw_fleet_tor_frr "$i")
    remote_as: $VW_TOR_AS
    local_address: $(vw_fleet_node_frr "$i")
    hold_time: ${VW_HOLD_TIME}s
fleet:
  unhealthy_community: "$VW_FLEET_UNHEALTHY"
  settle: ${VW_FLEET_SETTLE:-3s}
${VW_FLEET_EXTRA:-}
checks:
  - name: web
    type: tcp
    target: $VW_VIP4:80
    interval: 500ms
    timeout: 300ms
    rise: 2
    fall: 2
vips:
  - name: web
    prefixes: [$VW_VIP4_PREFIX]
    checks: [web]
    require: all
    guard:
      min_healthy_others: 1
$(vw_fleet_when_blind_line)
${VW_FLEET_GUARD:-}
${VW_FLEET_TOP:-}
EOF
}

vw_fleet_vipwarden_start() {
  local i=$1 bin conf=$VW_RUN_DIR/vipwarden$1.yaml
  bin=$(vw_vipwarden_bin)
  if [[ ! -s $VW_RUN_DIR/api-token ]]; then
    (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VW_RUN_DIR/api-token")
  fi
  vw_fleet_vipwarden_config "$i" >"$conf"
  vw_vipwarden_check "$conf" "$VW_RUN_DIR/check-config$i.log"
  vw_spawn "vipwarden$i" "$(vw_fleet_ns "$i")" "$VW_RUN_DIR/vipwarden$i.log" \
    "$bin" run --config "$conf" -v
}

# vipwarden CLI against node i's daemon.
vw_fleet_cli() {
  local i=$1 bin
  shift
  bin=$(vw_vipwarden_bin)
  vw_in "$(vw_fleet_ns "$i")" "$bin" "$@" --config "$VW_RUN_DIR/vipwarden$i.yaml"
}

# Number of paths for the VIP at ROUTER, and how many carry the unhealthy
# community: prints "TOTAL MARKED".
vw_fleet_route_counts() {
  local r=$1
  case $r in
    bird)
      vw_birdc show route "$VW_VIP4_PREFIX" all 2>/dev/null | python3 -c '
import sys
t = m = 0
for line in sys.stdin:
    s = line.strip()
    if "unicast [node" in s:
        t += 1
    if "BGP.community" in s and "(65101,666)" in s:
        m += 1
print(t, m)'
      ;;
    frr)
      vw_vtysh -c "show bgp ipv4 unicast $VW_VIP4_PREFIX json" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print(0, 0); sys.exit()
paths = d.get("paths", [])
m = sum(1 for p in paths if "65101:666" in p.get("community", {}).get("string", ""))
print(len(paths), m)'
      ;;
  esac
}

# ---------------------------------------------------------------------------
# Validation of the router side with gobgpd as the nodes (no vipwarden): each
# node announces the VIP and asks for ADD-PATH receive; prints, per node and
# ToR, how many paths for the VIP the node received. Used once by hand to
# confirm that BIRD and FRR send the other nodes' paths back.
vw_fleet_gobgp_node_start() {
  local i=$1 dir=$VW_RUN_DIR/gobgp-n$1 port=$((50070 + $1)) ns
  ns=$(vw_fleet_ns "$i")
  mkdir -p "$dir"
  cat >"$dir/gobgpd.toml" <<EOF
[global.config]
  as = $VW_LOCAL_AS
  router-id = "$(vw_fleet_router_id "$i")"
  port = -1
EOF
  local peer src
  for peer in bird frr; do
    if [[ $peer == bird ]]; then
      src=$(vw_fleet_node_bird "$i") peer=$(vw_fleet_tor_bird "$i")
    else
      src=$(vw_fleet_node_frr "$i") peer=$(vw_fleet_tor_frr "$i")
    fi
    cat >>"$dir/gobgpd.toml" <<EOF
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$peer"
    peer-as = $VW_TOR_AS
  [neighbors.transport.config]
    local-address = "$src"
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      receive = true
EOF
  done
  vw_spawn "gobgpd-n$i" "$ns" "$dir/gobgpd.log" \
    gobgpd -f "$dir/gobgpd.toml" --pprof-disable --api-hosts "127.0.0.1:$port" --log-level info
  vw_wait_until now 5000 vw_in "$ns" gobgp -p "$port" global >/dev/null || vw_die "gobgpd n$i did not start"
  vw_in "$ns" gobgp -p "$port" global rib -a ipv4 add "$VW_VIP4_PREFIX" \
    large-community "$VW_LOCAL_AS:22103:$i" origin igp
}
