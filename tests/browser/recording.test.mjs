// Recording from the browser: a moderator connects "Dropbox" (the strict emulator of
// uploader/tests/support, run as a process) with OAuth 2 + PKCE in a popup, records a few seconds;
// the other page shows the indicator; the files land in the emulator's Dropbox. The recorder's
// page, and only it, shows the recording's delivery-status link (copyable, opening the status
// page) and what it says: recording, delivered, or failed when the Dropbox is full. Then E2EE on
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
  const binDir = process.env.EDGEMEET_BIN_DIR || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug');
  const bin = join(binDir, 'dropbox-emulator');
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('dropbox emulator did not start (cargo build -p edgemeet-testsupport --bin dropbox-emulator)')), 10000);
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

/** The recorder's list of recordings: each entry's status text, state and link. */
const deliveries = (page) => page.evaluate(() => ({
  shown: !document.getElementById('recordings').hidden,
  items: [...document.querySelectorAll('#recording-links li')].map((li) => ({
    state: /** @type {HTMLElement} */ (li).dataset.state || '',
    text: li.querySelector('.delivery-status').textContent,
    href: /** @type {HTMLAnchorElement} */ (li.querySelector('a.delivery-link')).href,
    field: /** @type {HTMLInputElement} */ (li.querySelector('input.delivery-url')).value,
  })),
}));

/** Wait until the recorder's entry `i` is in `state`; returns the entries. */
async function deliveryReaches(page, i, state, timeout = 30000) {
  await page.waitForFunction(([i, state]) => {
    const li = document.querySelectorAll('#recording-links li')[i];
    return li && /** @type {HTMLElement} */ (li).dataset.state === state;
  }, [i, state], { timeout });
  return deliveries(page);
}

/** Neither a link nor the list ever reached this page. */
async function noLinkOn(page) {
  assert.equal(await page.isVisible('#recordings'), false);
  assert.equal(await page.evaluate(() => document.querySelectorAll('#recording-links li').length), 0);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).edgemeet.timings.marks['msg:recording_status_link']), undefined);
}

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
  // The recorder's page shows the recording's status link, which says it is recording.
  let list = await deliveryReaches(ada, 0, 'recording', 15000);
  assert.equal(list.shown, true);
  assert.match(list.items[0].href, new RegExp(`^${edge.url}/v1/recording-status/[0-9a-f]{32}$`));
  assert.equal(list.items[0].field, list.items[0].href);
  assert.match(list.items[0].text, /^Recording\. .* our copy is deleted (tomorrow|today) at/);

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

  // Delivered: the recorder's page says so, in words; the link answers the same.
  list = await deliveryReaches(ada, 0, 'delivered');
  const link = list.items[0].href;
  assert.match(list.items[0].text, /^Delivered to your Dropbox \(2 files\)\. Our copy is deleted; this link stops working (tomorrow|today) at/);
  const status = await (await fetch(link)).json();
  assert.deepEqual([status.state, status.files, status.files_delivered], ['delivered', 2, 2]);
  // Copyable...
  await ada.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: edge.url });
  await ada.click('#recording-links li button.delivery-copy');
  assert.equal(await ada.evaluate(() => navigator.clipboard.readText()), link);
  // ...and it opens the status page, which says the same to someone without the meeting.
  const statusPagePromise = ada.context().waitForEvent('page');
  await ada.click('#recording-links li a.delivery-link');
  const statusPage = await statusPagePromise;
  await statusPage.waitForLoadState();
  assert.equal(statusPage.url(), link);
  assert.match(await statusPage.textContent('body'), /Delivered \(2 of 2 files\)/);
  await statusPage.close();
  // Nothing of the link in the edge's logs; the other page never heard of it.
  assert.ok(!edge.logs.some((l) => l.includes(link.split('/').pop())));
  await noLinkOn(bob);

  // A Dropbox that is full: the next recording's delivery fails, and the recorder's page says why.
  const full = await fetch(`${emuUrl}/_emulator/quota`, { method: 'POST', body: JSON.stringify({ bytes: 0 }) });
  assert.equal(full.status, 200);
  await ada.click('#record'); // the Dropbox grant is still in the page's memory: no popup
  await ada.waitForFunction(() => document.getElementById('record').textContent === 'Stop recording');
  await deliveryReaches(ada, 1, 'recording', 15000);
  await ada.waitForTimeout(2000);
  await ada.click('#record');
  list = await deliveryReaches(ada, 1, 'failed');
  assert.notEqual(list.items[1].href, link, 'a link per recording');
  assert.match(list.items[1].text, /^Delivery failed: your Dropbox is full; free some space and delivery is tried again\. Next try .* 0 of \d files? delivered; the rest is deleted from our storage (tomorrow|today) at/);
  assert.equal(list.items[0].state, 'delivered');
  assert.equal(await ada.isVisible('.delivery[data-state="failed"] .delivery-status'), true);
  await noLinkOn(bob);
  await fetch(`${emuUrl}/_emulator/quota`, { method: 'POST', body: JSON.stringify({ bytes: null }) });

  // E2EE on anyone's side: the button is disabled and says why.
  const cy = await joinPage(browser, edge.url, room, { name: 'Cy', e2ee: 'a shared passphrase' });
  await inMeeting(cy);
  await ada.waitForFunction(() => /** @type {HTMLButtonElement} */ (document.getElementById('record')).disabled, null, { timeout: 15000 });
  const b = await recordButton(ada);
  assert.match(b.note, /end-to-end encryption/);
  assert.equal(await ada.isVisible('#record-note'), true);
  for (const page of [ada, bob, cy]) await page.context().close();
});

