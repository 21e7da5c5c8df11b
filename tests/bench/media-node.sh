#!/usr/bin/env bash
# Media node benchmark (run by `tests/run --bench`): N publishers x M subscribers on loopback,
# prints forwarded packets/s, node CPU per million packets, latency p50/p99 and loss.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo build --release --quiet -p edgemeet-media-node -p edgemeet-testsupport --bins
target="${CARGO_TARGET_DIR:-$root/target}"
"$target/release/edgemeet-media-bench" "$@"
