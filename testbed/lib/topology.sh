# shellcheck shell=bash
# Lab topology: namespaces, links, addresses, nginx, vipwarden, gobgpd.
#
#   vw-tor-bird (BIRD 2, AS 65000)          vw-tor-frr (FRR bgpd, AS 65000)
#    bird-n1 198.51.100.1/30                  frr-n1 198.51.100.5/30
#            2001:db8:1::1/64                        2001:db8:2::1/64
#        |                                        |
#    n1-bird 198.51.100.2/30                  n1-frr 198.51.100.6/30
#            2001:db8:1::2/64                        2001:db8:2::2/64
#   vw-node1 (vipwarden AS 65101, nginx on the VIPs bound to lo:
#             203.0.113.10/32, 2001:db8:10::10/128)
#        |
#    n1-gobgp 198.51.100.10/30, 2001:db8:3::2/64   (only when the lab runs gobgp)
#    gobgp-n1 198.51.100.9/30,  2001:db8:3::1/64
#   vw-tor-gobgp (gobgpd, AS 65000; no FIB: gobgpd does not program the kernel)
#
# Sourced by lib.sh.

VW_NS_NODE=vw-node1
VW_NS_BIRD=vw-tor-bird
VW_NS_FRR=vw-tor-frr
VW_NS_GOBGP=vw-tor-gobgp

VW_LOCAL_AS=65101
VW_TOR_AS=65000

VW_NODE_BIRD_V4=198.51.100.2
VW_NODE_BIRD_V6=2001:db8:1::2
VW_BIRD_V4=198.51.100.1
VW_BIRD_V6=2001:db8:1::1
VW_NODE_FRR_V4=198.51.100.6
VW_NODE_FRR_V6=2001:db8:2::2
VW_FRR_V4=198.51.100.5
VW_FRR_V6=2001:db8:2::1
VW_NODE_GOBGP_V4=198.51.100.10
VW_NODE_GOBGP_V6=2001:db8:3::2
VW_GOBGP_V4=198.51.100.9
VW_GOBGP_V6=2001:db8:3::1

# Client behind both ToRs (traffic through the announced routes).
VW_NS_CLIENT=vw-client
VW_CLIENT_BIRD_V4=192.0.2.2
VW_CLIENT_BIRD_V6=2001:db8:100::2
VW_BIRD_CL_V4=192.0.2.1
VW_BIRD_CL_V6=2001:db8:100::1
VW_CLIENT_FRR_V4=192.0.2.6
VW_CLIENT_FRR_V6=2001:db8:101::2
VW_FRR_CL_V4=192.0.2.5
VW_FRR_CL_V6=2001:db8:101::1

VW_VIP4=203.0.113.10
VW_VIP6=2001:db8:10::10
VW_VIP4_PREFIX=$VW_VIP4/32
VW_VIP6_PREFIX=$VW_VIP6/128

# Router hold time (s) configured on the ToRs; the session uses the minimum
# of both sides, vipwarden defaults to 9s too.
VW_HOLD_TIME=${VW_HOLD_TIME:-9}

# -------------------------------------------------------------- topology --

