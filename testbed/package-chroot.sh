#!/usr/bin/env bash
# The built .deb in a clean Debian 12 root file system, then under a real systemd.
#
# 1. Clean install. mmdebstrap builds a root with only the Essential:yes set plus `systemd` (for
#    step 2) and the .deb; apt resolves the .deb's Depends against that root's own package
#    database and dpkg runs its maintainer scripts inside it (nothing is installed on the host).
#    Nothing else in the root depends on adduser, so the package's Depends line is what pulled it
#    in: a Depends line that forgot it fails the postinst here. Then, in the root: the system user,
#    /var/lib/vipwarden (owner, mode), `vipwarden check-config` on the packaged example as user
#    vipwarden, --version, the man page, the bash completion; purge; every file the package had
#    is gone, and so are /etc/vipwarden and /var/lib/vipwarden (the user stays, Debian practice).
# 2. systemd. systemd-nspawn boots the root (the host's network, so the daemon reaches a gobgpd
#    on a loopback address of the host), the .deb is installed again under the running systemd,
#    and the packaged unit runs for real: `systemctl start` reaches active (Type=notify: only READY=1 gets it there), the VIP
#    reaches gobgpd's RIB; `systemctl reload` with a changed config applies it (MED at gobgpd),
#    with a broken one fails (the unit's ExecReload validates) and the old config stays;
#    `systemctl stop` withdraws the VIP (gobgpd logs the withdrawal before the Cease) and ends
#    with Result=success; with WatchdogSec=2s (drop-in) the pings keep it up and a SIGSTOPped
#    daemon is restarted by the watchdog; `dpkg --purge` of the running package withdraws first
#    (prerm); `systemctl restart` and, given a previous .deb, a package upgrade from it (its
#    postinst restarts the unit) hand the session to the next process through systemd's fd store:
#    at gobgpd no UPDATE, no NOTIFICATION, the session up since the same second and the VIP's path
#    unchanged; a restart whose next process never starts leaves the sockets in the store, and a
#    stop then empties it (the session state gobgpd shows meanwhile is printed). Once in a pure cgroup2 container (as on Debian 12), and once more with the host's
#    layout when that differs. Skipped, with the reason, only when the container does not boot
#    (a host property: the unit is not involved in booting it).
#
# Usage: testbed/package-chroot.sh PATH/TO/vipwarden_*.deb [PREVIOUS.deb]   (root; network to a Debian mirror;
# env VW_DEBIAN_MIRROR, default http://deb.debian.org/debian). Everything lives in one temp dir (a
# tmpfs), removed on every exit with the container and gobgpd (stopped by PID). Loopback addresses
# 127.0.86.1/2 and free ports of the moment: no lab namespaces, so no lab lock.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(readlink -f "${1:?usage: $0 vipwarden_VERSION_ARCH.deb [PREVIOUS.deb]}")
[[ -f $deb ]] || { echo "FAIL package-chroot: no such file: $deb" >&2; exit 1; }
prev=''
if [[ -n ${2:-} ]]; then
  prev=$(readlink -f "$2")
  [[ -f $prev ]] || { echo "FAIL package-chroot: no such file: $prev" >&2; exit 1; }
