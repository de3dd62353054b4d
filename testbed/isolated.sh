#!/usr/bin/env bash
# Runs a lab command in its own mount and network namespace, with a private /run/netns and its
# own lab lock, so it can run beside another lab run on the same machine (the lab's namespace
# names are fixed: vw-node1, vw-tor-bird...). Example, the hour soak without holding the lab:
#   bash testbed/isolated.sh soak testbed/soak.sh -d 3600
#   testbed/isolated.sh NAME COMMAND [ARG...]   (NAME picks the lock file /tmp/vw-iso-NAME.lock)
# Everything the command creates (namespaces, links, nftables) lives inside and goes with it.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,7p' "$0"; exit 2; }
[[ $(id -u) == 0 ]] || { echo "isolated.sh: needs root (unshare, mount)" >&2; exit 2; }
name=$1
shift
[[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "isolated.sh: NAME must be letters, digits, - or _" >&2; exit 2; }
mkdir -p /run/netns
exec unshare --mount --net --propagation private bash -c '
  set -e
  mount -t tmpfs -o mode=755 tmpfs /run/netns
  ip link set lo up
  export VW_LOCK_FILE=/tmp/vw-iso-$0.lock
  exec "$@"' "$name" "$@"
