// Debian's firefox-esr for the mixed-browser tests, driven over WebDriver BiDi by puppeteer-core
// (installed by tests/install/15-firefox.sh into tests/browser/firefox/node_modules). Fake camera
// and microphone come from prefs; Firefox's pages answer the same `window.edgemeet` the Chromium
// helpers of lib.mjs read (framesDecoded, waitForVideo take either kind of page).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { root } from './lib.mjs';

const require = createRequire(join(root, 'tests/browser/firefox/package.json'));

/**
 * Firefox, headless; or (`display`: an X display, see `startScreen`) with a window on that screen,
 * which it can then share (headless Firefox has no screen: `getDisplayMedia` -> NotFoundError).
 * @param {{display?: string}} [opts]
 */
export async function launchFirefox({ display } = {}) {
  const puppeteer = require('puppeteer-core');
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
    headless: !display,
    ...(display ? { env: { ...process.env, DISPLAY: display } } : {}),
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      // Without it Firefox gathers only its default-route address.
      'media.navigator.permission.fake': true,
      // The tests run in a namespace with loopback only.
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      'media.autoplay.default': 0,
      'media.autoplay.blocking_policy': 0,
    },
  });
}

/** A Firefox page (own context) in the meeting `room`, joined with `name`. */
export async function joinFirefoxPage(browser, base, room, { name = '', e2ee = '' } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[firefox page ${name}]`, err));
  await page.goto(`${base}/${room}?lowres`);
  await page.waitForSelector('#prejoin:not([hidden])');
  if (name) await page.type('#display-name', name);
  if (e2ee) {
    await page.click('#e2ee-toggle');
    await page.type('#e2ee-passphrase', e2ee);
  }
  await page.waitForFunction(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).srcObject, { timeout: 15000 });
  await page.click('#join');
  return page;
}

/** Wait until a Firefox page's mode badge reads `text`. */
export async function firefoxMode(page, text, timeout = 20000) {
  await page.waitForFunction((t) => document.getElementById('mode-badge').textContent === t, { timeout }, text);
}

/**
 * A virtual screen (Xvfb, installed by tests/install/15-firefox.sh) for a Firefox that shares its
 * screen: with `media.navigator.permission.disabled` it shares the whole screen without a picker.
 * Resolves to its display (":N", a free number Xvfb picks) and a stop function.
 */
export async function startScreen() {
  const xvfb = spawn(process.env.XVFB || 'Xvfb', ['-displayfd', '3', '-screen', '0', '1280x720x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  xvfb.stderr.on('data', (d) => { stderr += d; });
  const display = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Xvfb did not start: ${stderr}`)), 10000);
    xvfb.once('error', (e) => { clearTimeout(timer); reject(e); });
    xvfb.stdio[3].on('data', (d) => { clearTimeout(timer); resolve(`:${String(d).trim()}`); });
  });
  return { display, stop: () => xvfb.kill('SIGTERM') };
}
