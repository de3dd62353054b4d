#!/usr/bin/env bash
# Builds the Debian package from the release binary with cargo-deb (metadata in Cargo.toml):
# generates the man pages and shell completions from the binary itself, and the unit with the
# packaged path, into deploy/debian/.generated/ (not in git), then `cargo deb --no-build`. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/vipwarden
[[ -x $bin ]] || { echo "build-deb: $bin missing: cargo build --release first" >&2; exit 1; }
command -v cargo-deb >/dev/null || { echo "build-deb: cargo-deb missing (cargo install cargo-deb --locked)" >&2; exit 1; }
assets=deploy/debian/.generated
rm -rf "$assets" && mkdir -p "$assets/man" "$assets/completions"
# The packaged binary: symbols and debug info stripped (15 MB -> about 5), so a .deb is not
# mostly debug data; target/release/vipwarden stays as built for local debugging.
strip --strip-all -o "$assets/vipwarden" "$bin"
# The changelog's version is the package's (cargo-deb: VERSION-1).
want="vipwarden ($(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)-1)"
head -n 1 deploy/debian/changelog | grep -qF "$want" ||
  { echo "build-deb: deploy/debian/changelog does not start with $want" >&2; exit 1; }
# VW_DEB_VERSION (tests only): the same build under another package version, e.g. the "previous"
# package testbed/package-test.sh upgrades from.
version_args=()
if [[ -n ${VW_DEB_VERSION:-} ]]; then version_args=(--deb-version "$VW_DEB_VERSION"); fi
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/vipwarden"
"$bin" completions zsh >"$assets/completions/_vipwarden"
"$bin" completions fish >"$assets/completions/vipwarden.fish"
# The packaged unit: /usr/bin, and /etc/vipwarden's mode as postinst sets it (root:vipwarden 0750),
# or systemd logs "ConfigurationDirectory 'vipwarden' already exists but the mode is different" at
# every start (seen by testbed/package-chroot.sh under a real systemd).
sed -e 's#/usr/local/bin/vipwarden#/usr/bin/vipwarden#g' \
  -e 's#^ConfigurationDirectory=vipwarden$#&\nConfigurationDirectoryMode=0750#' \
  config/vipwarden.service >"$assets/vipwarden.service"
grep -q '^ConfigurationDirectoryMode=0750$' "$assets/vipwarden.service" ||
  { echo "build-deb: ConfigurationDirectory= line not found in config/vipwarden.service" >&2; exit 1; }
cargo deb --no-build --no-strip "${version_args[@]}" --output target/debian/ 2>&1 | tail -n 1 >&2
ls -1t target/debian/vipwarden_*.deb | head -n 1
