#!/usr/bin/env bash
# Thin and lossy links (issue 18's table): a viewer's downlink capped (300k, 500k, 1M, 3M, none)
# and lossy (0, 2, 5, 10 %), in a direct call and through the node, against the release build of
# `edgemeet`. Prints tables; asserts nothing. See tests/browser/links.bench.mjs for the knobs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --quiet -p edgemeet
export EDGEMEET_BIN_DIR="$CARGO_TARGET_DIR/release"
unshare -n sh -c 'ip link set lo up && node tests/browser/links.bench.mjs'
