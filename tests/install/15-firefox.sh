# Mixed-browser tests: Debian's firefox-esr (and xvfb, a screen for it to share), driven over
# WebDriver BiDi by puppeteer-core (pinned in tests/browser/firefox/package-lock.json), installed
# once and cached under $EDGEMEET_CACHE.
# Apart from 10-browser.sh's packages so that neither install disturbs the other.
if ! command -v firefox-esr >/dev/null 2>&1; then
  echo "installing firefox-esr (Debian)"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends firefox-esr >/dev/null
fi
# A virtual screen for the Firefox that shares its screen (tests/browser/firefox-controls.test.mjs):
# headless Firefox has none.
if ! command -v Xvfb >/dev/null 2>&1; then
  echo "installing xvfb (Debian)"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends xvfb >/dev/null
fi
firefox_npm="$EDGEMEET_CACHE/npm-firefox"
if ! cmp -s tests/browser/firefox/package-lock.json "$firefox_npm/package-lock.json" \
   || [ ! -f "$firefox_npm/node_modules/puppeteer-core/package.json" ]; then
  echo "installing puppeteer-core into $firefox_npm"
  mkdir -p "$firefox_npm"
  cp tests/browser/firefox/package.json tests/browser/firefox/package-lock.json "$firefox_npm/"
  # puppeteer-core downloads no browser; it warns that it wants Node 22 and works on Node 20.
  (cd "$firefox_npm" && npm ci --no-audit --no-fund --loglevel=error --engine-strict=false)
fi
ln -sfn "$firefox_npm/node_modules" tests/browser/firefox/node_modules
