// Grid or speaker view and pinning, the shortcuts help panel, and the meeting's labels, from the
// keyboard. The speaker view follows the media node's dominant speaker: the pages' microphone is
// a file of tones that change every 100 ms (Chromium's default fake microphone only beeps, too
// short to make anyone a speaker), and whoever has the microphone on speaks.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, uniqueRoom, tempDir, artifacts } from './lib.mjs';

/** 4 s of 48 kHz mono 16-bit PCM: tones of 250-850 Hz, a new one every 100 ms, like a voice's pitch. */
function speechLikeWav() {
  const rate = 48000;
  const samples = rate * 4;
  const data = Buffer.alloc(samples * 2);
  let phase = 0;
  for (let i = 0; i < samples; i++) {
    const step = Math.floor(i / (rate / 10));
    const freq = 250 + ((step * 7) % 13) * 50;
    phase += (2 * Math.PI * freq) / rate;
    const envelope = 0.6 + 0.4 * Math.sin((2 * Math.PI * i) / (rate / 3));
    data.writeInt16LE(Math.round(Math.sin(phase) * envelope * 12000), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  const path = join(tempDir(), 'speech.wav');
  writeFileSync(path, Buffer.concat([header, data]));
  return path;
}

let edge;
let browser;
before(async () => {
  edge = await startEdge();
  browser = await launchBrowser([`--use-file-for-fake-audio-capture=${speechLikeWav()}`]);
});
after(async () => { await browser?.close(); edge?.stop(); });

/** Where each tile is on `page`, by the name its label starts with, and which one is featured. */
function tiles(page) {
  return page.evaluate(() => {
    /** @type {Record<string, {x: number, y: number, w: number, h: number, featured: boolean}>} */
    const out = {};
    for (const t of document.querySelectorAll('#grid > .tile')) {
      const name = (t.querySelector('.label')?.textContent || '').split(/[ ·(]/)[0];
      const r = t.getBoundingClientRect();
      out[name] = { x: Math.round(r.x), y: Math.round(r.y), w: Math.round(r.width), h: Math.round(r.height), featured: t.classList.contains('featured') };
    }
    return out;
  });
}

/** Wait until `name`'s tile is the large one on `page`, the others a strip beside it; returns the tiles. */
async function waitFeatured(page, name, timeout = 20000) {
  await page.waitForFunction((n) => document.querySelector('#grid > .tile.featured .label')?.textContent.startsWith(n), name, { timeout });
  const all = await tiles(page);
  const big = all[name];
  for (const [other, t] of Object.entries(all)) {
    if (other === name) continue;
    assert.ok(!t.featured, `${other} is not featured too: ${JSON.stringify(all)}`);
    assert.ok(big.w > 2 * t.w && big.h > t.h, `${name}'s tile is large beside ${other}'s: ${JSON.stringify(all)}`);
    assert.ok(t.x >= big.x + big.w, `${other}'s tile is in the strip beside ${name}'s: ${JSON.stringify(all)}`);
  }
  return all;
}

/** Focus the element with the keyboard (Tab) as a person would, then press Enter. */
async function tabTo(page, selector) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return page.keyboard.press('Enter');
  }
  throw new Error(`Tab never reached ${selector}`);
}

test('speaker view follows the dominant speaker, a pin overrides it; help panel and labels from the keyboard', async () => {
  const room = uniqueRoom('layout');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  await waitMode(bob, 'Direct');
  // A pair: in speaker view the other is large (no speaker is named on a direct call).
  await bob.locator('#grid').click({ position: { x: 3, y: 3 } });
  await bob.keyboard.press('g');
  await waitFeatured(bob, 'Ada');
  assert.equal(await bob.getAttribute('#toggle-view', 'aria-pressed'), 'true');
  assert.equal(await bob.getAttribute('#grid', 'aria-label'), "Participants' video, speaker view: Ada large");
  // Only Ada speaks: Bob and Cleo turn their microphones off.
  await bob.keyboard.press('m');
  const cleo = await joinPage(browser, edge.url, room, { name: 'Cleo' });
  await inMeeting(cleo);
  await cleo.locator('#grid').click({ position: { x: 3, y: 3 } });
  await cleo.keyboard.press('m');
  for (const page of [ada, bob, cleo]) await waitMode(page, 'Via server', 30000);

  // Cleo's speaker view: Ada (speaking) large, Bob and Cleo in the strip.
  await cleo.keyboard.press('g');
  await waitFeatured(cleo, 'Ada');
  // Bob speaks, Ada stops: Bob moves to the large tile on every page in speaker view.
  await ada.locator('#grid').click({ position: { x: 3, y: 3 } });
  await ada.keyboard.press('m');
  await bob.keyboard.press('m');
  await waitFeatured(cleo, 'Bob', 30000);
  await waitFeatured(bob, 'Ada'); // never yourself while someone else is there
  // Ada on the large tile nevertheless: Cleo pins her, from the keyboard.
  await tabTo(cleo, 'button[aria-label="Pin Ada"]');
  await waitFeatured(cleo, 'Ada');
  assert.equal(await cleo.getAttribute('#grid .tile.featured .pin', 'aria-pressed'), 'true');
  assert.equal(await cleo.getAttribute('#grid .tile.featured .pin', 'aria-label'), 'Unpin Ada');
  assert.equal(await cleo.textContent('#layout-live'), 'Ada pinned');
  await cleo.screenshot({ path: join(artifacts, 'layout-pinned.png') });
  // Pinning is Cleo's own: Bob's page still shows its own choice.
  assert.equal(await bob.getAttribute('#grid .tile.featured .pin', 'aria-pressed'), 'false');
  // G: back to the grid, the pin let go; every tile the same size again.
  await cleo.keyboard.press('g');
  await cleo.waitForFunction(() => !document.getElementById('grid').classList.contains('stage'));
  const grid = await tiles(cleo);
  assert.ok(Object.values(grid).every((t) => !t.featured && t.w === grid.Ada.w), JSON.stringify(grid));
  assert.equal(await cleo.getAttribute('#toggle-view', 'aria-pressed'), 'false');
  // A pin from the grid shows the speaker view; the pinned one leaving ends it.
  await cleo.click('button[aria-label="Pin Bob"]');
  await waitFeatured(cleo, 'Bob');
  await bob.context().close();
  await cleo.waitForFunction(() => !document.getElementById('grid').classList.contains('stage') && document.querySelectorAll('#grid > .tile').length === 2);

  // The help panel from the keyboard: its button (Tab, Enter) opens it with the focus on Close;
  // it lists the layout and devices keys; Escape closes it and the focus goes back.
  await tabTo(cleo, '#show-shortcuts');
  await cleo.waitForSelector('#shortcuts-panel:not([hidden])');
  assert.equal(await cleo.evaluate(() => document.activeElement?.id), 'close-shortcuts');
  const list = await cleo.textContent('#shortcuts-list');
  for (const text of ['Grid or speaker view', 'Devices: camera, microphone, speaker', 'Raise or lower your hand']) assert.ok(list.includes(text), list);
  await cleo.keyboard.press('Escape');
  await cleo.waitForSelector('#shortcuts-panel', { state: 'hidden' });
  assert.equal(await cleo.evaluate(() => document.activeElement?.id), 'show-shortcuts');

  // Every control a person can reach in the meeting has a name a screen reader reads out.
  await cleo.click('#toggle-people');
  await cleo.click('#toggle-chat');
  await cleo.click('#toggle-devices');
  await cleo.waitForSelector('#devices-panel:not([hidden])');
  const unnamed = await cleo.evaluate(() => [...document.querySelectorAll('#meeting button, #meeting select, #meeting input')]
    .filter((el) => /** @type {HTMLElement} */ (el).checkVisibility())
    .filter((el) => {
      const labelled = el.getAttribute('aria-labelledby')?.split(' ').map((id) => document.getElementById(id)?.textContent || '').join('');
      const labels = [.../** @type {HTMLInputElement} */ (el).labels || []].map((l) => l.textContent).join('');
      return !`${el.getAttribute('aria-label') || ''}${labelled || ''}${labels}${el.tagName === 'BUTTON' ? el.textContent : ''}`.trim();
    })
    .map((el) => el.id || el.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);
  for (const page of [ada, cleo]) await page.context().close();
});
