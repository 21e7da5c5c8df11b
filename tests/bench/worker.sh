#!/usr/bin/env bash
# Benchmark: the Worker under local workerd (`wrangler dev`) next to the native server, same client,
# same configuration, same run. Prints join latency (WS open -> roster) p50/p99 and broadcast fan-out
# in a 50-participant room. Rate limits (and the per-address socket caps: every bench client comes from
# 127.0.0.1) are raised for the run so the room, not the limiter, is measured.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export EDGEMEET_CACHE="${EDGEMEET_CACHE:-$HOME/.cache/edgemeet}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

edge/worker/build.sh >/dev/null
cargo build --quiet --release -p edgemeet
state="$(mktemp -d)"
native_pid=""
stop() {
  [ -f "$state/wrangler.pid" ] && kill -- "-$(cat "$state/wrangler.pid")" 2>/dev/null || true
  [ -n "$native_pid" ] && kill "$native_pid" 2>/dev/null || true
  sleep 0.3
  rm -rf "$state"
}
trap stop EXIT INT TERM

cat >"$state/bench.toml" <<'TOML'
listen = "127.0.0.1:0"
max_sockets_per_address = 100000
[edge]
default_tenant = "default"
hash_key = "bench-hash-key-0123456789abcdef"
node_secret = "bench-node-secret-0123456789abcdef0123"
[edge.limits]
room_capacity = 200
room_sockets_per_address = 1000
message_burst = 1000000
messages_per_second = 1000000
[edge.tenants.default]
auth = "open"
TOML

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
worker_url="$(edge/worker/dev.sh "$state/bench.toml" "$port" "$state" "$state/wrangler.log")"

EDGEMEET_WEB_DIR="$root/edge/web" EDGEMEET_LOG=warn \
  "$CARGO_TARGET_DIR/release/edgemeet" --config "$state/bench.toml" >"$state/native.log" 2>&1 &
native_pid=$!
native_url=""
for _ in $(seq 1 80); do
  native_url="$(sed -n 's/.*listening on \(http:[^ ]*\)\/.*/\1/p' "$state/native.log" | head -1)"
  [ -n "$native_url" ] && break
  sleep 0.25
done
[ -n "$native_url" ] || { cat "$state/native.log"; exit 1; }

echo "=== edge benchmark: Worker (wrangler dev, local workerd) vs native, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
# Server CPU (user+system ticks of its processes) over the run: the client shares the 2 cores, so
# deliveries per server CPU-second says more about the edge than wall-clock rates do.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
hz="$(getconf CLK_TCK)"
workerd_pids="$(pgrep -f 'workerd serve' -P "$(pgrep -f 'wrangler-dist/cli.js dev' -d, )" -d' ' || true)"
[ -n "$workerd_pids" ] || workerd_pids="$(pgrep -f "workerd serve.*" -d' ')"
run() {
  local label="$1" url="$2"; shift 2
  local before after out
  before="$(ticks "$@")"
  out="$(EDGEMEET_URL="$url" timeout 300 node --no-warnings --experimental-websocket edge/worker/tests/bench.mjs "$label")"
  after="$(ticks "$@")"
  echo "$out"
  local deliveries cpu
  deliveries="$(echo "$out" | sed -n 's/.* \([0-9]*\)\/[0-9]* deliveries.*/\1/p')"
  cpu="$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')"
  awk -v d="${deliveries:-0}" -v c="$cpu" -v l="$label" \
    'BEGIN { printf "%s: server CPU for the whole run %s s -> %d deliveries per server CPU-second\n", l, c, (c > 0 ? d / c : 0) }'
}
# shellcheck disable=SC2086
run worker "$worker_url" $workerd_pids
run native "$native_url" "$native_pid"