test('"One video": a composed video of the whole meeting lands in Dropbox beside the per-person files', async () => {
  const room = uniqueRoom('rec');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  await ada.waitForFunction(() => !document.getElementById('record').hidden);
  assert.equal(await ada.isVisible('#record-files-choice'), true);
  assert.equal(await ada.inputValue('#record-files'), 'per_person', "the operator's default");
  await ada.selectOption('#record-files', 'both');
  const before = new Set((await (await fetch(`${emuUrl}/_emulator/files`)).json()).map((f) => f.path_display));
  const popupPromise = ada.context().waitForEvent('page');
  await ada.click('#record');
  const popup = await popupPromise;
  await popup.waitForEvent('close', { timeout: 15000 });
  await ada.waitForFunction(() => document.getElementById('record').textContent === 'Stop recording', null, { timeout: 15000 });
  // The choice is made before a recording starts.
  assert.equal(await ada.isVisible('#record-files-choice'), false);
  await ada.waitForTimeout(6000);
  await ada.click('#record');
  const list = await deliveryReaches(ada, 0, 'delivered', 60000);
  assert.match(list.items[0].text, /^Delivered to your Dropbox \(3 files\)/, edge.logs.filter((l) => /composit|record/.test(l)).join("\n"));
  const files = (await (await fetch(`${emuUrl}/_emulator/files`)).json()).filter((f) => !before.has(f.path_display));
  console.log(`one video: ${files.map((f) => `${f.path_display} ${f.size} bytes`).join(', ')}`);
  const composed = files.filter((f) => f.path_display.endsWith('.mp4'));
  assert.equal(composed.length, 1, JSON.stringify(files));
  assert.match(composed[0].path_display, /^\/edgemeet\/\d{4}-\d{2}-\d{2}\/[0-9a-f]{8}-meeting\.mp4$/);
  // About 6 s of 720p H.264 with sound: far more than a head alone.
  assert.ok(composed[0].size > 100000, `${composed[0].size} bytes`);
  assert.equal(files.filter((f) => f.path_display.endsWith('.webm')).length, 2);
  for (const page of [ada, bob]) await page.context().close();
});
