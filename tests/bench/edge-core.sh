#!/usr/bin/env bash
# edge/core: fan-out (deliveries per second per core in a 100-participant room), and password
# guessing against one locked room from 1, 30 and 300 addresses (simulated clock: guesses the room
# checks per hour, and how long a newcomer with the right password waits).
set -euo pipefail
cargo bench -q -p edgemeet-core --bench fanout
cargo bench -q -p edgemeet-core --bench password_guessing
