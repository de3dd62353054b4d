#!/usr/bin/env bash
# Every test, from a fresh Debian machine as root: installs what is missing, then formatting, lints,
# unit and property tests, and the lab against real BIRD 2, FRR and GoBGP in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "packages"
bash testbed/setup.sh

step "rust toolchain"
if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: installing Debian's rust toolchain (vipwarden needs rustc >= 1.85)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo rustc rustfmt rust-clippy >/dev/null
fi
cargo --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --locked --all-targets -- -D warnings

step "unit and property tests"
cargo test --locked

step "fuzz: every target (fuzz/fuzz_targets) for ${FUZZ_SECONDS:-60} s, two at a time; fails on any crash"
FUZZ_PARALLEL=${FUZZ_PARALLEL:-2} bash testbed/fuzz.sh

step "deploy/: Prometheus alert rules (promtool check + unit tests of every alert)"
promtool check rules deploy/prometheus/vipwarden-alerts.yml
(cd deploy/prometheus && promtool test rules vipwarden-alerts.test.yml)

step "release build"
cargo build --locked --release

step "Debian package: build (cargo-deb); clean Debian 12 root: install, check-config, purge; the unit under systemd-nspawn"
bash testbed/package-test.sh

step "lab: real BIRD 2, FRR and GoBGP in network namespaces"
VIPWARDEN_BIN="$PWD/target/release/vipwarden" bash testbed/run-tests.sh

step "chaos soak, CI length: 3 minutes of random faults against BIRD (BFD) and FRR, oracle on both RIBs (an hour: testbed/soak.sh -d 3600)"
VIPWARDEN_BIN="$PWD/target/release/vipwarden" bash testbed/soak.sh -d 180 -s 1