vw_topology_up() {
  vw_info "creating namespaces and links"
  vw_netns_create "$VW_NS_NODE"
  vw_netns_create "$VW_NS_BIRD"
  vw_netns_create "$VW_NS_FRR"

  vw_link "$VW_NS_NODE" n1-bird "$VW_NS_BIRD" bird-n1
  vw_addr "$VW_NS_NODE" n1-bird "$VW_NODE_BIRD_V4/30"
  vw_addr "$VW_NS_NODE" n1-bird "$VW_NODE_BIRD_V6/64"
  vw_addr "$VW_NS_BIRD" bird-n1 "$VW_BIRD_V4/30"
  vw_addr "$VW_NS_BIRD" bird-n1 "$VW_BIRD_V6/64"

  vw_link "$VW_NS_NODE" n1-frr "$VW_NS_FRR" frr-n1
  vw_addr "$VW_NS_NODE" n1-frr "$VW_NODE_FRR_V4/30"
  vw_addr "$VW_NS_NODE" n1-frr "$VW_NODE_FRR_V6/64"
  vw_addr "$VW_NS_FRR" frr-n1 "$VW_FRR_V4/30"
  vw_addr "$VW_NS_FRR" frr-n1 "$VW_FRR_V6/64"

  if [[ " ${VW_LAB_ROUTERS:-} " == *" gobgp "* ]]; then
    vw_netns_create "$VW_NS_GOBGP"
    vw_link "$VW_NS_NODE" n1-gobgp "$VW_NS_GOBGP" gobgp-n1
    vw_addr "$VW_NS_NODE" n1-gobgp "$VW_NODE_GOBGP_V4/30"
    vw_addr "$VW_NS_NODE" n1-gobgp "$VW_NODE_GOBGP_V6/64"
    vw_addr "$VW_NS_GOBGP" gobgp-n1 "$VW_GOBGP_V4/30"
    vw_addr "$VW_NS_GOBGP" gobgp-n1 "$VW_GOBGP_V6/64"
  fi

  # The VIPs live on the node's loopback, as on a real anycast backend.
  vw_addr "$VW_NS_NODE" lo "$VW_VIP4/32"
  vw_addr "$VW_NS_NODE" lo "$VW_VIP6/128"

  vw_client_up
}

# vw-client hangs off both ToRs. It reaches the VIP only through the route
# the ToR learned by BGP (vw_client_via picks which ToR); the node returns
# traffic to the client networks statically.
vw_client_up() {
  vw_netns_create "$VW_NS_CLIENT"
  vw_link "$VW_NS_CLIENT" cl-bird "$VW_NS_BIRD" bird-cl
  vw_addr "$VW_NS_CLIENT" cl-bird "$VW_CLIENT_BIRD_V4/30"
  vw_addr "$VW_NS_CLIENT" cl-bird "$VW_CLIENT_BIRD_V6/64"
  vw_addr "$VW_NS_BIRD" bird-cl "$VW_BIRD_CL_V4/30"
  vw_addr "$VW_NS_BIRD" bird-cl "$VW_BIRD_CL_V6/64"
  vw_link "$VW_NS_CLIENT" cl-frr "$VW_NS_FRR" frr-cl
  vw_addr "$VW_NS_CLIENT" cl-frr "$VW_CLIENT_FRR_V4/30"
  vw_addr "$VW_NS_CLIENT" cl-frr "$VW_CLIENT_FRR_V6/64"
  vw_addr "$VW_NS_FRR" frr-cl "$VW_FRR_CL_V4/30"
  vw_addr "$VW_NS_FRR" frr-cl "$VW_FRR_CL_V6/64"
  vw_in "$VW_NS_NODE" ip route add 192.0.2.0/30 via "$VW_BIRD_V4"
  vw_in "$VW_NS_NODE" ip route add 192.0.2.4/30 via "$VW_FRR_V4"
  vw_in "$VW_NS_NODE" ip -6 route add 2001:db8:100::/64 via "$VW_BIRD_V6"
  vw_in "$VW_NS_NODE" ip -6 route add 2001:db8:101::/64 via "$VW_FRR_V6"
  vw_client_via bird
}

# vw_client_via ROUTER: the client sends VIP traffic to ROUTER.
vw_client_via() {
  local gw4 gw6
  case $1 in
    bird) gw4=$VW_BIRD_CL_V4 gw6=$VW_BIRD_CL_V6 ;;
    frr) gw4=$VW_FRR_CL_V4 gw6=$VW_FRR_CL_V6 ;;
  esac
  vw_in "$VW_NS_CLIENT" ip route replace 203.0.113.0/24 via "$gw4"
  vw_in "$VW_NS_CLIENT" ip -6 route replace 2001:db8:10::/48 via "$gw6"
}

# vw_client_get URL_HOST: HTTP GET from the client (1 s budget); prints body.
vw_client_get() {
  vw_in "$VW_NS_CLIENT" curl -sS --max-time 1 "http://$1/"
}

# True if ROUTER's kernel FIB has a route for ADDRESS (not just a default).
vw_router_fib_has() {
  local r=$1 addr=$2 ns=$VW_NS_BIRD
  [[ $r == frr ]] && ns=$VW_NS_FRR
  vw_in "$ns" ip route get "$addr" >/dev/null 2>&1
}

