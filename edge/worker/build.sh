#!/usr/bin/env bash
# Reproducible build of the Cloudflare Worker (edge/worker/build/): pinned tools, no download from
# anywhere but crates.io and npm, tools cached under $EDGEMEET_CACHE so repeated runs are fast.
#
#   edge/worker/build.sh            # build (installs missing tools first)
#   edge/worker/build.sh --tools    # only install the tools
#
# Prints WRANGLER=<path> on its last line. Tools:
#   wasm-bindgen CLI  exactly the wasm-bindgen version in Cargo.lock   $EDGEMEET_CACHE/tools/wasm-bindgen-<v>
#   wrangler          4.86.0 (the newest that runs on Node 20)         $EDGEMEET_CACHE/npm/wrangler-<v>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${EDGEMEET_CACHE:-$HOME/.cache/edgemeet}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
WRANGLER_VERSION=4.86.0
log() { printf '[worker build] %s\n' "$*" >&2; }

# Rust target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >&2
fi

# wasm-bindgen CLI: the version Cargo.lock resolved (Cargo.toml pins it with `=`).
wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")"
[ -n "$wb_version" ] || { log "wasm-bindgen not found in Cargo.lock"; exit 1; }
wb_root="$cache/tools/wasm-bindgen-$wb_version"
WASM_BINDGEN="$wb_root/bin/wasm-bindgen"
if ! [ -x "$WASM_BINDGEN" ] || [ "$("$WASM_BINDGEN" --version 2>/dev/null)" != "wasm-bindgen $wb_version" ]; then
  log "installing wasm-bindgen-cli $wb_version (cold: several minutes; cached afterwards)"
  # Not --locked: its lockfile names a crate version the registry may lack.
  CARGO_TARGET_DIR="$cache/tools/target-wasm-bindgen" \
    cargo install --quiet wasm-bindgen-cli --version "=$wb_version" --root "$wb_root" --force >&2
  rm -rf "$cache/tools/target-wasm-bindgen"
fi

# wrangler, pinned, from npm.
npm_dir="$cache/npm/wrangler-$WRANGLER_VERSION"
WRANGLER="$npm_dir/node_modules/.bin/wrangler"
if ! [ -x "$WRANGLER" ]; then
  log "installing wrangler $WRANGLER_VERSION from npm"
  mkdir -p "$npm_dir"
  npm install --silent --no-audit --no-fund --no-save --prefix "$npm_dir" "wrangler@$WRANGLER_VERSION" >&2
fi

if [ "${1:-}" != "--tools" ]; then
  start=$(date +%s)
  log "cargo build (wasm32-unknown-unknown, release)"
  (cd "$root" && cargo build --quiet --release --target wasm32-unknown-unknown -p edgemeet-worker)
  out="$here/build"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  "$WASM_BINDGEN" --target module --out-dir "$out.tmp" --out-name index \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/edgemeet_worker.wasm"
  # wasm-bindgen emits a source-phase import; wrangler's CompiledWasm rule gives the same Module.
  sed -i 's/^import source wasmModule from/import wasmModule from/' "$out.tmp/index.js"
  cp "$here/shim.js" "$out.tmp/shim.js"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "built $out in $(( $(date +%s) - start )) s; index_bg.wasm $(stat -c %s "$out/index_bg.wasm") bytes, gzip $(gzip -9c "$out/index_bg.wasm" | wc -c) bytes"
fi
echo "WRANGLER=$WRANGLER"
