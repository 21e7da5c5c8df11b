#!/usr/bin/env bash
# Uploader benchmark: a 2 GiB recording from S3 (s3s-fs) to the Dropbox emulator on loopback.
# Prints peak RSS of the uploader process and its throughput relative to a raw copy of the same
# bytes. EDGEMEET_BENCH_BYTES overrides the size.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo bench -p edgemeet-uploader --bench pipeline --quiet