# vw_lab_up [ROUTERS...]: topology + routers (default: bird frr) + nginx.
# BIRD's and FRR's namespaces always exist; gobgp's only when it is listed.
vw_lab_up() {
  local routers=("$@") r
  ((${#routers[@]})) || routers=(bird frr)
  VW_LAB_ROUTERS="${routers[*]}"
  vw_topology_up
  for r in "${routers[@]}"; do vw_router_start "$r"; done
  vw_nginx_start
  vw_info "lab up (run dir $VW_RUN_DIR)"
}

vw_lab_down() {
  vw_stop_all
  vw_netns_delete_all
}

# ------------------------------------------------------------------ nginx --

# Passive-signal scenarios (set before vw_lab_up):
#  VW_NGINX_ACCESS_LOG=1   access log $VW_RUN_DIR/nginx/access.log in vipwarden's
#                          "nginx" format (combined + " $request_time"); "/"
#                          answers 503 while $VW_RUN_DIR/nginx/fail exists
#                          (vw_nginx_fail on|off)
#  VW_NGINX_UPSTREAM=H:P   "/" is proxied to H:P instead (e.g. a slow backend)
VW_NGINX_ACCESS_LOG=${VW_NGINX_ACCESS_LOG:-0}
VW_NGINX_UPSTREAM=${VW_NGINX_UPSTREAM:-}

# The anycast service on node1, listening only on the VIPs.
vw_nginx_config() {
  local dir=$VW_RUN_DIR/nginx access=() root
  root=$(vw_nginx_text / "served by vw-node1")
  if [[ $VW_NGINX_ACCESS_LOG == 1 ]]; then
    access=(access_log=timed)
    root="location / {
      default_type text/plain;
      if (-f $dir/fail) { return 503 \"failing\\n\"; }
      return 200 \"served by vw-node1\\n\";
    }"
  fi
  if [[ -n $VW_NGINX_UPSTREAM ]]; then
    root="location / { proxy_pass http://$VW_NGINX_UPSTREAM; proxy_read_timeout 30s; }"
  fi
  # Health endpoint: 503 while the file "maintenance" exists (drain without
  # stopping nginx; see vw_nginx_drain).
  vw_nginx_conf "$dir" "${access[@]}" "listen $VW_VIP4:80;" "listen [$VW_VIP6]:80;" "$root" \
    "location = /healthz {
      default_type text/plain;
      if (-f $dir/maintenance) { return 503 \"draining\\n\"; }
      return 200 \"ok\\n\";
    }"
}

vw_nginx_start() {
  local dir=$VW_RUN_DIR/nginx
  mkdir -p "$dir"
  vw_nginx_config >"$dir/nginx.conf"
  vw_nginx_spawn nginx "$VW_NS_NODE" "$dir"
  vw_info "nginx up on $VW_VIP4:80 and [$VW_VIP6]:80 (PID $(vw_pid_of nginx))"
}

# nginx master exits on SIGTERM (fast shutdown) and takes its worker along.
vw_nginx_stop() { vw_stop nginx TERM 5000; }

# Health endpoint answers 503 (on) or 200 (off); nginx keeps serving.
vw_nginx_drain() {
  case $1 in
    on) : >"$VW_RUN_DIR/nginx/maintenance" ;;
    off) rm -f "$VW_RUN_DIR/nginx/maintenance" ;;
  esac
}

# "/" answers 503 (on) or 200 (off) with VW_NGINX_ACCESS_LOG=1; /healthz is
# not affected.
vw_nginx_fail() {
  case $1 in
    on) : >"$VW_RUN_DIR/nginx/fail" ;;
    off) rm -f "$VW_RUN_DIR/nginx/fail" ;;
  esac
}

vw_nginx_listening() {
  vw_in "$VW_NS_NODE" bash -c "exec 3<>/dev/tcp/$VW_VIP4/80" 2>/dev/null
}

# ---------------------------------------------------------------- vipwarden --

