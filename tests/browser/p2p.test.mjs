// Two pages in one room talk directly: each decodes the other's video and receives audio.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEdge, launchBrowser, joinPage, waitForVideo, framesDecoded, uniqueRoom, artifacts } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

test('landing page offers a random name and warns about a guessable one', async () => {
  const page = await browser.newPage();
  await page.goto(edge.url + '/');
  await page.waitForFunction(() => document.getElementById('room-name').value.split('-').length === 5);
  await page.waitForTimeout(400);
  assert.equal(await page.isHidden('#name-warning'), true, 'a generated name needs no warning');
  await page.fill('#room-name', 'standup');
  await page.waitForSelector('#name-warning:not([hidden])');
  assert.match(await page.textContent('#name-warning'), /guess/i);
  await page.screenshot({ path: join(artifacts, 'landing.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(artifacts, 'landing-phone.png') });
  await page.close();
});

test('two participants: P2P video and audio both ways', async () => {
  const room = uniqueRoom('p2p');
  const a = await joinPage(browser, edge.url, room, { name: 'Ada' });
  const b = await joinPage(browser, edge.url, room, { name: 'Bob' });
  for (const page of [a, b]) {
    await page.waitForSelector('#meeting:not([hidden])');
    // The first page learns of the second a moment later.
    await page.waitForFunction(() => document.getElementById('mode-badge').textContent === 'Direct');
    await waitForVideo(page, 1);
    const stats = await framesDecoded(page);
    assert.ok(Object.entries(stats).some(([k, v]) => k.includes(':audio:') && v < 0), `audio packets arrive: ${JSON.stringify(stats)}`);
  }
  // Each page also holds a standby link to the room's media node, so that a third join is quick:
  // connected, both pages' tracks pushed and pulled, yet no media goes to or from the node.
  for (const page of [a, b]) {
    await page.waitForFunction(() => /** @type {any} */ (window).edgemeet?.sfu?.pc.connectionState === 'connected'
      && /** @type {any} */ (window).edgemeet.sfu.pulledStreams().length === 1, null, { timeout: 20000 });
  }
  await a.waitForTimeout(1500);
  for (const page of [a, b]) {
    const packets = await page.evaluate(async () => {
      const out = [];
      for (const s of (await /** @type {any} */ (window).edgemeet.sfu.pc.getStats()).values()) {
        if (s.type === 'outbound-rtp' || s.type === 'inbound-rtp') out.push(`${s.type} ${s.kind} ${s.rid || ''}: ${(s.packetsSent || 0) + (s.packetsReceived || 0)}`);
      }
      return out;
    });
    assert.ok(packets.length >= 2, `standby streams: ${packets}`);
    assert.ok(packets.every((p) => p.endsWith(': 0')), `no media via the node while P2P: ${packets}`);
  }
  assert.match(await a.textContent('#grid'), /Bob/);
  await a.screenshot({ path: join(artifacts, 'p2p-meeting.png') });
  // A narrow phone screen: tiles stack, the toolbar stays reachable, panels cover the grid.
  await b.setViewportSize({ width: 390, height: 844 });
  await b.waitForTimeout(300);
  await b.screenshot({ path: join(artifacts, 'p2p-meeting-phone.png') });
  await b.click('#toggle-chat');
  await b.screenshot({ path: join(artifacts, 'p2p-chat-phone.png') });
  await a.context().close();
  await b.context().close();
});
