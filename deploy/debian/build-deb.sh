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
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/vipwarden"
"$bin" completions zsh >"$assets/completions/_vipwarden"
"$bin" completions fish >"$assets/completions/vipwarden.fish"
sed 's#/usr/local/bin/vipwarden#/usr/bin/vipwarden#g' config/vipwarden.service >"$assets/vipwarden.service"
cargo deb --no-build --no-strip --output target/debian/ 2>&1 | tail -n 1 >&2
ls -1t target/debian/vipwarden_*.deb | head -n 1