fi
[[ $(id -u) == 0 ]] || { echo "FAIL package-chroot: must run as root (mmdebstrap, nspawn)" >&2; exit 1; }
mirror=${VW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROUTER_IP=127.0.86.1
NODE_IP=127.0.86.2
VIP=203.0.113.86/32

now_ms() { date +%s%3N; }
T0=$(now_ms)
say() { printf 'package-chroot: %s\n' "$*"; }
measured() { printf 'measured: %s: %s ms\n' "$1" "$2"; }

tmp=$(mktemp -d /tmp/vw-pkg-chroot.XXXXXX)
# Unique per run: nspawn keeps /run/systemd/nspawn/propagate/NAME while the container runs.
machine=vw-pkg-$$
root=$tmp/root
nspawn_pid='' leader='' gobgpd_pid=''

# Mounts below $tmp (nspawn and mmdebstrap mount in their own namespaces or unmount themselves;
# this is the guard that keeps `rm -rf` from ever walking into a bind mount of the host).
mounts_below() { awk -v p="$tmp/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts; }

cleanup() {
  local rc=$? i
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # SIGTERM to nspawn = an orderly halt of the container; then force.
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      # Killing the container's PID 1 kills its whole PID namespace.
      if [[ -n $leader ]]; then kill -KILL "$leader" 2>/dev/null || true; fi
      kill -KILL "$nspawn_pid" 2>/dev/null || true
      wait "$nspawn_pid" 2>/dev/null || true
      # What a killed nspawn leaves on the host.
      rm -rf "/run/systemd/nspawn/propagate/$machine" "/run/systemd/nspawn/locks/inode-$(stat -c '%d:%i' "$root" 2>/dev/null)"
    fi
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  if [[ -n $gobgpd_pid ]]; then
    kill -TERM "$gobgpd_pid" 2>/dev/null || true
    wait "$gobgpd_pid" 2>/dev/null || true
  fi
  local left
  left=$(mounts_below)
  if [[ -n $left ]]; then
    # Innermost first.
    sort -r <<<"$left" | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  if [[ -z $(mounts_below) ]]; then
    if mountpoint -q "$tmp"; then umount "$tmp" || umount -l "$tmp"; fi
    rm -rf --one-file-system "$tmp"
  else
    echo "package-chroot: mounts left below $tmp, not removing it:" >&2
    mounts_below >&2
    rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# In RAM: a faster build, and removing ~200 MB of root at the end is one umount.
mount -t tmpfs -o size=1g,mode=0755 vw-pkg-chroot "$tmp"

fail() {
  echo "FAIL package-chroot: $*" >&2
  for f in "$tmp/journal.txt" "$tmp/gobgpd.log" "$tmp/console.log"; do
    [[ -s $f ]] || continue
    echo "----- last lines of ${f##*/}" >&2
    tail -n 20 "$f" >&2
  done
  exit 1
}
skip() {
  echo "SKIP package-chroot: $*"
  exit 0
}

# Host tools (no Recommends: systemd-container would pull libnss-mymachines into the host's
# nsswitch.conf).
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v gobgpd >/dev/null || need+=(gobgpd)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
  say "installing on the host: ${need[*]}"
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  apt_install || { apt-get update -qq && apt_install; } || fail "could not install ${need[*]} on the host"
fi

# ------------------------------------------------------------ 1. clean install --
t=$(now_ms)
# --variant=essential: Essential:yes packages only (no apt, no adduser); dpkg skips fsync (a
# throwaway root): ~17 s here, half of it dpkg. (path-exclude= for docs/locales made mmdebstrap's
# extraction 4x slower, so everything is extracted.)
mmdebstrap --verbose --variant=essential \
  --aptopt='Acquire::Languages "none"' --aptopt='Acquire::Retries "3"' --dpkgopt=force-unsafe-io \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --include=systemd --include="$deb" \
  bookworm "$root" "$mirror" >"$tmp/mmdebstrap.log" 2>&1 ||
  { grep -v -E "^(Get|Preparing|Unpacking|Selecting|Setting up|Processing|Progress|I: )" "$tmp/mmdebstrap.log" | tail -n 15 >&2; fail "mmdebstrap with the .deb failed (Depends unsatisfiable or a maintainer script failed)"; }
measured "clean root (Essential + systemd + the .deb, its Depends resolved by apt in the root)" "$(($(now_ms) - t))"
in_root() { chroot "$root" "$@"; }
say "root: $(grep -c '^Package:' "$root/var/lib/dpkg/status") packages, $(du -sm "$root" | cut -f1) MB"

pkgs=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package} ${Version}\n')
grep -q '^vipwarden ' <<<"$pkgs" || fail "vipwarden not installed in the root"
grep -q '^adduser ' <<<"$pkgs" || fail "adduser not installed in the root"
# Who depends on adduser: only vipwarden may, or the Depends proof above is void.
users_of_adduser=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package}: ${Pre-Depends}, ${Depends}\n' |
  awk -F': ' '$2 ~ /(^|[ ,|])adduser([ ,(]|$)/ { print $1 }' | tr '\n' ' ')
[[ $users_of_adduser == "vipwarden " ]] ||
  fail "packages depending on adduser in the root: '$users_of_adduser' (expected only vipwarden)"
say "Depends resolved in the clean root: $(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Depends}' vipwarden); adduser pulled in by vipwarden alone"

in_root id vipwarden >/dev/null || fail "no vipwarden user after install"
say "user: $(in_root id vipwarden)"
[[ $(in_root getent passwd vipwarden | cut -d: -f6,7) == /var/lib/vipwarden:/usr/sbin/nologin ]] ||
  fail "vipwarden user home/shell: $(in_root getent passwd vipwarden)"
st=$(in_root stat -c '%U:%G %a' /var/lib/vipwarden)
[[ $st == "vipwarden:vipwarden 750" ]] || fail "/var/lib/vipwarden is $st, expected vipwarden:vipwarden 750"
st=$(in_root stat -c '%U:%G %a' /etc/vipwarden/vipwarden.yaml)
[[ $st == "root:vipwarden 640" ]] || fail "/etc/vipwarden/vipwarden.yaml is $st, expected root:vipwarden 640"
say "/var/lib/vipwarden vipwarden:vipwarden 750, /etc/vipwarden/vipwarden.yaml $st"
out=$(in_root setpriv --reuid=vipwarden --regid=vipwarden --init-groups \
  /usr/bin/vipwarden check-config -c /etc/vipwarden/vipwarden.yaml 2>&1) ||
  fail "check-config on the packaged example (as vipwarden): $out"
