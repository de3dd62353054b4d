# shellcheck shell=bash
# Two-uplink topology for the return-path scenarios (50-5x). Source after tests/common.sh; uses
# lib.sh's namespaces, spawn, lock and cleanup helpers.
#
#            vw-client 192.0.2.x/30
#                 |
#   ToR A: vw-tor-bird or vw-tor-frr (BGP with the node, installs the VIP route; clients come in here)
#                 | 198.51.100.0/30 (bird) or .4/30 (frr)
#   vw-node1: VIP 203.0.113.10/32 on lo, nginx on VIP:80 and VIP:443 (TLS), vipwarden
#                 | uplink B: n1-b 198.51.100.14/30
#   vw-upl-b 198.51.100.13/30: the main table's default route points here; it drops every packet
#             from the VIP (nftables), like a next hop that has no route back or filters by source.
#
# Broken: replies from the VIP follow the default route out of uplink B and die. Fix (what doctor
# prints): `ip route add default via <ToR A> dev <uplink A> table 100 && ip rule add from
# 203.0.113.10/32 table 100 priority 100`.

VW_NS_UPLB=vw-upl-b
VW_UPLB_GW=198.51.100.13
VW_NODE_UPLB=198.51.100.14
VW_RT_TABLE=100

# Per router: node side, router side, client side addresses and link names.
vw2_setup_vars() {
  local r=$VW_ROUTER
  VW2_NS_TOR=$VW_NS_BIRD
  VW2_IF_NODE=n1-bird VW2_IF_TOR=bird-n1 VW2_IF_CL=cl-bird VW2_IF_TORCL=bird-cl
  VW2_NODE=$VW_NODE_BIRD_V4 VW2_TOR=$VW_BIRD_V4
  VW2_CLIENT=$VW_CLIENT_BIRD_V4 VW2_TORCL=$VW_BIRD_CL_V4
  if [[ $r == frr ]]; then
    VW2_NS_TOR=$VW_NS_FRR
    VW2_IF_NODE=n1-frr VW2_IF_TOR=frr-n1 VW2_IF_CL=cl-frr VW2_IF_TORCL=frr-cl
    VW2_NODE=$VW_NODE_FRR_V4 VW2_TOR=$VW_FRR_V4
    VW2_CLIENT=$VW_CLIENT_FRR_V4 VW2_TORCL=$VW_FRR_CL_V4
  fi
}

vw2_topology_up() {
  vw2_setup_vars
  vw_info "two-uplink topology: ToR A = $VW_ROUTER, uplink B = $VW_NS_UPLB"
  vw_netns_create "$VW_NS_NODE"
  vw_netns_create "$VW2_NS_TOR"
  vw_netns_create "$VW_NS_UPLB"
  vw_netns_create "$VW_NS_CLIENT"
  # Uplink A: BGP and the clients' traffic.
  vw_link "$VW_NS_NODE" "$VW2_IF_NODE" "$VW2_NS_TOR" "$VW2_IF_TOR"
  vw_addr "$VW_NS_NODE" "$VW2_IF_NODE" "$VW2_NODE/30"
  vw_addr "$VW2_NS_TOR" "$VW2_IF_TOR" "$VW2_TOR/30"
  # The FRR ToR's config also names its IPv6 session address; harmless here.
  vw_link "$VW_NS_CLIENT" "$VW2_IF_CL" "$VW2_NS_TOR" "$VW2_IF_TORCL"
  vw_addr "$VW_NS_CLIENT" "$VW2_IF_CL" "$VW2_CLIENT/30"
  vw_addr "$VW2_NS_TOR" "$VW2_IF_TORCL" "$VW2_TORCL/30"
  vw_in "$VW_NS_CLIENT" ip route add 203.0.113.0/24 via "$VW2_TORCL"
  # Uplink B: the node's default route; drops everything from the VIP.
  vw_link "$VW_NS_NODE" n1-b "$VW_NS_UPLB" b-n1
  vw_addr "$VW_NS_NODE" n1-b "$VW_NODE_UPLB/30"
  vw_addr "$VW_NS_UPLB" b-n1 "$VW_UPLB_GW/30"
  vw_in "$VW_NS_NODE" ip route add default via "$VW_UPLB_GW" dev n1-b
  vw_in "$VW_NS_UPLB" nft -f - <<EOF
table inet vwlab {
  chain in { type filter hook prerouting priority 0; policy accept; ip saddr $VW_VIP4 counter drop; }
}
EOF
  vw_addr "$VW_NS_NODE" lo "$VW_VIP4/32"
  # Request sockets live 1+2+4 s instead of 63 s: the lab sees a stalled handshake end in seconds.
  vw_in "$VW_NS_NODE" sysctl -qw net.ipv4.tcp_synack_retries=2
}

# Drops counted at uplink B (packets from the VIP).
vw2_uplb_drops() {
  vw_in "$VW_NS_UPLB" nft list table inet vwlab | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}

