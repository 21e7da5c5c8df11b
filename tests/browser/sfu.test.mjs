// Three pages move to the media node and each decodes the two others; when one leaves, the other
// two return to P2P and keep decoding.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEdge, launchBrowser, joinPage, waitForVideo, uniqueRoom, artifacts } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

test('three participants go through the media node, then back to P2P', async () => {
  const room = uniqueRoom('sfu');
  const pages = [];
  for (const name of ['Ada', 'Bob', 'Cy']) pages.push(await joinPage(browser, edge.url, room, { name }));
  for (const page of pages) {
    await page.waitForFunction(() => document.getElementById('mode-badge').textContent === 'Via server', null, { timeout: 15000 });
  }
  for (const page of pages) {
    const stats = await waitForVideo(page, 2, 30000);
    assert.ok(Object.keys(stats).some((k) => k.startsWith('sfu:')), `decoding via the node: ${JSON.stringify(stats)}`);
  }
  await pages[0].screenshot({ path: join(artifacts, 'sfu-meeting.png') });

  await pages[2].click('#leave');
  for (const page of pages.slice(0, 2)) {
    await page.waitForFunction(() => document.getElementById('mode-badge').textContent === 'Direct', null, { timeout: 20000 });
    await waitForVideo(page, 1, 20000);
  }
  for (const page of pages) await page.context().close();
});