say "check-config as user vipwarden: $(tail -n1 <<<"$out")"
version=$(in_root /usr/bin/vipwarden --version)
[[ $version == *"(commit "* ]] || fail "--version has no commit: $version"
say "--version: $version"
in_root sh -c 'zcat /usr/share/man/man1/vipwarden.1.gz' | grep -q '^\.TH vipwarden' || fail "man page vipwarden.1 is not roff"
in_root bash -c 'source /usr/share/bash-completion/completions/vipwarden && complete -p vipwarden' >/dev/null ||
  fail "bash completion does not load"

files=$(in_root dpkg -L vipwarden)
t=$(now_ms)
in_root dpkg --purge vipwarden >/dev/null || fail "dpkg --purge failed"
left=()
while read -r f; do
  # Directories shared with other packages (/usr/bin, ...) stay; the package's files may not.
  if [[ -n $f && -e $root$f && ! -d $root$f ]]; then left+=("$f"); fi
done <<<"$files"
for d in /etc/vipwarden /var/lib/vipwarden /usr/share/vipwarden /usr/share/doc/vipwarden; do
  if [[ -e $root$d ]]; then left+=("$d"); fi
done
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
say "purged: none of its $(wc -l <<<"$files") paths left, nor /etc/vipwarden, /var/lib/vipwarden (user kept)"
measured "clean-root checks and purge" "$(($(now_ms) - t))"

# ---------------------------------------------------------------- 2. systemd --
# Installed again by each round inside the booted container (nspawn puts a tmpfs on /tmp).
cp "$deb" "$root/root/vipwarden.deb"
if [[ -n $prev ]]; then cp "$prev" "$root/root/vipwarden-prev.deb"; fi

free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}
bgp_port=$(free_port "$ROUTER_IP")
gobgp_api=$(free_port "$ROUTER_IP")
api_port=$(free_port "$NODE_IP")

# The peer: a passive gobgpd on a host loopback address (debug log: every UPDATE and the Cease).
cat >"$tmp/gobgpd.toml" <<EOF
[global.config]
  as = 65086
  router-id = "192.0.2.86"
  port = $bgp_port
  local-address-list = ["$ROUTER_IP"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$NODE_IP"
    peer-as = 65087
  [neighbors.transport.config]
    passive-mode = true
    local-address = "$ROUTER_IP"
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    idle-hold-time-after-reset = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
EOF
gobgp() { command gobgp -u "$ROUTER_IP" -p "$gobgp_api" "$@"; }
# MED of the VIP in gobgpd's RIB, "none" when absent.
med_at_peer() {
  gobgp global rib -a ipv4 -j 2>/dev/null |
    jq -r --arg p "$VIP" '(.[$p] // [])[0] | if . == null then "none" else ((.attrs[] | select(.type == 4) | .metric) // "no-med") end' 2>/dev/null ||
    echo none
}
med_is() { [[ $(med_at_peer) == "$1" ]]; }
wait_for() { # wait_for TIMEOUT_MS CMD...: poll every 100 ms (CMD re-evaluated each time)
  local until=$(($(now_ms) + $1))
  shift
  while ! "$@"; do (($(now_ms) < until)) || return 1; sleep 0.1; done
}
# A fresh gobgpd for each round (after a Cease it would hold the next session back for a while).
start_gobgpd() {
  gobgpd -f "$tmp/gobgpd.toml" --pprof-disable --api-hosts "$ROUTER_IP:$gobgp_api" --log-level debug \
    >"$tmp/gobgpd.log" 2>&1 &
  gobgpd_pid=$!
  wait_for 5000 gobgp global >/dev/null 2>&1 || fail "gobgpd did not start"
}
stop_gobgpd() {
  kill -TERM "$gobgpd_pid" 2>/dev/null || true
  wait "$gobgpd_pid" 2>/dev/null || true
  gobgpd_pid=''
}

# The daemon's config in the root (replaces the example: this root is thrown away).
write_config() { # write_config MED [EXTRA-CHECK-LINE]
  cat >"$root/etc/vipwarden/vipwarden.yaml" <<EOF
router_id: 192.0.2.87
local_as: 65087
state_dir: /var/lib/vipwarden
api: {listen: '$NODE_IP:$api_port'}
peers:
  - {name: tor, address: $ROUTER_IP, port: $bgp_port, remote_as: 65086, local_address: $NODE_IP, next_hop_v4: 192.0.2.87, hold_time: 9s}
checks:
  - {name: ok, type: exec, command: [/bin/true], interval: 1s, timeout: 500ms, rise: 1, fall: 1}
${2:-}
vips:
  - {name: web, prefixes: [$VIP], checks: [ok], med: $1}
EOF
}
# The container's PID 1: nspawn's child running systemd.
find_leader() {
  local c kids
  read -r -a kids < <(cat /proc/"$nspawn_pid"/task/*/children 2>/dev/null) || true
  for c in "${kids[@]}"; do
    [[ $(readlink "/proc/$c/exe" 2>/dev/null) == */systemd ]] && { leader=$c; return 0; }
  done
  return 1
}
in_ct() { nsenter --target "$leader" --mount --uts --ipc --pid -- "$@"; }
state=''
booted() {
  state=$(in_ct systemctl is-system-running 2>&1) || true
  [[ $state == running || $state == degraded ]]
}
show() { in_ct systemctl show -p "$1" --value vipwarden; }
journal() { in_ct journalctl --no-pager -o cat -b -u vipwarden >"$tmp/journal.txt" 2>&1 || true; }

