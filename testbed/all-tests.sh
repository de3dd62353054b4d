#!/usr/bin/env bash
# Every test, from a fresh Debian machine as root: installs what is missing, then formatting, lints,
# unit and property tests, and the lab against real BIRD 2, FRR and GoBGP in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the time it starts, so a slow CI run shows where its minutes went.
t_start=$(date +%s)
step() { printf '\n=== [+%ds] %s\n' "$(($(date +%s) - t_start))" "$*"; }

step "packages"
bash testbed/setup.sh

step "rust toolchain"
if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    # Only a packaged compiler new enough to build the crate with its locked dependencies is
    # worth installing (1.89: Debian 12 has 1.63, Debian 13 1.85.1, trixie-backports newer);
    # otherwise say what to do instead of failing later with a compiler error.
    candidate=$(apt-cache policy rustc 2>/dev/null | awk '/Candidate:/ {print $2}')
    if dpkg --compare-versions "${candidate:-0}" ge 1.89; then
        echo "cargo not found: installing Debian's rust toolchain $candidate (vipwarden needs rustc >= 1.89)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo rustc rustfmt rust-clippy >/dev/null
    else
        echo "cargo not found, and this release packages rustc ${candidate:-(none)}: vipwarden needs rustc >= 1.89." >&2
        echo "Install it with rustup (https://rustup.rs), then run this again: see README.md, 'The Rust toolchain'." >&2
        exit 1
    fi
fi
cargo --version
rustc_version=$(rustc --version | awk '{print $2}')
if ! dpkg --compare-versions "$rustc_version" ge 1.89; then
    echo "rustc $rustc_version is too old: vipwarden needs rustc >= 1.89 (install with rustup: https://rustup.rs)" >&2
    exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --locked --all-targets -- -D warnings

step "unit and property tests"
cargo test --locked

# 60 s each in CI (7 targets, two at a time: 4 minutes); longer runs: FUZZ_SECONDS=3600 testbed/fuzz.sh.
step "fuzz: every target (fuzz/fuzz_targets) for ${FUZZ_SECONDS:-60} s, two at a time; fails on any crash"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} FUZZ_PARALLEL=${FUZZ_PARALLEL:-2} bash testbed/fuzz.sh

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
step "all passed"
