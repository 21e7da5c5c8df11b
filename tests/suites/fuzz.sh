#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo fuzz, libFuzzer): one per parser that takes outside bytes.
#
# Short (the normal `tests/run`): each target for EDGEMEET_FUZZ_RUNS executions (default 20 000,
# at most 5 s) from the seeds in fuzz/seeds, with a fixed seed, built without optimization (quick
# to build): every target builds and runs, and no known input (the seeds hold past crashes) crashes.
# Long (`tests/run --fuzz`, EDGEMEET_FUZZ_MODE=long): each target for EDGEMEET_FUZZ_RUNS
# executions (default 10 000 000) or EDGEMEET_FUZZ_SECONDS (default 300), whichever ends first,
# with a random seed and a corpus kept in $EDGEMEET_CACHE/fuzz-corpus across runs.
#
# A crash fails the suite; its input is left in <target dir>/fuzz/artifacts/<target>/ (replay
# it with `<target binary> <file>`). Targets run niced: other work shares the cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/fuzz"
mode="${EDGEMEET_FUZZ_MODE:-short}"
cargo_fuzz="${EDGEMEET_CARGO_FUZZ:-cargo-fuzz}"
target_dir="${CARGO_TARGET_DIR:-$root/target}/fuzz"
cache="${EDGEMEET_CACHE:-$HOME/.cache/edgemeet}"
# Nightly where installed (what `cargo +nightly fuzz` by hand uses too); without a sanitizer,
# cargo fuzz passes only stable flags, so the default toolchain builds the targets elsewhere.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  export RUSTUP_TOOLCHAIN=nightly
fi
# No sanitizer: the code is safe Rust, and what the targets look for (panics, overflows, failed
# assertions) is caught without one; builds and runs are several times faster.
# Short: the dev profile (no optimization; debug assertions and overflow checks on, as in the
# release build cargo fuzz makes): the cold build of the instrumented tree takes about 6.5
# CPU-minutes instead of 16; every seed still runs, the slower targets reach 4 000-14 000
# executions in their 5 s instead of more. Long: release, 16 codegen units (faster to build than
# cargo fuzz's default of 1), for executions per second.
if [ "$mode" = long ]; then
  build_flags=(-s none --codegen-units 16 --target-dir "$target_dir")
  bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
else
  build_flags=(-s none --dev --target-dir "$target_dir")
  bin_dir="$target_dir/x86_64-unknown-linux-gnu/debug"
fi
unset CARGO_TARGET_DIR

start=$(date +%s)
nice -n 10 "$cargo_fuzz" fuzz build "${build_flags[@]}"
echo "fuzz targets built in $(($(date +%s) - start)) s"

targets=$("$cargo_fuzz" fuzz list)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
  artifacts="$target_dir/artifacts/$t"
  mkdir -p "$artifacts"
  args=(-artifact_prefix="$artifacts/" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [ -f "dicts/$t.dict" ] && args+=(-dict="dicts/$t.dict")
  if [ "$mode" = long ]; then
    corpus="$cache/fuzz-corpus/$t"
    args+=(-runs="${EDGEMEET_FUZZ_RUNS:-10000000}" -max_total_time="${EDGEMEET_FUZZ_SECONDS:-300}")
  else
    corpus="$work/$t"
    args+=(-runs="${EDGEMEET_FUZZ_RUNS:-20000}" -max_total_time=5 -seed=1)
  fi
  mkdir -p "$corpus"
  dirs=("$corpus")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  log="$work/$t.log"
  t0=$(date +%s)
  if nice -n 15 "$bin_dir/$t" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ok, $runs executions in $(($(date +%s) - t0)) s, $cov"
  else
    echo "fuzz $t: FAILED"
    grep -v '^#' "$log" | tail -40
    ls "$artifacts"
    failed+=("$t")
  fi
done
echo "fuzzing took $(($(date +%s) - start)) s in all"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz targets failed: ${failed[*]}"
  exit 1
fi
