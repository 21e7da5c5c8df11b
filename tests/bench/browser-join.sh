#!/usr/bin/env bash
# Join latency as users get it: click "Join" to the first remote frame, P2P and via the media node,
# against the release build of `edgemeet` (what `cargo run --release` runs), headless Chromium on
# loopback inside `unshare -n`. Prints the table and the median time of each step.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --quiet -p edgemeet
export EDGEMEET_BIN_DIR="$CARGO_TARGET_DIR/release" EDGEMEET_MEASURE_RUNS="${EDGEMEET_MEASURE_RUNS:-7}"
unshare -n sh -c 'ip link set lo up && node --test --test-reporter=spec tests/browser/measure.test.mjs'
