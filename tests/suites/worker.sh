#!/usr/bin/env bash
# The edge as a Cloudflare Worker under workerd (`wrangler dev`, 127.0.0.1 only), configured with the
# same tests/fixtures/edge.toml as the native host: the shared protocol conformance suite, unchanged,
# then the Worker's own tests (a real node's recording and its status link, hibernation, storage
# wiped at the end, registry and request.cf, node secret, frames). Runs after `cargo test` in
# tests/run; needs s3s-fs (tests/install/30-uploader.sh, or EDGEMEET_S3S_FS).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export EDGEMEET_CACHE="${EDGEMEET_CACHE:-$HOME/.cache/edgemeet}"

edge/worker/build.sh >/dev/null
state="$(mktemp -d)"
log="$state/wrangler.log"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
stop() {
  if [ -f "$state/wrangler.pid" ]; then
    kill -- "-$(cat "$state/wrangler.pid")" 2>/dev/null || true
    sleep 0.3
  fi
  rm -rf "$state"
}
trap stop EXIT INT TERM

started=$(date +%s%N)
url="$(edge/worker/dev.sh tests/fixtures/edge.toml "$port" "$state" "$log" --probes)"
echo "worker under wrangler dev at $url (ready in $(( ($(date +%s%N) - started) / 1000000 )) ms)"

status=0
echo "--- protocol conformance suite against the Worker"
# `--workspace` (here and below): the selection of tests/run's build, which is then fresh.
EDGEMEET_URL="$url" timeout 900 cargo test --quiet --workspace --test conformance || status=1

echo "--- Worker-specific tests"
# A real recording media node and the uploader's status links (the first Worker test) run as processes.
cargo build --quiet --workspace --all-targets
EDGEMEET_URL="$url" EDGEMEET_WORKER_LOG="$log" timeout 300 node --no-warnings --experimental-websocket --test edge/worker/tests/ || status=1

if [ "$status" != 0 ]; then
  echo "--- wrangler log (tail)"
  tail -n 60 "$log" || true
fi
exit "$status"
