// Shared helpers for the browser tests: start the native edge, launch headless Debian Chromium with a
// fake camera and microphone, open meeting pages, read WebRTC stats.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifacts = join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'browser-artifacts');
mkdirSync(artifacts, { recursive: true });

/**
 * Start `edgemeet` with the fixture config (plus extra env, and `toml` appended to the config, or a
 * function that rewrites the fixture's text) and resolve to its base URL, logs and process id.
 */
export async function startEdge(env = {}, toml = '') {
  const bin = join(process.env.EDGEMEET_BIN_DIR || join(root, 'target', 'debug'), 'edgemeet');
  let config = join(root, 'tests/fixtures/edge.toml');
  if (toml) {
    const copy = join(mkdtempSync(join(tmpdir(), 'edgemeet-')), 'edge.toml');
    const text = readFileSync(config, 'utf8');
    writeFileSync(copy, typeof toml === 'function' ? toml(text) : `${text}\n${toml}\n`);
    config = copy;
  }
  const child = spawn(bin, ['--config', config], {
    env: { ...process.env, EDGEMEET_WEB_DIR: join(root, 'edge/web'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edgemeet did not start:\n${logs.join('\n')}`)), 20000);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        logs.push(line);
        const m = line.match(/listening on (http:\/\/\S+?)\/?\s/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
    }
    child.on('exit', (code) => reject(new Error(`edgemeet exited with ${code}:\n${logs.join('\n')}`)));
  });
  return { url, logs, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-gpu', '--disable-quic', '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}

/** A new page (own context) in the meeting `room`, joined with `name`. */
export async function joinPage(browser, base, room, { name = '', query = '', password = '', e2ee = '', viewport = { width: 1280, height: 800 }, lowres = true, scale = 1 } = {}) {
  // `scale`: device pixels per CSS pixel (0.5: a page zoomed out to 50 %).
  const context = await browser.newContext({ permissions: ['camera', 'microphone'], viewport, deviceScaleFactor: scale });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[page ${name}]`, err));
  // `lowres` (640x360, two simulcast layers flow): light enough for many pages on two cores.
  const url = lowres ? `${base}/${room}${query}${query.includes('?') ? '&' : '?'}lowres` : `${base}/${room}${query}`;
  await page.goto(url);
  // Twice in whole CI runs (never by hand) the first page of a new browser in a lab namespace
  // loaded but never ran its modules (no page error, no pre-join in 30 s); a reload ran them. Said
  // on stderr so it stays visible; not understood yet (docs/field-notes.md).
  if (!(await page.waitForSelector('#prejoin:not([hidden])', { timeout: 15000 }).catch(() => null))) {
    console.error(`[page ${name}] no pre-join screen 15 s after loading ${url}: reloading once`);
    await page.goto(url);
    await page.waitForSelector('#prejoin:not([hidden])');
  }
  if (name) await page.fill('#display-name', name);
  if (password) {
    await page.evaluate(() => { document.getElementById('password-box').hidden = false; });
    await page.fill('#room-password', password);
  }
  if (e2ee) {
    await page.check('#e2ee-toggle');
    await page.fill('#e2ee-passphrase', e2ee);
  }
  // Like a person, click once the preview shows the camera (joining would wait for it anyway).
  await page.waitForFunction(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).srcObject);
  await page.click('#join');
  return page;
}

/** Wait until the page shows the meeting. */
export async function inMeeting(page, timeout = 15000) {
  await page.waitForSelector('#meeting:not([hidden])', { timeout });
}

/** Wait until the page's mode badge reads `text` ('Direct', 'Via server', 'Alone'). */
export async function waitMode(page, text, timeout = 20000) {
  await page.waitForFunction((t) => document.getElementById('mode-badge').textContent === t, text, { timeout });
}

/** Incoming video per RTP stream: packets received and frames decoded. */
export async function videoInbound(page) {
  return page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    const out = [];
    for (const [peer, pc] of m.peerConnections()) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') out.push({ peer, packets: s.packetsReceived || 0, frames: s.framesDecoded || 0 });
      }
    }
    return out;
  });
}

/**
 * Incoming streams on the connection to the media node that have the sender's reports
 * (`remote-outbound-rtp`: what audio/video sync needs), and those that do not, by kind.
 */
export async function senderReportsViaNode(page) {
  return page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    const out = { reported: /** @type {string[]} */ ([]), missing: /** @type {string[]} */ ([]) };
    for (const [peer, pc] of m.peerConnections()) {
      if (!String(peer).startsWith('sfu')) continue;
      const stats = await pc.getStats();
      const reported = new Set([...stats.values()].filter((s) => s.type === 'remote-outbound-rtp').map((s) => s.ssrc));
      for (const s of stats.values()) {
        if (s.type === 'inbound-rtp' && (s.packetsReceived || 0) > 0) (reported.has(s.ssrc) ? out.reported : out.missing).push(s.kind);
      }
    }
    return out;
  });
}

/** An HS256 invite token in Jitsi's format. */
export function mintToken(secret, claims) {
  const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ aud: 'edgemeet', nbf: now - 10, exp: now + 3600, ...claims })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** Frames decoded per remote participant, from the page's peer connections. */
export async function framesDecoded(page) {
  return page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    const out = {};
    for (const [peer, pc] of m.peerConnections()) {
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') out[`${peer}:${s.trackIdentifier || s.ssrc}`] = s.framesDecoded || 0;
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out[`${peer}:audio:${s.ssrc}`] = -(s.packetsReceived || 0);
      }
    }
    return out;
  });
}

/**
 * Wait until `count` remote videos each decode more frames than when the wait began (a video that
 * appears meanwhile counts from 0; a stale one, e.g. a standby link's after a return to P2P, does
 * not rise); returns the figures.
 */
export async function waitForVideo(page, count, timeoutMs = 20000) {
  const start = Date.now();
  const first = await framesDecoded(page);
  let last = first;
  while (Date.now() - start < timeoutMs) {
    await new Promise((r) => setTimeout(r, 200));
    last = await framesDecoded(page);
    const rising = Object.entries(last).filter(([k, v]) => v > 0 && v > (first[k] || 0));
    if (rising.length >= count) return last;
  }
  throw new Error(`expected ${count} remote videos decoding, got ${JSON.stringify(last)}`);
}

export function uniqueRoom(prefix) {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'edgemeet-'));
}
