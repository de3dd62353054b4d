#!/usr/bin/env bash
# Runs netlink-seeds.py in a throw-away namespace with known content: two veth ends with
# documentation addresses, a route, a rule, and the sockets the script opens.
#   fuzz/seed/netlink-seeds.sh fuzz/corpus/netlink
set -euo pipefail
ns=vwfz-netlink
out=$(realpath -m "$1")
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
nsx() { ip netns exec "$ns" "$@"; }
nsx ip link set lo up
nsx ip link add fz0 type veth peer name fz1
nsx ip link set fz0 up
nsx ip link set fz1 up
nsx ip addr add 192.0.2.1/24 dev fz0
nsx ip addr add 192.0.2.2/24 dev fz1
nsx ip -6 addr add 2001:db8::1/64 dev fz0 nodad
nsx ip -6 addr add 2001:db8::2/64 dev fz1 nodad
nsx ip route add 198.51.100.0/24 via 192.0.2.9
nsx ip -6 route add 2001:db8:1::/48 via 2001:db8::9
nsx ip rule add from 203.0.113.0/24 table 100 prio 100
nsx ip route add default via 192.0.2.9 table 100
nsx python3 "$(dirname "$0")/netlink-seeds.py" "$out"
