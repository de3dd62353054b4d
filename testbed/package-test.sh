#!/usr/bin/env bash
# The Debian package end to end on this (root, CI) machine: build it with cargo-deb, check its
# contents and maintainer scripts, install it with dpkg, then: the system user and
# /var/lib/vipwarden exist, `vipwarden check-config` passes on the packaged example config as the
# packaged user would read it, --version/man/completions are in place; then purge it and check
# it is gone. Not a clean chroot (debootstrap left out for CI time) and no systemd boot: this machine has
# no systemd as PID 1, so systemd-nspawn cannot boot the unit (see README, Packaging).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
fail() { echo "FAIL package: $*" >&2; exit 1; }

if ! command -v cargo-deb >/dev/null; then
  echo "package: installing cargo-deb (once per machine)"
  cargo install cargo-deb --locked --quiet
fi
if dpkg -s vipwarden >/dev/null 2>&1; then
  fail "a vipwarden package is already installed here; not touching it"
fi
deb=$(bash deploy/debian/build-deb.sh)
[[ -f $deb ]] || fail "no .deb built"
echo "package: built $deb ($(du -h "$deb" | cut -f1))"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/vipwarden ./lib/systemd/system/vipwarden.service ./etc/vipwarden/vipwarden.yaml \
  ./usr/share/man/man1/vipwarden.1.gz ./usr/share/man/man1/vipwarden-status.1.gz \
  ./usr/share/bash-completion/completions/vipwarden ./usr/share/zsh/vendor-completions/_vipwarden; do
  grep -q " $f\$" <<<"$contents" || fail "$f not in the package"
done
# (Captured first: `grep -q` closing a pipe early would fail it under pipefail.)
info=$(dpkg-deb --info "$deb")
grep -q 'Depends:.*adduser' <<<"$info" || fail "no Depends on adduser"
ctrl=$(dpkg-deb --ctrl-tarfile "$deb" | tar -tf -)
for s in postinst prerm postrm; do
  grep -q "^\./$s\$" <<<"$ctrl" || fail "no $s in the package"
done
unit=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./lib/systemd/system/vipwarden.service)
grep -q '^ExecStart=/usr/bin/vipwarden run' <<<"$unit" || fail "the packaged unit does not run /usr/bin/vipwarden"

cleanup() { dpkg --purge vipwarden >/dev/null 2>&1 || true; }
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null || fail "dpkg -i failed"
id vipwarden >/dev/null || fail "no vipwarden user after install"
[[ $(stat -c '%U %a' /var/lib/vipwarden) == "vipwarden 750" ]] || fail "/var/lib/vipwarden: $(stat -c '%U %a' /var/lib/vipwarden)"
[[ $(stat -c '%G' /etc/vipwarden/vipwarden.yaml) == vipwarden ]] || fail "config not readable by the vipwarden group"
out=$(setpriv --reuid=vipwarden --regid=vipwarden --init-groups /usr/bin/vipwarden check-config -c /etc/vipwarden/vipwarden.yaml 2>&1) ||
  fail "check-config on the packaged example (as vipwarden): $out"
echo "package: check-config as user vipwarden: $(tail -n1 <<<"$out")"
version=$(/usr/bin/vipwarden --version)
[[ $version == *"(commit "* ]] || fail "--version has no commit: $version"
man=$(zcat /usr/share/man/man1/vipwarden.1.gz)
grep -q '^\.TH vipwarden' <<<"$man" || fail "man page is not roff"
bash -c 'source /usr/share/bash-completion/completions/vipwarden && complete -p vipwarden' >/dev/null ||
  fail "bash completion does not load"
dpkg --purge vipwarden >/dev/null || fail "dpkg --purge failed"
[[ ! -e /usr/bin/vipwarden && ! -e /var/lib/vipwarden && ! -e /etc/vipwarden/vipwarden.yaml ]] ||
  fail "files left after purge"
echo "package: installed, checked and purged"
