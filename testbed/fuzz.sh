#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs) with cargo-fuzz (libFuzzer + AddressSanitizer)
# on the stable toolchain, for FUZZ_SECONDS each, seeded from the committed corpus fuzz/corpus/T.
#   testbed/fuzz.sh [TARGET...]
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_RUNS      also stop a target after this many executions (default: no limit)
#   FUZZ_PARALLEL  targets run at once (default 1; CI runs 2 on its otherwise idle machine)
#   FUZZ_SANITIZER address (default) or none
#   FUZZ_NICE      nice level for the runs (default 15: the machine may be shared)
#   FUZZ_DEBUG_ASSERTIONS=1  build with debug assertions and overflow checks (default off: the
#                  optimized build the release binary has, and the one docs/fuzzing.md measured)
# Installs what is missing: g++ (Debian; libFuzzer is C++) and cargo-fuzz (crates.io). The
# sanitizer and coverage flags cargo-fuzz passes are -Z flags, which stable rustc accepts with
# RUSTC_BOOTSTRAP=1. New inputs go to fuzz/target/corpus/T (ignored by git), crashes to
# fuzz/artifacts/T/ (ignored too). Prints one line per target with executions, exec/s, coverage
# and features, and exits non-zero if any target crashed, leaked, timed out or ran out of memory.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-}
parallel=${FUZZ_PARALLEL:-1}
sanitizer=${FUZZ_SANITIZER:-address}
nice_level=${FUZZ_NICE:-15}
build_flags=(--release --sanitizer "$sanitizer")
[[ ${FUZZ_DEBUG_ASSERTIONS:-0} == 1 ]] && build_flags+=(--debug-assertions)
cargo_fuzz_version=0.13.2
export RUSTC_BOOTSTRAP=1

log() { printf 'fuzz: %s\n' "$*"; }

[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { log "FUZZ_SECONDS must be a positive integer"; exit 2; }
[[ -z $runs || $runs =~ ^[0-9]+$ ]] || { log "FUZZ_RUNS must be an integer"; exit 2; }
[[ $parallel =~ ^[1-9][0-9]*$ ]] || { log "FUZZ_PARALLEL must be a positive integer"; exit 2; }

# Tools.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
if ! command -v c++ >/dev/null 2>&1; then
  log "installing g++ (libFuzzer is built from C++ by libfuzzer-sys)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz $cargo_fuzz_version from crates.io"
  nice -n "$nice_level" cargo install --locked --version "$cargo_fuzz_version" cargo-fuzz
fi
log "$(cargo fuzz --version), $(rustc --version), sanitizer $sanitizer"

targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

# One build for every target (they share the instrumented dependencies).
t0=$SECONDS
nice -n "$nice_level" cargo fuzz build "${build_flags[@]}"
log "build: $((SECONDS - t0)) s"

# run_one TARGET: fuzz it, leave its log in fuzz/target/logs/TARGET.log and its exit code in .rc.
run_one() {
  local t=$1 work=fuzz/target/corpus/$1 logs=fuzz/target/logs
  local -a args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [[ -n $runs ]] && args+=(-runs="$runs")
  [[ -f fuzz/dict/$t.dict ]] && args+=(-dict="fuzz/dict/$t.dict")
  mkdir -p "$work" "$logs" "fuzz/artifacts/$t"
  # The scratch corpus first: libFuzzer writes new inputs to the first directory only, so the
  # committed corpus is read, never changed.
  local rc=0
  nice -n "$nice_level" cargo fuzz run "${build_flags[@]}" "$t" "$work" "fuzz/corpus/$t" \
    -- "${args[@]}" >"$logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$logs/$t.rc"
}

# summary TARGET: one line from libFuzzer's final stats and last status line.
summary() {
  local t=$1 log=fuzz/target/logs/$1.log rc
  rc=$(cat "fuzz/target/logs/$t.rc")
  # Any of these may be missing (a build error, a crash before the first status line).
  local execs rate cov ft secs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1 || true)
  cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | tr -dc '0-9' || true)
  ft=$(grep -oE ' ft: [0-9]+' "$log" | tail -n 1 | tr -dc '0-9' || true)
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 | grep -oE '[0-9]+ second' | tr -dc '0-9' || true)
  if [[ $rc == 0 ]]; then
    printf 'PASS %-10s %12s execs %8s exec/s  cov %6s  ft %7s  %5s s\n' \
      "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${secs:-?}"
  else
    printf 'FAIL %-10s exit %s after %s execs: %s\n' "$t" "$rc" "${execs:-?}" \
      "$(grep -m1 -E '^==[0-9]+== ?ERROR|panicked at|^error' "$log" || echo 'see log')"
    grep -E 'Test unit written to|^artifact_prefix' "$log" | sed 's/^/    /' || true
    echo "    log: $log; reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t fuzz/artifacts/$t/<file>"
  fi
}

running=()
for t in "${targets[@]}"; do
  [[ -f fuzz/fuzz_targets/$t.rs ]] || { log "no such target: $t"; exit 2; }
  log "running $t for ${seconds} s${runs:+ or $runs executions}"
  run_one "$t" &
  running+=($!)
  if ((${#running[@]} >= parallel)); then
    wait "${running[0]}"
    running=("${running[@]:1}")
  fi
done
for pid in "${running[@]}"; do wait "$pid"; done

failed=0
for t in "${targets[@]}"; do
  summary "$t"
  [[ $(cat "fuzz/target/logs/$t.rc") == 0 ]] || failed=$((failed + 1))
done
log "$((${#targets[@]} - failed)) passed, $failed failed"
((failed == 0))
