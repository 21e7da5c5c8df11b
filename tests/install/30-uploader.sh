# Uploader tests: a real S3-compatible server, s3s-fs 0.14.1 (checks signatures), built once into
# $EDGEMEET_CACHE/tools. Sourced by tests/run (bash, set -euo pipefail).
EDGEMEET_S3S_FS="$EDGEMEET_CACHE/tools/bin/s3s-fs"
if [ ! -x "$EDGEMEET_S3S_FS" ] || ! "$EDGEMEET_S3S_FS" --version 2>/dev/null | grep -q '0\.14\.1'; then
  echo "installing s3s-fs 0.14.1 into $EDGEMEET_CACHE/tools (once)"
  # Its own target dir so the workspace's build cache is not disturbed; removed afterwards.
  CARGO_TARGET_DIR="$EDGEMEET_CACHE/tools/build-s3s-fs" \
    cargo install --quiet --locked --root "$EDGEMEET_CACHE/tools" s3s-fs --version 0.14.1 --features binary
  rm -rf "$EDGEMEET_CACHE/tools/build-s3s-fs"
fi
export EDGEMEET_S3S_FS