# Locate the binary: $VIPWARDEN_BIN, else target/release/vipwarden in the repo
# root, building it when missing.
# The Rust toolchain a --locked build needs: the crate's rust-version is 1.85,
# its locked dependencies need 1.89 (uuid 1.29.3; see Cargo.toml). Debian 12
# packages rustc 1.63 and Debian 13 1.85.1: neither builds it; trixie-backports
# or rustup do.
VW_RUST_MIN=1.89

# vw_cargo: prints the cargo to build with (PATH, else ~/.cargo/bin), or dies
# saying what to install when there is none or its rustc is too old.
vw_cargo() {
  local cargo=cargo rustc=rustc have home
  if ! command -v cargo >/dev/null 2>&1; then
    # Under sudo, HOME is root's: rustup installed by the invoking user lives in theirs.
    for home in "${HOME:-/root}" ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)"}; do
      cargo=$home/.cargo/bin/cargo rustc=$home/.cargo/bin/rustc
      [[ -x $cargo ]] && break
    done
    [[ -x $cargo ]] || vw_die "no Rust toolchain (cargo not found): vipwarden needs rustc >= $VW_RUST_MIN. On Debian 12 (rustc 1.63 packaged) install it with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal, then . \"\$HOME/.cargo/env\"; on Debian 13 (rustc 1.85.1 packaged, too old for the locked dependencies): apt-get install -t trixie-backports cargo rustc, or rustup. See README.md, 'The Rust toolchain'. Or set VIPWARDEN_BIN=/path/to/vipwarden."
  fi
  have=$("$rustc" --version 2>/dev/null | awk '{print $2}')
  if [[ -z $have || $(printf '%s\n%s\n' "$VW_RUST_MIN" "${have%%-*}" | sort -V | head -1) != "$VW_RUST_MIN" ]]; then
    vw_die "rustc ${have:-(none)} is too old: vipwarden needs rustc >= $VW_RUST_MIN. Install a current one with rustup (https://rustup.rs; see README.md, 'The Rust toolchain'), or set VIPWARDEN_BIN=/path/to/vipwarden."
  fi
  printf '%s\n' "$cargo"
}

# vw_vipwarden_bin: the release binary, built when missing or older than any
# source file (a stale binary after a pull would demo yesterday's code).
vw_vipwarden_bin() {
  if [[ -n ${VIPWARDEN_BIN:-} ]]; then
    [[ -x $VIPWARDEN_BIN ]] || vw_die "VIPWARDEN_BIN=$VIPWARDEN_BIN is not executable"
    printf '%s\n' "$VIPWARDEN_BIN"
    return
  fi
  local bin=$VW_REPO_ROOT/target/release/vipwarden newer='' cargo src
  if [[ -x $bin ]]; then
    for src in "$VW_REPO_ROOT/src" "$VW_REPO_ROOT/Cargo.toml" "$VW_REPO_ROOT/Cargo.lock" "$VW_REPO_ROOT/build.rs"; do
      [[ -e $src ]] || continue
      newer=$(find "$src" -type f -newer "$bin" -print -quit 2>/dev/null)
      [[ -z $newer ]] || break
    done
    if [[ -z $newer ]]; then
      printf '%s\n' "$bin"
      return
    fi
    vw_info "$newer is newer than $bin: rebuilding"
  fi
  cargo=$(vw_cargo) || exit 1
  vw_info "building vipwarden (cargo build --release) in $VW_REPO_ROOT"
  (cd "$VW_REPO_ROOT" && "$cargo" build --release --locked --bin vipwarden >&2) ||
    vw_die "cargo build --release failed"
  [[ -x $bin ]] || vw_die "cargo build --release left no $bin"
  # cargo leaves the file's time alone when nothing changed (e.g. only a comment's mtime moved).
  touch "$bin"
  printf '%s\n' "$bin"
}

