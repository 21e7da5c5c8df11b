#!/usr/bin/env bash
# edge/core fan-out: deliveries per second per core in a 100-participant room.
set -euo pipefail
cargo bench -q -p edgemeet-core --bench fanout
