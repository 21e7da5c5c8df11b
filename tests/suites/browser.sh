#!/usr/bin/env bash
# Browser tests in headless Chromium, inside a private network namespace with only loopback up:
# WebRTC then gathers loopback candidates and nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
unshare -n sh -c 'ip link set lo up && node --test --test-concurrency=1 --test-reporter=spec tests/browser/'