# vw_vipwarden_config [KEY=VALUE...] > FILE. Keys: prepend, interval, timeout,
# rise, fall, hold, peers (bird,frr,gobgp; default $VW_PEERS or bird,frr),
# peer_extra (YAML lines appended to every peer, indented 4 spaces),
# check_type (tcp|http|listener|process), med,
# bfd (flow YAML, set on the peers listed in $VW_BFD),
# vip_extra (YAML lines appended to the VIP, indented 4 spaces),
# top_extra (YAML lines appended at the top level).
vw_vipwarden_config() {
  local prepend=0 interval=1s timeout=500ms rise=2 fall=2 hold=${VW_HOLD_TIME}s
  local peers=${VW_PEERS:-bird,frr} check_type=tcp med=100 vip_extra='' top_extra='' peer_extra='' bfd='' kv
  for kv in "$@"; do
    case $kv in
      prepend=*) prepend=${kv#*=} ;;
      interval=*) interval=${kv#*=} ;;
      timeout=*) timeout=${kv#*=} ;;
      rise=*) rise=${kv#*=} ;;
      fall=*) fall=${kv#*=} ;;
      hold=*) hold=${kv#*=} ;;
      peers=*) peers=${kv#*=} ;;
      peer_extra=*) peer_extra=${kv#*=} ;;
      check_type=*) check_type=${kv#*=} ;;
      med=*) med=${kv#*=} ;;
      vip_extra=*) vip_extra=${kv#*=} ;;
      top_extra=*) top_extra=${kv#*=} ;;
      bfd=*) bfd=${kv#*=} ;;
      *) vw_die "vw_vipwarden_config: unknown key $kv" ;;
    esac
  done
  cat <<EOF
# Generated by the vipwarden lab (testbed/lib/topology.sh).
router_id: $VW_NODE_BIRD_V4
local_as: $VW_LOCAL_AS
peers:
EOF
  local r
  for r in bird frr gobgp; do
    [[ ,$peers, == *,$r,* ]] || continue
    cat <<EOF
  - name: tor-$r
    address: $(vw_router_addr "$r")
    remote_as: $VW_TOR_AS
    local_address: $(vw_router_peer_addr "$r")
    hold_time: $hold
    next_hop_v6: $(vw_router_peer_addr6 "$r")
EOF
    if [[ -n $bfd ]] && vw_bfd_on "$r"; then printf '    bfd: %s\n' "$bfd"; fi
    if [[ -n $peer_extra ]]; then printf '%s\n' "$peer_extra"; fi
  done
  cat <<EOF
checks:
  - name: web
    type: $check_type
EOF
  case $check_type in
    http) printf '    url: http://%s/healthz\n' "$VW_VIP4" ;;
    listener) printf '    address: %s\n    port: 80\n' "$VW_VIP4" ;;
    process) printf '    pid_file: %s/nginx/nginx.pid\n' "$VW_RUN_DIR" ;;
    *) printf '    target: %s:80\n' "$VW_VIP4" ;;
  esac
  cat <<EOF
    interval: $interval
    timeout: $timeout
    rise: $rise
    fall: $fall
vips:
  - name: web
    prefixes: [$VW_VIP4_PREFIX, $VW_VIP6_PREFIX]
    checks: [web]
    require: all
    med: $med
    communities: ["65101:100"]
    large_communities: ["65101:1:2"]
    as_path_prepend: $prepend
EOF
  if [[ -n $vip_extra ]]; then printf '%s\n' "$vip_extra"; fi
  if [[ -n $top_extra ]]; then printf '%s\n' "$top_extra"; fi
  return 0
}

# vw_vipwarden_start [CONFIG_KEY=VALUE...]: write the config, validate it with
# check-config, start `vipwarden run` in vw-node1. Log: $VW_RUN_DIR/vipwarden.log
vw_vipwarden_start() {
  local conf=$VW_RUN_DIR/vipwarden.yaml
  vw_vipwarden_config "$@" >"$conf"
  vw_vipwarden_check "$conf"
  vw_vipwarden_spawn
}

# vw_vipwarden_check CONF [LOG]: `vipwarden check-config` on CONF (output in LOG, default
# $VW_RUN_DIR/check-config.log); dies with that output when it rejects CONF.
vw_vipwarden_check() {
  local conf=$1 log=${2:-$VW_RUN_DIR/check-config.log} bin
  bin=$(vw_vipwarden_bin)
  "$bin" check-config --config "$conf" >"$log" 2>&1 ||
    { cat "$log" >&2; vw_die "vipwarden check-config rejected $conf"; }
}

