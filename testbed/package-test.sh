#!/usr/bin/env bash
# The Debian package end to end: build it with cargo-deb, check its contents and maintainer
# scripts, then testbed/package-chroot.sh installs it into a clean Debian 12 root (mmdebstrap; its
# Depends resolved there, nothing installed on this machine), runs check-config as the packaged
# user, purges it, and boots that root with systemd-nspawn to run the packaged unit for real
# against a gobgpd on loopback (start/notify, reload valid and broken, stop withdraws first,
# `systemctl restart` and a package upgrade from a previous .deb without a route change).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
fail() { echo "FAIL package: $*" >&2; exit 1; }

if ! command -v cargo-deb >/dev/null; then
  echo "package: installing cargo-deb (once per machine)"
  cargo install cargo-deb --locked --quiet
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
grep -q " ./usr/share/doc/vipwarden/changelog.Debian.gz\$" <<<"$contents" || fail "no changelog.Debian.gz in the package"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$scratch" ./usr/bin/vipwarden ./usr/share/doc/vipwarden/changelog.Debian.gz
# A stripped binary has no .symtab and no .debug_* sections.
if readelf -S "$scratch/usr/bin/vipwarden" | grep -Eq '\.symtab|\.debug_'; then
  fail "/usr/bin/vipwarden is not stripped ($(du -h "$scratch/usr/bin/vipwarden" | cut -f1))"
fi
zcat "$scratch/usr/share/doc/vipwarden/changelog.Debian.gz" | head -n 1 | grep -q "^vipwarden (" ||
  fail "changelog.Debian.gz does not start with a vipwarden entry"
echo "package: /usr/bin/vipwarden stripped, $(du -h "$scratch/usr/bin/vipwarden" | cut -f1); changelog.Debian.gz present"
# (Captured first: `grep -q` closing a pipe early would fail it under pipefail.)
info=$(dpkg-deb --info "$deb")
grep -q 'Depends:.*adduser' <<<"$info" || fail "no Depends on adduser"
ctrl=$(dpkg-deb --ctrl-tarfile "$deb" | tar -tf -)
for s in postinst prerm postrm; do
  grep -q "^\./$s\$" <<<"$ctrl" || fail "no $s in the package"
done
unit=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./lib/systemd/system/vipwarden.service)
grep -q '^ExecStart=/usr/bin/vipwarden run' <<<"$unit" || fail "the packaged unit does not run /usr/bin/vipwarden"

# The "previous" package for the upgrade test: the same build with a lower version (0.1.0-0 <
# 0.1.0-1), so dpkg takes the new one as an upgrade and its postinst restarts the unit.
# (cargo-deb removes the other versions from its output directory: both are kept in $scratch.)
prev_version="$(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')-0"
cp "$deb" "$scratch/" && deb=$scratch/${deb##*/}
prev=$(VW_DEB_VERSION=$prev_version bash deploy/debian/build-deb.sh)
[[ -f $prev ]] || fail "no previous .deb built"
cp "$prev" "$scratch/" && prev=$scratch/${prev##*/}
[[ $prev != "$deb" ]] || fail "the previous .deb has the new one's name"
dpkg --compare-versions "$(dpkg-deb -f "$prev" Version)" lt "$(dpkg-deb -f "$deb" Version)" ||
  fail "$prev is not older than $deb"
echo "package: previous $prev ($(dpkg-deb -f "$prev" Version)) for the upgrade test"

bash testbed/package-chroot.sh "$deb" "$prev"
