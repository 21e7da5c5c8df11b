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
  # Known flake on a loaded machine: the media node keeps waiting for a simulcast layer a publisher
  # paused instead of falling back (issue 4), which can freeze one pulled video. Said, then retried once.
  echo "browser suite failed; retrying once (see the failure above)"
  run
fi
