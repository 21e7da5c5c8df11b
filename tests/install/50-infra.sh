# Tools that check infra/: systemd-analyze (systemd) and cloud-init's schema validator.
if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v cloud-init >/dev/null 2>&1; then
  echo "installing systemd and cloud-init (Debian) for the infra checks"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd cloud-init >/dev/null
fi
