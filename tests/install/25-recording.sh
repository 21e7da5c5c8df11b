# Recording and composer tests: Debian's ffmpeg (ffprobe reads the recorded WebM; ffmpeg makes the VP8 and Opus
# clips the test publishers send). Sourced by tests/run (bash, set -euo pipefail).
if ! command -v ffprobe >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
  echo "installing ffmpeg (Debian) for the recording tests"
  apt_get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq ffmpeg >/dev/null
fi
