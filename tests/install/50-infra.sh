# Tools that check infra/: systemd-analyze (systemd) and cloud-init's schema validator.
if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v cloud-init >/dev/null 2>&1; then
  echo "installing systemd and cloud-init (Debian) for the infra checks"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends systemd cloud-init >/dev/null
fi
# The TURN test (tests/suites/turn.sh): coturn, iproute2 for its network namespaces, curl.
if ! command -v turnserver >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  echo "installing coturn, iproute2 and curl (Debian) for the TURN test"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends coturn iproute2 curl >/dev/null
fi
