# shellcheck shell=bash
# Helpers for the scripts that build their own namespaces beside the lab, not in it (no lab lock,
# no registries): footprint-vs-exabgp.sh, bench-wire.sh, gen-text-order.sh. A run directory
# ($RUN), processes started here and stopped by PID (each in a process group of its own, so the
# children a tool forks stop with it), the namespaces named at sa_init deleted on exit, also on
# failure. Only processes still running as this shell's jobs are ever signalled: a PID that
# exited may have been given to another process. VW_KEEP_RUN=1 keeps $RUN for a post-mortem.

SA_PIDS=()
SA_NETNS=()
LAST_PID=

# sa_init NAME NS...: makes $RUN (/tmp/NAME.XXXXXX) and deletes NS... (stale ones now, and at exit).
sa_init() {
    RUN=$(mktemp -d "/tmp/$1.XXXXXX")
    shift
    SA_NETNS=("$@")
    local ns
    for ns in "${SA_NETNS[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    trap sa_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# sa_running PID: whether PID is one of this shell's jobs and still running.
sa_running() {
    local p
    for p in $(jobs -rp); do
        [[ $p == "$1" ]] && return 0
    done
    return 1
}

# sa_signal SIG PID: SIG to PID's process group (PID leads it, see sa_start), or to PID alone
# (a background function of the script), if PID still runs.
sa_signal() {
    sa_running "$2" || return 0
    kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true
}

sa_cleanup() {
    local pid ns
    for pid in "${SA_PIDS[@]}"; do
        sa_signal TERM "$pid"
    done
    sleep 0.3
    for pid in "${SA_PIDS[@]}"; do
        sa_signal KILL "$pid"
    done
    for ns in "${SA_NETNS[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ -n ${VW_KEEP_RUN:-} ]]; then
        echo "kept $RUN" >&2
    else
        rm -rf "$RUN"
    fi
}

# sa_need CMD[:PACKAGE]...: installs the Debian packages of the commands that are missing.
sa_need() {
    local missing=() c
    for c in "$@"; do
        command -v "${c%%:*}" >/dev/null || missing+=("${c##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# sa_start NS NAME CMD...: CMD in namespace NS, in the background, output in $RUN/NAME.log, in a
# session and process group of its own; its PID is kept for cleanup and left in LAST_PID (not
# printed: a $(...) subshell would lose the record). setsid (a background job here does not lead
# a group, so it does not fork) and ip netns exec both exec, so $! is the program itself.
sa_start() {
    local ns=$1 name=$2
    shift 2
    setsid ip netns exec "$ns" "$@" >"$RUN/$name.log" 2>&1 &
    LAST_PID=$!
    SA_PIDS+=("$LAST_PID")
}

# sa_stop PID [SECONDS]: SIGTERM to its process group, SIGKILL after SECONDS (default 5); then
# reaps it and forgets the PID.
sa_stop() {
    local i
    sa_signal TERM "$1"
    for ((i = 0; i < ${2:-5} * 10; i++)); do
        sa_running "$1" || break
        sleep 0.1
    done
    sa_signal KILL "$1"
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${SA_PIDS[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    SA_PIDS=("${keep[@]}")
}

# sa_vipwarden: $VIPWARDEN is $VIPWARDEN_BIN (another build to measure) or the release binary,
# built now (cargo skips it when it is up to date).
sa_vipwarden() {
    if [[ -n ${VIPWARDEN_BIN:-} ]]; then
        VIPWARDEN=$(realpath "$VIPWARDEN_BIN")
    else
        cargo build --release --quiet --bin vipwarden
        VIPWARDEN=$PWD/target/release/vipwarden
    fi
}

# sa_gobgpd NS API_PORT: a passive gobgpd ToR in NS (198.51.100.1, AS 65000) for the node
# 198.51.100.2 (AS 65101), its gRPC API on 127.0.0.1:API_PORT.
sa_gobgpd() {
    cat >"$RUN/gobgpd.toml" <<'EOF'
[global.config]
  as = 65000
  router-id = "198.51.100.1"
  local-address-list = ["198.51.100.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.51.100.2"
    peer-as = 65101
  [neighbors.transport.config]
    passive-mode = true
    local-address = "198.51.100.1"
EOF
    sa_start "$1" gobgpd gobgpd -f "$RUN/gobgpd.toml" --api-hosts "127.0.0.1:$2" -l warn
}

# sa_rib NS API_PORT: the ToR's IPv4 table (gobgp's listing).
sa_rib() {
    ip netns exec "$1" gobgp -u 127.0.0.1 -p "$2" global rib -a ipv4 2>/dev/null || true
}
