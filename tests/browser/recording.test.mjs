// Recording from the browser: a moderator connects "Dropbox" (the strict emulator of
// uploader/tests/support, run as a process) with OAuth 2 + PKCE in a popup, records a few seconds;
// the other page shows the indicator; the files land in the emulator's Dropbox. Then E2EE on
// anyone's side disables the button, with the reason shown.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { root, startEdge, launchBrowser, joinPage, inMeeting, uniqueRoom, tempDir } from './lib.mjs';

const APP_KEY = 'browserappkey';
let emulator;
let emuUrl;
let edge;
let browser;
let data;

async function startEmulator() {
  const bin = join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'examples', 'dropbox_emulator');
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('dropbox emulator did not start (cargo build -p edgemeet-uploader --example dropbox_emulator)')), 10000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('error', reject);
  });
  return { child, url };
}

before(async () => {
  ({ child: emulator, url: emuUrl } = await startEmulator());
  data = tempDir();
  edge = await startEdge({
    EDGEMEET_RECORDING_DATA_DIR: data,
    EDGEMEET_DROPBOX_APP_KEY: APP_KEY,
    EDGEMEET_DROPBOX_AUTHORIZE_URL: `${emuUrl}/oauth2/authorize`,
    EDGEMEET_DROPBOX_API_URL: emuUrl,
    EDGEMEET_DROPBOX_CONTENT_URL: emuUrl,
  });
  // The App Console's redirect URI: the edge's root, where the popup comes back.
  const res = await fetch(`${emuUrl}/_emulator/apps`, {
    method: 'POST',
    body: JSON.stringify({ app_key: APP_KEY, redirect_uris: [`${edge.url}/`] }),
  });
  assert.equal(res.status, 200);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  edge?.stop();
  emulator?.kill('SIGTERM');
  if (data) rmSync(data, { recursive: true, force: true });
});

const recordButton = (page) => page.evaluate(() => {
  const b = /** @type {HTMLButtonElement} */ (document.getElementById('record'));
  return { hidden: b.hidden, disabled: b.disabled, text: b.textContent, note: document.getElementById('record-note').textContent };
});

test('a moderator connects Dropbox, records; the other page sees the indicator; the files land in Dropbox', async () => {
  const room = uniqueRoom('rec');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  await ada.waitForFunction(() => !document.getElementById('record').hidden);
  assert.deepEqual(await recordButton(ada), { hidden: false, disabled: false, text: 'Record', note: '' });
  assert.equal(await bob.isVisible('#rec-badge'), false);

  // Record: the Dropbox popup opens, is approved, comes back to the edge's root and closes.
  const popupPromise = ada.context().waitForEvent('page');
  await ada.click('#record');
  const popup = await popupPromise;
  await popup.waitForEvent('close', { timeout: 15000 });
  for (const page of [ada, bob]) await page.waitForSelector('#rec-badge:not([hidden])', { timeout: 15000 });
  const started = Date.now();
  await ada.waitForFunction(() => document.getElementById('record').textContent === 'Stop recording');
  // The grant is in the page's memory only: nothing in storage.
  assert.equal(await ada.evaluate(() => localStorage.length + sessionStorage.length), 0);

  await ada.waitForTimeout(4000);
  await ada.click('#record');
  for (const page of [ada, bob]) await page.waitForSelector('#rec-badge', { state: 'hidden', timeout: 15000 });
  const seconds = (Date.now() - started) / 1000;

  let files = [];
  for (let i = 0; i < 150 && files.length < 2; i++) {
    files = await (await fetch(`${emuUrl}/_emulator/files`)).json();
    if (files.length < 2) await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`recorded ${seconds.toFixed(1)} s: ${files.map((f) => `${f.path_display} ${f.size} bytes`).join(', ')}`);
  assert.equal(files.length, 2, JSON.stringify(files));
  for (const f of files) {
    assert.match(f.path_display, /^\/edgemeet\/\d{4}-\d{2}-\d{2}\/[0-9a-f]{8}-p\d\.webm$/);
    // Video too: audio alone would be about 16 kB for 4 s.
    assert.ok(f.size > 40000, `${f.size} bytes`);
  }
  // Nothing of the grant in the edge's logs.
  assert.ok(!edge.logs.some((l) => /sl\.emu-access|emu-refresh/.test(l)));

  // E2EE on anyone's side: the button is disabled and says why.
  const cy = await joinPage(browser, edge.url, room, { name: 'Cy', e2ee: 'a shared passphrase' });
  await inMeeting(cy);
  await ada.waitForFunction(() => /** @type {HTMLButtonElement} */ (document.getElementById('record')).disabled, null, { timeout: 15000 });
  const b = await recordButton(ada);
  assert.match(b.note, /end-to-end encryption/);
  assert.equal(await ada.isVisible('#record-note'), true);
  for (const page of [ada, bob, cy]) await page.context().close();
});
