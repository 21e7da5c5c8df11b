#!/usr/bin/env bash
# Composer benchmark: CPU cores per composition at 720p30 and 1080p30 with 3 and 9 people, and
# whether it keeps real time (composer/benches/composition.rs). EDGEMEET_BENCH_SECS shortens it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo bench -p edgemeet-composer --bench composition --quiet
