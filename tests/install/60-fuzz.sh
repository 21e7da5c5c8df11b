# Fuzzing (tests/suites/fuzz.sh, `tests/run --fuzz`): cargo-fuzz 0.13.2, built once into
# $EDGEMEET_CACHE/tools. Sourced by tests/run (bash, set -euo pipefail). fuzz.sh builds the
# targets with nightly where it is installed, else with the default toolchain (no sanitizer:
# cargo fuzz then passes only stable flags).
EDGEMEET_CARGO_FUZZ="$EDGEMEET_CACHE/tools/bin/cargo-fuzz"
if [ ! -x "$EDGEMEET_CARGO_FUZZ" ] || ! "$EDGEMEET_CARGO_FUZZ" --version 2>/dev/null | grep -q '0\.13\.2'; then
  echo "installing cargo-fuzz 0.13.2 into $EDGEMEET_CACHE/tools (once)"
  # Its own target dir so the workspace's build cache is not disturbed; removed afterwards.
  CARGO_TARGET_DIR="$EDGEMEET_CACHE/tools/build-cargo-fuzz" \
    cargo install --quiet --locked --root "$EDGEMEET_CACHE/tools" cargo-fuzz --version 0.13.2
  rm -rf "$EDGEMEET_CACHE/tools/build-cargo-fuzz"
fi
export EDGEMEET_CARGO_FUZZ
