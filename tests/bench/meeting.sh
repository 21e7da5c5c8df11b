#!/usr/bin/env bash
# Meetings through the media node with pages on machines of their own (tests/browser/netlab.mjs),
# against the release build of `edgemeet`: join -> first remote frame for the 2nd to 8th person,
# and the loss table (0, 2, 5, 10 % on one viewer's link). Prints tables; asserts nothing.
# EDGEMEET_BENCH_ROOMS (default 5) and EDGEMEET_BENCH_LOSS_S (default 30) shorten it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --quiet -p edgemeet
export EDGEMEET_BIN_DIR="$CARGO_TARGET_DIR/release"
unshare -n sh -c 'ip link set lo up && node tests/browser/meeting.bench.mjs'
