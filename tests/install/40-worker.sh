# Cloudflare Worker (edge/worker): pinned wasm-bindgen CLI and wrangler (cached under $EDGEMEET_CACHE),
# the wasm32 target, then the Worker build itself. Sourced by tests/run (bash, set -euo pipefail).
edge/worker/build.sh >/dev/null