# vw_vipwarden_spawn: start `vipwarden run` with the config already written
# to $VW_RUN_DIR/vipwarden.yaml (e.g. a restart after kill -9).
vw_vipwarden_spawn() {
  local bin conf=$VW_RUN_DIR/vipwarden.yaml
  bin=$(vw_vipwarden_bin)
  vw_spawn vipwarden "$VW_NS_NODE" "$VW_RUN_DIR/vipwarden.log" \
    "$bin" run --config "$conf" -v
  vw_info "vipwarden started (PID $(vw_pid_of vipwarden), log $VW_RUN_DIR/vipwarden.log)"
}

# Show the route-change lines vipwarden logged (for test output).
vw_vipwarden_route_log() {
  sed 's/\x1b\[[0-9;]*m//g' "$VW_RUN_DIR/vipwarden.log" 2>/dev/null | grep -E '(announced|withdrew) [^ ]+ \(' || true
}

# ------------------------------------------------------- gobgpd stand-in --
# One gobgpd per ToR (like vipwarden's per-peer sessions), each with its own
# gRPC port on the node's loopback; routes are added with the per-peer IPv6
# next hop, as vipwarden's next_hop_v6 does.

vw_gobgp_api_port() {
  case $1 in bird) echo 50061 ;; frr) echo 50062 ;; *) vw_die "unknown router $1" ;; esac
}

vw_gobgp_config() {
  local router=$1 hold=${2:-$VW_HOLD_TIME} peer src
  case $router in
    bird) peer=$VW_BIRD_V4 src=$VW_NODE_BIRD_V4 ;;
    frr) peer=$VW_FRR_V4 src=$VW_NODE_FRR_V4 ;;
  esac
  cat <<EOF
[global.config]
  as = $VW_LOCAL_AS
  router-id = "$src"
  port = -1

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$peer"
    peer-as = $VW_TOR_AS
  [neighbors.transport.config]
    local-address = "$src"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = $hold
    keepalive-interval = $((hold / 3))
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
}

vw_gobgp_start() {
  local router=$1 dir=$VW_RUN_DIR/gobgp-$1 port
  port=$(vw_gobgp_api_port "$router")
  mkdir -p "$dir"
  vw_gobgp_config "$router" >"$dir/gobgpd.toml"
  vw_spawn "gobgpd-$router" "$VW_NS_NODE" "$dir/gobgpd.log" \
    gobgpd -f "$dir/gobgpd.toml" --pprof-disable --api-hosts "127.0.0.1:$port" --log-level info
  vw_wait_until now 5000 vw_gobgp_cli "$router" global >/dev/null ||
    vw_die "gobgpd for $router did not come up (see $dir/gobgpd.log)"
}

vw_gobgp_cli() {
  local router=$1 port
  shift
  port=$(vw_gobgp_api_port "$router")
  vw_in "$VW_NS_NODE" gobgp -u 127.0.0.1 -p "$port" "$@"
}

# vw_gobgp_announce ROUTER [PREPEND]: VIP v4 + v6 with the lab's attributes.
vw_gobgp_announce() {
  local router=$1 prepend=${2:-0} nh6 aspath=() i
  case $router in bird) nh6=$VW_NODE_BIRD_V6 ;; frr) nh6=$VW_NODE_FRR_V6 ;; esac
  for ((i = 0; i < prepend; i++)); do aspath+=("$VW_LOCAL_AS"); done
  local attrs=(med 100 community 65101:100 large-community 65101:1:2 origin igp)
  if ((prepend)); then attrs+=(aspath "$(IFS=,; echo "${aspath[*]}")"); fi
  vw_gobgp_cli "$router" global rib -a ipv4 add "$VW_VIP4_PREFIX" "${attrs[@]}"
  vw_gobgp_cli "$router" global rib -a ipv6 add "$VW_VIP6_PREFIX" nexthop "$nh6" "${attrs[@]}"
}

vw_gobgp_withdraw() {
  local router=$1
  vw_gobgp_cli "$router" global rib -a ipv4 del "$VW_VIP4_PREFIX"
  vw_gobgp_cli "$router" global rib -a ipv6 del "$VW_VIP6_PREFIX"
}
