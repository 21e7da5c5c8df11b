#!/usr/bin/env bash
# Browser tests in headless Chromium, inside a private network namespace with only loopback up:
# WebRTC then gathers loopback candidates and nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The Dropbox emulator as a process, for recording.test.mjs (cargo test builds it too).
cargo build -p edgemeet-uploader --example dropbox_emulator --quiet
echo "--- tsc --checkJs on the browser client (JSDoc types)"
node tests/browser/node_modules/typescript/bin/tsc -p tests/browser/tsconfig.web.json
echo "types ok"
run() { unshare -n sh -c 'ip link set lo up && node --test --test-concurrency=1 --test-reporter=spec tests/browser/'; }
if ! run; then
  # Three Chromiums encoding video starve two cores; a failure is said (above), then retried once.
  # (The flake this was added for, the node waiting for a paused simulcast layer, is fixed.)
  echo "browser suite failed; retrying once (see the failure above)"
  run
fi