vw2_fix_return_path() {
  vw_in "$VW_NS_NODE" ip route add default via "$VW2_TOR" dev "$VW2_IF_NODE" table "$VW_RT_TABLE"
  vw_in "$VW_NS_NODE" ip rule add from "$VW_VIP4/32" table "$VW_RT_TABLE" priority "$VW_RT_TABLE"
}

vw2_break_return_path() {
  vw_in "$VW_NS_NODE" ip rule del from "$VW_VIP4/32" table "$VW_RT_TABLE" priority "$VW_RT_TABLE"
  vw_in "$VW_NS_NODE" ip route flush table "$VW_RT_TABLE"
}

# nginx on the VIP: plain HTTP on 80, TLS on 443 (self-signed, CN vip.example, 30 days).
vw2_nginx_start() {
  local dir=$VW_RUN_DIR/nginx
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=vip.example \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  vw_nginx_conf "$dir" conns=512 "listen $VW_VIP4:80;" "listen $VW_VIP4:443 ssl;" \
    "ssl_certificate $dir/cert.pem;" "ssl_certificate_key $dir/key.pem;" \
    "$(vw_nginx_text / "served by vw-node1")" "$(vw_nginx_text "= /healthz" ok)" >"$dir/nginx.conf"
  vw_nginx_spawn nginx "$VW_NS_NODE" "$dir" 443
}

# vw2_config [WITHDRAW_WHEN_YAML]: tcp + http + https checks on the VIP, the handshakes signal,
# the API, one peer (ToR A).
vw2_config() {
  cat <<EOF
router_id: $VW2_NODE
local_as: $VW_LOCAL_AS
peers:
  - name: tor-a
    address: $VW2_TOR
    remote_as: $VW_TOR_AS
    local_address: $VW2_NODE
    hold_time: ${VW_HOLD_TIME}s
checks:
  - {name: web_tcp, type: tcp, target: "$VW_VIP4:80", interval: 1s, timeout: 500ms, rise: 2, fall: 2}
  - {name: web_http, type: http, url: "http://$VW_VIP4/healthz", interval: 1s, timeout: 500ms, rise: 2, fall: 2}
  - {name: web_https, type: https, url: "https://$VW_VIP4/healthz", insecure: true, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
signals:
  - {name: hs, type: handshakes, ports: [80, 443], interval: 500ms, window: 5s}
vips:
  - name: web
    prefixes: [$VW_VIP4_PREFIX]
    checks: [web_tcp, web_http, web_https]
    require: all
${1:-}
$(vw_api_yaml)
EOF
}

vw2_vipwarden_start() {
  vw2_config "${1:-}" >"$VW_RUN_DIR/vipwarden.yaml"
  vw_vipwarden_check "$VW_RUN_DIR/vipwarden.yaml"
  vw_vipwarden_spawn
}

# Bounded client load: one connection attempt every 100 ms for SECONDS, each with a 1 s budget
# (curl -k: the lab's certificate is self-signed). URL default http://VIP/.
vw2_client_load_start() {
  local name=$1 secs=$2 url=${3:-http://$VW_VIP4/}
  vw_spawn "$name" "$VW_NS_CLIENT" "$VW_RUN_DIR/$name.log" bash -c "
    end=\$((SECONDS + $secs))
    while ((SECONDS < end)); do
      curl -sk -o /dev/null --max-time 1 -w '%{http_code}\n' '$url' &
      sleep 0.1
    done
    wait"
}

vw2_client_ok() { [[ $(vw_in "$VW_NS_CLIENT" curl -sS --max-time 1 "http://$VW_VIP4/" 2>/dev/null) == "served by vw-node1" ]]; }
vw2_node_ok() { [[ $(vw_in "$VW_NS_NODE" curl -sS --max-time 1 "http://$VW_VIP4/" 2>/dev/null) == "served by vw-node1" ]]; }
vw2_half_open() { vw_in "$VW_NS_NODE" ss -Htn state syn-recv "( sport = :80 or sport = :443 )" | wc -l; }

vw2_doctor() {
  local bin
  bin=$(vw_vipwarden_bin)
  vw_in "$VW_NS_NODE" "$bin" doctor --config "$VW_RUN_DIR/vipwarden.yaml" --client "$VW2_CLIENT" "$@"
}

vw2_probe() {
  local bin
  bin=$(vw_vipwarden_bin)
  vw_in "$VW_NS_NODE" "$bin" probe --config "$VW_RUN_DIR/vipwarden.yaml" "$@"
}

# vw2_test_begin "description": run dir (takes the lab lock), cleanup trap, topology, ToR A, nginx.
vw2_test_begin() {
  printf '=== %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "$1"
  vw_run_dir_init
  trap 'vw_test_on_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  vw2_topology_up
  vw_router_start "$VW_ROUTER"
  vw2_nginx_start
}
