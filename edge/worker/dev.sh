#!/usr/bin/env bash
# Start the built Worker under workerd (`wrangler dev`, local only) with an edge config file, and
# print its URL once it answers. Used by tests/suites/worker.sh and tests/bench/worker.sh.
#
#   edge/worker/dev.sh CONFIG.toml PORT STATE_DIR LOG [--probes]
# Leaves wrangler running in its own process group; its pid is written to STATE_DIR/wrangler.pid.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
config="$1" port="$2" state="$3" log="$4" probes="${5:-}"
wrangler="$(EDGEMEET_QUIET=1 "$here/build.sh" --tools | sed -n 's/^WRANGLER=//p')"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG_PATH="$state/logs" XDG_CONFIG_HOME="$state/xdg" NO_COLOR=1
mkdir -p "$state"
public="$(python3 "$here/tools/config-vars.py" "$config" public)"
secrets="$(python3 "$here/tools/config-vars.py" "$config" secrets)"
args=(dev --ip 127.0.0.1 --port "$port" --inspector-port 0 --persist-to "$state/wrangler-state"
      --var "EDGEMEET_EDGE:$public" --var "EDGEMEET_EDGE_SECRETS:$secrets" --show-interactive-dev-session=false)
# [recording]: the same variables as the native host reads (EDGEMEET_DROPBOX_APP_KEY, ...).
recording="$(python3 "$here/tools/config-vars.py" "$config" recording)"
while IFS='=' read -r name value; do
  [ -n "$name" ] && args+=(--var "$name:$value")
done <<<"$recording"
[ "$probes" = --probes ] && args+=(--var EDGEMEET_TEST_PROBES:1)
cd "$here"
setsid "$wrangler" "${args[@]}" </dev/null >"$log" 2>&1 &
echo $! >"$state/wrangler.pid"
for _ in $(seq 1 120); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    # Warm the isolate: the first name check builds zxcvbn's dictionaries (~0.5 s of CPU in wasm).
    curl -fsS -o /dev/null -X POST -d '{"name":"warm-up"}' "http://127.0.0.1:$port/api/names/check" || true
    echo "http://127.0.0.1:$port"
    exit 0
  fi
  if ! kill -0 "$(cat "$state/wrangler.pid")" 2>/dev/null; then break; fi
  sleep 0.25
done
echo "wrangler dev did not become ready; its log:" >&2
cat "$log" >&2
exit 1
