# Browser tests: Debian's Chromium and playwright-core (pinned in tests/browser/package-lock.json),
# installed once and cached under $EDGEMEET_CACHE.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian)"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq chromium >/dev/null
fi
# The browser tests' network lab (tests/browser/netlab.mjs): random loss with nftables; iproute2
# for namespaces, veth links and tc.
if ! command -v nft >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1; then
  echo "installing nftables and iproute2 (Debian) for the browser tests' network lab"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends nftables iproute2 >/dev/null
fi
browser_npm="$EDGEMEET_CACHE/npm-browser"
if ! cmp -s tests/browser/package-lock.json "$browser_npm/package-lock.json" \
   || [ ! -f "$browser_npm/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core into $browser_npm"
  mkdir -p "$browser_npm"
  cp tests/browser/package.json tests/browser/package-lock.json "$browser_npm/"
  (cd "$browser_npm" && npm ci --no-audit --no-fund --loglevel=error)
fi
ln -sfn "$browser_npm/node_modules" tests/browser/node_modules