# boot_container UNIFIED: boots the root (UNIFIED=1: a pure cgroup2 container, as on a Debian 12
# host; empty: nspawn follows the host's layout). Returns 1 with the reason in boot_error.
boot_container() {
  local t
  t=$(now_ms)
  leader='' boot_error=''
  : >"$tmp/console.log"
  # --register=no --keep-unit: no machined and no systemd on the host to register with or to
  # allocate a scope from (PID 1 here is not systemd). No --private-network: the host's network.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=$1 SYSTEMD_LOG_COLOR=0 systemd-nspawn --quiet -D "$root" -M "$machine" \
    --boot --register=no --keep-unit --console=read-only >"$tmp/console.log" 2>&1 &
  nspawn_pid=$!
  leader_or_exit() { find_leader || ! kill -0 "$nspawn_pid" 2>/dev/null; }
  if ! wait_for 30000 leader_or_exit || [[ -z $leader ]]; then
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      boot_error="no systemd in the container after 30 s: $(tail -n 3 "$tmp/console.log" | tr '\n' ' ')"
    else
      boot_error="systemd-nspawn exited: $(tr '\n' ' ' <"$tmp/console.log" | cut -c1-400)"
    fi
    return 1
  fi
  if ! wait_for 60000 booted; then
    boot_error="systemd did not finish booting within 60 s (is-system-running: ${state:-nothing}); console: $(tail -n 3 "$tmp/console.log" | tr '\n' ' ')"
    return 1
  fi
  measured "container boot (systemd-nspawn --boot to is-system-running=$state)" "$(($(now_ms) - t))"
  if [[ $state == degraded ]]; then say "failed units in the container: $(in_ct systemctl --failed --no-legend --plain | cut -d' ' -f1 | tr '\n' ' ')"; fi
}

# halt_container: SIGTERM to nspawn halts the container in order (the cleanup trap forces it).
halt_container() {
  local i
  kill -TERM "$nspawn_pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$nspawn_pid" 2>/dev/null && fail "the container did not halt within 15 s"
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid='' leader=''
}

