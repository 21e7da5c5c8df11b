# A Python venv with aiortc (an independent WebRTC stack) for the media node's interop test, and
# PyJWT for the token guide's example (tests/tests/token_guide.rs). Sourced by tests/run (bash,
# set -euo pipefail). Cached under $EDGEMEET_CACHE; exports EDGEMEET_PYTHON, which both require.
media_venv="$EDGEMEET_CACHE/media-venv"
if ! "$media_venv/bin/python" -c 'import aiortc, jwt' >/dev/null 2>&1; then
  echo "installing aiortc into $media_venv"
  rm -rf "$media_venv"
  if ! python3 -m venv "$media_venv"; then
    # Debian's python3 keeps venv/ensurepip in a separate package.
    apt_get install -y -qq python3-venv >/dev/null
    python3 -m venv "$media_venv"
  fi
  "$media_venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: 'aiortc==1.*' 'PyJWT[crypto]==2.*'
fi
export EDGEMEET_PYTHON="$media_venv/bin/python"