# systemd_round: the packaged unit under the booted container's systemd.
systemd_round() {
  local t st pid1 out why mark w cease start_ms stop_ms
  start_gobgpd
  # Installed under a running systemd: postinst's daemon-reload branch. With a previous .deb,
  # that one first: the upgrade to this one is checked below.
  local first=/root/vipwarden.deb
  if [[ -n $prev ]]; then first=/root/vipwarden-prev.deb; fi
  in_ct dpkg -i "$first" >"$tmp/install.log" 2>&1 || fail "dpkg -i under systemd: $(tail -n 3 "$tmp/install.log")"
  write_config 100
  # start: Type=notify, so `systemctl start` returns once READY=1 arrived (or fails at
  # TimeoutStartSec without it).
  t=$(now_ms)
  in_ct timeout 60 systemctl start vipwarden || { journal; fail "systemctl start vipwarden failed: $(show ActiveState)/$(show Result)"; }
  start_ms=$(($(now_ms) - t))
  st="$(show ActiveState)/$(show SubState)"
  [[ $st == active/running ]] || { journal; fail "after start: $st"; }
  [[ $(show Type) == notify ]] || fail "unit Type is $(show Type)"
  pid1=$(show MainPID)
  say "systemctl start -> $st in ${start_ms} ms (Type=notify: READY=1 received); MainPID $pid1; status: $(show StatusText)"
  measured "systemctl start -> active (READY=1)" "$start_ms"
  wait_for 15000 med_is 100 || { journal; fail "VIP $VIP not at gobgpd with MED 100 (have: $(med_at_peer))"; }
  measured "systemctl start -> VIP in gobgpd's RIB" "$(($(now_ms) - t))"
  say "gobgpd RIB: $VIP MED $(med_at_peer)"
  # The unit as systemd read it, and nothing it complained about while starting it.
  journal
  say "unit: Type=$(show Type) NotifyAccess=$(show NotifyAccess) WatchdogUSec=$(show WatchdogUSec) User=$(show User)"
  # (vipwarden's own lines start with a timestamp; anything else but Starting/Started is systemd's.)
  if grep -v -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T|^Start(ing|ed) vipwarden' "$tmp/journal.txt" >"$tmp/complaints"; then
    fail "systemd complained while starting the unit: $(head -n 3 "$tmp/complaints")"
  fi

  # Restarts that the router must not see: the package upgrade (postinst: try-restart), then a
  # plain `systemctl restart`.
  if [[ -n $prev ]]; then
    local v0
    v0=$(in_ct dpkg-query -W -f='${Version}' vipwarden)
    hitless "package upgrade $v0 -> $(dpkg-deb -f "$deb" Version) (dpkg -i; postinst try-restart)" "$store_took" dpkg -i /root/vipwarden.deb
    [[ $(in_ct dpkg-query -W -f='${Version}' vipwarden) == "$(dpkg-deb -f "$deb" Version)" ]] ||
      fail "after the upgrade dpkg has vipwarden $(in_ct dpkg-query -W -f='${Version}' vipwarden)"
  fi
  hitless "systemctl restart" "$store_took" systemctl restart vipwarden
  # SIGUSR2 under systemd is refused: its new process would not be systemd's child, and systemd
  # 252 ("Supervising process N which is not our child") SIGKILLs such a process at the next
  # `systemctl stop`, past the drain. The old process serves on; nothing changes at the router.
  local up_pid up_out
  up_pid=$(show MainPID)
  if up_out=$(in_ct timeout 60 /usr/bin/vipwarden upgrade 2>&1); then
    journal
    fail "vipwarden upgrade under systemd was not refused: $up_out"
  fi
  [[ $up_out == *"systemctl restart"* ]] || fail "vipwarden upgrade under systemd: refused without naming the fix: $up_out"
  sleep 0.5
  [[ $(show MainPID) == "$up_pid" && $(show ActiveState) == active ]] ||
    fail "after the refused upgrade: $(show ActiveState), MainPID $(show MainPID) (was $up_pid)"
  [[ $(med_at_peer) == 100 ]] || fail "the route changed after the refused upgrade: MED at gobgpd $(med_at_peer)"
  say "vipwarden upgrade (SIGUSR2) under systemd: refused: $(tail -n 1 <<<"$up_out"); MainPID $up_pid serves on, MED 100 at gobgpd"
  if ((${#ran[@]} == 0)); then store_closed_on_stop; fi
  pid1=$(show MainPID)

  # reload, valid change: MED 100 -> 200.
  write_config 200
  in_ct systemctl reload vipwarden || { journal; fail "systemctl reload with a valid config failed"; }
  wait_for 10000 med_is 200 || { journal; fail "valid reload not applied: MED at gobgpd $(med_at_peer), expected 200"; }
  say "reload (valid, med 100 -> 200): applied, MED 200 at gobgpd"

  # reload, broken config (rise: 0) with MED 300: ExecReload's check-config fails the reload,
  # the daemon never gets the SIGHUP, MED stays 200.
  write_config 300 "  - {name: bad, type: exec, command: [/bin/true], rise: 0}"
  if out=$(in_ct systemctl reload vipwarden 2>&1); then journal; fail "systemctl reload with a broken config succeeded"; fi
  sleep 1.5
  [[ $(show ActiveState) == active && $(show MainPID) == "$pid1" ]] ||
    fail "after a failed reload: $(show ActiveState), MainPID $(show MainPID) (was $pid1)"
  [[ $(med_at_peer) == 200 ]] || fail "broken config reached the daemon: MED at gobgpd $(med_at_peer)"
  journal
  why=$(grep -m1 'vipwarden.yaml:[0-9]' "$tmp/journal.txt" || true)
  [[ -n $why ]] || fail "no file:line error from ExecReload in the journal"
  say "reload (broken, rise: 0): refused ($(head -n1 <<<"$out")); still active, same MainPID, MED 200 at gobgpd; journal: $why"

  # stop: withdraw before the Cease.
  mark=$(wc -l <"$tmp/gobgpd.log")
  t=$(now_ms)
  in_ct timeout 100 systemctl stop vipwarden || fail "systemctl stop failed"
  stop_ms=$(($(now_ms) - t))
  st="$(show ActiveState)/$(show Result)/exit $(show ExecMainStatus)"
  [[ $st == "inactive/success/exit 0" ]] || { journal; fail "after stop: $st"; }
  assert_withdrawn_before_cease "$mark" "systemctl stop"
  say "systemctl stop -> $st in ${stop_ms} ms; gobgpd log: withdrawal of $VIP (line $w) before the Cease (line $cease); RIB empty"
  measured "systemctl stop -> inactive" "$stop_ms"

  if ((${#ran[@]} == 0)); then
    in_ct systemd-analyze security vipwarden 2>/dev/null | tail -n1 | sed 's/^/package-chroot: systemd-analyze security: /' || true
  fi

  if ((${#ran[@]} == 0)); then watchdog_check; fi

  # Removing the package while the daemon runs: prerm stops the unit, so the routes go first.
  write_config 100
  stop_gobgpd
  start_gobgpd
  in_ct timeout 60 systemctl restart vipwarden || fail "systemctl restart before the purge failed"
  wait_for 15000 med_is 100 || fail "VIP not back at gobgpd after the second start"
  mark=$(wc -l <"$tmp/gobgpd.log")
  in_ct dpkg --purge vipwarden >"$tmp/purge.log" 2>&1 || fail "dpkg --purge under systemd: $(tail -n 3 "$tmp/purge.log")"
  assert_withdrawn_before_cease "$mark" "dpkg --purge"
  [[ $(show LoadState) == not-found && ! -e $root/var/lib/vipwarden ]] ||
    fail "after purge: unit $(show LoadState)/$(show ActiveState), /var/lib/vipwarden $(ls -d "$root/var/lib/vipwarden" 2>&1)"
  say "dpkg --purge while active: prerm stopped the unit (withdrawal line $w before the Cease line $cease), unit $(show LoadState)"
  stop_gobgpd
}

store_took="restart through systemd's fd store from vipwarden .* taking over 1 BGP sessions"
# Our session as gobgpd sees it: UPDATEs and NOTIFICATIONs received, Established since (s), state.
peer_counters() {
  gobgp neighbor "$NODE_IP" -j 2>/dev/null |
    jq -r '[(.state.messages.received.update // 0), (.state.messages.received.notification // 0), (.timers.state.uptime.seconds // 0), (.state.session_state // 0)] | @tsv' 2>/dev/null ||
    echo "? ? ? ?"
}
# The VIP's path in gobgpd's RIB: its age (when gobgpd got it) and attributes.
rib_path() { gobgp global rib -a ipv4 -j 2>/dev/null | jq -c --arg p "$VIP" '(.[$p] // [])[0] | {age, attrs}' 2>/dev/null; }

# hitless WHAT TOOK CMD...: CMD in the container replaces the daemon (new MainPID; TOOK: the new
# process's take-over line in the journal, one more than before); gobgpd must see
# nothing: no UPDATE, no NOTIFICATION, the session Established since the same second (so no
# reconnect), the VIP's path with the same age and attributes. Waited past a keepalive interval
# (3 s of a 9 s hold time), so the new process is the one keeping the session up.
hitless() {
  local what=$1 took=$2 u0 n0 up0 s0 u1 n1 up1 s1 p0 p1 pid0 pid1 t ms ho c0 c1
  shift 2
  journal
  c0=$(grep -c "$took" "$tmp/journal.txt" || true)
  read -r u0 n0 up0 s0 <<<"$(peer_counters)"
  [[ $s0 == 6 ]] || fail "$what: session not Established at gobgpd before (state $s0)"
  p0=$(rib_path)
  pid0=$(show MainPID)
  t=$(now_ms)
  in_ct timeout 60 "$@" >"$tmp/hitless.log" 2>&1 || { journal; fail "$what failed: $(tail -n 3 "$tmp/hitless.log")"; }
  ms=$(($(now_ms) - t))
  pid1=$(show MainPID)
  [[ $(show ActiveState) == active && $pid1 != "$pid0" && $pid1 != 0 ]] ||
    { journal; fail "$what: $(show ActiveState), MainPID $pid0 -> $pid1"; }
  sleep 4
  read -r u1 n1 up1 s1 <<<"$(peer_counters)"
  p1=$(rib_path)
  journal
  c1=$(grep -c "$took" "$tmp/journal.txt" || true)
  ((c1 > c0)) ||
    fail "$what: the new process did not take the session over: $(grep -E 'stop-hook|fd store|refuses|planned stop' "$tmp/journal.txt" | tail -n 3)"
  [[ $s1 == 6 && $u1 == "$u0" && $n1 == "$n0" && $up1 == "$up0" && $p1 == "$p0" ]] ||
    fail "$what: gobgpd saw a change: UPDATEs $u0 -> $u1, NOTIFICATIONs $n0 -> $n1, Established since $up0 -> $up1, state $s1, path $p0 -> $p1"
  [[ $(show NFileDescriptorStore) == 0 ]] || fail "$what: systemd still holds $(show NFileDescriptorStore) fds after the take-over"
  ho=$(in_ct /usr/bin/vipwarden status --json 2>/dev/null | jq -r '.upgraded.handover_ms // "?"')
  if grep -q 'only permitted for main PID\|does not belong to service' "$tmp/journal.txt"; then
    fail "$what: systemd refused a notification: $(grep -m1 'only permitted for main PID\|does not belong to service' "$tmp/journal.txt")"
  fi
  say "$what: MainPID $pid0 -> $pid1 (systemd follows), command took $ms ms; hand-over (signal in the old process to the take-over) $ho ms; at gobgpd 0 UPDATEs ($u0 -> $u1), 0 NOTIFICATIONs, Established since the same second, VIP path unchanged (age $(jq -r .age <<<"$p1")); fd store empty again"
  measured "$what: hand-over (signal to take-over)" "$ho"
  echo "measured: $what: route changes at gobgpd: $((u1 - u0)) UPDATEs, $((n1 - n0)) NOTIFICATIONs, $((up1 != up0)) reconnects"
}

# store_closed_on_stop (first round): a restart whose next process never starts (ExecStartPre
# fails in a drop-in) leaves the sockets in systemd's store, the session kept open by systemd
# alone; a stop then empties the store and gobgpd sees the session go at once, not at the 9 s
# hold timer: nothing is kept half-alive.
store_closed_on_stop() {
  local n t ms s
  mkdir -p "$root/etc/systemd/system/vipwarden.service.d"
  printf '[Service]\nExecStartPre=/bin/false\n' >"$root/etc/systemd/system/vipwarden.service.d/fail.conf"
  in_ct systemctl daemon-reload
  local mark down
  mark=$(wc -l <"$tmp/gobgpd.log")
  if in_ct timeout 60 systemctl restart vipwarden >/dev/null 2>&1; then fail "restart with ExecStartPre=/bin/false succeeded"; fi
  n=$(show NFileDescriptorStore)
  read -r _ _ _ s <<<"$(peer_counters)"
  # What gobgpd saw of the session meanwhile (it should see nothing until the stop).
  down=$(tail -n +"$((mark + 1))" "$tmp/gobgpd.log" | grep -m1 -o '"Reason":"[^"]*"\|"msg":"received notification"\|"msg":"Peer Down"' || true)
  [[ $s == 6 ]] || fail "after a restart whose next process did not start: session state $s at gobgpd (6 = Established) while systemd held the socket"
  ((n >= 2)) || { journal; fail "after a restart whose next process did not start: $n fds in the store (expected the socket and the state)"; }
  t=$(now_ms)
  in_ct timeout 60 systemctl stop vipwarden || fail "systemctl stop after the failed restart"
  # (Its own variable: reading into $s here overwrote the state before the stop, and the report
  # printed the session as Idle (1) while systemd held it, as if it had dropped.)
  gone() { local now; read -r _ _ _ now <<<"$(peer_counters)"; [[ $now != 6 ]]; }
  wait_for 3000 gone || fail "session still Established at gobgpd 3 s after the stop ($(show NFileDescriptorStore) fds in the store)"
  ms=$(($(now_ms) - t))
  [[ $(show NFileDescriptorStore) == 0 ]] || fail "after the stop systemd still holds $(show NFileDescriptorStore) fds"
  say "failed restart (ExecStartPre=/bin/false): $n fds waited in systemd's store (meanwhile at gobgpd: session state $s = Established, in its log: ${down:-nothing}); systemctl stop -> store emptied, gobgpd saw the session close after $ms ms (hold time 9 s)"
  measured "stop with sessions in the fd store -> session closed at gobgpd" "$ms"
  rm -r "$root/etc/systemd/system/vipwarden.service.d"
  in_ct systemctl daemon-reload
  in_ct systemctl reset-failed vipwarden 2>/dev/null || true
  # Back as before for the checks that follow (a fresh session: gobgpd may hold it back a moment).
  in_ct timeout 60 systemctl start vipwarden || fail "start after the store check failed"
  wait_for 15000 med_is 100 || fail "VIP not back at gobgpd after the store check"
  up() { read -r _ _ _ s <<<"$(peer_counters)"; [[ $s == 6 ]]; }
  wait_for 15000 up || fail "session not back after the store check"
}

# watchdog_check (first round): WatchdogSec=2s in a drop-in (the packaged 30 s is too long to
# wait for). The daemon pings at half of WATCHDOG_USEC, so it stays up; a hung daemon (SIGSTOP)
# is killed by systemd's watchdog and restarted (Restart=on-failure).
watchdog_check() {
  local pid t
  mkdir -p "$root/etc/systemd/system/vipwarden.service.d"
  printf '[Service]\nWatchdogSec=2s\n' >"$root/etc/systemd/system/vipwarden.service.d/watchdog.conf"
  write_config 200
  in_ct systemctl daemon-reload
  in_ct timeout 60 systemctl start vipwarden || fail "start with WatchdogSec=2s failed"
  pid=$(show MainPID)
  [[ $(show WatchdogUSec) == 2s ]] || fail "drop-in WatchdogSec=2s not applied: $(show WatchdogUSec)"
  sleep 2.5
  [[ $(show ActiveState) == active && $(show MainPID) == "$pid" && $(show NRestarts) == 0 ]] ||
    fail "WatchdogSec=2s: $(show ActiveState), MainPID $(show MainPID) (was $pid), NRestarts $(show NRestarts): pings not arriving"
  # A hung daemon: stopped, so no pings and no BGP keepalives. The shell's kill (no procps here).
  t=$(now_ms)
  # shellcheck disable=SC2016 # $1 is for the inner sh
  in_ct sh -c 'kill -STOP "$1"' sh "$pid"
  restarted() { [[ $(show NRestarts) == 1 && $(show ActiveState) == active && $(show MainPID) != "$pid" ]]; }
  wait_for 15000 restarted || { journal; fail "hung daemon not restarted by the watchdog: NRestarts $(show NRestarts), $(show ActiveState), MainPID $(show MainPID)"; }
  journal
  grep -q 'Watchdog timeout' "$tmp/journal.txt" || fail "no 'Watchdog timeout' in the journal"
  measured "SIGSTOP -> restarted by the watchdog (WatchdogSec=2s, RestartSec=2)" "$(($(now_ms) - t))"
  say "watchdog (WatchdogSec=2s drop-in): pings kept it up 2.5 s; SIGSTOP -> '$(grep -m1 -o 'Watchdog timeout.*' "$tmp/journal.txt")', restarted (NRestarts 1, new MainPID $(show MainPID))"
  rm -r "$root/etc/systemd/system/vipwarden.service.d"
  in_ct systemctl daemon-reload
}

# assert_withdrawn_before_cease MARK WHAT: in gobgpd's log after line MARK, the VIP's withdrawal
# comes before the Cease/Administrative Shutdown, and the RIB is empty. Sets w and cease.
assert_withdrawn_before_cease() {
  wait_for 5000 med_is none || fail "VIP still at gobgpd after $2"
  sleep 0.3
  tail -n +"$(($1 + 1))" "$tmp/gobgpd.log" >"$tmp/gobgpd-after.log"
  line_of() { grep -n -m1 -E "$1" "$tmp/gobgpd-after.log" | cut -d: -f1; }
  w=$(line_of "\"withdrawals\":\\[[^]]*\"${VIP//./\\.}\"")
  cease=$(line_of '"Code":6,.*"Subcode":2|notification-received code 6\(cease\) subcode 2')
  [[ -n $cease ]] || fail "gobgpd logged no Cease/Administrative Shutdown after $2"
  [[ -n $w && $w -lt $cease ]] || fail "$2: VIP not withdrawn before the Cease (withdraw line ${w:-none}, cease line $cease)"
}

# Two cgroup layouts: a pure cgroup2 container (what a Debian 12 host runs), and, when the host
# is not pure cgroup2 itself (here: hybrid, v1 controllers + cgroup2 at /sys/fs/cgroup/unified),
# nspawn's default that follows the host's layout.
rounds=(1)
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] || rounds+=('')
ran=() skipped=()
for mode in "${rounds[@]}"; do
  if ! boot_container "$mode"; then
    echo "SKIP package-chroot: systemd (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=${mode:-unset}): the container does not boot here: $boot_error"
    if [[ -n $mode ]]; then skipped+=("pure-cgroup2"); else skipped+=("host-layout"); fi
    halt_container
    continue
  fi
  cg=$(in_ct stat -fc %T /sys/fs/cgroup)
  sysv=$(in_ct systemctl --version | head -n1 | cut -d' ' -f2)
  say "container (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=${mode:-unset}): systemd $sysv, /sys/fs/cgroup is $cg"
  systemd_round
  ran+=("systemd $sysv on $cg")
  halt_container
done
measured "package-chroot total" "$(($(now_ms) - T0))"
((${#ran[@]})) || skip "clean install checked, but no container booted (tried: ${skipped[*]}): the unit did not run under systemd"
joined=$(printf '%s and ' "${ran[@]}")
echo "PASS package-chroot: clean Debian 12 install + purge; ${joined% and }: start (notify), ${prev:+package upgrade and }restart without a route change (fd store), SIGUSR2 refused, reload (valid applied, broken refused), stop and purge (withdraw before Cease), fd store closed by a stop, watchdog restart"
